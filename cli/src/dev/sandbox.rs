//! `dev --sandbox`: the FreshBooks, QuickBooks, Mailchimp and HubSpot sandboxes in this
//! process, the connections bent onto them, their credential sets stored, their webhooks
//! pointed at the local routes and the HubSpot portal given the flow's properties. Built with the CLI's `sandbox` feature (on by default).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use mlc::app::LiveClientsConfig;
use mlc::connections::{Connection, ConnectionSet};
use mlc::poller::freshbooks_poll::entities_for;
use mlc::ports::{Secrets, secret_names};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callback_registration::{
    CallbackSpec, register_pending, wait_verified,
};
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc_sandbox::Sandboxes;
use mlc_sandbox::quickbooks::PayloadFormat;
use secrecy::SecretString;

use super::Local;
use crate::clients::clients_config;
use crate::vendors::hubspot as hubspot_vendor;
use crate::vendors::mailchimp::webhooks as mailchimp_webhook;
use mlc::flows::clients::VendorClients;
use mlc::flows::freshbooks_hubspot::portal;
use std::collections::BTreeSet;

/// The sandboxes of one `dev --sandbox` run: they serve as long as this lives.
pub(crate) struct DevSandboxes(Sandboxes);

impl DevSandboxes {
    /// Starts the sandboxes; returns the connections on them and where they came from.
    pub(crate) async fn start(
        connections: Option<&Path>,
    ) -> anyhow::Result<(ConnectionSet, String, Self)> {
        let (set, source, sandboxes) = sandbox_run_connections(connections).await?;
        Ok((set, source, DevSandboxes(sandboxes)))
    }

    /// Stores the sandboxes' credential sets under every name the connections use.
    pub(crate) async fn store_credentials(
        &self,
        secrets: &dyn Secrets,
        set: &ConnectionSet,
    ) -> anyhow::Result<()> {
        store_sandbox_credentials(secrets, set, &self.0).await
    }

    /// The clients' API bases: the sandboxes'.
    pub(crate) fn clients_config(&self) -> anyhow::Result<LiveClientsConfig> {
        let mut config = clients_config(
            Some(&self.0.freshbooks.base_url()),
            Some(&self.0.mailchimp.base_url()),
            Some(&self.0.quickbooks.base_url()),
        )?;
        config.hubspot_api_base = Some(self.0.hubspot.base_url());
        Ok(config)
    }

    /// Registers every route on the sandboxes (FreshBooks callbacks, the QuickBooks webhook,
    /// Mailchimp list webhooks) and prints them with the sandboxes' control URLs.
    pub(crate) async fn announce(
        &self,
        pipeline: &Local,
        set: &ConnectionSet,
        webhook_base: &str,
    ) -> anyhow::Result<()> {
        let registered = register_freshbooks_callbacks(pipeline, set, webhook_base).await?;
        prepare_hubspot_portal(pipeline, set).await?;
        print_sandboxes(&self.0, &registered);
        for line in register_sandbox_webhooks(pipeline, set, &self.0, webhook_base).await? {
            println!("  {line}");
        }
        for (what, url) in self.0.control_urls() {
            println!("  {what}: {url}");
        }
        Ok(())
    }
}

/// Starts the sandboxes and reads the connections onto them — the given file bent onto them,
/// or the built-in ones. Returns them with where they came from.
async fn sandbox_run_connections(
    connections: Option<&Path>,
) -> anyhow::Result<(ConnectionSet, String, Sandboxes)> {
    let sandboxes = Sandboxes::start()
        .await
        .map_err(|e| anyhow::anyhow!("starting the sandboxes: {e}"))?;
    let (set, source) = match connections {
        Some(file) => (
            sandbox_set(ConnectionSet::load(file)?, &sandboxes),
            file.display().to_string(),
        ),
        None => (
            dev_sandbox_connections(&sandboxes)?,
            "the built-in sandbox connections".to_string(),
        ),
    };
    Ok((set, source, sandboxes))
}

