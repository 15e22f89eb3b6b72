//! The connection options of the FreshBooks → HubSpot flow, typed. `ml-connector connections
//! check` and the worker read them with the same [`crate::flows::options::parse`].

use serde::{Deserialize, Deserializer};

use crate::flows::options::{Retire, one_of, strict_bool};
pub use crate::vendors::hubspot::credentials::Tier;

/// The options of one connection, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Sync FreshBooks drafts as draft HubSpot invoices; default false (drafts do not count in
    /// FreshBooks' accounting until sent).
    #[serde(deserialize_with = "strict_bool")]
    pub(crate) sync_drafts: bool,
    /// When a client is deleted: keep its contact, flagged `fb_deleted` (default), or archive
    /// it.
    pub(crate) on_client_delete: Retire,
    /// The portal's subscription tier, which sets HubSpot's burst limit (100 per 10 s on
    /// free and starter, 190 on professional and enterprise, 250 with the API add-on;
    /// docs/vendors/hubspot.md §4.1). Unset: 100, raised or lowered as HubSpot's
    /// `X-HubSpot-RateLimit-Max` header says.
    pub(crate) tier: Option<Tier>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_drafts: false,
            on_client_delete: Retire::Keep,
            tier: None,
        }
    }
}

/// The tier as a connection option spells it, the credential set's spelling.
impl<'de> Deserialize<'de> for Tier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d)
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
    fn defaults_keep_contacts_and_skip_drafts() {
        let o = opts("").unwrap();
        assert_eq!(o, Options::default());
        assert!(!o.sync_drafts);
        assert_eq!(o.on_client_delete, Retire::Keep);
        assert_eq!(o.tier, None);
    }

    #[test]
    fn every_option_is_read() {
        let o =
            opts("sync_drafts = true\non_client_delete = \"archive\"\ntier = \"professional\"\n")
                .unwrap();
        assert!(o.sync_drafts);
        assert_eq!(o.on_client_delete, Retire::Archive);
        assert_eq!(o.tier.map(Tier::burst), Some(190));
    }

    #[test]
    fn bad_values_name_the_option() {
        let e = opts("tier = \"gold\"").unwrap_err();
        assert!(
            e.contains("options.tier") && e.contains("professional"),
            "{e}"
        );
        let e = opts("on_client_delete = \"purge\"").unwrap_err();
        assert!(e.contains("on_client_delete"), "{e}");
        let e = opts("sync_drafts = \"yes\"").unwrap_err();
        assert!(e.contains("sync_drafts"), "{e}");
    }
}
