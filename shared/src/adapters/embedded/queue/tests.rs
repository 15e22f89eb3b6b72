use chrono::Duration as Span;

use super::*;
use crate::adapters::embedded::test_support::test_db;

const VIS: Duration = Duration::from_secs(30);

fn msg(id: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage::new(id, body)
}

async fn declared(max_receives: u32) -> (EmbeddedDb, std::sync::Arc<crate::ports::ManualClock>) {
    let (db, clock) = test_db();
    db.declare_queue("mailchimp", max_receives, VIS)
        .await
        .unwrap();
    (db, clock)
}

#[tokio::test]
async fn undeclared_queues_are_not_found() {
    let (db, _) = test_db();
    let err = db.send_batch("nope", &[msg("1", "x")]).await.unwrap_err();
    assert!(
        matches!(err, PortError::NotFound { what: "queue", .. }),
        "{err}"
    );
    assert!(matches!(
        db.receive("nope", 1, VIS).await,
        Err(PortError::NotFound { .. })
    ));
    assert!(matches!(
        db.depth("nope").await,
        Err(PortError::NotFound { .. })
    ));
    assert!(matches!(
        db.redrive("nope").await,
        Err(PortError::NotFound { .. })
    ));
}

#[tokio::test]
async fn declare_creates_the_dlq_and_records_settings() {
    let (db, _) = declared(5).await;
    assert_eq!(
        db.queue_config("mailchimp").await.unwrap(),
        Some(QueueConfig {
            max_receives: 5,
            default_visibility: VIS
        })
    );
    assert_eq!(db.queue_config("mailchimp-dlq").await.unwrap(), None);
    // The DLQ is a queue of its own, without a redrive policy.
    assert!(db.depth("mailchimp-dlq").await.is_ok());
    assert!(db.declare_queue("mailchimp-dlq", 3, VIS).await.is_err());
    assert!(db.declare_queue("bad name", 3, VIS).await.is_err());
    assert!(db.declare_queue("q", 0, VIS).await.is_err());
    // Re-declaring updates the settings.
    db.declare_queue("mailchimp", 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        db.queue_config("mailchimp")
            .await
            .unwrap()
            .map(|c| c.max_receives),
        Some(2)
    );
}

#[tokio::test]
async fn receive_is_oldest_first_and_hides_for_the_visibility_timeout() {
    let (db, clock) = declared(5).await;
    let failures = db
        .send_batch(
            "mailchimp",
            &[msg("a", "one"), msg("b", "two"), msg("c", "three")],
        )
        .await
        .unwrap();
    assert!(failures.is_empty());
    assert_eq!(
        db.depth("mailchimp").await.unwrap(),
        QueueDepth {
            visible: 3,
            in_flight: 0,
            dead: 0
        }
    );
    let got = db.receive("mailchimp", 2, VIS).await.unwrap();
    let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two"]);
    assert!(got.iter().all(|m| m.receive_count == 1));
    assert_eq!(
        db.depth("mailchimp").await.unwrap(),
        QueueDepth {
            visible: 1,
            in_flight: 2,
            dead: 0
        }
    );
    let rest = db.receive("mailchimp", 10, VIS).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].body, "three");
    assert!(db.receive("mailchimp", 10, VIS).await.unwrap().is_empty());

    clock.advance(Span::seconds(29));
    assert!(db.receive("mailchimp", 10, VIS).await.unwrap().is_empty());
    clock.advance(Span::seconds(1));
    let again = db.receive("mailchimp", 10, VIS).await.unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(again[0].message_id, got[0].message_id);
    assert_eq!(again[0].body, "one");
    assert!(again.iter().all(|m| m.receive_count == 2));
    assert_ne!(again[0].receipt, got[0].receipt);
}

#[tokio::test]
async fn stale_receipts_are_refused() {
    let (db, clock) = declared(5).await;
    db.send_batch("mailchimp", &[msg("a", "one")])
        .await
        .unwrap();
    let first = db.receive("mailchimp", 1, VIS).await.unwrap().remove(0);
    // The visibility timeout lapsed but nobody received it again: the receipt still works.
    clock.advance(Span::seconds(31));
    db.change_visibility("mailchimp", &first.receipt, Duration::ZERO)
        .await
        .unwrap();
    let second = db.receive("mailchimp", 1, VIS).await.unwrap().remove(0);
    for result in [
        db.delete("mailchimp", &first.receipt).await,
        db.change_visibility("mailchimp", &first.receipt, VIS).await,
        db.move_to_dead_letter("mailchimp", &first).await,
        db.delete("mailchimp", "made-up").await,
    ] {
        assert!(
            matches!(result, Err(PortError::NotFound { .. })),
            "{result:?}"
        );
    }
    // The receipt belongs to its queue.
    db.declare_queue("hubspot", 5, VIS).await.unwrap();
    assert!(db.delete("hubspot", &second.receipt).await.is_err());
    db.delete("mailchimp", &second.receipt).await.unwrap();
    assert!(db.delete("mailchimp", &second.receipt).await.is_err());
    assert_eq!(db.depth("mailchimp").await.unwrap(), QueueDepth::default());
}

