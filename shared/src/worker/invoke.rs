//! Calling a handler with a batch of events: in its own task (a panic stays failed events, not
//! a failed invocation), within the time budget, with in-invocation retries of the events that
//! failed transiently.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::backoff::{self, RetryPolicy};
use super::handler::{Handled, HandlerError, TargetHandler};
use crate::event::SyncEvent;

/// The message of the error a panicking handler becomes.
pub const PANICKED: &str = "handler panicked";

/// The message of the error a handler still running at the deadline becomes.
pub const TIMED_OUT: &str = "handler did not finish before the invocation deadline";

/// One event's answer: the last result, and how many calls it took.
pub(crate) type Answer = (Result<Handled, HandlerError>, u32);

/// Calls `handler` with `events`, then again with those that failed transiently while `policy`
/// and the deadline allow. A hold is never retried here: the vendor refuses every call until
/// its time. Returns one answer per event, in order.
pub(crate) async fn call_with_retries(
    handler: &Arc<dyn TargetHandler>,
    events: &[SyncEvent],
    policy: RetryPolicy,
    deadline: Option<Instant>,
    margin: Duration,
) -> Vec<Answer> {
    let first = call_once(handler, events.to_vec(), deadline, margin).await;
    let mut answers: Vec<Answer> = first.into_iter().map(|result| (result, 1)).collect();
    let mut attempt = 1;
    while attempt < policy.attempts {
        let Some((retry, delay)) = next_retry(&answers, policy, attempt) else {
            break;
        };
        if !backoff::fits(Instant::now(), delay, deadline, margin) {
            tracing::info!(
                events = retry.len(),
                "no time left for another try in this invocation"
            );
            break;
        }
        tracing::warn!(
            attempt,
            events = retry.len(),
            delay_ms = delay.as_millis() as u64,
            "transient failures; retrying them"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
        let subset = retry.iter().map(|&i| events[i].clone()).collect();
        let results = call_once(handler, subset, deadline, margin).await;
        for (i, result) in retry.into_iter().zip(results) {
            answers[i] = (result, attempt);
        }
    }
    answers
}

/// The events worth another try after call number `attempt`, and the sleep before it: the
/// longest any of them needs. An event whose vendor asked for a longer wait than this policy
/// sleeps in-process is left to the queue.
fn next_retry(
    answers: &[Answer],
    policy: RetryPolicy,
    attempt: u32,
) -> Option<(Vec<usize>, Duration)> {
    let unit = backoff::sample();
    let mut retry = Vec::new();
    let mut longest = Duration::ZERO;
    for (i, (result, _)) in answers.iter().enumerate() {
        let Err(err) = result else { continue };
        if !err.is_transient() || err.hold_until().is_some() {
            continue;
        }
        match policy.delay(attempt, err.retry_after(), unit) {
            Some(delay) => {
                longest = longest.max(delay);
                retry.push(i);
            }
            None => tracing::info!(
                "the vendor asked for a longer wait than an in-invocation retry; leaving it to the queue"
            ),
        }
    }
    (!retry.is_empty()).then_some((retry, longest))
}

/// One call with the whole batch, in a task of its own, cut off `margin` before the deadline.
/// Always one result per event: a panic, a timeout or a wrong count from the handler become
/// transient failures.
pub(crate) async fn call_once(
    handler: &Arc<dyn TargetHandler>,
    events: Vec<SyncEvent>,
    deadline: Option<Instant>,
    margin: Duration,
) -> Vec<Result<Handled, HandlerError>> {
    let n = events.len();
    let handler = Arc::clone(handler);
    let mut task =
        tokio::spawn(async move { handler.handle_batch(&events).await }.in_current_span());
    let joined = match backoff::budget(Instant::now(), deadline, margin) {
        None => (&mut task).await,
        Some(left) => match tokio::time::timeout(left, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                task.abort();
                tracing::error!(events = n, "{TIMED_OUT}");
                return every(n, TIMED_OUT);
            }
        },
    };
    match joined {
        Ok(results) => one_each(results, n),
        Err(e) if e.is_panic() => {
            // The payload is not logged: it may quote the record the handler choked on.
            tracing::error!(events = n, "{PANICKED}");
            every(n, PANICKED)
        }
        Err(_) => every(n, "handler task was cancelled"),
    }
}

/// The same transient failure for each of `n` events.
fn every(n: usize, message: &str) -> Vec<Result<Handled, HandlerError>> {
    vec![Err(HandlerError::transient(message)); n]
}

