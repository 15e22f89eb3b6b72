//! Which deployment an operations command works on: the local embedded store (`--local`, the
//! default) or a deployed stack (`--stack [NAME]`), opened as the same ports either way, so
//! every command has one code path.
//!
//! Local is the default on purpose: a command typed in the repository should never reach a
//! production stack by accident. `--stack` with no name takes the stack name from
//! `samconfig.toml` (what `sam deploy` deployed); region and credentials come the usual AWS
//! way (`AWS_REGION`/`AWS_PROFILE`, `~/.aws/config`, `--region`, `--profile`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use aws_config::{Region, SdkConfig};
use mlc::adapters::aws::{AwsAdapters, QueueMap, TableNames};
use mlc::adapters::embedded::EmbeddedDb;
use mlc::app::{App, LiveClientsConfig};
use mlc::connections::ConnectionSet;
use mlc::ports::{Clock, Queue, Secrets, Store, SystemClock};

use crate::local_store::StoreArgs;
use crate::ops::UsageError;

/// The address `ml-connector dev` serves the webhook routes on unless told otherwise
/// (`dev --listen`); `apply` prints local webhook URLs under it.
pub(crate) const DEV_LISTEN: &str = "127.0.0.1:8787";

/// The stack outputs the CLI reads (see `template.yaml`, `Outputs`).
pub(crate) mod outputs {
    pub(crate) const AUDIT_TABLE: &str = "AuditTableName";
    pub(crate) const DEAD_LETTER_TABLE: &str = "DeadLetterTableName";
    pub(crate) const STATE_TABLE: &str = "StateTableName";
    pub(crate) const SECRET_PREFIX: &str = "SecretPrefix";
    /// The functions' `QUEUES` JSON: every target queue with its DLQ.
    pub(crate) const QUEUES: &str = "Queues";
    /// Base URL of the webhook routes (`…/webhooks`), where `apply` registers callbacks.
    pub(crate) const WEBHOOK_BASE_URL: &str = "WebhookBaseUrl";
}

/// Selects the deployment: shared by every operations command.
#[derive(clap::Args)]
pub(crate) struct TargetArgs {
    /// Work on the local store (the default when --stack is not given).
    #[arg(long, global = true, conflicts_with = "stack")]
    pub local: bool,
    /// Work on a deployed stack: `--stack=NAME`, or `--stack` alone for the `stack_name` in
    /// --samconfig. (The `=` is required so a bare `--stack` never swallows the next argument.)
    #[arg(
        long,
        global = true,
        env = "ML_CONNECTOR_STACK",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        value_name = "NAME"
    )]
    pub stack: Option<String>,
    /// The SAM configuration file `--stack` without a name reads.
    #[arg(
        long,
        global = true,
        default_value = "samconfig.toml",
        value_name = "FILE"
    )]
    pub samconfig: PathBuf,
    /// AWS region of the stack (default: AWS_REGION, then your AWS profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile to use (default: AWS_PROFILE, then `default`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The local store (SQLite; its encryption key is kept beside it as `<db>.key`).
    #[arg(
        long,
        global = true,
        env = "ML_CONNECTOR_DB",
        default_value = ".ml-connector/local.db"
    )]
    pub db: PathBuf,
}

/// Where the ports point.
#[derive(Debug, Clone)]
pub(crate) enum Where {
    Local { db: PathBuf },
    Stack { name: String },
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Where::Local { db } => write!(f, "local store {}", db.display()),
            Where::Stack { name } => write!(f, "stack {name}"),
        }
    }
}

/// An opened deployment: the ports every operations command works through.
pub(crate) struct Target {
    pub place: Where,
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    /// The embedded store, in local mode (the redrive's progress there is the worker's).
    pub local: Option<EmbeddedDb>,
    /// Target queues a stack has (its `Queues` output); empty in local mode, where queues are
    /// the applied connections' targets.
    pub stack_queues: Vec<String>,
    /// The stack's outputs, by key (read once, on opening); empty in local mode.
    pub outputs: BTreeMap<String, String>,
}

impl Target {
    /// The app over this target's ports, as the Lambdas build it.
    pub(crate) fn app(&self, clients: LiveClientsConfig) -> App {
        let ports = mlc::app::Ports {
            queue: self.queue.clone(),
            store: self.store.clone(),
            secrets: self.secrets.clone(),
            clock: self.clock.clone(),
        };
        App::new(ports, clients)
    }
}

impl TargetArgs {
    /// The selected stack's name (`--stack` alone: the one --samconfig names); `None` in
    /// local mode.
    pub(crate) fn stack_name(&self) -> anyhow::Result<Option<String>> {
        match &self.stack {
            Some(name) if !self.local && name.is_empty() => {
                stack_name_from_samconfig(&self.samconfig).map(Some)
            }
            Some(name) if !self.local => Ok(Some(name.clone())),
            _ => Ok(None),
        }
    }

    /// Opens the local store or the stack.
    pub(crate) async fn open(&self) -> anyhow::Result<Target> {
        match self.stack_name()? {
            Some(name) => self.open_stack(name).await,
            None => self.open_local(),
        }
    }

    fn open_local(&self) -> anyhow::Result<Target> {
        let db_path = &self.db;
        if !db_path.exists() {
            return Err(UsageError(format!(
                "there is no local store at {}: run `ml-connector dev` (or `demo`) first, pass \
                 --db, or use --stack for a deployed stack",
                db_path.display()
            ))
            .into());
        }
        let (db, secrets) = StoreArgs {
            db: db_path.clone(),
        }
        .open()?;
        Ok(Target {
            place: Where::Local {
                db: db_path.clone(),
            },
            queue: Arc::new(db.clone()),
            store: Arc::new(db.clone()),
            secrets: Arc::new(secrets),
            clock: Arc::new(SystemClock),
            local: Some(db),
            stack_queues: Vec::new(),
            outputs: BTreeMap::new(),
        })
    }

