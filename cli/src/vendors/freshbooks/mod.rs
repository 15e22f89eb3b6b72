//! FreshBooks in the operator command: `connect freshbooks` (OAuth approval in a browser),
//! `ping` (the identity and the businesses it reaches) and, in `apply`, the callbacks of its
//! sources ([`callbacks`]).

mod backfill;
mod callbacks;

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use mlc::tokens::{StaticToken, TokenError, TokenSet};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::FreshbooksError;
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc::vendors::freshbooks::credentials::Credentials as FreshbooksCredentials;
use mlc::vendors::freshbooks::oauth::FreshbooksOauth;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{BackfillSource, VendorCli};
use crate::onboarding::apply::Applying;
use crate::onboarding::connect::{Approved, ConnectArgs, authorize_url, client_id, run_flow};
use crate::onboarding::input;
use crate::onboarding::oauth_listener::{self, OAuthProvider};
use crate::onboarding::ping::{Checker, Outcome, Wanted};

/// FreshBooks' hooks.
pub(super) struct Hooks;

#[async_trait]
impl VendorCli for Hooks {
    fn vendor(&self) -> Vendor {
        Vendor::Freshbooks
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

    async fn apply(&self, applying: &Applying<'_>) -> anyhow::Result<bool> {
        callbacks::apply(applying).await
    }

    fn backfill_source(&self) -> Option<&'static dyn BackfillSource> {
        Some(&backfill::Source)
    }
}

/// FreshBooks' authorize page (docs/vendors/freshbooks.md §2).
pub(crate) const FRESHBOOKS_AUTHORIZE_URL: &str = "https://auth.freshbooks.com/oauth/authorize";

/// FreshBooks' authorization-code grant.
pub(crate) struct FreshbooksProvider {
    pub authorize_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub oauth: FreshbooksOauth,
}

impl OAuthProvider for FreshbooksProvider {
    type Tokens = TokenSet;

    fn vendor(&self) -> &'static str {
        "FreshBooks"
    }

    fn authorize_url(&self, redirect_uri: &str, state: &str) -> anyhow::Result<Url> {
        oauth_listener::code_request_url(
            &self.authorize_url,
            &self.client_id,
            &[],
            redirect_uri,
            state,
        )
    }

    async fn exchange(&self, code: &SecretString, redirect_uri: &str) -> anyhow::Result<TokenSet> {
        self.oauth
            .exchange_code(
                &self.client_id,
                &self.client_secret,
                redirect_uri,
                code,
                Utc::now(),
            )
            .await
            .context("FreshBooks refused the authorization code")
    }
}

async fn connect(args: &ConnectArgs) -> anyhow::Result<SecretString> {
    let client_id = client_id(args, "FreshBooks", "FRESHBOOKS_CLIENT_ID")?;
    let client_secret = input::secret_line("FreshBooks client secret")?;
    let provider = FreshbooksProvider {
        authorize_url: authorize_url(args, "FRESHBOOKS_AUTHORIZE_URL", FRESHBOOKS_AUTHORIZE_URL),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        oauth: FreshbooksOauth::new(&args.freshbooks_api)?,
    };
    let Approved {
        tokens,
        redirect_uri,
        ..
    } = run_flow(&provider, args).await?;
    let client = FreshbooksClient::new(
        &args.freshbooks_api,
        Arc::new(StaticToken(tokens.access_token.clone())),
        &args.name,
    )?;
    let identity = client
        .identity()
        .await
        .context("reading the approved FreshBooks identity")?;
    println!(
        "FreshBooks identity {}{}; businesses (use the account id as the connection's source account):",
        identity.identity_id,
        identity
            .email
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    if identity.businesses.is_empty() {
        println!("  (none: this user belongs to no business)");
    }
    for b in &identity.businesses {
        println!(
            "  account {:<10} business {:<8} {}",
            b.account_id, b.business_id, b.name
        );
    }
    let credentials = FreshbooksCredentials {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens.expires_at,
        client_id: Some(client_id),
        client_secret: Some(client_secret),
        redirect_uri: Some(redirect_uri),
    };
    Ok(credentials.to_secret_json())
}

/// `GET /auth/api/v1/users/me` through the token manager, so an expired access token is
/// refreshed exactly as the poller and the workers would (single-flight, the rotated pair
/// stored before use).
async fn ping(
    checker: &Checker,
    name: &str,
    value: &SecretString,
    wanted: &Wanted,
) -> (Outcome, String) {
    if let Err(e) = FreshbooksCredentials::from_json(value.expose_secret()) {
        return (Outcome::Failed, format!("{e}: reconnect"));
    }
    let client = match FreshbooksClient::new(
        &checker.config.freshbooks_api_base,
        checker.live.freshbooks_tokens(),
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
    detail.push_str(&checker.token_detail(name, value).await);
    (Outcome::Ok, detail)
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

#[cfg(test)]
mod tests {
    use mlc::vendors::freshbooks::client::DEFAULT_BASE_URL;

    use super::*;

    #[test]
    fn the_authorize_url_carries_what_freshbooks_needs() {
        let p = FreshbooksProvider {
            authorize_url: FRESHBOOKS_AUTHORIZE_URL.into(),
            client_id: "cid".into(),
            client_secret: SecretString::from("s".to_string()),
            oauth: FreshbooksOauth::new(DEFAULT_BASE_URL).unwrap(),
        };
        let url = p
            .authorize_url("http://127.0.0.1:8976/callback", "st")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://auth.freshbooks.com/oauth/authorize?client_id=cid&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&state=st"
        );
    }
}
