//! Structured logging: JSON lines on Lambda (CloudWatch), readable text locally.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once. `RUST_LOG` filters (default `info`); `json` picks
/// CloudWatch-friendly JSON lines. Call it from each entry point, never from library code.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests, local mode hosting several entry points) is harmless: ignore it.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The CloudWatch namespace every metric is published under.
const METRIC_NAMESPACE: &str = "ml-connector";

/// Counters the product publishes (docs/architecture.md, "Observability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub(crate) enum Metric {
    EventsReceived,
    EventsSynced,
    EventsUnchanged,
    EventsFailed,
    DeadLettered,
    #[expect(
        dead_code,
        reason = "declared, not yet published (docs/architecture.md, Observability)"
    )]
    VendorThrottled,
    TokenRefreshed,
    /// A refresh token was refused or a rotated pair could not be stored: a broken connection.
    TokenRefreshFailed,
}

impl Metric {
    /// The CloudWatch metric name: the variant's name.
    fn name(self) -> &'static str {
        self.into()
    }
}

/// Publishes a counter. On Lambda it prints one CloudWatch Embedded Metric Format line to stdout
/// (CloudWatch turns it into a metric without an API call, so no extra IAM or latency); elsewhere
/// it becomes a debug log line.
pub(crate) fn count(metric: Metric, value: u64) {
    if value == 0 {
        return;
    }
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!(
            "{}",
            emf_line(metric, value, chrono::Utc::now().timestamp_millis())
        );
    } else {
        tracing::debug!(metric = metric.name(), value, "metric");
    }
}

/// The EMF document for one dimension-less counter.
fn emf_line(metric: Metric, value: u64, timestamp_ms: i64) -> String {
    let name = metric.name();
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        },
        name: value,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_name_the_metric_and_namespace() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(Metric::DeadLettered, 2, 1_700_000_000_000)).unwrap();
        assert_eq!(line["DeadLettered"], 2);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            METRIC_NAMESPACE
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "DeadLettered"
        );
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
        // The alarms in template.yaml name these.
        assert_eq!(Metric::TokenRefreshFailed.name(), "TokenRefreshFailed");
        assert_eq!(Metric::EventsReceived.name(), "EventsReceived");
    }
}
