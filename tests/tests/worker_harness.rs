//! The worker harness over both adapter sets: the embedded (SQLite) one and the AWS one on moto.
//!
//! Every scenario is written once against [`Backend`] and run on each adapter set.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use mlc::adapters::embedded::EmbeddedDb;
use mlc::connections::ConnectionSet;
use mlc::event::{Origin, SourceEvent, SourceRef, SyncEvent};
use mlc::ports::{
    AuditEntry, AuditLog, Begin, Blobs, CallbackRecord, Clock, ConnectionStore, Cursors,
    DeadLetter, DeadLetterStatus, DeadLetters, IdMap, IdMapping, Idempotency, Leases, ManualClock,
    Outcome, OutgoingMessage, PortError, PortResult, Queue, ReceivedMessage, Store,
    WebhookCallbacks,
};
use mlc::vendor::Vendor;
use mlc::worker::backoff::{RetryPolicy, VisibilityPolicy};
use mlc::worker::lambda::{batch_response, handle_sqs_event};
use mlc::worker::local::{PollOptions, run_once, run_until};
use mlc::worker::{
    BatchReport, Disposition, Handled, HandlerError, Harness, HarnessConfig, TargetHandler,
};
use serde_json::{Value, json};

const QUEUE: &str = "mailchimp";
const CONNECTION: &str = "fb-to-mc";

// ---------------------------------------------------------------------------------------------
// A handler that does what each test scripts for an entity id.

#[derive(Debug, Clone, PartialEq)]
enum Script {
    Sync,
    Same,
    Skip,
    /// Fails transiently this many times, then syncs.
    FailTimes(u32),
    /// Always fails transiently.
    Down,
    /// Fails permanently.
    Bad,
    Panic,
    /// Syncs, reporting a write far over the audit size cap.
    Big,
    /// The vendor refuses every call until then (a daily quota).
    Hold(DateTime<Utc>),
}

#[derive(Default)]
struct ScriptedHandler {
    scripts: Mutex<HashMap<String, Script>>,
    calls: Mutex<HashMap<String, u32>>,
}

impl ScriptedHandler {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn set(&self, entity_id: &str, script: Script) {
        self.scripts
            .lock()
            .unwrap()
            .insert(entity_id.to_string(), script);
    }

    fn calls(&self, entity_id: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(entity_id)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl TargetHandler for ScriptedHandler {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        let id = event.entity_id.clone();
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(id.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let script = self
            .scripts
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or(Script::Sync);
        let synced = |written: Value| Handled::Synced {
            before: Some(json!({ "id": id, "status": "old" })),
            written: Some(written),
        };
        match script {
            Script::Sync => Ok(synced(json!({ "id": id, "status": "new" }))),
            Script::Same => Ok(Handled::Unchanged),
            Script::Skip => Ok(Handled::Skipped {
                reason: "draft invoice".into(),
            }),
            Script::FailTimes(k) if n <= k => {
                Err(HandlerError::transient("HTTP 503")
                    .with_vendor_request_id(format!("req-{id}-{n}")))
            }
            Script::FailTimes(_) => Ok(synced(json!({ "id": id, "status": "new" }))),
            Script::Down => {
                Err(HandlerError::transient("HTTP 503")
                    .with_vendor_request_id(format!("req-{id}-{n}")))
            }
            Script::Bad => Err(
                HandlerError::permanent("validation", "email address is invalid")
                    .with_vendor_request_id("req-bad"),
            ),
            Script::Panic => panic!("scripted panic for {id}"),
            Script::Big => Ok(synced(json!({ "id": id, "notes": "x".repeat(20_000) }))),
            Script::Hold(until) => Err(HandlerError::Transient {
                message: "daily limit reached".into(),
                retry_after: None,
                vendor_request_id: Some(format!("req-{id}-{n}")),
                hold_until: Some(until),
            }),
        }
    }
}

/// The scripted handler as a batch-aware one: each `handle_batch` call is recorded (entity ids
/// in the order given), a panic fails the whole batch, and `short` results are left off.
struct Batched {
    inner: Arc<ScriptedHandler>,
    batches: Mutex<Vec<Vec<String>>>,
    short: usize,
}

impl Batched {
    fn new(inner: &Arc<ScriptedHandler>, short: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: inner.clone(),
            batches: Mutex::new(Vec::new()),
            short,
        })
    }

    /// The batches so far, each sorted (SQS does not keep the send order).
    fn batches(&self) -> Vec<Vec<String>> {
        let mut batches = self.batches.lock().unwrap().clone();
        for batch in &mut batches {
            batch.sort();
        }
        batches
    }
}

#[async_trait]
impl TargetHandler for Batched {
    async fn handle(&self, _: &SyncEvent) -> Result<Handled, HandlerError> {
        unreachable!("the harness calls handle_batch")
    }

    async fn handle_batch(&self, events: &[SyncEvent]) -> Vec<Result<Handled, HandlerError>> {
        self.batches
            .lock()
            .unwrap()
            .push(events.iter().map(|e| e.entity_id.clone()).collect());
        let mut results = Vec::new();
        for event in &events[..events.len().saturating_sub(self.short)] {
            results.push(self.inner.handle(event).await);
        }
        results
    }
}

// ---------------------------------------------------------------------------------------------
// A store that fails on demand, for outages.

/// Wraps a store; while `down`, the operations named in `failing` (or all, for `"*"`) fail.
struct FlakyStore {
    inner: Arc<dyn Store>,
    down: AtomicBool,
    failing: Mutex<HashSet<&'static str>>,
}

impl FlakyStore {
    fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            down: AtomicBool::new(false),
            failing: Mutex::new(HashSet::new()),
        })
    }

    fn fail(&self, ops: &[&'static str]) {
        *self.failing.lock().unwrap() = ops.iter().copied().collect();
        self.down.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    fn check(&self, op: &'static str) -> PortResult<()> {
        let failing = self.failing.lock().unwrap();
        if self.down.load(Ordering::SeqCst) && (failing.contains(op) || failing.contains("*")) {
            return Err(PortError::backend("flaky-store", format!("{op}: outage")));
        }
        Ok(())
    }
}

#[async_trait]
impl AuditLog for FlakyStore {
    async fn record_audit(&self, entry: &AuditEntry) -> PortResult<()> {
        self.check("record_audit")?;
        self.inner.record_audit(entry).await
    }
    async fn audit_by_record(&self, record_key: &str, limit: usize) -> PortResult<Vec<AuditEntry>> {
        self.check("audit_by_record")?;
        self.inner.audit_by_record(record_key, limit).await
    }
    async fn audit_by_outcome(
        &self,
        outcome: Outcome,
        day: NaiveDate,
        limit: usize,
    ) -> PortResult<Vec<AuditEntry>> {
        self.check("audit_by_outcome")?;
        self.inner.audit_by_outcome(outcome, day, limit).await
    }
}

#[async_trait]
impl DeadLetters for FlakyStore {
    async fn put_dead_letter(&self, letter: &DeadLetter) -> PortResult<()> {
        self.check("put_dead_letter")?;
        self.inner.put_dead_letter(letter).await
    }
    async fn get_dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        self.check("get_dead_letter")?;
        self.inner.get_dead_letter(id).await
    }
    async fn list_dead_letters(
        &self,
        status: DeadLetterStatus,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        self.check("list_dead_letters")?;
        self.inner.list_dead_letters(status, limit).await
    }
    async fn resolve_dead_letter(&self, id: &str, at: DateTime<Utc>) -> PortResult<bool> {
        self.check("resolve_dead_letter")?;
        self.inner.resolve_dead_letter(id, at).await
    }
}

