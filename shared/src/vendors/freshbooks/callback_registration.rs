//! Registering FreshBooks callbacks against our store's callback records, as `ml-connector
//! apply`, `ml-connector dev` and the pipeline tests do; the webhook route's handshake
//! ([`super::ingress`]) then confirms each record.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::ports::{CallbackRecord, CallbackStatus, Clock, PortError, Store};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::FreshbooksError;
use crate::vendors::freshbooks::client::FreshbooksClient;

/// One FreshBooks callback: which account and event, the route that receives it and its URL.
pub struct CallbackSpec<'a> {
    /// The FreshBooks account the callback is for.
    pub account: &'a str,
    /// The credential set that registers it.
    pub credentials: &'a str,
    /// The FreshBooks event it subscribes to: an entity's name (`client`, `bill_vendor`…),
    /// which covers its create/update/delete (docs/vendors/freshbooks.md §1.5).
    pub event: &'a str,
    /// The webhook route that receives it; keys its callback record.
    pub route_id: &'a str,
    /// The URL FreshBooks delivers to.
    pub uri: &'a str,
}

/// Which step of [`register_pending`] failed. The causes are part of the message rather than
/// sources, so a caller's context chain shows each once.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("recording the pending callback: {0}")]
    /// The pending record could not be written.
    RecordPending(PortError),
    #[error("asking FreshBooks to resend verification: {0}")]
    /// FreshBooks refused to resend the handshake of a registered callback.
    Resend(FreshbooksError),
    #[error("registering: {0}")]
    /// FreshBooks refused the registration.
    Register(FreshbooksError),
    #[error("recording the callback id: {0}")]
    /// The callback id could not be recorded.
    RecordId(PortError),
}

/// Registers a callback as pending: the record first, so the handshake that may arrive before
/// the registration call returns finds a pending callback to confirm, then the registration —
/// or, for `registered` (the id of one FreshBooks already has), a resend of its handshake. The
/// callback id is then recorded without touching the status the handshake may have set.
pub async fn register_pending(
    store: &dyn Store,
    clock: &dyn Clock,
    client: &FreshbooksClient,
    spec: &CallbackSpec<'_>,
    registered: Option<&str>,
) -> Result<(), RegisterError> {
    let pending = CallbackRecord {
        route_id: spec.route_id.to_string(),
        vendor: Vendor::Freshbooks,
        account: spec.account.to_string(),
        callback_id: registered.map(str::to_string),
        event: spec.event.to_string(),
        credentials: spec.credentials.to_string(),
        status: CallbackStatus::Pending,
        updated_at: clock.now(),
    };
    store
        .put_callback(&pending)
        .await
        .map_err(RegisterError::RecordPending)?;
    if let Some(id) = registered {
        return client
            .resend_verification(spec.account, id)
            .await
            .map_err(RegisterError::Resend);
    }
    let cb = client
        .register_callback(spec.account, spec.event, spec.uri)
        .await
        .map_err(RegisterError::Register)?;
    store
        .record_callback_id(spec.route_id, &cb.callbackid)
        .await
        .map_err(RegisterError::RecordId)?;
    Ok(())
}

/// Polls the callback records of `routes` every `every` until each is verified or `wait`
/// passes; returns the verified ones. Our records, not FreshBooks' `verified` flag: that flips
/// before the webhook route has stored the verifier, and a delivery in between would find none.
pub async fn wait_verified<'a>(
    store: &dyn Store,
    routes: &[&'a str],
    wait: Duration,
    every: Duration,
) -> BTreeSet<&'a str> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut done = BTreeSet::new();
    loop {
        for route in routes {
            if let Ok(Some(r)) = store.get_callback(route).await
                && r.status == CallbackStatus::Verified
            {
                done.insert(*route);
            }
        }
        if done.len() == routes.len() || tokio::time::Instant::now() >= deadline {
            return done;
        }
        tokio::time::sleep(every).await;
    }
}
