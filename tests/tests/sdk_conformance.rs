//! The vendors' own Python SDKs against the sandboxes (tests/sdk_conformance/): each sandbox must
//! answer the operations the product uses so that the vendor's official (or most used) SDK
//! parses every success into its types and raises its matching exception on every error. A
//! sandbox that is stricter, looser or shaped differently from the vendor hides product bugs,
//! and the SDKs are an outside witness of what the vendor really sends.
//!
//! Each test starts one sandbox in-process on a loopback port and runs pytest on that vendor's
//! file from the bootstrap's virtual environment (`.venv`, where infra/requirements.txt pins the
//! SDKs), with the sandbox's URLs and credentials as JSON in `MLC_SDK_SANDBOX`. Without the venv
//! (or with one made before the SDKs were pinned) the test is skipped with a message, except
//! under CI, where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlc_sandbox::freshbooks::{FreshbooksSandbox, FreshbooksSandboxOptions};
use mlc_sandbox::mailchimp::{DEFAULT_LIST_ID, MailchimpSandbox, MailchimpSandboxOptions, spec};
use mlc_sandbox::quickbooks::{QuickbooksSandbox, QuickbooksSandboxOptions};
use serde_json::{Value, json};

/// How long one vendor's pytest run may take (Python start-up and imports on a busy 2-core box
/// take a few seconds; the calls themselves are local).
const PYTEST_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives one level below the repository root")
        .to_path_buf()
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The modules the suite imports: pytest and the SDKs infra/requirements.txt pins.
const SDK_MODULES: &str = "pytest, freshbooks, intuitlib, quickbooks, mailchimp_marketing";

/// The venv's python, or `None` (after saying why) when the test should be skipped: no venv, or
/// one bootstrapped before the SDKs were pinned.
///
/// # Panics
/// Under CI when either is so: the SDK checks must not silently vanish there.
fn venv_python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    let why = if !python.is_file() {
        format!("{} is missing", python.display())
    } else {
        let imports = std::process::Command::new(&python)
            .args(["-c", &format!("import {SDK_MODULES}")])
            .output();
        match imports {
            Ok(out) if out.status.success() => return Some(python),
            Ok(out) => format!(
                "the venv lacks the SDKs ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => format!("{} does not run: {e}", python.display()),
        }
    };
    let why = format!("{why}; run infra/bootstrap.sh to install the vendor SDKs");
    assert!(!under_ci(), "SDK conformance cannot run under CI: {why}");
    eprintln!("SKIPPED (not under CI): {why}");
    None
}

/// Runs `tests/sdk_conformance/<file>` with pytest, `sandbox` as JSON in `MLC_SDK_SANDBOX`.
/// The sandbox keeps serving on the runtime's other threads while pytest runs.
///
/// # Panics
/// When pytest fails, with its output.
async fn pytest(file: &str, sandbox: Value) {
    let Some(python) = venv_python() else {
        return;
    };
    let root = repo_root();
    let mut command = tokio::process::Command::new(&python);
    command
        .current_dir(&root)
        .args([
            "-m",
            "pytest",
            "-q",
            // No .pytest_cache or __pycache__ in the checkout.
            "-p",
            "no:cacheprovider",
            "-rA",
        ])
        .arg(format!("tests/sdk_conformance/{file}"))
        .env("MLC_SDK_SANDBOX", sandbox.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Nothing may leave the machine: loopback only, even if a proxy is configured.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(PYTEST_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("pytest {file} did not finish in {PYTEST_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK conformance {file} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Show what ran (visible with --nocapture): a suite that collected nothing is no check.
    println!("{stdout}");
    assert!(
        stdout.contains(" passed"),
        "pytest {file} reported no passed test:\n{stdout}"
    );
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).expect("the sandbox renders its credential set as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshbooks_sdk() {
    let sandbox = FreshbooksSandbox::start(FreshbooksSandboxOptions {
        // A callback's handshake POST goes to a URI that nothing listens on here.
        delivery_timeout: Duration::from_secs(2),
        ..FreshbooksSandboxOptions::default()
    })
    .await;
    let account = sandbox.setup_account("owner@example.com", "Acme Books");
    pytest(
        "test_freshbooks.py",
        json!({
            "base_url": sandbox.base_url(),
            "account_id": account.account_id,
            "business_id": account.business_id,
            "identity_id": account.identity_id,
            "credentials": parse(&sandbox.credentials_json(&account.tokens)),
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickbooks_sdk() {
    let sandbox = QuickbooksSandbox::start(QuickbooksSandboxOptions::default()).await;
    let company = sandbox.setup_company("Acme Books");
    pytest(
        "test_quickbooks.py",
        json!({
            "base_url": sandbox.base_url(),
            "realm_id": company.realm_id,
            "credentials": parse(&sandbox.credentials_json(&company)),
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailchimp_sdk() {
    let sandbox = MailchimpSandbox::try_start(MailchimpSandboxOptions::default())
        .await
        .expect("the Mailchimp sandbox starts (its vendored OpenAPI document is found)");
    pytest(
        "test_mailchimp.py",
        json!({
            "base_url": sandbox.base_url(),
            "root_url": sandbox.root_url(),
            "api_key": sandbox.api_key(),
            "server": sandbox.dc(),
            "list_id": DEFAULT_LIST_ID,
            // The responses are checked against the same OpenAPI document the sandbox
            // validates requests with.
            "spec_path": std::env::var(spec::SPEC_PATH_ENV).unwrap_or_else(|_| spec::SPEC_PATH.to_string()),
        }),
    )
    .await;
}
