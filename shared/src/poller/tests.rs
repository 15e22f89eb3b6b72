//! The jobs on the embedded adapters, with an in-memory FreshBooks and token refresher.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::adapters::embedded::EmbeddedDb;
use crate::connections::ConnectionSet;
use crate::event::{Origin, SourceRef, SyncEvent, derived_event_id};
use crate::ports::{
    ConnectionStore, Cursors, DeadLetterStatus, DeadLetters, IdMap, Leases, ManualClock,
    OutgoingMessage, PortResult, QueueDepth, ReceivedMessage, SendFailure,
};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::models::{Changed, Client, Entity, Invoice, Payment};
use crate::vendors::freshbooks::{FreshbooksApi, FreshbooksError};
use crate::vendors::mailchimp::MailchimpApi;
use crate::worker::HandlerError;

const CONNECTIONS: &str = r#"
[connection.fb-mc]
source = { vendor = "freshbooks", account = "ACC1", credentials = "fb1" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1", store_id = "s1" }
[connection.fb-hs]
source = { vendor = "freshbooks", account = "ACC1", credentials = "fb1" }
target = { vendor = "hubspot", credentials = "hs", portal_id = "1" }
[connection.fb2-mc]
source = { vendor = "freshbooks", account = "ACC2", credentials = "fb2" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
[connection.off]
source = { vendor = "freshbooks", account = "ACC3", credentials = "fb3" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l3" }
enabled = false
[connection.stripe-fb]
source = { vendor = "stripe", account = "acct_1", credentials = "st" }
target = { vendor = "freshbooks", credentials = "fb4", account = "ACC4" }
"#;

/// 2026-02-25 03:00 UTC: still the 24th in US/Eastern (UTC−5), so a UTC date would be wrong.
fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-25T03:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn changed(entity: Entity, id: &str, updated: &str, deleted: bool) -> Changed {
    Changed {
        entity,
        id: id.into(),
        updated: Some(updated.into()),
        deleted,
    }
}

/// One FreshBooks account set: what `changed_since` lists per (account, entity), whether an
/// account fails, and every listing call made.
#[derive(Default)]
struct FakeFreshbooks {
    records: Mutex<HashMap<(String, Entity), Vec<Changed>>>,
    failing: Mutex<Vec<String>>,
    calls: Mutex<Vec<(String, Entity, NaiveDate)>>,
}

impl FakeFreshbooks {
    fn set(&self, account: &str, entity: Entity, records: Vec<Changed>) {
        self.records
            .lock()
            .unwrap()
            .insert((account.into(), entity), records);
    }

    fn calls(&self) -> Vec<(String, Entity, NaiveDate)> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl FreshbooksApi for FakeFreshbooks {
    async fn client(&self, _: &str, _: &str) -> Result<Option<Client>, FreshbooksError> {
        Ok(None)
    }
    async fn invoice(&self, _: &str, _: &str) -> Result<Option<Invoice>, FreshbooksError> {
        Ok(None)
    }
    async fn invoices_for_client(&self, _: &str, _: &str) -> Result<Vec<Invoice>, FreshbooksError> {
        Ok(Vec::new())
    }
    async fn payment(&self, _: &str, _: &str) -> Result<Option<Payment>, FreshbooksError> {
        Ok(None)
    }
    async fn changed_since(
        &self,
        account: &str,
        entity: Entity,
        since: NaiveDate,
    ) -> Result<Vec<Changed>, FreshbooksError> {
        self.calls
            .lock()
            .unwrap()
            .push((account.into(), entity, since));
        if self.failing.lock().unwrap().iter().any(|a| a == account) {
            return Err(FreshbooksError::Api {
                status: 503,
                errno: None,
                message: "injected outage".into(),
            });
        }
        Ok(self
            .records
            .lock()
            .unwrap()
            .get(&(account.to_string(), entity))
            .cloned()
            .unwrap_or_default())
    }
}

struct FakeClients {
    fb: Arc<FakeFreshbooks>,
}

#[async_trait]
impl VendorClients for FakeClients {
    async fn freshbooks(&self, credentials: &str) -> Result<Arc<dyn FreshbooksApi>, HandlerError> {
        match credentials {
            "fb1" | "fb2" => Ok(self.fb.clone()),
            other => Err(HandlerError::permanent(
                "credentials_missing",
                format!("no credential set `{other}`"),
            )),
        }
    }
    async fn mailchimp(&self, credentials: &str) -> Result<Arc<dyn MailchimpApi>, HandlerError> {
        Err(HandlerError::permanent(
            "credentials_missing",
            format!("not in this test: `{credentials}`"),
        ))
    }
}

/// Refreshes what it is told to, fails for `broken`, records the calls.
#[derive(Default)]
struct FakeTokens {
    expiring: Vec<&'static str>,
    broken: Vec<&'static str>,
    calls: Mutex<Vec<(String, Duration)>>,
}

#[async_trait]
impl TokenRefresher for FakeTokens {
    async fn refresh_if_expiring(
        &self,
        credentials: &str,
        margin: Duration,
    ) -> Result<bool, RefreshError> {
        self.calls
            .lock()
            .unwrap()
            .push((credentials.into(), margin));
        if self.broken.contains(&credentials) {
            return Err(RefreshError(format!(
                "connection broken: re-authorise FreshBooks for credential set `{credentials}`"
            )));
        }
        Ok(self.expiring.contains(&credentials))
    }
}

/// The embedded queue, or a refusal of every send while `down` is set.
struct SwitchableQueue {
    db: EmbeddedDb,
    down: AtomicBool,
}

#[async_trait]
impl Queue for SwitchableQueue {
    async fn send_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> PortResult<Vec<SendFailure>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::backend("sqs", "injected outage"));
        }
        self.db.send_batch(queue, messages).await
    }
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        self.db.receive(queue, max, visibility).await
    }
    async fn delete(&self, queue: &str, receipt: &str) -> PortResult<()> {
        self.db.delete(queue, receipt).await
    }
    async fn change_visibility(&self, queue: &str, receipt: &str, t: Duration) -> PortResult<()> {
        self.db.change_visibility(queue, receipt, t).await
    }
    async fn move_to_dead_letter(&self, queue: &str, m: &ReceivedMessage) -> PortResult<()> {
        self.db.move_to_dead_letter(queue, m).await
    }
    async fn redrive(&self, queue: &str) -> PortResult<String> {
        self.db.redrive(queue).await
    }
    async fn depth(&self, queue: &str) -> PortResult<QueueDepth> {
        self.db.depth(queue).await
    }
}

