//! What the AWS adapters are pointed at, read from the Lambda environment ([`AwsSettings`]): the
//! queue map (`QUEUES`), the three table names and the secret name prefix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, FromEnv, Vars};

/// Environment variables [`AwsSettings`] is read from; all required.
pub(crate) mod env {
    /// The queue map as JSON ([`super::QueueMap::from_json`]).
    pub(crate) const QUEUES: &str = "QUEUES";
    /// The audit table's name.
    pub(crate) const AUDIT_TABLE: &str = "AUDIT_TABLE";
    /// The dead-letter table's name.
    pub(crate) const DEAD_LETTER_TABLE: &str = "DEAD_LETTER_TABLE";
    /// The state table's name.
    pub(crate) const STATE_TABLE: &str = "STATE_TABLE";
    /// The prefix of every secret name (e.g. `ml-connector/prod/`). May be empty, but must be
    /// set, so a misconfigured function never reads another deployment's secrets.
    pub(crate) const SECRET_PREFIX: &str = "SECRET_PREFIX";
}

/// What the AWS adapters are pointed at: every function's share of its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// From `QUEUES`.
    pub(crate) queues: QueueMap,
    /// From `AUDIT_TABLE`, `DEAD_LETTER_TABLE` and `STATE_TABLE`.
    pub(crate) tables: TableNames,
    /// From `SECRET_PREFIX`.
    pub(crate) secret_prefix: String,
}

impl FromEnv for AwsSettings {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            queues: QueueMap::from_json(&vars.required(env::QUEUES)?)?,
            tables: TableNames {
                audit: vars.required(env::AUDIT_TABLE)?,
                dead_letters: vars.required(env::DEAD_LETTER_TABLE)?,
                state: vars.required(env::STATE_TABLE)?,
            },
            secret_prefix: vars.required(env::SECRET_PREFIX)?,
        })
    }
}

/// Where one logical queue and its dead-letter queue live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueUrls {
    /// The queue's URL, which the message calls (send, receive, delete, visibility) take.
    pub url: String,
    /// The queue's ARN: the destination when a redrive moves messages back from the DLQ.
    pub arn: String,
    /// The dead-letter queue's URL: where the worker copies a message it gives up on before the
    /// redrive policy would, and whose depth is reported beside the queue's.
    pub dlq_url: String,
    /// The dead-letter queue's ARN: the source of a redrive (`StartMessageMoveTask`).
    pub dlq_arn: String,
}

impl QueueUrls {
    fn validate(&self) -> Result<(), String> {
        for (field, value) in [("url", &self.url), ("dlq_url", &self.dlq_url)] {
            if !(value.starts_with("https://") || value.starts_with("http://")) {
                return Err(format!("`{field}` is not an http(s) URL"));
            }
        }
        for (field, value) in [("arn", &self.arn), ("dlq_arn", &self.dlq_arn)] {
            if !value.starts_with("arn:") || value.split(':').count() != 6 {
                return Err(format!("`{field}` is not a queue ARN"));
            }
        }
        if self.url == self.dlq_url || self.arn == self.dlq_arn {
            return Err("the queue is its own dead-letter queue".to_string());
        }
        Ok(())
    }
}

/// Logical queue name (the target vendor, e.g. `mailchimp`) → its queue and dead-letter queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueMap(BTreeMap<String, QueueUrls>);

impl QueueMap {
    /// An empty map; add queues with [`QueueMap::insert`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the `QUEUES` format: `{"<name>": {"url", "arn", "dlq_url", "dlq_arn"}}`.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| ConfigError::Malformed {
                name: env::QUEUES,
                entry: None,
                reason: format!("not a JSON object of queues: {e}"),
            })?;
        let mut map = BTreeMap::new();
        for (name, value) in raw {
            let entry_error = |reason: String| ConfigError::Malformed {
                name: env::QUEUES,
                entry: Some(name.clone()),
                reason,
            };
            if name.is_empty() {
                return Err(entry_error("the queue name is empty".to_string()));
            }
            let urls: QueueUrls =
                serde_json::from_value(value).map_err(|e| entry_error(e.to_string()))?;
            urls.validate().map_err(entry_error)?;
            map.insert(name, urls);
        }
        Ok(Self(map))
    }

    /// Adds (or replaces) one queue.
    pub fn insert(&mut self, name: impl Into<String>, urls: QueueUrls) {
        self.0.insert(name.into(), urls);
    }

    /// The queue with this logical name.
    pub(crate) fn get(&self, name: &str) -> Option<&QueueUrls> {
        self.0.get(name)
    }

    /// Logical names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The map in the `QUEUES` JSON format: the tests' round trip of [`QueueMap::from_json`]
    /// (deployments get `QUEUES` from `template.yaml`).
    #[cfg(test)]
    fn to_json(&self) -> String {
        // A map of plain strings always serializes.
        serde_json::to_string(&self.0).unwrap_or_default()
    }
}

/// The three DynamoDB tables (layout in `docs/architecture.md` and `template.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// The audit trail: one item per (record, event, target) attempt.
    pub audit: String,
    /// The dead letters: messages and deliveries that will not succeed, with why.
    pub dead_letters: String,
    /// Everything else (idempotency records, the id map, cursors, leases, callbacks, blobs, the
    /// applied connections), told apart by key prefix.
    pub state: String,
}

impl TableNames {
    /// `<prefix>audit`, `<prefix>dead-letters` and `<prefix>state`: one set of tables per
    /// prefix, e.g. `with_prefix("mlc-test-1234-")` for a test's own.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            audit: format!("{prefix}audit"),
            dead_letters: format!("{prefix}dead-letters"),
            state: format!("{prefix}state"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"mailchimp": {
        "url": "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp",
        "arn": "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp",
        "dlq_url": "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp-dlq",
        "dlq_arn": "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp-dlq"}}"#;

    #[test]
    fn parses_the_queue_map() {
        let map = QueueMap::from_json(GOOD).unwrap();
        assert_eq!(map.names().collect::<Vec<_>>(), ["mailchimp"]);
        let q = map.get("mailchimp").unwrap();
        assert!(q.dlq_arn.ends_with("mlc-mailchimp-dlq"));
        assert_eq!(QueueMap::from_json(&map.to_json()).unwrap(), map);
    }

    #[test]
    fn names_the_bad_entry() {
        let json = GOOD.replace("\"mailchimp\"", "\"hubspot\"").replace(
            "\"dlq_arn\": \"arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp-dlq\"",
            "\"dlq_arm\": \"x\"",
        );
        let err = QueueMap::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("`hubspot`"), "{err}");
        assert!(err.contains("dlq_arm"), "{err}");

        let err = QueueMap::from_json(
            r#"{"stripe": {"url": "sqs", "arn": "a", "dlq_url": "b", "dlq_arn": "c"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`stripe`") && err.contains("`url`"), "{err}");

        let err = QueueMap::from_json("[1]").unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { entry: None, .. }));
    }

    #[test]
    fn refuses_a_queue_that_is_its_own_dlq() {
        let json = GOOD.replace("mlc-mailchimp-dlq", "mlc-mailchimp");
        let err = QueueMap::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("own dead-letter"), "{err}");
    }
}
