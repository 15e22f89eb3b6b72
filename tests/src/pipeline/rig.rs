//! What every end-to-end pipeline is built on: one adapter set (embedded SQLite, or
//! SQS/DynamoDB/Secrets Manager on moto) with a queue per target, the real webhook handler on a
//! local port, and the loops that drain queues the way the worker Lambdas would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::app::{App, LiveClientsConfig, Ports};
use mlc::ports::{Clock, Queue, QueueDepth, Secrets, Store};
use mlc::webhook::{WebhookConfig, local};
use mlc::worker::backoff::{RetryPolicy, VisibilityPolicy};
use mlc::worker::local::run_once;
use mlc::worker::{BatchReport, Harness, HarnessConfig};
use secrecy::SecretString;

/// Which adapter set a pipeline runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Moto,
}

/// One adapter set's ports, with a queue (and DLQ) per logical name.
pub struct Adapters {
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    /// Moto only: the queue pairs, to move DLQ messages back by hand (moto lacks
    /// `StartMessageMoveTask`).
    pairs: BTreeMap<String, crate::moto::QueuePair>,
}

impl Adapters {
    /// Fresh ports with the queues `queues`, dead-lettering after `max_receives` receives.
    pub async fn start(
        backend: Backend,
        queues: &[&str],
        max_receives: u32,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        match backend {
            Backend::Embedded => {
                let db = EmbeddedDb::in_memory(clock.clone()).expect("an in-memory database");
                for queue in queues {
                    db.declare_queue(queue, max_receives, Duration::from_secs(30))
                        .await
                        .expect("declaring the queue");
                }
                let secrets = EmbeddedSecrets::with_key(&db, [7; 32]);
                Adapters {
                    queue: Arc::new(db.clone()),
                    store: Arc::new(db),
                    secrets: Arc::new(secrets),
                    pairs: BTreeMap::new(),
                }
            }
            Backend::Moto => {
                let env =
                    crate::moto::AwsEnv::start_queues(queues, max_receives, clock.clone()).await;
                Adapters {
                    queue: env.queue,
                    store: env.store,
                    secrets: env.secrets,
                    pairs: env.pairs,
                }
            }
        }
    }

    /// Moves `queue`'s dead-lettered messages back (SQS `StartMessageMoveTask`; by hand on
    /// moto, which lacks it).
    pub async fn redrive(&self, queue: &str) {
        match self.pairs.get(queue) {
            None => {
                self.queue.redrive(queue).await.expect("redrive");
            }
            Some(pair) => pair.redrive_by_hand().await,
        }
    }

    /// Stores a secret.
    pub async fn put_secret(&self, name: &str, value: &str) {
        self.secrets
            .put(name, &SecretString::from(value.to_string()))
            .await
            .expect("storing a secret");
    }

    /// One app instance over these ports (what one Lambda instance of each function holds),
    /// reading the applied connections afresh every time so a change shows at once.
    pub fn app(&self, clock: &Arc<dyn Clock>, clients: LiveClientsConfig) -> App {
        let ports = Ports {
            queue: self.queue.clone(),
            store: self.store.clone(),
            secrets: self.secrets.clone(),
            clock: clock.clone(),
        };
        App::new(ports, clients).with_connections_ttl(Duration::ZERO)
    }

    pub async fn depth(&self, queue: &str) -> QueueDepth {
        self.queue.depth(queue).await.expect("queue depth")
    }
}

/// The real webhook handler served on a loopback port until dropped.
pub struct WebhookServer {
    /// `http://127.0.0.1:<port>/webhooks`.
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    pub async fn start(app: &App) -> Self {
        let webhook = Arc::new(
            app.webhook(WebhookConfig {
                connections_cache_ttl: Duration::ZERO,
                ..WebhookConfig::default()
            })
            .expect("the webhook handler"),
        );
        let (listener, addr) = local::bind("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("binding the webhook port");
        let task = tokio::spawn(async move {
            let _ = local::serve(webhook, listener, std::future::pending()).await;
        });
        WebhookServer {
            base: format!("http://{addr}/webhooks"),
            task,
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs each harness on its queue until every one of those queues is empty at once (retries
/// waiting out their visibility timeout), or `limit` passes. Flows that feed each other (a
/// write to one vendor comes back as a webhook for the other queue) settle this way.
pub async fn drain_all(
    queue: &Arc<dyn Queue>,
    workers: &[(&str, &Arc<Harness>)],
    limit: Duration,
) -> Vec<BatchReport> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut reports = Vec::new();
    loop {
        let mut any = false;
        for (_, harness) in workers {
            let report = run_once(harness, 10, Duration::from_secs(30))
                .await
                .expect("receiving");
            any |= !report.messages.is_empty();
            reports.push(report);
        }
        if any {
            continue;
        }
        let mut busy = Vec::new();
        for (name, _) in workers {
            let depth = queue.depth(name).await.expect("queue depth");
            if depth.visible != 0 || depth.in_flight != 0 {
                busy.push((name.to_string(), depth));
            }
        }
        if busy.is_empty() {
            return reports;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queues did not drain in {limit:?}: {busy:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one consumer per harness at once on `queue_name` until it is empty.
pub async fn drain_concurrently(
    queue: &Arc<dyn Queue>,
    queue_name: &str,
    harnesses: &[Arc<Harness>],
    limit: Duration,
) {
    let mut tasks = Vec::new();
    for harness in harnesses {
        let harness = harness.clone();
        let queue = queue.clone();
        let queue_name = queue_name.to_string();
        tasks.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                let report = run_once(&harness, 10, Duration::from_secs(30))
                    .await
                    .expect("receiving");
                if !report.messages.is_empty() {
                    continue;
                }
                let depth = queue.depth(&queue_name).await.expect("depth");
                if depth.visible == 0 && depth.in_flight == 0 {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the queue did not drain: {depth:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a worker task");
    }
}

/// The worker settings for tests: the defaults, with short waits so retries do not stall.
pub fn harness_config(queue: &str, max_receives: u32) -> HarnessConfig {
    let mut c = HarnessConfig::new(queue);
    c.max_receives = max_receives;
    c.retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(20),
        max: Duration::from_millis(300),
    };
    c.visibility = VisibilityPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(2),
    };
    c.deadline_margin = Duration::from_millis(500);
    c
}
