//! The narrow traits the domain code depends on. Two adapter sets implement them:
//! [`crate::adapters::aws`] for Lambda and [`crate::adapters::embedded`] for local mode and tests.

mod clock;
mod connections_cache;
pub mod queue;
pub mod secret_names;
mod secrets;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub(crate) use connections_cache::CachedConnections;
pub use queue::{OutgoingMessage, Queue, QueueDepth, ReceivedMessage, SendFailure};
pub use secrets::{CachedSecrets, Secrets};
pub use store::{
    AuditEntry, AuditLog, Begin, Blobs, CallbackRecord, CallbackStatus, ConnectionStore, Cursors,
    DeadLetter, DeadLetterStatus, DeadLetters, IdMap, IdMapping, Idempotency, Leases, Outcome,
    Store, WebhookCallbacks,
};

/// A failure of the infrastructure behind a port (network, throttling, a corrupt row). Domain
/// code treats it as transient: the message stays on its queue and is retried.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The backing service could not be reached or answered with an error.
    #[error("{service}: {message}")]
    Backend {
        /// The service, e.g. `dynamodb` or `sqlite`.
        service: &'static str,
        /// What failed (the operation and resource, where known) and the service's error.
        message: String,
    },
    /// Stored data could not be read back.
    #[error("corrupt {what}: {message}")]
    Corrupt {
        /// What was being read, e.g. `secret` or `dead letter`.
        what: &'static str,
        /// Why it cannot be read.
        message: String,
    },
    /// A queue, table or secret the configuration names does not exist.
    #[error("{what} `{name}` does not exist")]
    NotFound {
        /// What kind of resource, e.g. `queue` or `secret`.
        what: &'static str,
        /// Its name as configured.
        name: String,
    },
}

impl PortError {
    /// Shorthand for a backend failure with any displayable cause.
    pub fn backend(service: &'static str, err: impl std::fmt::Display) -> Self {
        PortError::Backend {
            service,
            message: err.to_string(),
        }
    }

    /// Shorthand for unreadable stored data.
    pub(crate) fn corrupt(what: &'static str, err: impl std::fmt::Display) -> Self {
        PortError::Corrupt {
            what,
            message: err.to_string(),
        }
    }
}

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;
