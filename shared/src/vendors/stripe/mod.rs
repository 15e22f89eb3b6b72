//! Stripe: webhook deliveries (`Stripe-Signature`, event envelope).

pub mod webhook;
