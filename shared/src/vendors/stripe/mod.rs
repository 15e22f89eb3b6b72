//! Stripe: webhook deliveries (`Stripe-Signature`, event envelope).

pub mod spec;
pub mod webhook;
