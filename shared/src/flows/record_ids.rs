//! What every flow keeps per connection about the records it wrote: the id map (source record →
//! target id and the fingerprint of what was written) and the fingerprint itself, so an
//! unchanged record costs no vendor call.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::flows::errors::from_port;
use crate::ports::{Clock, IdMap, IdMapping};
use crate::worker::HandlerError;

/// One connection's id map (entries stamped with the clock), for a flow's per-event context.
pub(crate) struct ConnectionIds<'a> {
    id_map: &'a dyn IdMap,
    clock: &'a dyn Clock,
    connection: &'a str,
}

impl<'a> ConnectionIds<'a> {
    pub(crate) fn new(id_map: &'a dyn IdMap, clock: &'a dyn Clock, connection: &'a str) -> Self {
        ConnectionIds {
            id_map,
            clock,
            connection,
        }
    }

    /// The entry `key`.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<IdMapping>, HandlerError> {
        self.id_map
            .get_mapping(self.connection, key)
            .await
            .map_err(from_port)
    }

    /// Saves the entry `key`, and returns it as saved.
    pub(crate) async fn put(
        &self,
        key: &str,
        target_id: &str,
        fingerprint: &str,
    ) -> Result<IdMapping, HandlerError> {
        let mapping = IdMapping {
            target_id: target_id.to_string(),
            fingerprint: fingerprint.to_string(),
            updated_at: self.clock.now(),
        };
        self.id_map
            .put_mapping(self.connection, key, &mapping)
            .await
            .map_err(from_port)?;
        Ok(mapping)
    }
}

/// sha256 (hex) of the canonical JSON of `value`: what skip-unchanged compares. Maps serialize
/// with sorted keys and structs in declaration order, so equal writes give equal prints.
pub(crate) fn fingerprint(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// JSON with object keys sorted at every level. `Value::to_string` is not enough: with
/// serde_json's `preserve_order` feature (which another crate in the build may switch on)
/// objects keep insertion order, and the same record would fingerprint differently.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
