//! FreshBooks' webhook ingress: `POST /webhooks/freshbooks/{account}/{route}`. Each callback
//! has its own route and its own verifier, learnt in a handshake.
//!
//! The handshake POST carries `verifier` and may be unsigned, so a verifier is only taken for a
//! callback that is pending verification, and stored only after FreshBooks answers our PUT with
//! `verified: true`. A forged handshake therefore cannot replace a good verifier.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, StatusCode};
use secrecy::ExposeSecret;

use super::callbacks::CallbackVerifier;
use super::credentials::Credentials;
use super::webhook::{self, Handshake};
use crate::ports::{CallbackRecord, CallbackStatus, secret_names};
use crate::vendor::Vendor;
use crate::vendors::form::Form;
use crate::vendors::ingress::{
    Accepted, Delivery, Ingress, Rejection, RouteError, SignatureError, WebhookSource, header,
    post_only, response,
};

/// FreshBooks' webhook source; handshakes are confirmed with FreshBooks through `verifier`.
pub struct FreshbooksSource {
    verifier: Arc<dyn CallbackVerifier>,
}

impl FreshbooksSource {
    /// A source confirming handshakes with `verifier`.
    pub fn new(verifier: Arc<dyn CallbackVerifier>) -> Self {
        FreshbooksSource { verifier }
    }
}

#[async_trait]
impl WebhookSource for FreshbooksSource {
    fn vendor(&self) -> Vendor {
        Vendor::Freshbooks
    }

    fn routes(&self) -> &'static str {
        "POST /webhooks/freshbooks/{account}/{route}"
    }

    fn route(&self, method: &Method, params: &[&str]) -> Result<(), RouteError> {
        post_only(method, params, 2)
    }

    async fn accept(&self, ingress: &Ingress<'_>, d: &Delivery<'_>) -> Result<Accepted, Rejection> {
        accept(ingress, self.verifier.as_ref(), d, d.params[0], d.params[1]).await
    }
}

async fn accept(
    handler: &Ingress<'_>,
    verifier: &dyn CallbackVerifier,
    d: &Delivery<'_>,
    account: &str,
    route_id: &str,
) -> Result<Accepted, Rejection> {
    let (headers, body) = (d.headers, d.body);
    let form = Form::parse(body).map_err(|e| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("body is not a FreshBooks form delivery: {e}"),
        )
    })?;
    if form.get("verifier").is_some() {
        // Only handshakes need the callback record; deliveries need just the (cached) verifier.
        let callback = handler
            .store
            .get_callback(route_id)
            .await?
            .filter(|c| c.vendor == Vendor::Freshbooks && c.account == account)
            .ok_or_else(|| {
                Rejection::new(
                    StatusCode::NOT_FOUND,
                    "no FreshBooks callback is registered at this route",
                )
            })?;
        return match webhook::classify(&form) {
            Ok(webhook::Delivery::Handshake(handshake)) => {
                confirm_handshake(handler, verifier, &callback, handshake).await
            }
            Ok(webhook::Delivery::Event(_)) | Err(_) => Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "verification handshake without a usable callback id (`object_id`)",
            )),
        };
    }
    let unauthorized = |e: SignatureError| e.reject(StatusCode::UNAUTHORIZED);
    let signature = header(headers, webhook::SIGNATURE_HEADER)
        .ok_or_else(|| unauthorized(SignatureError::MissingHeader("X-FreshBooks-Hmac-SHA256")))?;
    let name = secret_names::freshbooks(account, route_id);
    let Some(secret) = handler.secret(&name).await? else {
        return Err(unauthorized(SignatureError::NotConfigured(
            "no verified FreshBooks callback at this route".into(),
        )));
    };
    if !webhook::verify(&secret, &form, signature) {
        handler.secrets.invalidate(&name);
        return Err(unauthorized(SignatureError::Mismatch(
            "X-FreshBooks-Hmac-SHA256 does not match the delivery".into(),
        )));
    }
    Ok(match webhook::classify(&form) {
        Ok(webhook::Delivery::Event(event)) if event.account_id == account => {
            Accepted::Events(vec![event.to_source_event(handler.clock.now())])
        }
        Ok(webhook::Delivery::Event(event)) => Accepted::Unparseable {
            reason: format!(
                "delivery names account `{}` but arrived on the route of account `{account}`",
                event.account_id
            ),
        },
        Ok(webhook::Delivery::Handshake(_)) => Accepted::Unparseable {
            reason: "unexpected handshake".into(),
        },
        Err(err) => Accepted::Unparseable {
            reason: err.to_string(),
        },
    })
}

async fn confirm_handshake(
    handler: &Ingress<'_>,
    freshbooks: &dyn CallbackVerifier,
    callback: &CallbackRecord,
    handshake: Handshake,
) -> Result<Accepted, Rejection> {
    let Handshake {
        callback_id,
        verifier,
        ..
    } = handshake;
    if callback.status != CallbackStatus::Pending {
        return Err(Rejection::new(
            StatusCode::CONFLICT,
            "this callback is already verified; to verify it again, ask FreshBooks to resend verification",
        ));
    }
    if callback
        .callback_id
        .as_deref()
        .is_some_and(|known| known != callback_id.as_str())
    {
        return Err(Rejection::unauthorized(
            "the handshake names a different callback than this route's",
        ));
    }
    let credentials_name = secret_names::credentials(&callback.credentials);
    let credentials = handler.secret(&credentials_name).await?.ok_or_else(|| {
        Rejection::unavailable(format!(
            "credential set `{}` is missing; connect FreshBooks, then resend verification",
            callback.credentials
        ))
    })?;
    let credentials = Credentials::from_json(credentials.expose_secret()).map_err(|e| {
        tracing::error!(credentials = %callback.credentials, error = %e, "unreadable FreshBooks credentials");
        Rejection::unavailable("the FreshBooks credential set cannot be read; reconnect FreshBooks")
    })?;
    let confirmed = freshbooks
        .verify(&credentials.access_token, &callback.account, &callback_id, &verifier)
        .await
        .map_err(|e| {
            tracing::warn!(route = %callback.route_id, error = %e, "FreshBooks did not answer the verification");
            Rejection::unavailable("could not confirm the verifier with FreshBooks; please retry")
        })?;
    if !confirmed {
        return Err(Rejection::unauthorized(
            "FreshBooks did not confirm this verifier",
        ));
    }
    // Store the secret before flipping the status: a crash in between leaves the callback
    // pending (FreshBooks can resend) rather than verified without a verifier.
    handler
        .secrets
        .put(
            &secret_names::freshbooks(&callback.account, &callback.route_id),
            &verifier,
        )
        .await?;
    handler
        .store
        .mark_callback_verified(&callback.route_id, handler.clock.now())
        .await?;
    tracing::info!(route = %callback.route_id, account = %callback.account, "FreshBooks callback verified");
    Ok(Accepted::Answered(response::json(
        StatusCode::OK,
        serde_json::json!({ "verified": true }),
    )))
}
