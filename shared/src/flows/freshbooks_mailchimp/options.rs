//! The connection options of the FreshBooks → Mailchimp flow, typed. `ml-connector
//! connections check` and the worker read them with the same
//! [`crate::flows::options::parse`].

use serde::Deserialize;

use crate::flows::mailchimp_member::MemberStatus;
use crate::flows::options::{Retire, strict_bool};

/// The options of one connection, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `status_if_new` for member upserts; default `transactional`.
    pub(crate) status_if_new: MemberStatus,
    /// Sync draft invoices as `pending` orders; default false (drafts do not count in
    /// FreshBooks' accounting until sent).
    #[serde(deserialize_with = "strict_bool")]
    pub(crate) sync_drafts: bool,
    /// When a client's email changes: archive the old address's member (default) or keep it.
    pub(crate) on_email_change: Retire,
    /// When a client is deleted: archive its member (default) or keep it.
    pub(crate) on_client_delete: Retire,
    /// Also carry the payment status as tags (`freshbooks`, `fb-paid-up` | `fb-pending` |
    /// `fb-overdue`); default true. Merge fields are always written.
    #[serde(deserialize_with = "strict_bool")]
    pub(crate) tags: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            status_if_new: MemberStatus::Transactional,
            sync_drafts: false,
            on_email_change: Retire::Archive,
            on_client_delete: Retire::Archive,
            tags: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn opts(text: &str) -> Result<Options, String> {
        let table: BTreeMap<String, toml::Value> = toml::from_str(text).unwrap();
        crate::flows::options::parse(&table).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_conservative() {
        let o = opts("").unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.status_if_new.as_str(), "transactional");
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
        assert_eq!(o.status_if_new.as_str(), "pending");
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
