//! `ml-connector connect <vendor> --name <set>`: obtains a vendor's credentials (OAuth approval
//! in a browser, or keys read from a prompt / standard input) and stores them as the secret
//! `credentials/<set>`.

use std::time::Duration;

use anyhow::{Context, bail};
use mlc::ports::secret_names;
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::client::DEFAULT_BASE_URL;
use mlc::vendors::mailchimp::client::OAUTH_METADATA_URL;
use mlc::vendors::quickbooks::oauth::TOKEN_URL as QUICKBOOKS_TOKEN_URL;
use mlc::vendors::spec::CredentialKind;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use url::Url;

use super::input;
use super::oauth_listener::{self, Approval, OAuthProvider};
use crate::target::TargetArgs;
use crate::vendors::{self, quickbooks_environment as quickbooks};

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
  hubspot     {\"kind\": \"private_app\", \"access_token\": \"pat-…\", \"portal_id\": \"123\"}
              (a private app's token; kind service_key for a service key).
  marketo     {\"client_id\": \"…\", \"client_secret\": \"…\"} (a LaunchPoint API-only user).

Examples:
  ml-connector connect freshbooks --name freshbooks-acme --client-id abc123
  ml-connector connect quickbooks --name quickbooks-acme --client-id ABcd123
  ml-connector connect quickbooks --name quickbooks-test --client-id ABcd123 --environment sandbox
  ml-connector connect mailchimp --name mailchimp-acme < mailchimp-key.txt")]
pub(crate) struct ConnectArgs {
    /// The vendor: freshbooks, quickbooks, mailchimp, stripe, hubspot or marketo.
    pub(crate) vendor: Vendor,
    /// Name of the credential set (stored as `credentials/<name>`; connections files refer to it).
    #[arg(long)]
    pub(crate) name: String,
    /// The OAuth app's client id (FreshBooks, QuickBooks). Default: $FRESHBOOKS_CLIENT_ID or
    /// $QUICKBOOKS_CLIENT_ID, by vendor.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// Loopback port the OAuth redirect comes back to (`http://127.0.0.1:<port>/callback`).
    #[arg(long, default_value_t = 8976)]
    pub(crate) port: u16,
    /// The redirect URI registered on the OAuth app, if not `http://127.0.0.1:<port>/callback`.
    /// A loopback `http` one with a port is listened on; any other is pasted back.
    #[arg(long)]
    pub(crate) redirect_uri: Option<String>,
    /// Print the approval address without trying to open a browser.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Seconds to wait for the approval in the browser.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout: u64,
    /// The vendor's authorize page (a sandbox's, e.g. `http://127.0.0.1:<port>/oauth/authorize`).
    /// Default: $FRESHBOOKS_AUTHORIZE_URL / $QUICKBOOKS_AUTHORIZE_URL, else FreshBooks' or
    /// Intuit's (https://appcenter.intuit.com/connect/oauth2).
    #[arg(long)]
    pub(crate) authorize_url: Option<String>,
    /// QuickBooks: the company's environment, which picks the Accounting API host; a sandbox
    /// company's tokens only work against the sandbox host. Default: production.
    #[arg(long, value_enum, value_name = "ENV")]
    pub(crate) environment: Option<quickbooks::Environment>,
    /// QuickBooks: Intuit's token endpoint (FreshBooks' is under --freshbooks-api).
    #[arg(long, env = "QUICKBOOKS_TOKEN_URL", default_value = QUICKBOOKS_TOKEN_URL)]
    pub(crate) token_url: String,
    /// FreshBooks API base (token endpoint and identity).
    #[arg(long, env = "FRESHBOOKS_API_BASE", default_value = DEFAULT_BASE_URL)]
    pub(crate) freshbooks_api: String,
    /// Mailchimp: store an OAuth access token instead of an API key.
    #[arg(long)]
    pub(crate) oauth: bool,
    /// Mailchimp API base including `/3.0`; default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    pub(crate) mailchimp_api: Option<String>,
    /// Mailchimp's OAuth metadata endpoint.
    #[arg(long, env = "MAILCHIMP_OAUTH_METADATA_URL", default_value = OAUTH_METADATA_URL)]
    pub(crate) mailchimp_metadata_url: String,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

pub(crate) async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let hooks = vendors::hooks(args.vendor);
    if args.environment.is_some() && !hooks.is_some_and(|h| h.has_environments()) {
        bail!(
            "--environment applies to QuickBooks only, not {}",
            args.vendor
        );
    }
    let spec = mlc::vendors::spec(args.vendor);
    let value = match (hooks, spec.credentials) {
        (Some(hooks), _) => hooks.connect(&args).await?,
        (None, CredentialKind::Keys(fields)) => key_fields(spec.display, fields)?,
        (None, _) => bail!(
            "this build cannot obtain {} credentials; store them with `ml-connector secrets put {}`",
            spec.display,
            secret_names::credentials(&args.name)
        ),
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

/// What a finished authorization-code flow gives.
pub(crate) struct Approved<T> {
    pub(crate) tokens: T,
    /// The redirect URI used (the refresh needs it again for some vendors).
    pub(crate) redirect_uri: String,
    pub(crate) approval: Approval,
}

/// The OAuth app's client id: `--client-id`, else the vendor's environment variable.
pub(crate) fn client_id(args: &ConnectArgs, vendor: &str, env: &str) -> anyhow::Result<String> {
    args.client_id
        .clone()
        .or_else(|| std::env::var(env).ok())
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("--client-id (or {env}) is required: the {vendor} app's client id")
        })
}

/// The authorize page: `--authorize-url`, else the vendor's environment variable, else its own.
pub(crate) fn authorize_url(args: &ConnectArgs, env: &str, default: &str) -> String {
    args.authorize_url
        .clone()
        .or_else(|| std::env::var(env).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| default.to_string())
}

/// Listener (or paste), approval, exchange: the generic part of every authorization-code
/// connect.
pub(crate) async fn run_flow<P: OAuthProvider>(
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
}
