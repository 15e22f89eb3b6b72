//! `ml-connector replay`: send dead-lettered messages back to their queue (SQS
//! `StartMessageMoveTask` on a stack, the embedded queue's redrive locally), follow them until
//! the DLQ is empty and the worker has had them, then say what became of each.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use mlc::ports::{
    DeadLetter, DeadLetterStatus, OutgoingMessage, PortError, PortResult, SendFailure,
};
use serde::Serialize;

use super::dead_letters;
use super::output::{self, short};
use super::{Attention, Common, UsageError};
use crate::target::Target;

pub(crate) const AFTER_HELP: &str = "\
Without --id, every message in the dead-letter queue of --queue (default: every target queue)
goes back to its queue: on a stack with SQS StartMessageMoveTask, locally with the embedded
queue's redrive. Dead letters kept because their target had no queue yet (`no_queue`) are sent
again too. A progress bar follows the DLQ until it is empty, then the command waits (--wait)
for the worker to handle the messages and prints each dead letter's outcome: resolved, failed
again (with the new reason) or still queued.

Locally the worker is `ml-connector dev`: if it is not running, the messages wait in the queue
and the command says so. Replays are safe to repeat: the worker's idempotency skips what is
already done, and unchanged records cost no vendor write.

--id replays one dead letter by sending its payload to its queue again. A dead letter of the
webhook stage never reached a queue and cannot be replayed: ask the vendor to resend, or
re-sync the record with `ml-connector backfill`.

Examples:
  ml-connector replay                      everything, locally
  ml-connector replay --stack --queue mailchimp
  ml-connector replay --id 'event:acme:freshbooks-3f2a…'

Exit codes: 0 every replayed dead letter resolved (or nothing to replay); 1 some failed again
or are still queued (or the command failed); 2 usage error.";

/// How long a local queue may sit unchanged, with nothing in flight, before the command
/// decides that no worker is running.
const LOCAL_IDLE: Duration = Duration::from_secs(8);
const POLL: Duration = Duration::from_millis(500);

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// The target queue whose DLQ to redrive (e.g. `mailchimp`); default: all.
    #[arg(long)]
    queue: Option<String>,
    /// Replay one dead letter (its id from `ml-connector dead-letters`).
    #[arg(long, conflicts_with = "queue")]
    id: Option<String>,
    /// Seconds to wait for the messages to be handled before reporting.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    #[command(flatten)]
    common: Common,
}

/// What became of one replayed dead letter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Replayed {
    pub id: String,
    pub queue: String,
    pub record_key: Option<String>,
    /// `resolved`, `failed_again` or `queued`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    /// Per queue: messages moved back from its DLQ (as the backend reported: a count locally,
    /// a task handle on SQS).
    redrives: Vec<Redrive>,
    replayed: Vec<Replayed>,
    /// Locally: whether a worker was seen handling the messages.
    worker_seen: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Redrive {
    queue: String,
    dead_before: u64,
    task: String,
    resent: usize,
}

pub(crate) async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let target = args.common.target.open().await?;
    let wait = Duration::from_secs(args.wait);
    let json = args.common.json;
    let started = target.clock.now();
    let (redrives, tracked) = match &args.id {
        Some(id) => (Vec::new(), vec![resend_one(&target, id, json).await?]),
        None => redrive_all(&target, args.queue.as_deref(), wait, json).await?,
    };
    if tracked.is_empty() && redrives.iter().all(|r| r.dead_before == 0) {
        if json {
            output::print_json(&Report {
                target: target.place.to_string(),
                redrives,
                replayed: Vec::new(),
                worker_seen: None,
            })?;
        } else {
            println!("Nothing to replay in the {}.", target.place);
        }
        return Ok(());
    }
    let queues: BTreeSet<String> = tracked.iter().filter_map(|l| l.queue.clone()).collect();
    let worker_seen = follow(&target, &queues, &tracked, started, wait, json).await?;
    let replayed = outcomes(&target, &tracked, started).await?;

    if json {
        output::print_json(&Report {
            target: target.place.to_string(),
            redrives,
            replayed: replayed.clone(),
            worker_seen,
        })?;
    } else {
        for r in redrives
            .iter()
            .filter(|r| r.dead_before > 0 || r.resent > 0)
        {
            println!(
                "{}: {} message(s) moved back from its DLQ{}{}",
                r.queue,
                r.dead_before,
                if r.task.is_empty() || target.local.is_some() {
                    String::new()
                } else {
                    format!(" (SQS move task {})", r.task)
                },
                if r.resent > 0 {
                    format!(", {} `no_queue` dead letter(s) sent again", r.resent)
                } else {
                    String::new()
                }
            );
        }
        print_outcomes(&replayed, worker_seen, &queues);
    }
    let unresolved = replayed.iter().filter(|r| r.result != "resolved").count();
    if unresolved > 0 {
        return Err(Attention(format!(
            "{unresolved} of {} replayed dead letter(s) not resolved",
            replayed.len()
        ))
        .into());
    }
    Ok(())
}

