//! The webhook handler: one plain async function from an HTTP request (raw bytes) to a response,
//! hosted by `lambda_http` on Lambda and by [`local::serve`] in local mode.
//!
//! Order of work for every delivery (docs/architecture.md, "Webhook responses"): size limit → route →
//! verify (before parsing) → parse → fan out one [`SyncEvent`](crate::event::SyncEvent) per
//! connection of the source → `SendMessageBatch`. Bad signature → 401 (QuickBooks 403); signed
//! but unparseable → dead letter + 200; enqueue failure → 503 so the vendor retries; oversize →
//! 413. Only ids are logged.

mod config;
mod dead_letter;
mod fanout;
#[cfg(feature = "local")]
pub mod local;
pub mod routes;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};

pub use crate::vendors::ingress::WebhookResponse;
pub use config::WebhookConfig;

use crate::fanout::FanOut;
use crate::ports::{CachedConnections, CachedSecrets, Clock, Queue, Secrets, Store};
use crate::vendors::freshbooks::callbacks::CallbackVerifier;
use crate::vendors::ingress::{
    self, Accepted, Delivery, Ingress, RouteError, SourceDeps, WebhookSource, response,
};

/// What the handler needs from the outside world.
#[derive(Clone)]
pub struct WebhookDeps {
    /// The target queues deliveries become messages on.
    pub queue: Arc<dyn Queue>,
    /// Connections, callback records, dead letters and large bodies.
    pub store: Arc<dyn Store>,
    /// Webhook secrets and verifier tokens.
    pub secrets: Arc<dyn Secrets>,
    /// The time deliveries are stamped with.
    pub clock: Arc<dyn Clock>,
    /// Confirms FreshBooks verification handshakes with FreshBooks' API.
    pub freshbooks: Arc<dyn CallbackVerifier>,
}

/// Verifies, parses and enqueues webhook deliveries. Build one per process and share it.
pub struct WebhookHandler {
    /// Fans verified events out to the connections' queues.
    fanout: FanOut,
    store: Arc<dyn Store>,
    secrets: CachedSecrets,
    connections: CachedConnections,
    clock: Arc<dyn Clock>,
    /// Every vendor's webhook ingress, found by the route's first segment.
    sources: Vec<Box<dyn WebhookSource>>,
    config: WebhookConfig,
}

impl WebhookHandler {
    /// A handler over `deps`, its sources built from every vendor's spec.
    pub fn new(deps: WebhookDeps, config: WebhookConfig) -> Self {
        let secrets = CachedSecrets::new(deps.secrets, config.secret_cache_ttl);
        let connections = CachedConnections::new(
            deps.store.clone() as Arc<dyn crate::ports::ConnectionStore>,
            config.connections_cache_ttl,
        );
        Self {
            fanout: FanOut::new(
                deps.queue,
                deps.store.clone(),
                deps.clock.clone(),
                config.dead_letter_ttl,
            ),
            store: deps.store,
            secrets,
            connections,
            clock: deps.clock,
            sources: ingress::sources(&SourceDeps {
                freshbooks: deps.freshbooks,
            }),
            config,
        }
    }

    /// Handles one delivery. Never panics on input; every outcome is a response.
    pub async fn handle(&self, req: Request<Bytes>) -> WebhookResponse {
        let (parts, body) = req.into_parts();
        if body.len() > self.config.body_limit {
            tracing::warn!(
                bytes = body.len(),
                limit = self.config.body_limit,
                "webhook body over the limit"
            );
            return response::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is {} bytes; this endpoint accepts at most {} (raise WebhookBodyLimitBytes to accept larger deliveries)",
                    body.len(),
                    self.config.body_limit
                ),
            );
        }
        let (source, params) = match routes::route(&self.sources, &parts.method, parts.uri.path()) {
            Ok(route) => route,
            Err(RouteError::NotFound) => {
                return response::error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no such webhook route; the routes are {}",
                        routes::describe(&self.sources)
                    ),
                );
            }
            Err(RouteError::MethodNotAllowed { allowed }) => {
                let mut resp = response::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("use {allowed} on this route"),
                );
                resp.headers_mut()
                    .insert(http::header::ALLOW, http::HeaderValue::from_static(allowed));
                return resp;
            }
        };
        let vendor = source.vendor();
        let ingress = Ingress {
            secrets: &self.secrets,
            store: self.store.as_ref(),
            clock: self.clock.as_ref(),
        };
        let delivery = Delivery {
            method: &parts.method,
            params: &params,
            headers: &parts.headers,
            body: &body,
        };
        let accepted = source.accept(&ingress, &delivery).await;
        let result = match accepted {
            Ok(Accepted::Events(events)) => self.enqueue(vendor, events).await,
            Ok(Accepted::Unparseable { reason }) => {
                self.dead_letter_delivery(vendor, &body, &reason).await
            }
            Ok(Accepted::Answered(resp)) => Ok(resp),
            Err(rejection) => Err(rejection),
        };
        result.unwrap_or_else(|rejection| {
            tracing::info!(vendor = %vendor, status = rejection.status.as_u16(), reason = %rejection.message, "webhook rejected");
            rejection.into_response()
        })
    }
}

#[cfg(test)]
mod tests;
