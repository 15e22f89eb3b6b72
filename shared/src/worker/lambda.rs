//! The Lambda host: an SQS event in, a partial batch response out.
//!
//! The function's event source mapping must set `FunctionResponseTypes: [ReportBatchItemFailures]`;
//! without it Lambda ignores the response and retries or deletes whole batches.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent};
use tokio::time::Instant;

use super::harness::Harness;
use super::report::BatchReport;
use crate::ports::ReceivedMessage;

/// The SQS system attribute carrying the receive count.
const RECEIVE_COUNT_ATTRIBUTE: &str = "ApproximateReceiveCount";

/// The records of an SQS event, sorted by whether the harness can take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SqsRecords {
    /// Complete records.
    messages: Vec<ReceivedMessage>,
    /// Ids of records with no receipt handle or body. They are reported failed, untouched: SQS
    /// redelivers them, and its redrive policy dead-letters them if they never arrive whole.
    incomplete: Vec<String>,
    /// Records with no message id. They cannot be reported one by one, so the invocation fails
    /// as a whole (see [`UnidentifiedRecords`]) rather than let Lambda delete them.
    unidentified: usize,
}

/// Splits an SQS event into messages for the harness and records it cannot take.
fn messages_from_sqs(event: SqsEvent) -> SqsRecords {
    let mut out = SqsRecords::default();
    for record in event.records {
        let Some(message_id) = record.message_id.filter(|id| !id.is_empty()) else {
            tracing::error!("SQS record without a message id");
            out.unidentified += 1;
            continue;
        };
        let (Some(receipt), Some(body)) = (record.receipt_handle, record.body) else {
            tracing::error!(%message_id, "SQS record without a receipt handle or body");
            out.incomplete.push(message_id);
            continue;
        };
        let receive_count = match record
            .attributes
            .get(RECEIVE_COUNT_ATTRIBUTE)
            .map(|raw| raw.parse::<u32>())
        {
            Some(Ok(n)) if n > 0 => n,
            other => {
                // Counting it as a first receive only delays our own dead letter: SQS's redrive
                // policy still moves the message when its real count runs out.
                tracing::warn!(%message_id, attribute = ?other, "no usable receive count; assuming 1");
                1
            }
        };
        out.messages.push(ReceivedMessage {
            message_id,
            receipt,
            body,
            receive_count,
        });
    }
    out
}

/// The partial batch response: the ids SQS must keep.
pub fn batch_response(report: &BatchReport) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in &report.failed {
        response.add_failure(id.clone());
    }
    response
}

/// An SQS event had records without a message id.
#[derive(Debug, thiserror::Error)]
#[error("{0} SQS record(s) without a message id; failing the whole batch so none is lost")]
pub struct UnidentifiedRecords(pub usize);

/// Handles one SQS event: the whole invocation, minus the runtime.
pub async fn handle_sqs_event(
    harness: &Harness,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> Result<SqsBatchResponse, UnidentifiedRecords> {
    let records = messages_from_sqs(event);
    let report = harness.process_batch(records.messages, deadline).await;
    if records.unidentified > 0 {
        return Err(UnidentifiedRecords(records.unidentified));
    }
    let mut response = batch_response(&report);
    for id in records.incomplete {
        response.add_failure(id);
    }
    Ok(response)
}

/// The invocation's deadline as an [`Instant`]; `None` when the runtime did not give one.
fn deadline_of(context: &Context) -> Option<Instant> {
    if context.deadline == 0 {
        return None;
    }
    let left = context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// Serves SQS invocations with `harness` until the runtime stops.
pub(crate) async fn run_lambda(harness: Harness) -> Result<(), lambda_runtime::Error> {
    let harness = &harness;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            let deadline = deadline_of(&event.context);
            handle_sqs_event(harness, event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(records: serde_json::Value) -> SqsEvent {
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    #[test]
    fn records_become_messages_with_their_receive_count() {
        let e = event(serde_json::json!([
            {"messageId": "m1", "receiptHandle": "r1", "body": "{}",
             "attributes": {"ApproximateReceiveCount": "3"}, "eventSource": "aws:sqs"},
            {"messageId": "m2", "receiptHandle": "r2", "body": "x", "attributes": {}},
            {"messageId": "m3", "receiptHandle": "r3", "body": "x",
             "attributes": {"ApproximateReceiveCount": "lots"}},
            {"messageId": "m4", "body": "x"},
            {"receiptHandle": "r5", "body": "x"},
            {"messageId": "", "receiptHandle": "r6", "body": "x"},
        ]));
        let r = messages_from_sqs(e);
        assert_eq!(
            r.messages,
            vec![
                ReceivedMessage {
                    message_id: "m1".into(),
                    receipt: "r1".into(),
                    body: "{}".into(),
                    receive_count: 3
                },
                ReceivedMessage {
                    message_id: "m2".into(),
                    receipt: "r2".into(),
                    body: "x".into(),
                    receive_count: 1
                },
                ReceivedMessage {
                    message_id: "m3".into(),
                    receipt: "r3".into(),
                    body: "x".into(),
                    receive_count: 1
                },
            ]
        );
        assert_eq!(r.incomplete, ["m4"]);
        assert_eq!(r.unidentified, 2);
    }

    #[test]
    fn the_response_lists_only_failed_ids_in_the_wire_shape() {
        let report = BatchReport {
            messages: vec![],
            failed: vec!["a".into(), "b".into()],
        };
        let json = serde_json::to_value(batch_response(&report)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [
                {"itemIdentifier": "a"}, {"itemIdentifier": "b"}
            ]})
        );
        let empty = serde_json::to_value(batch_response(&BatchReport::default())).unwrap();
        assert_eq!(empty, serde_json::json!({"batchItemFailures": []}));
    }

    #[test]
    fn the_deadline_comes_from_the_context() {
        let mut ctx = Context::default();
        assert_eq!(deadline_of(&ctx), None);
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        ctx.deadline = in_a_minute
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = deadline_of(&ctx).unwrap();
        let left = d - Instant::now();
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
        ctx.deadline = 1;
        assert!(deadline_of(&ctx).unwrap() <= Instant::now());
    }
}
