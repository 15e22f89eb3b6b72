//! Throughput of the HubSpot worker against HubSpot's burst limit: a backfill of FreshBooks
//! clients and invoices (3 lines each) through the fan-out, the worker harness in batches of
//! 100 (the deployed `BatchSize`), the FreshBooks → HubSpot flow and the real clients, into the
//! HubSpot sandbox set to the Professional tier (190 calls per rolling 10 s). Not a test:
//! nothing asserts on time. The sandbox clock is real time — the rate limit is what is
//! measured, so a full run takes minutes by design.
//!
//! Prints:
//! - HubSpot calls per 10 s against the 190 bound: the sandbox's most in any rolling 10 s, and
//!   the mean (and least) over the whole 10-s windows of the run, sampled each second (goal
//!   ≥ 0.9 of the bound);
//! - records per HubSpot call, two ways: HubSpot records written (objects created, updated or
//!   upserted, plus associations — the batch inputs of write calls) per call, and FreshBooks
//!   records (backfilled events) per call;
//! - the share of 429s among HubSpot answers (goal ≤ 1 %), wall time, peak RSS.
//!
//! `infra/bench.sh hubspot` runs it. Knobs (environment): `BENCH_CLIENTS` (default 10000),
//! `BENCH_INVOICES` (default 10000, spread over the clients), `BENCH_CONSUMERS` (concurrent
//! batch consumers in the process, sharing the portal's limiter; default 4).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlc::ports::DeadLetterStatus;
use mlc::vendors::hubspot::models::ObjectType;
use mlc::worker::local::run_once;
use mlc_tests::pipeline::Backend;
use mlc_tests::pipeline::hubspot::{BATCH, Pipeline, PipelineOptions};
use mlc_tests::sandbox::freshbooks::{ClientSpec, InvoiceSpec, LineSpec, Webhooks};
use mlc_tests::sandbox::hubspot::{Control, Tier};

/// Professional's burst limit.
const BOUND: f64 = 190.0;

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

fn line(name: String, qty: &str, unit_cost: &str) -> LineSpec {
    LineSpec {
        name,
        description: None,
        qty: qty.into(),
        unit_cost: unit_cost.into(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not ours means another bench was asked.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "hubspot")
    {
        return;
    }
    let clients = env_usize("BENCH_CLIENTS", 10_000).max(1);
    let invoices = env_usize("BENCH_INVOICES", 10_000);
    let consumers = env_usize("BENCH_CONSUMERS", 4).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(clients, invoices, consumers));
}

