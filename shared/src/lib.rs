//! ml-connector's library: everything that is not a Lambda entry point.
//!
//! The tree mirrors the architecture (see `docs/architecture.md`):
//! - [`vendors`]: one module per vendor — webhook verification and parsing, API clients.
//! - [`flows`]: the five source → target flows and what each one accepts.
//! - [`event`]: the [`event::SyncEvent`] that travels on every queue.
//! - [`connections`]: the user's connections file, parsed and validated.
//! - [`ports`]: the narrow traits the domain depends on (queue, store, secrets, clock).
//! - [`adapters`]: the AWS (SQS, DynamoDB, Secrets Manager) and embedded (SQLite) implementations.
//! - [`webhook`]: the HTTP handler every webhook delivery goes through.
//! - [`worker`]: the harness every per-target worker runs its handler in.
//! - [`poller`]: scheduled jobs (the FreshBooks fallback poll, token refresh).
//! - [`fanout`]: source events → one queue message per connection; the webhook and the poller share it.
//! - [`app`]: the one place the parts are assembled, for the Lambdas, local mode and the tests.
//! - [`ids`]: connection names, account ids and e-mail addresses as types of their own.
//! - [`config`]: reading settings from the environment, with the one [`config::ConfigError`].

// Every exported item says what it is; the public surface is what the binaries and tests use.
#![warn(missing_docs)]

pub mod adapters;
pub mod app;
pub mod config;
pub mod connections;
pub mod event;
pub mod fanout;
pub mod flows;
pub mod ids;
pub mod observability;
pub mod poller;
pub mod ports;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tokens;
pub mod vendor;
pub mod vendors;
pub mod webhook;
pub mod worker;