struct Fixture {
    poller: Poller,
    db: EmbeddedDb,
    clock: Arc<ManualClock>,
    fb: Arc<FakeFreshbooks>,
    tokens: Arc<FakeTokens>,
    queue: Arc<SwitchableQueue>,
}

async fn fixture_with(tokens: FakeTokens) -> Fixture {
    let clock = Arc::new(ManualClock::new(start()));
    let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
    db.declare_queue("mailchimp", 5, Duration::from_secs(30))
        .await
        .unwrap();
    db.put_connections(&ConnectionSet::from_toml(CONNECTIONS, "test").unwrap())
        .await
        .unwrap();
    let fb = Arc::new(FakeFreshbooks::default());
    let tokens = Arc::new(tokens);
    let queue = Arc::new(SwitchableQueue {
        db: db.clone(),
        down: AtomicBool::new(false),
    });
    let deps = PollerDeps {
        queue: queue.clone(),
        store: Arc::new(db.clone()),
        clock: clock.clone(),
        clients: Arc::new(FakeClients { fb: fb.clone() }),
        tokens: tokens.clone(),
    };
    Fixture {
        poller: Poller::new(deps, PollerConfig::default()),
        db,
        clock,
        fb,
        tokens,
        queue,
    }
}

async fn fixture() -> Fixture {
    fixture_with(FakeTokens::default()).await
}

async fn drain(f: &Fixture, queue: &str) -> Vec<SyncEvent> {
    let mut out = Vec::new();
    loop {
        let msgs =
            f.db.receive(queue, 10, Duration::from_secs(30))
                .await
                .unwrap();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(SyncEvent::from_json(&m.body).unwrap());
            f.db.delete(queue, &m.receipt).await.unwrap();
        }
    }
}

fn acc1() -> SourceRef {
    SourceRef {
        vendor: Vendor::Freshbooks,
        account: "ACC1".into(),
    }
}

