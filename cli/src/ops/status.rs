//! `ml-connector status`: one row per applied connection — last event and last sync (from the
//! audit trail), queue and DLQ depth, open dead letters, credential expiry, the poll cursor —
//! and the problems found (broken credentials, open dead letters).

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Days, NaiveDate, Utc};
use mlc::connections::{Connection, ConnectionSet};
use mlc::ports::secret_names;
use mlc::ports::{AuditEntry, DeadLetterStatus, Outcome, PortError};
use mlc::tokens::StoredTokens;
use mlc::vendor::Vendor;
use mlc::vendors::spec::{CredentialKind, cursor_name};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::output::{self, when};
use super::{Attention, Common};
use crate::target::Target;
use crate::vendors;

pub(crate) const AFTER_HELP: &str = "\
Last event and last sync come from the audit trail, read day by day from today back --days
days (the newest entries of each outcome per day). Token expiry is read from each credential
set's `expires_at` without printing any secret; a missing, unreadable or expired set is broken.
FreshBooks and QuickBooks access tokens are refreshed automatically (the poller's token jobs, or
on first use), so an expired one usually means the refresh is failing: run `ml-connector ping`.
A set the vendor refused to refresh shows `needs reconnect` until `ml-connector connect` rewrites
it. The poll cursor is the FreshBooks fallback poll's or the QuickBooks CDC sweep's. Warnings
(not counted as problems) say what a target takes only in part, with the fix: e.g. a HubSpot
portal that refused invoice writes (`ml-connector backfill <connection> --only invoices` once
it takes them) or commerce payments (payments go to the contact's properties meanwhile).

Examples:
  ml-connector status                       the local store (.ml-connector/local.db)
  ml-connector status --stack               the stack named in samconfig.toml
  ml-connector status --stack=prod --json   for a script or a dashboard

Exit codes: 0 healthy; 1 broken credentials or open dead letters (or the command failed);
2 usage error.";

/// How many entries of one outcome on one day are read to find each connection's newest.
const SCAN_PER_DAY: usize = 500;

#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// How many days of audit trail to search for the last event and sync.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=90))]
    days: u64,
    #[command(flatten)]
    common: Common,
}

/// The newest audit entry seen for a connection.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Seen {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub record_key: String,
}

/// One queue's depth, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueueStatus {
    pub name: String,
    pub visible: Option<u64>,
    pub in_flight: Option<u64>,
    pub dead: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state of one credential set (never its value).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CredentialStatus {
    pub side: &'static str,
    pub name: String,
    pub vendor: Vendor,
    /// `ok`, `missing`, `unreadable`, `needs reconnect` or `expired`.
    pub state: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl CredentialStatus {
    fn broken(&self) -> bool {
        self.state != "ok"
    }
}

/// Everything `status` says about one connection.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectionStatus {
    pub name: String,
    pub source: String,
    pub target: String,
    pub enabled: bool,
    pub last_event: Option<Seen>,
    pub last_sync: Option<DateTime<Utc>>,
    pub queue: QueueStatus,
    pub open_dead_letters: usize,
    pub credentials: Vec<CredentialStatus>,
    pub poll_cursor: Option<String>,
    pub problems: Vec<String>,
    /// What works only in part, each with its fix (a HubSpot portal refusing invoice writes);
    /// not counted as problems.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    target: String,
    at: DateTime<Utc>,
    connections: &'a [ConnectionStatus],
    /// Open dead letters not tied to an applied connection (e.g. undecodable webhook bodies).
    other_open_dead_letters: usize,
}

pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let target = args.common.target.open().await?;
    let connections = target.connections().await?;
    let now = target.clock.now();
    let spinner = output::spinner("reading status", args.common.json);
    let (statuses, other_open) = collect(&target, &connections, now, args.days).await?;
    spinner.finish_and_clear();

    if args.common.json {
        output::print_json(&Report {
            target: target.place.to_string(),
            at: now,
            connections: &statuses,
            other_open_dead_letters: other_open,
        })?;
    } else {
        print_tables(&target, &statuses, other_open, now);
    }
    let problems: usize = statuses.iter().map(|s| s.problems.len()).sum();
    if problems > 0 || other_open > 0 {
        return Err(Attention(format!(
            "{} problem(s) need attention",
            problems + usize::from(other_open > 0)
        ))
        .into());
    }
    Ok(())
}

