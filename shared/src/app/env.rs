//! Each Lambda's environment, as one struct read once at start ([`super::lambda`]): the AWS
//! settings every function shares plus that function's own. A variable that is unset takes its
//! default (the ones marked required excepted); one that is set but unusable stops the function
//! with a [`ConfigError`] naming it.
//!
//! The variables themselves are listed beside the settings they set — [`AwsSettings`]
//! (`adapters::aws::config::env`), [`LiveClientsConfig`] (`app::live_clients::env`),
//! [`WebhookConfig`] (`webhook/config.rs`), [`HarnessConfig`] (`worker::config::env`),
//! [`PollerConfig`] (`poller::config::env`) — and in the README's "Configuration".

use super::LiveClientsConfig;
use crate::adapters::aws::AwsSettings;
use crate::config::{ConfigError, FromEnv, Vars};
use crate::poller::PollerConfig;
use crate::webhook::WebhookConfig;
use crate::worker::HarnessConfig;

/// The webhook function's environment.
#[derive(Debug, Clone)]
pub(crate) struct WebhookEnv {
    /// How to reach AWS (region, endpoint override for the emulator).
    pub aws: AwsSettings,
    /// The vendor clients' settings.
    pub clients: LiveClientsConfig,
    /// The webhook handler's settings.
    pub webhook: WebhookConfig,
}

impl FromEnv for WebhookEnv {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::read(vars)?,
            clients: LiveClientsConfig::read(vars)?,
            webhook: WebhookConfig::read(vars)?,
        })
    }
}

/// A target worker function's environment.
#[derive(Debug, Clone)]
pub(crate) struct WorkerEnv {
    /// How to reach AWS (region, endpoint override for the emulator).
    pub aws: AwsSettings,
    /// The vendor clients' settings.
    pub clients: LiveClientsConfig,
    /// The worker harness's settings (its queue, retries, concurrency).
    pub harness: HarnessConfig,
}

impl FromEnv for WorkerEnv {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::read(vars)?,
            clients: LiveClientsConfig::read(vars)?,
            harness: HarnessConfig::read(vars)?,
        })
    }
}

/// The poller function's environment.
#[derive(Debug, Clone)]
pub(crate) struct PollerEnv {
    /// How to reach AWS (region, endpoint override for the emulator).
    pub aws: AwsSettings,
    /// The vendor clients' settings.
    pub clients: LiveClientsConfig,
    /// The poller's settings (overlaps, margins, leases).
    pub poller: PollerConfig,
}

