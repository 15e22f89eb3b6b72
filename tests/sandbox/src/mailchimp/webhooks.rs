//! List webhooks (docs/vendors/mailchimp.md §4): the webhook records, the member events that trigger them,
//! the PHP-style form bodies, the validation GET and the deliveries.
//!
//! - A member event has a type (`subscribe`, `unsubscribe`, `profile`, `upemail`, `cleaned`)
//!   and a source: `user` (the person, through a Mailchimp form), `admin` (someone in the
//!   account, or Mailchimp itself cleaning a bounce) or `api` (a write through the Marketing
//!   API). A webhook receives it when its `events` has the type and its `sources` the source;
//!   a product registering `sources.api = false` therefore never hears its own writes.
//! - Bodies are `application/x-www-form-urlencoded` with bracket keys, built when the change
//!   happens (so `fired_at` is the change's time, as in a retried Mailchimp delivery).
//! - Deliveries are POSTs with User-Agent `MailChimp.com`, made by one task per webhook, in
//!   the order the changes happened. A non-2xx answer or a failed connection is retried after
//!   each of [`super::MailchimpSandboxOptions::webhook_retry_delays`] (Mailchimp retries for
//!   75 minutes, scaled down here); every attempt is recorded ([`ListWebhookDelivery`]).
//! - Creating a webhook first GETs its URL with User-Agent `MailChimp.com WebHook Validator`
//!   and needs a 200 ([`ListWebhookValidation`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::state::MemberState;
use crate::lock;

/// User-Agent of event deliveries.
pub const DELIVERY_USER_AGENT: &str = "MailChimp.com";
/// User-Agent of the GET made when a webhook is created.
pub const VALIDATOR_USER_AGENT: &str = "MailChimp.com WebHook Validator";

/// Which event types / sources a webhook receives: the client's own models, so the flags
/// the sandbox stores are exactly the ones the connector sends and reads.
pub use mlc::vendors::mailchimp::list_webhooks::{
    ListWebhookEvents as WebhookEvents, ListWebhookSources as WebhookSources,
};

/// Whether a webhook with `events` takes `kind`.
pub fn takes_event(events: &WebhookEvents, kind: EventKind) -> bool {
    match kind {
        EventKind::Subscribe => events.subscribe,
        EventKind::Unsubscribe => events.unsubscribe,
        EventKind::Profile => events.profile,
        EventKind::Cleaned => events.cleaned,
        EventKind::Upemail => events.upemail,
    }
}

/// Whether a webhook with `sources` takes changes made by `source`.
pub fn takes_source(sources: &WebhookSources, source: Source) -> bool {
    match source {
        Source::User => sources.user,
        Source::Admin => sources.admin,
        Source::Api => sources.api,
    }
}

/// A list webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookState {
    pub id: String,
    pub url: String,
    pub events: WebhookEvents,
    pub sources: WebhookSources,
}

impl WebhookState {
    /// The API representation.
    pub fn render(&self, list_id: &str) -> Value {
        json!({"id": self.id, "url": self.url, "list_id": list_id, "events": self.events,
            "sources": self.sources, "_links": []})
    }
}

/// A member event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Subscribe,
    Unsubscribe,
    Profile,
    Cleaned,
    Upemail,
}

impl EventKind {
    /// The form's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Subscribe => "subscribe",
            EventKind::Unsubscribe => "unsubscribe",
            EventKind::Profile => "profile",
            EventKind::Cleaned => "cleaned",
            EventKind::Upemail => "upemail",
        }
    }
}

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    User,
    Admin,
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::User => "user",
            Source::Admin => "admin",
            Source::Api => "api",
        }
    }
}

/// One change to a list member, with its delivery body already built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    pub list_id: String,
    pub kind: EventKind,
    pub source: Source,
    /// `YYYY-MM-DD HH:MM:SS`, UTC (Mailchimp's zone is UNCONFIRMED, docs/vendors/mailchimp.md §4).
    pub fired_at: String,
    /// The form-encoded body.
    pub body: String,
}

/// What an event says beyond the member itself.
#[derive(Debug, Clone, Default)]
pub struct EventExtra<'a> {
    /// `data[reason]` (unsubscribe: `manual`/`abuse`; cleaned: `hard`/`abuse`).
    pub reason: Option<&'a str>,
    /// `data[action]` (unsubscribe: `unsub`/`delete`).
    pub action: Option<&'a str>,
    /// upemail: the address before the change.
    pub old_email: Option<&'a str>,
}

