//! The names and addresses the product passes around, each its own type so a connection name
//! cannot be handed where an account id belongs: [`ConnectionName`], [`AccountId`] and
//! [`Email`]. On the wire (queue messages, stored items, the connections file) each is the plain
//! string it wraps.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// Reads a `String` newtype as the `str` it wraps: `as_str`, `Deref<Target = str>`, `AsRef<str>`
/// and `Display`.
macro_rules! str_view {
    ($name:ident) => {
        impl $name {
            /// The string it wraps.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A name any string may be: [`str_view!`], plus `Borrow<str>` (so maps keyed by it are looked
/// up with a `&str`), conversions from and to strings, and comparisons with `str`.
macro_rules! string_newtype {
    ($name:ident) => {
        str_view!($name);

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// The name of a connection in the connections file (`[connection.<name>]`): the key of its id
/// map, audit trail and dead letters, and the address of every queue message.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionName(String);
string_newtype!(ConnectionName);

/// A vendor account as a source or target names it: a FreshBooks account id, a QuickBooks
/// realm id, a Mailchimp list id, a Stripe account id.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);
string_newtype!(AccountId);

/// An e-mail address as a marketing target keys a person: trimmed and not blank. Case is kept
/// as given (Mailchimp stores the address as written); two addresses are the same person when
/// they match without regard to ASCII case ([`Email::same`]), as Mailchimp's subscriber hash
/// lower-cases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// The address in `raw`, trimmed; `None` when there is none or it is blank.
    pub fn parse(raw: Option<&str>) -> Option<Email> {
        raw.map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| Email(e.to_string()))
    }

    /// Whether `other` is the same person's address (ASCII case and surrounding blanks aside).
    pub fn same(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

str_view!(Email);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn names_are_their_strings_on_the_wire_and_in_maps() {
        let name = ConnectionName::from("fb-to-mc");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"fb-to-mc\"");
        let back: ConnectionName = serde_json::from_str("\"fb-to-mc\"").unwrap();
        assert_eq!(back, name);
        let map = BTreeMap::from([(name.clone(), 1)]);
        assert_eq!(map.get("fb-to-mc"), Some(&1));
        assert!(name == "fb-to-mc");
        assert_eq!(format!("{name}"), "fb-to-mc");
        let account = AccountId::from("6BApk");
        assert_eq!(account.len(), 5);
        assert_eq!(String::from(account), "6BApk");
    }

    #[test]
    fn an_email_is_trimmed_not_blank_and_compared_without_case() {
        assert_eq!(Email::parse(None), None);
        assert_eq!(Email::parse(Some("   ")), None);
        let e = Email::parse(Some(" A@b.c ")).unwrap();
        assert_eq!(e.as_str(), "A@b.c");
        assert!(e.same(" a@B.C"));
        assert!(!e.same("a@b.cd"));
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"A@b.c\"");
    }
}
