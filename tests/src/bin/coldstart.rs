//! Cold-start benchmark: time from exec of a Lambda binary to its first
//! `GET /2018-06-01/runtime/invocation/next` on a local fake runtime API.
//!
//! That request is where Lambda's init phase ends, so this is a proxy for init duration that
//! needs no AWS account. Binaries are run interleaved (round-robin, rotating the start each
//! round) so drift in machine load hits all of them alike; medians and p10/p90 are reported,
//! with each binary's median relative to the `hello_lambda` baseline. Nothing here asserts on
//! time: it is a measurement tool, run by `infra/bench-coldstart.sh`.
//!
//! `--strace DIR` instead runs each binary once under `strace -f -e trace=%file` and summarises
//! which files it touched before asking for its first invocation (certificate stores, config
//! files), writing the full traces and path lists to DIR.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mlc_tests::fake_runtime::{FakeRuntimeApi, FakeRuntimeError};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// The binary every other one is compared against.
const BASELINE: &str = "hello_lambda";

const USAGE: &str = "\
usage: coldstart [--runs N] [--warmup N] [--timeout-ms MS] [--bin-dir DIR] [--probe] [--strace DIR]

  --runs N        measured runs per binary (default 41)
  --warmup N      unrecorded runs per binary first, to warm the page cache (default 2)
  --timeout-ms MS give up on one run after MS milliseconds (default 10000)
  --bin-dir DIR   where the release binaries are (default: this program's directory)
  --probe         also measure coldstart_probe_sdk in its `none`, `naive`, `webpki` and
                  `webpki-reqwest-eager` modes
  --strace DIR    run each binary once under strace and summarise its file accesses
                  instead of timing (needs strace: apt-get install -y strace)";

/// Command-line options.
#[derive(Debug)]
struct Options {
    runs: usize,
    warmup: usize,
    timeout: Duration,
    bin_dir: PathBuf,
    probe: bool,
    strace_dir: Option<PathBuf>,
}

/// One binary to start, with the extra environment that selects its variant.
#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    path: PathBuf,
    extra_env: Vec<(&'static str, &'static str)>,
}

