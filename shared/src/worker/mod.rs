//! The worker harness.