/// The sandboxes' addresses and the FreshBooks callbacks registered on them.
fn print_sandboxes(sandboxes: &Sandboxes, registered: &[String]) {
    println!(
        "  sandboxes: FreshBooks {} (account {}), QuickBooks {} (company {}), Mailchimp {} (audience {}), HubSpot {} (portal {})",
        sandboxes.freshbooks.base_url(),
        sandboxes.account_id(),
        sandboxes.quickbooks.base_url(),
        sandboxes.realm_id(),
        sandboxes.mailchimp.base_url(),
        sandboxes.list_id,
        sandboxes.hubspot.base_url(),
        sandboxes.portal_id()
    );
    println!(
        "  {} FreshBooks callback(s) registered and verified:",
        registered.len()
    );
    for uri in registered {
        println!("    POST {uri}");
    }
}

/// The connections file used on the sandboxes when none is given: the sandbox's FreshBooks
/// account into its audience, with an e-commerce store for the invoices.
pub(crate) fn sandbox_connections(sandboxes: &Sandboxes) -> anyhow::Result<ConnectionSet> {
    let text = format!(
        r#"
[connection.{SANDBOX_CONNECTION}]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "freshbooks-sandbox" }}
target = {{ vendor = "mailchimp", credentials = "mailchimp-sandbox", list_id = "{list}", store_id = "{SANDBOX_STORE}" }}
"#,
        account = sandboxes.account_id(),
        list = sandboxes.list_id,
    );
    Ok(ConnectionSet::from_toml(&text, "sandbox connections")?)
}

/// `dev --sandbox`'s built-in connections: [`sandbox_connections`] plus the sandbox's
/// QuickBooks company into the same audience, that audience's list webhooks back into the
/// company (as notes on its customers), and the FreshBooks account into the HubSpot portal.
fn dev_sandbox_connections(sandboxes: &Sandboxes) -> anyhow::Result<ConnectionSet> {
    let mut set = sandbox_connections(sandboxes)?;
    let text = format!(
        r#"
[connection.quickbooks-to-mailchimp]
source = {{ vendor = "quickbooks", account = "{realm}", credentials = "quickbooks-sandbox" }}
target = {{ vendor = "mailchimp", credentials = "mailchimp-sandbox", list_id = "{list}" }}
[connection.mailchimp-to-quickbooks]
source = {{ vendor = "mailchimp", account = "{list}", credentials = "mailchimp-sandbox" }}
target = {{ vendor = "quickbooks", credentials = "quickbooks-sandbox", realm_id = "{realm}" }}
[connection.freshbooks-to-hubspot]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "freshbooks-sandbox" }}
target = {{ vendor = "hubspot", credentials = "hubspot-sandbox", portal_id = "{portal}" }}
"#,
        realm = sandboxes.realm_id(),
        list = sandboxes.list_id,
        account = sandboxes.account_id(),
        portal = sandboxes.portal_id(),
    );
    let quickbooks = ConnectionSet::from_toml(&text, "sandbox connections")?;
    set.connections.extend(quickbooks.connections);
    Ok(set)
}

/// Points the sandboxes' webhooks for the enabled QuickBooks and Mailchimp sources at the local
/// routes under `webhook_base`: the QuickBooks app's endpoint (signed CloudEvents, with a fresh
/// verifier token stored as the route's secret) and one list webhook per Mailchimp source list,
/// added as a user would paste it in Mailchimp (the sandbox validates it with a GET first, so
/// the routes must be serving). Returns a line per webhook, without secrets.
async fn register_sandbox_webhooks(
    pipeline: &Local,
    set: &ConnectionSet,
    sandboxes: &Sandboxes,
    webhook_base: &str,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    if set.for_vendor(Vendor::Quickbooks).next().is_some() {
        let token = uuid::Uuid::new_v4().simple().to_string();
        pipeline
            .secrets()
            .put(secret_names::QUICKBOOKS, &SecretString::from(token.clone()))
            .await
            .with_context(|| format!("storing `{}`", secret_names::QUICKBOOKS))?;
        let url = format!("{webhook_base}/quickbooks");
        sandboxes
            .quickbooks
            .set_webhook(&url, &token, PayloadFormat::CloudEvents);
        lines.push(format!(
            "QuickBooks webhook (company {}): POST {url}",
            sandboxes.realm_id()
        ));
    }
    for list in mailchimp_webhook::plans(set).into_keys() {
        let secret = mailchimp_webhook::secret(pipeline.secrets().as_ref(), &list).await?;
        sandboxes
            .mailchimp
            .add_list_webhook(&list, &mailchimp_webhook::url(webhook_base, &list, &secret))
            .await
            .map_err(|e| anyhow::anyhow!("adding the sandbox list webhook of `{list}`: {e:?}"))?;
        lines.push(format!(
            "Mailchimp list webhook (audience {list}): POST {webhook_base}/mailchimp/{list}/<secret>"
        ));
    }
    Ok(lines)
}

