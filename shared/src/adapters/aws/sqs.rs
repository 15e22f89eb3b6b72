//! [`Queue`] over SQS: one standard queue per logical name, each with its own dead-letter queue
//! (attached through the queue's RedrivePolicy, see [`super::schema`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use super::config::{QueueMap, QueueUrls};
use super::error;
use crate::ports::queue::{MAX_BATCH, MAX_DELAY};
use crate::ports::{
    OutgoingMessage, PortError, PortResult, Queue, QueueDepth, ReceivedMessage, SendFailure,
};

/// SQS's limit on one message, and on the sum of the messages of one batch call.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// Message attribute naming the message a dead-lettered copy was made from.
pub const ORIGINAL_MESSAGE_ID_ATTRIBUTE: &str = "mlc_original_message_id";
/// Message attribute with the receive count the message had when it was dead-lettered.
const RECEIVE_COUNT_ATTRIBUTE: &str = "mlc_receive_count";

const SERVICE: &str = "sqs";
/// Codes SQS uses (query and JSON protocol) for a queue URL that names no queue.
const NO_QUEUE_CODES: [&str; 2] = [
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

/// The queue port over SQS, for the logical queues of its [`QueueMap`]; a name outside the map
/// is [`PortError::NotFound`].
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queues: QueueMap,
    receive_wait: Duration,
}

impl SqsQueue {
    /// Queues from `queues`; receives long-poll for one second (see [`SqsQueue::with_receive_wait`]).
    pub fn new(client: Client, queues: QueueMap) -> Self {
        Self {
            client,
            queues,
            receive_wait: Duration::from_secs(1),
        }
    }

    /// How long `receive` waits for messages on an empty queue (SQS long polling, at most 20 s).
    /// A non-zero wait also makes SQS consult all its servers, so a small queue does not come
    /// back falsely empty as it can with short polling.
    pub fn with_receive_wait(mut self, wait: Duration) -> Self {
        self.receive_wait = wait.min(Duration::from_secs(20));
        self
    }

    /// The queue map this adapter serves.
    pub fn queues(&self) -> &QueueMap {
        &self.queues
    }

    fn urls(&self, queue: &str) -> PortResult<&QueueUrls> {
        self.queues.get(queue).ok_or_else(|| PortError::NotFound {
            what: "queue",
            name: queue.to_string(),
        })
    }
}

/// Maps a failed call, turning "no such queue" into [`PortError::NotFound`].
fn sqs_error<E>(operation: &str, url: &str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if error::error_code(err).is_some_and(|code| NO_QUEUE_CODES.contains(&code)) {
        return PortError::NotFound {
            what: "queue",
            name: url.to_string(),
        };
    }
    error::backend(SERVICE, operation, url, err)
}

/// Why SQS would refuse this message, checked before sending so one bad message fails alone.
fn refusal(message: &OutgoingMessage) -> Option<String> {
    if message.delay > MAX_DELAY {
        return Some(format!(
            "delay of {} s is over SQS's {} s",
            message.delay.as_secs(),
            MAX_DELAY.as_secs()
        ));
    }
    body_refusal(&message.body)
}

/// Why SQS would refuse this body.
fn body_refusal(body: &str) -> Option<String> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Some(format!(
            "body is {} bytes, over SQS's {MAX_MESSAGE_BYTES}-byte limit",
            body.len()
        ));
    }
    if body.is_empty() {
        return Some("body is empty".to_string());
    }
    // SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    if let Some(c) = body.chars().find(|&c| !allowed(c)) {
        return Some(format!(
            "body contains U+{:04X}, which SQS does not accept",
            u32::from(c)
        ));
    }
    None
}

/// SQS batch entry ids: 1-80 characters of `A-Z a-z 0-9 - _`.
fn valid_entry_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn invalid_batch(url: &str, problem: String) -> PortError {
    PortError::backend(SERVICE, format!("SendMessageBatch `{url}`: {problem}"))
}

/// Whole seconds, rounded up so a message is never hidden for less than asked, clamped to SQS's
/// 12 hours. SQS also caps the *total* time hidden since the message was received at 12 hours;
/// a change past that is refused (`InvalidParameterValue`) and comes back as an error, as the
/// receive time is not known here.
fn visibility_secs(timeout: Duration) -> i32 {
    let clamped = timeout.min(MAX_VISIBILITY);
    let secs = clamped.as_secs() + u64::from(clamped.subsec_nanos() > 0);
    // At most 43 200 after the clamp: fits.
    i32::try_from(secs.min(MAX_VISIBILITY.as_secs())).unwrap_or(i32::MAX)
}

/// Whole seconds, rounded up so a message is never delivered sooner than asked. At most 900
/// once [`refusal`] has passed the message: fits.
fn delay_secs(delay: Duration) -> i32 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i32::try_from(secs.min(MAX_DELAY.as_secs())).unwrap_or(i32::MAX)
}

