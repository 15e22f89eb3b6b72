//! [`QuickbooksToMailchimp`]: one QuickBooks customer event in, the Mailchimp member writes it
//! calls for out.
//!
//! Every path reads the customer's current state from QuickBooks (webhooks carry ids only, and
//! arrive out of order), maps it with [`super::mapping`], compares the fingerprint of what it
//! would write with the id map's, and only then talks to Mailchimp. The id map is saved after
//! the writes succeed, so a failure part way leaves the old entry and the retry writes again
//! (an upsert or an archive done twice is harmless).
//!
//! Id map key `customer:<id>`, under the connection name: target id = the email last synced
//! (what an email change or a deactivation archives); fingerprint of the member written, or
//! [`ARCHIVED`], or `merged:<survivor>` for a customer merged away (target id empty).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::mapping;
use super::options::Options;
use crate::connections::Connection;
use crate::event::SyncEvent;
use crate::flows::FlowHandler;
use crate::flows::clients::VendorClients;
use crate::flows::errors::from_vendor;
use crate::flows::mailchimp_member::{
    ARCHIVED, Audience, EmailChange, FlowParts, Retire, RetireReason, SourceSpec,
    name_merge_field_definitions, unchanged,
};
use crate::ids::Email;
use crate::ports::{Clock, IdMap, IdMapping};
use crate::vendors::quickbooks::QuickbooksApi;
use crate::worker::{Handled, HandlerError};

/// The QuickBooks entities the flow reads: its row in [`crate::flows::FLOWS`] and the check of
/// every event, from one list.
pub(crate) const ENTITIES: &[&str] = &["customer"];

/// What the flow takes from QuickBooks.
const SOURCE: SourceSpec = SourceSpec {
    vendor: "QuickBooks",
    account: "company (realm)",
    entities: ENTITIES,
};

/// The QuickBooks → Mailchimp flow, which the Mailchimp worker's
/// [`crate::flows::TargetDispatch`] dispatches to.
pub(crate) struct QuickbooksToMailchimp {
    parts: FlowParts,
}

/// Everything one event's handling needs about its connection.
struct Cx<'a> {
    realm: &'a str,
    options: Options,
    qb: Arc<dyn QuickbooksApi>,
    /// The audience, its Mailchimp client and the connection's id map.
    au: Audience<'a>,
}

impl QuickbooksToMailchimp {
    pub(crate) fn new(
        clients: Arc<dyn VendorClients>,
        id_map: Arc<dyn IdMap>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let parts = FlowParts::new(clients, id_map, clock);
        QuickbooksToMailchimp { parts }
    }

    /// Upserts the customer's member; archives the old member on an email change, and the
    /// member of a deactivated or vanished customer.
    async fn sync_customer(&self, cx: &Cx<'_>, id: &str) -> Result<Handled, HandlerError> {
        let previous = cx.au.ids.get(&mapping::customer_key(id)).await?;
        Ok(self.sync_customer_with(cx, id, previous).await?.0)
    }

