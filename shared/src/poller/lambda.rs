//! The Lambda host: an EventBridge schedule's input in, the job's report out.
//!
//! The schedule passes its `Input` verbatim as the event, e.g. `{"job":"freshbooks_poll"}` or
//! `{"job":"quickbooks_cdc"}`.
//! `{"detail":{"job":…}}` (an EventBridge event with the job in its detail) is accepted too.
//! A job that partly failed ends the invocation with an error, so the poller's Errors alarm
//! fires; the report is logged either way.

use lambda_runtime::LambdaEvent;
use serde_json::Value;

use super::{Job, Poller};

/// An event that names no job the poller knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EventError {
    #[error(
        "the event names no job; give the schedule an input such as {{\"job\":\"quickbooks_cdc\"}} (jobs: {jobs})",
        jobs = Job::names()
    )]
    /// The schedule's input names no job.
    NoJob,
    #[error(transparent)]
    /// The schedule's input names a job this build does not run.
    Unknown(#[from] super::UnknownJob),
}

/// The job an event names.
pub(crate) fn job_from_event(event: &Value) -> Result<Job, EventError> {
    let name = event
        .get("job")
        .or_else(|| event.get("detail").and_then(|d| d.get("job")))
        .and_then(Value::as_str)
        .ok_or(EventError::NoJob)?;
    Ok(name.trim().parse()?)
}

/// Handles one invocation: the whole of it, minus the runtime.
pub(crate) async fn handle_event(
    poller: &Poller,
    event: &Value,
) -> Result<Value, lambda_runtime::Error> {
    let job = job_from_event(event)?;
    match poller.run_job(job).await {
        Ok(report) => Ok(serde_json::to_value(&report)?),
        Err(err) => {
            tracing::error!(job = %job, error = %err, "job failed");
            Err(err.into())
        }
    }
}

/// Serves scheduled invocations with `poller` until the runtime stops.
pub(crate) async fn run_lambda(poller: Poller) -> Result<(), lambda_runtime::Error> {
    let poller = &poller;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| async move { handle_event(poller, &event.payload).await },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_comes_from_the_input_or_the_detail() {
        assert_eq!(
            job_from_event(&serde_json::json!({"job": "freshbooks_poll"})),
            Ok(Job::FreshbooksPoll)
        );
        assert_eq!(
            job_from_event(&serde_json::json!({"detail": {"job": "token_refresh"}})),
            Ok(Job::TokenRefresh)
        );
        assert_eq!(
            job_from_event(&serde_json::json!({"job": "quickbooks_cdc"})),
            Ok(Job::QuickbooksCdc)
        );
        assert_eq!(
            job_from_event(&serde_json::json!({"job": "quickbooks_token_refresh"})),
            Ok(Job::QuickbooksTokenRefresh)
        );
        assert_eq!(
            job_from_event(&serde_json::json!({"detail-type": "Scheduled Event", "detail": {}})),
            Err(EventError::NoJob)
        );
        assert!(matches!(
            job_from_event(&serde_json::json!({"job": "backfill"})),
            Err(EventError::Unknown(_))
        ));
        assert_eq!(
            job_from_event(&serde_json::json!({"job": 3})),
            Err(EventError::NoJob)
        );
        assert_eq!(
            job_from_event(&serde_json::json!({"job": " token_refresh "})),
            Ok(Job::TokenRefresh)
        );
    }

    #[test]
    fn errors_name_every_job() {
        assert_eq!(
            job_from_event(&serde_json::json!({"job": "backfill"}))
                .unwrap_err()
                .to_string(),
            "unknown job `backfill`; the jobs are freshbooks_poll, token_refresh, quickbooks_cdc, quickbooks_token_refresh"
        );
        assert_eq!(
            EventError::NoJob.to_string(),
            r#"the event names no job; give the schedule an input such as {"job":"quickbooks_cdc"} (jobs: freshbooks_poll, token_refresh, quickbooks_cdc, quickbooks_token_refresh)"#
        );
        assert_eq!(
            Job::QuickbooksTokenRefresh.to_string(),
            "quickbooks_token_refresh"
        );
    }
}