#[async_trait]
impl Idempotency for FlakyStore {
    async fn begin(&self, key: &str, now: DateTime<Utc>, lease: Duration) -> PortResult<Begin> {
        self.check("begin")?;
        self.inner.begin(key, now, lease).await
    }
    async fn complete(
        &self,
        key: &str,
        outcome: Outcome,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        self.check("complete")?;
        self.inner.complete(key, outcome, expires_at).await
    }
    async fn abandon(&self, key: &str) -> PortResult<()> {
        self.check("abandon")?;
        self.inner.abandon(key).await
    }
}

#[async_trait]
impl IdMap for FlakyStore {
    async fn get_mapping(&self, c: &str, k: &str) -> PortResult<Option<IdMapping>> {
        self.check("get_mapping")?;
        self.inner.get_mapping(c, k).await
    }
    async fn put_mapping(&self, c: &str, k: &str, m: &IdMapping) -> PortResult<()> {
        self.check("put_mapping")?;
        self.inner.put_mapping(c, k, m).await
    }
}

#[async_trait]
impl Cursors for FlakyStore {
    async fn get_cursor(&self, name: &str) -> PortResult<Option<String>> {
        self.check("get_cursor")?;
        self.inner.get_cursor(name).await
    }
    async fn put_cursor(&self, name: &str, value: &str) -> PortResult<()> {
        self.check("put_cursor")?;
        self.inner.put_cursor(name, value).await
    }
}

#[async_trait]
impl Leases for FlakyStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<bool> {
        self.check("acquire_lease")?;
        self.inner.acquire_lease(name, holder, now, ttl).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        self.check("release_lease")?;
        self.inner.release_lease(name, holder).await
    }
}

#[async_trait]
impl WebhookCallbacks for FlakyStore {
    async fn get_callback(&self, route_id: &str) -> PortResult<Option<CallbackRecord>> {
        self.check("get_callback")?;
        self.inner.get_callback(route_id).await
    }
    async fn put_callback(&self, record: &CallbackRecord) -> PortResult<()> {
        self.check("put_callback")?;
        self.inner.put_callback(record).await
    }
    async fn mark_callback_verified(&self, route_id: &str, at: DateTime<Utc>) -> PortResult<bool> {
        self.check("mark_callback_verified")?;
        self.inner.mark_callback_verified(route_id, at).await
    }
    async fn record_callback_id(&self, route_id: &str, callback_id: &str) -> PortResult<bool> {
        self.check("record_callback_id")?;
        self.inner.record_callback_id(route_id, callback_id).await
    }
}

#[async_trait]
impl Blobs for FlakyStore {
    async fn put_blob(
        &self,
        key: &str,
        body: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> PortResult<()> {
        self.check("put_blob")?;
        self.inner.put_blob(key, body, expires_at).await
    }
    async fn get_blob(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        self.check("get_blob")?;
        self.inner.get_blob(key).await
    }
}

#[async_trait]
impl ConnectionStore for FlakyStore {
    async fn get_connections(&self) -> PortResult<Option<ConnectionSet>> {
        self.check("get_connections")?;
        self.inner.get_connections().await
    }
    async fn put_connections(&self, set: &ConnectionSet) -> PortResult<()> {
        self.check("put_connections")?;
        self.inner.put_connections(set).await
    }
}

// ---------------------------------------------------------------------------------------------
// The two adapter sets behind one face.

enum Kind {
    Embedded {
        db: EmbeddedDb,
        clock: Arc<ManualClock>,
    },
    Moto(Box<moto::Env>),
}

struct Backend {
    kind: Kind,
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    max_receives: u32,
}

impl Backend {
    async fn embedded(max_receives: u32) -> Self {
        let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        db.declare_queue(QUEUE, max_receives, Duration::from_secs(30))
            .await
            .unwrap();
        Self {
            queue: Arc::new(db.clone()),
            store: Arc::new(db.clone()),
            clock: clock.clone(),
            kind: Kind::Embedded { db, clock },
            max_receives,
        }
    }

    async fn moto(max_receives: u32) -> Self {
        let env = moto::Env::start(QUEUE, max_receives).await;
        Self {
            queue: env.queue(),
            store: env.store(),
            clock: Arc::new(mlc::ports::SystemClock),
            kind: Kind::Moto(Box::new(env)),
            max_receives,
        }
    }

    fn is_moto(&self) -> bool {
        matches!(self.kind, Kind::Moto(_))
    }

    /// How long a test receive hides messages. Short on moto, whose clock is real.
    fn visibility(&self) -> Duration {
        if self.is_moto() {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(30)
        }
    }

    fn config(&self) -> HarnessConfig {
        let mut c = HarnessConfig::new(QUEUE);
        c.max_receives = self.max_receives;
        c.retry = RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(1),
            max: Duration::from_millis(20),
        };
        // On the embedded queue the manual clock shows the backoff growing; moto runs on real
        // time, so retries come back at once there.
        c.visibility = if self.is_moto() {
            VisibilityPolicy {
                base: Duration::ZERO,
                max: Duration::ZERO,
            }
        } else {
            VisibilityPolicy {
                base: Duration::from_secs(60),
                max: Duration::from_secs(600),
            }
        };
        c.deadline_margin = Duration::from_millis(200);
        c
    }

    fn harness(&self, handler: &Arc<ScriptedHandler>) -> Harness {
        self.harness_with(handler.clone(), self.store.clone(), self.config())
    }

    fn harness_with(
        &self,
        handler: Arc<dyn TargetHandler>,
        store: Arc<dyn Store>,
        config: HarnessConfig,
    ) -> Harness {
        Harness::new(
            self.queue.clone(),
            store,
            self.clock.clone(),
            handler,
            config,
        )
    }

