//! `ml-connector apply <file>`: validates a connections file, shows what changes against the
//! applied set, stores it, registers the FreshBooks callbacks of its sources (waiting for their
//! verification handshakes), sets up the Mailchimp list webhooks of its Mailchimp sources
//! (printed with their secret URL, or registered through the API on request) and prints the
//! webhook URLs other vendors need by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use mlc::connections::{Connection, ConnectionSet};
use mlc::ports::secret_names;
use mlc::ports::{CallbackStatus, Clock, Secrets, Store, SystemClock};
use mlc::tokens::TokenManager;
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callbacks;
use mlc::vendors::freshbooks::client::{DEFAULT_BASE_URL, FreshbooksClient};
use mlc::vendors::freshbooks::models::Callback;
use mlc::vendors::freshbooks::oauth::FreshbooksOauth;
use mlc::vendors::mailchimp::client::ClientOptions;
use mlc::webhook::callback_registration::{CallbackSpec, register_pending, wait_verified};

use super::input;
use super::mailchimp_webhook::{self as list_webhook, Registered};
use crate::target::{DEV_LISTEN, TargetArgs, outputs};

#[derive(clap::Args)]
pub(crate) struct ApplyArgs {
    /// The connections file (TOML) to apply.
    file: PathBuf,
    /// Apply without asking (required when standard input is not a terminal).
    #[arg(long)]
    yes: bool,
    /// Public base of the webhook routes, ending in `/webhooks` (e.g. a tunnel's
    /// `https://…/webhooks` to `ml-connector dev`). Default on a stack: its `WebhookBaseUrl`
    /// output; locally `ml-connector dev`'s address (`http://127.0.0.1:8787/webhooks`), used
    /// for the printed URLs only: FreshBooks callbacks are registered only at a base given
    /// here or by the stack.
    #[arg(
        long = "webhook-base-url",
        alias = "webhook-base",
        env = "ML_CONNECTOR_WEBHOOK_BASE",
        value_name = "URL"
    )]
    webhook_base: Option<String>,
    /// Seconds to wait for FreshBooks' verification handshakes.
    #[arg(long, default_value_t = 60)]
    wait: u64,
    /// FreshBooks API base.
    #[arg(long, env = "FRESHBOOKS_API_BASE", default_value = DEFAULT_BASE_URL)]
    freshbooks_api: String,
    /// Mailchimp API base including `/3.0` (a sandbox's); default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    mailchimp_api: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// Where the webhook routes are, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    /// `--webhook-base-url`, or the stack's `WebhookBaseUrl` output: vendors are told about it.
    Given(String),
    /// Locally without a flag: `ml-connector dev`'s address, only for the printed URLs.
    Dev(String),
    /// A stack without the output, and no flag.
    Missing,
}

impl Base {
    fn url(&self) -> Option<&str> {
        match self {
            Base::Given(b) | Base::Dev(b) => Some(b.trim_end_matches('/')),
            Base::Missing => None,
        }
    }
}

/// What applying a set changes, by connection name.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

impl Diff {
    pub(crate) fn between(old: &ConnectionSet, new: &ConnectionSet) -> Self {
        let mut d = Diff::default();
        for (name, c) in &new.connections {
            match old.connections.get(name) {
                None => d.added.push(name.clone()),
                Some(o) if o != c => d.changed.push(name.clone()),
                Some(_) => d.unchanged += 1,
            }
        }
        d.removed = old
            .connections
            .keys()
            .filter(|n| !new.connections.contains_key(*n))
            .cloned()
            .collect();
        d
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn print(&self, old: &ConnectionSet, new: &ConnectionSet) {
        for name in &self.added {
            println!("  + {name}: {}", describe(&new.connections[name]));
        }
        for name in &self.removed {
            println!("  - {name}: {}", describe(&old.connections[name]));
        }
        for name in &self.changed {
            println!("  ~ {name}: {}", describe(&old.connections[name]));
            println!(
                "  {:>width$}→ {}",
                "",
                describe(&new.connections[name]),
                width = name.len() + 2
            );
        }
        println!(
            "{} to add, {} to remove, {} to change, {} unchanged",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged
        );
    }
}

fn describe(c: &Connection) -> String {
    let mut s = format!(
        "{}/{} [{}] → {} [{}]",
        c.source.vendor,
        c.source.account.as_deref().unwrap_or(""),
        c.source.credentials,
        c.target.vendor,
        c.target.credentials
    );
    for (label, v) in [("list", &c.target.list_id), ("store", &c.target.store_id)] {
        if let Some(v) = v {
            s.push_str(&format!(" {label}={v}"));
        }
    }
    if !c.options.is_empty() {
        let opts: Vec<String> = c.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" options({})", opts.join(", ")));
    }
    if !c.enabled {
        s.push_str(" (disabled)");
    }
    s
}

