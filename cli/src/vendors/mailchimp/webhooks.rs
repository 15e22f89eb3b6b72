//! The list webhooks `apply` sets up for Mailchimp sources (docs/vendors/mailchimp.md §4). Mailchimp signs
//! nothing, so the URL carries a secret path segment: `<base>/mailchimp/<list>/<secret>`, the
//! secret stored as `webhook/mailchimp/<list>` (made once, then kept, so a URL pasted in
//! Mailchimp stays valid across applies). Either the URL is printed with what to tick in
//! Mailchimp, or — when a connection of the list sets `register_webhook = true` — registered
//! through the API; an existing webhook with the same URL is left alone.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::Context;
use mlc::connections::ConnectionSet;
use mlc::flows::mailchimp_quickbooks::Options;
use mlc::flows::options;
use mlc::ports::Secrets;
use mlc::ports::secret_names;
use mlc::vendor::Vendor;
use mlc::vendors::mailchimp::MailchimpError;
use mlc::vendors::mailchimp::client::{ClientOptions, MailchimpClient};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::onboarding::apply::{Applying, Base};
use crate::target::outputs;

/// The webhook of every list that feeds a connection: its secret made once, then the URL
/// printed with what to tick in Mailchimp, or registered through the API when a connection of
/// the list asks (`register_webhook = true`). False when a requested registration did not
/// happen.
pub(crate) async fn apply(applying: &Applying<'_>) -> anyhow::Result<bool> {
    let (base, secrets) = (applying.base, applying.secrets.as_ref());
    let options = &ClientOptions {
        base_url: applying.args.mailchimp_api.clone(),
        ..ClientOptions::default()
    };
    let mut ok = true;
    for (list, plan) in plans(applying.new) {
        let secret = secret(secrets, &list).await?;
        let Some(base_url) = base.url() else {
            println!(
                "Mailchimp list {list}: no webhook base (the stack has no `{}` output): pass --webhook-base-url https://…/webhooks{}",
                outputs::WEBHOOK_BASE_URL,
                if plan.register_with.is_some() {
                    "; NOT registered"
                } else {
                    ""
                }
            );
            ok &= plan.register_with.is_none();
            continue;
        };
        let url = url(base_url, &list, &secret);
        let fallback = |why: &str| {
            println!(
                "Mailchimp list {list}: webhook NOT registered: {why}. Add it by hand once the URL is reachable:"
            );
            for line in manual_steps(&url) {
                println!("  {line}");
            }
        };
        let Some(credentials) = &plan.register_with else {
            println!(
                "Mailchimp list {list} (feeds {}): add its webhook by hand:",
                plan.connections.join(", ")
            );
            for line in manual_steps(&url) {
                println!("  {line}");
            }
            if let Base::Dev(_) = base {
                println!(
                    "  (that is `ml-connector dev`'s local address; for a real audience expose it, e.g. through a tunnel, and run apply with --webhook-base-url https://…/webhooks)"
                );
            }
            continue;
        };
        let client = match client(secrets, credentials, options).await {
            Ok(c) => c,
            Err(e) => {
                ok = false;
                fallback(&format!("{e:#}"));
                continue;
            }
        };
        if is_real_mailchimp(client.base_url())
            && let Some(why) = unreachable_base(base_url)
        {
            ok = false;
            fallback(&format!(
                "Mailchimp validates a new webhook with a GET from the internet, and {why}; run ml-connector where Mailchimp can reach it (deploy, or a tunnel to `ml-connector dev`) and apply again with --webhook-base-url https://…/webhooks"
            ));
            continue;
        }
        match register(&client, &list, base_url, &url).await {
            Ok((registered, stale)) => {
                let what = match registered {
                    Registered::Created { id } => format!("registered (webhook {id})"),
                    Registered::AlreadyThere { id } => {
                        format!("already registered (webhook {id}), left as it is")
                    }
                };
                println!("Mailchimp list {list}: {what} at {url}");
                for id in stale {
                    println!(
                        "  note: webhook {id} on this list points at this route with another secret; its deliveries are refused: delete it in Mailchimp (Audience → Settings → Webhooks)"
                    );
                }
            }
            Err(e) => {
                ok = false;
                fallback(&e.to_string());
            }
        }
    }
    Ok(ok)
}

