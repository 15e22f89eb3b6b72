//! The per-key connection limit. Mailchimp allows 10 simultaneous connections per API key or
//! user (docs/vendors/mailchimp.md §5); the 11th is answered 429. The whole deployment must stay under that,
//! and up to `max_concurrency` worker instances (the queue's Lambda event-source
//! `MaximumConcurrency`) run at once, each with its own process. So each process may hold
//! `max(1, total / max_concurrency)` connections per key, enforced by one
//! [`ConnectionLimiter`](crate::vendors::limits::ConnectionLimiter) per key shared by every
//! client in the process.
//!
//! Limiters are registered by the credential's fingerprint (a hash, never the key) and the
//! permit count, so two configurations in one process (tests) do not share a semaphore.

/// Mailchimp's documented simultaneous-connection limit per key.
pub(crate) const MAILCHIMP_CONNECTION_LIMIT: usize = 10;