    /// Advances the embedded queue's clock; on moto, whose clock is real, waits out
    /// `pass_visibility` instead, the existing pattern (`moto_rounds` of them).
    async fn wait(&self, embedded: chrono::Duration, moto_rounds: u32) {
        match &self.kind {
            Kind::Embedded { clock, .. } => clock.advance(embedded),
            Kind::Moto(_) => {
                for _ in 0..moto_rounds {
                    self.pass_visibility().await;
                }
            }
        }
    }

    /// Lets every hidden message become visible again.
    async fn pass_visibility(&self) {
        match &self.kind {
            Kind::Embedded { clock, .. } => clock.advance(chrono::Duration::hours(13)),
            Kind::Moto(_) => {
                tokio::time::sleep(self.visibility() + Duration::from_millis(200)).await
            }
        }
    }

    /// Moves the dead-letter queue's messages back: SQS `StartMessageMoveTask` on the embedded
    /// queue; moto lacks it, so there the DLQ's bodies are re-sent, as the move task does.
    async fn redrive(&self) {
        match &self.kind {
            Kind::Embedded { db, .. } => {
                db.redrive(QUEUE).await.unwrap();
            }
            Kind::Moto(env) => env.redrive_by_hand().await,
        }
    }

    async fn send(&self, bodies: &[String]) {
        let messages: Vec<OutgoingMessage> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| OutgoingMessage::new(i.to_string(), body.clone()))
            .collect();
        let failures = mlc::ports::queue::send_all(self.queue.as_ref(), QUEUE, &messages)
            .await
            .unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }

    async fn send_events(&self, events: &[SyncEvent]) {
        let bodies: Vec<String> = events.iter().map(SyncEvent::to_json).collect();
        self.send(&bodies).await;
    }

    async fn receive(&self) -> Vec<ReceivedMessage> {
        // Two receives: SQS (and moto) may hand out fewer messages than are visible.
        let mut all = self
            .queue
            .receive(QUEUE, 10, self.visibility())
            .await
            .unwrap();
        if !all.is_empty() {
            let more = self
                .queue
                .receive(QUEUE, 10, self.visibility())
                .await
                .unwrap();
            all.extend(more);
        }
        all
    }

    /// One Lambda-like round: receive, handle, delete what is done.
    async fn round(&self, harness: &Harness) -> Round {
        let messages = self.receive().await;
        let labels: HashMap<String, String> = messages
            .iter()
            .map(|m| (m.message_id.clone(), label(&m.body)))
            .collect();
        let receipts: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m.message_id.clone(), m.receipt.clone()))
            .collect();
        let report = harness
            .process_batch(
                messages,
                Some(tokio::time::Instant::now() + self.visibility()),
            )
            .await;
        for (id, receipt) in receipts {
            if report.disposition(&id) == Some(Disposition::Done) {
                self.queue.delete(QUEUE, &receipt).await.unwrap();
            }
        }
        Round { report, labels }
    }

    async fn dead_depth(&self) -> u64 {
        self.queue.depth(QUEUE).await.unwrap().dead
    }

    async fn audit(&self, record_key: &str) -> Vec<AuditEntry> {
        self.store.audit_by_record(record_key, 50).await.unwrap()
    }

    async fn dead_letter(&self, id: &str) -> Option<DeadLetter> {
        self.store.get_dead_letter(id).await.unwrap()
    }
}

/// What a test calls a message: its entity id, or the raw body when it is not an event.
fn label(body: &str) -> String {
    SyncEvent::from_json(body)
        .map(|e| e.entity_id)
        .unwrap_or_else(|_| format!("raw:{}", body.chars().take(20).collect::<String>()))
}

struct Round {
    report: BatchReport,
    /// message id → label
    labels: HashMap<String, String>,
}

impl Round {
    fn id_of(&self, label: &str) -> &str {
        let mut ids = self.labels.iter().filter(|(_, l)| *l == label);
        let (id, _) = ids
            .next()
            .unwrap_or_else(|| panic!("no message `{label}` in {:?}", self.labels));
        assert!(ids.next().is_none(), "`{label}` is in the batch twice");
        id
    }

    fn outcome(&self, label: &str) -> Outcome {
        self.report.outcome(self.id_of(label)).unwrap()
    }

    fn disposition(&self, label: &str) -> Disposition {
        self.report.disposition(self.id_of(label)).unwrap()
    }

    fn failed_labels(&self) -> Vec<String> {
        let mut l: Vec<String> = self
            .report
            .failed
            .iter()
            .map(|id| self.labels[id].clone())
            .collect();
        l.sort();
        l
    }

    fn outcomes_by_label(&self) -> HashMap<String, Vec<Outcome>> {
        let mut out: HashMap<String, Vec<Outcome>> = HashMap::new();
        for m in &self.report.messages {
            out.entry(self.labels[&m.message_id].clone())
                .or_default()
                .push(m.outcome);
        }
        out
    }
}

fn event(entity_id: &str, event_id: &str) -> SyncEvent {
    SourceEvent {
        event_id: event_id.into(),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: "6BApk".into(),
        },
        entity: "client".into(),
        entity_id: entity_id.into(),
        operation: "update".into(),
        occurred_at: None,
        detail: Default::default(),
    }
    .for_connection(
        CONNECTION,
        Origin::Webhook,
        DateTime::from_timestamp(1_772_000_000, 0).unwrap(),
    )
}

fn record_key(entity_id: &str) -> String {
    format!("freshbooks:6BApk:client:{entity_id}")
}

fn event_letter_id(event_id: &str) -> String {
    DeadLetter::id_for_event(CONNECTION, event_id)
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// The same event twice: one handler call; the second delivery is audited as a duplicate.
async fn duplicates(b: Backend) {
    let handler = ScriptedHandler::new();
    let harness = b.harness(&handler);
    let e = event("dup", "evt-dup");
    b.send_events(&[e.clone(), e.clone()]).await;

    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let round = b.round(&harness).await;
        outcomes.extend(round.outcomes_by_label().remove("dup").unwrap_or_default());
        if outcomes.len() == 2 {
            break;
        }
    }
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, [Outcome::Duplicate, Outcome::Synced]);
    assert_eq!(handler.calls("dup"), 1);

    let trail = b.audit(&record_key("dup")).await;
    let mut audited: Vec<Outcome> = trail.iter().map(|a| a.outcome).collect();
    audited.sort_by_key(|o| o.as_str());
    assert_eq!(audited, [Outcome::Duplicate, Outcome::Synced]);
    let synced = trail.iter().find(|a| a.outcome == Outcome::Synced).unwrap();
    assert_eq!(synced.event_id, "evt-dup");
    assert_eq!(synced.connection, CONNECTION);
    assert_eq!(synced.target, QUEUE);
    assert_eq!(synced.origin, Some(Origin::Webhook));
    assert_eq!(synced.operation, "update");
    assert_eq!(synced.attempt, 1);
    assert_eq!(synced.before, Some(json!({"id": "dup", "status": "old"})));
    assert_eq!(synced.written, Some(json!({"id": "dup", "status": "new"})));
    assert!(synced.message_id.is_some());
    assert!(synced.expires_at.unwrap() > synced.at + chrono::Duration::days(80));

    // Both deliveries are gone from the queue.
    b.pass_visibility().await;
    assert!(b.receive().await.is_empty());
}