impl FromEnv for PollerEnv {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::read(vars)?,
            clients: LiveClientsConfig::read(vars)?,
            poller: PollerConfig::read(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};
    use std::time::Duration;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    const QUEUES: &str = r#"{"mailchimp": {
        "url": "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp",
        "arn": "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp",
        "dlq_url": "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp-dlq",
        "dlq_arn": "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp-dlq"}}"#;

    /// What `template.yaml` sets on every function (Globals), plus the queue map.
    const AWS: &[(&str, &str)] = &[
        ("QUEUES", QUEUES),
        ("AUDIT_TABLE", "mlc-audit"),
        ("DEAD_LETTER_TABLE", "mlc-dead-letters"),
        ("STATE_TABLE", "mlc-state"),
        ("SECRET_PREFIX", "ml-connector/prod/"),
    ];

    fn read<T: FromEnv>(sets: &[&[(&str, &str)]]) -> Result<T, ConfigError> {
        let map: HashMap<String, String> = sets
            .iter()
            .flat_map(|set| set.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        T::from_lookup(|name| map.get(name).cloned())
    }

    fn assert_aws(aws: &AwsSettings) {
        assert_eq!(aws.queues.names().collect::<Vec<_>>(), ["mailchimp"]);
        assert_eq!(aws.tables.audit, "mlc-audit");
        assert_eq!(aws.tables.dead_letters, "mlc-dead-letters");
        assert_eq!(aws.tables.state, "mlc-state");
        assert_eq!(aws.secret_prefix, "ml-connector/prod/");
    }

    #[test]
    fn every_function_needs_the_aws_settings() {
        for (name, _) in AWS {
            let without: Vec<(&str, &str)> =
                AWS.iter().copied().filter(|(k, _)| k != name).collect();
            let expected = ConfigError::Missing(name);
            assert_eq!(
                read::<WebhookEnv>(&[&without]).unwrap_err(),
                expected.clone()
            );
            assert_eq!(
                read::<WorkerEnv>(&[&without, &[("WORKER_QUEUE", "mailchimp")]]).unwrap_err(),
                expected.clone()
            );
            assert_eq!(read::<PollerEnv>(&[&without]).unwrap_err(), expected);
        }
        // An empty prefix is a choice; an unset one is a mistake.
        let mut empty_prefix = AWS.to_vec();
        empty_prefix.retain(|(k, _)| *k != "SECRET_PREFIX");
        empty_prefix.push(("SECRET_PREFIX", ""));
        assert_eq!(
            read::<PollerEnv>(&[&empty_prefix])
                .unwrap()
                .aws
                .secret_prefix,
            ""
        );
        let err = read::<PollerEnv>(&[AWS, &[("QUEUES", "[]")]]).unwrap_err();
        assert!(err.to_string().starts_with("QUEUES: "), "{err}");
    }

    #[test]
    fn the_webhook_environment() {
        let env = read::<WebhookEnv>(&[AWS]).unwrap();
        assert_aws(&env.aws);
        assert_eq!(env.webhook, WebhookConfig::default());
        assert_eq!(
            env.clients.freshbooks_api_base,
            "https://api.freshbooks.com"
        );

        let env = read::<WebhookEnv>(&[
            AWS,
            &[
                ("WEBHOOK_BODY_LIMIT", " 1048576 "),
                ("DEAD_LETTER_RETENTION_DAYS", "30"),
                ("FRESHBOOKS_API_BASE", "http://127.0.0.1:8081"),
            ],
        ])
        .unwrap();
        assert_eq!(env.webhook.body_limit, 1024 * 1024);
        assert_eq!(env.webhook.dead_letter_ttl, 30 * DAY);
        assert_eq!(env.clients.freshbooks_api_base, "http://127.0.0.1:8081");

        let err = read::<WebhookEnv>(&[AWS, &[("WEBHOOK_BODY_LIMIT", "5MB")]]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable WEBHOOK_BODY_LIMIT must be a whole number, got `5MB`"
        );
    }

    #[test]
    fn a_worker_environment() {
        assert_eq!(
            read::<WorkerEnv>(&[AWS]).unwrap_err(),
            ConfigError::Missing("WORKER_QUEUE")
        );
        let env = read::<WorkerEnv>(&[AWS, &[("WORKER_QUEUE", "mailchimp")]]).unwrap();
        assert_aws(&env.aws);
        assert_eq!(env.harness, HarnessConfig::new("mailchimp"));
        assert_eq!(env.clients.mailchimp.max_concurrency, 1);

        let env = read::<WorkerEnv>(&[
            AWS,
            &[
                ("WORKER_QUEUE", "quickbooks"),
                ("WORKER_MAX_RECEIVES", "8"),
                ("AUDIT_RETENTION_DAYS", "30"),
                ("WORKER_MAX_CONCURRENCY", "2"),
                ("QUICKBOOKS_API_BASE", "http://127.0.0.1:8083"),
            ],
        ])
        .unwrap();
        assert_eq!(env.harness.queue, "quickbooks");
        assert_eq!(env.harness.max_receives, 8);
        assert_eq!(env.harness.audit_ttl, 30 * DAY);
        assert_eq!(env.clients.mailchimp.max_concurrency, 2);
        assert_eq!(
            env.clients.quickbooks_api_base.as_deref(),
            Some("http://127.0.0.1:8083")
        );

        let err = read::<WorkerEnv>(&[
            AWS,
            &[
                ("WORKER_QUEUE", "mailchimp"),
                ("WORKER_MAX_CONCURRENCY", "0"),
            ],
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable WORKER_MAX_CONCURRENCY must be a positive whole number, got `0`"
        );
    }

    #[test]
    fn the_poller_environment() {
        let env = read::<PollerEnv>(&[AWS]).unwrap();
        assert_aws(&env.aws);
        assert_eq!(env.poller, PollerConfig::default());

        let env = read::<PollerEnv>(&[
            AWS,
            &[
                ("POLLER_JOB_LEASE_SECONDS", "600"),
                ("TOKEN_REFRESH_MARGIN_MINUTES", "120"),
                ("QUICKBOOKS_TOKEN_REFRESH_MARGIN_MINUTES", "55"),
            ],
        ])
        .unwrap();
        assert_eq!(env.poller.job_lease, Duration::from_secs(600));
        assert_eq!(env.poller.refresh_margin, Duration::from_secs(120 * 60));
        assert_eq!(
            env.poller.quickbooks_refresh_margin,
            Duration::from_secs(55 * 60)
        );

        let err = read::<PollerEnv>(&[AWS, &[("POLL_OVERLAP_DAYS", "0")]]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable POLL_OVERLAP_DAYS must be a positive whole number, got `0`"
        );
    }

    /// Every variable the functions read: each struct read through a lookup that notes the
    /// names it is asked for.
    fn variables_read() -> BTreeSet<String> {
        let asked = RefCell::new(BTreeSet::new());
        let lookup = |name: &str| {
            asked.borrow_mut().insert(name.to_string());
            AWS.iter()
                .chain(&[("WORKER_QUEUE", "mailchimp")])
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        WebhookEnv::from_lookup(lookup).unwrap();
        WorkerEnv::from_lookup(lookup).unwrap();
        PollerEnv::from_lookup(lookup).unwrap();
        asked.into_inner()
    }

    /// The names under every `Variables:` of a SAM template.
    fn template_variables(template: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut block = None;
        for line in template.lines() {
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let Some(outer) = block {
                if indent > outer {
                    if let Some((name, _)) = text.split_once(':') {
                        names.push(name.to_string());
                    }
                    continue;
                }
                block = None;
            }
            if text == "Variables:" {
                block = Some(indent);
            }
        }
        names
    }

    /// `template.yaml` sets only variables a function reads (and `RUST_LOG`, the log filter),
    /// and the README's "Function settings" lists every one.
    #[test]
    fn the_template_and_the_readme_agree_with_the_code() {
        let read = variables_read();
        assert!(read.contains("WORKER_RETRY_ATTEMPTS") && read.contains("QUEUES"));
        let set = template_variables(include_str!("../../../template.yaml"));
        assert!(set.len() > 10, "{set:?}");
        for name in set {
            assert!(
                name == "RUST_LOG" || read.contains(&name),
                "template.yaml sets {name}, which no function reads"
            );
        }
        let readme = include_str!("../../../README.md");
        for name in &read {
            assert!(
                readme.contains(&format!("`{name}`")),
                "the README's Function settings do not list {name}"
            );
        }
    }
}
