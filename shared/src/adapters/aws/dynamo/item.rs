//! Building and reading DynamoDB items without panicking on a malformed one.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::ports::{PortError, PortResult};

/// One item, as the SDK represents it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The primary key `pk` + `sk` of a state-table item.
pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    ItemBuilder::new().s("pk", pk).s("sk", sk).build()
}

/// Builds an item attribute by attribute; `None`s are left out (absent, not null).
#[derive(Debug, Default)]
pub(super) struct ItemBuilder(Item);

impl ItemBuilder {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn s(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0
            .insert(name.to_string(), AttributeValue::S(value.into()));
        self
    }

    pub(super) fn opt_s(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.s(name, v),
            None => self,
        }
    }

    pub(super) fn n(mut self, name: &str, value: impl Display) -> Self {
        self.0
            .insert(name.to_string(), AttributeValue::N(value.to_string()));
        self
    }

    pub(super) fn opt_n(self, name: &str, value: Option<impl Display>) -> Self {
        match value {
            Some(v) => self.n(name, v),
            None => self,
        }
    }

    pub(super) fn b(mut self, name: &str, value: &[u8]) -> Self {
        self.0
            .insert(name.to_string(), AttributeValue::B(Blob::new(value)));
        self
    }

    pub(super) fn build(self) -> Item {
        self.0
    }
}

/// Typed reads of one item; a missing or mistyped attribute is [`PortError::Corrupt`].
pub(super) struct Fields<'a> {
    item: &'a Item,
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(item: &'a Item, what: &'static str) -> Self {
        Self { item, what }
    }

    fn corrupt(&self, name: &str, problem: &str) -> PortError {
        PortError::corrupt(self.what, format!("attribute `{name}` {problem}"))
    }

    pub(super) fn opt_s(&self, name: &str) -> PortResult<Option<&'a str>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s)),
            Some(_) => Err(self.corrupt(name, "is not a string")),
        }
    }

    pub(super) fn s(&self, name: &str) -> PortResult<&'a str> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    pub(super) fn opt_n<T: FromStr>(&self, name: &str) -> PortResult<Option<T>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(name, "is out of range")),
            Some(_) => Err(self.corrupt(name, "is not a number")),
        }
    }

    pub(super) fn n<T: FromStr>(&self, name: &str) -> PortResult<T> {
        self.opt_n(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    /// Binary data; an absent attribute is empty data (empty values are not written).
    pub(super) fn bytes(&self, name: &str) -> PortResult<&'a [u8]> {
        match self.item.get(name) {
            None => Ok(&[]),
            Some(AttributeValue::B(b)) => Ok(b.as_ref()),
            Some(_) => Err(self.corrupt(name, "is not binary")),
        }
    }

    pub(super) fn opt_time(&self, name: &str) -> PortResult<Option<DateTime<Utc>>> {
        self.opt_s(name)?
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| self.corrupt(name, "is not an RFC 3339 time"))
            })
            .transpose()
    }

    pub(super) fn time(&self, name: &str) -> PortResult<DateTime<Utc>> {
        self.opt_time(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    /// A time stored as epoch seconds (the TTL attribute).
    pub(super) fn opt_epoch(&self, name: &str) -> PortResult<Option<DateTime<Utc>>> {
        self.opt_n::<i64>(name)?
            .map(|secs| {
                DateTime::from_timestamp(secs, 0)
                    .ok_or_else(|| self.corrupt(name, "is not a representable time"))
            })
            .transpose()
    }

    /// A string attribute parsed with `FromStr` (enums).
    pub(super) fn parsed<T: FromStr>(&self, name: &str) -> PortResult<T> {
        let raw = self.s(name)?;
        raw.parse()
            .map_err(|_| self.corrupt(name, &format!("has unknown value `{raw}`")))
    }

    /// A string attribute holding a serde enum's name (e.g. `webhook` for `Origin::Webhook`).
    pub(super) fn opt_enum<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> PortResult<Option<T>> {
        self.opt_s(name)?
            .map(|raw| {
                serde_json::from_value(serde_json::Value::String(raw.to_string()))
                    .map_err(|_| self.corrupt(name, &format!("has unknown value `{raw}`")))
            })
            .transpose()
    }

    /// A string attribute holding JSON.
    pub(super) fn opt_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> PortResult<Option<T>> {
        self.opt_s(name)?
            .map(|s| {
                serde_json::from_str(s)
                    .map_err(|e| self.corrupt(name, &format!("is not valid: {e}")))
            })
            .transpose()
    }
}

/// Builds an item from `(name, value)` pairs, to spell out an expected stored item in tests.
#[cfg(test)]
pub(super) fn literal<const N: usize>(attributes: [(&str, AttributeValue); N]) -> Item {
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}
