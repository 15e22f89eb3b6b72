//! The jobs on the embedded adapters, with an in-memory FreshBooks and token refresher.

use std::collections::{BTreeSet, HashMap};
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
use crate::vendors::quickbooks::QuickbooksApi;
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
    async fn bill_vendor(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<crate::vendors::freshbooks::models::BillVendor>, FreshbooksError> {
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
    async fn quickbooks(&self, credentials: &str) -> Result<Arc<dyn QuickbooksApi>, HandlerError> {
        Err(HandlerError::permanent(
            "credentials_missing",
            format!("not in this test: `{credentials}`"),
        ))
    }
    async fn hubspot(
        &self,
        credentials: &str,
    ) -> Result<Arc<dyn crate::vendors::hubspot::HubspotApi>, HandlerError> {
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
    db.put_connections(&ConnectionSet::from_toml_any_flow(CONNECTIONS, "test").unwrap())
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
        refreshers: Refreshers::from([(
            Vendor::Freshbooks,
            tokens.clone() as Arc<dyn TokenRefresher>,
        )]),
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
    drain_queue(&f.db, queue).await
}

async fn drain_mailchimp(db: &EmbeddedDb) -> Vec<SyncEvent> {
    drain_queue(db, "mailchimp").await
}

/// Every event waiting in `queue`, deleted as read.
async fn drain_queue(db: &EmbeddedDb, queue: &str) -> Vec<SyncEvent> {
    let mut out = Vec::new();
    loop {
        let msgs = db
            .receive(queue, 10, Duration::from_secs(30))
            .await
            .unwrap();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(SyncEvent::from_json(&m.body).unwrap());
            db.delete(queue, &m.receipt).await.unwrap();
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
        7,
        "ACC1's four entities (fb-hs reads bill vendors) and ACC2's three: {calls:?}"
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

#[test]
fn an_account_polls_what_its_connections_flows_need() {
    use super::freshbooks_poll::entities_for;
    let set = ConnectionSet::from_toml_any_flow(CONNECTIONS, "test").unwrap();
    let of = |account: &str| {
        let source = SourceRef {
            vendor: Vendor::Freshbooks,
            account: account.into(),
        };
        set.for_source(&source)
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>()
    };
    let mailchimp_only = [Entity::Client, Entity::Invoice, Entity::Payment];
    // FreshBooks → HubSpot (fb-hs) reads bill vendors: its account polls them, and only it.
    assert_eq!(
        entities_for(&of("ACC1")),
        [
            Entity::Client,
            Entity::Invoice,
            Entity::Payment,
            Entity::BillVendor
        ]
    );
    assert_eq!(entities_for(&of("ACC2")), mailchimp_only);
}

#[tokio::test]
async fn bill_vendors_are_polled_when_a_connection_needs_them() {
    let f = fixture().await;
    f.fb.set(
        "ACC1",
        Entity::BillVendor,
        vec![changed(
            Entity::BillVendor,
            "44",
            "2026-02-24 10:00:00",
            false,
        )],
    );
    let set = ConnectionSet::from_toml_any_flow(CONNECTIONS, "test").unwrap();
    let needed = super::freshbooks_poll::entities_for(
        set.connections
            .values()
            .filter(|c| c.source.account.as_deref() == Some("ACC1")),
    );

    let poll = f
        .poller
        .poll_account(&set, "ACC1", &["fb1".to_string()], &needed)
        .await
        .unwrap();

    let listed: Vec<Entity> = f.fb.calls().into_iter().map(|(_, e, _)| e).collect();
    assert_eq!(listed, needed);
    assert_eq!((poll.listed, poll.new), (1, 1));
    // Fanned out like any change; the Mailchimp flow skips bill vendors when it handles them.
    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].entity.as_str(), events[0].entity_id.as_str()),
        ("bill_vendor", "44")
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
    // Two runs of four entities for ACC1 (fb-hs reads bill vendors) and three for ACC2.
    assert_eq!(f.fb.calls().len(), 14);
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

// ------------------------------------------------------------------------- QuickBooks jobs

mod quickbooks {
    use super::*;
    use crate::poller::quickbooks_cdc::{CURSOR_OVERLAP, CUSTOMER};
    use crate::testing::quickbooks_fake::{FakeQuickbooks, method, throttled};

    fn cursor_name(realm: &str) -> String {
        crate::poller::cursor_name(Vendor::Quickbooks, realm)
    }

    /// R1 feeds two audiences, R2 one; R3 is only a target (Mailchimp → QuickBooks), R4's
    /// connection is disabled.
    const QB_CONNECTIONS: &str = r#"
[connection.qb-mc]
source = { vendor = "quickbooks", account = "R1", credentials = "qb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.qb-mc2]
source = { vendor = "quickbooks", account = "R1", credentials = "qb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
[connection.qb2-mc]
source = { vendor = "quickbooks", account = "R2", credentials = "qb2" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l3" }
[connection.mc-qb]
source = { vendor = "mailchimp", account = "l1", credentials = "mc" }
target = { vendor = "quickbooks", credentials = "qb3", realm_id = "R3" }
[connection.qb-off]
source = { vendor = "quickbooks", account = "R4", credentials = "qb4" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l4" }
enabled = false
"#;

    /// One fake company per QuickBooks credential set (`qb` → R1, `qb2` → R2).
    struct Realms {
        r1: Arc<FakeQuickbooks>,
        r2: Arc<FakeQuickbooks>,
    }

    #[async_trait]
    impl VendorClients for Realms {
        async fn freshbooks(&self, name: &str) -> Result<Arc<dyn FreshbooksApi>, HandlerError> {
            Err(HandlerError::permanent("credentials_missing", name))
        }
        async fn mailchimp(&self, name: &str) -> Result<Arc<dyn MailchimpApi>, HandlerError> {
            Err(HandlerError::permanent("credentials_missing", name))
        }
        async fn quickbooks(&self, name: &str) -> Result<Arc<dyn QuickbooksApi>, HandlerError> {
            match name {
                "qb" => Ok(self.r1.clone()),
                "qb2" => Ok(self.r2.clone()),
                other => Err(HandlerError::permanent(
                    "credentials_missing",
                    format!("no credential set `{other}`"),
                )),
            }
        }
        async fn hubspot(
            &self,
            name: &str,
        ) -> Result<Arc<dyn crate::vendors::hubspot::HubspotApi>, HandlerError> {
            Err(HandlerError::permanent("credentials_missing", name))
        }
    }

    struct QbFixture {
        poller: Poller,
        db: EmbeddedDb,
        r1: Arc<FakeQuickbooks>,
        r2: Arc<FakeQuickbooks>,
        queue: Arc<SwitchableQueue>,
        fb_tokens: Arc<FakeTokens>,
        qb_tokens: Arc<FakeTokens>,
    }

    /// Our clock starts where the fakes' server clocks start (2026-03-02 12:00 UTC).
    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    async fn qb_fixture(qb_tokens: Option<FakeTokens>) -> QbFixture {
        let clock = Arc::new(ManualClock::new(t0()));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        db.declare_queue("mailchimp", 5, Duration::from_secs(30))
            .await
            .unwrap();
        db.put_connections(&ConnectionSet::from_toml(QB_CONNECTIONS, "test").unwrap())
            .await
            .unwrap();
        let r1 = FakeQuickbooks::new();
        let r2 = FakeQuickbooks::new();
        let queue = Arc::new(SwitchableQueue {
            db: db.clone(),
            down: AtomicBool::new(false),
        });
        let fb_tokens = Arc::new(FakeTokens::default());
        let qb_tokens = Arc::new(qb_tokens.unwrap_or_default());
        let deps = PollerDeps {
            queue: queue.clone(),
            store: Arc::new(db.clone()),
            clock,
            clients: Arc::new(Realms {
                r1: r1.clone(),
                r2: r2.clone(),
            }),
            refreshers: Refreshers::from([
                (
                    Vendor::Freshbooks,
                    fb_tokens.clone() as Arc<dyn TokenRefresher>,
                ),
                (
                    Vendor::Quickbooks,
                    qb_tokens.clone() as Arc<dyn TokenRefresher>,
                ),
            ]),
        };
        let poller = Poller::new(deps, PollerConfig::default());
        QbFixture {
            poller,
            db,
            r1,
            r2,
            queue,
            fb_tokens,
            qb_tokens,
        }
    }

    fn r1() -> SourceRef {
        SourceRef {
            vendor: Vendor::Quickbooks,
            account: "R1".into(),
        }
    }

    async fn cursor(f: &QbFixture, realm: &str) -> Option<String> {
        f.db.get_cursor(&cursor_name(realm)).await.unwrap()
    }

    fn sweep<'a>(report: &'a JobReport, realm: &str) -> &'a RealmSweep {
        report
            .swept
            .iter()
            .find(|s| s.realm == realm)
            .unwrap_or_else(|| panic!("{realm} not swept: {report:?}"))
    }

    #[tokio::test]
    async fn the_first_sweep_reads_a_day_back_and_the_cursor_is_the_server_time() {
        let f = qb_fixture(None).await;
        let jane = f.r1.add_customer("Jane", Some("jane@example.com"));
        let acme = f.r1.add_customer("Acme", None);
        // The fake's server clock is now 2 s past ours: the cursor must be its time.
        let server_time = f.r1.with(|s| s.now);
        assert_ne!(server_time, t0());

        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();

        let since = t0() - chrono::Duration::days(1);
        assert_eq!(
            f.r1.take_calls(),
            [format!(
                "{} {}",
                method::CHANGED_CUSTOMERS,
                (since - CURSOR_OVERLAP).to_rfc3339()
            )]
        );
        let s1 = sweep(&report, "R1");
        assert_eq!(s1.since, since);
        assert_eq!(s1.fallback, None);
        assert_eq!(
            (s1.listed, s1.new, s1.queued, s1.dead_lettered),
            (2, 2, 4, 0)
        );
        assert_eq!(s1.cursor, server_time);
        assert_eq!(
            cursor(&f, "R1").await.as_deref(),
            Some("2026-03-02T12:00:02.000Z")
        );
        // R2 had nothing; its cursor is its own server's time. R3 (a target only) and R4
        // (disabled) are not swept.
        assert_eq!(sweep(&report, "R2").listed, 0);
        assert_eq!(
            cursor(&f, "R2").await.as_deref(),
            Some("2026-03-02T12:00:00.000Z")
        );
        assert_eq!(report.swept.len(), 2);
        assert!(report.failures.is_empty() && report.query_fallbacks == 0);

        let mut events = drain_mailchimp(&f.db).await;
        events.sort_by(|a, b| (&a.entity_id, &a.connection).cmp(&(&b.entity_id, &b.connection)));
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
                ("qb-mc", CUSTOMER, jane.as_str(), "update"),
                ("qb-mc2", CUSTOMER, jane.as_str(), "update"),
                ("qb-mc", CUSTOMER, acme.as_str(), "update"),
                ("qb-mc2", CUSTOMER, acme.as_str(), "update"),
            ]
        );
        assert!(events.iter().all(|e| e.origin == Origin::Poll));
        let stored = f.r1.stored(&jane).unwrap();
        let version = format!("{}@{}", stored.sync_token, stored.last_updated().unwrap());
        assert_eq!(
            events[0].event_id,
            derived_event_id(&r1(), CUSTOMER, &jane, "update", &version)
        );
        assert_eq!(
            events[0].occurred_at,
            Some(t0() + chrono::Duration::seconds(1))
        );
    }

    #[tokio::test]
    async fn a_second_sweep_enqueues_nothing_seen_and_a_deleted_customer_is_a_delete() {
        let f = qb_fixture(None).await;
        let jane = f.r1.add_customer("Jane", Some("jane@example.com"));
        let acme = f.r1.add_customer("Acme", None);
        f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert_eq!(drain_mailchimp(&f.db).await.len(), 4);

        // Nothing changed: what the overlap before the cursor re-reads is seen, nothing enqueued.
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert_eq!(sweep(&report, "R1").new, 0);
        assert!(drain_mailchimp(&f.db).await.is_empty());

        // A window that re-reads the same customers (the cursor moved back by hand) still
        // enqueues nothing: the seen markers hold their LastUpdatedTime.
        f.db.put_cursor(&cursor_name("R1"), "2026-03-01T00:00:00Z")
            .await
            .unwrap();
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        let s1 = sweep(&report, "R1");
        assert_eq!((s1.listed, s1.new, s1.queued), (2, 0, 0));
        assert!(drain_mailchimp(&f.db).await.is_empty());

        // Jane edited, Acme deleted: one update and one delete per connection.
        f.r1.edit_customer(&jane, |c| c.given_name = Some("Janet".into()));
        f.r1.delete_customer(&acme);
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert_eq!(sweep(&report, "R1").new, 2);
        let mut ops: Vec<_> = drain_mailchimp(&f.db)
            .await
            .into_iter()
            .map(|e| (e.entity_id, e.operation))
            .collect();
        ops.sort();
        ops.dedup();
        assert_eq!(
            ops,
            [
                (jane.clone(), "update".to_string()),
                (acme.clone(), "delete".to_string())
            ]
        );
        let marker =
            f.db.get_mapping(
                &cursor_name("R1"),
                &format!("quickbooks:R1:customer:{acme}"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(marker.fingerprint, "deleted");
        assert_eq!(
            cursor(&f, "R1").await.as_deref(),
            Some("2026-03-02T12:00:04.000Z")
        );
    }

    #[tokio::test]
    async fn a_gap_beyond_the_cdc_look_back_reads_the_window_with_the_query() {
        let f = qb_fixture(None).await;
        let jane = f.r1.add_customer("Jane", Some("jane@example.com"));
        let old = t0() - chrono::Duration::days(40);
        f.db.put_cursor(&cursor_name("R1"), &old.to_rfc3339())
            .await
            .unwrap();
        let old = (old - CURSOR_OVERLAP).to_rfc3339();
        // 29.5 days is inside CDC's 30 but not its safety margin: the query too.
        let near = (t0() - chrono::Duration::hours(29 * 24 + 12)).to_rfc3339();
        f.db.put_cursor(&cursor_name("R2"), &near).await.unwrap();

        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();

        assert_eq!(
            f.r1.take_calls(),
            [format!("{} {old}", method::CUSTOMERS_UPDATED_SINCE)],
            "no CDC call for a window it cannot cover"
        );
        assert_eq!(f.r2.calls_to(method::CHANGED_CUSTOMERS), 0);
        let s1 = sweep(&report, "R1");
        assert_eq!(s1.fallback, Some(QueryFallback::GapBeyondCdcLookback));
        assert_eq!((s1.listed, s1.new, s1.queued), (1, 1, 2));
        assert_eq!(report.query_fallbacks, 2);
        assert_eq!(drain_mailchimp(&f.db).await[0].entity_id, jane);
        // The cursor is the query's server time: the next sweep is a CDC one again.
        assert_eq!(
            cursor(&f, "R1").await.as_deref(),
            Some("2026-03-02T12:00:01.000Z")
        );
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert_eq!(sweep(&report, "R1").fallback, None);
        assert_eq!(f.r1.calls_to(method::CHANGED_CUSTOMERS), 1);

        // A 28-day gap is still CDC's.
        let within = (t0() - chrono::Duration::days(28)).to_rfc3339();
        f.db.put_cursor(&cursor_name("R2"), &within).await.unwrap();
        f.r2.take_calls();
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert_eq!(sweep(&report, "R2").fallback, None);
        assert_eq!(f.r2.calls_to(method::CHANGED_CUSTOMERS), 1);
    }

    #[tokio::test]
    async fn a_truncated_cdc_answer_falls_back_to_the_query_for_the_same_window() {
        let f = qb_fixture(None).await;
        f.r1.with(|s| s.cdc_cap = 2);
        for name in ["A", "B", "C"] {
            f.r1.add_customer(name, None);
        }
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();

        let since = (t0() - chrono::Duration::days(1) - CURSOR_OVERLAP).to_rfc3339();
        assert_eq!(
            f.r1.take_calls(),
            [
                format!("{} {since}", method::CHANGED_CUSTOMERS),
                format!("{} {since}", method::CUSTOMERS_UPDATED_SINCE),
            ]
        );
        let s1 = sweep(&report, "R1");
        assert_eq!(s1.fallback, Some(QueryFallback::CdcTruncated));
        assert_eq!((s1.listed, s1.new, s1.queued), (3, 3, 6));
        assert_eq!(report.query_fallbacks, 1);
        let ids: BTreeSet<String> = drain_mailchimp(&f.db)
            .await
            .into_iter()
            .map(|e| e.entity_id)
            .collect();
        assert_eq!(
            ids.len(),
            3,
            "the customer the cap left out is enqueued too"
        );
    }

    #[tokio::test]
    async fn a_failing_realm_keeps_its_cursor_and_the_others_are_still_swept() {
        let f = qb_fixture(None).await;
        f.r1.add_customer("Jane", Some("jane@example.com"));
        f.r2.add_customer("Bob", Some("bob@example.com"));
        f.r1.inject(method::CHANGED_CUSTOMERS, throttled());

        let err = f.poller.run_job(Job::QuickbooksCdc).await.unwrap_err();
        let JobError::Failed(report) = &err else {
            panic!("expected a partial failure, got {err}");
        };
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].name, "quickbooks/R1");
        assert!(
            report.failures[0].error.contains("change data capture"),
            "{err}"
        );
        assert_eq!(report.swept.len(), 1);
        assert_eq!(report.swept[0].realm, "R2");
        let events = drain_mailchimp(&f.db).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].connection, "qb2-mc");
        // The first run pinned R1's window start; the failure left it there.
        let pinned = "2026-03-01T12:00:00.000Z";
        assert_eq!(cursor(&f, "R1").await.as_deref(), Some(pinned));

        // The queue down: the CDC answer is read but nothing moves.
        f.queue.down.store(true, Ordering::SeqCst);
        let err = f.poller.run_job(Job::QuickbooksCdc).await.unwrap_err();
        assert!(err.to_string().contains("quickbooks/R1"), "{err}");
        assert_eq!(cursor(&f, "R1").await.as_deref(), Some(pinned));
        assert!(
            f.db.get_mapping(&cursor_name("R1"), "quickbooks:R1:customer:1")
                .await
                .unwrap()
                .is_none()
        );

        // Back up: the same window is read again and everything enqueued.
        f.queue.down.store(false, Ordering::SeqCst);
        f.r1.take_calls();
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert_eq!(
            f.r1.take_calls(),
            [format!(
                "{} 2026-03-01T11:55:00+00:00",
                method::CHANGED_CUSTOMERS
            )]
        );
        assert_eq!(sweep(&report, "R1").new, 1);
        assert_eq!(drain_mailchimp(&f.db).await.len(), 2);
    }

    /// `dev` and the pipeline tests run jobs on spawned tasks: their futures must be `Send`
    /// for any borrow (an async closure over `&self` once made them not).
    #[tokio::test]
    async fn jobs_run_on_spawned_tasks() {
        let f = qb_fixture(None).await;
        f.r1.add_customer("Jane", Some("jane@example.com"));
        let poller = Arc::new(f.poller);
        let mut reports = Vec::new();
        for &job in Job::VARIANTS {
            let poller = poller.clone();
            reports.push(tokio::spawn(
                async move { poller.run_job(job).await.is_ok() },
            ));
        }
        for r in reports {
            assert!(r.await.unwrap());
        }
        assert_eq!(drain_mailchimp(&f.db).await.len(), 2);
    }

    #[tokio::test]
    async fn an_unreadable_cursor_or_a_taken_lease() {
        let f = qb_fixture(None).await;
        f.db.put_cursor(&cursor_name("R2"), "2026-03-01")
            .await
            .unwrap();
        let err = f.poller.run_job(Job::QuickbooksCdc).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("poll:quickbooks:R2") && text.contains("RFC 3339"),
            "{text}"
        );

        assert!(
            f.db.acquire_lease(
                "poller:quickbooks_cdc",
                "other",
                t0(),
                Duration::from_secs(600)
            )
            .await
            .unwrap()
        );
        f.r1.take_calls();
        let report = f.poller.run_job(Job::QuickbooksCdc).await.unwrap();
        assert!(report.skipped_busy);
        assert!(f.r1.calls().is_empty());
    }

    #[tokio::test]
    async fn quickbooks_token_refresh_covers_every_quickbooks_set_with_a_55_minute_margin() {
        let f = qb_fixture(Some(FakeTokens {
            expiring: vec!["qb", "qb2"],
            broken: vec!["qb3"],
            ..FakeTokens::default()
        }))
        .await;
        let err = f
            .poller
            .run_job(Job::QuickbooksTokenRefresh)
            .await
            .unwrap_err();
        let JobError::Failed(report) = err else {
            panic!("qb3 is broken");
        };
        let calls = f.qb_tokens.calls.lock().unwrap().clone();
        // qb4 belongs to a disabled connection; qb3 is a QuickBooks *target*'s set.
        assert_eq!(
            calls,
            [
                ("qb".to_string(), Duration::from_secs(55 * 60)),
                ("qb2".to_string(), Duration::from_secs(55 * 60)),
                ("qb3".to_string(), Duration::from_secs(55 * 60)),
            ]
        );
        assert_eq!(report.refreshed.len(), 2);
        assert!(report.refreshed.iter().all(|r| r.refreshed));
        assert_eq!(report.failures[0].name, "credentials/qb3");

        // The FreshBooks job leaves QuickBooks sets alone (and there are no FreshBooks ones).
        let report = f.poller.run_job(Job::TokenRefresh).await.unwrap();
        assert!(report.refreshed.is_empty());
        assert!(f.fb_tokens.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_poller_without_a_quickbooks_refresher_says_so_per_set() {
        let clock = Arc::new(ManualClock::new(t0()));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        db.put_connections(&ConnectionSet::from_toml(QB_CONNECTIONS, "test").unwrap())
            .await
            .unwrap();
        let poller = Poller::new(
            PollerDeps {
                queue: Arc::new(db.clone()),
                store: Arc::new(db.clone()),
                clock,
                clients: Arc::new(Realms {
                    r1: FakeQuickbooks::new(),
                    r2: FakeQuickbooks::new(),
                }),
                refreshers: Refreshers::from([(
                    Vendor::Freshbooks,
                    Arc::new(FakeTokens::default()) as Arc<dyn TokenRefresher>,
                )]),
            },
            PollerConfig::default(),
        );
        let err = poller
            .run_job(Job::QuickbooksTokenRefresh)
            .await
            .unwrap_err();
        let JobError::Failed(report) = err else {
            panic!("no refresher");
        };
        assert_eq!(report.failures.len(), 3);
        assert!(
            report.failures[0]
                .error
                .contains("no quickbooks token refresher"),
            "{:?}",
            report.failures
        );
    }
}