pub(crate) async fn run(args: ApplyArgs) -> anyhow::Result<bool> {
    let new = ConnectionSet::load(&args.file)?;
    let ports = super::open(&args.target).await?;
    let (store, secrets) = (ports.store.clone(), ports.secrets.clone());
    let base = match (&args.webhook_base, &ports.stack) {
        (Some(base), _) => Base::Given(base.clone()),
        (None, Some(stack)) => match stack.output(outputs::WEBHOOK_BASE_URL) {
            Some(base) => Base::Given(base.to_string()),
            None => Base::Missing,
        },
        (None, None) => Base::Dev(format!("http://{DEV_LISTEN}/webhooks")),
    };
    let old = store.get_connections().await?.unwrap_or_default();
    let diff = Diff::between(&old, &new);
    println!(
        "{} against the connections applied in the {}:",
        args.file.display(),
        ports.place
    );
    diff.print(&old, &new);
    if !diff.is_empty() {
        if !args.yes {
            if !input::interactive() {
                bail!("not applied: standard input is not a terminal to confirm on; pass --yes");
            }
            if !input::confirm("Apply these changes?")? {
                bail!("not applied");
            }
        }
        store
            .put_connections(&new)
            .await
            .context("storing the connections")?;
        println!("applied {} connection(s)", new.connections.len());
    }

    let mut ok = true;
    let sources = freshbooks_sources(&new);
    // Callbacks are not deleted for sources that went away: a person may be moving the
    // account to another connection file or stack. Say so, so nobody wonders.
    let kept: BTreeSet<&String> = sources.iter().map(|(a, _)| a).collect();
    for (account, _) in freshbooks_sources(&old) {
        if !kept.contains(&account) {
            println!(
                "note: FreshBooks account {account} is no longer a source; its callbacks stay registered at FreshBooks (delete them there if it is gone for good)"
            );
        }
    }
    match &base {
        Base::Given(given) if !sources.is_empty() => {
            let tokens = Arc::new(TokenManager::new(
                secrets.clone(),
                store.clone(),
                Arc::new(SystemClock),
                Arc::new(FreshbooksOauth::new(&args.freshbooks_api)?),
            ));
            let registrar = Registrar {
                store: store.clone(),
                secrets: secrets.clone(),
                clock: Arc::new(SystemClock),
                tokens,
                api: args.freshbooks_api.clone(),
                base: given.trim_end_matches('/').to_string(),
            };
            ok = registrar
                .register_all(&sources, Duration::from_secs(args.wait))
                .await?;
        }
        Base::Dev(_) | Base::Missing if !sources.is_empty() => println!(
            "no --webhook-base-url: FreshBooks callbacks not registered (events still arrive through the poller; `ml-connector dev --sandbox` registers its own)"
        ),
        _ => {}
    }
    let mailchimp = ClientOptions {
        base_url: args.mailchimp_api.clone(),
        ..ClientOptions::default()
    };
    ok &= mailchimp_lists(&new, &base, secrets.as_ref(), &mailchimp).await?;
    print_manual(&new, base.url().unwrap_or("<webhook-base>"));
    Ok(ok)
}

/// (account, credential set) of every enabled FreshBooks source.
fn freshbooks_sources(set: &ConnectionSet) -> BTreeSet<(String, String)> {
    set.for_vendor(Vendor::Freshbooks)
        .filter_map(|(_, c)| Some((c.source.account.clone()?, c.source.credentials.clone())))
        .collect()
}

/// The route id of an account's callback for `event`. Route ids key the callback records, so
/// they carry the account to stay unique across accounts.
pub(crate) fn route_id(account: &str, event: &str) -> String {
    format!("{account}-{event}")
}

struct Registrar {
    store: Arc<dyn Store>,
    secrets: Arc<dyn Secrets>,
    clock: Arc<dyn Clock>,
    tokens: Arc<TokenManager>,
    api: String,
    base: String,
}