    /// [`Self::sync_customer`] with the customer's id-map entry already read (`previous`), for
    /// a caller that has it. Returns the outcome and the email the entry names after it: `None`
    /// when it names none, or when the customer is itself merged away (a tombstone).
    async fn sync_customer_with(
        &self,
        cx: &Cx<'_>,
        id: &str,
        previous: Option<IdMapping>,
    ) -> Result<(Handled, Option<Email>), HandlerError> {
        let key = mapping::customer_key(id);
        if let Some(survivor) = previous
            .as_ref()
            .and_then(|m| mapping::merged_into(&m.fingerprint))
        {
            let skipped = Handled::Skipped {
                reason: format!("merged into {survivor}"),
            };
            return Ok((skipped, None));
        }
        let email_before = previous
            .as_ref()
            .and_then(|m| Email::parse(Some(&m.target_id)));
        let customer = cx.qb.customer(cx.realm, id).await.map_err(from_vendor)?;
        let customer = match customer {
            Some(c) if mapping::is_live(&c) => c,
            // An archive (the only write `retire` makes) keeps the email.
            Some(_) => {
                let retired = self
                    .retire(cx, &key, previous, "customer deactivated")
                    .await?;
                return Ok((retired, email_before));
            }
            None => {
                let retired = self
                    .retire(cx, &key, previous, "customer not found in QuickBooks")
                    .await?;
                return Ok((retired, email_before));
            }
        };
        let Some(email) = mapping::customer_email(&customer) else {
            let skipped = Handled::Skipped {
                reason: "customer has no email".into(),
            };
            return Ok((skipped, email_before));
        };
        let member = mapping::member_upsert(&customer, &email, cx.options.status_if_new.as_str());
        // The address a changed email leaves behind (the id map remembers the last one synced),
        // unless that member is already archived (the customer was deactivated meanwhile).
        let EmailChange {
            old: old_email,
            archive: retire_old,
        } = EmailChange::new(previous.as_ref(), &email, cx.options.on_email_change, true);
        let fp = mapping::member_fingerprint(cx.au.list_id, &member);
        if unchanged(previous.as_ref(), &fp, &email) {
            return Ok((Handled::Unchanged, email_before));
        }

        cx.au
            .ensure_merge_fields(&name_merge_field_definitions())
            .await?;
        let written = cx.au.upsert(&member).await?;
        // Archive the old address only once the new one is in place.
        let old_archived = match retire_old {
            Some(old) => Some(cx.au.archive(&old).await?),
            None => None,
        };
        cx.au.ids.put(&key, &email, &fp).await?;
        let synced = Handled::Synced {
            before: previous
                .map(|m| json!({"email": m.target_id, "archived": m.fingerprint == ARCHIVED})),
            written: Some(json!({
                "member": email,
                // What Mailchimp kept: an unsubscribed or archived member stays so, since only
                // `status_if_new` is sent.
                "member_status": written.status,
                "merge_fields": member.merge_fields,
                "old_email": old_email,
                "old_archived": old_archived,
            })),
        };
        Ok((synced, Some(email)))
    }

    /// A customer deactivated (QuickBooks' delete) or gone: archive its member unless the
    /// connection keeps it ([`Audience::retire`]); a reactivation later syncs again.
    async fn retire(
        &self,
        cx: &Cx<'_>,
        key: &str,
        previous: Option<IdMapping>,
        what: &str,
    ) -> Result<Handled, HandlerError> {
        let choice = cx.options.on_customer_deactivate;
        let option = "on_customer_deactivate";
        let reason = RetireReason {
            what,
            option,
            choice,
        };
        cx.au.retire(key, previous, reason).await
    }

