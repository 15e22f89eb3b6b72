//! The operations commands (`status`, `audit`, `dead-letters`, `replay`, `backfill`) run as the
//! real binary against a local store prepared through the mlc library.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{Duration as TimeDelta, Utc};
use common::{BIN, Scratch, all_text as text, code, json_of};
use mlc::connections::ConnectionSet;
use mlc::event::{Origin, SourceEvent, SourceRef};
use mlc::ports::{
    AuditEntry, AuditLog, ConnectionStore, Cursors, DeadLetter, DeadLetterStatus, DeadLetters,
    Outcome, OutgoingMessage, Queue, Secrets,
};
use mlc::vendor::Vendor;
use secrecy::SecretString;
use serde_json::json;

const CONNECTIONS: &str = r#"
[connection.acme]
source = { vendor = "freshbooks", account = "acme", credentials = "fb-acme" }
target = { vendor = "mailchimp", credentials = "mc-acme", list_id = "list1" }
"#;
/// The stored access token: must never appear in any output.
const ACCESS_TOKEN: &str = "fb-access-TOKEN-never-printed";
const RECORD: &str = "freshbooks:acme:client:1";

/// Runs `ml-connector <args> --db <the scratch store>`.
fn run(local: &Scratch, args: &[&str]) -> Output {
    run_in(local.dir(), args, &local.db())
}

fn run_in(dir: &Path, args: &[&str], db: &Path) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(dir)
        .env_remove("ML_CONNECTOR_STACK")
        .env_remove("ML_CONNECTOR_DB")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(ACCESS_TOKEN) && !stderr.contains(ACCESS_TOKEN),
        "a secret was printed"
    );
    out
}

fn event_json(entity_id: &str, event_id: &str) -> String {
    SourceEvent {
        event_id: event_id.to_string(),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: "acme".into(),
        },
        entity: "client".to_string(),
        entity_id: entity_id.to_string(),
        operation: "update".to_string(),
        occurred_at: None,
        detail: serde_json::Map::new(),
    }
    .for_connection("acme", Origin::Webhook, Utc::now())
    .to_json()
}

fn audit(at: chrono::DateTime<Utc>, event: &str, outcome: Outcome) -> AuditEntry {
    AuditEntry {
        record_key: RECORD.to_string(),
        at,
        event_id: event.to_string(),
        connection: "acme".to_string(),
        target: "mailchimp".to_string(),
        origin: Some(Origin::Webhook),
        operation: "update".to_string(),
        outcome,
        before: Some(json!({"email_address": "ann@example.com", "merge_fields": {"FNAME": "Ann"}})),
        written: Some(
            json!({"email_address": "ann@example.com", "merge_fields": {"FNAME": "Anne"}}),
        ),
        error_class: (outcome == Outcome::DeadLettered).then(|| "validation".to_string()),
        error_message: (outcome == Outcome::DeadLettered)
            .then(|| "Mailchimp refused the address".to_string()),
        vendor_request_id: None,
        attempt: 1,
        duration_ms: 12,
        message_id: None,
        expires_at: None,
    }
}

/// A store with one connection, an expired FreshBooks credential set (the Mailchimp one is
/// missing), a poll cursor, two audit entries of one record and one dead-lettered message
/// (in the DLQ, with its dead-letter record).
async fn prepared() -> Scratch {
    let local = Scratch::new("ops");
    let (db, secrets) = local.open();
    db.put_connections(&ConnectionSet::from_toml(CONNECTIONS, "t.toml").expect("valid"))
        .await
        .expect("connections stored");
    db.declare_queue("mailchimp", 5, Duration::from_secs(30))
        .await
        .expect("queue declared");
    let expired = json!({
        "access_token": ACCESS_TOKEN,
        "refresh_token": "fb-refresh-never-printed",
        "expires_at": (Utc::now() - TimeDelta::hours(3)).to_rfc3339(),
    });
    secrets
        .put(
            "credentials/fb-acme",
            &SecretString::from(expired.to_string()),
        )
        .await
        .expect("secret stored");
    db.put_cursor("poll:freshbooks:acme", "2026-11-20")
        .await
        .expect("cursor stored");
    let now = Utc::now();
    db.record_audit(&audit(now - TimeDelta::minutes(10), "e0", Outcome::Synced))
        .await
        .expect("audit");
    db.record_audit(&audit(
        now - TimeDelta::minutes(5),
        "e1",
        Outcome::DeadLettered,
    ))
    .await
    .expect("audit");

    let body = event_json("1", "e1");
    db.send_batch("mailchimp", &[OutgoingMessage::new("m0", body.clone())])
        .await
        .expect("sent");
    let received = db
        .receive("mailchimp", 1, Duration::from_secs(30))
        .await
        .expect("received");
    db.move_to_dead_letter("mailchimp", &received[0])
        .await
        .expect("dead-lettered");
    db.put_dead_letter(&letter("event:acme:e1", Some("mailchimp"), &body, now))
        .await
        .expect("dead letter stored");
    local
}

