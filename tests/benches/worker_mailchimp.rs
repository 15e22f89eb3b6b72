//! Throughput of the Mailchimp worker: 10,000 FreshBooks client and invoice events pushed
//! through the worker harness, the FreshBooks → Mailchimp flow and the real clients against the
//! two sandboxes, with Mailchimp's 10-connection limit on (the client's limiter and the
//! sandbox's enforcement). Prints records/s, vendor calls per record and peak memory. Not a
//! test: nothing asserts on time.
//!
//! `infra/bench.sh worker` runs it. Knobs (environment): `BENCH_EVENTS` (default 10000, half
//! clients, half invoices), `BENCH_CONSUMERS` (concurrent queue consumers, default 10).

use std::time::{Duration, Instant};

use chrono::Utc;
use mlc::event::{Origin, SYNC_EVENT_VERSION, SourceRef, SyncEvent};
use mlc::ports::{DeadLetterStatus, OutgoingMessage};
use mlc::vendor::Vendor;
use mlc_tests::pipeline::{Backend, CONNECTION, Pipeline, PipelineOptions, QUEUE};
use mlc_tests::sandbox::freshbooks::{ClientSpec, InvoiceSpec, LineSpec, Webhooks};
use mlc_tests::sandbox::mailchimp::DEFAULT_LIST_ID;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process's peak resident set, in MiB.
fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    usage.ru_maxrss as f64 / 1024.0
}

fn event(account: &str, entity: &str, id: &str, n: usize) -> SyncEvent {
    SyncEvent {
        v: SYNC_EVENT_VERSION,
        event_id: format!("bench-{n}"),
        connection: CONNECTION.into(),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: account.into(),
        },
        entity: entity.to_string(),
        entity_id: id.to_string(),
        operation: "create".to_string(),
        occurred_at: None,
        received_at: Utc::now(),
        origin: Origin::Webhook,
        detail: Default::default(),
        detail_ref: None,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not ours means another bench was asked.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "worker")
    {
        return;
    }
    let events = env_usize("BENCH_EVENTS", 10_000).max(2);
    let consumers = env_usize("BENCH_CONSUMERS", 10).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(events, consumers));
}

async fn run(events: usize, consumers: usize) {
    let p = Pipeline::start(PipelineOptions {
        backend: Backend::Embedded,
        // The consumers share one process, so one limiter of 10 permits serves them all.
        max_concurrency: 1,
        webhooks: false,
        ..PipelineOptions::default()
    })
    .await;
    let account = p.account().to_string();
    let clients = events / 2;
    let mut queued = Vec::with_capacity(events);
    for i in 0..clients {
        let c =
            p.fb.create_client(
                &account,
                ClientSpec {
                    email: Some(format!("customer{i}@example.com")),
                    fname: Some(format!("First{i}")),
                    lname: Some(format!("Last{i}")),
                    organization: Some(format!("Org {}", i % 97)),
                    currency_code: Some("USD".into()),
                },
                Webhooks::Suppress,
            )
            .await
            .expect("sandbox client");
        let inv =
            p.fb.create_invoice(
                &account,
                InvoiceSpec {
                    customerid: c.clone(),
                    lines: vec![
                        LineSpec {
                            name: format!("Service {}", i % 25),
                            description: None,
                            qty: "2".into(),
                            unit_cost: "45.00".into(),
                        },
                        LineSpec {
                            name: "Hosting".into(),
                            description: None,
                            qty: "1".into(),
                            unit_cost: "12.50".into(),
                        },
                    ],
                    currency_code: Some("USD".into()),
                    sent: true,
                    ..InvoiceSpec::default()
                },
                Webhooks::Suppress,
            )
            .await
            .expect("sandbox invoice");
        queued.push(event(&account, "client", &c, 2 * i));
        queued.push(event(&account, "invoice", &inv, 2 * i + 1));
    }
    for chunk in queued.chunks(10) {
        let messages: Vec<OutgoingMessage> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| OutgoingMessage::new(format!("m{i}"), e.to_json()))
            .collect();
        p.queue
            .send_batch(QUEUE, &messages)
            .await
            .expect("enqueueing");
    }
    let fb_before = p.fb.stats().requests.values().sum::<u64>();
    let mc_before = p.mc.requests().len();

    let instances: Vec<_> = (0..consumers).map(|_| p.instance()).collect();
    let started = Instant::now();
    p.drain_concurrently(&instances, Duration::from_secs(3600))
        .await;
    let elapsed = started.elapsed();

    let records = queued.len();
    let fb_calls = p.fb.stats().requests.values().sum::<u64>() - fb_before;
    let mc_calls = (p.mc.requests().len() - mc_before) as u64;
    let members = p.mc.members(DEFAULT_LIST_ID).len();
    let orders =
        p.mc.store(mlc_tests::pipeline::STORE_ID)
            .map(|s| s.orders.len())
            .unwrap_or(0);
    let dead = p
        .store
        .list_dead_letters(DeadLetterStatus::Open, 10)
        .await
        .expect("dead letters")
        .len();
    let stats = p.mc.stats();
    println!(
        "worker_mailchimp: {records} events ({clients} clients, {clients} invoices), {consumers} consumers, Mailchimp limit 10 connections"
    );
    println!(
        "  elapsed {:.2} s, {:.0} records/s",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  vendor calls per record: {:.2} ({:.2} FreshBooks + {:.2} Mailchimp)",
        (fb_calls + mc_calls) as f64 / records as f64,
        fb_calls as f64 / records as f64,
        mc_calls as f64 / records as f64
    );
    println!(
        "  Mailchimp peak concurrency {} (429s served: {}), spec violations {}",
        stats.peak_concurrency, stats.too_many_requests, stats.violations
    );
    println!("  result: {members} members, {orders} orders, {dead} open dead letters");
    println!("  peak memory (max RSS): {:.1} MiB", peak_rss_mib());
}