/// The member id webhooks carry as `data[id]`: the first 10 hex digits of the subscriber hash,
/// the same value the sandbox answers as `unique_email_id` (docs/vendors/mailchimp.md §4: not the hash).
pub fn member_web_ids(email: &str) -> (String, String) {
    let hash = mlc::vendors::mailchimp::webhook::subscriber_hash(email);
    let id = hash[..10].to_string();
    // A stable number, as Mailchimp's `web_id` is.
    let web_id = u64::from_str_radix(&hash[..8], 16).unwrap_or(0) % 100_000_000;
    (id, web_id.to_string())
}

/// Builds the event of `kind` for `member` (its state after the change).
pub fn member_event(
    list_id: &str,
    kind: EventKind,
    source: Source,
    member: &MemberState,
    extra: &EventExtra<'_>,
) -> MemberEvent {
    let fired_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let email = member.email_address.as_str();
    let (id, web_id) = member_web_ids(email);
    let mut fields: Vec<(String, String)> = vec![
        ("type".into(), kind.as_str().into()),
        ("fired_at".into(), fired_at.clone()),
    ];
    let mut push = |k: &str, v: &str| fields.push((k.to_string(), v.to_string()));
    match kind {
        EventKind::Upemail => {
            push("data[new_id]", &id);
            push("data[new_email]", email);
            push("data[old_email]", extra.old_email.unwrap_or_default());
        }
        EventKind::Cleaned => {
            push("data[email]", email);
            push("data[reason]", extra.reason.unwrap_or("hard"));
        }
        EventKind::Subscribe | EventKind::Unsubscribe | EventKind::Profile => {
            push("data[id]", &id);
            push("data[email]", email);
            push("data[email_type]", "html");
            push("data[ip_opt]", "");
            if kind != EventKind::Profile {
                push("data[ip_signup]", "");
            }
            push("data[web_id]", &web_id);
            push("data[merges][EMAIL]", email);
            for (tag, value) in &member.merge_fields {
                flatten(&format!("data[merges][{tag}]"), value, &mut push);
            }
            if kind == EventKind::Unsubscribe {
                push("data[action]", extra.action.unwrap_or("unsub"));
                push("data[reason]", extra.reason.unwrap_or("manual"));
            }
        }
    }
    push("data[list_id]", list_id);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    MemberEvent {
        list_id: list_id.to_string(),
        kind,
        source,
        fired_at,
        body,
    }
}

/// Nested merge values (an address) become nested bracket keys; other leaves are text.
fn flatten(key: &str, value: &Value, push: &mut impl FnMut(&str, &str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{key}[{k}]"), v, push);
            }
        }
        Value::String(s) => push(key, s),
        Value::Null => push(key, ""),
        other => push(key, &other.to_string()),
    }
}

