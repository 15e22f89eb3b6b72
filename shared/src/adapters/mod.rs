//! Implementations of the [`crate::ports`]: AWS for Lambda, embedded (SQLite) for local mode.

pub mod aws;
pub mod embedded;
