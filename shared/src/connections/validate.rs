//! Checks a parsed [`ConnectionSet`]; every error names the file, connection and field.

use super::{ConnectionCheck, ConnectionSet, ConnectionsError, Endpoint};

pub(super) fn validate(
    set: &ConnectionSet,
    file: &str,
    check: ConnectionCheck,
) -> Result<(), ConnectionsError> {
    for (name, conn) in &set.connections {
        let err = |field: &str, message: String| ConnectionsError::Invalid {
            file: file.to_string(),
            connection: name.to_string(),
            field: field.to_string(),
            message,
        };
        check_name(name).map_err(|m| err("name", m))?;
        check(conn).map_err(|(f, m)| err(&f, m))?;
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

fn check_duplicates(set: &ConnectionSet, file: &str) -> Result<(), ConnectionsError> {
    let names: Vec<_> = set.connections.keys().collect();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let (ca, cb) = (&set.connections[*a], &set.connections[*b]);
            if ca.source == cb.source && same_target(&ca.target, &cb.target) {
                return Err(ConnectionsError::Invalid {
                    file: file.to_string(),
                    connection: b.to_string(),
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