/// The built-in sandbox connection's name and Mailchimp store id.
pub(crate) const SANDBOX_CONNECTION: &str = "freshbooks-to-mailchimp";
pub(crate) const SANDBOX_STORE: &str = "sandbox-store";

/// A connections file bent onto the sandboxes: FreshBooks sources read the sandbox's account
/// (its ids are the sandbox's own), Mailchimp audiences are created in the sandbox, and
/// connections touching a vendor without a sandbox are disabled so nothing reaches a real
/// vendor.
fn sandbox_set(mut set: ConnectionSet, sandboxes: &Sandboxes) -> ConnectionSet {
    for (name, c) in set.connections.iter_mut() {
        let supported = |v: Vendor| {
            matches!(
                v,
                Vendor::Freshbooks | Vendor::Quickbooks | Vendor::Mailchimp | Vendor::Hubspot
            )
        };
        if !supported(c.source.vendor) || !supported(c.target.vendor) {
            if c.enabled {
                println!(
                    "  connection {name}: no sandbox for {}/{}; disabled for this run",
                    c.source.vendor, c.target.vendor
                );
            }
            c.enabled = false;
            continue;
        }
        match c.source.vendor {
            Vendor::Freshbooks => c.source.account = Some(sandboxes.account_id().into()),
            Vendor::Quickbooks => c.source.account = Some(sandboxes.realm_id().into()),
            // A Mailchimp source's account is its list: created below like a target's.
            _ => {}
        }
        if c.target.vendor == Vendor::Quickbooks {
            c.target.realm_id = Some(sandboxes.realm_id().to_string());
        }
        if c.target.vendor == Vendor::Hubspot {
            c.target.portal_id = Some(sandboxes.portal_id());
        }
        if c.source.vendor == Vendor::Mailchimp
            && let Some(list) = &c.source.account
        {
            sandboxes
                .mailchimp
                .create_list(list, &format!("Audience {list}"));
        }
        for endpoint in [&c.source, &c.target] {
            if endpoint.vendor == Vendor::Mailchimp
                && let Some(list) = &endpoint.list_id
            {
                sandboxes
                    .mailchimp
                    .create_list(list, &format!("Audience {list}"));
            }
        }
    }
    set
}

/// Stores the sandboxes' credential sets under every name the enabled connections use.
pub(crate) async fn store_sandbox_credentials(
    secrets: &dyn Secrets,
    set: &ConnectionSet,
    sandboxes: &Sandboxes,
) -> anyhow::Result<()> {
    for c in set.connections.values().filter(|c| c.enabled) {
        for endpoint in [&c.source, &c.target] {
            let value = match endpoint.vendor {
                Vendor::Freshbooks => sandboxes.freshbooks_credentials_json(),
                Vendor::Quickbooks => sandboxes.quickbooks_credentials_json(),
                Vendor::Mailchimp => sandboxes.mailchimp_credentials_json(),
                Vendor::Hubspot => sandboxes.hubspot_credentials_json(),
                _ => continue,
            };
            let name = secret_names::credentials(&endpoint.credentials);
            secrets
                .put(&name, &SecretString::from(value))
                .await
                .with_context(|| format!("storing `{name}`"))?;
        }
    }
    Ok(())
}

