//! The connection options of the QuickBooks → Mailchimp flow, typed.
//!
//! `connections/validate.rs` checks the same keys with the same (shared) parsers when the file is
//! applied; [`Options::parse`] still reports a bad value as a permanent error in case a set was
//! stored without validation.

use std::collections::BTreeMap;

use crate::flows::mailchimp_member::{
    DEFAULT_STATUS_IF_NEW, Retire, parse_each, parse_member_status, parse_retire,
};

/// The options of one connection, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `status_if_new` for member upserts; default `transactional` (an accounting record is not
    /// marketing consent). `status` itself is never sent.
    pub status_if_new: String,
    /// When a customer's email changes (or a merge leaves a second address behind): archive the
    /// old address's member (default) or keep it.
    pub on_email_change: Retire,
    /// When a customer is deactivated (QuickBooks' "delete") or gone: archive its member
    /// (default) or keep it.
    pub on_customer_deactivate: Retire,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            status_if_new: DEFAULT_STATUS_IF_NEW.to_string(),
            on_email_change: Retire::Archive,
            on_customer_deactivate: Retire::Archive,
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
                "on_email_change" => out.on_email_change = parse_retire(value)?,
                "on_customer_deactivate" => out.on_customer_deactivate = parse_retire(value)?,
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
    fn defaults_archive_and_never_subscribe() {
        let o = opts("").unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.status_if_new, "transactional");
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
        assert_eq!(o.status_if_new, "pending");
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
