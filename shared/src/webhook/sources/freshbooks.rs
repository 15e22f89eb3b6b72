//! FreshBooks: each callback has its own route and its own verifier, learnt in a handshake.
//!
//! The handshake POST carries `verifier` and may be unsigned, so a verifier is only taken for a
//! callback that is pending verification, and stored only after FreshBooks answers our PUT with
//! `verified: true`. A forged handshake therefore cannot replace a good verifier.

use http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;

use super::super::response::{self, Rejection};
use super::super::{Accepted, WebhookHandler};
use crate::ports::secret_names;
use crate::ports::{CallbackRecord, CallbackStatus};
use crate::vendor::Vendor;
use crate::vendors::form::Form;
use crate::vendors::freshbooks::credentials::Credentials;
use crate::vendors::freshbooks::webhook::{self, Delivery, Handshake};

pub(in crate::webhook) async fn accept(
    handler: &WebhookHandler,
    headers: &HeaderMap,
    body: &[u8],
    account: &str,
    route_id: &str,
) -> Result<Accepted, Rejection> {
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
            Ok(Delivery::Handshake(handshake)) => {
                confirm_handshake(handler, &callback, handshake).await
            }
            Ok(Delivery::Event(_)) | Err(_) => Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "verification handshake without a usable callback id (`object_id`)",
            )),
        };
    }
    let signature = super::header(headers, webhook::SIGNATURE_HEADER)
        .ok_or_else(|| Rejection::unauthorized("missing X-FreshBooks-Hmac-SHA256 header"))?;
    let name = secret_names::freshbooks(account, route_id);
    let Some(verifier) = handler.secret(&name).await? else {
        return Err(Rejection::unauthorized(
            "no verified FreshBooks callback at this route",
        ));
    };
    if !webhook::verify(&verifier, &form, signature) {
        handler.secrets.invalidate(&name);
        return Err(Rejection::unauthorized(
            "X-FreshBooks-Hmac-SHA256 does not match the delivery",
        ));
    }
    Ok(match webhook::classify(&form) {
        Ok(Delivery::Event(event)) if event.account_id == account => {
            Accepted::Events(vec![event.to_source_event(handler.clock.now())])
        }
        Ok(Delivery::Event(event)) => Accepted::Unparseable {
            reason: format!(
                "delivery names account `{}` but arrived on the route of account `{account}`",
                event.account_id
            ),
        },
        Ok(Delivery::Handshake(_)) => Accepted::Unparseable {
            reason: "unexpected handshake".into(),
        },
        Err(err) => Accepted::Unparseable {
            reason: err.to_string(),
        },
    })
}

async fn confirm_handshake(
    handler: &WebhookHandler,
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
    let confirmed = handler
        .freshbooks
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