/// An undecodable message is dead-lettered and moved to the DLQ; its neighbours are handled.
async fn poison_message(b: Backend) {
    let handler = ScriptedHandler::new();
    let harness = b.harness(&handler);
    let unknown_version = event("future", "evt-future")
        .to_json()
        .replace("\"v\":1", "\"v\":9");
    let huge_garbage = format!("<{}>", "g".repeat(100 * 1024));
    b.send(&[
        event("a", "evt-a").to_json(),
        "this is not json".into(),
        unknown_version.clone(),
        huge_garbage.clone(),
        event("b", "evt-b").to_json(),
    ])
    .await;

    let round = b.round(&harness).await;
    assert_eq!(round.report.messages.len(), 5);
    assert!(round.report.failed.is_empty(), "{:?}", round.report);
    assert_eq!(round.outcome("a"), Outcome::Synced);
    assert_eq!(round.outcome("b"), Outcome::Synced);
    for raw in [
        label("this is not json"),
        label(&unknown_version),
        label(&huge_garbage),
    ] {
        assert_eq!(round.outcome(&raw), Outcome::Rejected, "{raw}");
        assert_eq!(round.disposition(&raw), Disposition::MovedToDeadLetter);
    }
    assert_eq!(b.dead_depth().await, 3);

    let garbage_id = round.id_of(&label("this is not json")).to_string();
    let letter = b
        .dead_letter(&format!("message:{QUEUE}:{garbage_id}"))
        .await
        .expect("dead letter for the garbage message");
    assert_eq!(letter.stage, format!("worker:{QUEUE}"));
    assert_eq!(letter.queue.as_deref(), Some(QUEUE));
    assert_eq!(letter.status, DeadLetterStatus::Open);
    assert_eq!(letter.error_class, "undecodable");
    assert!(
        letter.reason.contains("not a SyncEvent"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.payload, "this is not json");
    assert_eq!(letter.record_key, Some(format!("message:{garbage_id}")));
    assert_eq!(letter.attempts, 1);

    let trail = b.audit(&format!("message:{garbage_id}")).await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].outcome, Outcome::Rejected);
    assert_eq!(trail[0].message_id.as_deref(), Some(garbage_id.as_str()));

    // An event of a version this build does not read still names itself.
    let future_id = round.id_of(&label(&unknown_version)).to_string();
    let letter = b
        .dead_letter(&format!("message:{QUEUE}:{future_id}"))
        .await
        .unwrap();
    assert!(letter.reason.contains("version 9"), "{}", letter.reason);
    assert_eq!(letter.event_id.as_deref(), Some("evt-future"));
    assert_eq!(letter.connection.as_deref(), Some(CONNECTION));
    assert_eq!(letter.payload, unknown_version);

    // A large body is kept as a blob.
    let huge_id = round.id_of(&label(&huge_garbage)).to_string();
    let letter = b
        .dead_letter(&format!("message:{QUEUE}:{huge_id}"))
        .await
        .unwrap();
    let key = letter
        .payload
        .strip_prefix("blob:")
        .unwrap_or_else(|| panic!("payload is not a blob reference: {:.40}", letter.payload));
    let blob = b.store.get_blob(key).await.unwrap().expect("the blob");
    assert_eq!(blob, huge_garbage.as_bytes());

    assert_eq!(handler.calls("a"), 1);
    assert_eq!(handler.calls("b"), 1);
}

/// A batch of five with one transient failure: only that one goes back, with a delay.
async fn partial_failure(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("flaky", Script::FailTimes(1));
    handler.set("same", Script::Same);
    handler.set("skip", Script::Skip);
    handler.set("big", Script::Big);
    let harness = b.harness(&handler);
    b.send_events(&[
        event("one", "evt-1"),
        event("flaky", "evt-flaky"),
        event("same", "evt-same"),
        event("skip", "evt-skip"),
        event("big", "evt-big"),
    ])
    .await;

    let round = b.round(&harness).await;
    assert_eq!(round.report.messages.len(), 5);
    assert_eq!(round.failed_labels(), ["flaky"]);
    assert_eq!(round.outcome("flaky"), Outcome::Retrying);
    assert_eq!(round.disposition("flaky"), Disposition::Retry);
    assert_eq!(round.outcome("one"), Outcome::Synced);
    assert_eq!(round.outcome("same"), Outcome::Unchanged);
    assert_eq!(round.outcome("skip"), Outcome::Skipped);
    assert_eq!(round.outcome("big"), Outcome::Synced);

    let retrying = b.audit(&record_key("flaky")).await;
    assert_eq!(retrying.len(), 1);
    assert_eq!(retrying[0].outcome, Outcome::Retrying);
    assert_eq!(retrying[0].error_class.as_deref(), Some("transient"));
    assert_eq!(retrying[0].error_message.as_deref(), Some("HTTP 503"));
    assert_eq!(
        retrying[0].vendor_request_id.as_deref(),
        Some("req-flaky-1")
    );

    let skipped = b.audit(&record_key("skip")).await;
    assert_eq!(skipped[0].error_message.as_deref(), Some("draft invoice"));
    let big = b.audit(&record_key("big")).await;
    let written = big[0].written.as_ref().unwrap();
    assert_eq!(written["id"], "big");
    assert!(written.get("notes").is_none());
    assert!(serde_json::to_string(written).unwrap().len() <= 4096);

    if let Kind::Embedded { clock, .. } = &b.kind {
        // The first retry waits 30-60 s (60 s base, equal jitter), not the queue's 30 s.
        clock.advance(chrono::Duration::seconds(29));
        assert!(b.receive().await.is_empty());
        clock.advance(chrono::Duration::seconds(32));
    }
    let round = b.round(&harness).await;
    assert_eq!(round.report.messages.len(), 1);
    assert_eq!(round.outcome("flaky"), Outcome::Synced);
    assert!(round.report.failed.is_empty());
    assert_eq!(handler.calls("flaky"), 2);
    assert_eq!(handler.calls("one"), 1);
    let trail = b.audit(&record_key("flaky")).await;
    assert_eq!(trail[0].outcome, Outcome::Synced, "newest first");
    assert_eq!(trail[0].attempt, 2);
}

