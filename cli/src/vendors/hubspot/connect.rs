//! `connect hubspot`: the three ways into a portal (docs/vendors/hubspot.md §0, §1) — an
//! existing legacy private app's token, a service key (both pasted at a hidden prompt), or an
//! OAuth app approved in the browser — stored as the credential JSON of
//! `mlc::vendors::hubspot::credentials`, with the portal the token reaches checked against the
//! connections' `portal_id`.

use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use mlc::connections::ConnectionSet;
use mlc::tokens::{RefreshError, TokenSet};
use mlc::vendor::Vendor;
use mlc::vendors::hubspot::HubspotApi;
use mlc::vendors::hubspot::HubspotCredentials;
use mlc::vendors::hubspot::client::{ClientOptions, HubspotClient};
use mlc::vendors::hubspot::credentials::{ApiVersion, AuthKind, OauthApp};
use mlc::vendors::hubspot::oauth::HubspotOauth;
use mlc::vendors::hubspot::spec::{SCOPES, missing_scopes};
use mlc::vendors::hubspot::target::HubspotTarget;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::onboarding::connect::{ConnectArgs, authorize_url, client_id, run_flow};
use crate::onboarding::input;
use crate::onboarding::oauth_listener::{self, OAuthProvider};

/// How `connect hubspot` gets into the portal (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Auth {
    /// An existing legacy private app's access token (`pat-…`); new ones can no longer be
    /// created.
    PrivateApp,
    /// A service key (Settings > Integrations > Service Keys).
    ServiceKey,
    /// A HubSpot OAuth app, approved in the browser (--client-id, then its secret).
    Oauth,
}

/// HubSpot's authorize page (docs/vendors/hubspot.md §1).
pub(crate) const AUTHORIZE_URL: &str = "https://app.hubspot.com/oauth/authorize";

/// The scopes as the authorize page takes them: space-separated.
pub(crate) fn scope_param() -> String {
    SCOPES.join(" ")
}

/// HubSpot's authorization-code grant.
pub(crate) struct HubspotProvider {
    pub authorize_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub oauth: HubspotOauth,
}

impl OAuthProvider for HubspotProvider {
    type Tokens = TokenSet;

    fn vendor(&self) -> &'static str {
        "HubSpot"
    }

    fn authorize_url(&self, redirect_uri: &str, state: &str) -> anyhow::Result<Url> {
        oauth_listener::code_request_url(
            &self.authorize_url,
            &self.client_id,
            &[("scope", &scope_param())],
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
            .map_err(|e| match e {
                RefreshError::Refused(why) => anyhow!(
                    "HubSpot refused the authorization code: {why}. The code may have expired or \
                     been used, or the client id/secret or redirect URL do not match the app's; \
                     run the command again"
                ),
                other => anyhow::Error::new(other).context("exchanging the HubSpot code"),
            })
    }
}

/// The portal ids the set must reach: `--portal-id`, and the `portal_id` of every applied
/// connection writing to HubSpot with this set.
pub(crate) fn expected_portals(args: &ConnectArgs, applied: &ConnectionSet) -> Vec<String> {
    let mut out: Vec<String> = args.portal_id.iter().cloned().collect();
    for c in applied.connections.values() {
        if c.target.vendor == Vendor::Hubspot
            && c.target.credentials == args.name
            && let Ok(t) = HubspotTarget::of(&c.target)
            && !out.iter().any(|p| p == t.portal_id)
        {
            out.push(t.portal_id.to_string());
        }
    }
    out
}

/// Whether the token's portal is every one the connections name; the error names both ids.
pub(crate) fn check_portal(hub_id: u64, expected: &[String]) -> anyhow::Result<()> {
    let others: Vec<&str> = expected
        .iter()
        .map(|p| p.trim())
        .filter(|p| p.parse::<u64>().ok() != Some(hub_id))
        .collect();
    if !others.is_empty() {
        bail!(
            "the token is for HubSpot portal {hub_id}, but the connection names portal {}: \
             connect with a token of portal {} (or fix `portal_id` in the connections file)",
            others.join(", "),
            others.join(", ")
        );
    }
    Ok(())
}