/// The status of every applied connection, and the count of open dead letters that belong to
/// none of them.
pub(crate) async fn collect(
    target: &Target,
    connections: &ConnectionSet,
    now: DateTime<Utc>,
    days: u64,
) -> anyhow::Result<(Vec<ConnectionStatus>, usize)> {
    let readings = Readings::read(target, connections, now, days).await?;
    let mut statuses = Vec::new();
    for (name, c) in &connections.connections {
        statuses.push(readings.connection_status(target, name, c, now).await?);
    }
    Ok((statuses, readings.other_open))
}

/// What `status` reads once for all the connections.
struct Readings {
    last_events: LastEvents,
    last_syncs: LastSyncs,
    /// Open dead letters per applied connection, and those of none.
    open_by_connection: BTreeMap<String, usize>,
    other_open: usize,
    /// Each target queue's depth, by name.
    depths: BTreeMap<String, QueueStatus>,
}

impl Readings {
    async fn read(
        target: &Target,
        connections: &ConnectionSet,
        now: DateTime<Utc>,
        days: u64,
    ) -> anyhow::Result<Self> {
        let (last_events, last_syncs) = scan_audit(target, connections, now, days).await?;
        let (open_by_connection, other_open) = open_dead_letters(target, connections).await?;
        let mut depths = BTreeMap::new();
        for queue in target.queue_names(connections) {
            let status = queue_status(target, &queue).await;
            depths.insert(queue, status);
        }
        Ok(Self {
            last_events,
            last_syncs,
            open_by_connection,
            other_open,
            depths,
        })
    }

