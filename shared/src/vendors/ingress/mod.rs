//! The webhook ingress contract: each vendor that sends webhooks implements [`WebhookSource`] in
//! its own module (`vendors/<vendor>/ingress.rs`) — its route under `/webhooks/<vendor>/…`, how
//! a delivery is verified (before anything is parsed) and what it becomes. The webhook handler
//! ([`crate::webhook`]) finds the source by the route's first segment and never matches on a
//! vendor (docs/architecture.md, "Webhook responses").

pub mod response;

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, Method, StatusCode};
use secrecy::SecretString;

pub use response::{Rejection, WebhookResponse};

use crate::event::SourceEvent;
use crate::ports::{CachedSecrets, Clock, Store};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::callbacks::CallbackVerifier;

/// What a source made of a verified delivery.
pub enum Accepted {
    /// Source events to fan out.
    Events(Vec<SourceEvent>),
    /// Signed, but not something we can read: kept as a dead letter, acknowledged.
    Unparseable {
        /// Why it could not be read (no body content, no secrets).
        reason: String,
    },
    /// Fully answered by the source (a verification handshake, a validation GET).
    Answered(WebhookResponse),
}

/// Why a request matches no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No route of the source has this shape: 404.
    NotFound,
    /// The route exists but not for this method: 405 with an `Allow` header.
    MethodNotAllowed {
        /// The methods the route takes, as the `Allow` header spells them.
        allowed: &'static str,
    },
}

/// One delivery, as routed: the method, the path segments after `/webhooks/<vendor>`, the
/// headers and the body exactly as received.
pub struct Delivery<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The path segments after `/webhooks/<vendor>`.
    pub params: &'a [&'a str],
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body exactly as received (signatures are over these bytes).
    pub body: &'a [u8],
}

/// What a source may use while it accepts a delivery: the verification secrets (cached per
/// instance), the store (callback records) and the clock.
pub struct Ingress<'a> {
    /// The webhook secrets, cached for the instance's life and invalidated on a mismatch.
    pub secrets: &'a CachedSecrets,
    /// The state store (FreshBooks callback records, large bodies).
    pub store: &'a dyn Store,
    /// The time handshakes and deliveries are stamped with.
    pub clock: &'a dyn Clock,
}

impl Ingress<'_> {
    /// A verification secret, through the per-instance cache.
    pub async fn secret(&self, name: &str) -> Result<Option<SecretString>, Rejection> {
        Ok(self.secrets.get(name).await?)
    }
}

/// Why a delivery's signature (or URL secret) does not verify. Each source says which status
/// it answers with (QuickBooks documents 403, the others 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header that carries the signature is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// Nothing to verify with: the secret is not stored (yet).
    #[error("{0}")]
    NotConfigured(String),
    /// The signature does not match, or is outside its time window.
    #[error("{0}")]
    Mismatch(String),
}

impl SignatureError {
    /// The rejection a sender sees, with `status`.
    pub fn reject(self, status: StatusCode) -> Rejection {
        Rejection::new(status, self.to_string())
    }
}

/// A vendor's webhook ingress.
#[async_trait]
pub trait WebhookSource: Send + Sync {
    /// The vendor, whose name is the route's first segment after `webhooks`.
    fn vendor(&self) -> Vendor;

    /// The route(s), spelled for a 404's message, e.g. `POST /webhooks/stripe/{account}`.
    fn routes(&self) -> &'static str;

    /// Whether `method` and the segments after `/webhooks/<vendor>` are one of its routes.
    fn route(&self, method: &Method, params: &[&str]) -> Result<(), RouteError>;

    /// Verifies the delivery, then parses it. Never panics on input.
    async fn accept(
        &self,
        ingress: &Ingress<'_>,
        delivery: &Delivery<'_>,
    ) -> Result<Accepted, Rejection>;
}

/// Answers `POST` with `params.len() == arity`, refuses other methods with 405.
pub fn post_only(method: &Method, params: &[&str], arity: usize) -> Result<(), RouteError> {
    if params.len() != arity {
        Err(RouteError::NotFound)
    } else if method == Method::POST {
        Ok(())
    } else {
        Err(RouteError::MethodNotAllowed { allowed: "POST" })
    }
}

/// A header's value as text, if present and visible ASCII.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What building a source may need: the FreshBooks source confirms handshakes with
/// `freshbooks`.
#[derive(Clone)]
pub struct SourceDeps {
    /// The FreshBooks handshake verifier (it confirms callbacks with FreshBooks' API).
    pub freshbooks: Arc<dyn CallbackVerifier>,
}

/// Every vendor's webhook source (the vendors whose spec has one), in [`Vendor::ALL`] order.
pub fn sources(deps: &SourceDeps) -> Vec<Box<dyn WebhookSource>> {
    Vendor::ALL
        .iter()
        .copied()
        .filter_map(|v| super::spec(v).ingress.map(|build| build(deps)))
        .collect()
}
