//! The worker harness every per-target worker runs its [`TargetHandler`] in, on Lambda
//! ([`lambda`]) and in local mode ([`local`]).
//!
//! Per message: decode the [`crate::event::SyncEvent`] (undecodable → dead letter, rejected),
//! claim `<connection>#<event_id>` in the idempotency store (done before → audited duplicate;
//! dead-lettered before → a replay, handled afresh), run the handler with in-invocation retries,
//! then record the outcome: an audit entry per attempt, the idempotency outcome, and for
//! failures a growing visibility timeout or a dead letter. See [`Harness::process_batch`].

pub mod backoff;
mod config;
mod handler;
mod harness;
mod invoke;
pub mod lambda;
#[cfg(feature = "local")]
pub mod local;
mod report;
mod trim;

pub use config::HarnessConfig;
pub(crate) use handler::one_of_batch;
pub use handler::{Handled, HandlerError, TargetHandler};
pub use harness::Harness;
pub use invoke::{PANICKED, TIMED_OUT};
pub use report::{BatchReport, Disposition, MessageReport};
