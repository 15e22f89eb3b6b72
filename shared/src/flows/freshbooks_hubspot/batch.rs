//! HubSpot batch calls in chunks of [`BATCH_LIMIT`], each outcome handed back to the record
//! it belongs to.

use crate::vendors::hubspot::models::{Association, AssociationType, HubObject, ObjectInput, ObjectType};
use crate::vendors::hubspot::{BATCH_LIMIT, HubspotApi, HubspotError};

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
) -> Vec<(String, Result<HubObject, HubspotError>)> {
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
                    out.push((p.key, r));
                }
            }
            Err(e) => {
                let shared = SharedError::new(e);
                for p in chunk {
                    out.push((p.key, Err(shared.copy())));
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
) -> Vec<(String, HubspotError)> {
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
                        failed.push((key.clone(), e));
                    }
                }
            }
            Err(e) => {
                let shared = SharedError::new(e);
                failed.extend(chunk.iter().map(|(key, _)| (key.clone(), shared.copy())));
            }
        }
    }
    failed
}

/// A whole-call error, handed to every record of the call: [`HubspotError`] holds a
/// `reqwest::Error` and is not `Clone`, so the copies keep what classification needs.
pub(super) struct SharedError(HubspotError);

impl SharedError {
    pub(super) fn new(e: HubspotError) -> Self {
        SharedError(e)
    }

    pub(super) fn copy(&self) -> HubspotError {
        match &self.0 {
            HubspotError::Api {
                status,
                category,
                sub_category,
                message,
                correlation_id,
                policy,
                retry_after,
                resets_at,
            } => HubspotError::Api {
                status: *status,
                category: category.clone(),
                sub_category: sub_category.clone(),
                message: message.clone(),
                correlation_id: correlation_id.clone(),
                policy: *policy,
                retry_after: *retry_after,
                resets_at: *resets_at,
            },
            HubspotError::DailyLimit { until } => HubspotError::DailyLimit { until: *until },
            HubspotError::UnexpectedBody { status, reason } => HubspotError::UnexpectedBody {
                status: *status,
                reason: reason.clone(),
            },
            HubspotError::Credentials(m) => HubspotError::Credentials(m.clone()),
            HubspotError::InvalidArgument(m) => HubspotError::InvalidArgument(m.clone()),
            // A transport failure is transient whatever it says; keep its text.
            HubspotError::Transport(e) => HubspotError::UnexpectedBody {
                status: 503,
                reason: format!("request failed: {e}"),
            },
        }
    }
}

