//! What the handler answers. Bodies are short JSON documents that tell a human what to fix;
//! they never echo a payload or a secret.

use http::{Response, StatusCode, header};

/// A response on its way out.
pub type WebhookResponse = Response<String>;

/// A JSON response with the given status.
pub fn json(status: StatusCode, body: serde_json::Value) -> WebhookResponse {
    let mut resp = Response::new(body.to_string());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"error": message}` with the given status.
pub fn error(status: StatusCode, message: impl Into<String>) -> WebhookResponse {
    json(status, serde_json::json!({ "error": message.into() }))
}

/// A delivery was taken: `accepted` source events became `queued` queue messages.
pub fn accepted(accepted: usize, queued: usize, dead_lettered: usize) -> WebhookResponse {
    json(
        StatusCode::OK,
        serde_json::json!({ "accepted": accepted, "queued": queued, "dead_lettered": dead_lettered }),
    )
}

/// A request turned away before any work, with the status and message the sender sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status to answer with.
    pub status: StatusCode,
    /// What the answer says (never a secret or the body).
    pub message: String,
}

impl Rejection {
    /// A refusal with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A 401 refusal (a missing or wrong signature).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A failure of our own infrastructure: the vendor should retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// The HTTP answer, with the message as a JSON error body.
    pub fn into_response(self) -> WebhookResponse {
        error(self.status, self.message)
    }
}

impl From<crate::ports::PortError> for Rejection {
    fn from(err: crate::ports::PortError) -> Self {
        // The cause goes to the log (it names AWS resources, not payloads); the vendor only
        // needs to know to retry.
        tracing::error!(error = %err, "infrastructure failure while handling a webhook");
        Rejection::unavailable("temporarily unable to accept the delivery; please retry")
    }
}
