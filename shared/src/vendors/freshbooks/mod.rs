//! FreshBooks: callback (webhook) deliveries, the callbacks API that confirms them, and the
//! credential set the API calls use.

pub mod callbacks;
pub mod credentials;
pub mod error;
pub mod webhook;

pub use error::FreshbooksError;
