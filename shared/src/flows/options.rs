//! Connection options, typed: each flow's options are a serde struct
//! (`#[serde(default, deny_unknown_fields)]`, lower-case enums), and [`parse`] reads a
//! connection's `options` table into it with errors that name the option.
//!
//! `ml-connector connections check` and the workers read options through the same [`parse`],
//! so what the check accepts is exactly what a worker runs with.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use strum::VariantNames;

/// A flow's options: a serde struct with defaults for every field.
pub trait FlowOptions: DeserializeOwned + Default + Send + Sync + 'static {}

impl<T: DeserializeOwned + Default + Send + Sync + 'static> FlowOptions for T {}

/// Why a connection's options cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// The key is not an option of the flow; `known` lists the flow's options.
    #[error("options.{key}: `{key}` is not an option of this flow (its options: {})", known.join(", "))]
    Unknown {
        /// The key as written in the connection's `options` table.
        key: String,
        /// The flow's option names, for the message.
        known: &'static [&'static str],
    },
    /// The value does not fit the option; `message` says what it must be.
    #[error("options.{key}: {message}")]
    Invalid {
        /// The option.
        key: String,
        /// What the value must be (serde's message, e.g. the accepted values).
        message: String,
    },
}

impl OptionError {
    /// The option the error is about.
    #[cfg(test)]
    fn key(&self) -> &str {
        match self {
            OptionError::Unknown { key, .. } | OptionError::Invalid { key, .. } => key,
        }
    }
}

/// The option names of `O`, as spelled in a connections file.
pub(crate) fn keys<O: DeserializeOwned>() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<O>()
}

/// Reads a connection's `options` table into `O`, with defaults for what it leaves out.
///
/// Workers read options on every event, so the whole table is read once; only when that fails
/// are the keys read one at a time, to name the option the error is about.
pub fn parse<O: FlowOptions>(options: &BTreeMap<String, toml::Value>) -> Result<O, OptionError> {
    let known = keys::<O>();
    if let Some(key) = options.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(OptionError::Unknown {
            key: key.clone(),
            known,
        });
    }
    let table =
        |entries: Vec<(String, toml::Value)>| toml::Value::Table(entries.into_iter().collect());
    let all = options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    O::deserialize(table(all)).map_err(|whole| {
        options
            .iter()
            .find_map(|(key, value)| {
                let one = O::deserialize(table(vec![(key.clone(), value.clone())])).err()?;
                Some(OptionError::Invalid {
                    key: key.clone(),
                    message: one.message().trim_end().to_string(),
                })
            })
            .unwrap_or_else(|| OptionError::Invalid {
                key: "*".into(),
                message: whole.message().trim_end().to_string(),
            })
    })
}

/// For `#[serde(deserialize_with = "strict_bool")]`: `true` or `false`, never a string.
pub(crate) fn strict_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    bool::deserialize(d).map_err(|_: D::Error| D::Error::custom("must be true or false"))
}

/// Deserializes a lower-case option enum (strum `EnumString` + `VariantNames`), saying which
/// values it takes when the value is not one of them.
pub(crate) fn one_of<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + VariantNames,
{
    let expected = || match T::VARIANTS {
        [a, b] => format!("must be \"{a}\" or \"{b}\""),
        all => format!("must be one of {}", all.join(", ")),
    };
    let text = String::deserialize(d).map_err(|_: D::Error| D::Error::custom(expected()))?;
    text.parse().map_err(|_| D::Error::custom(expected()))
}

/// What to do with the target's record of a source record the flow no longer syncs (a
/// Mailchimp member, a HubSpot contact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, strum::EnumString, strum::VariantNames)]
#[strum(serialize_all = "lowercase")]
pub(crate) enum Retire {
    /// Archive it (never delete-permanent: Mailchimp could not take the address back).
    #[default]
    Archive,
    /// Leave it as it is.
    Keep,
}

impl<'de> Deserialize<'de> for Retire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::VariantNames)]
    #[strum(serialize_all = "lowercase")]
    enum Two {
        Left,
        Right,
    }

    impl<'de> Deserialize<'de> for Two {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            one_of(d)
        }
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Opts {
        #[serde(deserialize_with = "strict_bool")]
        flag: bool,
        side: Option<Two>,
    }

    fn opts(text: &str) -> Result<Opts, OptionError> {
        parse(&toml::from_str(text).unwrap())
    }

    #[test]
    fn reads_values_and_defaults() {
        assert_eq!(opts("").unwrap(), Opts::default());
        assert_eq!(
            opts("flag = true\nside = \"right\"").unwrap(),
            Opts {
                flag: true,
                side: Some(Two::Right)
            }
        );
        assert_eq!(keys::<Opts>(), ["flag", "side"]);
    }

    #[test]
    fn errors_name_the_option_and_what_it_takes() {
        assert_eq!(
            opts("flag = \"yes\"").unwrap_err().to_string(),
            "options.flag: must be true or false"
        );
        assert_eq!(
            opts("side = \"up\"").unwrap_err().to_string(),
            "options.side: must be \"left\" or \"right\""
        );
        assert_eq!(
            opts("side = 3").unwrap_err().to_string(),
            "options.side: must be \"left\" or \"right\""
        );
        let unknown = opts("colour = 1").unwrap_err();
        assert_eq!(unknown.key(), "colour");
        assert_eq!(
            unknown.to_string(),
            "options.colour: `colour` is not an option of this flow (its options: flag, side)"
        );
    }
}
