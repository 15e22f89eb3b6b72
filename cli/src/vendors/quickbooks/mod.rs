//! QuickBooks Online in the operator command: `connect quickbooks` (OAuth approval, the
//! company's realm id and environment) and `ping` (the company's name through the workers'
//! client). Its webhook endpoint is registered by hand (its spec says how).

pub(crate) mod oauth;

use async_trait::async_trait;
use mlc::flows::clients::VendorClients;
use mlc::ports::secret_names;
use mlc::tokens::TokenError;
use mlc::vendor::Vendor;
use mlc::vendors::quickbooks::QuickbooksError;
use mlc::vendors::quickbooks::credentials::{Environment, QuickbooksCredentials};
use mlc::vendors::quickbooks::oauth::QuickbooksOauth;
use secrecy::{ExposeSecret, SecretString};

use super::VendorCli;
use crate::onboarding::connect::{ConnectArgs, authorize_url, client_id, run_flow};
use crate::onboarding::input;
use crate::onboarding::ping::{Checker, Outcome, Wanted};
use oauth::QuickbooksProvider;

/// QuickBooks' hooks.
pub(super) struct Hooks;

#[async_trait]
impl VendorCli for Hooks {
    fn vendor(&self) -> Vendor {
        Vendor::Quickbooks
    }

    fn has_environments(&self) -> bool {
        true
    }

    async fn connect(
        &self,
        args: &ConnectArgs,
        _applied: &mlc::connections::ConnectionSet,
    ) -> anyhow::Result<SecretString> {
        connect(args).await
    }

    async fn ping(
        &self,
        checker: &Checker,
        name: &str,
        value: &SecretString,
        wanted: &Wanted,
    ) -> (Outcome, String) {
        ping(checker, name, value, wanted).await
    }
}

async fn connect(args: &ConnectArgs) -> anyhow::Result<SecretString> {
    let client_id = client_id(args, "QuickBooks", "QUICKBOOKS_CLIENT_ID")?;
    let client_secret = input::secret_line("QuickBooks client secret")?;
    let provider = QuickbooksProvider {
        authorize_url: authorize_url(args, "QUICKBOOKS_AUTHORIZE_URL", oauth::AUTHORIZE_URL),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        oauth: QuickbooksOauth::new(&args.token_url)?,
    };
    let approved = run_flow(&provider, args).await?;
    let realm_id = oauth::realm_id(approved.approval.param(oauth::REALM_PARAM))?;
    let environment = args.environment.unwrap_or_default();
    println!(
        "QuickBooks {environment} company (realm id) {realm_id}: put it in the connection as \
         `source.account` for a QuickBooks source, or `target.realm_id` for a QuickBooks target. \
         Check it with `ml-connector ping`."
    );
    // Written whole, so a reconnect also clears the token manager's `needs_reconnect` mark.
    let credentials = QuickbooksCredentials {
        access_token: approved.tokens.access_token,
        refresh_token: approved.tokens.refresh_token,
        expires_at: approved.tokens.expires_at,
        refresh_expires_at: approved.tokens.refresh_expires_at,
        client_id: Some(client_id),
        client_secret: Some(client_secret),
        redirect_uri: Some(approved.redirect_uri),
        realm_id,
        environment: environment.into(),
        needs_reconnect: None,
    };
    Ok(credentials.to_secret_json())
}

/// The company's name (`companyinfo`) through the client the workers use: its token is
/// refreshed when expired, and a refused refresh marks the set `needs_reconnect` as the
/// worker would.
async fn ping(
    checker: &Checker,
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
    let client = match checker.live.quickbooks(name).await {
        Ok(c) => c,
        Err(e) => return (Outcome::Failed, e.to_string()),
    };
    match client.company_name(&set.realm_id).await {
        Ok(company) => {
            let detail = format!(
                "company \"{company}\" (realm {}, {environment}){}",
                set.realm_id,
                checker.token_detail(name, value).await
            );
            (Outcome::Ok, detail)
        }
        Err(e) => {
            // A refused refresh has just been recorded on the set: say it that way.
            if let Ok(Some(now)) = checker.secrets.get(&secret_names::credentials(name)).await
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
