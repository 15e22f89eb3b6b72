//! `ml-connector connect <vendor> --name <set>`: obtains a vendor's credentials (OAuth approval
//! in a browser, or keys read from a prompt / standard input) and stores them as the secret
//! `credentials/<set>`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use mlc::ports::secret_names;
use mlc::tokens::{StaticToken, TokenSet};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::client::{DEFAULT_BASE_URL, FreshbooksClient};
use mlc::vendors::freshbooks::credentials::Credentials as FreshbooksCredentials;
use mlc::vendors::freshbooks::oauth::FreshbooksOauth;
use mlc::vendors::mailchimp::client::{
    ClientOptions, DEFAULT_TIMEOUT, MailchimpClient, OAUTH_METADATA_URL, oauth_metadata_at,
};
use mlc::vendors::mailchimp::credentials::Credentials as MailchimpCredentials;
use mlc::vendors::quickbooks::credentials::QuickbooksCredentials;
use mlc::vendors::quickbooks::oauth::{QuickbooksOauth, TOKEN_URL as QUICKBOOKS_TOKEN_URL};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use url::Url;

use super::input;
use super::oauth_listener::{self, Approval, OAuthProvider};
use super::quickbooks::{self, QuickbooksProvider};
use crate::target::TargetArgs;

/// FreshBooks' authorize page (docs/vendors/freshbooks.md §2).
pub(crate) const FRESHBOOKS_AUTHORIZE_URL: &str = "https://auth.freshbooks.com/oauth/authorize";