/// `results` cut or padded to `n`: a handler answering with the wrong count is a bug, and an
/// event it gave no answer for cannot be settled as anything but a transient failure.
fn one_each(
    mut results: Vec<Result<Handled, HandlerError>>,
    n: usize,
) -> Vec<Result<Handled, HandlerError>> {
    if results.len() != n {
        let message = format!(
            "handler returned {} results for {n} events; an event without one is retried",
            results.len()
        );
        tracing::error!("{message}");
        results.truncate(n);
        results.resize(n, Err(HandlerError::transient(message)));
    }
    results
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use chrono::DateTime;

    use super::*;
    use crate::event::{Origin, SourceEvent, SourceRef};
    use crate::vendor::Vendor;

    fn event() -> SyncEvent {
        SourceEvent {
            event_id: "e1".into(),
            source: SourceRef {
                vendor: Vendor::Freshbooks,
                account: "acct".into(),
            },
            entity: "client".into(),
            entity_id: "1".into(),
            operation: "update".into(),
            occurred_at: None,
            detail: Default::default(),
        }
        .for_connection("c", Origin::Webhook, DateTime::UNIX_EPOCH)
    }

    /// Fails transiently `fail` times (with an optional Retry-After), then succeeds; or panics,
    /// or sleeps forever.
    struct Scripted {
        calls: AtomicU32,
        fail: u32,
        retry_after: Option<Duration>,
        mode: &'static str,
    }

    impl Scripted {
        fn new(mode: &'static str, fail: u32) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicU32::new(0),
                fail,
                retry_after: None,
                mode,
            })
        }
    }

    #[async_trait]
    impl TargetHandler for Scripted {
        async fn handle(&self, _: &SyncEvent) -> Result<Handled, HandlerError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            match self.mode {
                "panic" => panic!("scripted panic"),
                "hang" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(Handled::Unchanged)
                }
                "permanent" => Err(HandlerError::permanent("validation", "bad")),
                _ if n <= self.fail => {
                    let e = HandlerError::transient(format!("try {n}"));
                    Err(match self.retry_after {
                        Some(d) => e.with_retry_after(d),
                        None => e,
                    })
                }
                _ => Ok(Handled::Unchanged),
            }
        }
    }

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        }
    }

    fn dyn_handler<H: TargetHandler + 'static>(h: &Arc<H>) -> Arc<dyn TargetHandler> {
        h.clone()
    }

    /// Calls `h` with one event, as a single-event handler is.
    async fn one(
        h: &Arc<Scripted>,
        policy: RetryPolicy,
        deadline: Option<Instant>,
        margin: Duration,
    ) -> Answer {
        let mut answers =
            call_with_retries(&dyn_handler(h), &[event()], policy, deadline, margin).await;
        assert_eq!(answers.len(), 1);
        answers.remove(0)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_within_the_attempts() {
        let h = Scripted::new("transient", 2);
        let (r, n) = one(&h, policy(3), None, Duration::ZERO).await;
        assert_eq!(r, Ok(Handled::Unchanged));
        assert_eq!(n, 3);

        let h = Scripted::new("transient", 5);
        let (r, n) = one(&h, policy(3), None, Duration::ZERO).await;
        assert_eq!(r.unwrap_err().message(), "try 3");
        assert_eq!(n, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let h = Scripted::new("permanent", 0);
        let (r, n) = one(&h, policy(5), None, Duration::ZERO).await;
        assert_eq!(r.unwrap_err().class(), "validation");
        assert_eq!(n, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_retry_after_is_left_to_the_queue() {
        let h = Arc::new(Scripted {
            calls: AtomicU32::new(0),
            fail: 1,
            retry_after: Some(Duration::from_secs(30)),
            mode: "transient",
        });
        let (r, n) = one(&h, policy(5), None, Duration::ZERO).await;
        assert_eq!(r.unwrap_err().retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(n, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_retry_after_is_slept() {
        let h = Arc::new(Scripted {
            calls: AtomicU32::new(0),
            fail: 1,
            retry_after: Some(Duration::from_millis(90)),
            mode: "transient",
        });
        let start = Instant::now();
        let (r, n) = one(&h, policy(5), None, Duration::ZERO).await;
        assert_eq!(r, Ok(Handled::Unchanged));
        assert_eq!(n, 2);
        assert!(start.elapsed() >= Duration::from_millis(90));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_before_the_deadline() {
        let h = Scripted::new("transient", 100);
        let deadline = Instant::now() + Duration::from_millis(250);
        let (r, n) = one(&h, policy(100), Some(deadline), Duration::from_millis(50)).await;
        assert!(r.unwrap_err().is_transient());
        assert!(n >= 2, "at least one retry fits: {n}");
        assert!(Instant::now() <= deadline - Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_panic_becomes_a_transient_error() {
        let h = Scripted::new("panic", 0);
        let r = call_once(&dyn_handler(&h), vec![event()], None, Duration::ZERO).await;
        assert_eq!(r, [Err(HandlerError::transient(PANICKED))]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_handler_is_cut_off_at_the_deadline() {
        let h = Scripted::new("hang", 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let r = call_once(
            &dyn_handler(&h),
            vec![event(), event()],
            Some(deadline),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(r, vec![Err(HandlerError::transient(TIMED_OUT)); 2]);
        assert!(Instant::now() <= deadline - Duration::from_secs(1));
    }

    /// A batch handler answering per event from a script keyed by entity id, and recording
    /// the entity ids of every call.
    struct Batch {
        script: fn(&str, u32) -> Result<Handled, HandlerError>,
        calls: std::sync::Mutex<Vec<Vec<String>>>,
        /// Answers this many results fewer than events (or panics, for `usize::MAX`).
        short: usize,
    }

    impl Batch {
        fn new(script: fn(&str, u32) -> Result<Handled, HandlerError>, short: usize) -> Arc<Self> {
            Arc::new(Self {
                script,
                calls: Default::default(),
                short,
            })
        }

        fn calls(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl TargetHandler for Batch {
        async fn handle(&self, _: &SyncEvent) -> Result<Handled, HandlerError> {
            unreachable!("the harness calls handle_batch")
        }

        async fn handle_batch(&self, events: &[SyncEvent]) -> Vec<Result<Handled, HandlerError>> {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(events.iter().map(|e| e.entity_id.clone()).collect());
                u32::try_from(calls.len()).unwrap()
            };
            if self.short == usize::MAX {
                panic!("scripted batch panic");
            }
            let keep = events.len().saturating_sub(self.short);
            events[..keep]
                .iter()
                .map(|e| (self.script)(&e.entity_id, call))
                .collect()
        }
    }

    fn events(ids: &[&str]) -> Vec<SyncEvent> {
        ids.iter()
            .map(|id| {
                let mut e = event();
                e.entity_id = (*id).to_string();
                e
            })
            .collect()
    }

    /// `ok` syncs, `bad` fails permanently, `flaky` fails transiently on the first call,
    /// `held` is held, `down` always fails transiently.
    fn mixed(id: &str, call: u32) -> Result<Handled, HandlerError> {
        match id {
            "bad" => Err(HandlerError::permanent("validation", "bad")),
            "flaky" if call == 1 => Err(HandlerError::transient("503")),
            "held" => Err(HandlerError::transient("daily limit")
                .with_hold_until(DateTime::UNIX_EPOCH + chrono::TimeDelta::days(1))),
            "down" => Err(HandlerError::transient("503")),
            _ => Ok(Handled::Unchanged),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_transiently_failed_subset_is_retried() {
        let h = Batch::new(mixed, 0);
        let answers = call_with_retries(
            &dyn_handler(&h),
            &events(&["ok", "bad", "flaky", "held", "down"]),
            policy(3),
            None,
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            h.calls(),
            [
                vec!["ok", "bad", "flaky", "held", "down"],
                vec!["flaky", "down"],
                vec!["down"],
            ]
        );
        let calls: Vec<u32> = answers.iter().map(|(_, n)| *n).collect();
        assert_eq!(calls, [1, 1, 2, 1, 3]);
        assert_eq!(answers[0].0, Ok(Handled::Unchanged));
        assert_eq!(answers[1].0.as_ref().unwrap_err().class(), "validation");
        assert_eq!(answers[2].0, Ok(Handled::Unchanged));
        assert!(answers[3].0.as_ref().unwrap_err().hold_until().is_some());
        assert!(answers[4].0.as_ref().unwrap_err().is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn missing_results_are_transient_failures() {
        let h = Batch::new(mixed, 2);
        let answers = call_with_retries(
            &dyn_handler(&h),
            &events(&["ok", "x", "y"]),
            policy(1),
            None,
            Duration::ZERO,
        )
        .await;
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].0, Ok(Handled::Unchanged));
        for (result, _) in &answers[1..] {
            let err = result.as_ref().unwrap_err();
            assert!(err.is_transient());
            assert!(err.message().contains("1 results for 3 events"), "{err}");
        }
        let extra = one_each(vec![Ok(Handled::Unchanged); 3], 2);
        assert_eq!(extra, vec![Ok(Handled::Unchanged); 2]);
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_every_event_transiently() {
        let h = Batch::new(mixed, usize::MAX);
        let r = call_once(&dyn_handler(&h), events(&["a", "b"]), None, Duration::ZERO).await;
        assert_eq!(r, vec![Err(HandlerError::transient(PANICKED)); 2]);
    }
}
