//! Queue port checks: SQS semantics on every adapter.

use std::collections::BTreeSet;
use std::time::Duration;

use mlc::ports::queue::send_all;
use mlc::ports::{OutgoingMessage, PortError, QueueDepth, ReceivedMessage};

use super::QueueFixture;

/// SQS's limit on one message body.
const MAX_BODY: usize = 256 * 1024;
const LONG: Duration = Duration::from_secs(60);

fn message(id: &str, body: impl Into<String>) -> OutgoingMessage {
    OutgoingMessage::new(id, body)
}

/// Receives until `want` messages arrived or a receive comes back empty.
async fn receive_n(
    q: &dyn mlc::ports::Queue,
    name: &str,
    want: usize,
    visibility: Duration,
) -> Vec<ReceivedMessage> {
    let mut got = Vec::new();
    while got.len() < want {
        let batch = q
            .receive(name, want - got.len(), visibility)
            .await
            .expect("receive");
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    got
}

/// Send, receive (bodies, ids, counts), delete, and an empty queue afterwards.
pub async fn send_receive_delete(fx: &dyn QueueFixture) {
    let (q, name) = fx.declare(5).await;
    let sent = [
        message("a", r#"{"n":1}"#),
        message("b", "two ✓"),
        message("c", "x".repeat(MAX_BODY)),
    ];
    let failures = q.send_batch(&name, &sent).await.expect("send_batch");
    assert!(failures.is_empty(), "nothing refused: {failures:?}");
    assert_eq!(
        q.depth(&name).await.expect("depth"),
        QueueDepth {
            visible: 3,
            in_flight: 0,
            dead: 0
        }
    );

    let got = receive_n(q.as_ref(), &name, 3, LONG).await;
    let bodies: BTreeSet<_> = got.iter().map(|m| m.body.clone()).collect();
    let expected: BTreeSet<_> = sent.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, expected);
    assert!(got.iter().all(|m| m.receive_count == 1), "{got:?}");
    let ids: BTreeSet<_> = got.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 3, "message ids are distinct");
    assert_eq!(
        q.depth(&name).await.expect("depth"),
        QueueDepth {
            visible: 0,
            in_flight: 3,
            dead: 0
        }
    );

    for m in &got {
        q.delete(&name, &m.receipt).await.expect("delete");
    }
    assert_eq!(q.depth(&name).await.expect("depth"), QueueDepth::default());
    assert!(
        q.receive(&name, 10, LONG)
            .await
            .expect("receive")
            .is_empty()
    );
    assert!(
        q.receive(&name, 0, LONG)
            .await
            .expect("receive 0")
            .is_empty()
    );
}

/// Per-message refusals come back as failures while the rest is sent; malformed batches and
/// unknown queues are errors.
pub async fn refusals(fx: &dyn QueueFixture) {
    let (q, name) = fx.declare(5).await;
    let batch = [
        message("ok", "fine"),
        message("big", "x".repeat(MAX_BODY + 1)),
        message("empty", ""),
        message("nul", "a\u{0}b"),
    ];
    let failures = q.send_batch(&name, &batch).await.expect("send_batch");
    let refused: BTreeSet<_> = failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        refused,
        BTreeSet::from(["big", "empty", "nul"]),
        "{failures:?}"
    );
    assert!(failures.iter().all(|f| !f.reason.is_empty()));
    let got = receive_n(q.as_ref(), &name, 2, LONG).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "fine");

    let eleven: Vec<_> = (0..11).map(|i| message(&format!("m{i}"), "b")).collect();
    assert!(
        q.send_batch(&name, &eleven).await.is_err(),
        "over 10 per batch"
    );
    let bad_id = [message("not:valid", "b")];
    assert!(
        q.send_batch(&name, &bad_id).await.is_err(),
        "invalid entry id"
    );
    let twice = [message("same", "1"), message("same", "2")];
    assert!(
        q.send_batch(&name, &twice).await.is_err(),
        "duplicate entry id"
    );
    assert_eq!(
        q.depth(&name).await.expect("depth").visible,
        0,
        "a refused batch sends nothing"
    );

    // `send_all` batches any number.
    let many: Vec<_> = (0..23)
        .map(|i| message(&format!("m{i}"), format!("body {i}")))
        .collect();
    assert!(
        send_all(q.as_ref(), &name, &many)
            .await
            .expect("send_all")
            .is_empty()
    );
    assert_eq!(q.depth(&name).await.expect("depth").visible, 23);
    let five = q.receive(&name, 5, LONG).await.expect("receive 5");
    assert!(!five.is_empty() && five.len() <= 5, "{}", five.len());
    let ten = q.receive(&name, 50, LONG).await.expect("receive 50");
    assert!(ten.len() <= 10, "at most 10 per receive");

    let missing = q.receive("mlc-no-such-queue", 1, LONG).await;
    assert!(
        matches!(missing, Err(PortError::NotFound { .. })),
        "{missing:?}"
    );
}

