//! The operations commands on a deployed stack, against moto: a CloudFormation stack whose
//! outputs name tables, a queue pair and a secret prefix made by `mlc_tests::moto::AwsEnv`,
//! read by the binary through `--stack` (DescribeStacks) as it would read a real one.
//!
//! moto has no SQS StartMessageMoveTask, so the DLQ redrive is not run here: its request shape
//! is tested with aws-smithy-mocks in `tests/tests/aws_adapters.rs`, and its behaviour on the
//! embedded queue in `ops_local.rs`. `replay --id` (a plain send) is.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{all_text as text, code, json_of, moto_command, stack_outputs};
use mlc::connections::ConnectionSet;
use mlc::event::{Origin, SourceEvent, SourceRef};
use mlc::ports::{AuditEntry, DeadLetter, DeadLetterStatus, Outcome, OutgoingMessage, SystemClock};
use mlc::vendor::Vendor;
use mlc_tests::moto::AwsEnv;

const CONNECTIONS: &str = r#"
[connection.acme]
source = { vendor = "freshbooks", account = "acme", credentials = "fb-acme" }
target = { vendor = "mailchimp", credentials = "mc-acme", list_id = "list1" }
"#;
const RECORD: &str = "freshbooks:acme:client:7";

/// A stack in moto whose outputs are those of `template.yaml`, pointing at `env`.
async fn create_stack(env: &AwsEnv, with_queues: bool) -> String {
    let mut outputs = stack_outputs(env);
    if !with_queues {
        outputs.as_object_mut().expect("an object").remove("Queues");
    }
    common::create_stack(env, "stack", outputs).await
}

fn run(dir: &Path, args: &[&str]) -> Output {
    moto_command(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The env with one connection, one audit entry and one dead-lettered message.
async fn prepared() -> AwsEnv {
    let env = AwsEnv::start("mailchimp", 5, Arc::new(SystemClock)).await;
    env.store
        .put_connections(&ConnectionSet::from_toml(CONNECTIONS, "t.toml").expect("valid"))
        .await
        .expect("connections");
    let now = Utc::now();
    env.store
        .record_audit(&AuditEntry {
            record_key: RECORD.into(),
            at: now,
            event_id: "e7".into(),
            connection: "acme".into(),
            target: "mailchimp".into(),
            origin: Some(Origin::Poll),
            operation: "update".into(),
            outcome: Outcome::DeadLettered,
            before: None,
            written: None,
            error_class: Some("validation".into()),
            error_message: Some("refused".into()),
            vendor_request_id: Some("req-7".into()),
            attempt: 1,
            duration_ms: 3,
            message_id: None,
            expires_at: None,
        })
        .await
        .expect("audit");
    let body = SourceEvent {
        event_id: "e7".into(),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: "acme".into(),
        },
        entity: "client".into(),
        entity_id: "7".into(),
        operation: "update".into(),
        occurred_at: None,
        detail: serde_json::Map::new(),
    }
    .for_connection("acme", Origin::Poll, now)
    .to_json();
    env.queue
        .send_batch("mailchimp", &[OutgoingMessage::new("m0", body.clone())])
        .await
        .expect("sent");
    let received = env
        .queue
        .receive("mailchimp", 1, Duration::from_secs(30))
        .await
        .expect("received");
    env.queue
        .move_to_dead_letter("mailchimp", &received[0])
        .await
        .expect("dead-lettered");
    env.store
        .put_dead_letter(&DeadLetter {
            id: "event:acme:e7".into(),
            stage: "worker:mailchimp".into(),
            queue: Some("mailchimp".into()),
            event_id: Some("e7".into()),
            record_key: Some(RECORD.into()),
            connection: Some("acme".into()),
            error_class: "validation".into(),
            reason: "refused".into(),
            vendor_request_id: Some("req-7".into()),
            attempts: 1,
            payload: body,
            status: DeadLetterStatus::Open,
            created_at: now,
            resolved_at: None,
            expires_at: None,
        })
        .await
        .expect("dead letter");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_read_a_stack_through_its_outputs() {
    let env = prepared().await;
    let stack = create_stack(&env, true).await;
    let dir = std::env::temp_dir();

    let out = tokio::task::spawn_blocking({
        let (dir, stack) = (dir.clone(), stack.clone());
        move || run(&dir, &["status", &format!("--stack={stack}"), "--json"])
    })
    .await
    .expect("ran");
    assert_eq!(code(&out), 1, "{}", text(&out));
    let report = json_of(&out);
    assert_eq!(report["target"], format!("stack {stack}"));
    let acme = &report["connections"][0];
    assert_eq!(acme["queue"]["dead"], 1, "{acme}");
    assert_eq!(acme["open_dead_letters"], 1);
    assert_eq!(acme["last_event"]["outcome"], "dead_lettered");
    assert_eq!(acme["credentials"][0]["state"], "missing");

    let out = run(
        &dir,
        &[
            "audit",
            "freshbooks:client:7",
            &format!("--stack={stack}"),
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json_of(&out)[0]["vendor_request_id"], "req-7");

    let out = run(
        &dir,
        &[
            "dead-letters",
            "list",
            &format!("--stack={stack}"),
            "--json",
        ],
    );
    assert_eq!(json_of(&out)[0]["id"], "event:acme:e7");

    // `--stack` without a name reads samconfig.toml in the working directory.
    let project = std::env::temp_dir().join(format!("{stack}-project"));
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(
        project.join("samconfig.toml"),
        format!("version = 0.1\n[default.global.parameters]\nstack_name = \"{stack}\"\n"),
    )
    .expect("samconfig");
    let out = run(
        &project,
        &["dead-letters", "show", "event:acme:e7", "--stack", "--json"],
    );
    // A bare `--stack` does not take the record that follows it as a stack name.
    let trail = run(
        &project,
        &["audit", "--stack", "freshbooks:client:7", "--json"],
    );
    let _ = std::fs::remove_dir_all(&project);
    assert_eq!(code(&trail), 0, "{}", text(&trail));
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json_of(&out)["payload_body"]["entity_id"], "7");

    // One dead letter replayed by id: its payload is back in the SQS queue.
    let out = run(
        &dir,
        &[
            "replay",
            "--id",
            "event:acme:e7",
            "--wait",
            "1",
            &format!("--stack={stack}"),
            "--json",
        ],
    );
    assert_eq!(
        code(&out),
        1,
        "no worker in moto: still queued; {}",
        text(&out)
    );
    assert_eq!(json_of(&out)["replayed"][0]["result"], "queued");
    let depth = env.queue.depth("mailchimp").await.expect("depth");
    assert_eq!(depth.visible, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_without_the_queues_output_is_named() {
    let env = AwsEnv::start("mailchimp", 5, Arc::new(SystemClock)).await;
    let stack = create_stack(&env, false).await;
    let dir = std::env::temp_dir();
    let out =
        tokio::task::spawn_blocking(move || run(&dir, &["status", &format!("--stack={stack}")]))
            .await
            .expect("ran");
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("no `Queues` output"), "{}", text(&out));

    let out = run(
        &std::env::temp_dir(),
        &["status", "--stack=mlc-no-such-stack"],
    );
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("mlc-no-such-stack"), "{}", text(&out));
}