/// Why a single run produced no measurement.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("could not start {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] FakeRuntimeError),
    #[error("exited ({status}) before requesting an invocation; stderr tail: {stderr:?}")]
    Exited { status: ExitStatus, stderr: String },
    #[error("waiting for the child failed: {0}")]
    Wait(std::io::Error),
    #[error("no request for an invocation within {0:?}")]
    TimedOut(Duration),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("coldstart: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let targets = targets(&options);
    if let Some(missing) = targets.iter().find(|t| !t.path.is_file()) {
        eprintln!(
            "coldstart: {} not found; build first: cargo build --release --workspace --bins",
            missing.path.display()
        );
        return ExitCode::from(2);
    }
    let ok = match &options.strace_dir {
        Some(dir) => strace_all(&targets, dir, options.timeout).await,
        None => bench(&targets, &options).await,
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let default_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or("cannot locate this executable's directory; pass --bin-dir")?;
    let mut options = Options {
        runs: 41,
        warmup: 2,
        timeout: Duration::from_secs(10),
        bin_dir: default_dir,
        probe: false,
        strace_dir: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => options.runs = parse_count(&value("--runs")?, 1)?,
            "--warmup" => options.warmup = parse_count(&value("--warmup")?, 0)?,
            "--timeout-ms" => {
                options.timeout =
                    Duration::from_millis(parse_count(&value("--timeout-ms")?, 1)? as u64)
            }
            "--bin-dir" => options.bin_dir = PathBuf::from(value("--bin-dir")?),
            "--probe" => options.probe = true,
            "--strace" => options.strace_dir = Some(PathBuf::from(value("--strace")?)),
            "-h" | "--help" => return Err("help requested".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn parse_count(text: &str, min: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("expected an integer >= {min}, got {text:?}")),
    }
}

fn targets(options: &Options) -> Vec<Target> {
    let bin = |name: &str| options.bin_dir.join(name);
    let mut targets = vec![
        Target {
            name: BASELINE,
            path: bin("hello_lambda"),
            extra_env: vec![],
        },
        Target {
            name: "webhook",
            path: bin("webhook"),
            extra_env: vec![],
        },
    ];
    if options.probe {
        for (name, mode) in [
            ("probe_sdk_none", "none"),
            ("probe_sdk_naive", "naive"),
            ("probe_sdk_webpki", "webpki"),
            ("probe_sdk_webpki_reqwest_eager", "webpki-reqwest-eager"),
        ] {
            targets.push(Target {
                name,
                path: bin("coldstart_probe_sdk"),
                extra_env: vec![("COLDSTART_PROBE_MODE", mode)],
            });
        }
    }
    targets
}

/// The environment a Lambda `provided.al2023` runtime gives a function, plus the webhook's own
/// settings and dummy credentials. Everything else is cleared so the host's AWS profile,
/// proxies or `HOME` cannot change what the SDK reads at start-up.
fn lambda_env(target: &Target, runtime_api: &str) -> Vec<(String, String)> {
    let function = format!("coldstart-{}", target.name);
    let fixed = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]00000000000000000000000000000000",
        ),
        ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTARTBENCH00"),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-dummy-secret-access-key"),
        ("AWS_SESSION_TOKEN", "coldstart-dummy-session-token"),
        ("AUDIT_TABLE", "coldstart-audit"),
        ("DEAD_LETTER_TABLE", "coldstart-dead-letter"),
        ("STATE_TABLE", "coldstart-state"),
        ("SECRET_PREFIX", "ml-connector/coldstart/"),
        ("QUEUES", "{}"),
    ];
    let mut env: Vec<(String, String)> = fixed
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()));
    env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), function.clone()));
    env.push((
        "AWS_LAMBDA_LOG_GROUP_NAME".into(),
        format!("/aws/lambda/{function}"),
    ));
    env.extend(
        target
            .extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// Starts `program args…` as a Lambda would start the target, in its own process group so
/// that killing the group also ends anything it spawned (strace's tracee).
fn spawn(
    target: &Target,
    runtime_api: &str,
    wrapper: Option<&[String]>,
) -> Result<Child, RunError> {
    let mut command = match wrapper {
        Some([program, args @ ..]) => {
            let mut command = Command::new(program);
            command.args(args).arg(&target.path);
            command
        }
        _ => Command::new(&target.path),
    };
    command
        .env_clear()
        .envs(lambda_env(target, runtime_api))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command.spawn().map_err(|source| RunError::Spawn {
        path: target.path.display().to_string(),
        source,
    })
}

/// Kills the child's whole process group and reaps the child.
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions. The child is not reaped yet
        // (we wait below), so its pid is still its process group id and cannot be reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    // The child was killed; its exit status carries no information.
    let _ = child.wait().await;
}

/// Runs `target` once; returns exec → first `next` request.
async fn run_once(
    target: &Target,
    timeout: Duration,
    wrapper: Option<&[String]>,
) -> Result<Duration, RunError> {
    let api = FakeRuntimeApi::bind().await?;
    let runtime_api = api.addr()?.to_string();
    let started = Instant::now();
    let mut child = spawn(target, &runtime_api, wrapper)?;
    let stderr = child.stderr.take();
    let stderr_reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut stderr) = stderr {
            // A read error only shortens the diagnostic text.
            let _ = stderr.read_to_end(&mut buf).await;
        }
        buf
    });

    let outcome = tokio::select! {
        next = api.wait_for_next() => next.map(|n| n.at.duration_since(started)).map_err(RunError::from),
        status = child.wait() => match status {
            Ok(status) => {
                let stderr = stderr_reader.await.unwrap_or_default();
                Err(RunError::Exited { status, stderr: tail(&stderr) })
            }
            Err(e) => Err(RunError::Wait(e)),
        },
        () = tokio::time::sleep(timeout) => Err(RunError::TimedOut(timeout)),
    };
    kill_group(&mut child).await;
    outcome
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let chars: Vec<char> = text.trim_end().chars().collect();
    chars[chars.len().saturating_sub(400)..].iter().collect()
}

/// Per-binary results of the timing runs.
#[derive(Debug, Default)]
struct Samples {
    times: Vec<Duration>,
    failures: usize,
    first_error: Option<String>,
}