    /// Everything `status` says about connection `name`: these readings, its credential sets
    /// and its poll cursor.
    async fn connection_status(
        &self,
        target: &Target,
        name: &str,
        c: &Connection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ConnectionStatus> {
        let mut credentials = Vec::new();
        for (side, endpoint) in [("source", &c.source), ("target", &c.target)] {
            credentials.push(
                credential_status(target, side, endpoint.vendor, &endpoint.credentials, now)
                    .await?,
            );
        }
        let poll_cursor = poll_cursor(target, c).await?;
        let queue = self.depths.get(c.queue()).cloned().unwrap_or(QueueStatus {
            name: c.queue().to_string(),
            visible: None,
            in_flight: None,
            dead: None,
            error: Some("the stack has no queue for this target".to_string()),
        });
        let open_dead_letters = self.open_by_connection.get(name).copied().unwrap_or(0);
        let warnings = match vendors::hooks(c.target.vendor) {
            Some(hooks) => hooks
                .status_warnings(&*target.store, name, c)
                .await
                .with_context(|| format!("reading `{name}`'s target records"))?,
            None => Vec::new(),
        };
        Ok(ConnectionStatus {
            name: name.to_string(),
            source: format!(
                "{}/{}",
                c.source.vendor,
                c.source.account.as_deref().unwrap_or("")
            ),
            target: c.target.vendor.to_string(),
            enabled: c.enabled,
            last_event: self.last_events.get(name).cloned(),
            last_sync: self.last_syncs.get(name).copied(),
            queue,
            open_dead_letters,
            problems: problems(&credentials, open_dead_letters),
            credentials,
            poll_cursor,
            warnings,
        })
    }
}

/// Open dead letters per applied connection, and the count of those that belong to none.
async fn open_dead_letters(
    target: &Target,
    connections: &ConnectionSet,
) -> anyhow::Result<(BTreeMap<String, usize>, usize)> {
    let open = target
        .store
        .list_dead_letters(DeadLetterStatus::Open, 10_000)
        .await
        .context("listing open dead letters")?;
    let mut by_connection: BTreeMap<String, usize> = BTreeMap::new();
    let mut other = 0;
    for letter in &open {
        match &letter.connection {
            Some(c) if connections.connections.contains_key(c.as_str()) => {
                *by_connection.entry(c.clone()).or_default() += 1;
            }
            _ => other += 1,
        }
    }
    Ok((by_connection, other))
}

/// A queue's depth, or why it could not be read.
async fn queue_status(target: &Target, queue: &str) -> QueueStatus {
    match target.queue.depth(queue).await {
        Ok(d) => QueueStatus {
            name: queue.to_string(),
            visible: Some(d.visible),
            in_flight: Some(d.in_flight),
            dead: Some(d.dead),
            error: None,
        },
        Err(e) => QueueStatus {
            name: queue.to_string(),
            visible: None,
            in_flight: None,
            dead: None,
            error: Some(match e {
                PortError::NotFound { .. } => "no such queue yet".to_string(),
                e => e.to_string(),
            }),
        },
    }
}

/// The cursor of the connection's fallback poll or CDC sweep, for a source that has one.
async fn poll_cursor(target: &Target, c: &Connection) -> anyhow::Result<Option<String>> {
    let vendor = c.source.vendor;
    match c.source.account.as_deref() {
        Some(account) if mlc::vendors::spec(vendor).polled => target
            .store
            .get_cursor(&cursor_name(vendor, account))
            .await
            .context("reading the poll cursor"),
        _ => Ok(None),
    }
}

/// A connection's problems: its broken credential sets and its open dead letters.
fn problems(credentials: &[CredentialStatus], open_dead_letters: usize) -> Vec<String> {
    let mut problems = Vec::new();
    for cred in credentials.iter().filter(|c| c.broken()) {
        problems.push(format!(
            "{} credential set `{}` is {}{}",
            cred.vendor,
            cred.name,
            cred.state,
            cred.problem
                .as_deref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        ));
    }
    if open_dead_letters > 0 {
        problems.push(format!(
            "{open_dead_letters} open dead letter(s): `ml-connector dead-letters list`, then `ml-connector replay`"
        ));
    }
    problems
}

type LastEvents = BTreeMap<String, Seen>;
type LastSyncs = BTreeMap<String, DateTime<Utc>>;

/// Each connection's newest audit entry and newest `synced` one, day by day from today back.
async fn scan_audit(
    target: &Target,
    connections: &ConnectionSet,
    now: DateTime<Utc>,
    days: u64,
) -> anyhow::Result<(LastEvents, LastSyncs)> {
    let mut events: LastEvents = BTreeMap::new();
    let mut syncs: LastSyncs = BTreeMap::new();
    let wanted = connections.connections.len();
    let today = now.date_naive();
    for back in 0..days {
        let Some(day) = today.checked_sub_days(Days::new(back)) else {
            break;
        };
        for outcome in Outcome::ALL {
            let entries = read_day(target, outcome, day).await?;
            for e in entries {
                if !connections.connections.contains_key(e.connection.as_str()) {
                    continue;
                }
                // An older day never beats what a newer day found.
                let newer_day_found = events
                    .get(&e.connection)
                    .is_some_and(|s| s.at.date_naive() > day);
                if !newer_day_found && events.get(&e.connection).is_none_or(|s| s.at < e.at) {
                    events.insert(
                        e.connection.clone(),
                        Seen {
                            at: e.at,
                            outcome: e.outcome,
                            record_key: e.record_key.clone(),
                        },
                    );
                }
                if e.outcome == Outcome::Synced
                    && syncs.get(&e.connection).is_none_or(|at| *at < e.at)
                {
                    syncs.insert(e.connection.clone(), e.at);
                }
            }
        }
        if events.len() == wanted && syncs.len() == wanted {
            break;
        }
    }
    Ok((events, syncs))
}

async fn read_day(
    target: &Target,
    outcome: Outcome,
    day: NaiveDate,
) -> anyhow::Result<Vec<AuditEntry>> {
    target
        .store
        .audit_by_outcome(outcome, day, SCAN_PER_DAY)
        .await
        .with_context(|| format!("reading the audit trail ({outcome} on {day})"))
}

/// The state of the credential set `name`, from its secret, without exposing the value.
pub(crate) async fn credential_status(
    target: &Target,
    side: &'static str,
    vendor: Vendor,
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<CredentialStatus> {
    let secret = secret_names::credentials(name);
    let mut status = CredentialStatus {
        side,
        name: name.to_string(),
        vendor,
        state: "ok",
        expires_at: None,
        problem: None,
    };
    let value = target
        .secrets
        .get(&secret)
        .await
        .with_context(|| format!("reading secret `{secret}`"))?;
    match value {
        Some(value) => status.judge(&value, now),
        None => {
            status.state = "missing";
            status.problem = Some(format!(
                "no secret `{secret}`: `ml-connector connect {vendor}` or `ml-connector secrets put {secret}`"
            ));
        }
    }
    Ok(status)
}

impl CredentialStatus {
    /// Sets the state from the set's value: `unreadable`, `needs reconnect`, `expired` or
    /// still `ok`, with the expiry when the set has one.
    fn judge(&mut self, value: &secrecy::SecretString, now: DateTime<Utc>) {
        let (vendor, name) = (self.vendor, &self.name);
        let tokens = StoredTokens::parse(value);
        if let Some(problem) = unreadable(vendor, value, &tokens) {
            self.state = "unreadable";
            self.problem = Some(problem);
            return;
        }
        self.expires_at = match &tokens {
            Ok(t) => t.expires_at,
            Err(_) => expires_at(value),
        };
        if let Some(reason) = tokens.ok().and_then(|t| t.reconnect_reason()) {
            // The vendor refused the refresh token; workers leave events in the queue until then.
            self.state = "needs reconnect";
            self.problem = Some(format!(
                "{reason}; events wait in the queue: `ml-connector connect {vendor} --name {name}`"
            ));
        } else if self.expires_at.is_some_and(|at| at <= now) {
            self.state = "expired";
            self.problem = Some(match mlc::vendors::spec(vendor).credentials {
                CredentialKind::OAuth => {
                    "the access token has expired and was not refreshed; `ml-connector ping` checks the refresh token".to_string()
                }
                CredentialKind::Checked(_) | CredentialKind::Keys(_) => {
                    "the token has expired; `ml-connector connect` renews it".to_string()
                }
            });
        }
    }
}

/// Why the secret is not a credential set of the vendor, if it is not; `tokens` is its parse as
/// a token set. Never quotes the value.
fn unreadable(
    vendor: Vendor,
    value: &secrecy::SecretString,
    tokens: &Result<StoredTokens, String>,
) -> Option<String> {
    match mlc::vendors::spec(vendor).credentials {
        CredentialKind::Checked(check) => check(value.expose_secret()).err(),
        CredentialKind::OAuth => tokens
            .as_ref()
            .err()
            .map(|e| format!("{e} (needs access_token and refresh_token)")),
        CredentialKind::Keys(_) => {
            match serde_json::from_str::<serde_json::Value>(value.expose_secret()) {
                Ok(serde_json::Value::Object(_)) => None,
                _ => Some("not a JSON object".to_string()),
            }
        }
    }
}

/// The `expires_at` of a set that is not a token set, if it has one.
fn expires_at(value: &secrecy::SecretString) -> Option<DateTime<Utc>> {
    let json: serde_json::Value = serde_json::from_str(value.expose_secret()).ok()?;
    let raw = json.get("expires_at")?.as_str()?;
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn print_tables(
    target: &Target,
    statuses: &[ConnectionStatus],
    other_open: usize,
    now: DateTime<Utc>,
) {
    println!("{} — {}", target.place, output::time(now));
    let mut t = output::table(&[
        "connection",
        "source → target",
        "last event",
        "last sync",
        "queue (waiting/in flight)",
        "DLQ",
        "open DLs",
        "credentials",
        "poll cursor",
    ]);
    for s in statuses {
        t.add_row(connection_row(s, now));
    }
    println!("{t}");
    print_problems(statuses, other_open);
}

/// A connection's row of the table.
fn connection_row(s: &ConnectionStatus, now: DateTime<Utc>) -> Vec<String> {
    let queue = match (&s.queue.error, s.queue.visible, s.queue.in_flight) {
        (Some(e), _, _) => format!("{}: {e}", s.queue.name),
        (None, Some(v), Some(f)) => format!("{}: {v}/{f}", s.queue.name),
        _ => s.queue.name.clone(),
    };
    let creds = s
        .credentials
        .iter()
        .map(|c| {
            let expiry = c
                .expires_at
                .map(|at| format!(", expires {}", output::relative(now, at)))
                .unwrap_or_default();
            format!("{} {}: {}{expiry}", c.side, c.name, c.state)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let name = if s.enabled {
        s.name.clone()
    } else {
        format!("{} (disabled)", s.name)
    };
    vec![
        name,
        format!("{} → {}", s.source, s.target),
        s.last_event
            .as_ref()
            .map(|e| format!("{} {}", when(now, Some(e.at)), e.outcome))
            .unwrap_or_else(|| "-".to_string()),
        when(now, s.last_sync),
        queue,
        s.queue
            .dead
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".to_string()),
        s.open_dead_letters.to_string(),
        creds,
        s.poll_cursor.clone().unwrap_or_else(|| "-".to_string()),
    ]
}

/// The problems under the table, or that there are none.
fn print_problems(statuses: &[ConnectionStatus], other_open: usize) {
    let problems: Vec<String> = statuses
        .iter()
        .flat_map(|s| s.problems.iter().map(move |p| format!("{}: {p}", s.name)))
        .collect();
    if other_open > 0 {
        println!(
            "{other_open} open dead letter(s) belong to no applied connection: `ml-connector dead-letters list`"
        );
    }
    let warnings: Vec<String> = statuses
        .iter()
        .flat_map(|s| s.warnings.iter().map(move |w| format!("{}: {w}", s.name)))
        .collect();
    if !warnings.is_empty() {
        println!("Warnings:");
        for w in warnings {
            println!("  - {w}");
        }
    }
    if problems.is_empty() && other_open == 0 {
        println!("All connections healthy.");
    } else {
        println!("Needs attention:");
        for p in problems {
            println!("  - {p}");
        }
    }
}
