//! Configuration from the environment, in one shape: every settings type that a function reads
//! from its environment implements [`FromEnv`], reads its variables through [`Vars`] and fails
//! with the one [`ConfigError`], which names the variable, what it must be and what it was.
//!
//! Each Lambda reads one struct (`app::env`: `WebhookEnv`, `WorkerEnv`, `PollerEnv`) once at
//! start; tests read the same structs through [`FromEnv::from_lookup`] over a map. This module
//! sits at the bottom of the layers (it imports nothing of the crate), so any module may use it.

use std::fmt;

/// A setting in the environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset (or blank, where a blank value means nothing).
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable whose value is not what it must be.
    #[error("environment variable {name} must be {expected}, got `{value}`")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What the value must be, e.g. "a positive whole number".
        expected: &'static str,
        /// The value as set.
        value: String,
    },
    /// A variable holding structured data (JSON) that does not parse, or one entry of it that is
    /// wrong (`entry`). The value itself is not repeated: it can be long.
    #[error("{name}{}: {reason}", Entry(entry))]
    Malformed {
        /// The variable.
        name: &'static str,
        /// The entry at fault, when the value parsed but one entry of it is wrong.
        entry: Option<String>,
        /// Why the value or entry cannot be used (a parser's message, or what is missing).
        reason: String,
    },
}

/// `` entry `<name>` `` when there is one.
struct Entry<'a>(&'a Option<String>);

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(entry) => write!(f, " entry `{entry}`"),
            None => Ok(()),
        }
    }
}

/// The variables a settings type is read from: the process environment, or a map in tests.
pub struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    /// Variables read through `lookup`.
    fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The value as set, untrimmed; `None` when unset.
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The trimmed value; `None` when unset or blank.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value as set, which may be empty but must be set.
    pub(crate) fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.raw(name).ok_or(ConfigError::Missing(name))
    }

    /// The trimmed value, which must be set and not blank.
    pub(crate) fn required_text(&self, name: &'static str) -> Result<String, ConfigError> {
        self.text(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number of at least `min` (0 or 1); `None` when unset. Set but unparsable is an
    /// error, not the default.
    pub(crate) fn number(&self, name: &'static str, min: u64) -> Result<Option<u64>, ConfigError> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        match raw.trim().parse::<u64>() {
            Ok(n) if n >= min => Ok(Some(n)),
            _ => Err(ConfigError::Invalid {
                name,
                expected: if min == 0 {
                    "a whole number"
                } else {
                    "a positive whole number"
                },
                value: raw,
            }),
        }
    }

    /// [`Vars::number`] that must also fit in 32 bits.
    pub(crate) fn number_u32(
        &self,
        name: &'static str,
        min: u64,
    ) -> Result<Option<u32>, ConfigError> {
        self.number(name, min)?
            .map(|n| {
                u32::try_from(n).map_err(|_| ConfigError::Invalid {
                    name,
                    expected: "a number below 2^32",
                    value: n.to_string(),
                })
            })
            .transpose()
    }
}

/// Settings read from environment variables. Unset optional variables take the defaults; set but
/// unusable ones are errors.
pub trait FromEnv: Sized {
    /// Reads the settings from `vars`.
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError>;

    /// Reads the settings through `lookup` (a map in tests).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Vars::new(&lookup))
    }

    /// Reads the settings from the process environment (a variable that is not Unicode counts
    /// as unset).
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_text_numbers_and_required_values() {
        let lookup = vars(&[
            ("A", " x "),
            ("EMPTY", ""),
            ("N", " 7 "),
            ("BIG", "5000000000"),
        ]);
        let v = Vars::new(&lookup);
        assert_eq!(v.raw("A").as_deref(), Some(" x "));
        assert_eq!(v.text("A").as_deref(), Some("x"));
        assert_eq!(v.text("EMPTY"), None);
        assert_eq!(v.required("EMPTY").as_deref(), Ok(""));
        assert_eq!(v.required_text("EMPTY"), Err(ConfigError::Missing("EMPTY")));
        assert_eq!(v.required("UNSET"), Err(ConfigError::Missing("UNSET")));
        assert_eq!(v.number("N", 1), Ok(Some(7)));
        assert_eq!(v.number("UNSET", 1), Ok(None));
        assert_eq!(v.number_u32("N", 0), Ok(Some(7)));
        assert_eq!(
            v.number("EMPTY", 0).unwrap_err().to_string(),
            "environment variable EMPTY must be a whole number, got ``"
        );
        assert_eq!(
            v.number("A", 1).unwrap_err().to_string(),
            "environment variable A must be a positive whole number, got ` x `"
        );
        assert_eq!(
            v.number_u32("BIG", 1).unwrap_err().to_string(),
            "environment variable BIG must be a number below 2^32, got `5000000000`"
        );
    }

    #[test]
    fn messages_name_the_variable() {
        assert_eq!(
            ConfigError::Missing("QUEUES").to_string(),
            "environment variable QUEUES is not set"
        );
        let entry = ConfigError::Malformed {
            name: "QUEUES",
            entry: Some("hubspot".into()),
            reason: "`url` is not an http(s) URL".into(),
        };
        assert_eq!(
            entry.to_string(),
            "QUEUES entry `hubspot`: `url` is not an http(s) URL"
        );
        let whole = ConfigError::Malformed {
            name: "QUEUES",
            entry: None,
            reason: "not a JSON object of queues: EOF".into(),
        };
        assert_eq!(
            whole.to_string(),
            "QUEUES: not a JSON object of queues: EOF"
        );
    }
}
