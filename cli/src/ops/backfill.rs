//! `ml-connector backfill <connection>`: list the connection's source records and enqueue one
//! event per record with origin `backfill`, through the same fan-out as webhooks and polls.
//!
//! Each run's events get ids of their own (the run's start is part of the derived id), so the
//! worker's idempotency does not drop them as repeats of earlier webhook or poll events; the
//! worker's id map then skips the vendor write of every record that already matches.
//!
//! For a Mailchimp target the store's automations are paused first (`begin_backfill`:
//! `is_syncing: true`), so historical orders do not e-mail customers. They stay paused until
//! `ml-connector backfill --finish <connection>`, which refuses while the queue still holds
//! messages: a backfill event handled after `end_backfill` would pause the store again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;
use mlc::app::LiveClients;
use mlc::connections::{Connection, ConnectionSet};
use mlc::event::{Origin, SourceEvent};
use mlc::fanout::{FanOut, FanOutReport};
use mlc::flows::Flow;
use serde::Serialize;

use super::output;
use super::{Attention, Common, UsageError};
use crate::clients::clients_config;
use crate::target::Target;
use crate::vendors::{self, BackfillSource, BackfillTarget, Paused};

pub(crate) const AFTER_HELP: &str = "\
Lists the connection's FreshBooks records of the entities its flow reads (clients, invoices and
payments for Mailchimp) changed since --since (all of them without it: everything since
2000-01-01) and enqueues one event per record for the connection's worker, origin `backfill`.
Unchanged records cost no vendor write: the worker compares each with what it last wrote.

For a Mailchimp target the e-commerce store's automations are paused first, so historical
orders send no e-mails. Turn them back on once the worker has drained the queue
(`ml-connector status` shows 0 waiting):
  ml-connector backfill --finish <connection>

Locally the worker is `ml-connector dev`; on a stack the worker Lambda takes the events at once.

--only lists just some of those entities (e.g. `invoices`, or `client,payment`; singular or
plural; bill_vendor for HubSpot). For a HubSpot target,
`--only invoices` first clears the connection's record that the portal refused invoice writes
(run it once the portal takes them), so the worker writes the skipped invoices.

Examples:
  ml-connector backfill acme-to-mailchimp
  ml-connector backfill acme-to-mailchimp --since 2026-01-01 --stack=prod
  ml-connector backfill acme-books-to-hubspot --only invoices
  ml-connector backfill --finish acme-to-mailchimp --stack

Exit codes: 0 enqueued (or finished); 1 the listing or the enqueue failed, or --finish found the
queue not yet drained; 2 usage error (unknown or disabled connection, an entity --only does not
know).";

/// What a full backfill lists from: FreshBooks' `updated_min` needs a date.
const FULL_SINCE: &str = "2000-01-01";
/// Events per fan-out call (the bar moves per chunk).
const CHUNK: usize = 100;
/// How long fan-out-made dead letters and oversize bodies are kept (the stack's DLQ retention).
const RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(clap::Args)]
pub(crate) struct BackfillArgs {
    /// The connection (its name in the connections file).
    connection: String,
    /// Only records changed on or after this day (YYYY-MM-DD, US/Eastern as FreshBooks
    /// compares); default: all records.
    #[arg(long, value_name = "DATE")]
    since: Option<NaiveDate>,
    /// Only these of the entities the flow reads (comma-separated, singular or plural:
    /// client, invoice, payment, bill_vendor).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ENTITY",
        conflicts_with = "finish"
    )]
    only: Vec<String>,
    /// End the backfill: resume the Mailchimp store's automations once the queue has drained.
    #[arg(long)]
    finish: bool,
    /// With --finish: resume even though messages are still queued.
    #[arg(long, requires = "finish")]
    force: bool,
    /// FreshBooks API base (e.g. a sandbox's `http://127.0.0.1:<port>`).
    #[arg(long, env = "FRESHBOOKS_API_BASE")]
    freshbooks_api: Option<String>,
    /// Mailchimp API base including `/3.0`; default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    mailchimp_api: Option<String>,
    /// HubSpot API base (e.g. a sandbox's `http://127.0.0.1:<port>`).
    #[arg(long, env = "HUBSPOT_API_BASE")]
    hubspot_api: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Serialize)]
struct Report {
    connection: String,
    since: NaiveDate,
    listed: BTreeMap<&'static str, usize>,
    queued: usize,
    dead_lettered: usize,
    /// The Mailchimp store whose automations are paused, if the target is Mailchimp.
    store_id: Option<String>,
    /// Whether the store existed and is now paused (`false`: created paused by the first event).
    store_paused: Option<bool>,
    #[serde(skip)]
    paused: Option<Paused>,
}