    /// Opens the stack `name` (see [`TargetArgs::stack_name`]).
    pub(crate) async fn open_stack(&self, name: String) -> anyhow::Result<Target> {
        let sdk = self.sdk_config().await;
        let outputs = stack_outputs(&sdk, &name).await?;
        let adapters = adapters_from_outputs(&sdk, &name, &outputs)?;
        let stack_queues = adapters
            .queue
            .queues()
            .names()
            .map(str::to_string)
            .collect();
        Ok(Target {
            place: Where::Stack { name },
            queue: Arc::new(adapters.queue),
            store: Arc::new(adapters.store),
            secrets: Arc::new(adapters.secrets),
            clock: Arc::new(SystemClock),
            local: None,
            stack_queues,
            outputs,
        })
    }

    async fn sdk_config(&self) -> SdkConfig {
        let mut loader = mlc::adapters::aws::http::sdk_config_loader();
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        loader.load().await
    }
}

impl Target {
    /// One output of the stack; `None` in local mode or when the stack lacks it.
    pub(crate) fn output(&self, key: &str) -> Option<&str> {
        self.outputs.get(key).map(String::as_str)
    }

    /// The applied connections (`ml-connector dev` or `apply` stores them).
    pub(crate) async fn connections(&self) -> anyhow::Result<ConnectionSet> {
        self.store
            .get_connections()
            .await
            .with_context(|| format!("reading the applied connections from the {}", self.place))?
            .ok_or_else(|| {
                anyhow!(
                    "no connections are applied in the {}: run `ml-connector apply <file>` (or `dev`)",
                    self.place
                )
            })
    }

    /// The target queues to report on: the stack's, or locally the applied connections'.
    pub(crate) fn queue_names(&self, connections: &ConnectionSet) -> Vec<String> {
        let mut names: Vec<String> = if self.local.is_some() {
            connections
                .connections
                .values()
                .map(|c| c.queue().to_string())
                .collect()
        } else {
            self.stack_queues.clone()
        };
        names.sort();
        names.dedup();
        names
    }
}

/// `stack_name` from a SAM configuration file: `[default.deploy.parameters]`, else
/// `[default.global.parameters]` (where `sam deploy --guided` and this repository put it).
pub(crate) fn stack_name_from_samconfig(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "--stack without a name reads {}: {e}; pass --stack NAME or --samconfig FILE",
            path.display()
        ))
    })?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    for section in ["deploy", "global"] {
        let name = doc
            .get("default")
            .and_then(|d| d.get(section))
            .and_then(|s| s.get("parameters"))
            .and_then(|p| p.get("stack_name"))
            .and_then(|n| n.as_str());
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            return Ok(name.to_string());
        }
    }
    Err(UsageError(format!(
        "{} names no stack_name under [default.deploy.parameters] or [default.global.parameters]; pass --stack NAME",
        path.display()
    ))
    .into())
}

/// The stack's outputs, by key.
async fn stack_outputs(sdk: &SdkConfig, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let out = client
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "reading stack `{name}` (region {}): {}",
                sdk.region().map(|r| r.as_ref()).unwrap_or("not set"),
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            )
        })?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| anyhow!("stack `{name}` does not exist"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect())
}

/// The AWS adapters for a stack, from its outputs.
pub(crate) fn adapters_from_outputs(
    sdk: &SdkConfig,
    stack: &str,
    outputs: &BTreeMap<String, String>,
) -> anyhow::Result<AwsAdapters> {
    let get = |key: &str| {
        outputs.get(key).cloned().ok_or_else(|| {
            anyhow!(
                "stack `{stack}` has no `{key}` output: deploy this release's template.yaml (`sam build && sam deploy`)"
            )
        })
    };
    let tables = TableNames {
        audit: get(outputs::AUDIT_TABLE)?,
        dead_letters: get(outputs::DEAD_LETTER_TABLE)?,
        state: get(outputs::STATE_TABLE)?,
    };
    let queues = QueueMap::from_json(&get(outputs::QUEUES)?)
        .with_context(|| format!("stack `{stack}` output `{}`", outputs::QUEUES))?;
    if queues.names().next().is_none() {
        bail!(
            "stack `{stack}` output `{}` names no queue",
            outputs::QUEUES
        );
    }
    Ok(AwsAdapters::new(
        sdk,
        queues,
        tables,
        get(outputs::SECRET_PREFIX)?,
        Arc::new(SystemClock),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "mlc-cli-samconfig-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn stack_name_from_deploy_or_global_parameters() {
        let global = write(
            "global",
            "[default.global.parameters]\nstack_name = \"a\"\n",
        );
        assert_eq!(stack_name_from_samconfig(&global).unwrap(), "a");
        let deploy = write(
            "deploy",
            "[default.global.parameters]\nstack_name = \"a\"\n[default.deploy.parameters]\nstack_name = \"b\"\n",
        );
        assert_eq!(stack_name_from_samconfig(&deploy).unwrap(), "b");
        let none = write("none", "version = 0.1\n");
        let err = stack_name_from_samconfig(&none).unwrap_err();
        assert!(err.is::<UsageError>(), "{err}");
        for p in [global, deploy, none] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn the_repository_samconfig_names_the_stack() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samconfig.toml");
        assert_eq!(stack_name_from_samconfig(&repo).unwrap(), "ml-connector");
    }
}
