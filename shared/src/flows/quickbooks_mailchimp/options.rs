//! The connection options of the QuickBooks → Mailchimp flow, typed. `ml-connector
//! connections check` and the worker read them with the same
//! [`crate::flows::options::parse`].

use serde::Deserialize;

use crate::flows::mailchimp_member::{MemberStatus, Retire};

/// The options of one connection, with defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `status_if_new` for member upserts; default `transactional` (an accounting record is not
    /// marketing consent). `status` itself is never sent.
    pub(crate) status_if_new: MemberStatus,
    /// When a customer's email changes (or a merge leaves a second address behind): archive the
    /// old address's member (default) or keep it.
    pub(crate) on_email_change: Retire,
    /// When a customer is deactivated (QuickBooks' "delete") or gone: archive its member
    /// (default) or keep it.
    pub(crate) on_customer_deactivate: Retire,
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
    fn defaults_archive_and_never_subscribe() {
        let o = opts("").unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.status_if_new.as_str(), "transactional");
        assert_eq!(o.on_email_change, Retire::Archive);
        assert_eq!(o.on_customer_deactivate, Retire::Archive);
    }

    #[test]
    fn every_option_is_read_and_bad_values_name_the_option() {
        let o = opts(
            "status_if_new = \"pending\"\non_email_change = \"keep\"\n\
             on_customer_deactivate = \"keep\"\n",
        )
        .unwrap();
        assert_eq!(o.status_if_new.as_str(), "pending");
        assert_eq!(o.on_email_change, Retire::Keep);
        assert_eq!(o.on_customer_deactivate, Retire::Keep);

        let e = opts("on_customer_deactivate = \"delete\"").unwrap_err();
        assert_eq!(
            e,
            "options.on_customer_deactivate: must be \"archive\" or \"keep\""
        );
        let e = opts("status_if_new = \"cleaned\"").unwrap_err();
        assert!(
            e.starts_with("options.status_if_new: must be one of"),
            "{e}"
        );
    }
}