async fn run(clients: usize, invoices: usize, consumers: usize) {
    let p = Pipeline::start(PipelineOptions {
        backend: Backend::Embedded,
        webhooks: false,
        tier: Tier::Professional,
        // A backlog is not a failure: nothing should come near this.
        max_receives: 50,
        ..PipelineOptions::default()
    })
    .await;
    let account = p.account().to_string();
    let mut client_ids = Vec::with_capacity(clients);
    for i in 0..clients {
        let c =
            p.fb.create_client(
                &account,
                ClientSpec {
                    email: Some(format!("customer{i}@firm{}.com", i % 997)),
                    fname: Some(format!("First{i}")),
                    lname: Some(format!("Last{i}")),
                    organization: Some(format!("Firm {}", i % 997)),
                    currency_code: Some("USD".into()),
                },
                Webhooks::Suppress,
            )
            .await
            .expect("sandbox client");
        client_ids.push(c);
    }
    let mut invoice_ids = Vec::with_capacity(invoices);
    for i in 0..invoices {
        let inv =
            p.fb.create_invoice(
                &account,
                InvoiceSpec {
                    customerid: client_ids[i % clients].clone(),
                    lines: vec![
                        line(format!("Service {}", i % 25), "2", "45.00"),
                        line("Hosting".into(), "1", "12.50"),
                        line("Support".into(), "3", "10.00"),
                    ],
                    currency_code: Some("USD".into()),
                    sent: true,
                    ..InvoiceSpec::default()
                },
                Webhooks::Suppress,
            )
            .await
            .expect("sandbox invoice");
        invoice_ids.push(inv);
    }
    // As `ml-connector backfill` lists them: the clients, then the invoices.
    let records: Vec<(&str, String)> = client_ids
        .iter()
        .map(|id| ("client", id.clone()))
        .chain(invoice_ids.iter().map(|id| ("invoice", id.clone())))
        .collect();
    let queued = p.backfill(&records).await;
    assert_eq!(queued.queued, records.len(), "every event enqueued");
    p.hs.reset_stats();
    let fb_before = p.fb.stats().requests.values().sum::<u64>();

    // Sample the sandbox's request count each second while the worker runs.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let hs: Control = (*p.hs).clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples = vec![hs.stats().total];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !done.load(Ordering::SeqCst) {
                tick.tick().await;
                samples.push(hs.stats().total);
            }
            samples
        })
    };

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let harness = p.harness.clone();
        let queue = p.queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut batches = 0usize;
            let mut largest = 0usize;
            loop {
                let report = run_once(&harness, BATCH, Duration::from_secs(300))
                    .await
                    .expect("receiving");
                if !report.messages.is_empty() {
                    batches += 1;
                    largest = largest.max(report.messages.len());
                    continue;
                }
                let depth = queue
                    .depth(mlc_tests::pipeline::hubspot::QUEUE)
                    .await
                    .expect("depth");
                if depth.visible == 0 && depth.in_flight == 0 {
                    return (batches, largest);
                }
                // Waiting for a retry's visibility timeout.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    let mut batches = 0;
    let mut largest = 0;
    for t in tasks {
        let (b, l) = t.await.expect("a consumer");
        batches += b;
        largest = largest.max(l);
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("the sampler");

    let stats = p.hs.stats();
    let calls = stats.total;
    let refused: u64 = stats.throttled.values().sum::<u64>() + stats.stormed.values().sum::<u64>();
    let written: u64 = stats
        .batch_inputs
        .iter()
        .filter(|(route, _)| {
            ["create", "update", "upsert", "associate", "archive"]
                .iter()
                .any(|w| route.contains(w))
        })
        .map(|(_, n)| n)
        .sum();
    // Whole 10-s windows of the run (the last, partial one left out); a run shorter than one
    // window counts as one, scaled to 10 s.
    let mut windows: Vec<f64> = samples
        .windows(11)
        .step_by(10)
        .map(|w| (w[10] - w[0]) as f64)
        .collect();
    let whole = windows.len();
    if windows.is_empty() {
        windows.push(calls as f64 * 10.0 / elapsed.as_secs_f64().max(0.001));
    }
    let mean = windows.iter().sum::<f64>() / windows.len() as f64;
    let least = windows.iter().copied().fold(f64::INFINITY, f64::min);
    let fb_calls = p.fb.stats().requests.values().sum::<u64>() - fb_before;
    let dead = p
        .store
        .list_dead_letters(DeadLetterStatus::Open, 10)
        .await
        .expect("dead letters")
        .len();
    let count = |t| p.hs.objects(p.portal_id(), t).len();

    println!(
        "worker_hubspot: {clients} clients + {invoices} invoices (3 lines each) backfilled, \
         {consumers} consumers, batches of up to {BATCH}, Professional tier ({BOUND:.0} per 10 s)"
    );
    println!(
        "  wall time {:.1} s; {batches} batches (largest {largest} messages)",
        elapsed.as_secs_f64()
    );
    println!(
        "  HubSpot calls per 10 s: max {} ({:.2} of {BOUND:.0}), mean {mean:.1} ({:.2}), least {least:.0} over {}",
        stats.max_in_window,
        stats.max_in_window as f64 / BOUND,
        mean / BOUND,
        if whole == 0 {
            "the run (shorter than 10 s, scaled to 10 s)".to_string()
        } else {
            format!("{whole} whole 10-s windows")
        }
    );
    println!(
        "  records per HubSpot call: {:.1} HubSpot records written ({written} objects + \
         associations in {calls} calls), {:.1} FreshBooks records ({} events)",
        written as f64 / calls.max(1) as f64,
        records.len() as f64 / calls.max(1) as f64,
        records.len()
    );
    println!(
        "  429s: {refused} of {calls} HubSpot answers ({:.2} %) {:?}",
        100.0 * refused as f64 / calls.max(1) as f64,
        stats.throttled
    );
    println!(
        "  FreshBooks calls {fb_calls} ({:.2} per record)",
        fb_calls as f64 / records.len() as f64
    );
    println!(
        "  result: {} contacts, {} companies, {} invoices, {} line items; {dead} open dead letters; {} violations",
        count(ObjectType::Contacts),
        count(ObjectType::Companies),
        count(ObjectType::Invoices),
        count(ObjectType::LineItems),
        stats.violations
    );
    println!("  HubSpot calls by route: {:?}", stats.by_route);
    println!("  peak memory (max RSS): {:.1} MiB", peak_rss_mib());
}
