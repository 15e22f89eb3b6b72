//! QuickBooks Online's authorization-code grant (docs/vendors/quickbooks.md §2) for `connect quickbooks`:
//! Intuit's authorize page, its token endpoint with HTTP Basic client authentication, and the
//! company id (`realmId`) that comes back on the redirect beside the code.

use anyhow::{anyhow, bail};
use chrono::Utc;
use mlc::tokens::{RefreshError, TokenSet};
use mlc::vendors::quickbooks::credentials::Environment as StoredEnvironment;
use mlc::vendors::quickbooks::oauth::QuickbooksOauth;
use secrecy::SecretString;
use url::Url;

use crate::onboarding::oauth_listener::{self, OAuthProvider};

/// Intuit's authorize page (the same for sandbox and production companies).
pub(crate) const AUTHORIZE_URL: &str = "https://appcenter.intuit.com/connect/oauth2";

/// The scope the flows need: the Accounting API.
pub(crate) const SCOPE: &str = "com.intuit.quickbooks.accounting";

/// The redirect parameter carrying the approved company's id.
pub(crate) const REALM_PARAM: &str = "realmId";

/// Which Intuit environment the approved company lives in: it picks the Accounting API host
/// (`environment` in the credential set; the authorize page and token endpoint are the same
/// for both). A sandbox company's tokens are refused by the production host and the other way
/// round, so it must match the company that was approved.
///
/// Only `--environment`'s clap face: [`StoredEnvironment`] is the one the library reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Environment {
    /// A real company (`https://quickbooks.api.intuit.com`).
    #[default]
    Production,
    /// A developer sandbox company (`https://sandbox-quickbooks.api.intuit.com`).
    Sandbox,
}

impl From<Environment> for StoredEnvironment {
    fn from(env: Environment) -> Self {
        match env {
            Environment::Production => StoredEnvironment::Production,
            Environment::Sandbox => StoredEnvironment::Sandbox,
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        StoredEnvironment::from(*self).fmt(f)
    }
}

/// QuickBooks' authorization-code grant.
pub(crate) struct QuickbooksProvider {
    pub authorize_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub oauth: QuickbooksOauth,
}

impl OAuthProvider for QuickbooksProvider {
    type Tokens = TokenSet;

    fn vendor(&self) -> &'static str {
        "QuickBooks"
    }

    fn authorize_url(&self, redirect_uri: &str, state: &str) -> anyhow::Result<Url> {
        oauth_listener::code_request_url(
            &self.authorize_url,
            &self.client_id,
            &[("scope", SCOPE)],
            redirect_uri,
            state,
        )
    }

    fn required_params(&self) -> &'static [&'static str] {
        &[REALM_PARAM]
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
            .map_err(|e| match e {
                // The library's wording is about refresh tokens; here it is the code.
                RefreshError::Refused(why) => anyhow!(
                    "QuickBooks refused the authorization code: {why}. The code may have expired \
                     or been used, or the client id/secret or redirect URI do not match the \
                     app's; run the command again"
                ),
                other => anyhow::Error::new(other).context("exchanging the QuickBooks code"),
            })
    }
}

/// The company id from the redirect. It goes into every API URL, so only a plain token is
/// accepted (Intuit's are digits; the exact format is UNCONFIRMED, hence letters too).
pub(crate) fn realm_id(value: Option<&str>) -> anyhow::Result<String> {
    let Some(realm) = value.map(str::trim).filter(|r| !r.is_empty()) else {
        bail!("the QuickBooks redirect carries no `{REALM_PARAM}` (the company id)");
    };
    if realm.len() > 64 || !realm.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("the QuickBooks redirect's `{REALM_PARAM}` `{realm}` is not a company id");
    }
    Ok(realm.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_ids_are_plain_tokens() {
        assert_eq!(realm_id(Some("9130355 ")).unwrap(), "9130355");
        assert!(realm_id(None).is_err());
        assert!(realm_id(Some("")).is_err());
        assert!(realm_id(Some("12/../x")).is_err());
    }

    #[test]
    fn the_authorize_url_asks_for_the_accounting_scope() {
        let p = QuickbooksProvider {
            authorize_url: AUTHORIZE_URL.into(),
            client_id: "cid".into(),
            client_secret: SecretString::from("s".to_string()),
            oauth: QuickbooksOauth::new(mlc::vendors::quickbooks::oauth::TOKEN_URL).unwrap(),
        };
        let url = p
            .authorize_url("http://127.0.0.1:1/callback", "st")
            .unwrap();
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(q.contains(&("scope".into(), SCOPE.into())));
        assert!(q.contains(&("response_type".into(), "code".into())));
        assert!(q.contains(&("state".into(), "st".into())));
        assert_eq!(p.required_params(), &[REALM_PARAM]);
    }
}