/// Gives the sandbox portal of every enabled HubSpot connection the flow's property group and
/// properties, as `apply` does for a real portal: the flow upserts by its unique `fb_…` keys.
async fn prepare_hubspot_portal(pipeline: &Local, set: &ConnectionSet) -> anyhow::Result<()> {
    let clients = pipeline.app.clients()?;
    let mut done = BTreeSet::new();
    for c in set
        .connections
        .values()
        .filter(|c| c.enabled && c.target.vendor == Vendor::Hubspot)
    {
        if !done.insert(c.target.credentials.clone()) {
            continue;
        }
        let hs = clients
            .hubspot(&c.target.credentials)
            .await
            .map_err(|e| anyhow::anyhow!("the sandbox HubSpot client: {e}"))?;
        hubspot_vendor::properties::ensure(
            &*hs,
            &portal::property_group(),
            &portal::property_definitions(),
        )
        .await
        .context("creating the flow's properties on the sandbox portal")?;
    }
    Ok(())
}

/// How long FreshBooks' verification handshake may take to reach the route.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(20);

/// Registers a FreshBooks callback per event for every enabled FreshBooks source at the local
/// webhook routes, as `apply` does for a stack (its [`register_pending`]), under route ids
/// named after the connection; the handshake then reaches the webhook route, which verifies it
/// with FreshBooks. Returns the callbacks' URLs once every one is verified.
pub(crate) async fn register_freshbooks_callbacks(
    pipeline: &Local,
    set: &ConnectionSet,
    webhook_base: &str,
) -> anyhow::Result<Vec<String>> {
    let mut registered = Vec::new();
    for (name, c) in &set.connections {
        if !c.enabled || c.source.vendor != Vendor::Freshbooks {
            continue;
        }
        registered.extend(register_connection_callbacks(pipeline, name, c, webhook_base).await?);
    }
    let routes: Vec<&str> = registered.iter().map(|(r, _)| r.as_str()).collect();
    wait_callbacks_verified(pipeline, &routes).await?;
    Ok(registered.into_iter().map(|(_, uri)| uri).collect())
}

/// Registers the callbacks of one FreshBooks source; returns each one's route id and URL.
async fn register_connection_callbacks(
    pipeline: &Local,
    name: &str,
    c: &Connection,
    webhook_base: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let account = c
        .source
        .account
        .as_deref()
        .with_context(|| format!("connection {name}: FreshBooks source without an account"))?;
    let client = FreshbooksClient::new(
        pipeline.freshbooks_api(),
        pipeline.app.clients()?.freshbooks_tokens(),
        &c.source.credentials,
    )?;
    let mut registered = Vec::new();
    // The connection's own flow's entities: its routes are named after it.
    for entity in entities_for([c]) {
        let event = entity.as_str();
        let route_id = format!("{name}-{event}");
        let uri = format!("{webhook_base}/freshbooks/{account}/{route_id}");
        let spec = CallbackSpec {
            account,
            credentials: &c.source.credentials,
            event,
            route_id: &route_id,
            uri: &uri,
        };
        let clock = pipeline.app.ports().clock.as_ref();
        register_pending(&pipeline.db, clock, &client, &spec, None)
            .await
            .with_context(|| format!("the FreshBooks `{event}` callback"))?;
        registered.push((route_id, uri));
    }
    Ok(registered)
}

/// Waits until FreshBooks' handshake has verified every route; fails naming those it has not.
async fn wait_callbacks_verified(pipeline: &Local, routes: &[&str]) -> anyhow::Result<()> {
    let verified = wait_verified(
        &pipeline.db,
        routes,
        HANDSHAKE_WAIT,
        Duration::from_millis(50),
    )
    .await;
    let pending: Vec<&str> = routes
        .iter()
        .copied()
        .filter(|r| !verified.contains(r))
        .collect();
    if !pending.is_empty() {
        anyhow::bail!(
            "FreshBooks callbacks not verified within {HANDSHAKE_WAIT:?}: {}",
            pending.join(", ")
        );
    }
    Ok(())
}