/// One list whose webhook feeds connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListPlan {
    /// The enabled connections it feeds.
    pub connections: Vec<String>,
    /// The Mailchimp credential set to register with, when a connection asks for it (the
    /// first one that does).
    pub register_with: Option<String>,
}

/// Every list that is the source of an enabled connection, by list id.
pub(crate) fn plans(set: &ConnectionSet) -> BTreeMap<String, ListPlan> {
    let mut out: BTreeMap<String, ListPlan> = BTreeMap::new();
    for (name, c) in set.for_vendor(Vendor::Mailchimp) {
        let Some(list) = c.source.account.as_deref().map(str::to_string) else {
            continue;
        };
        let plan = out.entry(list).or_insert_with(|| ListPlan {
            connections: Vec::new(),
            register_with: None,
        });
        plan.connections.push(name.to_string());
        // Validation accepted the options; unreadable ones would have failed the load.
        let register = options::parse::<Options>(&c.options).is_ok_and(|o| o.register_webhook);
        if register && plan.register_with.is_none() {
            plan.register_with = Some(c.source.credentials.clone());
        }
    }
    out
}

/// The list's webhook URL under `base` (the webhook routes' base, ending in `/webhooks`).
pub(crate) fn url(base: &str, list: &str, secret: &SecretString) -> String {
    format!(
        "{}/mailchimp/{list}/{}",
        base.trim_end_matches('/'),
        secret.expose_secret()
    )
}

/// The URL's prefix before the secret: a webhook there with another secret is a stale one.
fn route_prefix(base: &str, list: &str) -> String {
    format!("{}/mailchimp/{list}/", base.trim_end_matches('/'))
}

/// The list's secret, created when missing. Never printed except inside the URL.
pub(crate) async fn secret(secrets: &dyn Secrets, list: &str) -> anyhow::Result<SecretString> {
    let name = secret_names::mailchimp(list);
    if let Some(s) = secrets.get(&name).await? {
        return Ok(s);
    }
    let value = new_secret();
    secrets
        .put(&name, &value)
        .await
        .with_context(|| format!("storing `{name}`"))?;
    Ok(value)
}

/// 48 random bytes from the OS generator (through three v4 UUIDs: 366 random bits, more than
/// the 32 bytes asked of a URL secret), as 96 lower-case hex digits: URL-safe, and inside the
/// route's 128-character segment limit.
fn new_secret() -> SecretString {
    SecretString::from(
        (0..3)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect::<String>(),
    )
}

/// Why Mailchimp could not reach `base` (it validates a new webhook with a GET from the
/// internet): a loopback, private, link-local or unspecified address, or `localhost`.
/// `None` when the host looks public (or is a name we cannot judge).
pub(crate) fn unreachable_base(base: &str) -> Option<String> {
    let url = Url::parse(base).ok()?;
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return Some(format!("{host} is this machine (loopback)"));
    }
    let ip: IpAddr = bare.parse().ok()?;
    let kind = match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "a loopback address",
        IpAddr::V4(v4) if v4.is_private() => "a private address",
        IpAddr::V4(v4) if v4.is_link_local() => "a link-local address",
        IpAddr::V4(v4) if v4.is_unspecified() => "the unspecified address",
        IpAddr::V6(v6) if v6.is_loopback() => "a loopback address",
        IpAddr::V6(v6) if v6.is_unspecified() => "the unspecified address",
        // fc00::/7 (unique local) and fe80::/10 (link-local).
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => "a private address",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "a link-local address",
        _ => return None,
    };
    Some(format!("{host} is {kind}"))
}

