//! The connection options of the FreshBooks → Mailchimp flow, typed.
//!
//! `connections/validate.rs` checks the same keys with the same (shared) parsers when the file is
//! applied,
//! so a bad value is refused by `ml-connector connections check`; [`Options::parse`] still
//! reports one as a permanent error in case a set was stored without validation.

use std::collections::BTreeMap;

use crate::flows::mailchimp_member::{
    DEFAULT_STATUS_IF_NEW, Retire, parse_bool, parse_each, parse_member_status, parse_retire,
};

/// The options of one connection, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `status_if_new` for member upserts; default `transactional`.
    pub status_if_new: String,
    /// Sync draft invoices as `pending` orders; default false (drafts do not count in
    /// FreshBooks' accounting until sent).
    pub sync_drafts: bool,
    /// When a client's email changes: archive the old address's member (default) or keep it.
    pub on_email_change: Retire,
    /// When a client is deleted: archive its member (default) or keep it.
    pub on_client_delete: Retire,
    /// Also carry the payment status as tags (`freshbooks`, `fb-paid-up` | `fb-pending` |
    /// `fb-overdue`); default true. Merge fields are always written.
    pub tags: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            status_if_new: DEFAULT_STATUS_IF_NEW.to_string(),
            sync_drafts: false,
            on_email_change: Retire::Archive,
            on_client_delete: Retire::Archive,
            tags: true,
        }
    }
}

impl Options {
    /// Reads a connection's `options` table; unknown keys are ignored here (validation refuses
    /// them when the set is applied). The error names the option and what it must be.
    pub fn parse(options: &BTreeMap<String, toml::Value>) -> Result<Options, String> {
        let mut out = Options::default();
        parse_each(options, |key, value| {
            match key {
                "status_if_new" => out.status_if_new = parse_member_status(value)?,
                "sync_drafts" => out.sync_drafts = parse_bool(value)?,
                "on_email_change" => out.on_email_change = parse_retire(value)?,
                "on_client_delete" => out.on_client_delete = parse_retire(value)?,
                "tags" => out.tags = parse_bool(value)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(text: &str) -> Result<Options, String> {
        let table: BTreeMap<String, toml::Value> = toml::from_str(text).unwrap();
        Options::parse(&table)
    }

    #[test]
    fn defaults_are_conservative() {
        let o = opts("").unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.status_if_new, "transactional");
        assert!(!o.sync_drafts);
        assert_eq!(o.on_email_change, Retire::Archive);
        assert_eq!(o.on_client_delete, Retire::Archive);
        assert!(o.tags);
    }

    #[test]
    fn every_option_is_read() {
        let o = opts(
            "status_if_new = \"pending\"\nsync_drafts = true\non_email_change = \"keep\"\n\
             on_client_delete = \"keep\"\ntags = false\n",
        )
        .unwrap();
        assert_eq!(o.status_if_new, "pending");
        assert!(o.sync_drafts && !o.tags);
        assert_eq!(o.on_email_change, Retire::Keep);
        assert_eq!(o.on_client_delete, Retire::Keep);
    }

    #[test]
    fn bad_values_name_the_option() {
        let e = opts("on_email_change = \"delete\"").unwrap_err();
        assert_eq!(
            e,
            "options.on_email_change: must be \"archive\" or \"keep\""
        );
        let e = opts("tags = \"yes\"").unwrap_err();
        assert_eq!(e, "options.tags: must be true or false");
        let e = opts("status_if_new = \"cleaned\"").unwrap_err();
        assert!(
            e.starts_with("options.status_if_new: must be one of"),
            "{e}"
        );
    }
}
