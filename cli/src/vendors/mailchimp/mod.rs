//! Mailchimp in the operator command: `connect mailchimp` (an API key, or an OAuth token and
//! its data centre), `ping` (`GET /ping`) and, in `apply`, the list webhooks of its sources
//! ([`webhooks`]).

mod backfill;
pub(crate) mod webhooks;

use anyhow::Context;
use async_trait::async_trait;
use mlc::vendor::Vendor;
use mlc::vendors::mailchimp::MailchimpError;
use mlc::vendors::mailchimp::client::{
    ClientOptions, DEFAULT_TIMEOUT, MailchimpClient, oauth_metadata_at,
};
use mlc::vendors::mailchimp::credentials::Credentials as MailchimpCredentials;
use secrecy::{ExposeSecret, SecretString};

use super::{BackfillTarget, VendorCli};
use crate::onboarding::apply::Applying;
use crate::onboarding::connect::ConnectArgs;
use crate::onboarding::input;
use crate::onboarding::ping::{Checker, Outcome, Wanted};

/// Mailchimp's hooks.
pub(super) struct Hooks;

#[async_trait]
impl VendorCli for Hooks {
    fn vendor(&self) -> Vendor {
        Vendor::Mailchimp
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
        _name: &str,
        value: &SecretString,
        _wanted: &Wanted,
    ) -> (Outcome, String) {
        ping(checker, value.expose_secret()).await
    }

    async fn apply(&self, applying: &Applying<'_>) -> anyhow::Result<bool> {
        webhooks::apply(applying).await
    }

    fn backfill_target(&self) -> Option<&'static dyn BackfillTarget> {
        Some(&backfill::Target)
    }
}

async fn connect(args: &ConnectArgs) -> anyhow::Result<SecretString> {
    let options = ClientOptions {
        base_url: args.mailchimp_api.clone(),
        ..ClientOptions::default()
    };
    if args.oauth {
        let token = input::secret("Mailchimp OAuth access token")?;
        let meta = oauth_metadata_at(&args.mailchimp_metadata_url, &token, DEFAULT_TIMEOUT)
            .await
            .context("reading the token's OAuth metadata from Mailchimp")?;
        let credentials = MailchimpCredentials::OAuth {
            token: token.clone(),
            dc: Some(meta.dc.clone()),
            api_endpoint: Some(meta.api_endpoint.clone()),
        };
        MailchimpClient::new(&credentials, &options)?
            .ping()
            .await
            .context("Mailchimp refused the token")?;
        println!(
            "Mailchimp account {} in data centre {}",
            meta.accountname.as_deref().unwrap_or("(unnamed)"),
            meta.dc
        );
        let json = serde_json::json!({
            "access_token": token.expose_secret(),
            "dc": meta.dc,
            "api_endpoint": meta.api_endpoint,
        });
        return Ok(SecretString::from(json.to_string()));
    }
    let key = input::secret("Mailchimp API key")?;
    let credentials = MailchimpCredentials::from_api_key(key.clone())?;
    let dc = credentials.dc().unwrap_or_default().to_string();
    MailchimpClient::new(&credentials, &options)?
        .ping()
        .await
        .with_context(|| format!("Mailchimp refused the key (data centre `{dc}`)"))?;
    println!("Mailchimp API key works; data centre {dc}");
    let json = serde_json::json!({ "api_key": key.expose_secret().trim() });
    Ok(SecretString::from(json.to_string()))
}

/// `GET /ping`.
async fn ping(checker: &Checker, value: &str) -> (Outcome, String) {
    let credentials = match MailchimpCredentials::from_json(value) {
        Ok(c) => c,
        Err(e) => return (Outcome::Failed, format!("{e}: reconnect")),
    };
    let dc = credentials.dc().unwrap_or("(unknown)").to_string();
    let client = match MailchimpClient::new(&credentials, &checker.config.mailchimp) {
        Ok(c) => c,
        Err(e) => return (Outcome::Failed, e.to_string()),
    };
    match client.ping().await {
        Ok(()) => (Outcome::Ok, format!("data centre {dc}")),
        Err(e) => (Outcome::Failed, mailchimp_failure(&dc, &e)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
