//! Callback handshakes and signed event deliveries, made the way FreshBooks makes them.

use std::sync::Arc;

use mlc::vendors::form::Form;
use mlc::vendors::freshbooks::webhook::{SIGNATURE_HEADER, sign};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::state::Change;
use super::{Inner, lock};

/// One POST the sandbox made to a callback uri.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `handshake` or `event`.
    pub kind: String,
    pub callback_id: String,
    pub uri: String,
    /// `callback.verify` for handshakes, else the event name.
    pub name: String,
    pub object_id: String,
    pub account_id: String,
    /// The form body as sent.
    pub body: String,
    /// The `X-FreshBooks-Hmac-SHA256` header (events only).
    pub signature: Option<String>,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why the POST failed, if it did.
    pub error: Option<String>,
}

/// Whether a callback registered for `event` receives `name`: equal, or `event` is its parent
/// (`invoice` ⊃ `invoice.create`).
pub(super) fn event_matches(event: &str, name: &str) -> bool {
    event == name
        || name
            .strip_prefix(event)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Posts each change to every verified, matching callback of its account, in order, waiting
/// for each answer.
pub(super) async fn deliver(inner: &Arc<Inner>, changes: Vec<Change>) {
    for change in changes {
        let targets: Vec<(i64, String, String, i64, i64)> = {
            let state = inner.state();
            let Some(business) = state.businesses.get(&change.account) else {
                continue;
            };
            let Some(books) = state.books.get(&change.account) else {
                continue;
            };
            books
                .callbacks
                .values()
                .filter(|c| c.verified && event_matches(&c.event, &change.name))
                .map(|c| {
                    (
                        c.id,
                        c.uri.clone(),
                        c.verifier.clone(),
                        business.business_id,
                        business.owner_identity_id,
                    )
                })
                .collect()
        };
        for (callback_id, uri, verifier, business_id, identity_id) in targets {
            let object_id = change.object_id.to_string();
            let fields = [
                ("name", change.name.as_str()),
                ("object_id", object_id.as_str()),
                ("account_id", change.account.as_str()),
                ("business_id", &business_id.to_string()),
                ("identity_id", &identity_id.to_string()),
                ("user_id", "1"),
            ]
            .map(|(k, v)| (k, v.to_string()));
            let body = encode(&fields);
            let signature = Form::parse(body.as_bytes())
                .ok()
                .map(|form| sign(&SecretString::from(verifier), &form));
            let record = DeliveryRecord {
                kind: "event".into(),
                callback_id: callback_id.to_string(),
                uri,
                name: change.name.clone(),
                object_id,
                account_id: change.account.clone(),
                body,
                signature,
                status: None,
                error: None,
            };
            post(inner, record).await;
        }
    }
}

/// Posts the verification handshake of a callback after the configured delay.
pub(super) fn spawn_handshake(inner: Arc<Inner>, account: String, callback_id: i64) {
    tokio::spawn(async move {
        tokio::time::sleep(inner.options.handshake_delay).await;
        let target = {
            let state = inner.state();
            state
                .books
                .get(&account)
                .and_then(|b| b.callbacks.get(&callback_id))
                .map(|c| (c.uri.clone(), c.verifier.clone()))
        };
        let Some((uri, verifier)) = target else {
            return;
        };
        let object_id = callback_id.to_string();
        let body = encode(&[
            ("name", "callback.verify".to_string()),
            ("object_id", object_id.clone()),
            ("verifier", verifier),
            ("account_id", account.clone()),
        ]);
        let record = DeliveryRecord {
            kind: "handshake".into(),
            callback_id: object_id.clone(),
            uri,
            name: "callback.verify".into(),
            object_id,
            account_id: account,
            body,
            signature: None,
            status: None,
            error: None,
        };
        post(&inner, record).await;
    });
}

async fn post(inner: &Inner, mut record: DeliveryRecord) {
    let mut request = inner
        .http
        .post(&record.uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(record.body.clone());
    if let Some(signature) = &record.signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    match request.send().await {
        Ok(response) => record.status = Some(response.status().as_u16()),
        Err(e) => record.error = Some(e.to_string()),
    }
    lock(&inner.deliveries).push(record);
}

/// `application/x-www-form-urlencoded`, fields in the given order.
pub(super) fn encode(fields: &[(&str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_match_children() {
        assert!(event_matches("invoice", "invoice.create"));
        assert!(event_matches("invoice.create", "invoice.create"));
        assert!(!event_matches("invoice.create", "invoice.update"));
        assert!(!event_matches("invoice", "invoices.create"));
    }

    #[test]
    fn encoding_round_trips_through_the_form_parser() {
        let body = encode(&[("name", "a b&c=d/é".into()), ("x", String::new())]);
        let form = Form::parse(body.as_bytes()).unwrap();
        assert_eq!(form.get("name"), Some("a b&c=d/é"));
        assert_eq!(form.get("x"), Some(""));
    }
}
