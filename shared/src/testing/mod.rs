//! Test support, for this crate's tests and (with the `test-util` feature) other crates':
//! in-memory fakes of the vendor APIs and of the client set the flows get them from. Never
//! part of a Lambda or the CLI.

pub mod fakes;
pub mod hubspot_fake;
pub mod quickbooks_fake;