/// A panicking handler fails its message only.
async fn panic_is_contained(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("boom", Script::Panic);
    let harness = b.harness(&handler);
    b.send_events(&[
        event("before", "evt-before"),
        event("boom", "evt-boom"),
        event("after", "evt-after"),
    ])
    .await;
    let round = b.round(&harness).await;
    assert_eq!(round.failed_labels(), ["boom"]);
    assert_eq!(round.outcome("before"), Outcome::Synced);
    assert_eq!(round.outcome("after"), Outcome::Synced);
    let trail = b.audit(&record_key("boom")).await;
    assert_eq!(trail[0].outcome, Outcome::Retrying);
    assert_eq!(trail[0].error_message.as_deref(), Some("handler panicked"));
}

/// Permanent failures are dead-lettered at once; transient ones are retried in the invocation.
async fn permanent_vs_transient(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("bad", Script::Bad);
    handler.set("flaky", Script::FailTimes(2));
    let mut config = b.config();
    config.retry.attempts = 3;
    let harness = b.harness_with(handler.clone(), b.store.clone(), config);
    b.send_events(&[event("bad", "evt-bad"), event("flaky", "evt-flaky")])
        .await;

    let round = b.round(&harness).await;
    assert!(round.report.failed.is_empty(), "{:?}", round.report);
    assert_eq!(round.outcome("flaky"), Outcome::Synced);
    assert_eq!(handler.calls("flaky"), 3);
    assert_eq!(round.outcome("bad"), Outcome::DeadLettered);
    assert_eq!(round.disposition("bad"), Disposition::MovedToDeadLetter);
    assert_eq!(
        handler.calls("bad"),
        1,
        "permanent failures are not retried"
    );
    assert_eq!(b.dead_depth().await, 1);

    let letter = b.dead_letter(&event_letter_id("evt-bad")).await.unwrap();
    assert_eq!(letter.status, DeadLetterStatus::Open);
    assert_eq!(letter.error_class, "validation");
    assert_eq!(letter.reason, "email address is invalid");
    assert_eq!(letter.vendor_request_id.as_deref(), Some("req-bad"));
    assert_eq!(letter.attempts, 1);
    assert_eq!(letter.event_id.as_deref(), Some("evt-bad"));
    assert_eq!(letter.record_key, Some(record_key("bad")));
    assert_eq!(letter.payload, event("bad", "evt-bad").to_json());

    let trail = b.audit(&record_key("bad")).await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].outcome, Outcome::DeadLettered);
    assert_eq!(trail[0].error_class.as_deref(), Some("validation"));

    // A transient failure that recovered within the invocation leaves no dead letter.
    assert!(b.dead_letter(&event_letter_id("evt-flaky")).await.is_none());
}

/// A transient failure on the last receive: dead letter written, SQS's redrive moves it.
async fn last_receive(b: Backend) {
    assert_eq!(b.max_receives, 2);
    let handler = ScriptedHandler::new();
    handler.set("down", Script::Down);
    let harness = b.harness(&handler);
    b.send_events(&[event("down", "evt-down")]).await;

    let first = b.round(&harness).await;
    assert_eq!(first.outcome("down"), Outcome::Retrying);
    assert!(b.dead_letter(&event_letter_id("evt-down")).await.is_none());

    b.pass_visibility().await;
    let second = b.round(&harness).await;
    assert_eq!(second.outcome("down"), Outcome::DeadLettered);
    assert_eq!(second.failed_labels(), ["down"], "SQS moves it, not us");
    assert_eq!(second.disposition("down"), Disposition::Retry);
    let letter = b.dead_letter(&event_letter_id("evt-down")).await.unwrap();
    assert_eq!(letter.attempts, 2);
    assert_eq!(letter.error_class, "transient");
    assert_eq!(letter.vendor_request_id.as_deref(), Some("req-down-2"));
    assert_eq!(letter.status, DeadLetterStatus::Open);

    // Released at once: the next receive hands it to the redrive policy.
    assert!(b.receive().await.is_empty());
    assert_eq!(b.dead_depth().await, 1);
    assert_eq!(handler.calls("down"), 2);

    let trail = b.audit(&record_key("down")).await;
    let outcomes: Vec<Outcome> = trail.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [Outcome::DeadLettered, Outcome::Retrying]);
    assert_eq!(trail[0].attempt, 2);
}

/// A replayed message that succeeds resolves its dead letter.
async fn replay_resolves(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("bad", Script::Bad);
    handler.set("down", Script::Down);
    let harness = b.harness(&handler);
    b.send_events(&[event("bad", "evt-bad"), event("down", "evt-down")])
        .await;
    // bad: dead-lettered at once; down: twice retried, then moved by the redrive policy.
    for _ in 0..b.max_receives {
        b.round(&harness).await;
        b.pass_visibility().await;
    }
    assert!(b.receive().await.is_empty());
    assert_eq!(b.dead_depth().await, 2);
    for id in ["evt-bad", "evt-down"] {
        let letter = b.dead_letter(&event_letter_id(id)).await.unwrap();
        assert_eq!(letter.status, DeadLetterStatus::Open, "{id}");
    }

    // The cause is fixed; the operator redrives.
    handler.set("bad", Script::Sync);
    handler.set("down", Script::Sync);
    b.redrive().await;
    let mut outcomes = HashMap::new();
    for _ in 0..3 {
        let round = b.round(&harness).await;
        for (label, o) in round.outcomes_by_label() {
            outcomes.insert(label, o);
        }
        if outcomes.len() == 2 {
            break;
        }
    }
    assert_eq!(outcomes["bad"], [Outcome::Synced]);
    assert_eq!(outcomes["down"], [Outcome::Synced]);
    assert_eq!(b.dead_depth().await, 0);
    for (entity, id) in [("bad", "evt-bad"), ("down", "evt-down")] {
        let letter = b.dead_letter(&event_letter_id(id)).await.unwrap();
        assert_eq!(letter.status, DeadLetterStatus::Resolved, "{id}");
        assert!(letter.resolved_at.is_some());
        let trail = b.audit(&record_key(entity)).await;
        assert_eq!(trail[0].outcome, Outcome::Synced);
        assert_eq!(trail[0].origin, Some(Origin::Replay));
    }

    // Handled now: a further delivery is a plain duplicate.
    b.send_events(&[event("bad", "evt-bad")]).await;
    let round = b.round(&harness).await;
    assert_eq!(round.outcome("bad"), Outcome::Duplicate);
}

