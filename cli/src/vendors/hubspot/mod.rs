//! HubSpot in the operator command: `connect hubspot` (a private app's token, a service key or
//! an OAuth app, [`connect`]), `ping` (the portal, the token's scopes against the ones the flow
//! needs, and whether invoice and commerce-payment writes are available), `apply` (the flow's
//! property group and properties, [`properties`], and a probe of invoice writes setting the
//! connection's flag), `backfill --only invoices` (clears that flag first) and `status` (a
//! warning while a flag is set).

pub(crate) mod connect;
pub(crate) mod properties;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mlc::connections::{Connection, ConnectionSet};
use mlc::flows::clients::VendorClients;
use mlc::flows::freshbooks_hubspot::portal::{self, InvoiceProbe, Unavailable};
use mlc::ports::IdMap;
use mlc::vendor::Vendor;
use mlc::vendors::hubspot::credentials::AuthKind;
use mlc::vendors::hubspot::spec::missing_scopes;
use mlc::vendors::hubspot::target::HubspotTarget;
use mlc::vendors::hubspot::{HubspotApi, HubspotCredentials};
use secrecy::{ExposeSecret, SecretString};

use super::VendorCli;
use crate::onboarding::apply::Applying;
use crate::onboarding::connect::ConnectArgs;
use crate::onboarding::ping::{Checker, Outcome, Wanted};

/// HubSpot's hooks.
pub(super) struct Hooks;

#[async_trait]
impl VendorCli for Hooks {
    fn vendor(&self) -> Vendor {
        Vendor::Hubspot
    }

    fn has_auth_choices(&self) -> bool {
        true
    }

    async fn connect(
        &self,
        args: &ConnectArgs,
        applied: &ConnectionSet,
    ) -> anyhow::Result<SecretString> {
        connect::connect(args, applied).await
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
        apply(applying).await
    }

    async fn before_backfill(
        &self,
        id_map: &dyn IdMap,
        name: &str,
        only: &[&str],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        if !only.contains(&"invoice") {
            return Ok(Vec::new());
        }
        portal::set_invoices_available(id_map, name, true, now).await?;
        Ok(vec![format!(
            "Invoice writes are marked available again for `{name}`: the worker writes invoices \
             (if HubSpot still refuses them, the flag is set again and `status` says so)."
        )])
    }

    async fn status_warnings(
        &self,
        id_map: &dyn IdMap,
        name: &str,
        _connection: &Connection,
    ) -> anyhow::Result<Vec<String>> {
        let off = portal::unavailable(id_map, name).await?;
        Ok(flag_warnings(name, off))
    }
}

/// The warnings a connection's flags call for, each with its fix.
fn flag_warnings(name: &str, off: Unavailable) -> Vec<String> {
    let mut out = Vec::new();
    if off.invoices {
        out.push(format!(
            "HubSpot refused invoice writes in this portal: invoices are skipped \
             (`invoices_unavailable`); once the portal takes invoice writes, run \
             `ml-connector backfill {name} --only invoices`"
        ));
    }
    if off.payments {
        out.push(
            "HubSpot refused commerce payments in this portal (no payment processing): \
             payments go to the contact's `fb_…` properties only; set up payment processing in \
             HubSpot for payments to be recorded as payments"
                .to_string(),
        );
    }
    out
}

/// The command that reconnects a set of `kind`.
fn reconnect(name: &str, kind: AuthKind) -> String {
    let auth = match kind {
        AuthKind::PrivateApp => "private-app",
        AuthKind::ServiceKey => "service-key",
        AuthKind::OAuth => "oauth",
    };
    format!("`ml-connector connect hubspot --name {name} --auth {auth}`")
}