pub(crate) async fn run(args: BackfillArgs) -> anyhow::Result<()> {
    let target = args.common.target.open().await?;
    let connection = applied_connection(&target, &args.connection).await?;
    let clients = clients(&target, &args)?;
    if args.finish {
        return finish(&target, &clients, &args, &connection).await;
    }
    let (source, account) = source(&args.connection, &connection)?;
    let entities = only(Flow::source_entities_of(&connection), &args.only)?;
    let json = args.common.json;
    if !args.only.is_empty()
        && let Some(hooks) = vendors::hooks(connection.target.vendor)
    {
        let lines = hooks
            .before_backfill(
                &*target.store,
                &args.connection,
                &entities,
                target.clock.now(),
            )
            .await?;
        if !json {
            for l in lines {
                println!("{l}");
            }
        }
    }
    let paused = match target_pause(&connection) {
        Some(t) => Some(t.pause(&clients, &args.connection, &connection).await?),
        None => None,
    };
    let since = match args.since {
        Some(d) => d,
        None => FULL_SINCE.parse().context("the full-backfill date")?,
    };
    // The events' versions name this run, so they are not repeats of earlier ones.
    let run_id = target.clock.now().to_rfc3339();
    let listing = source
        .list(
            &clients,
            &connection,
            &account,
            &entities,
            since,
            &run_id,
            json,
        )
        .await?;
    let total = enqueue(
        &target,
        &args.connection,
        &connection,
        &listing.events,
        json,
    )
    .await?;
    let report = Report {
        connection: args.connection.clone(),
        since,
        listed: listing.counts,
        queued: total.queued,
        dead_lettered: total.dead_lettered,
        store_id: paused.as_ref().map(|p| p.id.clone()),
        store_paused: paused.as_ref().map(|p| p.existed),
        paused,
    };
    if json {
        output::print_json(&report)?;
    } else {
        print_report(&target, &report, connection.queue());
    }
    Ok(())
}

