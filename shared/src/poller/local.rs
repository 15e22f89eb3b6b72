//! The local host: jobs on timers in one process (`ml-connector dev`, tests).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Job, Poller};

/// Runs each `(job, every)` once at start and then every `every` (counted from the end of the
/// previous run, so a slow run never makes runs pile up), until `shutdown` turns `true` or its
/// sender is dropped. A job in progress finishes first. Failures are logged and the schedule
/// goes on, as EventBridge's would.
pub async fn run_schedule(
    poller: &Poller,
    schedule: &[(Job, Duration)],
    mut shutdown: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let mut due: Vec<(Job, Duration, Instant)> = schedule
        .iter()
        .map(|&(job, every)| (job, every.max(Duration::from_millis(1)), start))
        .collect();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let Some(next) = due.iter_mut().min_by_key(|(_, _, at)| *at) else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(next.2) => {
                let job = next.0;
                match poller.run_job(job).await {
                    Ok(report) => tracing::debug!(job = %job, ?report, "job done"),
                    Err(e) => tracing::warn!(job = %job, error = %e, "job failed"),
                }
                next.2 = Instant::now() + next.1;
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
