//! The webhook handler: one plain async function from an HTTP request (raw bytes) to a response,
//! hosted by `lambda_http` on Lambda and by [`local::serve`] in local mode.
//!
//! Order of work for every delivery (docs/architecture.md, "Webhook responses"): size limit → route →
//! verify (before parsing) → parse → fan out one [`SyncEvent`](crate::event::SyncEvent) per
//! connection of the source → `SendMessageBatch`. Bad signature → 401 (QuickBooks 403); signed
//! but unparseable → dead letter + 200; enqueue failure → 503 so the vendor retries; oversize →
//! 413. Only ids are logged.

pub mod callback_registration;
mod config;
mod dead_letter;
mod fanout;
pub mod local;
pub mod response;
pub mod routes;
mod sources;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};

pub use config::WebhookConfig;
pub use response::WebhookResponse;

use crate::event::SourceEvent;
use crate::fanout::FanOut;
use crate::ports::CachedConnections;
use crate::ports::{CachedSecrets, Clock, Queue, Secrets, Store};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::callbacks::CallbackVerifier;
use response::Rejection;
use routes::{Route, RouteError};

/// What the handler needs from the outside world.
#[derive(Clone)]
pub struct WebhookDeps {
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
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
    freshbooks: Arc<dyn CallbackVerifier>,
    config: WebhookConfig,
}

/// What a source module made of a verified delivery.
enum Accepted {
    /// Source events to fan out.
    Events(Vec<SourceEvent>),
    /// Signed, but not something we can read: kept as a dead letter, acknowledged.
    Unparseable { reason: String },
    /// Fully answered by the source module (e.g. a verification handshake).
    Answered(WebhookResponse),
}

impl WebhookHandler {
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
            freshbooks: deps.freshbooks,
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
        let route = match routes::route(&parts.method, parts.uri.path()) {
            Ok(route) => route,
            Err(RouteError::NotFound) => {
                return response::error(
                    StatusCode::NOT_FOUND,
                    format!("no such webhook route; the routes are {}", routes::ROUTES),
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
        let vendor = route_vendor(&route);
        let accepted = match route {
            Route::Freshbooks { account, route_id } => {
                sources::freshbooks::accept(self, &parts.headers, &body, &account, &route_id).await
            }
            Route::Quickbooks => sources::quickbooks::accept(self, &parts.headers, &body).await,
            Route::Stripe { account } => {
                sources::stripe::accept(self, &parts.headers, &body, &account).await
            }
            Route::MailchimpValidate => {
                return response::json(StatusCode::OK, serde_json::json!({ "ok": true }));
            }
            Route::Mailchimp { list, secret } => {
                sources::mailchimp::accept(self, &body, &list, &secret).await
            }
        };
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

    /// A verification secret, through the per-instance cache.
    async fn secret(&self, name: &str) -> Result<Option<secrecy::SecretString>, Rejection> {
        Ok(self.secrets.get(name).await?)
    }
}

fn route_vendor(route: &Route) -> Vendor {
    match route {
        Route::Freshbooks { .. } => Vendor::Freshbooks,
        Route::Quickbooks => Vendor::Quickbooks,
        Route::Stripe { .. } => Vendor::Stripe,
        Route::MailchimpValidate | Route::Mailchimp { .. } => Vendor::Mailchimp,
    }
}

#[cfg(test)]
mod tests;