async fn bench(targets: &[Target], options: &Options) -> bool {
    let mut samples: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
    let rounds = options.warmup + options.runs;
    let wall = Instant::now();
    for round in 0..rounds {
        let recorded = round >= options.warmup;
        for offset in 0..targets.len() {
            // Rotate who goes first so no binary always follows the same one.
            let index = (round + offset) % targets.len();
            let result = run_once(&targets[index], options.timeout, None).await;
            if !recorded {
                continue;
            }
            let entry = &mut samples[index];
            match result {
                Ok(elapsed) => entry.times.push(elapsed),
                Err(e) => {
                    entry.failures += 1;
                    entry.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    print_report(targets, &mut samples, options, wall.elapsed());
    samples.iter().all(|s| s.failures == 0)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (last as f64 * q).round() as usize;
    sorted.get(rank.min(last)).copied()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print_report(targets: &[Target], samples: &mut [Samples], options: &Options, wall: Duration) {
    for s in samples.iter_mut() {
        s.times.sort();
    }
    let baseline = targets
        .iter()
        .position(|t| t.name == BASELINE)
        .and_then(|i| percentile(&samples[i].times, 0.5));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("=== cold start: exec -> first GET /2018-06-01/runtime/invocation/next ===");
    println!(
        "runs per binary: {} (+{} warm-up), interleaved; {} CPUs; loadavg {}; wall {:.1} s",
        options.runs,
        options.warmup,
        cpus,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        wall.as_secs_f64()
    );
    println!(
        "{:<32} {:>12} {:>12} {:>12} {:>10}",
        "binary", "median", "p10", "p90", "x hello"
    );
    for (target, s) in targets.iter().zip(samples.iter()) {
        let median = percentile(&s.times, 0.5);
        let show = |d: Option<Duration>| d.map_or_else(|| "-".to_string(), ms);
        let ratio = match (median, baseline) {
            (Some(m), Some(b)) if !b.is_zero() => {
                format!("{:.2}x", m.as_secs_f64() / b.as_secs_f64())
            }
            _ => "-".to_string(),
        };
        println!(
            "{:<32} {:>12} {:>12} {:>12} {:>10}",
            target.name,
            show(median),
            show(percentile(&s.times, 0.1)),
            show(percentile(&s.times, 0.9)),
            ratio
        );
    }
    for (target, s) in targets.iter().zip(samples.iter()) {
        if s.failures > 0 {
            println!(
                "FAILED {}: {}/{} runs; first error: {}",
                target.name,
                s.failures,
                options.runs,
                s.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    println!("=== end cold start ===");
}

/// What one binary did to the filesystem before its first `next` request.
#[derive(Debug, Default)]
struct FileAccess {
    file_syscalls: usize,
    opens: usize,
    opens_ok: usize,
    cert_store_calls: usize,
    opened: BTreeSet<String>,
}

async fn strace_all(targets: &[Target], dir: &Path, timeout: Duration) -> bool {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("coldstart: cannot create {}: {e}", dir.display());
        return false;
    }
    let mut ok = true;
    let mut rows = Vec::new();
    for target in targets {
        let trace = dir.join(format!("{}.strace", target.name));
        let wrapper = vec![
            "strace".to_string(),
            "-f".into(),
            "-qq".into(),
            "-e".into(),
            "trace=%file".into(),
            "-o".into(),
            trace.display().to_string(),
            "--".into(),
        ];
        if let Err(e) = run_once(target, timeout, Some(&wrapper)).await {
            eprintln!("coldstart: {} under strace: {e}", target.name);
            ok = false;
            continue;
        }
        match std::fs::read_to_string(&trace) {
            Ok(text) => {
                let access = summarise_strace(&text);
                let list = dir.join(format!("{}.opened.txt", target.name));
                let listing: String = access.opened.iter().map(|p| format!("{p}\n")).collect();
                if let Err(e) = std::fs::write(&list, listing) {
                    eprintln!("coldstart: cannot write {}: {e}", list.display());
                }
                rows.push((target.name, access));
            }
            Err(e) => {
                eprintln!("coldstart: cannot read {}: {e}", trace.display());
                ok = false;
            }
        }
    }
    println!();
    println!("=== file accesses before the first `next` (strace -f -e trace=%file) ===");
    println!(
        "{:<32} {:>13} {:>7} {:>9} {:>11}",
        "binary", "file-syscalls", "opens", "opens-ok", "cert-store"
    );
    for (name, a) in &rows {
        println!(
            "{:<32} {:>13} {:>7} {:>9} {:>11}",
            name, a.file_syscalls, a.opens, a.opens_ok, a.cert_store_calls
        );
    }
    println!(
        "(cert-store = file syscalls on /etc/ssl, /etc/pki, /usr/lib/ssl or /usr/share/ca-certificates;"
    );
    println!(" traces and opened-path lists in {})", dir.display());
    println!("=== end file accesses ===");
    ok
}

/// Counts file syscalls in `strace -f -o` output, pairing `<unfinished ...>` lines with their
/// `<... resumed>` continuation (same pid) to learn the result. The trace ends when the
/// process group is killed, i.e. just after the first `next` request.
fn summarise_strace(text: &str) -> FileAccess {
    let mut access = FileAccess::default();
    let mut pending: HashMap<&str, (String, Option<String>)> = HashMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if let Some((name, path)) = pending.remove(pid) {
                record(&mut access, &name, path, result_of(resumed));
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let path = first_quoted(args);
        if args.ends_with("<unfinished ...>") {
            pending.insert(pid, (name.to_string(), path));
        } else {
            record(&mut access, name, path, result_of(args));
        }
    }
    for (_, (name, path)) in pending {
        record(&mut access, &name, path, None);
    }
    access
}

fn record(access: &mut FileAccess, name: &str, path: Option<String>, result: Option<i64>) {
    access.file_syscalls += 1;
    let is_cert = path.as_deref().is_some_and(|p| {
        [
            "/etc/ssl",
            "/etc/pki",
            "/usr/lib/ssl",
            "/usr/share/ca-certificates",
        ]
        .iter()
        .any(|prefix| p.starts_with(prefix))
    });
    if is_cert {
        access.cert_store_calls += 1;
    }
    if name.starts_with("open") {
        access.opens += 1;
        if result.is_some_and(|r| r >= 0) {
            access.opens_ok += 1;
            if let Some(path) = path {
                access.opened.insert(path);
            }
        }
    }
}

fn first_quoted(args: &str) -> Option<String> {
    let start = args.find('"')? + 1;
    let len = args[start..].find('"')?;
    Some(args[start..start + len].to_string())
}

fn result_of(text: &str) -> Option<i64> {
    let (_, result) = text.rsplit_once(" = ")?;
    result.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_summary_pairs_unfinished_calls_and_spots_cert_reads() {
        let trace = r#"101   execve("/bin/x", ["/bin/x"], 0x7ffd /* 3 vars */) = 0
101   openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
101   openat(AT_FDCWD, "~/.aws/config", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
102   openat(AT_FDCWD, "/etc/ssl/certs/ca.pem", O_RDONLY|O_CLOEXEC <unfinished ...>
101   statx(AT_FDCWD, "/etc/pki/tls/certs", AT_STATX_SYNC_AS_STAT, STATX_ALL, 0x7ffc) = -1 ENOENT (No such file or directory)
102   <... openat resumed>) = 7
102   +++ killed by SIGKILL +++
103   openat(AT_FDCWD, "/proc/self/maps", O_RDONLY <unfinished ...>
"#;
        let a = summarise_strace(trace);
        assert_eq!(a.file_syscalls, 6);
        assert_eq!(a.opens, 4);
        assert_eq!(a.opens_ok, 2);
        assert_eq!(a.cert_store_calls, 2);
        let opened: Vec<&str> = a.opened.iter().map(String::as_str).collect();
        assert_eq!(opened, ["/etc/ld.so.cache", "/etc/ssl/certs/ca.pem"]);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<Duration> = (1..=11).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(Duration::from_millis(6)));
        assert_eq!(percentile(&sorted, 0.1), Some(Duration::from_millis(2)));
        assert_eq!(percentile(&sorted, 0.9), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn child_environment_is_lambda_like() {
        let target = Target {
            name: "probe",
            path: PathBuf::from("/nonexistent"),
            extra_env: vec![("COLDSTART_PROBE_MODE", "webpki")],
        };
        let env: HashMap<String, String> =
            lambda_env(&target, "127.0.0.1:4000").into_iter().collect();
        assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:4000");
        assert_eq!(env["AWS_REGION"], "us-east-1");
        assert_eq!(env["QUEUES"], "{}");
        assert_eq!(env["COLDSTART_PROBE_MODE"], "webpki");
        assert_eq!(
            env["AWS_LAMBDA_LOG_GROUP_NAME"],
            "/aws/lambda/coldstart-probe"
        );
        assert!(
            !env.contains_key("HOME"),
            "the host's AWS profile must not leak in"
        );
    }
}