fn letter(id: &str, queue: Option<&str>, payload: &str, at: chrono::DateTime<Utc>) -> DeadLetter {
    DeadLetter {
        id: id.to_string(),
        stage: match queue {
            Some(q) => format!("worker:{q}"),
            None => "webhook:freshbooks".to_string(),
        },
        queue: queue.map(str::to_string),
        event_id: Some("e1".into()),
        record_key: Some(RECORD.into()),
        connection: Some("acme".into()),
        error_class: "validation".into(),
        reason: "Mailchimp refused the address".into(),
        vendor_request_id: Some("req-1".into()),
        attempts: 1,
        payload: payload.to_string(),
        status: DeadLetterStatus::Open,
        created_at: at,
        resolved_at: None,
        expires_at: None,
    }
}

#[tokio::test]
async fn status_reports_each_connection_and_flags_problems() {
    let local = prepared().await;
    let out = run(&local, &["status", "--json"]);
    assert_eq!(code(&out), 1, "problems mean exit 1: {}", text(&out));
    let report = json_of(&out);
    let acme = &report["connections"][0];
    assert_eq!(acme["name"], "acme");
    assert_eq!(acme["source"], "freshbooks/acme");
    assert_eq!(acme["last_event"]["outcome"], "dead_lettered");
    assert!(acme["last_sync"].is_string(), "{acme}");
    assert_eq!(acme["queue"]["dead"], 1);
    assert_eq!(acme["queue"]["visible"], 0);
    assert_eq!(acme["open_dead_letters"], 1);
    assert_eq!(acme["poll_cursor"], "2026-11-20");
    let states: Vec<&str> = acme["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .map(|c| c["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["expired", "missing"]);
    assert!(acme["credentials"][0]["expires_at"].is_string());
    assert_eq!(acme["problems"].as_array().map(Vec::len), Some(3));

    let human = run(&local, &["status"]);
    let shown = text(&human);
    assert_eq!(code(&human), 1);
    assert!(shown.contains("Needs attention"), "{shown}");
    assert!(shown.contains("mc-acme"), "{shown}");
}