/// The portal, the token's scopes, and whether invoices and payments can be written.
async fn ping(
    checker: &Checker,
    name: &str,
    value: &SecretString,
    wanted: &Wanted,
) -> (Outcome, String) {
    let set = match HubspotCredentials::from_json(value.expose_secret()) {
        Ok(s) => s,
        Err(e) => {
            return (
                Outcome::Failed,
                format!("{e}: reconnect with `ml-connector connect hubspot --name {name}`"),
            );
        }
    };
    if let Some(marker) = &set.needs_reconnect {
        return (
            Outcome::Failed,
            format!(
                "needs reconnect{}: HubSpot refused the refresh token (app uninstalled or \
                 revoked), so nothing reaches the portal; reconnect with {}",
                marker.details(),
                reconnect(name, set.kind)
            ),
        );
    }
    let hs = match checker.live.hubspot(name).await {
        Ok(c) => c,
        Err(e) => return (Outcome::Failed, e.to_string()),
    };
    let info = match hs.token_info().await {
        Ok(i) => i,
        Err(e) => {
            return (
                Outcome::Failed,
                format!(
                    "HubSpot refused the token ({e}): reconnect with {}",
                    reconnect(name, set.kind)
                ),
            );
        }
    };
    let mut others: Vec<&str> = wanted
        .targets
        .iter()
        .filter_map(|ep| HubspotTarget::of(ep).ok())
        .map(|t| t.portal_id)
        .filter(|p| p.trim().parse::<u64>().ok() != Some(info.hub_id))
        .collect();
    others.sort_unstable();
    others.dedup();
    if !others.is_empty() {
        return (
            Outcome::Failed,
            format!(
                "the token is for portal {} but the connections name portal {}: fix \
                 `portal_id` in the connections file, or reconnect with a token of that portal \
                 ({})",
                info.hub_id,
                others.join(", "),
                reconnect(name, set.kind)
            ),
        );
    }
    let account = hs.account().await;
    let portal_id = account.as_ref().map_or(info.hub_id, |a| a.portal_id);
    let mut parts = vec![format!("portal {portal_id} ({})", set.kind.as_str())];
    let mut outcome = Outcome::Ok;
    let missing = missing_scopes(&info.scopes);
    if missing.is_empty() {
        parts.push("every scope the flow needs".into());
    } else {
        outcome = Outcome::Failed;
        parts.push(format!(
            "missing scope(s) {}: {}",
            missing.join(", "),
            connect::scope_fix(set.kind)
        ));
    }
    let currency = account
        .as_ref()
        .ok()
        .map(|a| a.company_currency.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "USD".to_string());
    let mut flags = Unavailable::default();
    for connection in &wanted.used_by {
        if let Ok(off) = portal::unavailable(&*checker.store, connection).await {
            flags.invoices |= off.invoices;
            flags.payments |= off.payments;
        }
    }
    let names = match wanted.used_by.as_slice() {
        [one] => one.clone(),
        _ => "<connection>".to_string(),
    };
    parts.push(match portal::probe_invoice_writes(&*hs, &currency).await {
        InvoiceProbe::Available if flags.invoices => format!(
            "invoice writes work now (probe), but the connection skips them: run \
             `ml-connector backfill {names} --only invoices`"
        ),
        InvoiceProbe::Available => "invoice writes work (probe)".into(),
        InvoiceProbe::Unavailable(e) => format!(
            "invoice writes NOT available in this portal ({e}): invoices are skipped until it \
             takes them"
        ),
        InvoiceProbe::NoKeyProperty if flags.invoices => {
            "invoices: no `fb_invoice_id` key yet (`ml-connector apply` creates it); the \
             connection recorded invoice writes as unavailable"
                .into()
        }
        InvoiceProbe::NoKeyProperty => {
            "invoices: no `fb_invoice_id` key yet, not probed: run `ml-connector apply`".into()
        }
        InvoiceProbe::Failed(e) => format!(
            "invoice probe failed ({e}); recorded: {}",
            if flags.invoices {
                "unavailable"
            } else {
                "no refusal"
            }
        ),
    });
    parts.push(if flags.payments {
        "commerce payments unavailable (recorded): payments go to the contact's properties".into()
    } else {
        "commerce payments: no refusal recorded".into()
    });
    (outcome, parts.join("; "))
}

