//! A moto server for the AWS adapter tests: one per test binary, or the one `MOTO_ENDPOINT`
//! names (`infra/test.sh` may start one for all binaries).
//!
//! Tests share the server and run in parallel, so they isolate by unique resource names
//! ([`unique_name`]) rather than by resetting it.
//!
//! The server must not outlive the tests. The child is spawned from a dedicated thread that
//! lives as long as the child (Linux ties `PR_SET_PDEATHSIG` to the spawning *thread*), with
//! `PR_SET_PDEATHSIG(SIGKILL)` so the kernel kills moto when the test process dies however it
//! dies; an `atexit` hook also kills it on a normal exit.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

/// Environment variable naming an already running moto server (e.g. `http://127.0.0.1:5000`).
pub const MOTO_ENDPOINT_ENV: &str = "MOTO_ENDPOINT";

/// How long moto gets to start answering (it imports a lot of Python on a busy 2-core box).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Spawn attempts: a free port found by binding can be taken before moto binds it.
const START_ATTEMPTS: usize = 3;

/// The pid of the moto server this process started (0: none), for the exit hook.
static CHILD_PID: AtomicI32 = AtomicI32::new(0);
/// The endpoint, or why there is none, decided once per process.
static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();

/// The moto endpoint for this test binary, starting the server on first use.
///
/// # Panics
/// When no server can be had: a test that needs moto fails loudly rather than skipping.
pub fn endpoint() -> String {
    match ENDPOINT.get_or_init(start) {
        Ok(endpoint) => endpoint.clone(),
        Err(why) => panic!("moto server unavailable: {why}"),
    }
}

/// An SDK configuration pointed at the moto server: dummy credentials, `us-east-1`.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(&endpoint()).await
}

/// An SDK configuration pointed at `endpoint`.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    mlc::adapters::aws::http::sdk_config_loader()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A resource name unique to this call, e.g. `mlc-<prefix>-1f3a…` (≤ 60 characters, so a `-dlq`
/// suffix still fits SQS's 80).
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let prefix: String = prefix.chars().take(20).collect();
    format!("mlc-{prefix}-{id}")
}

fn start() -> Result<String, String> {
    if let Ok(endpoint) = std::env::var(MOTO_ENDPOINT_ENV) {
        let addr = socket_addr(&endpoint)?;
        wait_ready(addr, &AtomicBool::new(false), None)?;
        return Ok(endpoint);
    }
    let program = find_moto_server()?;
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS {
        match spawn(&program) {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// `moto_server` from the repo's `.venv` (what `infra/test.sh` installs, pinned), else from PATH.
fn find_moto_server() -> Result<PathBuf, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = repo.join(".venv/bin/moto_server");
    if venv.is_file() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file());
    on_path.ok_or_else(|| {
        "`moto_server` is not installed (looked in .venv/bin and on PATH). Run the tests with \
         `infra/test.sh`, which installs moto[server] into .venv, or set MOTO_ENDPOINT to a \
         running moto server."
            .to_string()
    })
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn spawn(program: &PathBuf) -> Result<String, String> {
    let port = free_port()?;
    let log_path = std::env::temp_dir().join(format!("mlc-moto-{port}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;

    let mut command = Command::new(program);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: getpid is async-signal-safe; the closure runs in the forked child before exec.
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then nobody would kill us.
            if libc::getppid() != parent {
                return Err(io::Error::other("test process exited before moto started"));
            }
            Ok(())
        });
    }

    let exited = Arc::new(AtomicBool::new(false));
    let (spawned_tx, spawned_rx) = mpsc::channel();
    let thread_exited = exited.clone();
    let program_name = program.display().to_string();
    std::thread::Builder::new()
        .name(format!("moto-server-{port}"))
        .spawn(move || {
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = spawned_tx.send(Err(format!("cannot start {program_name}: {e}")));
                    return;
                }
            };
            if let Ok(pid) = i32::try_from(child.id()) {
                CHILD_PID.store(pid, Ordering::SeqCst);
                register_exit_hook();
            }
            let _ = spawned_tx.send(Ok(()));
            // This thread must outlive the child for PR_SET_PDEATHSIG: wait for it here.
            let _ = child.wait();
            thread_exited.store(true, Ordering::SeqCst);
        })
        .map_err(|e| format!("cannot start the moto thread: {e}"))?;
    spawned_rx
        .recv()
        .map_err(|_| "the moto thread ended before spawning".to_string())??;

    let endpoint = format!("http://127.0.0.1:{port}");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(addr, &exited, Some(&log_path))?;
    Ok(endpoint)
}

