//! `TargetDispatch::handle_batch`: events grouped by connection, one lookup and one flow call
//! per connection, answers in input order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;

use super::*;
use crate::adapters::embedded::EmbeddedDb;
use crate::connections::ConnectionSet;
use crate::event::{Origin, SourceEvent, SourceRef};
use crate::ports::{ConnectionStore, ManualClock};

const CONNECTIONS: &str = r#"
[connection.fb-to-mc]
source = { vendor = "freshbooks", account = "acct", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1", store_id = "s1" }

[connection.qbo-to-mc]
source = { vendor = "quickbooks", account = "realm", credentials = "qb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
"#;

/// Each call: the connection and the entity ids it was given.
type Calls = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// Answers each event with a skip naming its connection and entity; records every call.
struct Recorder {
    calls: Calls,
    /// Answers this many results fewer than events.
    short: usize,
}

#[async_trait]
impl FlowHandler for Recorder {
    async fn handle_connection(
        &self,
        _: &str,
        _: &Connection,
        _: &SyncEvent,
    ) -> Result<Handled, HandlerError> {
        unreachable!("the dispatch calls handle_connection_batch")
    }

    async fn handle_connection_batch(
        &self,
        name: &str,
        _: &Connection,
        events: &[SyncEvent],
    ) -> Vec<Result<Handled, HandlerError>> {
        let ids: Vec<String> = events.iter().map(|e| e.entity_id.clone()).collect();
        self.calls
            .lock()
            .unwrap()
            .push((name.to_string(), ids.clone()));
        let keep = ids.len().saturating_sub(self.short);
        ids[..keep]
            .iter()
            .map(|id| {
                Ok(Handled::Skipped {
                    reason: format!("{name}:{id}"),
                })
            })
            .collect()
    }
}

async fn dispatch(short: usize) -> (TargetDispatch, Calls) {
    let clock = Arc::new(ManualClock::at_unix(1_773_576_000));
    let db = Arc::new(EmbeddedDb::in_memory(clock).unwrap());
    let set = ConnectionSet::from_toml(CONNECTIONS, "test").unwrap();
    db.put_connections(&set).await.unwrap();
    let calls = Calls::default();
    let flows = FLOWS
        .iter()
        .filter(|f| f.target == Vendor::Mailchimp)
        .map(|f| {
            let handler: Box<dyn FlowHandler> = Box::new(Recorder {
                calls: calls.clone(),
                short,
            });
            (f, handler)
        })
        .collect();
    let dispatch = TargetDispatch {
        target: Vendor::Mailchimp,
        connections: Arc::new(CachedConnections::new(db, Duration::ZERO)),
        flows,
    };
    (dispatch, calls)
}

fn event(connection: &str, id: &str) -> SyncEvent {
    SourceEvent {
        event_id: format!("evt-{id}"),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: "acct".into(),
        },
        entity: "client".into(),
        entity_id: id.into(),
        operation: "update".into(),
        occurred_at: None,
        detail: Default::default(),
    }
    .for_connection(connection, Origin::Webhook, DateTime::UNIX_EPOCH)
}

fn skipped(reason: &str) -> Result<Handled, HandlerError> {
    Ok(Handled::Skipped {
        reason: reason.into(),
    })
}

#[tokio::test]
async fn a_batch_is_handled_per_connection_and_answered_in_order() {
    let (dispatch, calls) = dispatch(0).await;
    let events = [
        event("fb-to-mc", "1"),
        event("qbo-to-mc", "2"),
        event("gone", "3"),
        event("fb-to-mc", "4"),
        event("qbo-to-mc", "5"),
        event("gone", "6"),
    ];
    let results = dispatch.handle_batch(&events).await;
    assert_eq!(
        *calls.lock().unwrap(),
        [
            (
                "fb-to-mc".to_string(),
                vec!["1".to_string(), "4".to_string()]
            ),
            (
                "qbo-to-mc".to_string(),
                vec!["2".to_string(), "5".to_string()]
            ),
        ]
    );
    assert_eq!(results.len(), 6);
    assert_eq!(results[0], skipped("fb-to-mc:1"));
    assert_eq!(results[1], skipped("qbo-to-mc:2"));
    assert_eq!(results[3], skipped("fb-to-mc:4"));
    assert_eq!(results[4], skipped("qbo-to-mc:5"));
    for i in [2, 5] {
        let err = results[i].as_ref().unwrap_err();
        assert_eq!(err.class(), "unknown_connection", "{err}");
    }
}

#[tokio::test]
async fn an_event_the_flow_gave_no_answer_for_is_transient() {
    let (dispatch, _) = dispatch(1).await;
    let results = dispatch
        .handle_batch(&[event("fb-to-mc", "1"), event("fb-to-mc", "2")])
        .await;
    assert_eq!(results[0], skipped("fb-to-mc:1"));
    let err = results[1].as_ref().unwrap_err();
    assert!(err.is_transient());
    assert!(err.message().contains("no result"), "{err}");
}

#[tokio::test]
async fn a_single_event_takes_the_same_route() {
    let (dispatch, calls) = dispatch(0).await;
    // `handle` goes to handle_connection, which the recorder refuses: check the route by error.
    let err = dispatch.handle(&event("gone", "1")).await.unwrap_err();
    assert_eq!(err.class(), "unknown_connection");
    assert!(calls.lock().unwrap().is_empty());
}
