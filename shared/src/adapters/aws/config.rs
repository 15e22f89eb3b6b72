//! What the AWS adapters are pointed at, read from the Lambda environment: the queue map
//! (`QUEUES`), the three table names and the secret name prefix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Environment variable holding the queue map as JSON.
pub const QUEUES_ENV: &str = "QUEUES";
/// Environment variable naming the audit table.
pub const AUDIT_TABLE_ENV: &str = "AUDIT_TABLE";
/// Environment variable naming the dead-letter table.
pub const DEAD_LETTER_TABLE_ENV: &str = "DEAD_LETTER_TABLE";
/// Environment variable naming the state table.
pub const STATE_TABLE_ENV: &str = "STATE_TABLE";
/// Environment variable holding the prefix of every secret name (e.g. `ml-connector/prod/`).
pub const SECRET_PREFIX_ENV: &str = "SECRET_PREFIX";

/// Why the AWS adapters could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is unset or not Unicode.
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// The queue map is not a JSON object.
    #[error("{QUEUES_ENV} is not a JSON object of queues: {0}")]
    QueuesJson(String),
    /// One entry of the queue map is malformed.
    #[error("{QUEUES_ENV} entry `{entry}`: {message}")]
    QueueEntry { entry: String, message: String },
}

/// Where one logical queue and its dead-letter queue live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueUrls {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
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
            serde_json::from_str(json).map_err(|e| ConfigError::QueuesJson(e.to_string()))?;
        let mut map = BTreeMap::new();
        for (name, value) in raw {
            let entry_error = |message: String| ConfigError::QueueEntry {
                entry: name.clone(),
                message,
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

    /// Reads and parses the `QUEUES` environment variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_json(&env(QUEUES_ENV)?)
    }

    /// Adds (or replaces) one queue.
    pub fn insert(&mut self, name: impl Into<String>, urls: QueueUrls) {
        self.0.insert(name.into(), urls);
    }

    /// The queue with this logical name.
    pub fn get(&self, name: &str) -> Option<&QueueUrls> {
        self.0.get(name)
    }

    /// Logical names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The map in the `QUEUES` JSON format.
    pub fn to_json(&self) -> String {
        // A map of plain strings always serializes.
        serde_json::to_string(&self.0).unwrap_or_default()
    }
}

/// The three DynamoDB tables (layout in `docs/architecture.md` and `template.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub audit: String,
    pub dead_letters: String,
    pub state: String,
}

impl TableNames {
    /// Reads `AUDIT_TABLE`, `DEAD_LETTER_TABLE` and `STATE_TABLE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            audit: env(AUDIT_TABLE_ENV)?,
            dead_letters: env(DEAD_LETTER_TABLE_ENV)?,
            state: env(STATE_TABLE_ENV)?,
        })
    }

    /// Names for one deployment, e.g. `with_prefix("mlc-test-1234-")`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            audit: format!("{prefix}audit"),
            dead_letters: format!("{prefix}dead-letters"),
            state: format!("{prefix}state"),
        }
    }
}

/// Reads `SECRET_PREFIX` (which may be empty, but must be set so a misconfigured function
/// never reads another deployment's secrets).
pub fn secret_prefix_from_env() -> Result<String, ConfigError> {
    env(SECRET_PREFIX_ENV)
}

fn env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError::MissingEnv(name))
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
        assert!(matches!(err, ConfigError::QueuesJson(_)));
    }

    #[test]
    fn refuses_a_queue_that_is_its_own_dlq() {
        let json = GOOD.replace("mlc-mailchimp-dlq", "mlc-mailchimp");
        let err = QueueMap::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("own dead-letter"), "{err}");
    }
}
