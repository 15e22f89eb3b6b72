//! Webhook deliveries made the way Intuit makes them (docs/vendors/quickbooks.md §1): one app endpoint,
//! legacy `eventNotifications` or CloudEvents bodies, `intuit-signature` = base64
//! HMAC-SHA256(verifier token, raw body), sent asynchronously and in order.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use chrono::{DateTime, SecondsFormat, Utc};
use mlc::vendors::quickbooks::webhook::{SIGNATURE_HEADER, sign};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::state::Change;
use super::{Inner, lock};

/// The webhook payload format the app is switched to (the portal's toggle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `{"eventNotifications":[…]}`, `Content-Type: application/json`.
    #[default]
    Legacy,
    /// A JSON array of CloudEvents, `Content-Type: application/cloudevents+json`.
    CloudEvents,
}

/// One webhook POST the sandbox made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub url: String,
    pub format: PayloadFormat,
    pub content_type: String,
    pub realm_id: String,
    /// The customer id (the survivor of a merge).
    pub entity_id: String,
    /// Legacy operation name: `Create`, `Update`, `Merge`.
    pub operation: String,
    /// The merged-away id of a merge.
    pub deleted_id: Option<String>,
    /// The CloudEvents `id` (none for legacy).
    pub event_id: Option<String>,
    /// The body as sent.
    pub body: String,
    /// The `intuit-signature` header.
    pub signature: String,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why the POST failed, if it did.
    pub error: Option<String>,
}

/// The body for one change, and its CloudEvents id.
pub(super) fn body(change: &Change, format: PayloadFormat) -> (String, Option<String>) {
    match format {
        PayloadFormat::Legacy => {
            let mut entity = json!({"name": "Customer", "id": change.id,
                "operation": change.op.legacy(), "lastUpdated": millis(change.at)});
            if let Some(deleted) = &change.deleted_id {
                entity["deletedId"] = json!(deleted);
            }
            let body = json!({"eventNotifications": [{"realmId": change.realm,
                "dataChangeEvent": {"entities": [entity]}}]});
            (body.to_string(), None)
        }
        PayloadFormat::CloudEvents => {
            let id = uuid::Uuid::new_v4().to_string();
            let data = match &change.deleted_id {
                Some(deleted) => json!({"deletedid": deleted}),
                None => json!({}),
            };
            let body = json!([{"specversion": "1.0", "id": id, "source": "intuit.mlcsandbox",
                "type": format!("qbo.customer.{}.v1", change.op.verb()),
                "datacontenttype": "application/json",
                "time": change.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                "intuitentityid": change.id, "intuitaccountid": change.realm, "data": data}]);
            (body.to_string(), Some(id))
        }
    }
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The delivery task: one POST per change, in order, each after the configured delay. Holds
/// the sandbox weakly so dropping the sandbox ends it.
pub(super) async fn run(inner: Weak<Inner>, mut queued: mpsc::UnboundedReceiver<Change>) {
    while let Some(change) = queued.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        tokio::time::sleep(inner.options.webhook_delay).await;
        deliver(&inner, &change).await;
        inner.pending.fetch_sub(1, Ordering::SeqCst);
        inner.idle.notify_waiters();
    }
}

async fn deliver(inner: &Arc<Inner>, change: &Change) {
    let target = lock(&inner.webhook)
        .as_ref()
        .map(|w| (w.url.clone(), w.verifier_token.clone(), w.format));
    // No endpoint configured: QuickBooks has nowhere to send it.
    let Some((url, verifier_token, format)) = target else {
        return;
    };
    let (body, event_id) = body(change, format);
    let signature = sign(&verifier_token, body.as_bytes());
    let content_type = match format {
        PayloadFormat::Legacy => "application/json",
        PayloadFormat::CloudEvents => "application/cloudevents+json",
    };
    let mut record = DeliveryRecord {
        url: url.clone(),
        format,
        content_type: content_type.to_string(),
        realm_id: change.realm.clone(),
        entity_id: change.id.clone(),
        operation: change.op.legacy().to_string(),
        deleted_id: change.deleted_id.clone(),
        event_id,
        body: body.clone(),
        signature: signature.clone(),
        status: None,
        error: None,
    };
    let sent = inner
        .http
        .post(&url)
        .header("content-type", content_type)
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => record.status = Some(response.status().as_u16()),
        Err(e) => record.error = Some(e.to_string()),
    }
    lock(&inner.deliveries).push(record);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quickbooks::state::ChangeOp;
    use mlc::vendors::quickbooks::webhook::{parse, verify};
    use secrecy::SecretString;

    fn change(op: ChangeOp, deleted: Option<&str>) -> Change {
        Change {
            realm: "9130357766900001".into(),
            id: "58".into(),
            op,
            deleted_id: deleted.map(str::to_string),
            at: "2026-03-02T17:04:11.123Z".parse().unwrap(),
        }
    }

    #[test]
    fn signs_like_intuit() {
        // docs/vendors/quickbooks.md §5, vector A.
        let body = r#"{"eventNotifications":[{"realmId":"9130357766900000","dataChangeEvent":{"entities":[{"name":"Customer","id":"58","operation":"Update","lastUpdated":"2026-03-02T17:04:11.000Z"}]}}]}"#;
        let token = SecretString::from("c0ffee00-1234-4abc-9def-0123456789ab");
        assert_eq!(
            sign(&token, body.as_bytes()),
            "Bq6czDfnA1GdW2i2YzEbPpdhysEwGpCcIxEdsrkYLs4="
        );
    }

    #[test]
    fn bodies_parse_with_the_products_parser() {
        let token = SecretString::from("t");
        for format in [PayloadFormat::Legacy, PayloadFormat::CloudEvents] {
            for (op, deleted) in [
                (ChangeOp::Create, None),
                (ChangeOp::Update, None),
                (ChangeOp::Merge, Some("27")),
            ] {
                let (body, _) = body(&change(op, deleted), format);
                assert!(verify(
                    &token,
                    body.as_bytes(),
                    &sign(&token, body.as_bytes())
                ));
                let events = parse(body.as_bytes()).unwrap();
                assert_eq!(events.len(), 1, "{body}");
                assert_eq!(events[0].entity_id, "58");
                assert_eq!(events[0].operation, op.legacy().to_lowercase(), "{body}");
                assert_eq!(
                    events[0].detail.get("deleted_id").and_then(|v| v.as_str()),
                    deleted,
                    "{body}"
                );
            }
        }
    }
}
