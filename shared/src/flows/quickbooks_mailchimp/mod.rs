//! QuickBooks Online → Mailchimp: customers become audience members (names and company as
//! merge fields, `status_if_new` only), kept in step through email changes, deactivations and
//! merges. Accounting data stays in QuickBooks.
//!
//! - `options`: the connection's options, typed.
//! - `mapping`: QuickBooks customers in, Mailchimp member bodies out — pure functions.
//! - `handler`: `QuickbooksToMailchimp`, the orchestration (the Mailchimp worker reaches it
//!   through `crate::flows::TargetDispatch`).

mod handler;
mod mapping;
mod options;

pub(crate) use handler::{ENTITIES, QuickbooksToMailchimp};
pub use options::Options;

#[cfg(test)]
mod tests;
