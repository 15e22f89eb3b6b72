//! HubSpot batch calls in chunks of [`BATCH_LIMIT`], each outcome handed back to the record
//! it belongs to.

use crate::flows::errors::from_vendor;
use crate::vendors::hubspot::models::{
    Association, AssociationType, HubObject, ObjectInput, ObjectType,
};
use crate::vendors::hubspot::{BATCH_LIMIT, HubspotApi, HubspotError};
use crate::worker::HandlerError;

/// One upsert or update input, and the record key its outcome belongs to.
pub(super) struct Pending {
    pub(super) key: String,
    pub(super) input: ObjectInput,
}

/// Writes `pending` in chunks of [`BATCH_LIMIT`]: by `id_property` (an upsert) or, with
/// `None`, by HubSpot id (an update). Returns each record's object, or its error (a whole
/// chunk failing fails every record in it).
pub(super) async fn write_objects(
    hs: &dyn HubspotApi,
    object: ObjectType,
    id_property: Option<&str>,
    pending: Vec<Pending>,
) -> Vec<(String, Result<HubObject, WriteError>)> {
    let mut out = Vec::with_capacity(pending.len());
    let mut rest = pending;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(BATCH_LIMIT));
        let chunk = std::mem::replace(&mut rest, tail);
        let inputs: Vec<ObjectInput> = chunk.iter().map(|p| p.input.clone()).collect();
        let answer = match id_property {
            Some(prop) => hs.upsert(object, prop, &inputs).await,
            None => hs.update(object, &inputs).await,
        };
        match answer {
            Ok(results) => {
                let mut results = results.into_iter();
                for p in chunk {
                    let r = results.next().unwrap_or_else(|| {
                        Err(HubspotError::UnexpectedBody {
                            status: 200,
                            reason: "fewer results than inputs".into(),
                        })
                    });
                    out.push((p.key, r.map_err(WriteError::from)));
                }
            }
            Err(e) => {
                let shared = WriteError::from(e);
                for p in chunk {
                    out.push((p.key, Err(shared.clone())));
                }
            }
        }
    }
    out
}

/// Associates `pairs` (with the record key each belongs to) in chunks; with `label`, a
/// labelled association, else the default one. Returns the keys whose association failed.
pub(super) async fn associate(
    hs: &dyn HubspotApi,
    from: ObjectType,
    to: ObjectType,
    label: Option<AssociationType>,
    pairs: Vec<(String, Association)>,
) -> Vec<(String, WriteError)> {
    let mut failed = Vec::new();
    for chunk in pairs.chunks(BATCH_LIMIT) {
        let inputs: Vec<Association> = chunk.iter().map(|(_, a)| a.clone()).collect();
        let answer = match label {
            Some(label) => hs.associate_labelled(from, to, label, &inputs).await,
            None => hs.associate(from, to, &inputs).await,
        };
        match answer {
            Ok(results) => {
                for ((key, _), r) in chunk.iter().zip(results) {
                    if let Err(e) = r {
                        failed.push((key.clone(), WriteError::from(e)));
                    }
                }
            }
            Err(e) => {
                let shared = WriteError::from(e);
                failed.extend(chunk.iter().map(|(key, _)| (key.clone(), shared.clone())));
            }
        }
    }
    failed
}

/// A record's failed write, classified once: a whole-call failure is shared by every record
/// of the call.
#[derive(Debug, Clone)]
pub(super) struct WriteError {
    /// The portal refuses writes of this kind (a 403): a fallback, not a failure.
    pub(super) unavailable: bool,
    /// What HubSpot said, for skip reasons and logs.
    pub(super) message: String,
    /// The failure as the harness settles it.
    pub(super) error: HandlerError,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<HubspotError> for WriteError {
    fn from(e: HubspotError) -> Self {
        WriteError {
            unavailable: e.is_unavailable(),
            message: e.to_string(),
            error: from_vendor(e),
        }
    }
}