    /// `merged_away` was merged into `survivor` in QuickBooks: the survivor takes over the
    /// merged-away customer's mapping (when it has none of its own, so a different email on the
    /// survivor is handled as an email change), the survivor is re-synced, a second member left
    /// behind (both were synced, with different emails) is archived per `on_email_change`, and
    /// the merged-away entry becomes a tombstone so its later events are skipped.
    ///
    /// Each step is safe to repeat: a retry after a failure part way finds the survivor's
    /// mapping in place and archives at most what is already archived (Mailchimp answers
    /// "nothing to archive").
    async fn merge(
        &self,
        cx: &Cx<'_>,
        survivor: &str,
        merged_away: &str,
    ) -> Result<Handled, HandlerError> {
        let away_key = mapping::customer_key(merged_away);
        let survivor_key = mapping::customer_key(survivor);
        let away = cx.au.ids.get(&away_key).await?;
        if away
            .as_ref()
            .is_some_and(|m| mapping::merged_into(&m.fingerprint).is_some())
        {
            // Already moved (a redelivered merge): the survivor's sync is all there is to do.
            return self.sync_customer(cx, survivor).await;
        }
        let away = away.filter(|m| !m.target_id.is_empty());
        let survivor_entry = cx.au.ids.get(&survivor_key).await?;
        let had_own = survivor_entry.is_some();
        let (moved, survivor_entry) = match &away {
            Some(m) if !had_own => {
                let moved = cx
                    .au
                    .ids
                    .put(&survivor_key, &m.target_id, &m.fingerprint)
                    .await?;
                (true, Some(moved))
            }
            _ => (false, survivor_entry),
        };
        // Compared with the survivor's address as now synced; a survivor that is itself a
        // tombstone (merges delivered out of order) or never got an email says nothing, so
        // nothing is archived on its account.
        let (survivor_result, survivor_email) = self
            .sync_customer_with(cx, survivor, survivor_entry)
            .await?;

        // Both were synced: the merged-away member is a second address for the same person.
        let mut left_behind = None;
        if let (Some(m), Some(survivor_email)) = (
            away.as_ref()
                .filter(|m| had_own && m.fingerprint != ARCHIVED),
            survivor_email,
        ) && !survivor_email.same(&m.target_id)
        {
            let archived = match cx.options.on_email_change {
                Retire::Archive => Some(cx.au.archive(&m.target_id).await?),
                Retire::Keep => None,
            };
            left_behind = Some(json!({"email": m.target_id, "archived": archived}));
        }
        cx.au
            .ids
            .put(&away_key, "", &mapping::merged_fingerprint(survivor))
            .await?;

        let archived_any = left_behind
            .as_ref()
            .is_some_and(|l| l["archived"] == json!(true));
        Ok(match survivor_result {
            Handled::Synced { before, written } => Handled::Synced {
                before,
                written: Some(json!({
                    "merged_away": merged_away,
                    "moved_mapping": moved,
                    "left_behind": left_behind,
                    "survivor": written,
                })),
            },
            _ if archived_any => Handled::Synced {
                before: None,
                written: Some(json!({
                    "merged_away": merged_away,
                    "moved_mapping": moved,
                    "left_behind": left_behind,
                })),
            },
            other => other,
        })
    }
}

/// What a customer event asks of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// The customer absorbed another (`detail` names it): move the merged-away one's member.
    Merge,
    /// Anything else (`create`, `update`, `delete`, and verbs QuickBooks may add): re-read the
    /// customer and sync what the read says, since the read, not the verb, says what is true.
    Sync,
}

impl Operation {
    /// The webhook parser spells a merge `merge` (CloudEvents' `merged` normalised); both are
    /// accepted, in any case, for events built elsewhere.
    fn of(event: &SyncEvent) -> Operation {
        if ["merge", "merged"]
            .iter()
            .any(|op| event.operation.eq_ignore_ascii_case(op))
        {
            Operation::Merge
        } else {
            Operation::Sync
        }
    }
}

#[async_trait]
impl FlowHandler for QuickbooksToMailchimp {
    /// Operations: `merge` moves the merged-away customer's mapping to the survivor;
    /// every other verb (`create`, `update`, `delete`, and ones QuickBooks may add) re-reads the
    /// customer and syncs what it finds, since the read — not the verb — says what is true now.
    async fn handle_connection(
        &self,
        name: &str,
        connection: &Connection,
        event: &SyncEvent,
    ) -> Result<Handled, HandlerError> {
        let begun = match self
            .parts
            .begin::<Options>(&SOURCE, name, connection, event)
            .await?
        {
            Ok(begun) => begun,
            Err(reason) => return Ok(Handled::Skipped { reason }),
        };
        let qb = self
            .parts
            .clients
            .quickbooks(&connection.source.credentials)
            .await?;
        let cx = Cx {
            realm: begun.account,
            options: begun.options,
            qb,
            au: begun.audience,
        };
        match Operation::of(event) {
            Operation::Merge => match mapping::merged_away_id(&event.detail) {
                Some(merged_away) if merged_away != event.entity_id => {
                    return self.merge(&cx, &event.entity_id, &merged_away).await;
                }
                _ => tracing::warn!(
                    connection = name,
                    customer = %event.entity_id,
                    "merge event without a (distinct) merged-away id; re-syncing the survivor only"
                ),
            },
            Operation::Sync => {}
        }
        self.sync_customer(&cx, &event.entity_id).await
    }
}
