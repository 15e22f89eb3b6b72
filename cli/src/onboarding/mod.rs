//! Onboarding: `connect` (credentials in), `ping` (do they work), `apply` (connections and
//! webhook registration).

pub mod apply;
pub mod connect;
mod input;
pub mod oauth_listener;
pub mod ping;