pub(crate) async fn connect(
    args: &ConnectArgs,
    applied: &ConnectionSet,
) -> anyhow::Result<SecretString> {
    let expected = expected_portals(args, applied);
    let auth = args.auth.unwrap_or(if args.oauth {
        Auth::Oauth
    } else {
        Auth::PrivateApp
    });
    let placeholder = expected
        .first()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(1);
    let mut set = match auth {
        Auth::PrivateApp => static_set(
            AuthKind::PrivateApp,
            input::secret("HubSpot private app access token (pat-…)")?,
            placeholder,
        ),
        Auth::ServiceKey => static_set(
            AuthKind::ServiceKey,
            input::secret("HubSpot service key")?,
            placeholder,
        ),
        Auth::Oauth => oauth_set(args, placeholder).await?,
    };
    let client = HubspotClient::with_static_token(&set, &args.name, &client_options(args))
        .map_err(|e| anyhow!("{e}"))?;
    let info = client
        .token_info()
        .await
        .map_err(|e| anyhow!("HubSpot refused the token: {e}"))?;
    check_portal(info.hub_id, &expected)?;
    set.portal_id = info.hub_id;
    // The portal's zone lets the daily limit's hold end at its midnight without a lookup; a
    // token without the `oauth` scope may not read it, which costs nothing here.
    let client = HubspotClient::with_static_token(&set, &args.name, &client_options(args))
        .map_err(|e| anyhow!("{e}"))?;
    if let Ok(details) = client.account().await {
        set.time_zone = details.time_zone.parse().ok();
    }
    println!(
        "HubSpot portal (hub id) {}: put it in the connection as `target.portal_id`.",
        info.hub_id
    );
    let missing = missing_scopes(&info.scopes);
    if !missing.is_empty() {
        println!(
            "The token lacks {} scope(s) the connection needs: {}. {}",
            missing.len(),
            missing.join(", "),
            scope_fix(set.kind)
        );
    }
    println!(
        "Then `ml-connector apply` creates the properties, and `ml-connector ping` checks the set."
    );
    Ok(set.to_secret_json())
}

/// What adds missing scopes, by kind of set.
pub(crate) fn scope_fix(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::PrivateApp => {
            "Add them in HubSpot (Settings > Integrations > Private Apps > the app > Scopes) and \
             commit; the token stays the same"
        }
        AuthKind::ServiceKey => {
            "Add them to the service key in HubSpot (Settings > Integrations > Service Keys)"
        }
        AuthKind::OAuth => {
            "Add them to the OAuth app's scopes if needed, then run `ml-connector connect hubspot \
             --auth oauth` again to approve them"
        }
    }
}

fn client_options(args: &ConnectArgs) -> ClientOptions {
    ClientOptions {
        api_base: args.hubspot_api.clone(),
        prefetch_time_zone: false,
        ..ClientOptions::default()
    }
}

fn static_set(kind: AuthKind, token: SecretString, portal_id: u64) -> HubspotCredentials {
    HubspotCredentials {
        kind,
        access_token: SecretString::from(token.expose_secret().trim().to_string()),
        portal_id,
        api_version: ApiVersion::V3,
        tier: None,
        time_zone: None,
        oauth: None,
        needs_reconnect: None,
    }
}

/// The OAuth app's approval in the browser, exchanged at HubSpot's token endpoint (under the
/// API base, so a sandbox serves both).
async fn oauth_set(args: &ConnectArgs, portal_id: u64) -> anyhow::Result<HubspotCredentials> {
    let client_id = client_id(args, "HubSpot", "HUBSPOT_CLIENT_ID")?;
    let client_secret = input::secret_line("HubSpot client secret")?;
    let oauth = match &args.hubspot_api {
        Some(base) => HubspotOauth::for_api_base(base),
        None => HubspotOauth::new(mlc::vendors::hubspot::oauth::TOKEN_URL),
    }
    .context("HubSpot's token endpoint")?;
    let provider = HubspotProvider {
        authorize_url: authorize_url(args, "HUBSPOT_AUTHORIZE_URL", AUTHORIZE_URL),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        oauth,
    };
    let approved = run_flow(&provider, args).await?;
    Ok(HubspotCredentials {
        kind: AuthKind::OAuth,
        access_token: approved.tokens.access_token,
        portal_id,
        api_version: ApiVersion::V3,
        tier: None,
        time_zone: None,
        oauth: Some(OauthApp {
            client_id,
            client_secret,
            refresh_token: approved.tokens.refresh_token,
            expires_at: approved.tokens.expires_at,
            redirect_uri: Some(approved.redirect_uri),
        }),
        needs_reconnect: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_of_another_portal_names_both() {
        assert!(check_portal(62515, &["62515".into()]).is_ok());
        assert!(check_portal(62515, &[]).is_ok());
        let e = check_portal(62515, &["62515".into(), "777".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("portal 62515") && e.contains("portal 777"),
            "{e}"
        );
    }

    #[test]
    fn the_authorize_url_asks_for_every_scope() {
        let p = HubspotProvider {
            authorize_url: AUTHORIZE_URL.into(),
            client_id: "cid".into(),
            client_secret: SecretString::from("s".to_string()),
            oauth: HubspotOauth::new(mlc::vendors::hubspot::oauth::TOKEN_URL).unwrap(),
        };
        let url = p
            .authorize_url("http://127.0.0.1:1/callback", "st")
            .unwrap();
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(
            url.as_str()
                .starts_with("https://app.hubspot.com/oauth/authorize?")
        );
        let scope = q.iter().find(|(k, _)| k == "scope").unwrap().1.clone();
        assert_eq!(scope.split(' ').collect::<Vec<_>>(), SCOPES);
        assert!(q.contains(&("state".into(), "st".into())));
        assert!(q.contains(&("redirect_uri".into(), "http://127.0.0.1:1/callback".into())));
    }
}