/// With the store down nothing is lost: messages stay queued and go through once it is back.
async fn store_outage(b: Backend) {
    let handler = ScriptedHandler::new();
    let flaky = FlakyStore::new(b.store.clone());
    let harness = b.harness_with(handler.clone(), flaky.clone(), b.config());
    b.send_events(&[event("x", "evt-x"), event("y", "evt-y")])
        .await;

    flaky.fail(&["*"]);
    let round = b.round(&harness).await;
    assert_eq!(round.failed_labels(), ["x", "y"]);
    assert_eq!(round.outcome("x"), Outcome::Retrying);
    assert_eq!(handler.calls("x"), 0);

    // Down only after the handler ran: the write is redone rather than left unrecorded.
    b.pass_visibility().await;
    flaky.fail(&["complete"]);
    let round = b.round(&harness).await;
    assert_eq!(round.failed_labels(), ["x", "y"]);
    assert_eq!(handler.calls("x"), 1);

    flaky.heal();
    b.pass_visibility().await;
    let round = b.round(&harness).await;
    assert!(round.report.failed.is_empty(), "{:?}", round.report);
    assert_eq!(round.outcome("x"), Outcome::Synced);
    assert_eq!(round.outcome("y"), Outcome::Synced);
    assert_eq!(handler.calls("x"), 2);

    // A failed dead-letter write keeps a permanently failing message on its queue too.
    handler.set("bad", Script::Bad);
    b.send_events(&[event("bad", "evt-bad")]).await;
    flaky.fail(&["put_dead_letter"]);
    let round = b.round(&harness).await;
    assert_eq!(round.failed_labels(), ["bad"]);
    assert_eq!(b.dead_depth().await, 0);
    flaky.heal();
    b.pass_visibility().await;
    let round = b.round(&harness).await;
    assert_eq!(round.outcome("bad"), Outcome::DeadLettered);
    assert_eq!(b.dead_depth().await, 1);
}

/// The Lambda shape: SQS event in, `batchItemFailures` out.
async fn lambda_event(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("flaky", Script::FailTimes(1));
    let harness = b.harness(&handler);
    b.send_events(&[event("ok", "evt-ok"), event("flaky", "evt-flaky")])
        .await;
    let messages = b.receive().await;
    assert_eq!(messages.len(), 2);
    let flaky_id = messages
        .iter()
        .find(|m| label(&m.body) == "flaky")
        .unwrap()
        .message_id
        .clone();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    let event = serde_json::from_value(json!({ "Records": records })).unwrap();
    let response = handle_sqs_event(
        &harness,
        event,
        Some(tokio::time::Instant::now() + Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": flaky_id}]})
    );
    let report = BatchReport {
        messages: vec![],
        failed: vec![flaky_id],
    };
    assert_eq!(batch_response(&report), response);
}

/// The local host: `run_once` deletes what is done; `run_until` drains and stops on request.
async fn local_loop(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("flaky", Script::FailTimes(1));
    let harness = Arc::new(b.harness(&handler));
    b.send_events(&[event("ok", "evt-ok"), event("flaky", "evt-flaky")])
        .await;
    let mut seen = 0;
    for _ in 0..3 {
        let report = run_once(&harness, 10, b.visibility()).await.unwrap();
        seen += report.messages.len();
        assert!(report.failed.len() <= 1);
        if seen == 2 {
            break;
        }
    }
    assert_eq!(seen, 2);
    b.pass_visibility().await;

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let options = PollOptions {
        max_messages: 10,
        visibility: b.visibility(),
        idle_min: Duration::from_millis(10),
        idle_max: Duration::from_millis(50),
    };
    let task = tokio::spawn({
        let harness = harness.clone();
        async move { run_until(&harness, options, shutdown).await }
    });
    b.send_events(&[event("later", "evt-later")]).await;
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while handler.calls("later") == 0 || handler.calls("flaky") < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run_until stops when asked")
        .unwrap();
    assert!(waited.is_ok(), "the loop handled the queued messages");
    b.pass_visibility().await;
    assert!(
        b.receive().await.is_empty(),
        "handled messages were deleted"
    );
    assert_eq!(handler.calls("ok"), 1);
}

// ---------------------------------------------------------------------------------------------
// Batches: a batch-aware handler gets the claimed events of a batch in one call.

fn batch_harness(b: &Backend, batched: &Arc<Batched>, config: HarnessConfig) -> Harness {
    b.harness_with(batched.clone(), b.store.clone(), config)
}

/// Every claimed event of the batch goes to one `handle_batch` call.
async fn batch_in_one_call(b: Backend) {
    let handler = ScriptedHandler::new();
    let batched = Batched::new(&handler, 0);
    let harness = batch_harness(&b, &batched, b.config());
    b.send_events(&[
        event("a", "evt-a"),
        event("b", "evt-b"),
        event("c", "evt-c"),
    ])
    .await;
    let round = b.round(&harness).await;
    assert_eq!(round.report.messages.len(), 3);
    assert!(round.report.failed.is_empty(), "{:?}", round.report);
    assert_eq!(batched.batches(), [vec!["a", "b", "c"]]);
    for l in ["a", "b", "c"] {
        assert_eq!(round.outcome(l), Outcome::Synced);
        let trail = b.audit(&record_key(l)).await;
        assert_eq!(trail[0].outcome, Outcome::Synced);
        assert_eq!(trail[0].written, Some(json!({"id": l, "status": "new"})));
    }
}

/// What a round made of a message: outcome, disposition, its audit trail (outcome, class,
/// message, attempt) and its dead letter (class, reason, attempts).
type Settlement = (
    Outcome,
    Disposition,
    Vec<(Outcome, Option<String>, Option<String>, u32)>,
    Option<(String, String, u32)>,
);

async fn settlement(b: &Backend, round: &Round, label: &str) -> Settlement {
    let trail = b.audit(&record_key(label)).await;
    let letter = b
        .dead_letter(&event_letter_id(&format!("evt-{label}")))
        .await;
    (
        round.outcome(label),
        round.disposition(label),
        trail
            .iter()
            .map(|a| {
                (
                    a.outcome,
                    a.error_class.clone(),
                    a.error_message.clone(),
                    a.attempt,
                )
            })
            .collect(),
        letter.map(|d| (d.error_class, d.reason, d.attempts)),
    )
}

/// Mixed answers from one batch call (a 207: some synced, some refused, some to retry) settle
/// exactly as the same answers from one call per message.
async fn batch_mixed_results(b: Backend) {
    let kinds = ["ok", "bad", "flaky", "same", "skip"];
    let handler = ScriptedHandler::new();
    for prefix in ["one", "all"] {
        handler.set(&format!("{prefix}-bad"), Script::Bad);
        handler.set(&format!("{prefix}-flaky"), Script::FailTimes(1));
        handler.set(&format!("{prefix}-same"), Script::Same);
        handler.set(&format!("{prefix}-skip"), Script::Skip);
    }
    let single = b.harness(&handler);
    let batched = Batched::new(&handler, 0);
    let batch = batch_harness(&b, &batched, b.config());

    let mut settled = Vec::new();
    for (prefix, harness) in [("one", &single), ("all", &batch)] {
        let labels = kinds.map(|k| format!("{prefix}-{k}"));
        let events: Vec<SyncEvent> = labels
            .iter()
            .map(|l| event(l, &format!("evt-{l}")))
            .collect();
        b.send_events(&events).await;
        let round = b.round(harness).await;
        assert_eq!(round.report.messages.len(), 5, "{:?}", round.report);
        let mut by_kind = Vec::new();
        for l in &labels {
            by_kind.push(settlement(&b, &round, l).await);
        }
        settled.push(by_kind);
        // The flaky one comes back (at once on moto): let it sync before the next round.
        b.wait(chrono::Duration::seconds(61), 1).await;
        let retry = b.round(harness).await;
        assert_eq!(retry.outcome(&format!("{prefix}-flaky")), Outcome::Synced);
    }
    assert_eq!(settled[0], settled[1]);
    let by_kind: HashMap<&str, &Settlement> = kinds.iter().copied().zip(&settled[1]).collect();
    assert_eq!(by_kind["ok"].0, Outcome::Synced);
    assert_eq!(by_kind["bad"].0, Outcome::DeadLettered);
    assert_eq!(by_kind["bad"].1, Disposition::MovedToDeadLetter);
    assert!(by_kind["bad"].3.is_some());
    assert_eq!(by_kind["flaky"].0, Outcome::Retrying);
    assert_eq!(by_kind["flaky"].1, Disposition::Retry);
    assert!(by_kind["flaky"].3.is_none());
    assert_eq!(by_kind["same"].0, Outcome::Unchanged);
    assert_eq!(by_kind["skip"].0, Outcome::Skipped);
    assert_eq!(
        batched.batches(),
        [
            vec!["all-bad", "all-flaky", "all-ok", "all-same", "all-skip"],
            vec!["all-flaky"],
        ]
    );
    assert_eq!(b.dead_depth().await, 2);
}

/// Events already handled, and a second copy of an event in the same batch, are settled as
/// duplicates without reaching the handler.
async fn batch_duplicates_filtered(b: Backend) {
    let handler = ScriptedHandler::new();
    let batched = Batched::new(&handler, 0);
    let harness = batch_harness(&b, &batched, b.config());
    b.send_events(&[event("done", "evt-done")]).await;
    assert_eq!(b.round(&harness).await.outcome("done"), Outcome::Synced);

    b.send_events(&[
        event("done", "evt-done"),
        event("new", "evt-new"),
        event("twin", "evt-twin"),
        event("twin", "evt-twin"),
    ])
    .await;
    let mut outcomes: HashMap<String, Vec<Outcome>> = HashMap::new();
    for _ in 0..3 {
        let round = b.round(&harness).await;
        for (label, o) in round.outcomes_by_label() {
            outcomes.entry(label).or_default().extend(o);
        }
        if outcomes.values().map(Vec::len).sum::<usize>() == 4 {
            break;
        }
    }
    outcomes
        .get_mut("twin")
        .unwrap()
        .sort_by_key(|o| o.as_str());
    assert_eq!(outcomes["done"], [Outcome::Duplicate]);
    assert_eq!(outcomes["new"], [Outcome::Synced]);
    assert_eq!(outcomes["twin"], [Outcome::Duplicate, Outcome::Synced]);
    assert_eq!(handler.calls("done"), 1);
    assert_eq!(handler.calls("twin"), 1);
    let batches = batched.batches();
    assert_eq!(batches[0], ["done"]);
    for batch in &batches[1..] {
        assert!(!batch.contains(&"done".to_string()), "{batches:?}");
        let mut unique = batch.clone();
        unique.dedup();
        assert_eq!(&unique, batch, "a batch holds each event once");
    }
}

/// A panic in a batch call fails every event in it, transiently.
async fn batch_panic(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("boom", Script::Panic);
    let batched = Batched::new(&handler, 0);
    let harness = batch_harness(&b, &batched, b.config());
    b.send_events(&[
        event("before", "evt-before"),
        event("boom", "evt-boom"),
        event("after", "evt-after"),
    ])
    .await;
    let round = b.round(&harness).await;
    assert_eq!(round.failed_labels(), ["after", "before", "boom"]);
    for l in ["after", "before", "boom"] {
        assert_eq!(round.outcome(l), Outcome::Retrying);
        let trail = b.audit(&record_key(l)).await;
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].error_message.as_deref(), Some("handler panicked"));
    }
    assert_eq!(b.dead_depth().await, 0);
}

