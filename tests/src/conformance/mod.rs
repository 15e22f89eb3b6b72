//! The port conformance suite: one set of checks, generic over the ports, that both adapter sets
//! must pass — the embedded (SQLite) adapters and the AWS adapters on moto
//! (`tests/tests/conformance.rs` runs it over both).
//!
//! Each check is a plain async function that panics on a violation. Checks take fresh
//! resources from a fixture (a new queue, new tables, unique keys), so they can run in parallel
//! against one moto server.
//!
//! Time: store calls take `now` and the stores read expiry against a [`ManualClock`], so the
//! store checks move time by hand on both sets. Queue visibility runs on the backend's own
//! clock — a manual clock for the embedded queue, the wall clock for moto — so queue checks let
//! time pass through [`QueueFixture::advance`] and keep the timeouts short (1-2 s).
//!
//! Where moto differs from AWS the check says so; see [`QueueFixture::supports_redrive`].

pub mod fixtures;
pub mod queue;
pub mod secrets;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mlc::ports::{ManualClock, Queue, Store};

/// Fresh queues on one backend, and that backend's notion of time passing.
#[async_trait]
pub trait QueueFixture: Send + Sync {
    /// Creates a new queue with its dead-letter queue, whose redrive policy moves a message
    /// once it has been received `max_receives` times; returns the adapter and the logical name.
    async fn declare(&self, max_receives: u32) -> (Arc<dyn Queue>, String);

    /// Lets `by` pass for visibility timeouts (advancing a manual clock, or sleeping).
    async fn advance(&self, by: Duration);

    /// Whether `redrive` (SQS `StartMessageMoveTask`) works on this backend. moto 5.2 answers
    /// it with HTTP 500 NotImplemented, so on moto the check asserts the call fails cleanly
    /// and the move itself is covered by the embedded queue and the request-shape test in
    /// `tests/tests/aws_adapters.rs`.
    fn supports_redrive(&self) -> bool;
}

/// A fresh, empty store and the clock it reads expiry against.
pub struct StoreFixture {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
}

impl StoreFixture {
    /// The fixture clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        mlc::ports::Clock::now(self.clock.as_ref())
    }
}

/// The wall-clock time in whole seconds: a start time for manual clocks that keeps written
/// expiries in the real future (DynamoDB's TTL deletes items whose `expires_at` has passed) and
/// that survives the AWS store's whole-second `expires_at`.
pub fn start_time() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now, 0).unwrap_or_default()
}
