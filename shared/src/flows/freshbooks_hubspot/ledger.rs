//! [`Ledger`]: what happened to each record a batch touched, and each event's answer from the
//! records it depends on.
//!
//! A batch writes per record, not per event: a client's contact is written once however many of
//! its invoices and payments are in the batch. Each event then answers from its own record
//! (the primary) and the records it refreshes: any failure fails the event (so the queue
//! retries it, and everything it touches is written again, idempotently); a skipped primary
//! skips it; anything written makes it synced.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::worker::{Handled, HandlerError};

/// One record's fate in the batch.
#[derive(Debug, Clone)]
enum Fate {
    Written(Map<String, Value>),
    Unchanged,
    Skipped(String),
    Failed(HandlerError),
}

/// The fates of the batch's records, by id-map key (`client:1`, `invoice:7`, …).
#[derive(Debug, Default)]
pub(super) struct Ledger {
    fates: HashMap<String, Fate>,
}

impl Ledger {
    /// `key` failed; a failure is final for the batch (later writes do not undo it).
    pub(super) fn fail(&mut self, key: &str, err: HandlerError) {
        self.fates.insert(key.to_string(), Fate::Failed(err));
    }

    /// `key` was deliberately not written.
    pub(super) fn skip(&mut self, key: &str, reason: impl Into<String>) {
        if !self.failed(key) {
            self.fates
                .insert(key.to_string(), Fate::Skipped(reason.into()));
        }
    }

    /// `key` needed no write.
    pub(super) fn unchanged(&mut self, key: &str) {
        self.fates.entry(key.to_string()).or_insert(Fate::Unchanged);
    }

    /// `what` of `key` was written as `value` (what the audit trail shows).
    pub(super) fn wrote(&mut self, key: &str, what: &str, value: Value) {
        match self.fates.get_mut(key) {
            Some(Fate::Failed(_)) => {}
            Some(Fate::Written(map)) => {
                map.insert(what.to_string(), value);
            }
            _ => {
                let mut map = Map::new();
                map.insert(what.to_string(), value);
                self.fates.insert(key.to_string(), Fate::Written(map));
            }
        }
    }

    /// Whether `key` failed.
    pub(super) fn failed(&self, key: &str) -> bool {
        matches!(self.fates.get(key), Some(Fate::Failed(_)))
    }

    /// Whether `key` is settled as failed or skipped: nothing more to write for it.
    pub(super) fn settled(&self, key: &str) -> bool {
        matches!(
            self.fates.get(key),
            Some(Fate::Failed(_) | Fate::Skipped(_))
        )
    }

    /// The answer of an event whose own record is `keys[0]` and which refreshes the rest.
    pub(super) fn answer(&self, keys: &[String]) -> Result<Handled, HandlerError> {
        if let Some(err) = keys.iter().find_map(|k| match self.fates.get(k) {
            Some(Fate::Failed(e)) => Some(e.clone()),
            _ => None,
        }) {
            return Err(err);
        }
        if let Some(Fate::Skipped(reason)) = keys.first().and_then(|k| self.fates.get(k)) {
            return Ok(Handled::Skipped {
                reason: reason.clone(),
            });
        }
        let mut written = Map::new();
        for key in keys {
            if let Some(Fate::Written(map)) = self.fates.get(key) {
                written.insert(key.clone(), Value::Object(map.clone()));
            }
        }
        Ok(if written.is_empty() {
            Handled::Unchanged
        } else {
            Handled::Synced {
                before: None,
                written: Some(Value::Object(written)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_event_answers_from_its_records() {
        let mut l = Ledger::default();
        l.wrote("client:1", "contact", json!({"email": "a@b.c"}));
        l.unchanged("invoice:7");
        assert!(matches!(
            l.answer(&keys(&["invoice:7", "client:1"])),
            Ok(Handled::Synced { .. })
        ));
        assert_eq!(l.answer(&keys(&["invoice:7"])), Ok(Handled::Unchanged));

        l.skip("invoice:8", "invoices_unavailable");
        assert_eq!(
            l.answer(&keys(&["invoice:8", "client:1"])),
            Ok(Handled::Skipped {
                reason: "invoices_unavailable".into()
            })
        );

        l.fail("client:1", HandlerError::transient("HTTP 503"));
        l.wrote("client:1", "company", json!({}));
        assert!(l.answer(&keys(&["invoice:7", "client:1"])).is_err());
        l.skip("client:1", "late");
        assert!(l.failed("client:1") && l.settled("client:1"));
    }
}
