//! `ml-connector apply <file>`: validates a connections file, shows what changes against the
//! applied set, stores it, registers the FreshBooks callbacks of its sources (waiting for their
//! verification handshakes), sets up the Mailchimp list webhooks of its Mailchimp sources
//! (printed with their secret URL, or registered through the API on request) and prints the
//! webhook URLs other vendors need by hand.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use mlc::app::LiveClients;
use mlc::connections::{Connection, ConnectionSet};
use mlc::ports::{Secrets, Store};
use mlc::vendors::freshbooks::client::DEFAULT_BASE_URL;
use mlc::vendors::spec::needed_routes;

use super::input;
use crate::clients::clients_config;
use crate::target::{DEV_LISTEN, TargetArgs, outputs};
use crate::vendors;

#[derive(clap::Args)]
pub(crate) struct ApplyArgs {
    /// The connections file (TOML) to apply.
    pub(crate) file: PathBuf,
    /// Apply without asking (required when standard input is not a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
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
    pub(crate) webhook_base: Option<String>,
    /// Seconds to wait for FreshBooks' verification handshakes.
    #[arg(long, default_value_t = 60)]
    pub(crate) wait: u64,
    /// FreshBooks API base.
    #[arg(long, env = "FRESHBOOKS_API_BASE", default_value = DEFAULT_BASE_URL)]
    pub(crate) freshbooks_api: String,
    /// Mailchimp API base including `/3.0` (a sandbox's); default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    pub(crate) mailchimp_api: Option<String>,
    /// HubSpot API base (a sandbox's `http://127.0.0.1:<port>`).
    #[arg(long, env = "HUBSPOT_API_BASE")]
    pub(crate) hubspot_api: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// Where the webhook routes are, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    /// `--webhook-base-url`, or the stack's `WebhookBaseUrl` output: vendors are told about it.
    Given(String),
    /// Locally without a flag: `ml-connector dev`'s address, only for the printed URLs.
    Dev(String),
    /// A stack without the output, and no flag.
    Missing,
}

impl Base {
    pub(crate) fn url(&self) -> Option<&str> {
        match self {
            Base::Given(b) | Base::Dev(b) => Some(b.trim_end_matches('/')),
            Base::Missing => None,
        }
    }
}

/// What a vendor's [`apply`](crate::vendors::VendorCli::apply) hook works with: the set applied
/// before and now, where the webhook routes are, the ports, the workers' own clients and the
/// command's flags.
pub(crate) struct Applying<'a> {
    pub old: &'a ConnectionSet,
    pub new: &'a ConnectionSet,
    pub base: &'a Base,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    /// The workers' clients over these ports (a token refresh takes the same store lease).
    pub clients: Arc<LiveClients>,
    pub args: &'a ApplyArgs,
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
                None => d.added.push(name.to_string()),
                Some(o) if o != c => d.changed.push(name.to_string()),
                Some(_) => d.unchanged += 1,
            }
        }
        d.removed = old
            .connections
            .keys()
            .filter(|n| !new.connections.contains_key(*n))
            .map(ToString::to_string)
            .collect();
        d
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn print(&self, old: &ConnectionSet, new: &ConnectionSet) {
        for name in &self.added {
            println!("  + {name}: {}", describe(&new.connections[name.as_str()]));
        }
        for name in &self.removed {
            println!("  - {name}: {}", describe(&old.connections[name.as_str()]));
        }
        for name in &self.changed {
            println!("  ~ {name}: {}", describe(&old.connections[name.as_str()]));
            println!(
                "  {:>width$}→ {}",
                "",
                describe(&new.connections[name.as_str()]),
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

    let mut config = clients_config(
        Some(&args.freshbooks_api),
        args.mailchimp_api.as_deref(),
        None,
    )?;
    if let Some(base) = &args.hubspot_api {
        config.hubspot_api_base = Some(base.clone());
    }
    let clients = ports.app(config).clients()?;
    let applying = Applying {
        old: &old,
        new: &new,
        base: &base,
        store,
        secrets,
        clients,
        args: &args,
    };
    let mut ok = true;
    for hooks in vendors::all() {
        ok &= hooks.apply(&applying).await?;
    }
    print_manual(&new, base.url().unwrap_or("<webhook-base>"));
    Ok(ok)
}

/// The webhook URLs a person registers in the vendor's own console (Mailchimp's are above).
fn print_manual(set: &ConnectionSet, base: &str) {
    let lines: Vec<String> = needed_routes(set)
        .into_iter()
        .filter_map(|r| Some((r.route.by_hand?)(base, r.account)))
        .collect();
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
    }
}
