//! The webhook handler.