/// The applied connection `name`, which must be enabled (else a usage error naming the
/// applied ones).
async fn applied_connection(target: &Target, name: &str) -> anyhow::Result<Connection> {
    let set = target.connections().await?;
    let connection = set.connections.get(name).cloned().ok_or_else(|| {
        UsageError(format!(
            "no applied connection `{name}`; applied: {}",
            set.connections
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if !connection.enabled {
        return Err(UsageError(format!(
            "connection `{name}` is disabled: enable it and apply the connections first"
        ))
        .into());
    }
    Ok(connection)
}

/// The connection's source records changed since a day, as backfill events.
pub(crate) struct Listing {
    /// Records listed per entity.
    pub(crate) counts: BTreeMap<&'static str, usize>,
    pub(crate) events: Vec<SourceEvent>,
}

/// The source account the connection reads and the hooks that list it: backfill reads the
/// sources whose vendor has a [`BackfillSource`].
fn source(
    name: &str,
    connection: &Connection,
) -> anyhow::Result<(&'static dyn BackfillSource, String)> {
    let vendor = connection.source.vendor;
    let Some(source) = vendors::hooks(vendor).and_then(|h| h.backfill_source()) else {
        return Err(UsageError(format!(
            "backfill cannot read {vendor} sources in this release; `{name}` reads {vendor}"
        ))
        .into());
    };
    let account = connection
        .source
        .account
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| anyhow!("connection `{name}` has no source account"))?;
    Ok((source, account.into()))
}

/// The entities to list: `--only`'s (singular or plural, checked against the ones the
/// connection's flow reads, in its order), else all of them.
fn only(listed: &'static [&'static str], asked: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if asked.is_empty() {
        return Ok(listed.to_vec());
    }
    let mut wanted = Vec::new();
    for a in asked {
        let a = a.trim().to_ascii_lowercase();
        let Some(entity) = listed.iter().find(|e| **e == a || format!("{e}s") == a) else {
            return Err(UsageError(format!(
                "--only `{a}`: not an entity this connection's flow reads; choose from {}",
                listed.join(", ")
            ))
            .into());
        };
        wanted.push(*entity);
    }
    Ok(listed
        .iter()
        .copied()
        .filter(|e| wanted.contains(e))
        .collect())
}

/// What a backfill into the connection's target holds back while it runs (Mailchimp: the
/// store's automations), if anything.
fn target_pause(connection: &Connection) -> Option<&'static dyn BackfillTarget> {
    vendors::hooks(connection.target.vendor).and_then(|h| h.backfill_target())
}

/// Enqueues the events for connection `name` alone, in chunks (a bar unless `json`).
async fn enqueue(
    target: &Target,
    name: &str,
    connection: &Connection,
    events: &[SourceEvent],
    json: bool,
) -> anyhow::Result<FanOutReport> {
    // Only this connection takes the events, even if others read the same account.
    let only = ConnectionSet {
        connections: BTreeMap::from([(name.into(), connection.clone())]),
    };
    let fanout = FanOut::new(
        target.queue.clone(),
        target.store.clone(),
        target.clock.clone(),
        RETENTION,
    );
    let bar = output::bar(events.len() as u64, "enqueuing", json);
    let mut total = FanOutReport::default();
    for chunk in events.chunks(CHUNK) {
        let r = fanout
            .enqueue(&only, chunk, Origin::Backfill)
            .await
            .with_context(|| {
                format!(
                    "enqueuing (after {} queued; running the backfill again is safe)",
                    total.queued
                )
            })?;
        total.queued += r.queued;
        total.dead_lettered += r.dead_lettered;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(total)
}

fn clients(target: &Target, args: &BackfillArgs) -> anyhow::Result<Arc<LiveClients>> {
    let mut config = clients_config(
        args.freshbooks_api.as_deref(),
        args.mailchimp_api.as_deref(),
        None,
    )?;
    if let Some(base) = &args.hubspot_api {
        config.hubspot_api_base = Some(base.clone());
    }
    // The workers' own clients: token refreshes take the same store lease, so the CLI never
    // strands a rotated refresh token.
    Ok(target.app(config).clients()?)
}

/// `--finish`: resume the store's automations once the connection's queue is empty.
async fn finish(
    target: &Target,
    clients: &LiveClients,
    args: &BackfillArgs,
    connection: &Connection,
) -> anyhow::Result<()> {
    let Some(pause) = target_pause(connection) else {
        if !args.common.json {
            println!(
                "Nothing to finish: `{}` targets {}, which has nothing to resume.",
                args.connection, connection.target.vendor
            );
        }
        return Ok(());
    };
    ensure_drained(target, connection.queue(), args.force).await?;
    let resumed = pause.resume(clients, &args.connection, connection).await?;
    if args.common.json {
        output::print_json(&serde_json::json!({
            "connection": args.connection,
            "store_id": resumed.id,
            "store_found": resumed.existed,
            "syncing": false,
        }))?;
    } else if resumed.existed {
        println!("{}: {} resumed.", resumed.what, resumed.held);
    } else {
        bail!(
            "{} does not exist: nothing was synced to it yet",
            resumed.what
        );
    }
    Ok(())
}

/// Reads `queue`'s depth; fails (needing attention) while it still holds messages, unless
/// `force`.
async fn ensure_drained(target: &Target, queue: &str, force: bool) -> anyhow::Result<()> {
    let depth = target
        .queue
        .depth(queue)
        .await
        .with_context(|| format!("reading queue `{queue}`"))?;
    let waiting = depth.visible + depth.in_flight;
    if waiting > 0 && !force {
        return Err(Attention(format!(
            "queue `{queue}` still holds {waiting} message(s); run this again once it has drained \
             (`ml-connector status`), or pass --force"
        ))
        .into());
    }
    Ok(())
}

fn print_report(target: &Target, r: &Report, queue: &str) {
    let mut t = output::table(&["entity", "records"]);
    for (entity, n) in &r.listed {
        t.add_row(vec![format!("{entity}s"), n.to_string()]);
    }
    println!(
        "Backfill of `{}` since {} ({}):",
        r.connection, r.since, target.place
    );
    println!("{t}");
    println!("{} event(s) queued on `{queue}`.", r.queued);
    if r.dead_lettered > 0 {
        println!(
            "{} event(s) kept as dead letters: `{queue}` has no queue in this deployment (deploy its worker, then `ml-connector replay`).",
            r.dead_lettered
        );
    }
    if let Some(p) = &r.paused {
        match p.existed {
            true => println!("{}: {} paused for the backfill.", p.what, p.held),
            false => println!(
                "{} does not exist yet: the first event creates it with {} paused.",
                p.what, p.held
            ),
        }
        println!(
            "When the queue has drained (`ml-connector status` shows 0 waiting), resume them:\n  ml-connector backfill --finish {}",
            r.connection
        );
    }
    if target.local.is_some() {
        println!("Locally the events are handled while `ml-connector dev` runs.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_takes_singulars_and_plurals_in_the_sources_order() {
        const LISTED: &[&str] = &["client", "invoice", "payment"];
        let ask = |a: &[&str]| only(LISTED, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ask(&[]).unwrap(), LISTED);
        assert_eq!(ask(&["invoices"]).unwrap(), ["invoice"]);
        assert_eq!(ask(&["payment", "Clients"]).unwrap(), ["client", "payment"]);
        let e = ask(&["estimates"]).unwrap_err().to_string();
        assert!(
            e.contains("`estimates`") && e.contains("client, invoice, payment"),
            "{e}"
        );
    }
}
