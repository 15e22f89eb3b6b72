//! The worker harness every per-target worker runs its [`TargetHandler`] in, on Lambda
//! ([`lambda`]) and in local mode ([`local`]).
//!
//! Per message: decode the [`crate::event::SyncEvent`] (undecodable → dead letter, rejected) and
//! claim `<connection>#<event_id>` in the idempotency store (done before → audited duplicate;
//! dead-lettered before → a replay, handled afresh). The claimed events of the batch then go to
//! the handler in one [`TargetHandler::handle_batch`] call, with in-invocation retries of the
//! transiently failed ones. Each message's outcome is recorded on its own: an audit entry per
//! attempt, the idempotency outcome, and for failures a growing visibility timeout, a hold
//! (daily quotas) or a dead letter. See [`Harness::process_batch`].

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