#[derive(clap::Args)]
#[command(after_help = "\
Credentials by vendor (secrets are prompted for, or read from standard input when it is not a
terminal; never taken from the command line):
  freshbooks  OAuth in a browser: --client-id, then the app's client secret. The app's
              registered redirect URI is http://127.0.0.1:<port>/callback (answered here), or
              with --redirect-uri any other (e.g. https, as FreshBooks may require): then paste
              the address the browser lands on. Piped input: the secret on the first line, the
              pasted address on the next.
  quickbooks  OAuth in a browser, as for freshbooks (--client-id or QUICKBOOKS_CLIENT_ID,
              then the client secret; redirect URI and pasting likewise). The approved
              company's id (realmId) is stored as realm_id and printed: put it in the
              connection as `source.account` (a QuickBooks source) or `target.realm_id`.
              --environment sandbox for a developer sandbox company (default production).
  mailchimp   an API key `<key>-<dc>` (checked with /ping), or with --oauth an OAuth access
              token (its data centre read from Mailchimp's OAuth metadata).
  stripe      JSON on stdin or prompts: {\"secret_key\": \"rk_live_…\"} (a restricted key).
  hubspot     {\"access_token\": \"pat-…\"} (a private app's token).
  marketo     {\"client_id\": \"…\", \"client_secret\": \"…\"} (a LaunchPoint API-only user).

Examples:
  ml-connector connect freshbooks --name freshbooks-acme --client-id abc123
  ml-connector connect quickbooks --name quickbooks-acme --client-id ABcd123
  ml-connector connect quickbooks --name quickbooks-test --client-id ABcd123 --environment sandbox
  ml-connector connect mailchimp --name mailchimp-acme < mailchimp-key.txt")]
pub(crate) struct ConnectArgs {
    /// The vendor: freshbooks, quickbooks, mailchimp, stripe, hubspot or marketo.
    vendor: Vendor,
    /// Name of the credential set (stored as `credentials/<name>`; connections files refer to it).
    #[arg(long)]
    name: String,
    /// The OAuth app's client id (FreshBooks, QuickBooks). Default: $FRESHBOOKS_CLIENT_ID or
    /// $QUICKBOOKS_CLIENT_ID, by vendor.
    #[arg(long)]
    client_id: Option<String>,
    /// Loopback port the OAuth redirect comes back to (`http://127.0.0.1:<port>/callback`).
    #[arg(long, default_value_t = 8976)]
    port: u16,
    /// The redirect URI registered on the OAuth app, if not `http://127.0.0.1:<port>/callback`.
    /// A loopback `http` one with a port is listened on; any other is pasted back.
    #[arg(long)]
    redirect_uri: Option<String>,
    /// Print the approval address without trying to open a browser.
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the approval in the browser.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The vendor's authorize page (a sandbox's, e.g. `http://127.0.0.1:<port>/oauth/authorize`).
    /// Default: $FRESHBOOKS_AUTHORIZE_URL / $QUICKBOOKS_AUTHORIZE_URL, else FreshBooks' or
    /// Intuit's (https://appcenter.intuit.com/connect/oauth2).
    #[arg(long)]
    authorize_url: Option<String>,
    /// QuickBooks: the company's environment, which picks the Accounting API host; a sandbox
    /// company's tokens only work against the sandbox host. Default: production.
    #[arg(long, value_enum, value_name = "ENV")]
    environment: Option<quickbooks::Environment>,
    /// QuickBooks: Intuit's token endpoint (FreshBooks' is under --freshbooks-api).
    #[arg(long, env = "QUICKBOOKS_TOKEN_URL", default_value = QUICKBOOKS_TOKEN_URL)]
    token_url: String,
    /// FreshBooks API base (token endpoint and identity).
    #[arg(long, env = "FRESHBOOKS_API_BASE", default_value = DEFAULT_BASE_URL)]
    freshbooks_api: String,
    /// Mailchimp: store an OAuth access token instead of an API key.
    #[arg(long)]
    oauth: bool,
    /// Mailchimp API base including `/3.0`; default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    mailchimp_api: Option<String>,
    /// Mailchimp's OAuth metadata endpoint.
    #[arg(long, env = "MAILCHIMP_OAUTH_METADATA_URL", default_value = OAUTH_METADATA_URL)]
    mailchimp_metadata_url: String,
    #[command(flatten)]
    target: TargetArgs,
}

pub(crate) async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    if args.environment.is_some() && args.vendor != Vendor::Quickbooks {
        bail!("--environment applies to QuickBooks only");
    }
    let value = match args.vendor {
        Vendor::Freshbooks => connect_freshbooks(&args).await?,
        Vendor::Quickbooks => connect_quickbooks(&args).await?,
        Vendor::Mailchimp => connect_mailchimp(&args).await?,
        Vendor::Stripe => key_fields("Stripe", &["secret_key"])?,
        Vendor::Hubspot => key_fields("HubSpot", &["access_token"])?,
        Vendor::Marketo => key_fields("Marketo", &["client_id", "client_secret"])?,
    };
    let ports = super::open(&args.target).await?;
    let secrets = ports.secrets;
    let name = secret_names::credentials(&args.name);
    let existed = secrets.get(&name).await?.is_some();
    secrets
        .put(&name, &value)
        .await
        .with_context(|| format!("storing secret `{name}`"))?;
    println!(
        "{} credential set `{}` {} (secret `{name}` in the {})",
        args.vendor,
        args.name,
        if existed { "replaced" } else { "stored" },
        ports.place
    );
    Ok(())
}

/// Credential-set names become secret names: a safe alphabet only.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        bail!("--name must be letters, digits, `-`, `_` or `.` (got `{name}`)");
    }
    Ok(())
}

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

/// What a finished authorization-code flow gives.
struct Approved<T> {
    tokens: T,
    /// The redirect URI used (the refresh needs it again for some vendors).
    redirect_uri: String,
    approval: Approval,
}

/// The OAuth app's client id: `--client-id`, else the vendor's environment variable.
fn client_id(args: &ConnectArgs, vendor: &str, env: &str) -> anyhow::Result<String> {
    args.client_id
        .clone()
        .or_else(|| std::env::var(env).ok())
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("--client-id (or {env}) is required: the {vendor} app's client id")
        })
}

/// The authorize page: `--authorize-url`, else the vendor's environment variable, else its own.
fn authorize_url(args: &ConnectArgs, env: &str, default: &str) -> String {
    args.authorize_url
        .clone()
        .or_else(|| std::env::var(env).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| default.to_string())
}