#[tokio::test]
async fn first_run_lists_from_yesterday_in_eastern_time_and_fans_out_like_the_webhook() {
    let f = fixture().await;
    f.fb.set(
        "ACC1",
        Entity::Client,
        vec![changed(Entity::Client, "11", "2026-02-24 21:40:00", false)],
    );
    f.fb.set(
        "ACC1",
        Entity::Invoice,
        vec![changed(Entity::Invoice, "22", "2026-02-24 20:00:00", true)],
    );
    f.fb.set(
        "ACC1",
        Entity::Payment,
        vec![changed(Entity::Payment, "33", "2026-02-23 08:00:00", false)],
    );

    let report = f.poller.run_job(Job::FreshbooksPoll).await.unwrap();

    // Today in US/Eastern is the 24th; first run: one day back.
    let calls = f.fb.calls();
    assert_eq!(
        calls.len(),
        6,
        "three entities for each of ACC1 and ACC2: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|(_, _, since)| *since == date("2026-02-23"))
    );
    assert!(
        !calls.iter().any(|(a, _, _)| a == "ACC3" || a == "ACC4"),
        "disabled connections and FreshBooks targets are not polled"
    );

    let acc1_report = report.polled.iter().find(|p| p.account == "ACC1").unwrap();
    assert_eq!(
        (
            acc1_report.listed,
            acc1_report.new,
            acc1_report.queued,
            acc1_report.dead_lettered
        ),
        (3, 3, 3, 3)
    );
    assert_eq!(acc1_report.cursor, date("2026-02-24"));

    let mut events = drain(&f, "mailchimp").await;
    events.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.connection.as_str(),
                e.entity.as_str(),
                e.entity_id.as_str(),
                e.operation.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("fb-mc", "client", "11", "update"),
            ("fb-mc", "invoice", "22", "delete"),
            ("fb-mc", "payment", "33", "update"),
        ]
    );
    assert!(events.iter().all(|e| e.origin == Origin::Poll));
    assert_eq!(
        events[0].event_id,
        derived_event_id(&acc1(), "client", "11", "update", "2026-02-24 21:40:00")
    );
    // 21:40 EST is 02:40 UTC the next day.
    assert_eq!(
        events[0].occurred_at,
        Some(
            DateTime::parse_from_rfc3339("2026-02-25T02:40:00Z")
                .unwrap()
                .with_timezone(&Utc)
        )
    );

    // fb-hs targets HubSpot, which has no queue here: dead letters, as from the webhook.
    let dead =
        f.db.list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap();
    assert_eq!(dead.len(), 3);
    assert!(dead.iter().all(|d| d.stage == "poll:freshbooks"
        && d.error_class == "no_queue"
        && d.connection.as_deref() == Some("fb-hs")));

    assert_eq!(
        f.db.get_cursor("poll:freshbooks:ACC1")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-02-24")
    );
}

#[tokio::test]
async fn the_next_run_overlaps_a_day_and_drops_what_it_has_seen() {
    let f = fixture().await;
    let client = changed(Entity::Client, "11", "2026-02-24 09:00:00", false);
    let invoice = changed(Entity::Invoice, "22", "2026-02-24 10:00:00", false);
    f.fb.set("ACC1", Entity::Client, vec![client.clone()]);
    f.fb.set("ACC1", Entity::Invoice, vec![invoice.clone()]);
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert_eq!(drain(&f, "mailchimp").await.len(), 2);
    f.fb.calls();

    // Two days later (Eastern 26th): since = cursor (24th) − 1. The invoice was updated again
    // and deleted; the client is listed again, unchanged.
    f.clock.advance(chrono::Duration::days(2));
    let invoice_deleted = changed(Entity::Invoice, "22", "2026-02-26 08:00:00", true);
    f.fb.set("ACC1", Entity::Invoice, vec![invoice_deleted]);
    let report = f.poller.run_job(Job::FreshbooksPoll).await.unwrap();

    let calls = f.fb.calls();
    assert!(
        calls
            .iter()
            .filter(|(a, _, _)| a == "ACC1")
            .all(|(_, _, since)| *since == date("2026-02-23")),
        "{calls:?}"
    );
    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].entity_id.as_str(), events[0].operation.as_str()),
        ("22", "delete")
    );
    let acc1 = report.polled.iter().find(|p| p.account == "ACC1").unwrap();
    assert_eq!((acc1.listed, acc1.new), (2, 1));
    assert_eq!(acc1.cursor, date("2026-02-26"));

    // A third run with nothing new enqueues nothing.
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert!(drain(&f, "mailchimp").await.is_empty());
}

#[tokio::test]
async fn a_deletion_that_keeps_updated_is_still_a_change() {
    let f = fixture().await;
    f.fb.set(
        "ACC2",
        Entity::Client,
        vec![changed(Entity::Client, "5", "2026-02-24 09:00:00", false)],
    );
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert_eq!(drain(&f, "mailchimp").await.len(), 1);
    f.fb.set(
        "ACC2",
        Entity::Client,
        vec![changed(Entity::Client, "5", "2026-02-24 09:00:00", true)],
    );
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].operation, "delete");
    assert_eq!(events[0].connection, "fb2-mc");
}

#[tokio::test]
async fn one_failing_account_does_not_stop_the_others_but_fails_the_job() {
    let f = fixture().await;
    f.fb.failing.lock().unwrap().push("ACC1".into());
    f.fb.set(
        "ACC2",
        Entity::Invoice,
        vec![changed(Entity::Invoice, "9", "2026-02-24 09:00:00", false)],
    );

    let err = f.poller.run_job(Job::FreshbooksPoll).await.unwrap_err();
    let JobError::Failed(report) = &err else {
        panic!("expected a partial failure, got {err}");
    };
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].name, "freshbooks/ACC1");
    assert!(
        report.failures[0].error.contains("injected outage"),
        "{err}"
    );
    assert_eq!(report.polled.len(), 1);
    assert_eq!(report.polled[0].account, "ACC2");

    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].connection, "fb2-mc");
    assert_eq!(
        f.db.get_cursor("poll:freshbooks:ACC1")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-02-24"),
        "the failed account's window still starts where it started"
    );
    assert!(
        f.db.get_cursor("poll:freshbooks:ACC2")
            .await
            .unwrap()
            .is_some()
    );

    // The Lambda reports it as an invocation error.
    let lambda =
        lambda::handle_event(&f.poller, &serde_json::json!({"job": "freshbooks_poll"})).await;
    assert!(lambda.is_err());
}

