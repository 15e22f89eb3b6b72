//! List webhooks through the Marketing API (docs/vendors/mailchimp.md §4): reading a list's webhooks and
//! registering ours. Inherent methods of [`MailchimpClient`], not of the
//! [`MailchimpApi`](super::MailchimpApi) trait: only onboarding registers webhooks, the flows
//! never do.
//!
//! Ours takes every member event (`subscribe`, `unsubscribe`, `profile`, `cleaned`,
//! `upemail`; no `campaign`) from the sources `user` and `admin` but not `api`, so the
//! connector's own member writes do not come back to it as webhooks (loop prevention).
//!
//! The webhook URL carries the receiver's secret as its last path segment (Mailchimp signs
//! nothing), so a [`ListWebhook`]'s `Debug` shows the URL with that segment (and any query)
//! redacted.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::MailchimpClient;
use super::error::MailchimpError;

/// Which events a list webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListWebhookEvents {
    /// A member subscribed.
    pub subscribe: bool,
    /// A member unsubscribed (or was deleted).
    pub unsubscribe: bool,
    /// A member's profile (merge fields) changed.
    pub profile: bool,
    /// An address was cleaned (bounced or abuse report).
    pub cleaned: bool,
    /// A member changed their email address.
    pub upemail: bool,
    /// A campaign was sent or cancelled; the connector does not take these.
    pub campaign: bool,
}

impl ListWebhookEvents {
    /// Every member event, no campaign events: what the connector registers.
    pub fn members() -> Self {
        Self {
            subscribe: true,
            unsubscribe: true,
            profile: true,
            cleaned: true,
            upemail: true,
            campaign: false,
        }
    }
}

/// Which sources of change a list webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListWebhookSources {
    /// The person, through Mailchimp's forms and emails.
    pub user: bool,
    /// Someone in the Mailchimp account (and Mailchimp itself).
    pub admin: bool,
    /// Writes through the Marketing API, the connector's own included.
    pub api: bool,
}

impl ListWebhookSources {
    /// `user` and `admin`, not `api`: what the connector registers (loop prevention).
    pub fn not_api() -> Self {
        Self {
            user: true,
            admin: true,
            api: false,
        }
    }
}

/// A list webhook as Mailchimp answers it (fields the connector does not use are ignored,
/// e.g. the SMS events of newer responses).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListWebhook {
    /// Mailchimp's id for the webhook, to delete it by.
    pub id: String,
    /// Holds the receiver's secret: never log it (use `Debug`, which redacts it).
    pub url: String,
    /// The events it receives.
    #[serde(default)]
    pub events: ListWebhookEvents,
    /// The sources of change it receives.
    #[serde(default)]
    pub sources: ListWebhookSources,
}

impl std::fmt::Debug for ListWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListWebhook")
            .field("id", &self.id)
            .field("url", &redact_url(&self.url))
            .field("events", &self.events)
            .field("sources", &self.sources)
            .finish()
    }
}

/// `url` with its last path segment replaced by `<redacted>` and any query or fragment
/// dropped (a secret may sit there too); `<redacted url>` when it does not parse.
fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<redacted url>".into();
    };
    parsed.set_query(None);
    parsed.set_fragment(None);
    // Userinfo would be a credential as well.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let segments: Vec<String> = parsed
        .path_segments()
        .map(|s| s.map(str::to_string).collect())
        .unwrap_or_default();
    // The secret is the last non-empty segment (a trailing slash leaves an empty one).
    let Some(last) = segments.iter().rposition(|s| !s.is_empty()) else {
        return parsed.to_string();
    };
    if let Ok(mut path) = parsed.path_segments_mut() {
        path.clear();
        for (i, segment) in segments.iter().enumerate() {
            path.push(if i == last { "<redacted>" } else { segment });
        }
    }
    // `<` and `>` are percent-encoded in a path; show the marker as written.
    parsed.to_string().replace("%3Credacted%3E", "<redacted>")
}

#[derive(Deserialize)]
struct ListWebhookPage {
    #[serde(default)]
    webhooks: Vec<ListWebhook>,
}

#[derive(Serialize)]
struct NewListWebhook<'a> {
    url: &'a str,
    events: ListWebhookEvents,
    sources: ListWebhookSources,
}

impl MailchimpClient {
    /// `GET /lists/{list_id}/webhooks`: the list's webhooks (Mailchimp does not page them).
    pub async fn list_webhooks(&self, list_id: &str) -> Result<Vec<ListWebhook>, MailchimpError> {
        let page: ListWebhookPage = self
            .request_json(Method::GET, &["lists", list_id, "webhooks"], &[], None)
            .await?;
        Ok(page.webhooks)
    }

    /// `POST /lists/{list_id}/webhooks` with every member event from the sources `user` and
    /// `admin` (not `api`). Mailchimp first GETs `url` and needs a 200; otherwise it answers
    /// 400 (`MailchimpError::Api`, detail "We couldn't verify the URL is working…"), and a URL
    /// already registered on the list is refused too.
    pub async fn create_list_webhook(
        &self,
        list_id: &str,
        url: &str,
    ) -> Result<ListWebhook, MailchimpError> {
        let body = NewListWebhook {
            url,
            events: ListWebhookEvents::members(),
            sources: ListWebhookSources::not_api(),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| MailchimpError::InvalidArgument(e.to_string()))?;
        self.request_json(
            Method::POST,
            &["lists", list_id, "webhooks"],
            &[],
            Some(body),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret_segment() {
        let hook = ListWebhook {
            id: "5d9a5e3f7b".into(),
            url: "https://alice:pw-9@hooks.example.com/mc/acme/s3cr3t-token?key=k2z#f".into(),
            events: ListWebhookEvents::members(),
            sources: ListWebhookSources::not_api(),
        };
        let debug = format!("{hook:?}");
        for secret in ["s3cr3t-token", "k2z", "pw-9", "alice"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(
            debug.contains("https://hooks.example.com/mc/acme/<redacted>"),
            "{debug}"
        );
        assert_eq!(
            redact_url("https://h.example.com/mc/acme/secret/"),
            "https://h.example.com/mc/acme/<redacted>/"
        );
        assert_eq!(
            redact_url("https://h.example.com/"),
            "https://h.example.com/"
        );
        assert_eq!(redact_url("not a url s3cr3t"), "<redacted url>");
    }

    #[test]
    fn the_registration_body_leaves_out_api_writes() {
        let body = serde_json::to_value(NewListWebhook {
            url: "https://h.example.com/x",
            events: ListWebhookEvents::members(),
            sources: ListWebhookSources::not_api(),
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"url": "https://h.example.com/x",
                "events": {"subscribe": true, "unsubscribe": true, "profile": true,
                           "cleaned": true, "upemail": true, "campaign": false},
                "sources": {"user": true, "admin": true, "api": false}})
        );
        // Flags a response leaves out read as off; extra ones (SMS events) are ignored.
        let hook: ListWebhook = serde_json::from_value(serde_json::json!({
            "id": "a", "url": "u", "events": {"subscribe": true, "sms_subscribe": true}
        }))
        .unwrap();
        assert!(hook.events.subscribe && !hook.events.profile && !hook.sources.api);
    }
}
