//! Calling a handler: in its own task (a panic stays a failed message, not a failed batch),
//! within the time budget, with in-invocation retries of transient failures.

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

/// Calls `handler`, retrying transient failures while `policy` and the deadline allow.
/// Returns the last result and how many calls were made.
pub(crate) async fn call_with_retries(
    handler: &Arc<dyn TargetHandler>,
    event: &SyncEvent,
    policy: RetryPolicy,
    deadline: Option<Instant>,
    margin: Duration,
) -> (Result<Handled, HandlerError>, u32) {
    let mut attempt = 1;
    loop {
        let err = match call_once(handler, event, deadline, margin).await {
            Err(e) if e.is_transient() => e,
            done => return (done, attempt),
        };
        if attempt >= policy.attempts {
            return (Err(err), attempt);
        }
        let Some(delay) = policy.delay(attempt, err.retry_after(), backoff::sample()) else {
            tracing::info!(
                error = %err,
                "the vendor asked for a longer wait than an in-invocation retry; leaving it to the queue"
            );
            return (Err(err), attempt);
        };
        if !backoff::fits(Instant::now(), delay, deadline, margin) {
            tracing::info!(error = %err, "no time left for another try in this invocation");
            return (Err(err), attempt);
        }
        tracing::warn!(
            attempt,
            delay_ms = delay.as_millis() as u64,
            error = %err,
            "transient failure; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// One call, in a task of its own, cut off `margin` before the deadline.
pub(crate) async fn call_once(
    handler: &Arc<dyn TargetHandler>,
    event: &SyncEvent,
    deadline: Option<Instant>,
    margin: Duration,
) -> Result<Handled, HandlerError> {
    let handler = Arc::clone(handler);
    let event = event.clone();
    let mut task = tokio::spawn(async move { handler.handle(&event).await }.in_current_span());
    let joined = match backoff::budget(Instant::now(), deadline, margin) {
        None => (&mut task).await,
        Some(left) => match tokio::time::timeout(left, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                task.abort();
                tracing::error!("{TIMED_OUT}");
                return Err(HandlerError::transient(TIMED_OUT));
            }
        },
    };
    match joined {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            // The payload is not logged: it may quote the record the handler choked on.
            tracing::error!("{PANICKED}");
            Err(HandlerError::transient(PANICKED))
        }
        Err(_) => Err(HandlerError::transient("handler task was cancelled")),
    }
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

    fn dyn_handler(h: &Arc<Scripted>) -> Arc<dyn TargetHandler> {
        h.clone()
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_within_the_attempts() {
        let h = Scripted::new("transient", 2);
        let (r, n) =
            call_with_retries(&dyn_handler(&h), &event(), policy(3), None, Duration::ZERO).await;
        assert_eq!(r, Ok(Handled::Unchanged));
        assert_eq!(n, 3);

        let h = Scripted::new("transient", 5);
        let (r, n) =
            call_with_retries(&dyn_handler(&h), &event(), policy(3), None, Duration::ZERO).await;
        assert_eq!(r.unwrap_err().message(), "try 3");
        assert_eq!(n, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let h = Scripted::new("permanent", 0);
        let (r, n) =
            call_with_retries(&dyn_handler(&h), &event(), policy(5), None, Duration::ZERO).await;
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
        let (r, n) =
            call_with_retries(&dyn_handler(&h), &event(), policy(5), None, Duration::ZERO).await;
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
        let (r, n) =
            call_with_retries(&dyn_handler(&h), &event(), policy(5), None, Duration::ZERO).await;
        assert_eq!(r, Ok(Handled::Unchanged));
        assert_eq!(n, 2);
        assert!(start.elapsed() >= Duration::from_millis(90));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_before_the_deadline() {
        let h = Scripted::new("transient", 100);
        let deadline = Instant::now() + Duration::from_millis(250);
        let (r, n) = call_with_retries(
            &dyn_handler(&h),
            &event(),
            policy(100),
            Some(deadline),
            Duration::from_millis(50),
        )
        .await;
        assert!(r.unwrap_err().is_transient());
        assert!(n >= 2, "at least one retry fits: {n}");
        assert!(Instant::now() <= deadline - Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_panic_becomes_a_transient_error() {
        let h = Scripted::new("panic", 0);
        let r = call_once(&dyn_handler(&h), &event(), None, Duration::ZERO).await;
        assert_eq!(r, Err(HandlerError::transient(PANICKED)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_handler_is_cut_off_at_the_deadline() {
        let h = Scripted::new("hang", 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let r = call_once(
            &dyn_handler(&h),
            &event(),
            Some(deadline),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(r, Err(HandlerError::transient(TIMED_OUT)));
        assert!(Instant::now() <= deadline - Duration::from_secs(1));
    }
}