fn string_attribute(
    value: impl Into<String>,
    data_type: &str,
) -> PortResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|e| PortError::backend(SERVICE, e))
}

impl SqsQueue {
    /// Sends one group of messages (indexes into `messages`) in a single call.
    async fn send_group(
        &self,
        url: &str,
        messages: &[OutgoingMessage],
        group: &[usize],
    ) -> PortResult<Vec<SendFailure>> {
        let mut entries = Vec::with_capacity(group.len());
        for &i in group {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(&messages[i].id)
                .message_body(&messages[i].body);
            // No delay leaves the parameter out, so the queue's own DelaySeconds (if one is
            // ever set) still applies to ordinary messages.
            if !messages[i].delay.is_zero() {
                entry = entry.delay_seconds(delay_secs(messages[i].delay));
            }
            let entry = entry.build().map_err(|e| PortError::backend(SERVICE, e))?;
            entries.push(entry);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessageBatch", url, &e))?;

        let mut answered = vec![false; group.len()];
        let position = |entry_id: &str| group.iter().position(|&i| messages[i].id == entry_id);
        for ok in out.successful() {
            if let Some(p) = position(ok.id()) {
                answered[p] = true;
            }
        }
        let mut failures = Vec::new();
        for failed in out.failed() {
            if let Some(p) = position(failed.id()) {
                answered[p] = true;
                failures.push(SendFailure {
                    id: failed.id().to_string(),
                    reason: match failed.message() {
                        Some(m) => format!("{}: {m}", failed.code()),
                        None => failed.code().to_string(),
                    },
                });
            }
        }
        for (p, &i) in group.iter().enumerate() {
            if !answered[p] {
                failures.push(SendFailure {
                    id: messages[i].id.clone(),
                    reason: "SQS reported no result for the message".to_string(),
                });
            }
        }
        Ok(failures)
    }

    async fn approximate_counts(&self, url: &str) -> PortResult<(u64, u64)> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", url, &e))?;
        let count = |name: QueueAttributeName| -> PortResult<u64> {
            let raw = out.attributes().and_then(|a| a.get(&name)).ok_or_else(|| {
                PortError::corrupt("queue attributes", format!("{url}: no {name}"))
            })?;
            raw.parse().map_err(|_| {
                PortError::corrupt("queue attributes", format!("{url}: {name} = {raw:?}"))
            })
        };
        Ok((
            count(QueueAttributeName::ApproximateNumberOfMessages)?,
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
        ))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> PortResult<Vec<SendFailure>> {
        let url = self.urls(queue)?.url.as_str();
        // What SQS would refuse for the whole batch is refused here, before anything is sent.
        if messages.len() > MAX_BATCH {
            return Err(invalid_batch(
                url,
                format!("{} messages; at most {MAX_BATCH}", messages.len()),
            ));
        }
        for (i, m) in messages.iter().enumerate() {
            if !valid_entry_id(&m.id) {
                return Err(invalid_batch(
                    url,
                    format!(
                        "entry id `{}` must be 1-80 characters of A-Z a-z 0-9 - _",
                        m.id.escape_debug()
                    ),
                ));
            }
            if messages[..i].iter().any(|other| other.id == m.id) {
                return Err(invalid_batch(
                    url,
                    format!("entry id `{}` is not unique", m.id),
                ));
            }
        }

        // Refuse what SQS would refuse, then pack the rest into calls whose total stays within
        // SQS's per-call payload limit (a call over it fails whole).
        let mut failures = Vec::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_bytes = 0;
        for (i, message) in messages.iter().enumerate() {
            if let Some(reason) = refusal(message) {
                failures.push(SendFailure {
                    id: message.id.clone(),
                    reason,
                });
                continue;
            }
            match groups.last_mut() {
                Some(group) if group_bytes + message.body.len() <= MAX_MESSAGE_BYTES => {
                    group.push(i);
                    group_bytes += message.body.len();
                }
                _ => {
                    groups.push(vec![i]);
                    group_bytes = message.body.len();
                }
            }
        }

        for (n, group) in groups.iter().enumerate() {
            match self.send_group(url, messages, group).await {
                Ok(refused) => failures.extend(refused),
                // Nothing has been sent yet: the whole batch failed.
                Err(e) if n == 0 => return Err(e),
                // Earlier groups went out, so an `Err` would be a lie: report this group's
                // messages as refused instead.
                Err(e) => failures.extend(group.iter().map(|&i| SendFailure {
                    id: messages[i].id.clone(),
                    reason: e.to_string(),
                })),
            }
        }
        Ok(failures)
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        let url = self.urls(queue)?.url.as_str();
        if max == 0 {
            return Ok(Vec::new());
        }
        // 1..=10 after the clamp: fits.
        let max = i32::try_from(max.min(MAX_BATCH)).unwrap_or(1);
        let wait = i32::try_from(self.receive_wait.as_secs()).unwrap_or(20);
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .visibility_timeout(visibility_secs(visibility))
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", url, &e))?;

        out.messages()
            .iter()
            .map(|m| {
                let field = |value: Option<&str>, name: &str| {
                    value.map(str::to_string).ok_or_else(|| {
                        PortError::corrupt("sqs message", format!("{url}: no {name}"))
                    })
                };
                let message_id = field(m.message_id(), "MessageId")?;
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| {
                        PortError::corrupt(
                            "sqs message",
                            format!("{message_id}: no ApproximateReceiveCount"),
                        )
                    })?;
                Ok(ReceivedMessage {
                    receipt: field(m.receipt_handle(), "ReceiptHandle")?,
                    body: field(m.body(), "Body")?,
                    message_id,
                    receive_count,
                })
            })
            .collect()
    }

