//! `ml-connector ping`: one cheap call per credential set the connections name, and a table of
//! what works and why not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use mlc::app::LiveClients;
use mlc::app::live_clients::env::QUICKBOOKS_API_BASE;
use mlc::connections::ConnectionSet;
use mlc::flows::clients::VendorClients;
use mlc::ports::Secrets;
use mlc::ports::secret_names;
use mlc::tokens::{StoredTokens, TokenError};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::FreshbooksError;
use mlc::vendors::freshbooks::client::{DEFAULT_BASE_URL, FreshbooksClient};
use mlc::vendors::freshbooks::credentials::Credentials as FreshbooksCredentials;
use mlc::vendors::mailchimp::MailchimpError;
use mlc::vendors::mailchimp::client::{ClientOptions, MailchimpClient};
use mlc::vendors::mailchimp::credentials::Credentials as MailchimpCredentials;
use mlc::vendors::quickbooks::QuickbooksError;
use mlc::vendors::quickbooks::credentials::{Environment, QuickbooksCredentials};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::clients::clients_config;
use crate::target::TargetArgs;

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
/// reach (source accounts; QuickBooks targets' `realm_id`).
struct Wanted {
    vendor: Vendor,
    used_by: Vec<String>,
    accounts: Vec<String>,
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
    let config = clients_config(
        Some(&args.freshbooks_api),
        args.mailchimp_api.as_deref(),
        args.quickbooks_api.as_deref(),
    )?;
    let freshbooks_api = config.freshbooks_api_base.clone();
    let mailchimp = config.mailchimp.clone();
    let live = ports.app(config).clients()?;
    let checker = Checker {
        secrets,
        live,
        freshbooks_api,
        mailchimp,
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
                });
            if !w.used_by.contains(name) {
                w.used_by.push(name.clone());
            }
            let reaches = if is_source {
                endpoint.account.as_ref()
            } else {
                endpoint.realm_id.as_ref()
            };
            if let Some(account) = reaches
                && !w.accounts.contains(account)
            {
                w.accounts.push(account.clone());
            }
        }
    }
    out
}

struct Checker {
    secrets: Arc<dyn Secrets>,
    live: Arc<LiveClients>,
    freshbooks_api: String,
    mailchimp: ClientOptions,
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
        match wanted.vendor {
            Vendor::Freshbooks => self.freshbooks(name, &value, wanted).await,
            Vendor::Mailchimp => self.mailchimp(name, value.expose_secret()).await,
            Vendor::Quickbooks => self.quickbooks(name, &value, wanted).await,
            other => (
                Outcome::Unchecked,
                format!("stored; no {other} check in this release"),
            ),
        }
    }

    /// `GET /auth/api/v1/users/me` through the token manager, so an expired access token is
    /// refreshed exactly as the poller and the workers would (single-flight, the rotated pair
    /// stored before use).
    async fn freshbooks(
        &self,
        name: &str,
        value: &SecretString,
        wanted: &Wanted,
    ) -> (Outcome, String) {
        if let Err(e) = FreshbooksCredentials::from_json(value.expose_secret()) {
            return (Outcome::Failed, format!("{e}: reconnect"));
        }
        let client = match FreshbooksClient::new(
            &self.freshbooks_api,
            self.live.freshbooks_tokens(),
            name,
        ) {
            Ok(c) => c,
            Err(e) => return (Outcome::Failed, e.to_string()),
        };
        let identity = match client.identity().await {
            Ok(i) => i,
            Err(e) => return (Outcome::Failed, freshbooks_failure(name, &e)),
        };
        let missing: Vec<&str> = wanted
            .accounts
            .iter()
            .filter(|a| !identity.businesses.iter().any(|b| &b.account_id == *a))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return (
                Outcome::Failed,
                format!(
                    "identity {} has no access to account(s) {}; it sees {}",
                    identity.identity_id,
                    missing.join(", "),
                    accounts(&identity.businesses)
                ),
            );
        }
        let mut detail = format!(
            "identity {}{}, accounts {}",
            identity.identity_id,
            identity
                .email
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            accounts(&identity.businesses)
        );
        detail.push_str(&self.token_detail(name, value).await);
        (Outcome::Ok, detail)
    }

    /// `GET /ping`.
    async fn mailchimp(&self, _name: &str, value: &str) -> (Outcome, String) {
        let credentials = match MailchimpCredentials::from_json(value) {
            Ok(c) => c,
            Err(e) => return (Outcome::Failed, format!("{e}: reconnect")),
        };
        let dc = credentials.dc().unwrap_or("(unknown)").to_string();
        let client = match MailchimpClient::new(&credentials, &self.mailchimp) {
            Ok(c) => c,
            Err(e) => return (Outcome::Failed, e.to_string()),
        };
        match client.ping().await {
            Ok(()) => (Outcome::Ok, format!("data centre {dc}")),
            Err(e) => (Outcome::Failed, mailchimp_failure(&dc, &e)),
        }
    }
}