/// Whether the client talks to Mailchimp itself (not a sandbox or another override).
pub(crate) fn is_real_mailchimp(api_base: &str) -> bool {
    Url::parse(api_base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| h == "api.mailchimp.com" || h.ends_with(".api.mailchimp.com"))
}

/// A list webhook as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Existing {
    pub id: String,
    pub url: String,
}

/// The list-webhook calls registration needs (the Mailchimp client; a fake in tests).
pub(crate) trait ListWebhooks {
    async fn webhooks(&self, list: &str) -> Result<Vec<Existing>, MailchimpError>;
    async fn create(&self, list: &str, url: &str) -> Result<Existing, MailchimpError>;
}

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Registered {
    /// A webhook with this URL was there already; left alone.
    AlreadyThere {
        id: String,
    },
    Created {
        id: String,
    },
}

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegisterError {
    #[error("listing the list's webhooks: {0}")]
    List(#[source] MailchimpError),
    #[error(
        "Mailchimp refused the webhook ({0}); it checks the URL with a GET and needs 200 within \
         10 s: is the webhook route reachable from the internet?"
    )]
    Create(#[source] MailchimpError),
}

/// Registers `url` on `list` unless a webhook with that URL exists. Also returns the ids of
/// webhooks on this list's route with another secret (their deliveries are refused).
pub(crate) async fn register(
    api: &impl ListWebhooks,
    list: &str,
    base: &str,
    url: &str,
) -> Result<(Registered, Vec<String>), RegisterError> {
    let existing = api.webhooks(list).await.map_err(RegisterError::List)?;
    let prefix = route_prefix(base, list);
    let stale = existing
        .iter()
        .filter(|w| w.url != url && w.url.starts_with(&prefix))
        .map(|w| w.id.clone())
        .collect();
    if let Some(w) = existing.iter().find(|w| w.url == url) {
        return Ok((Registered::AlreadyThere { id: w.id.clone() }, stale));
    }
    let created = api.create(list, url).await.map_err(RegisterError::Create)?;
    Ok((Registered::Created { id: created.id }, stale))
}

/// The Mailchimp client for `credentials`, from the secret store.
pub(crate) async fn client(
    secrets: &dyn Secrets,
    credentials: &str,
    options: &ClientOptions,
) -> anyhow::Result<MailchimpClient> {
    let name = secret_names::credentials(credentials);
    let secret = secrets.get(&name).await?.with_context(|| {
        format!(
            "missing secret `{name}`: run `ml-connector connect mailchimp --name {credentials}`"
        )
    })?;
    MailchimpClient::from_secret(&secret, options)
        .with_context(|| format!("Mailchimp credential set `{credentials}`"))
}

impl ListWebhooks for MailchimpClient {
    async fn webhooks(&self, list: &str) -> Result<Vec<Existing>, MailchimpError> {
        Ok(self
            .list_webhooks(list)
            .await?
            .into_iter()
            .map(|w| Existing {
                id: w.id,
                url: w.url,
            })
            .collect())
    }

    async fn create(&self, list: &str, url: &str) -> Result<Existing, MailchimpError> {
        let w = self.create_list_webhook(list, url).await?;
        Ok(Existing {
            id: w.id,
            url: w.url,
        })
    }
}