/// A handler answering fewer results than events: the events without one are retried.
async fn batch_wrong_count(b: Backend) {
    let handler = ScriptedHandler::new();
    let batched = Batched::new(&handler, 1);
    let harness = batch_harness(&b, &batched, b.config());
    b.send_events(&[
        event("x", "evt-x"),
        event("y", "evt-y"),
        event("z", "evt-z"),
    ])
    .await;
    let round = b.round(&harness).await;
    let given = batched.batches.lock().unwrap()[0].clone();
    let unanswered = given.last().unwrap();
    assert_eq!(round.failed_labels(), std::slice::from_ref(unanswered));
    assert_eq!(round.outcome(unanswered), Outcome::Retrying);
    let trail = b.audit(&record_key(unanswered)).await;
    let message = trail[0].error_message.as_deref().unwrap();
    assert!(
        message.contains("returned 2 results for 3 events"),
        "{message}"
    );
    for answered in &given[..2] {
        assert_eq!(round.outcome(answered), Outcome::Synced);
    }
}

/// In-invocation retries call the handler again with the transiently failed events only.
async fn batch_retry_subset(b: Backend) {
    let handler = ScriptedHandler::new();
    handler.set("flaky", Script::FailTimes(2));
    handler.set("bad", Script::Bad);
    let batched = Batched::new(&handler, 0);
    let mut config = b.config();
    config.retry.attempts = 3;
    let harness = batch_harness(&b, &batched, config);
    b.send_events(&[
        event("ok", "evt-ok"),
        event("flaky", "evt-flaky"),
        event("bad", "evt-bad"),
    ])
    .await;
    let round = b.round(&harness).await;
    assert!(round.report.failed.is_empty(), "{:?}", round.report);
    assert_eq!(round.outcome("ok"), Outcome::Synced);
    assert_eq!(round.outcome("flaky"), Outcome::Synced);
    assert_eq!(round.outcome("bad"), Outcome::DeadLettered);
    assert_eq!(
        batched.batches(),
        [vec!["bad", "flaky", "ok"], vec!["flaky"], vec!["flaky"]]
    );
    assert_eq!(handler.calls("ok"), 1);
}