#[tokio::test]
async fn the_cursor_and_seen_markers_move_only_after_the_enqueue() {
    let f = fixture().await;
    // A quiet first day sets ACC2's cursor to the 24th.
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert_eq!(
        f.db.get_cursor("poll:freshbooks:ACC2")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-02-24")
    );

    // On the 26th a change is listed but the queue is down.
    f.clock.advance(chrono::Duration::days(2));
    f.fb.set(
        "ACC2",
        Entity::Client,
        vec![changed(Entity::Client, "5", "2026-02-25 09:00:00", false)],
    );
    f.queue.down.store(true, Ordering::SeqCst);
    let err = f.poller.run_job(Job::FreshbooksPoll).await.unwrap_err();
    assert!(err.to_string().contains("freshbooks/ACC2"), "{err}");
    assert_eq!(
        f.db.get_cursor("poll:freshbooks:ACC2")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-02-24"),
        "a failed enqueue leaves the cursor"
    );
    assert_eq!(
        f.db.get_mapping("poll:freshbooks:ACC2", "freshbooks:ACC2:client:5")
            .await
            .unwrap(),
        None,
        "and writes no seen marker"
    );

    // On the 27th the queue is back: the window from the 23rd is listed again and the record
    // enqueued.
    f.queue.down.store(false, Ordering::SeqCst);
    f.clock.advance(chrono::Duration::days(1));
    f.fb.calls();
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    let calls = f.fb.calls();
    assert!(
        calls
            .iter()
            .filter(|(a, _, _)| a == "ACC2")
            .all(|(_, _, since)| *since == date("2026-02-23")),
        "{calls:?}"
    );
    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1);
    let marker =
        f.db.get_mapping("poll:freshbooks:ACC2", "freshbooks:ACC2:client:5")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(marker.fingerprint, "2026-02-25 09:00:00");
    assert_eq!(
        f.db.get_cursor("poll:freshbooks:ACC2")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-02-27")
    );
}

#[tokio::test]
async fn an_unreadable_cursor_fails_its_account_with_a_fix() {
    let f = fixture().await;
    f.db.put_cursor("poll:freshbooks:ACC1", "yesterday")
        .await
        .unwrap();
    let err = f.poller.run_job(Job::FreshbooksPoll).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("poll:freshbooks:ACC1") && text.contains("YYYY-MM-DD"),
        "{text}"
    );
}

#[tokio::test]
async fn a_run_that_finds_the_lease_taken_does_nothing() {
    let f = fixture().await;
    assert!(
        f.db.acquire_lease(
            "poller:freshbooks_poll",
            "other",
            start(),
            Duration::from_secs(600)
        )
        .await
        .unwrap()
    );
    let report = f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert!(report.skipped_busy);
    assert!(f.fb.calls().is_empty());
    // The lease is released after a run, so the next one is not blocked.
    f.db.release_lease("poller:freshbooks_poll", "other")
        .await
        .unwrap();
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    f.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert_eq!(f.fb.calls().len(), 12);
}

#[tokio::test]
async fn token_refresh_covers_every_freshbooks_credential_set_with_a_two_hour_margin() {
    let f = fixture_with(FakeTokens {
        expiring: vec!["fb2"],
        broken: vec!["fb1"],
        ..FakeTokens::default()
    })
    .await;
    let err = f.poller.run_job(Job::TokenRefresh).await.unwrap_err();
    let JobError::Failed(report) = err else {
        panic!("fb1 is broken");
    };
    let calls: HashMap<String, Duration> = f.tokens.calls.lock().unwrap().iter().cloned().collect();
    // fb3 belongs to a disabled connection; fb4 is a FreshBooks *target*'s set.
    let mut names: Vec<_> = calls.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["fb1", "fb2", "fb4"]);
    assert!(calls.values().all(|m| *m == Duration::from_secs(7200)));
    assert_eq!(
        report.refreshed,
        [
            CredentialRefresh {
                credentials: "fb2".into(),
                refreshed: true
            },
            CredentialRefresh {
                credentials: "fb4".into(),
                refreshed: false
            },
        ]
    );
    assert_eq!(report.failures[0].name, "credentials/fb1");
}