/// Visibility timeouts hide a received message; it comes back with a higher receive count and a
/// new receipt; `change_visibility` shows it at once or hides it longer.
pub async fn visibility(fx: &dyn QueueFixture) {
    let (q, name) = fx.declare(10).await;
    q.send_batch(&name, &[message("v", "visible?")])
        .await
        .expect("send");
    let first = q
        .receive(&name, 1, Duration::from_secs(1))
        .await
        .expect("receive");
    assert_eq!(first.len(), 1);
    assert!(
        q.receive(&name, 1, LONG).await.expect("receive").is_empty(),
        "hidden"
    );

    fx.advance(Duration::from_millis(2100)).await;
    let second = q.receive(&name, 1, LONG).await.expect("receive");
    assert_eq!(second.len(), 1, "visible again after its timeout");
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(
        second[0].receipt, first[0].receipt,
        "a fresh receipt per receive"
    );

    q.change_visibility(&name, &second[0].receipt, Duration::ZERO)
        .await
        .expect("change_visibility 0");
    let third = q.receive(&name, 1, LONG).await.expect("receive");
    assert_eq!(third.len(), 1, "zero timeout: visible at once");
    assert_eq!(third[0].receive_count, 3);

    // Shortening the timeout brings it back early...
    q.change_visibility(&name, &third[0].receipt, Duration::from_secs(1))
        .await
        .expect("change_visibility short");
    fx.advance(Duration::from_millis(2100)).await;
    let fourth = q
        .receive(&name, 1, Duration::from_secs(1))
        .await
        .expect("receive");
    assert_eq!(fourth.len(), 1, "visible after the shortened timeout");
    assert_eq!(fourth[0].receive_count, 4);
    // ...and extending it keeps it hidden past the original one.
    q.change_visibility(&name, &fourth[0].receipt, LONG)
        .await
        .expect("change_visibility long");
    fx.advance(Duration::from_millis(2100)).await;
    assert!(q.receive(&name, 1, LONG).await.expect("receive").is_empty());
    assert_eq!(q.depth(&name).await.expect("depth").in_flight, 1);
}

/// A delayed message stays out of receives for its delay, then arrives as never received; a
/// delay over SQS's 15 minutes is refused for that message alone.
pub async fn delayed_send(fx: &dyn QueueFixture) {
    let (q, name) = fx.declare(5).await;
    let batch = [
        message("now", "now"),
        message("later", "later").with_delay(Duration::from_secs(2)),
        message("too-late", "too late").with_delay(Duration::from_secs(15 * 60 + 1)),
    ];
    let failures = q.send_batch(&name, &batch).await.expect("send_batch");
    let refused: Vec<_> = failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(refused, ["too-late"], "{failures:?}");
    let got = receive_n(q.as_ref(), &name, 2, LONG).await;
    let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["now"], "the delayed message waits");

    fx.advance(Duration::from_millis(2100)).await;
    let got = receive_n(q.as_ref(), &name, 1, LONG).await;
    assert_eq!(got.len(), 1, "delivered after its delay");
    assert_eq!(got[0].body, "later");
    assert_eq!(got[0].receive_count, 1);
}

/// A message received `max_receives` times goes to the dead-letter queue on the next receive.
pub async fn redrive_policy(fx: &dyn QueueFixture) {
    let (q, name) = fx.declare(2).await;
    q.send_batch(&name, &[message("p", "poison")])
        .await
        .expect("send");
    for expected in 1..=2 {
        let got = q.receive(&name, 1, LONG).await.expect("receive");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, expected);
        q.change_visibility(&name, &got[0].receipt, Duration::ZERO)
            .await
            .expect("release");
    }
    assert!(
        q.receive(&name, 1, LONG).await.expect("receive").is_empty(),
        "the third receive moves it instead of delivering it"
    );
    assert_eq!(
        q.depth(&name).await.expect("depth"),
        QueueDepth {
            visible: 0,
            in_flight: 0,
            dead: 1
        }
    );
}

/// `move_to_dead_letter` takes a received message off the queue into its dead-letter queue;
/// `redrive` brings dead letters back where the backend supports it.
pub async fn dead_letter_and_redrive(fx: &dyn QueueFixture) {
    let (q, name) = fx.declare(5).await;
    q.send_batch(&name, &[message("d", "dead"), message("l", "live")])
        .await
        .expect("send");
    let got = receive_n(q.as_ref(), &name, 2, LONG).await;
    let dead = got.iter().find(|m| m.body == "dead").expect("received");
    let live = got.iter().find(|m| m.body == "live").expect("received");
    q.move_to_dead_letter(&name, dead).await.expect("move");
    q.change_visibility(&name, &live.receipt, Duration::ZERO)
        .await
        .expect("release");
    assert_eq!(
        q.depth(&name).await.expect("depth"),
        QueueDepth {
            visible: 1,
            in_flight: 0,
            dead: 1
        }
    );
    let again = q.receive(&name, 10, LONG).await.expect("receive");
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].body, "live",
        "the dead letter is gone from the queue"
    );
    q.delete(&name, &again[0].receipt).await.expect("delete");

    if !fx.supports_redrive() {
        // moto: StartMessageMoveTask is not implemented; the adapter must fail, not pretend.
        let err = q.redrive(&name).await.expect_err("redrive on moto");
        assert!(
            matches!(&err, PortError::Backend { message, .. } if message.contains("StartMessageMoveTask")),
            "{err}"
        );
        return;
    }
    let handle = q.redrive(&name).await.expect("redrive");
    assert!(!handle.is_empty());
    // A move task is asynchronous on SQS: give it time.
    let mut back = Vec::new();
    for _ in 0..20 {
        back = q.receive(&name, 10, LONG).await.expect("receive");
        if !back.is_empty() {
            break;
        }
        fx.advance(Duration::from_millis(500)).await;
    }
    assert_eq!(back.len(), 1, "the dead letter is back");
    assert_eq!(back[0].body, "dead");
    assert_eq!(q.depth(&name).await.expect("depth").dead, 0);
}
