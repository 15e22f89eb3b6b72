//! Mailchimp → QuickBooks Online: a list member's events (subscribe, unsubscribe, profile,
//! email change, cleaned) become activity on the QuickBooks customer with that email — a note
//! attachable per event, and one e-mail status line kept current in the customer's `Notes`.
//!
//! - `options`: the connection's options, typed.
//! - `note`: the texts (activity note, status line) and how the notes take the line — pure.
//! - `handler`: `MailchimpToQuickbooks`, the orchestration (the QuickBooks worker reaches it
//!   through `crate::flows::TargetDispatch`).

mod handler;
mod note;
mod options;

pub(crate) use handler::{ENTITIES, MailchimpToQuickbooks};
pub use options::Options;

#[cfg(test)]
mod tests;