#[tokio::test]
async fn change_visibility_hides_or_releases() {
    let (db, clock) = declared(5).await;
    db.send_batch("mailchimp", &[msg("a", "one")])
        .await
        .unwrap();
    let m = db.receive("mailchimp", 1, VIS).await.unwrap().remove(0);
    db.change_visibility("mailchimp", &m.receipt, Duration::from_secs(120))
        .await
        .unwrap();
    clock.advance(Span::seconds(119));
    assert!(db.receive("mailchimp", 1, VIS).await.unwrap().is_empty());
    clock.advance(Span::seconds(1));
    let m = db.receive("mailchimp", 1, VIS).await.unwrap().remove(0);
    db.change_visibility("mailchimp", &m.receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(db.receive("mailchimp", 1, VIS).await.unwrap().len(), 1);
    assert!(
        db.change_visibility("mailchimp", &m.receipt, Duration::from_secs(13 * 3600))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn max_receives_moves_to_the_dlq_and_redrive_brings_back() {
    let (db, clock) = declared(2).await;
    db.send_batch("mailchimp", &[msg("a", "poison"), msg("b", "fine")])
        .await
        .unwrap();
    for round in 1..=2 {
        let got = db.receive("mailchimp", 1, VIS).await.unwrap();
        assert_eq!(got[0].body, "poison");
        assert_eq!(got[0].receive_count, round);
        clock.advance(Span::seconds(30));
    }
    // A third receive would pass max_receives = 2: the message goes to the DLQ, and the
    // receive goes on to the next one.
    let got = db.receive("mailchimp", 1, VIS).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "fine");
    assert_eq!(
        db.depth("mailchimp").await.unwrap(),
        QueueDepth {
            visible: 0,
            in_flight: 1,
            dead: 1
        }
    );
    let dead = db.receive("mailchimp-dlq", 10, VIS).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    db.change_visibility("mailchimp-dlq", &dead[0].receipt, Duration::ZERO)
        .await
        .unwrap();

    assert_eq!(db.redrive("mailchimp").await.unwrap(), "1");
    assert_eq!(db.depth("mailchimp").await.unwrap().dead, 0);
    let back = db.receive("mailchimp", 10, VIS).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, "poison");
    assert_eq!(back[0].receive_count, 1, "a redriven message starts over");
    assert_eq!(db.redrive("mailchimp").await.unwrap(), "0");
    // The DLQ has no DLQ of its own to redrive from.
    assert!(matches!(
        db.redrive("mailchimp-dlq").await,
        Err(PortError::NotFound { .. })
    ));
}

#[tokio::test]
async fn move_to_dead_letter_moves_a_received_message_now() {
    let (db, _) = declared(5).await;
    db.send_batch("mailchimp", &[msg("a", "bad"), msg("b", "good")])
        .await
        .unwrap();
    let got = db.receive("mailchimp", 10, VIS).await.unwrap();
    db.move_to_dead_letter("mailchimp", &got[0]).await.unwrap();
    assert_eq!(
        db.depth("mailchimp").await.unwrap(),
        QueueDepth {
            visible: 0,
            in_flight: 1,
            dead: 1
        }
    );
    // Its receipt died with the move.
    assert!(db.delete("mailchimp", &got[0].receipt).await.is_err());
    assert!(db.move_to_dead_letter("mailchimp", &got[0]).await.is_err());
    assert_eq!(db.redrive("mailchimp").await.unwrap(), "1");
    let back = db.receive("mailchimp", 10, VIS).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].message_id, got[0].message_id);
}

#[tokio::test]
async fn oversized_and_invalid_bodies_are_refused_per_message() {
    let (db, _) = declared(5).await;
    let at_limit = "x".repeat(MAX_BODY_BYTES);
    let over = "x".repeat(MAX_BODY_BYTES + 1);
    let failures = db
        .send_batch(
            "mailchimp",
            &[
                msg("ok", &at_limit),
                msg("big", &over),
                msg("nul", "a\u{0}b"),
                msg("empty", ""),
            ],
        )
        .await
        .unwrap();
    let refused: Vec<_> = failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(refused, ["big", "nul", "empty"]);
    assert!(
        failures[0].reason.contains("262145"),
        "{}",
        failures[0].reason
    );
    assert_eq!(db.depth("mailchimp").await.unwrap().visible, 1);
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let (db, _) = declared(5).await;
    let dup = db
        .send_batch("mailchimp", &[msg("a", "1"), msg("a", "2")])
        .await;
    assert!(dup.is_err());
    let eleven: Vec<_> = (0..11).map(|i| msg(&i.to_string(), "x")).collect();
    assert!(db.send_batch("mailchimp", &eleven).await.is_err());
    assert!(
        db.send_batch("mailchimp", &[msg("a:b", "x")])
            .await
            .is_err()
    );
    assert_eq!(db.depth("mailchimp").await.unwrap().visible, 0);
    assert!(db.send_batch("mailchimp", &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn receive_returns_at_most_ten() {
    let (db, _) = declared(5).await;
    let many: Vec<_> = (0..25)
        .map(|i| msg(&i.to_string(), &format!("m{i}")))
        .collect();
    crate::ports::queue::send_all(&db, "mailchimp", &many)
        .await
        .unwrap();
    let got = db.receive("mailchimp", 100, VIS).await.unwrap();
    assert_eq!(got.len(), 10);
    assert_eq!(got[9].body, "m9");
    assert!(db.receive("mailchimp", 0, VIS).await.unwrap().is_empty());
}