impl Checker {
    /// The company's name (`companyinfo`) through the client the workers use: its token is
    /// refreshed when expired, and a refused refresh marks the set `needs_reconnect` as the
    /// worker would.
    async fn quickbooks(
        &self,
        name: &str,
        value: &SecretString,
        wanted: &Wanted,
    ) -> (Outcome, String) {
        let set = match QuickbooksCredentials::from_json(value.expose_secret()) {
            Ok(c) => c,
            Err(e) => {
                return (
                    Outcome::Failed,
                    format!("{e}: reconnect with {}", reconnect(name, None)),
                );
            }
        };
        let environment = set.environment;
        if let Some(marker) = &set.needs_reconnect {
            return (Outcome::Failed, needs_reconnect(name, environment, marker));
        }
        let others: Vec<&str> = wanted
            .accounts
            .iter()
            .filter(|a| **a != set.realm_id)
            .map(String::as_str)
            .collect();
        if !others.is_empty() {
            return (
                Outcome::Failed,
                format!(
                    "the set is for company {} but the connections name {}: fix the connections \
                     file, or reconnect approving that company with {}",
                    set.realm_id,
                    others.join(", "),
                    reconnect(name, Some(environment))
                ),
            );
        }
        let client = match self.live.quickbooks(name).await {
            Ok(c) => c,
            Err(e) => return (Outcome::Failed, e.to_string()),
        };
        match client.company_name(&set.realm_id).await {
            Ok(company) => {
                let detail = format!(
                    "company \"{company}\" (realm {}, {environment}){}",
                    set.realm_id,
                    self.token_detail(name, value).await
                );
                (Outcome::Ok, detail)
            }
            Err(e) => {
                // A refused refresh has just been recorded on the set: say it that way.
                if let Ok(Some(now)) = self.secrets.get(&secret_names::credentials(name)).await
                    && let Ok(after) = QuickbooksCredentials::from_json(now.expose_secret())
                    && let Some(marker) = &after.needs_reconnect
                {
                    return (Outcome::Failed, needs_reconnect(name, environment, marker));
                }
                (
                    Outcome::Failed,
                    quickbooks_failure(name, environment, &set.realm_id, &e),
                )
            }
        }
    }