// ---------------------------------------------------------------------------------------------
// Holds: a vendor's daily quota keeps a message in its queue without spending its receives.

/// The audit says the event is held, and until when; nothing is dead-lettered.
async fn assert_held(b: &Backend, label: &str, until: DateTime<Utc>) {
    let trail = b.audit(&record_key(label)).await;
    let held = &trail[0];
    assert_eq!(held.outcome, Outcome::Retrying);
    assert_eq!(held.error_class.as_deref(), Some("held"));
    let until = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        held.error_message.as_deref(),
        Some(format!("daily limit reached; held until {until}").as_str())
    );
    assert!(
        b.dead_letter(&event_letter_id(&format!("evt-{label}")))
            .await
            .is_none()
    );
    assert_eq!(b.dead_depth().await, 0);
}

/// With receives to spare, a held message is hidden until the hold ends.
async fn hold_hides(b: Backend) {
    assert_eq!(b.max_receives, 5);
    let hold = if b.is_moto() {
        chrono::Duration::seconds(5)
    } else {
        chrono::Duration::hours(2)
    };
    let until = b.clock.now() + hold;
    let handler = ScriptedHandler::new();
    handler.set("held", Script::Hold(until));
    let batched = Batched::new(&handler, 0);
    let harness = batch_harness(&b, &batched, b.config());
    b.send_events(&[event("held", "evt-held"), event("ok", "evt-ok")])
        .await;

    let round = b.round(&harness).await;
    assert_eq!(round.failed_labels(), ["held"]);
    assert_eq!(round.outcome("held"), Outcome::Retrying);
    assert_eq!(round.disposition("held"), Disposition::Retry);
    assert_eq!(round.outcome("ok"), Outcome::Synced);
    assert_held(&b, "held", until).await;
    assert_eq!(
        handler.calls("held"),
        1,
        "a hold is not retried in the invocation"
    );

    // Past the receive's own timeout, and the retry backoff's, it is still hidden...
    b.wait(chrono::Duration::minutes(119), 1).await;
    assert!(b.receive().await.is_empty());
    // ...and comes back once the hold is over, having spent a single receive on it.
    handler.set("held", Script::Sync);
    b.wait(chrono::Duration::minutes(2), 2).await;
    let round = b.round(&harness).await;
    assert_eq!(round.outcome("held"), Outcome::Synced);
    let trail = b.audit(&record_key("held")).await;
    assert_eq!(trail[0].attempt, 2);
    assert_eq!(b.dead_depth().await, 0);
}

/// Without receives to spare, a held message is replaced by a fresh, delayed copy whose
/// receive count starts over: held again and again, it is never dead-lettered.
async fn hold_copies(b: Backend) {
    assert_eq!(b.max_receives, 2);
    let hold = if b.is_moto() {
        chrono::Duration::seconds(3)
    } else {
        chrono::Duration::hours(2)
    };
    let until = b.clock.now() + hold;
    let handler = ScriptedHandler::new();
    handler.set("held", Script::Hold(until));
    let harness = b.harness(&handler);
    b.send_events(&[event("held", "evt-held")]).await;

    let first = b.round(&harness).await;
    assert!(first.report.failed.is_empty(), "{:?}", first.report);
    assert_eq!(first.outcome("held"), Outcome::Retrying);
    assert_eq!(first.disposition("held"), Disposition::Done);
    assert_held(&b, "held", until).await;
    let first_id = first.id_of("held").to_string();

    // The copy waits towards the hold's end, at most SQS's 15 minutes...
    b.wait(chrono::Duration::minutes(14), 0).await;
    assert!(b.receive().await.is_empty());
    // ...then is held again on its first receive, and copied again.
    b.wait(chrono::Duration::minutes(2), 2).await;
    let second = b.round(&harness).await;
    assert_ne!(second.id_of("held"), first_id, "a fresh copy");
    assert_eq!(second.outcome("held"), Outcome::Retrying);
    if !b.is_moto() {
        // On moto the hold is over by now; on the embedded queue it holds for another 1h44.
        assert_eq!(second.disposition("held"), Disposition::Done);
        assert_held(&b, "held", until).await;
        b.wait(chrono::Duration::minutes(16), 0).await;
    }

    handler.set("held", Script::Sync);
    let third = b.round(&harness).await;
    assert_eq!(third.outcome("held"), Outcome::Synced);
    let trail = b.audit(&record_key("held")).await;
    let attempts: Vec<(Outcome, u32)> = trail.iter().map(|a| (a.outcome, a.attempt)).collect();
    assert_eq!(
        attempts,
        [
            (Outcome::Synced, 1),
            (Outcome::Retrying, 1),
            (Outcome::Retrying, 1)
        ],
        "each copy starts its receives over"
    );
    assert!(b.dead_letter(&event_letter_id("evt-held")).await.is_none());
    assert_eq!(b.dead_depth().await, 0);
    b.pass_visibility().await;
    assert!(b.receive().await.is_empty(), "no copy is left behind");
}

// ---------------------------------------------------------------------------------------------
// One test per scenario and adapter set.

macro_rules! on_both {
    ($($scenario:ident($max:expr)),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::embedded($max).await).await;
                }
            )*
        }
        mod on_moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::moto($max).await).await;
                }
            )*
        }
    };
}

on_both! {
    duplicates(5),
    poison_message(5),
    partial_failure(5),
    panic_is_contained(5),
    permanent_vs_transient(5),
    last_receive(2),
    replay_resolves(2),
    store_outage(5),
    lambda_event(5),
    local_loop(5),
    batch_in_one_call(5),
    batch_mixed_results(5),
    batch_duplicates_filtered(5),
    batch_panic(5),
    batch_wrong_count(5),
    batch_retry_subset(5),
    hold_hides(5),
    hold_copies(2),
}

mod moto {
    //! The AWS adapters on a fresh set of tables and a queue pair in the shared moto server.

    use std::sync::Arc;

    use mlc::ports::{Queue, Store, SystemClock};
    use mlc_tests::moto::AwsEnv;

    pub(crate) struct Env(AwsEnv);

    impl Env {
        /// Tables and a queue (logical name `logical`) with its DLQ, redriving after
        /// `max_receives` receives.
        pub(crate) async fn start(logical: &str, max_receives: u32) -> Self {
            Self(AwsEnv::start(logical, max_receives, Arc::new(SystemClock)).await)
        }

        pub(crate) fn queue(&self) -> Arc<dyn Queue> {
            self.0.queue.clone()
        }

        pub(crate) fn store(&self) -> Arc<dyn Store> {
            self.0.store.clone()
        }

        /// What `StartMessageMoveTask` does (moto lacks it).
        pub(crate) async fn redrive_by_hand(&self) {
            self.0.pair.redrive_by_hand().await
        }
    }
}