/// Re-sends one dead letter's payload to its queue.
async fn resend_one(target: &Target, id: &str, json: bool) -> anyhow::Result<DeadLetter> {
    let letter = dead_letters::get(target, id).await?;
    let Some(queue) = letter.queue.clone() else {
        return Err(UsageError(format!(
            "dead letter `{id}` is from stage `{}`: the delivery never reached a queue, so there \
             is nothing to replay. Fix the cause ({}), then ask the vendor to resend the \
             webhook, or re-sync the record with `ml-connector backfill <connection> --since <day>`",
            letter.stage, letter.error_class
        ))
        .into());
    };
    if letter.status == DeadLetterStatus::Resolved && !json {
        println!("Dead letter `{id}` is already resolved; sending it again anyway.");
    }
    let body = dead_letters::payload(target, &letter).await?;
    let refused = resend(target, &queue, body)
        .await
        .with_context(|| format!("sending the payload to queue `{queue}`"))?;
    if let Some(f) = refused.first() {
        anyhow::bail!("queue `{queue}` refused the payload: {}", f.reason);
    }
    if !json {
        println!("Sent dead letter `{id}` back to queue `{queue}`.");
    }
    Ok(letter)
}

/// Sends a dead letter's payload to `queue` as one message; what the queue refused.
async fn resend(target: &Target, queue: &str, body: String) -> PortResult<Vec<SendFailure>> {
    target
        .queue
        .send_batch(queue, &[OutgoingMessage::new("replay", body)])
        .await
}

/// Redrives the DLQ of each queue and re-sends `no_queue` dead letters; returns the redrives
/// and the open dead letters that should now be handled again.
async fn redrive_all(
    target: &Target,
    only: Option<&str>,
    wait: Duration,
    json: bool,
) -> anyhow::Result<(Vec<Redrive>, Vec<DeadLetter>)> {
    let connections = target.store.get_connections().await?.unwrap_or_default();
    let queues = match only {
        Some(q) => vec![q.to_string()],
        None => target.queue_names(&connections),
    };
    if queues.is_empty() {
        return Err(UsageError(
            "no target queue is known (no connections applied): give --queue".to_string(),
        )
        .into());
    }
    let open = target
        .store
        .list_dead_letters(DeadLetterStatus::Open, 10_000)
        .await
        .context("listing open dead letters")?;
    let mut redrives = Vec::new();
    let mut tracked = Vec::new();
    for queue in queues {
        let depth = match target.queue.depth(&queue).await {
            Ok(d) => d,
            Err(PortError::NotFound { .. }) if only.is_none() => continue,
            Err(e) => return Err(e).with_context(|| format!("reading queue `{queue}`")),
        };
        let mine: Vec<&DeadLetter> = open
            .iter()
            .filter(|l| l.queue.as_deref() == Some(queue.as_str()))
            .collect();
        let mut resent = 0;
        for letter in mine.iter().filter(|l| l.error_class == "no_queue") {
            let body = dead_letters::payload(target, letter).await?;
            let refused = resend(target, &queue, body)
                .await
                .with_context(|| format!("re-sending `{}` to `{queue}`", letter.id))?;
            if refused.is_empty() {
                resent += 1;
            }
        }
        let task = if depth.dead > 0 {
            target
                .queue
                .redrive(&queue)
                .await
                .with_context(|| format!("redriving the DLQ of `{queue}`"))?
        } else {
            String::new()
        };
        if depth.dead > 0 {
            wait_for_empty_dlq(target, &queue, depth.dead, wait, json).await?;
        }
        // Without a DLQ message a worker dead letter has nothing to redrive (the message
        // outlived the DLQ's retention, or was replayed already): only `--id` can resend it.
        let orphans = mine
            .iter()
            .filter(|l| depth.dead == 0 && l.error_class != "no_queue")
            .count();
        if orphans > 0 && !json {
            println!(
                "{orphans} open dead letter(s) of `{queue}` have no message in its DLQ: replay each with `ml-connector replay --id ID`."
            );
        }
        tracked.extend(
            mine.into_iter()
                .filter(|l| depth.dead > 0 || l.error_class == "no_queue")
                .cloned(),
        );
        redrives.push(Redrive {
            queue,
            dead_before: depth.dead,
            task,
            resent,
        });
    }
    Ok((redrives, tracked))
}