/// Where one callback stands after registration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AlreadyVerified,
    Waiting,
    Failed(String),
}

impl Registrar {
    async fn register_all(
        &self,
        sources: &BTreeSet<(String, String)>,
        wait: Duration,
    ) -> anyhow::Result<bool> {
        let mut states: BTreeMap<(String, String), State> = BTreeMap::new();
        for (account, credentials) in sources {
            let client = FreshbooksClient::new(&self.api, self.tokens.clone(), credentials)?;
            let existing = match client.list_callbacks(account).await {
                Ok(list) => list,
                Err(e) => {
                    for event in callbacks::EVENTS {
                        states.insert(
                            (account.clone(), event.to_string()),
                            State::Failed(format!("listing callbacks: {e}")),
                        );
                    }
                    continue;
                }
            };
            for event in callbacks::EVENTS {
                let state = self
                    .register_one(&client, account, credentials, event, &existing)
                    .await;
                states.insert((account.clone(), event.to_string()), state);
            }
        }
        let waiting: Vec<String> = states
            .iter()
            .filter(|(_, s)| **s == State::Waiting)
            .map(|((account, event), _)| route_id(account, event))
            .collect();
        if !waiting.is_empty() {
            eprintln!(
                "waiting up to {} s for {} verification handshake(s)…",
                wait.as_secs(),
                waiting.len()
            );
        }
        let waiting: Vec<&str> = waiting.iter().map(String::as_str).collect();
        let verified = wait_verified(
            self.store.as_ref(),
            &waiting,
            wait,
            Duration::from_millis(250),
        )
        .await;
        println!("FreshBooks callbacks:");
        let mut ok = true;
        for ((account, event), state) in &states {
            let uri = self.uri(account, event);
            let text = match state {
                State::AlreadyVerified => "verified (already registered)".to_string(),
                State::Waiting if verified.contains(route_id(account, event).as_str()) => {
                    "verified".to_string()
                }
                State::Waiting => {
                    ok = false;
                    format!(
                        "NOT verified within {} s: is the webhook route reachable from FreshBooks? run apply again to resend",
                        wait.as_secs()
                    )
                }
                State::Failed(why) => {
                    ok = false;
                    format!("FAILED: {why}")
                }
            };
            println!("  {account} {event:<8} {uri}  {text}");
        }
        Ok(ok)
    }

    fn uri(&self, account: &str, event: &str) -> String {
        format!(
            "{}/freshbooks/{account}/{}",
            self.base,
            route_id(account, event)
        )
    }

    /// Registers one callback unless FreshBooks and this store both have it verified; one
    /// registered before but not usable here (unverified, or its verifier is not in this
    /// store) gets its handshake resent.
    async fn register_one(
        &self,
        client: &FreshbooksClient,
        account: &str,
        credentials: &str,
        event: &str,
        existing: &[Callback],
    ) -> State {
        let route = route_id(account, event);
        let uri = self.uri(account, event);
        let found = existing.iter().find(|c| c.uri == uri && c.event == event);
        let record = self.store.get_callback(&route).await.ok().flatten();
        let verifier = self
            .secrets
            .get(&secret_names::freshbooks(account, &route))
            .await
            .ok()
            .flatten();
        if let Some(cb) = found
            && cb.verified
            && verifier.is_some()
            && record.as_ref().is_some_and(|r| {
                r.status == CallbackStatus::Verified
                    && r.callback_id.as_deref() == Some(cb.callbackid.as_str())
            })
        {
            return State::AlreadyVerified;
        }
        let spec = CallbackSpec {
            account,
            credentials,
            event,
            route_id: &route,
            uri: &uri,
        };
        let registered = found.map(|c| c.callbackid.as_str());
        match register_pending(
            self.store.as_ref(),
            self.clock.as_ref(),
            client,
            &spec,
            registered,
        )
        .await
        {
            Ok(()) => State::Waiting,
            Err(e) => State::Failed(e.to_string()),
        }
    }
}