/// A credential set QuickBooks (or FreshBooks) refused to refresh is flagged with the fix.
#[tokio::test]
async fn status_flags_a_set_that_needs_reconnecting() {
    let local = prepared().await;
    let (_db, secrets) = local.open();
    let marked = json!({
        "access_token": ACCESS_TOKEN,
        "refresh_token": "fb-refresh-never-printed",
        "expires_at": (Utc::now() + TimeDelta::hours(3)).to_rfc3339(),
        "needs_reconnect": {"since": "2026-11-23T10:00:00Z", "reason": "invalid_grant"},
    });
    secrets
        .put(
            "credentials/fb-acme",
            &SecretString::from(marked.to_string()),
        )
        .await
        .expect("secret stored");
    let out = run(&local, &["status", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let report = json_of(&out);
    let fb = &report["connections"][0]["credentials"][0];
    assert_eq!(fb["state"], "needs reconnect", "{fb}");
    let problem = fb["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("invalid_grant") && problem.contains("ml-connector connect freshbooks"),
        "{problem}"
    );
    assert!(!text(&out).contains("fb-refresh-never-printed"));
}

#[tokio::test]
async fn audit_shows_the_trail_newest_first_with_changes() {
    let local = prepared().await;
    // The short form resolves to the only FreshBooks account of the connections.
    let out = run(&local, &["audit", "freshbooks:client:1", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let entries = json_of(&out);
    let entries = entries.as_array().expect("a list");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["outcome"], "dead_lettered");
    assert_eq!(entries[0]["error_class"], "validation");
    assert_eq!(entries[1]["outcome"], "synced");
    assert_eq!(entries[1]["changes"][0]["path"], "merge_fields.FNAME");
    assert_eq!(entries[1]["changes"][0]["before"], "Ann");
    assert_eq!(entries[1]["changes"][0]["written"], "Anne");

    let human = text(&run(&local, &["audit", RECORD]));
    assert!(
        human.contains("merge_fields.FNAME: \"Ann\" → \"Anne\""),
        "{human}"
    );

    let failed = run(&local, &["audit", "--outcome", "failed", "--json"]);
    assert_eq!(code(&failed), 0, "{}", text(&failed));
    assert_eq!(json_of(&failed).as_array().map(Vec::len), Some(1));

    let synced_only = run(&local, &["audit", RECORD, "--outcome", "synced", "--json"]);
    assert_eq!(json_of(&synced_only).as_array().map(Vec::len), Some(1));

    assert_eq!(code(&run(&local, &["audit", "freshbooks:client:404"])), 1);
    assert_eq!(code(&run(&local, &["audit", "not-a-key"])), 2);
    assert_eq!(
        code(&run(&local, &["audit", RECORD, "--outcome", "nope"])),
        2
    );
    assert_eq!(code(&run(&local, &["audit"])), 2);
}

#[tokio::test]
async fn dead_letters_list_and_show() {
    let local = prepared().await;
    let out = run(&local, &["dead-letters", "--json"]);
    assert_eq!(code(&out), 1, "open dead letters mean exit 1");
    let list = json_of(&out);
    assert_eq!(list[0]["id"], "event:acme:e1");
    assert_eq!(list[0]["vendor_request_id"], "req-1");

    let show = run(&local, &["dead-letters", "show", "event:acme:e1", "--json"]);
    assert_eq!(code(&show), 0, "{}", text(&show));
    let shown = json_of(&show);
    assert_eq!(shown["payload_body"]["entity_id"], "1");
    assert_eq!(shown["stage"], "worker:mailchimp");

    let human = text(&run(&local, &["dead-letters", "show", "event:acme:e1"]));
    assert!(
        human.contains("ml-connector audit freshbooks:acme:client:1"),
        "{human}"
    );

    assert_eq!(
        code(&run(&local, &["dead-letters", "show", "event:nope"])),
        2
    );
    let resolved = run(
        &local,
        &["dead-letters", "list", "--status", "resolved", "--json"],
    );
    assert_eq!(code(&resolved), 0);
    assert_eq!(json_of(&resolved).as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn replay_without_a_worker_puts_the_messages_back_and_says_so() {
    let local = prepared().await;
    let out = run(&local, &["replay", "--json", "--wait", "30"]);
    assert_eq!(code(&out), 1, "unresolved means exit 1: {}", text(&out));
    let report = json_of(&out);
    assert_eq!(report["redrives"][0]["queue"], "mailchimp");
    assert_eq!(report["redrives"][0]["dead_before"], 1);
    assert_eq!(report["replayed"][0]["result"], "queued");
    assert_eq!(report["worker_seen"], false);

    let (db, _) = local.open();
    let depth = db.depth("mailchimp").await.expect("depth");
    assert_eq!((depth.visible, depth.dead), (1, 0), "back in the queue");

    // Nothing left in the DLQ: a second replay has nothing to do.
    let again = run(&local, &["replay", "--queue", "mailchimp"]);
    let said = text(&again);
    assert!(said.contains("no message in its DLQ"), "{said}");
}

#[tokio::test]
async fn replay_reports_what_the_worker_did() {
    let local = prepared().await;
    let (db, _) = local.open();
    // A stand-in worker: takes each message and resolves its dead letter, as the harness does.
    let worker = tokio::spawn(async move {
        for _ in 0..200 {
            let messages = db
                .receive("mailchimp", 10, Duration::from_secs(30))
                .await
                .expect("receive");
            if let Some(m) = messages.first() {
                db.resolve_dead_letter("event:acme:e1", Utc::now())
                    .await
                    .expect("resolve");
                db.delete("mailchimp", &m.receipt).await.expect("delete");
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let dir = local.dir().to_path_buf();
    let db_path = local.db();
    let out = tokio::task::spawn_blocking(move || {
        run_in(&dir, &["replay", "--json", "--wait", "30"], &db_path)
    })
    .await
    .expect("ran");
    assert!(worker.await.expect("worker"), "the worker got the message");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report = json_of(&out);
    assert_eq!(report["replayed"][0]["id"], "event:acme:e1");
    assert_eq!(report["replayed"][0]["result"], "resolved");
}

#[tokio::test]
async fn replay_one_id_resends_its_payload_and_explains_webhook_letters() {
    let local = prepared().await;
    let (db, _) = local.open();
    db.put_dead_letter(&letter("webhook:x", None, "{}", Utc::now()))
        .await
        .expect("stored");
    let out = run(&local, &["replay", "--id", "webhook:x"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out).contains("never reached a queue"),
        "{}",
        text(&out)
    );

    let out = run(
        &local,
        &["replay", "--id", "event:acme:e1", "--wait", "1", "--json"],
    );
    assert_eq!(code(&out), 1, "no worker: still queued");
    assert_eq!(json_of(&out)["replayed"][0]["result"], "queued");
    let depth = db.depth("mailchimp").await.expect("depth");
    assert_eq!(depth.visible, 1, "the payload is in the queue again");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let local = prepared().await;
    assert_eq!(code(&run(&local, &["backfill", "nope"])), 2);
    assert_eq!(code(&run(&local, &["status", "--days", "0"])), 2);
    let missing = local.dir().join("missing.db");
    let out = run_in(local.dir(), &["status"], &missing);
    assert_eq!(code(&out), 2);
    assert!(text(&out).contains("no local store"), "{}", text(&out));
    assert!(!missing.exists(), "a read command creates no store");
}

#[test]
fn help_teaches_exit_codes_and_examples() {
    for command in ["status", "audit", "dead-letters", "replay", "backfill"] {
        let out = Command::new(BIN)
            .args([command, "--help"])
            .output()
            .expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit codes"), "{command}: {help}");
        assert!(help.contains("Examples"), "{command}: {help}");
        assert!(help.contains("--stack"), "{command}: {help}");
    }
}

/// Backfill against the vendor sandboxes: every FreshBooks record becomes one `backfill` event
/// for the named connection; `--finish` waits for the queue to drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_enqueues_every_source_record_for_the_connection() {
    use mlc_sandbox::Sandboxes;
    use mlc_sandbox::freshbooks::{ClientSpec, Webhooks};

    let sandboxes = Sandboxes::start().await.expect("sandboxes start");
    let account = sandboxes.account_id().to_string();
    for (email, name) in [("ann@example.com", "Ann"), ("bob@example.com", "Bob")] {
        sandboxes
            .freshbooks
            .create_client(
                &account,
                ClientSpec {
                    email: Some(email.into()),
                    fname: Some(name.into()),
                    ..ClientSpec::default()
                },
                Webhooks::Suppress,
            )
            .await
            .expect("client created");
    }

    let local = Scratch::new("ops-backfill");
    let (db, secrets) = local.open();
    // Two connections read the account; only the named one gets the events.
    let connections = format!(
        r#"
[connection.acme]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "fb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{list}" }}
[connection.other]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "fb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "other-list", store_id = "other" }}
"#,
        list = sandboxes.list_id
    );
    db.put_connections(&ConnectionSet::from_toml(&connections, "t.toml").expect("valid"))
        .await
        .expect("stored");
    db.declare_queue("mailchimp", 5, Duration::from_secs(30))
        .await
        .expect("declared");
    secrets
        .put(
            "credentials/fb",
            &SecretString::from(sandboxes.freshbooks_credentials_json()),
        )
        .await
        .expect("secret");
    secrets
        .put(
            "credentials/mc",
            &SecretString::from(sandboxes.mailchimp_credentials_json()),
        )
        .await
        .expect("secret");

    let fb = sandboxes.freshbooks.base_url();
    let mc = sandboxes.mailchimp.base_url();
    let run = |args: Vec<String>| {
        let dir = local.dir().to_path_buf();
        let db_path = local.db();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_in(&dir, &args, &db_path)
        })
    };
    let with_apis = |args: Vec<&str>| {
        let mut args: Vec<String> = args.into_iter().map(str::to_string).collect();
        args.extend([
            "--freshbooks-api".to_string(),
            fb.clone(),
            "--mailchimp-api".to_string(),
            mc.clone(),
        ]);
        args
    };

    let out = run(with_apis(vec!["backfill", "acme", "--json"]))
        .await
        .expect("ran");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report = json_of(&out);
    assert_eq!(report["listed"]["client"], 2, "{report}");
    assert_eq!(report["queued"], 2);
    assert_eq!(report["since"], "2000-01-01");
    assert_eq!(report["store_id"], "acme");

    let messages = db
        .receive("mailchimp", 10, Duration::from_secs(60))
        .await
        .expect("received");
    assert_eq!(messages.len(), 2);
    let mut ids = Vec::new();
    for m in &messages {
        let event = mlc::event::SyncEvent::from_json(&m.body).expect("an event");
        assert_eq!(event.connection, "acme");
        assert_eq!(event.origin, Origin::Backfill);
        assert_eq!(event.entity, "client");
        ids.push(event.event_id);
    }

    // Still queued (in flight): --finish refuses.
    let out = run(with_apis(vec!["backfill", "--finish", "acme"]))
        .await
        .expect("ran");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("still holds 2"), "{}", text(&out));

    // A second backfill gets event ids of its own, so the worker does not drop it as a repeat.
    let out = run(with_apis(vec![
        "backfill",
        "acme",
        "--since",
        "2000-01-01",
        "--json",
    ]))
    .await
    .expect("ran");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let again = db
        .receive("mailchimp", 10, Duration::from_secs(60))
        .await
        .expect("received");
    assert_eq!(again.len(), 2);
    for m in again.iter().chain(&messages) {
        db.delete("mailchimp", &m.receipt).await.expect("deleted");
    }
    for m in &again {
        let event = mlc::event::SyncEvent::from_json(&m.body).expect("an event");
        assert!(!ids.contains(&event.event_id), "a fresh id per run");
    }

    // Drained: --finish goes to Mailchimp (no store was created, as no worker ran).
    let out = run(with_apis(vec!["backfill", "--finish", "acme"]))
        .await
        .expect("ran");
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}