    /// What a successful check adds about the access token, from the set as read before the
    /// call (`before`) and again after it: refreshed when the call rotated a token (through the
    /// workers' token manager), else when it expires. A set that cannot be read back counts as
    /// unchanged.
    async fn token_detail(&self, name: &str, before: &SecretString) -> String {
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

/// The command that re-authorises a QuickBooks credential set.
fn reconnect(name: &str, environment: Option<Environment>) -> String {
    match environment {
        Some(env) => format!("`ml-connector connect quickbooks --name {name} --environment {env}`"),
        None => format!("`ml-connector connect quickbooks --name {name}`"),
    }
}

/// A set the token manager marked: Intuit refused its refresh token.
fn needs_reconnect(
    name: &str,
    environment: Environment,
    marker: &mlc::tokens::NeedsReconnect,
) -> String {
    format!(
        "needs reconnect{}: Intuit refused the refresh token, so nothing reaches this company \
         (its events wait in the queue); reconnect with {}",
        marker.details(),
        reconnect(name, Some(environment))
    )
}

/// Why a QuickBooks check failed, and what to do about it. Which answer Intuit gives for a
/// sandbox company's token at the production host (and the other way round) is UNCONFIRMED
/// (401, or 403 with code 3100 are both reported), so every refusal names the environment.
fn quickbooks_failure(
    name: &str,
    environment: Environment,
    realm: &str,
    e: &QuickbooksError,
) -> String {
    let other = environment.other();
    match e {
        QuickbooksError::Token(TokenError::Broken { message, .. }) => format!(
            "the refresh was refused ({message}): reconnect with {}",
            reconnect(name, Some(environment))
        ),
        QuickbooksError::Token(TokenError::Misconfigured { message, .. }) => format!(
            "token cannot be refreshed ({message}): reconnect with {}",
            reconnect(name, Some(environment))
        ),
        QuickbooksError::Token(t) if t.is_transient() => {
            format!("refresh failed for now ({t}); the poller/worker retries it")
        }
        QuickbooksError::Fault {
            status: 401 | 403, ..
        } => format!(
            "QuickBooks refused the token for company {realm} at the {environment} API ({e}): \
             if it is a {other} company, reconnect with {}; otherwise reconnect with {}",
            reconnect(name, Some(other)),
            reconnect(name, Some(environment))
        ),
        e if e.is_not_found() => format!(
            "company {realm} was not found at the {environment} API ({e}): if it is a {other} \
             company, reconnect with {}",
            reconnect(name, Some(other))
        ),
        e if e.is_transient() => format!("QuickBooks unreachable or failing for now: {e}"),
        e => e.to_string(),
    }
}

fn accounts(businesses: &[mlc::vendors::freshbooks::models::Business]) -> String {
    if businesses.is_empty() {
        return "(none)".into();
    }
    businesses
        .iter()
        .map(|b| b.account_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a FreshBooks check failed, and what to do about it.
fn freshbooks_failure(name: &str, e: &FreshbooksError) -> String {
    let reconnect = format!("`ml-connector connect freshbooks --name {name}`");
    match e {
        FreshbooksError::Token(TokenError::Broken { message, .. }) => {
            format!("expired, and the refresh was refused ({message}): reconnect with {reconnect}")
        }
        FreshbooksError::Token(TokenError::Misconfigured { message, .. }) => {
            format!("token cannot be refreshed ({message}): reconnect with {reconnect}")
        }
        FreshbooksError::Token(t) if t.is_transient() => {
            format!("refresh failed for now ({t}); the poller/worker retries it")
        }
        e if e.is_unauthorized() => format!("token refused ({e}): reconnect with {reconnect}"),
        e if e.is_transient() => format!("FreshBooks unreachable or failing for now: {e}"),
        e => e.to_string(),
    }
}

/// Why a Mailchimp check failed. Mailchimp answers a key used at the wrong data centre with
/// 401/403 and a detail mentioning the datacenter (docs/vendors/mailchimp.md §1); a made-up data centre
/// does not resolve at all.
fn mailchimp_failure(dc: &str, e: &MailchimpError) -> String {
    match e {
        MailchimpError::Api { status, detail, .. }
            if (*status == 401 || *status == 403)
                && detail.to_ascii_lowercase().contains("datacenter") =>
        {
            format!(
                "key refused: invalid, or not for data centre `{dc}` (HTTP {status}: {detail}); reconnect"
            )
        }
        MailchimpError::Api {
            status: 401 | 403, ..
        } => format!("key or token refused ({e}): reconnect"),
        MailchimpError::Transport(_) => {
            format!("cannot reach data centre `{dc}` ({e}); is the key's `-{dc}` suffix right?")
        }
        e => e.to_string(),
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

    #[test]
    fn quickbooks_refusals_name_the_fix_and_the_other_environment() {
        let refused = QuickbooksError::Fault {
            status: 401,
            code: Some("3200".into()),
            message: "AuthenticationFailed".into(),
            detail: None,
            intuit_tid: Some("tid-1".into()),
            retry_after: None,
        };
        let m = quickbooks_failure("qb", Environment::Production, "123", &refused);
        assert!(
            m.contains("at the production API")
                && m.contains("--name qb --environment sandbox")
                && m.contains("tid-1"),
            "{m}"
        );
        let broken = QuickbooksError::Token(TokenError::Broken {
            name: "qb".into(),
            vendor: "QuickBooks",
            message: "invalid_grant".into(),
        });
        let m = quickbooks_failure("qb", Environment::Sandbox, "123", &broken);
        assert!(
            m.contains("invalid_grant") && m.contains("--name qb --environment sandbox"),
            "{m}"
        );
        let marker = mlc::tokens::NeedsReconnect {
            since: Some("2026-03-02T10:00:00Z".into()),
            reason: Some("invalid_grant".into()),
        };
        let m = needs_reconnect("qb", Environment::Production, &marker);
        assert!(
            m.starts_with("needs reconnect since 2026-03-02T10:00:00Z (invalid_grant)")
                && m.contains("events wait in the queue")
                && m.contains("--environment production"),
            "{m}"
        );
    }

    #[test]
    fn wrong_data_centre_is_named() {
        let e = MailchimpError::Api {
            status: 401,
            title: "API Key Invalid".into(),
            detail:
                "Your API key may be invalid, or you've attempted to access the wrong datacenter."
                    .into(),
            request_id: None,
            retry_after: None,
            fields: vec![],
        };
        assert!(mailchimp_failure("us9", &e).contains("not for data centre `us9`"));
    }
}
