//! Implementations of the [`crate::ports`]: AWS for Lambda, embedded (SQLite) for local mode.

pub mod aws;
#[cfg(feature = "local")]
pub mod embedded;