/// The events a change of a member from `before` to `after` causes (status first, then the
/// profile): a new or re-subscribed member → `subscribe`; now unsubscribed → `unsubscribe`;
/// now cleaned → `cleaned`; otherwise changed merge fields → `profile`.
pub fn diff_events(
    list_id: &str,
    before: Option<&MemberState>,
    after: &MemberState,
    source: Source,
) -> Vec<MemberEvent> {
    let old_status = before.map(|m| m.status.as_str());
    let kind = if old_status != Some(after.status.as_str()) {
        match after.status.as_str() {
            "subscribed" => Some(EventKind::Subscribe),
            "unsubscribed" if before.is_some() => Some(EventKind::Unsubscribe),
            "cleaned" if before.is_some() => Some(EventKind::Cleaned),
            _ => None,
        }
    } else if before.is_some_and(|b| b.merge_fields != after.merge_fields)
        && after.status != "archived"
    {
        Some(EventKind::Profile)
    } else {
        None
    };
    kind.map(|k| member_event(list_id, k, source, after, &EventExtra::default()))
        .into_iter()
        .collect()
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListWebhookDelivery {
    pub list_id: String,
    pub webhook_id: String,
    /// As registered (it holds the receiver's secret; this is a test double).
    pub url: String,
    /// The form's `type`.
    pub event: String,
    /// `user`, `admin` or `api`.
    pub source: String,
    pub fired_at: String,
    /// The form body as sent.
    pub body: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed without an answer.
    pub error: Option<String>,
}

impl ListWebhookDelivery {
    /// Answered 2xx.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One validation GET made when a webhook was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListWebhookValidation {
    pub list_id: String,
    pub url: String,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A queued delivery.
struct Job {
    webhook: WebhookState,
    event: MemberEvent,
}

struct Core {
    http: reqwest::Client,
    retry_delays: Vec<Duration>,
    deliveries: Mutex<Vec<ListWebhookDelivery>>,
    validations: Mutex<Vec<ListWebhookValidation>>,
    /// Deliveries queued and not yet finished (delivered or out of retries).
    pending: AtomicUsize,
}

/// The delivery machinery: one queue and task per webhook.
pub(crate) struct Deliverer {
    core: Arc<Core>,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Deliverer {
    pub(crate) fn new(timeout: Duration, retry_delays: Vec<Duration>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("building the webhook HTTP client: {e}"))?;
        Ok(Self {
            core: Arc::new(Core {
                http,
                retry_delays,
                deliveries: Mutex::new(Vec::new()),
                validations: Mutex::new(Vec::new()),
                pending: AtomicUsize::new(0),
            }),
            queues: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// GETs `url` as Mailchimp's validator does; `Err` carries Mailchimp's message.
    pub(crate) async fn validate(&self, list_id: &str, url: &str) -> Result<(), String> {
        let answer = self
            .core
            .http
            .get(url)
            .header(reqwest::header::USER_AGENT, VALIDATOR_USER_AGENT)
            .send()
            .await;
        let (status, error) = match answer {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        lock(&self.core.validations).push(ListWebhookValidation {
            list_id: list_id.into(),
            url: url.into(),
            status,
            error,
        });
        match status {
            Some(200) => Ok(()),
            // Mailchimp's wording (seen in the wild); "HTTP Code: 0" for no answer is ours.
            code => Err(format!(
                "We couldn't verify the URL is working. Please double check and try again. HTTP Code: {}",
                code.unwrap_or(0)
            )),
        }
    }

    /// Queues `event` for every webhook in `webhooks` that takes its type and source.
    pub(crate) fn enqueue<'a>(
        &self,
        event: &MemberEvent,
        webhooks: impl IntoIterator<Item = &'a WebhookState>,
    ) {
        for webhook in webhooks {
            if !(takes_event(&webhook.events, event.kind)
                && takes_source(&webhook.sources, event.source))
            {
                continue;
            }
            let job = Job {
                webhook: webhook.clone(),
                event: event.clone(),
            };
            self.core.pending.fetch_add(1, Ordering::SeqCst);
            let mut queues = lock(&self.queues);
            let sender = queues
                .entry(webhook.id.clone())
                .or_insert_with(|| self.spawn_worker());
            if let Err(mpsc::error::SendError(job)) = sender.send(job) {
                // The worker is gone (runtime shutting down): record the loss, not hang waits.
                self.core.pending.fetch_sub(1, Ordering::SeqCst);
                self.core
                    .record(&job, 1, None, Some("sandbox delivery task ended".into()));
            }
        }
    }

    /// Stops queueing to a deleted webhook (queued deliveries still go, as already fired).
    pub(crate) fn forget(&self, webhook_id: &str) {
        lock(&self.queues).remove(webhook_id);
    }

    fn spawn_worker(&self) -> mpsc::UnboundedSender<Job> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let core = self.core.clone();
        let task = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                core.deliver(&job).await;
                core.pending.fetch_sub(1, Ordering::SeqCst);
            }
        });
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        tx
    }

    pub(crate) fn deliveries(&self) -> Vec<ListWebhookDelivery> {
        lock(&self.core.deliveries).clone()
    }

    pub(crate) fn validations(&self) -> Vec<ListWebhookValidation> {
        lock(&self.core.validations).clone()
    }

    pub(crate) fn pending(&self) -> usize {
        self.core.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn abort(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl Core {
    async fn deliver(&self, job: &Job) {
        let mut delays = self.retry_delays.iter();
        let mut attempt = 1;
        loop {
            let answer = self
                .http
                .post(&job.webhook.url)
                .header(reqwest::header::USER_AGENT, DELIVERY_USER_AGENT)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(job.event.body.clone())
                .send()
                .await;
            let (status, error) = match answer {
                Ok(r) => (Some(r.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            if self.record(job, attempt, status, error) {
                return;
            }
            match delays.next() {
                Some(delay) => tokio::time::sleep(*delay).await,
                None => return,
            }
            attempt += 1;
        }
    }

    /// Records an attempt; whether it was delivered.
    fn record(&self, job: &Job, attempt: u32, status: Option<u16>, error: Option<String>) -> bool {
        let delivery = ListWebhookDelivery {
            list_id: job.event.list_id.clone(),
            webhook_id: job.webhook.id.clone(),
            url: job.webhook.url.clone(),
            event: job.event.kind.as_str().into(),
            source: job.event.source.as_str().into(),
            fired_at: job.event.fired_at.clone(),
            body: job.event.body.clone(),
            attempt,
            status,
            error,
        };
        let delivered = delivery.delivered();
        lock(&self.deliveries).push(delivery);
        delivered
    }
}

/// The webhooks of a list, by id.
pub type Webhooks = BTreeMap<String, WebhookState>;

#[cfg(test)]
mod tests {
    use super::*;
    use mlc::vendors::mailchimp::webhook::{parse, subscriber_hash};
    use std::collections::{BTreeMap, BTreeSet};

    fn member(email: &str, status: &str) -> MemberState {
        MemberState {
            email_address: email.into(),
            status: status.into(),
            merge_fields: BTreeMap::from([
                ("FNAME".to_string(), json!("Jane & Co")),
                (
                    "ADDRESS".to_string(),
                    json!({"addr1": "1 Main St", "zip": 12345}),
                ),
            ]),
            tags: BTreeSet::new(),
            compliance: false,
            writes: 0,
            meta: Default::default(),
        }
    }

    #[test]
    fn bodies_use_bracket_keys_and_parse_back() {
        let m = member("jane@example.com", "unsubscribed");
        let e = member_event(
            "a1b2c3d4e5",
            EventKind::Unsubscribe,
            Source::User,
            &m,
            &EventExtra::default(),
        );
        let form = mlc::vendors::form::Form::parse(e.body.as_bytes()).unwrap();
        assert_eq!(form.get("type"), Some("unsubscribe"));
        assert_eq!(form.get("data[merges][FNAME]"), Some("Jane & Co"));
        assert_eq!(form.get("data[merges][ADDRESS][zip]"), Some("12345"));
        assert_eq!(form.get("data[reason]"), Some("manual"));
        assert_eq!(form.get("data[action]"), Some("unsub"));
        assert_eq!(form.get("data[id]").map(str::len), Some(10));
        assert_eq!(form.get("fired_at").map(str::len), Some(19));
        let parsed = parse(e.body.as_bytes(), "a1b2c3d4e5").unwrap();
        assert_eq!(parsed.operation, "unsubscribe");
        assert_eq!(parsed.entity_id, subscriber_hash("jane@example.com"));

        let up = member_event(
            "a1b2c3d4e5",
            EventKind::Upemail,
            Source::User,
            &member("new@example.com", "subscribed"),
            &EventExtra {
                old_email: Some("old@example.com"),
                ..EventExtra::default()
            },
        );
        let form = mlc::vendors::form::Form::parse(up.body.as_bytes()).unwrap();
        assert_eq!(form.get("data[old_email]"), Some("old@example.com"));
        assert_eq!(form.get("data[email]"), None);
    }

    #[test]
    fn diffs_name_the_status_change_first() {
        let sub = member("a@example.com", "subscribed");
        let kinds = |before: Option<&MemberState>, after: &MemberState| -> Vec<EventKind> {
            diff_events("l", before, after, Source::Api)
                .into_iter()
                .map(|e| e.kind)
                .collect()
        };
        assert_eq!(kinds(None, &sub), [EventKind::Subscribe]);
        assert_eq!(kinds(None, &member("a@example.com", "transactional")), []);
        let mut changed = sub.clone();
        changed.merge_fields.insert("LNAME".into(), json!("Doe"));
        assert_eq!(kinds(Some(&sub), &changed), [EventKind::Profile]);
        assert_eq!(kinds(Some(&sub), &sub), []);
        assert_eq!(
            kinds(Some(&sub), &member("a@example.com", "unsubscribed")),
            [EventKind::Unsubscribe]
        );
    }

    #[test]
    fn filters_need_type_and_source() {
        let sources = WebhookSources::not_api();
        assert!(takes_source(&sources, Source::User) && takes_source(&sources, Source::Admin));
        assert!(!takes_source(&sources, Source::Api));
        assert!(takes_event(&WebhookEvents::members(), EventKind::Upemail));
        assert!(!takes_event(
            &WebhookEvents::default(),
            EventKind::Subscribe
        ));
    }
}
