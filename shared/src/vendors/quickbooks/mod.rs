//! QuickBooks Online: webhook deliveries (legacy and CloudEvents).

pub mod webhook;
