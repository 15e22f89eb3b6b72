//! Stripe: webhook deliveries (`Stripe-Signature`, event envelope).

pub mod ingress;
pub mod spec;
pub mod webhook;