/// Waits until the server accepts connections, failing early if it exited.
fn wait_ready(
    addr: SocketAddr,
    exited: &AtomicBool,
    log: Option<&std::path::Path>,
) -> Result<(), String> {
    let log_hint = || {
        log.map(|p| format!(" (its output is in {})", p.display()))
            .unwrap_or_default()
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if exited.load(Ordering::SeqCst) {
            return Err(format!(
                "moto on {addr} exited during start-up{}",
                log_hint()
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto on {addr} did not answer within {START_TIMEOUT:?}{}",
        log_hint()
    ))
}

fn socket_addr(endpoint: &str) -> Result<SocketAddr, String> {
    let url = url_host_port(endpoint)
        .ok_or_else(|| format!("{MOTO_ENDPOINT_ENV}={endpoint} is not an http://host:port URL"))?;
    std::net::ToSocketAddrs::to_socket_addrs(&url)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("{MOTO_ENDPOINT_ENV}={endpoint}: cannot resolve {url}"))
}

fn url_host_port(endpoint: &str) -> Option<String> {
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    if authority.contains(':') {
        Some(authority.to_string())
    } else {
        Some(format!("{authority}:80"))
    }
}

extern "C" fn kill_moto() {
    let pid = CHILD_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

fn register_exit_hook() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: registers a plain extern "C" fn that only reads an atomic and calls kill.
        unsafe {
            libc::atexit(kill_moto);
        }
    });
}

/// The AWS adapter set on fresh, uniquely named tables, queue pairs and a secret prefix in the
/// shared moto server.
pub struct AwsEnv {
    pub queue: std::sync::Arc<dyn mlc::ports::Queue>,
    pub store: std::sync::Arc<dyn mlc::ports::Store>,
    pub secrets: std::sync::Arc<dyn mlc::ports::Secrets>,
    /// The first logical queue's pair.
    pub pair: QueuePair,
    /// Every logical queue's pair, by logical name.
    pub pairs: std::collections::BTreeMap<String, QueuePair>,
    /// What every resource's name starts with: tables `<prefix>-…`, secrets `<prefix>/…`,
    /// queues `<prefix>-<n>`.
    pub prefix: String,
}

impl AwsEnv {
    /// Tables, the queue `logical` with its DLQ (redriving after `max_receives` receives) and
    /// a secret prefix, all unique to this call.
    ///
    /// # Panics
    /// When moto refuses to create them: the test cannot run without.
    pub async fn start(
        logical: &str,
        max_receives: u32,
        clock: std::sync::Arc<dyn mlc::ports::Clock>,
    ) -> Self {
        Self::start_queues(&[logical], max_receives, clock).await
    }

    /// [`AwsEnv::start`] with one queue pair per logical name (at least one).
    ///
    /// # Panics
    /// When `logicals` is empty or moto refuses a call.
    pub async fn start_queues(
        logicals: &[&str],
        max_receives: u32,
        clock: std::sync::Arc<dyn mlc::ports::Clock>,
    ) -> Self {
        use mlc::adapters::aws::schema::{self, QueueSpec};
        use mlc::adapters::aws::{
            DynamoStore, QueueMap, SecretsManagerSecrets, SqsQueue, TableNames,
        };

        let sdk = sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let unique = unique_name(logicals.first().expect("at least one queue"));
        let tables = TableNames::with_prefix(&format!("{unique}-"));
        schema::create_tables(&dynamo, &tables)
            .await
            .expect("creating tables in moto");
        let mut queues = QueueMap::new();
        let mut pairs = std::collections::BTreeMap::new();
        for (i, logical) in logicals.iter().enumerate() {
            let urls = schema::create_queue_pair(
                &sqs,
                &QueueSpec {
                    name: format!("{unique}-{i}"),
                    max_receive_count: max_receives,
                    visibility_timeout: Duration::from_secs(30),
                },
            )
            .await
            .expect("creating the queue pair in moto");
            queues.insert(*logical, urls.clone());
            pairs.insert(
                logical.to_string(),
                QueuePair {
                    sqs: sqs.clone(),
                    urls,
                },
            );
        }
        let secrets = SecretsManagerSecrets::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            format!("{unique}/"),
        );
        Self {
            queue: std::sync::Arc::new(
                SqsQueue::new(sqs.clone(), queues).with_receive_wait(Duration::ZERO),
            ),
            store: std::sync::Arc::new(DynamoStore::new(dynamo, tables, clock)),
            secrets: std::sync::Arc::new(secrets),
            pair: pairs[logicals[0]].clone(),
            pairs,
            prefix: unique,
        }
    }
}

/// A queue and its DLQ in moto.
#[derive(Clone)]
pub struct QueuePair {
    pub sqs: aws_sdk_sqs::Client,
    pub urls: mlc::adapters::aws::QueueUrls,
}

impl QueuePair {
    /// What `StartMessageMoveTask` does (moto lacks it): every DLQ message's body is sent to
    /// the source queue and removed from the DLQ.
    ///
    /// # Panics
    /// When moto refuses a call.
    pub async fn redrive_by_hand(&self) {
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.urls.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .expect("receiving from the DLQ");
            let messages = out.messages();
            if messages.is_empty() {
                return;
            }
            for m in messages {
                self.sqs
                    .send_message()
                    .queue_url(&self.urls.url)
                    .message_body(m.body().unwrap_or_default())
                    .send()
                    .await
                    .expect("sending to the queue");
                self.sqs
                    .delete_message()
                    .queue_url(&self.urls.dlq_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("deleting from the DLQ");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            url_host_port("http://127.0.0.1:5000").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(url_host_port("http://moto/").as_deref(), Some("moto:80"));
        assert_eq!(url_host_port("https://x:1"), None);
        assert!(unique_name("a-very-long-prefix-that-goes-on").len() <= 60);
    }
}