/// The HubSpot-target connections of `set`, by credential set.
fn by_credentials(set: &ConnectionSet) -> BTreeMap<String, Vec<(String, Connection)>> {
    let mut out: BTreeMap<String, Vec<(String, Connection)>> = BTreeMap::new();
    for (name, c) in &set.connections {
        if c.target.vendor == Vendor::Hubspot {
            out.entry(c.target.credentials.clone())
                .or_default()
                .push((name.to_string(), c.clone()));
        }
    }
    out
}

/// Per portal (credential set): the property group and properties, then the invoice probe,
/// which sets or clears each connection's flag.
async fn apply(applying: &Applying<'_>) -> anyhow::Result<bool> {
    let mut ok = true;
    let definitions = portal::property_definitions();
    let group = portal::property_group();
    for (credentials, connections) in by_credentials(applying.new) {
        let names: Vec<&str> = connections.iter().map(|(n, _)| n.as_str()).collect();
        let hs = match applying.clients.hubspot(&credentials).await {
            Ok(hs) => hs,
            Err(e) => {
                println!(
                    "HubSpot `{credentials}` ({}): cannot set up the portal: {e}",
                    names.join(", ")
                );
                ok = false;
                continue;
            }
        };
        match properties::ensure(&*hs, &group, &definitions).await {
            Ok(done) => {
                println!(
                    "HubSpot `{credentials}` ({}): {} propert{} created{}, the rest in place",
                    names.join(", "),
                    done.created.len(),
                    if done.created.len() == 1 { "y" } else { "ies" },
                    if done.groups.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (group `{}` created on {})",
                            group.name,
                            join(&done.groups)
                        )
                    }
                );
                for w in &done.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(e) => {
                println!("HubSpot `{credentials}`: {e:#}");
                ok = false;
                continue;
            }
        }
        let currency = hs
            .account()
            .await
            .ok()
            .map(|a| a.company_currency)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "USD".to_string());
        ok &= probe_and_flag(&*hs, applying, &currency, &names).await;
    }
    Ok(ok)
}

/// The invoice probe on one portal, recorded on each connection writing to it.
async fn probe_and_flag(
    hs: &dyn HubspotApi,
    applying: &Applying<'_>,
    currency: &str,
    names: &[&str],
) -> bool {
    let available = match portal::probe_invoice_writes(hs, currency).await {
        InvoiceProbe::Available => true,
        InvoiceProbe::Unavailable(e) => {
            println!(
                "  warning: HubSpot refuses invoice writes in this portal ({e}): invoices are \
                 skipped; once it takes them, run `ml-connector backfill <connection> --only \
                 invoices`"
            );
            false
        }
        InvoiceProbe::NoKeyProperty => {
            println!(
                "  invoice writes not probed: the invoices have no unique `{}`",
                portal::invoice_key_property()
            );
            return false;
        }
        InvoiceProbe::Failed(e) => {
            println!("  invoice writes not probed ({e}); the connections' flags are unchanged");
            return false;
        }
    };
    let mut ok = true;
    for name in names {
        if let Err(e) =
            portal::set_invoices_available(&*applying.store, name, available, Utc::now()).await
        {
            println!("  `{name}`: could not record invoice availability: {e}");
            ok = false;
        }
    }
    if available {
        println!("  invoice writes work (probe)");
    }
    ok
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_warn_with_their_fix() {
        assert!(flag_warnings("c", Unavailable::default()).is_empty());
        let w = flag_warnings(
            "acme-books-to-hubspot",
            Unavailable {
                invoices: true,
                payments: true,
            },
        );
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("ml-connector backfill acme-books-to-hubspot --only invoices"));
        assert!(w[1].contains("payment processing") && w[1].contains("contact"));
    }
}
