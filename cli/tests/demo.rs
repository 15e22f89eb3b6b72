//! The demo and `dev --sandbox`, run as a user runs them: the built binary, its exit code and
//! its output. Everything is local (sandboxes on loopback ports); nothing reaches the internet.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ml-connector");

#[test]
fn demo_syncs_everything_and_exits_zero() {
    let output = Command::new(BIN)
        .args(["demo", "--timeout", "120"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({:?}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "3 FreshBooks callbacks registered",
        "received  client.create",
        "received  invoice.create",
        "received  payment.create",
        "received  client.update",
        "queued    mailchimp queue",
        "synced    create",
        // The email change: the new address upserted, the old one archived.
        "member sam.lee@example.org (transactional); sam@example.com archived",
        // The orders table: the paid invoice with its lines.
        "2 × Consulting @ 150.0, 1 × Hosting @ 20.0",
        "Audit trail of freshbooks:",
        "nothing dead-lettered",
        "sam build && sam deploy --guided",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("│ sam@example.com     ┆ archived"),
        "the old address is archived in the members table:\n{stdout}"
    );
    // Logs stay out of the way: the demo filters to warnings.
    assert!(
        !stderr.contains(" INFO "),
        "info logs in the demo:\n{stderr}"
    );
}

#[test]
fn demo_exits_non_zero_with_a_reason_when_it_cannot_run() {
    let output = Command::new(BIN)
        .arg("demo")
        .env(
            "MLC_SANDBOX_MAILCHIMP_SPEC",
            "/nonexistent/mailchimp.marketing.json",
        )
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the demo claimed success");
    assert!(
        stderr.contains("starting the sandboxes") && stderr.contains("/nonexistent/"),
        "{stderr}"
    );
}

/// Kills the child on drop, so a failed assertion does not leave `dev` running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dev_sandbox_registers_verified_callbacks_and_prints_the_control_urls() {
    let dir = std::env::temp_dir().join(format!("ml-connector-dev-sandbox-{}", std::process::id()));
    let mut child = Running(
        Command::new(BIN)
            .args(["dev", "--sandbox", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.join("local.db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary runs"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("Press Ctrl-C")) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("dev --sandbox did not get ready:\n{}", seen.join("\n")),
        }
    }
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    let out = seen.join("\n");
    for expected in [
        "the built-in sandbox connection",
        // Client, invoice and payment for Mailchimp; those and bill vendors for HubSpot.
        "7 FreshBooks callback(s) registered and verified",
        "FreshBooks state: http://127.0.0.1:",
        "Mailchimp state: http://127.0.0.1:",
        "HubSpot portal: http://127.0.0.1:",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(out.contains("POST http://127.0.0.1:"), "{out}");
}