    async fn delete(&self, queue: &str, receipt: &str) -> PortResult<()> {
        let url = self.urls(queue)?.url.as_str();
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", url, &e))?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        timeout: Duration,
    ) -> PortResult<()> {
        let url = self.urls(queue)?.url.as_str();
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility_secs(timeout))
            .send()
            .await
            .map_err(|e| sqs_error("ChangeMessageVisibility", url, &e))?;
        Ok(())
    }

    async fn move_to_dead_letter(&self, queue: &str, message: &ReceivedMessage) -> PortResult<()> {
        let urls = self.urls(queue)?;
        // Copy first, delete second: a crash in between leaves a duplicate in the DLQ (harmless,
        // replays are idempotent), never a lost message.
        self.client
            .send_message()
            .queue_url(&urls.dlq_url)
            .message_body(&message.body)
            .message_attributes(
                ORIGINAL_MESSAGE_ID_ATTRIBUTE,
                string_attribute(&message.message_id, "String")?,
            )
            .message_attributes(
                RECEIVE_COUNT_ATTRIBUTE,
                string_attribute(message.receive_count.to_string(), "Number")?,
            )
            .send()
            .await
            .map_err(|e| sqs_error("SendMessage", &urls.dlq_url, &e))?;
        self.client
            .delete_message()
            .queue_url(&urls.url)
            .receipt_handle(&message.receipt)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", &urls.url, &e))?;
        Ok(())
    }

    async fn redrive(&self, queue: &str) -> PortResult<String> {
        let urls = self.urls(queue)?;
        let out = self
            .client
            .start_message_move_task()
            .source_arn(&urls.dlq_arn)
            .destination_arn(&urls.arn)
            .send()
            .await
            .map_err(|e| sqs_error("StartMessageMoveTask", &urls.dlq_arn, &e))?;
        out.task_handle().map(str::to_string).ok_or_else(|| {
            PortError::corrupt(
                "message move task",
                format!("{}: no TaskHandle", urls.dlq_arn),
            )
        })
    }

    async fn depth(&self, queue: &str) -> PortResult<QueueDepth> {
        let urls = self.urls(queue)?;
        let (main, dead) = tokio::try_join!(
            self.approximate_counts(&urls.url),
            self.approximate_counts(&urls.dlq_url)
        )?;
        Ok(QueueDepth {
            visible: main.0,
            in_flight: main.1,
            // A dead letter being inspected (in flight on the DLQ) is still a dead letter.
            dead: dead.0 + dead.1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_sqs_refuses() {
        assert!(body_refusal("ok é ✓ 𝄞").is_none());
        assert!(body_refusal(&"x".repeat(MAX_MESSAGE_BYTES)).is_none());
        let big = body_refusal(&"x".repeat(MAX_MESSAGE_BYTES + 1)).unwrap();
        assert!(big.contains("262145 bytes"), "{big}");
        assert!(body_refusal("a\u{0}b").unwrap().contains("U+0000"));
        assert!(body_refusal("\u{FFFE}").is_some());
        assert!(body_refusal("").is_some());
        let m = OutgoingMessage::new("m", "ok");
        assert!(refusal(&m.clone().with_delay(MAX_DELAY)).is_none());
        let late = refusal(&m.with_delay(MAX_DELAY + Duration::from_secs(1))).unwrap();
        assert!(late.contains("901 s"), "{late}");
    }

    #[test]
    fn delay_is_rounded_up() {
        assert_eq!(delay_secs(Duration::ZERO), 0);
        assert_eq!(delay_secs(Duration::from_millis(1500)), 2);
        assert_eq!(delay_secs(MAX_DELAY), 900);
    }

    #[test]
    fn entry_ids_follow_sqs_rules() {
        assert!(valid_entry_id("evt-1_A"));
        assert!(!valid_entry_id(""));
        assert!(!valid_entry_id("event:1"));
        assert!(!valid_entry_id(&"a".repeat(81)));
    }

    #[test]
    fn visibility_is_rounded_up_and_clamped() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1500)), 2);
        assert_eq!(visibility_secs(Duration::from_secs(30)), 30);
        assert_eq!(visibility_secs(Duration::from_secs(100_000)), 43_200);
    }
}
