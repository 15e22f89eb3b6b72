//! Checks a parsed [`ConnectionSet`]; every error names the file, connection and field.

use super::{ConnectionSet, ConnectionsError, Endpoint, FlowCheck};
use crate::vendor::Vendor;

pub(super) fn validate(
    set: &ConnectionSet,
    file: &str,
    check_flow: FlowCheck,
) -> Result<(), ConnectionsError> {
    for (name, conn) in &set.connections {
        let err = |field: &str, message: String| ConnectionsError::Invalid {
            file: file.to_string(),
            connection: name.clone(),
            field: field.to_string(),
            message,
        };
        check_name(name).map_err(|m| err("name", m))?;
        check_flow(conn).map_err(|(f, m)| err(&f, m))?;
        check_endpoint(&conn.source, true).map_err(|(f, m)| err(&format!("source.{f}"), m))?;
        check_endpoint(&conn.target, false).map_err(|(f, m)| err(&format!("target.{f}"), m))?;
    }
    check_duplicates(set, file)
}

fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(
            "use 1 to 64 letters, digits, `-` or `_` (the name appears in keys and routes)".into(),
        );
    }
    Ok(())
}

type FieldError = (&'static str, String);

fn check_endpoint(ep: &Endpoint, is_source: bool) -> Result<(), FieldError> {
    let vendor = ep.vendor;
    if ep.credentials.trim().is_empty() {
        return Err((
            "credentials",
            "must name the secret holding this vendor's credentials".into(),
        ));
    }
    if is_source {
        match ep.account.as_deref().map(str::trim) {
            None | Some("") => {
                return Err((
                    "account",
                    format!("required: {}", source_account_hint(vendor)),
                ));
            }
            Some(_) => {}
        }
    }
    let ids: [(&'static str, &Option<String>, Vendor); 5] = [
        ("list_id", &ep.list_id, Vendor::Mailchimp),
        ("store_id", &ep.store_id, Vendor::Mailchimp),
        ("portal_id", &ep.portal_id, Vendor::Hubspot),
        ("instance", &ep.instance, Vendor::Marketo),
        ("realm_id", &ep.realm_id, Vendor::Quickbooks),
    ];
    for (field, value, owner) in ids {
        match value.as_deref() {
            Some(v) if v.trim().is_empty() => return Err((field, "must not be empty".into())),
            Some(_) if owner != vendor => {
                return Err((
                    field,
                    format!("applies to a {owner} endpoint, not {vendor}"),
                ));
            }
            _ => {}
        }
    }
    if is_source {
        return Ok(());
    }
    let required: &[(&'static str, &Option<String>, &str)] = match vendor {
        Vendor::Mailchimp => &[(
            "list_id",
            &ep.list_id,
            "the audience id (Audience → Settings → Audience name and defaults)",
        )],
        Vendor::Hubspot => &[("portal_id", &ep.portal_id, "the HubSpot account (hub) id")],
        Vendor::Marketo => &[(
            "instance",
            &ep.instance,
            "the Munchkin id, e.g. 123-ABC-456",
        )],
        Vendor::Quickbooks => &[(
            "realm_id",
            &ep.realm_id,
            "the QuickBooks company (realm) id",
        )],
        Vendor::Stripe | Vendor::Freshbooks => {
            &[("account", &ep.account, "the account id the writes go to")]
        }
    };
    for (field, value, hint) in required {
        if value.is_none() {
            return Err((field, format!("required for a {vendor} target: {hint}")));
        }
    }
    Ok(())
}

fn source_account_hint(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Freshbooks => "the FreshBooks account id (e.g. `6BApk`)",
        Vendor::Quickbooks => "the QuickBooks realm (company) id",
        Vendor::Mailchimp => "the Mailchimp audience (list) id whose webhooks feed it",
        Vendor::Stripe => "the Stripe account id (`acct_…`) whose webhooks feed it",
        Vendor::Hubspot | Vendor::Marketo => "the account id",
    }
}

fn check_duplicates(set: &ConnectionSet, file: &str) -> Result<(), ConnectionsError> {
    let names: Vec<_> = set.connections.keys().collect();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let (ca, cb) = (&set.connections[*a], &set.connections[*b]);
            if ca.source == cb.source && same_target(&ca.target, &cb.target) {
                return Err(ConnectionsError::Invalid {
                    file: file.to_string(),
                    connection: (*b).clone(),
                    field: "target".into(),
                    message: format!(
                        "duplicates connection `{a}` (same source and target); every event would be written twice"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn same_target(a: &Endpoint, b: &Endpoint) -> bool {
    a.vendor == b.vendor
        && a.account == b.account
        && a.list_id == b.list_id
        && a.portal_id == b.portal_id
        && a.instance == b.instance
        && a.realm_id == b.realm_id
}
