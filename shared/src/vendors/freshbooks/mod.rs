//! FreshBooks: callback (webhook) deliveries, the callbacks API that confirms them, the
//! credential set the API calls use, and the accounting reads ([`api::FreshbooksApi`]).

pub mod api;
pub mod callback_registration;
pub mod callbacks;
pub mod client;
pub mod credentials;
pub mod error;
pub mod ingress;
pub mod models;
pub mod oauth;
pub mod spec;
pub mod webhook;

pub use api::FreshbooksApi;
pub use error::FreshbooksError;
