//! Building and reading DynamoDB items without panicking on a malformed one.
//!
//! Records with a port type of their own (audit entries, dead letters, id mappings, callbacks)
//! go through serde_dynamo, one stored layout per type ([`to_item`], [`from_item`],
//! [`super::format`]): the writer and the reader cannot disagree. The other items stay built and
//! read by hand ([`ItemBuilder`], [`Fields`]), where serde_dynamo would add code, not remove it:
//! - claims and leases (`state.rs`) are written by conditional puts whose conditions name the
//!   same attributes and constants; built beside the condition, both read as one, and a struct
//!   per item would be longer than the builder chain;
//! - blob chunks (`blobs.rs`) carry binary `data`, which serde writes as a list of numbers unless
//!   wrapped, and are read by borrowing each chunk from the page rather than copying it;
//! - cursors and the connections item are one or two attributes past the key.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_dynamo::AttributeValue as DynamoValue;

use crate::ports::{PortError, PortResult};

/// One item, as the SDK represents it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The primary key `pk` + `sk` of a state-table item.
pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    ItemBuilder::new().s("pk", pk).s("sk", sk).build()
}

/// A record's item through its stored layout: the `serialize` of a `#[serde(remote = …)]`
/// definition of the port type. serde_dynamo writes `None` as NULL; the stored items have always
/// left such attributes out, so NULLs are dropped.
pub(super) fn to_item<T>(
    record: &T,
    layout: impl FnOnce(&T, serde_dynamo::Serializer) -> serde_dynamo::Result<DynamoValue>,
    what: &'static str,
) -> PortResult<Item> {
    let unwritable = |e: &dyn std::fmt::Display| {
        PortError::backend(
            "dynamodb",
            format!("{what} cannot be written as an item: {e}"),
        )
    };
    let DynamoValue::M(attributes) =
        layout(record, serde_dynamo::Serializer).map_err(|e| unwritable(&e))?
    else {
        return Err(unwritable(&"not a map"));
    };
    let mut item = Item::from(serde_dynamo::Item::from(attributes));
    item.retain(|_, value| !value.is_null());
    Ok(item)
}

/// A record read from its item through its stored layout (the remote definition's
/// `deserialize`); attributes the layout does not name (keys, derived attributes) are ignored.
pub(super) fn from_item<T>(
    item: Item,
    layout: impl FnOnce(serde_dynamo::Deserializer) -> serde_dynamo::Result<T>,
    what: &'static str,
) -> PortResult<T> {
    let attributes = DynamoValue::M(serde_dynamo::Item::from(item).into());
    layout(serde_dynamo::Deserializer::from_attribute_value(attributes))
        .map_err(|e| PortError::corrupt(what, e))
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

    fn opt_s(&self, name: &str) -> PortResult<Option<&'a str>> {
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

    /// A string attribute parsed with `FromStr` (enums).
    pub(super) fn parsed<T: FromStr>(&self, name: &str) -> PortResult<T> {
        let raw = self.s(name)?;
        raw.parse()
            .map_err(|_| self.corrupt(name, &format!("has unknown value `{raw}`")))
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