/// What a person does in Mailchimp to add the webhook by hand, one line each.
pub(crate) fn manual_steps(url: &str) -> [String; 4] {
    [
        "In Mailchimp: Audience → Settings → Webhooks → Create New Webhook".to_string(),
        format!("Callback URL: {url}"),
        "Events: subscribes, unsubscribes, profile updates, cleaned address, email changed"
            .to_string(),
        "Sources: by a subscriber, by an account admin; untick \"via the API\" (our own writes \
         would come back as events)"
            .to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Fake {
        hooks: Mutex<Vec<Existing>>,
        creates: Mutex<u32>,
    }

    impl ListWebhooks for Fake {
        async fn webhooks(&self, _list: &str) -> Result<Vec<Existing>, MailchimpError> {
            Ok(self.hooks.lock().unwrap().clone())
        }
        async fn create(&self, _list: &str, url: &str) -> Result<Existing, MailchimpError> {
            *self.creates.lock().unwrap() += 1;
            let w = Existing {
                id: format!("w{}", self.hooks.lock().unwrap().len() + 1),
                url: url.to_string(),
            };
            self.hooks.lock().unwrap().push(w.clone());
            Ok(w)
        }
    }

    #[tokio::test]
    async fn registers_once_and_names_stale_secrets() {
        let fake = Fake::default();
        fake.hooks.lock().unwrap().push(Existing {
            id: "old".into(),
            url: "https://h.example/webhooks/mailchimp/L1/oldsecret".into(),
        });
        fake.hooks.lock().unwrap().push(Existing {
            id: "other".into(),
            url: "https://h.example/webhooks/mailchimp/L2/x".into(),
        });
        let base = "https://h.example/webhooks/";
        let url = url(base, "L1", &SecretString::from("s".repeat(96)));
        assert_eq!(
            url,
            format!("https://h.example/webhooks/mailchimp/L1/{}", "s".repeat(96))
        );
        let (first, stale) = register(&fake, "L1", base, &url).await.unwrap();
        assert_eq!(first, Registered::Created { id: "w3".into() });
        assert_eq!(stale, ["old"]);
        let (again, _) = register(&fake, "L1", base, &url).await.unwrap();
        assert_eq!(again, Registered::AlreadyThere { id: "w3".into() });
        assert_eq!(*fake.creates.lock().unwrap(), 1);
    }

    #[test]
    fn unreachable_bases_are_named() {
        for base in [
            "http://127.0.0.1:8787/webhooks",
            "http://localhost:8787/webhooks",
            "http://[::1]:8787/webhooks",
            "http://10.1.2.3/webhooks",
            "http://192.168.0.9/webhooks",
            "http://0.0.0.0:8787/webhooks",
        ] {
            assert!(unreachable_base(base).is_some(), "{base}");
        }
        for base in [
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/webhooks",
            "https://8.8.8.8/webhooks",
        ] {
            assert_eq!(unreachable_base(base), None, "{base}");
        }
        assert!(is_real_mailchimp("https://us21.api.mailchimp.com/3.0"));
        assert!(!is_real_mailchimp("http://127.0.0.1:4010/3.0"));
        assert!(!is_real_mailchimp(
            "https://api.mailchimp.com.evil.example/3.0"
        ));
    }

    #[test]
    fn secrets_are_long_random_and_url_safe() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 96);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn plans_group_connections_by_list_and_note_who_registers() {
        let set = ConnectionSet::from_toml(
            r#"
[connection.a]
source = { vendor = "mailchimp", account = "L1", credentials = "mc" }
target = { vendor = "quickbooks", credentials = "qb", realm_id = "1" }
[connection.b]
source = { vendor = "mailchimp", account = "L1", credentials = "mc2" }
target = { vendor = "quickbooks", credentials = "qb2", realm_id = "2" }
options = { register_webhook = true }
[connection.c]
source = { vendor = "mailchimp", account = "L2", credentials = "mc" }
target = { vendor = "quickbooks", credentials = "qb", realm_id = "1" }
options = { register_webhook = false }
[connection.d]
source = { vendor = "freshbooks", account = "F", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "L1" }
"#,
            "t.toml",
        )
        .unwrap();
        let p = plans(&set);
        assert_eq!(p.len(), 2);
        assert_eq!(p["L1"].connections, ["a", "b"]);
        assert_eq!(p["L1"].register_with.as_deref(), Some("mc2"));
        assert_eq!(p["L2"].register_with, None);
    }
}