/// Listener (or paste), approval, exchange: the generic part of every authorization-code
/// connect.
async fn run_flow<P: OAuthProvider>(
    provider: &P,
    args: &ConnectArgs,
) -> anyhow::Result<Approved<P::Tokens>> {
    let redirect_uri = args
        .redirect_uri
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/callback", args.port));
    let parsed = Url::parse(&redirect_uri)
        .with_context(|| format!("--redirect-uri `{redirect_uri}` is not a URL"))?;
    let back = match oauth_listener::loopback(&parsed) {
        Some((port, path)) => {
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| {
                    format!("listening on 127.0.0.1:{port} for the OAuth redirect (--port)")
                })?;
            oauth_listener::Return::Listen { listener, path }
        }
        None => oauth_listener::Return::Paste,
    };
    let state = oauth_listener::new_state();
    let url = provider.authorize_url(&redirect_uri, &state)?;
    let approval = oauth_listener::authorize(
        back,
        &url,
        &state,
        !args.no_browser,
        Duration::from_secs(args.timeout),
    )
    .await?;
    // Before the code is spent: without these the tokens would be of no use.
    for name in provider.required_params() {
        if approval.param(name).is_none_or(|v| v.trim().is_empty()) {
            bail!(
                "the {} redirect carries no `{name}`; run the command again",
                provider.vendor()
            );
        }
    }
    let tokens = provider.exchange(&approval.code, &redirect_uri).await?;
    eprintln!("{} approved ml-connector.", provider.vendor());
    Ok(Approved {
        tokens,
        redirect_uri,
        approval,
    })
}

async fn connect_freshbooks(args: &ConnectArgs) -> anyhow::Result<SecretString> {
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

async fn connect_quickbooks(args: &ConnectArgs) -> anyhow::Result<SecretString> {
    let client_id = client_id(args, "QuickBooks", "QUICKBOOKS_CLIENT_ID")?;
    let client_secret = input::secret_line("QuickBooks client secret")?;
    let provider = QuickbooksProvider {
        authorize_url: authorize_url(args, "QUICKBOOKS_AUTHORIZE_URL", quickbooks::AUTHORIZE_URL),
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        oauth: QuickbooksOauth::new(&args.token_url)?,
    };
    let approved = run_flow(&provider, args).await?;
    let realm_id = quickbooks::realm_id(approved.approval.param(quickbooks::REALM_PARAM))?;
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

async fn connect_mailchimp(args: &ConnectArgs) -> anyhow::Result<SecretString> {
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

/// Vendors whose credentials are a few fields: a JSON object on standard input, or one prompt
/// per field. Every field must be a non-empty string.
fn key_fields(vendor: &str, fields: &[&str]) -> anyhow::Result<SecretString> {
    let mut map = serde_json::Map::new();
    if input::interactive() {
        for field in fields {
            let value = input::secret(&format!("{vendor} {field}"))?;
            map.insert(field.to_string(), value.expose_secret().to_string().into());
        }
    } else {
        let raw = input::read_stdin(&format!("{vendor} credentials (JSON)"))?;
        // serde's messages can quote the input; say only where it failed.
        let value: serde_json::Value =
            serde_json::from_str(raw.expose_secret()).map_err(|e| {
                anyhow::anyhow!(
                    "{vendor} credentials on standard input are not JSON (line {}, column {}); expected {{{}}}",
                    e.line(),
                    e.column(),
                    fields.iter().map(|f| format!("\"{f}\": \"…\"")).collect::<Vec<_>>().join(", ")
                )
            })?;
        let Some(object) = value.as_object() else {
            bail!("{vendor} credentials must be a JSON object");
        };
        for field in fields {
            match object.get(*field).and_then(|v| v.as_str()).map(str::trim) {
                Some(v) if !v.is_empty() => {
                    map.insert(field.to_string(), v.into());
                }
                _ => bail!("{vendor} credentials need a non-empty string `{field}`"),
            }
        }
    }
    Ok(SecretString::from(
        serde_json::Value::Object(map).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("freshbooks-acme_1.x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
    }

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
