//! Deliveries and events the webhook keeps instead of queueing.

use chrono::Duration;
use sha2::{Digest, Sha256};

use super::WebhookHandler;
use crate::observability::{self, Metric};
use crate::ports::{DeadLetter, DeadLetterStatus};
use crate::vendor::Vendor;
use crate::vendors::ingress::{Rejection, WebhookResponse, response};

/// Bodies up to this size are kept inline in the dead-letter item; larger ones as a blob.
const INLINE_PAYLOAD_BYTES: usize = 64 * 1024;

impl WebhookHandler {
    /// A signed delivery we cannot read: keep it with the reason and acknowledge it, so the
    /// vendor does not retry (QuickBooks would block later events behind it).
    pub(super) async fn dead_letter_delivery(
        &self,
        vendor: Vendor,
        body: &[u8],
        reason: &str,
    ) -> Result<WebhookResponse, Rejection> {
        let digest = hex::encode(&Sha256::digest(body)[..16]);
        let id = format!("webhook:{vendor}:{digest}");
        let payload = match std::str::from_utf8(body) {
            Ok(text) if text.len() <= INLINE_PAYLOAD_BYTES => text.to_string(),
            _ => {
                let key = format!("delivery/{vendor}/{digest}");
                self.store.put_blob(&key, body, Some(self.expiry())).await?;
                format!("blob:{key}")
            }
        };
        let letter = DeadLetter {
            id: id.clone(),
            stage: format!("webhook:{vendor}"),
            queue: None,
            event_id: None,
            record_key: None,
            connection: None,
            error_class: "unparseable".to_string(),
            reason: reason.to_string(),
            vendor_request_id: None,
            attempts: 1,
            payload,
            status: DeadLetterStatus::Open,
            created_at: self.clock.now(),
            resolved_at: None,
            expires_at: Some(self.expiry()),
        };
        self.store.put_dead_letter(&letter).await?;
        observability::count(Metric::DeadLettered, 1);
        tracing::warn!(vendor = %vendor, dead_letter = %id, reason, "signed delivery could not be parsed; dead-lettered");
        Ok(response::accepted(0, 0, 1))
    }

    pub(super) fn expiry(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
            + Duration::from_std(self.config.dead_letter_ttl).unwrap_or(Duration::days(365))
    }
}