/// The webhook of every list that feeds a connection: its secret made once, then the URL
/// printed with what to tick in Mailchimp, or registered through the API when a connection of
/// the list asks (`register_webhook = true`). False when a requested registration did not
/// happen.
async fn mailchimp_lists(
    set: &ConnectionSet,
    base: &Base,
    secrets: &dyn Secrets,
    options: &ClientOptions,
) -> anyhow::Result<bool> {
    let mut ok = true;
    for (list, plan) in list_webhook::plans(set) {
        let secret = list_webhook::secret(secrets, &list).await?;
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
        let url = list_webhook::url(base_url, &list, &secret);
        let fallback = |why: &str| {
            println!(
                "Mailchimp list {list}: webhook NOT registered: {why}. Add it by hand once the URL is reachable:"
            );
            for line in list_webhook::manual_steps(&url) {
                println!("  {line}");
            }
        };
        let Some(credentials) = &plan.register_with else {
            println!(
                "Mailchimp list {list} (feeds {}): add its webhook by hand:",
                plan.connections.join(", ")
            );
            for line in list_webhook::manual_steps(&url) {
                println!("  {line}");
            }
            if let Base::Dev(_) = base {
                println!(
                    "  (that is `ml-connector dev`'s local address; for a real audience expose it, e.g. through a tunnel, and run apply with --webhook-base-url https://…/webhooks)"
                );
            }
            continue;
        };
        let client = match list_webhook::client(secrets, credentials, options).await {
            Ok(c) => c,
            Err(e) => {
                ok = false;
                fallback(&format!("{e:#}"));
                continue;
            }
        };
        if list_webhook::is_real_mailchimp(client.base_url())
            && let Some(why) = list_webhook::unreachable_base(base_url)
        {
            ok = false;
            fallback(&format!(
                "Mailchimp validates a new webhook with a GET from the internet, and {why}; run ml-connector where Mailchimp can reach it (deploy, or a tunnel to `ml-connector dev`) and apply again with --webhook-base-url https://…/webhooks"
            ));
            continue;
        }
        match list_webhook::register(&client, &list, base_url, &url).await {
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

/// The webhook URLs a person registers in the vendor's own console (Mailchimp's are above).
fn print_manual(set: &ConnectionSet, base: &str) {
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    for (_, c) in set.connections.iter().filter(|(_, c)| c.enabled) {
        let account = c.source.account.clone().unwrap_or_default();
        // One QuickBooks endpoint serves every company of the app.
        let key = match c.source.vendor {
            Vendor::Quickbooks => String::new(),
            _ => account.clone(),
        };
        if !seen.insert((c.source.vendor, key)) {
            continue;
        }
        match c.source.vendor {
            Vendor::Quickbooks => lines.push(format!(
                "QuickBooks: in the Intuit developer portal set the app's webhook endpoint to {base}/quickbooks (Customer events) and store its verifier token: ml-connector secrets put {} < token.txt",
                secret_names::QUICKBOOKS
            )),
            Vendor::Stripe => lines.push(format!(
                "Stripe {account}: add an endpoint at {base}/stripe/{account} and store its signing secret: ml-connector secrets put {} < whsec.txt",
                secret_names::stripe(&account)
            )),
            Vendor::Freshbooks | Vendor::Mailchimp | Vendor::Hubspot | Vendor::Marketo => {}
        }
    }
    if !lines.is_empty() {
        println!("Register by hand:");
        for l in lines {
            println!("  {l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ConnectionSet {
        ConnectionSet::from_toml(text, "t.toml").unwrap()
    }

    #[test]
    fn diff_names_added_removed_and_changed() {
        let old = set(r#"
[connection.keep]
source = { vendor = "freshbooks", account = "A", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.gone]
source = { vendor = "freshbooks", account = "B", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.edit]
source = { vendor = "freshbooks", account = "C", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
"#);
        let new = set(r#"
[connection.keep]
source = { vendor = "freshbooks", account = "A", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.edit]
source = { vendor = "freshbooks", account = "C", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
[connection.new]
source = { vendor = "freshbooks", account = "D", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
"#);
        let d = Diff::between(&old, &new);
        assert_eq!(d.added, ["new"]);
        assert_eq!(d.removed, ["gone"]);
        assert_eq!(d.changed, ["edit"]);
        assert_eq!(d.unchanged, 1);
        assert!(Diff::between(&new, &new).is_empty());
        assert_eq!(
            freshbooks_sources(&new)
                .into_iter()
                .map(|(a, _)| a)
                .collect::<Vec<_>>(),
            ["A", "C", "D"]
        );
    }
}
