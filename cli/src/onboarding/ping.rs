//! `ml-connector ping`: one cheap call per credential set the connections name, and a table of
//! what works and why not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use mlc::app::live_clients::env::{HUBSPOT_API_BASE, QUICKBOOKS_API_BASE};
use mlc::app::{LiveClients, LiveClientsConfig};
use mlc::connections::{ConnectionSet, Endpoint};
use mlc::ports::secret_names;
use mlc::ports::{Secrets, Store};
use mlc::tokens::StoredTokens;
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::client::DEFAULT_BASE_URL;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::clients::clients_config;
use crate::target::TargetArgs;
use crate::vendors;

#[derive(clap::Args)]
pub(crate) struct PingArgs {
    /// The connections file whose credential sets to check; default: the applied set.
    #[arg(long)]
    connections: Option<PathBuf>,
    /// One JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// FreshBooks API base.
    #[arg(long, env = "FRESHBOOKS_API_BASE", default_value = DEFAULT_BASE_URL)]
    freshbooks_api: String,
    /// Mailchimp API base including `/3.0`; default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    mailchimp_api: Option<String>,
    /// QuickBooks base for both the Accounting API and the token endpoint (a sandbox's
    /// `http://127.0.0.1:<port>`); default: by each credential set's `environment`.
    #[arg(long, env = QUICKBOOKS_API_BASE)]
    quickbooks_api: Option<String>,
    /// HubSpot API base (a sandbox's `http://127.0.0.1:<port>`; also its token endpoint's).
    #[arg(long, env = HUBSPOT_API_BASE)]
    hubspot_api: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// How one credential set fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Ok,
    Failed,
    /// No check exists for this vendor yet; not counted as a failure.
    Unchecked,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub credentials: String,
    pub vendor: Vendor,
    pub outcome: Outcome,
    pub detail: String,
    /// The connections that use the set.
    pub used_by: Vec<String>,
}

/// What a credential set must answer for: its vendor, connections, and the accounts it must
/// reach (source accounts; QuickBooks targets' `realm_id`), and the target endpoints that
/// write with it (for the vendor's own typed fields, e.g. HubSpot's `portal_id`).
pub(crate) struct Wanted {
    pub(crate) vendor: Vendor,
    pub(crate) used_by: Vec<String>,
    pub(crate) accounts: Vec<String>,
    pub(crate) targets: Vec<Endpoint>,
}

pub(crate) async fn run(args: PingArgs) -> anyhow::Result<bool> {
    let ports = super::open(&args.target).await?;
    let set = match &args.connections {
        Some(file) => ConnectionSet::load(file)?,
        None => ports.store.get_connections().await?.with_context(|| {
            format!(
                "no connections are applied in the {}: pass --connections FILE or run `ml-connector apply FILE`",
                ports.place
            )
        })?,
    };
    let secrets = ports.secrets.clone();
    // Sets are checked through the workers' own clients, so the check refreshes tokens (and
    // marks a broken QuickBooks connection) exactly as they would. The flags win over the
    // environment.
    let mut config = clients_config(
        Some(&args.freshbooks_api),
        args.mailchimp_api.as_deref(),
        args.quickbooks_api.as_deref(),
    )?;
    if let Some(base) = &args.hubspot_api {
        config.hubspot_api_base = Some(base.clone());
    }
    let live = ports.app(config.clone()).clients()?;
    let checker = Checker {
        store: ports.store.clone(),
        secrets,
        live,
        config,
    };
    let mut checks = Vec::new();
    for (name, wanted) in wanted(&set) {
        let (outcome, detail) = checker.check(&name, &wanted).await;
        checks.push(Check {
            credentials: name,
            vendor: wanted.vendor,
            outcome,
            detail,
            used_by: wanted.used_by,
        });
    }
    let all_ok = checks.iter().all(|c| c.outcome != Outcome::Failed);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print_table(&checks);
    }
    Ok(all_ok)
}

/// Every credential set the connections name, with who uses it.
fn wanted(set: &ConnectionSet) -> BTreeMap<String, Wanted> {
    let mut out: BTreeMap<String, Wanted> = BTreeMap::new();
    for (name, c) in &set.connections {
        for (endpoint, is_source) in [(&c.source, true), (&c.target, false)] {
            let w = out
                .entry(endpoint.credentials.clone())
                .or_insert_with(|| Wanted {
                    vendor: endpoint.vendor,
                    used_by: Vec::new(),
                    accounts: Vec::new(),
                    targets: Vec::new(),
                });
            if !is_source {
                w.targets.push(endpoint.clone());
            }
            if !w.used_by.iter().any(|u| u == name.as_str()) {
                w.used_by.push(name.to_string());
            }
            let reaches = if is_source {
                endpoint.account.as_deref()
            } else {
                endpoint.realm_id.as_deref()
            };
            if let Some(account) = reaches
                && !w.accounts.iter().any(|a| a == account)
            {
                w.accounts.push(account.to_string());
            }
        }
    }
    out
}