/// A progress bar over the DLQ draining into its queue.
async fn wait_for_empty_dlq(
    target: &Target,
    queue: &str,
    before: u64,
    wait: Duration,
    json: bool,
) -> anyhow::Result<()> {
    let bar = output::bar(before, &format!("{queue} DLQ → queue"), json);
    let deadline = Instant::now() + wait;
    loop {
        let dead = target.queue.depth(queue).await?.dead;
        bar.set_position(before.saturating_sub(dead));
        if dead == 0 {
            bar.finish();
            return Ok(());
        }
        if Instant::now() >= deadline {
            bar.abandon_with_message(format!("{queue}: {dead} still in the DLQ"));
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Follows the replayed dead letters until each is resolved or failed again, the queues are
/// empty, or `wait` runs out. Locally, returns whether a worker was seen at work.
async fn follow(
    target: &Target,
    queues: &BTreeSet<String>,
    tracked: &[DeadLetter],
    started: DateTime<Utc>,
    wait: Duration,
    json: bool,
) -> anyhow::Result<Option<bool>> {
    let bar = output::bar(tracked.len() as u64, "handled", json);
    let deadline = Instant::now() + wait;
    let mut last_pending: Option<u64> = None;
    let mut unchanged_since = Instant::now();
    let mut worker_seen = false;
    loop {
        let done = outcomes(target, tracked, started)
            .await?
            .iter()
            .filter(|r| r.result != "queued")
            .count();
        bar.set_position(done as u64);
        let mut pending = 0;
        let mut in_flight = 0;
        for q in queues {
            if let Ok(d) = target.queue.depth(q).await {
                pending += d.visible + d.in_flight;
                in_flight += d.in_flight;
            }
        }
        if in_flight > 0 || last_pending.is_some_and(|p| p != pending) {
            worker_seen = true;
            unchanged_since = Instant::now();
        }
        last_pending = Some(pending);
        if done == tracked.len() || (pending == 0 && (worker_seen || target.local.is_none())) {
            break;
        }
        // Locally nothing moves without `ml-connector dev`: stop waiting once that is clear.
        if target.local.is_some() && !worker_seen && unchanged_since.elapsed() >= LOCAL_IDLE {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    bar.finish_and_clear();
    Ok(target
        .local
        .is_some()
        .then_some(worker_seen || tracked.is_empty()))
}

/// Each tracked dead letter now: resolved, failed again after `started`, or still queued.
async fn outcomes(
    target: &Target,
    tracked: &[DeadLetter],
    started: DateTime<Utc>,
) -> anyhow::Result<Vec<Replayed>> {
    let mut out = Vec::with_capacity(tracked.len());
    for letter in tracked {
        let now = target.store.get_dead_letter(&letter.id).await?;
        let (result, reason) = match now {
            Some(l) if l.status == DeadLetterStatus::Resolved => ("resolved", None),
            Some(l) if l.created_at > started => (
                "failed_again",
                Some(format!("{}: {}", l.error_class, l.reason)),
            ),
            // Expired meanwhile: nothing says it failed; the audit trail knows the rest.
            None => ("resolved", None),
            Some(_) => ("queued", None),
        };
        out.push(Replayed {
            id: letter.id.clone(),
            queue: letter.queue.clone().unwrap_or_default(),
            record_key: letter.record_key.clone(),
            result,
            reason,
        });
    }
    Ok(out)
}

fn print_outcomes(replayed: &[Replayed], worker_seen: Option<bool>, queues: &BTreeSet<String>) {
    if !replayed.is_empty() {
        let mut t = output::table(&["dead letter", "record", "result"]);
        for r in replayed {
            let result = match &r.reason {
                Some(reason) => format!("{}: {}", r.result, short(reason, 100)),
                None => r.result.to_string(),
            };
            t.add_row(vec![
                r.id.clone(),
                r.record_key.clone().unwrap_or_default(),
                result,
            ]);
        }
        println!("{t}");
    }
    let count = |what: &str| replayed.iter().filter(|r| r.result == what).count();
    println!(
        "{} resolved, {} failed again, {} still queued.",
        count("resolved"),
        count("failed_again"),
        count("queued")
    );
    let names = queues.iter().cloned().collect::<Vec<_>>().join(", ");
    if worker_seen == Some(false) && count("queued") > 0 {
        println!(
            "No worker is running: the messages are back in queue {names}. Start `ml-connector dev` to process them, then check with `ml-connector dead-letters`."
        );
    } else if count("queued") > 0 {
        println!(
            "Messages still waiting in {names}: check again with `ml-connector dead-letters` or `ml-connector status`."
        );
    }
    if count("failed_again") > 0 {
        println!(
            "Failed again: `ml-connector dead-letters show ID` has the new reason; fix it and replay again."
        );
    }
}

#[cfg(test)]
mod tests {
    //! The stack path of `replay` over a mocked SQS (moto has no StartMessageMoveTask): the
    //! redrive asks SQS to move the DLQ into its queue, follows the DLQ to empty, and reports
    //! the dead letters it replayed.

    use std::sync::{Arc, Mutex};

    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::start_message_move_task::StartMessageMoveTaskOutput;
    use aws_sdk_sqs::types::QueueAttributeName;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
    use mlc::adapters::aws::{QueueMap, QueueUrls, SqsQueue};
    use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
    use mlc::ports::{DeadLetters, SystemClock};

    use super::*;
    use crate::target::Where;

    fn urls() -> QueueUrls {
        QueueUrls {
            url: "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp".into(),
            arn: "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp".into(),
            dlq_url: "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp-dlq".into(),
            dlq_arn: "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp-dlq".into(),
        }
    }

    fn counts(visible: &str, hidden: &str) -> GetQueueAttributesOutput {
        GetQueueAttributesOutput::builder()
            .attributes(QueueAttributeName::ApproximateNumberOfMessages, visible)
            .attributes(
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                hidden,
            )
            .build()
    }

    #[tokio::test]
    async fn a_stack_redrive_moves_the_dlq_and_tracks_its_dead_letters() {
        let moves: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let seen = moves.clone();
        let start = mock!(aws_sdk_sqs::Client::start_message_move_task)
            .match_requests(move |r| {
                seen.lock().unwrap_or_else(|p| p.into_inner()).push((
                    r.source_arn().unwrap_or_default().to_string(),
                    r.destination_arn().unwrap_or_default().to_string(),
                ));
                true
            })
            .then_output(|| {
                StartMessageMoveTaskOutput::builder()
                    .task_handle("task-1")
                    .build()
            });
        let dlq_url = urls().dlq_url;
        // The DLQ holds one message until the move task has run.
        let dlq = mock!(aws_sdk_sqs::Client::get_queue_attributes)
            .match_requests(move |r| r.queue_url() == Some(dlq_url.as_str()))
            .sequence()
            .output(|| counts("1", "0"))
            .output(|| counts("0", "0"))
            .times(100)
            .build();
        let queue_url = urls().url;
        let main = mock!(aws_sdk_sqs::Client::get_queue_attributes)
            .match_requests(move |r| r.queue_url() == Some(queue_url.as_str()))
            .then_output(|| counts("0", "0"));
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&start)
            .with_rule(&dlq)
            .with_rule(&main);
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "mock"))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        );
        let mut map = QueueMap::new();
        map.insert("mailchimp", urls());
        let db = EmbeddedDb::in_memory(Arc::new(SystemClock)).expect("db");
        let now = Utc::now();
        db.put_dead_letter(&DeadLetter {
            id: "event:acme:e1".into(),
            stage: "worker:mailchimp".into(),
            queue: Some("mailchimp".into()),
            event_id: Some("e1".into()),
            record_key: Some("freshbooks:acme:client:1".into()),
            connection: Some("acme".into()),
            error_class: "validation".into(),
            reason: "refused".into(),
            vendor_request_id: None,
            attempts: 5,
            payload: "{}".into(),
            status: DeadLetterStatus::Open,
            created_at: now,
            resolved_at: None,
            expires_at: None,
        })
        .await
        .expect("stored");
        let target = Target {
            place: Where::Stack {
                name: "mock".into(),
            },
            queue: Arc::new(SqsQueue::new(sqs, map)),
            store: Arc::new(db.clone()),
            secrets: Arc::new(EmbeddedSecrets::with_key(&db, [7; 32])),
            clock: Arc::new(SystemClock),
            local: None,
            stack_queues: vec!["mailchimp".into()],
            outputs: Default::default(),
        };

        let (redrives, tracked) =
            redrive_all(&target, Some("mailchimp"), Duration::from_secs(10), true)
                .await
                .expect("redrive");
        assert_eq!(start.num_calls(), 1);
        assert_eq!(
            moves.lock().unwrap_or_else(|p| p.into_inner()).as_slice(),
            [(urls().dlq_arn, urls().arn)],
            "from the DLQ to its queue"
        );
        assert_eq!(redrives[0].task, "task-1");
        assert_eq!(redrives[0].dead_before, 1);
        assert_eq!(tracked.len(), 1);

        let later = now + chrono::Duration::seconds(1);
        assert_eq!(
            outcomes(&target, &tracked, later).await.expect("read")[0].result,
            "queued"
        );
        db.resolve_dead_letter("event:acme:e1", later)
            .await
            .expect("resolved");
        assert_eq!(
            outcomes(&target, &tracked, later).await.expect("read")[0].result,
            "resolved"
        );
    }
}
