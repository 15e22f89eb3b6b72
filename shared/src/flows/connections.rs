//! Loading a connections file: the structural checks of [`crate::connections`] plus what only
//! the layers above know — that this build runs the connection's flow, that each side is what
//! its vendor's spec asks, and that the options read into the flow's type.

use std::path::Path;

use super::Flow;
use super::options::OptionError;
use crate::connections::{Connection, ConnectionSet, ConnectionsError};
use crate::vendors::spec::check_endpoint;

impl ConnectionSet {
    /// Reads, parses and validates a connections file.
    pub fn load(path: &Path) -> Result<Self, ConnectionsError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConnectionsError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, ConnectionsError> {
        Self::parse_with(text, file, &check)
    }
}

/// The connection's flow is one of this build's, each side is what its vendor's spec asks, and
/// the options read into the flow's type.
fn check(conn: &Connection) -> Result<(), (String, String)> {
    let (source, target) = (conn.source.vendor, conn.target.vendor);
    let flow = Flow::of(conn).ok_or_else(|| {
        (
            "target.vendor".to_string(),
            format!(
                "there is no flow from {source} to {target} in this build; the flows it runs \
                 are: {}",
                Flow::list()
            ),
        )
    })?;
    check_endpoint(&conn.source, true).map_err(|(f, m)| (format!("source.{f}"), m))?;
    check_endpoint(&conn.target, false).map_err(|(f, m)| (format!("target.{f}"), m))?;
    flow.check_options(&conn.options).map_err(|e| match e {
        OptionError::Unknown { key, known } => (
            format!("options.{key}"),
            format!(
                "`{key}` is not an option of the {flow} flow (its options: {})",
                known.join(", ")
            ),
        ),
        OptionError::Invalid { key, message } => (format!("options.{key}"), message),
    })
}

#[cfg(test)]
mod tests;