/// What a vendor's `ping` hook checks a credential set with.
pub(crate) struct Checker {
    /// The state store: the id map's per-connection records (HubSpot's write flags).
    pub(crate) store: Arc<dyn Store>,
    pub(crate) secrets: Arc<dyn Secrets>,
    /// The workers' own clients, so a check refreshes tokens exactly as they would.
    pub(crate) live: Arc<LiveClients>,
    /// The API bases and options the clients were built with.
    pub(crate) config: LiveClientsConfig,
}

impl Checker {
    async fn check(&self, name: &str, wanted: &Wanted) -> (Outcome, String) {
        let secret = secret_names::credentials(name);
        let value = match self.secrets.get(&secret).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                return (
                    Outcome::Failed,
                    format!(
                        "missing secret `{secret}`: run `ml-connector connect {} --name {name}`",
                        wanted.vendor
                    ),
                );
            }
            Err(e) => return (Outcome::Failed, format!("reading `{secret}`: {e}")),
        };
        match vendors::hooks(wanted.vendor) {
            Some(hooks) => hooks.ping(self, name, &value, wanted).await,
            None => (
                Outcome::Unchecked,
                format!("stored; no {} check in this release", wanted.vendor),
            ),
        }
    }
}

impl Checker {
    /// What a successful check adds about the access token, from the set as read before the
    /// call (`before`) and again after it: refreshed when the call rotated a token (through the
    /// workers' token manager), else when it expires. A set that cannot be read back counts as
    /// unchanged.
    pub(crate) async fn token_detail(&self, name: &str, before: &SecretString) -> String {
        let Ok(before) = StoredTokens::parse(before) else {
            return String::new();
        };
        let after = match self.secrets.get(&secret_names::credentials(name)).await {
            Ok(Some(now)) => StoredTokens::parse(&now).ok(),
            _ => None,
        };
        let after = after.as_ref().unwrap_or(&before);
        let changed = |a: &SecretString, b: &SecretString| a.expose_secret() != b.expose_secret();
        if changed(&after.refresh_token, &before.refresh_token)
            || changed(&after.access_token, &before.access_token)
        {
            "; the access token had expired and was refreshed (as the poller/worker does)".into()
        } else if let Some(at) = after.expires_at {
            format!("; access token valid until {}", at.to_rfc3339())
        } else {
            String::new()
        }
    }
}

fn print_table(checks: &[Check]) {
    if checks.is_empty() {
        println!("the connections name no credential sets");
        return;
    }
    let rows: Vec<[String; 4]> = checks
        .iter()
        .map(|c| {
            let state = match c.outcome {
                Outcome::Ok => "ok",
                Outcome::Failed => "FAILED",
                Outcome::Unchecked => "unchecked",
            };
            [
                c.credentials.clone(),
                c.vendor.to_string(),
                state.to_string(),
                c.detail.clone(),
            ]
        })
        .collect();
    let header = ["CREDENTIALS", "VENDOR", "STATUS", "DETAIL"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  {}",
        header[0], header[1], header[2], header[3]
    );
    for r in &rows {
        println!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_collects_sets_connections_and_source_accounts() {
        let set = ConnectionSet::from_toml(
            r#"
[connection.a]
source = { vendor = "freshbooks", account = "ACC1", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.b]
source = { vendor = "freshbooks", account = "ACC2", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
"#,
            "t.toml",
        )
        .unwrap();
        let w = wanted(&set);
        assert_eq!(w.len(), 2);
        assert_eq!(w["fb"].accounts, ["ACC1", "ACC2"]);
        assert_eq!(w["fb"].used_by, ["a", "b"]);
        assert!(w["mc"].accounts.is_empty());
        assert_eq!(w["mc"].vendor, Vendor::Mailchimp);

        // A QuickBooks set must reach its source companies and its targets' realm_id.
        let two_way = ConnectionSet::from_toml(
            r#"
[connection.q]
source = { vendor = "quickbooks", account = "111", credentials = "qb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.m]
source = { vendor = "mailchimp", account = "l1", credentials = "mc" }
target = { vendor = "quickbooks", credentials = "qb", realm_id = "222" }
"#,
            "t.toml",
        )
        .unwrap();
        let w = wanted(&two_way);
        assert_eq!(w["qb"].accounts, ["222", "111"]);
        assert_eq!(w["mc"].accounts, ["l1"]);
    }
}
