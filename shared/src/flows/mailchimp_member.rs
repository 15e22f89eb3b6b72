//! What every flow that keeps Mailchimp audience members in step with a source's records shares
//! (FreshBooks clients and QuickBooks customers alike): the member options and their parsers,
//! the name merge fields, email identity, the skip-unchanged fingerprint, the checks before a
//! sync (`FlowParts::begin`), and one event's `Audience` — the Mailchimp client, the
//! per-process "already ensured" cache and the connection's id map — with the writes both
//! flows make (ensure merge fields, upsert, archive, retire a record's member).
//!
//! `connections/validate.rs` checks options with the parsers here, so what `ml-connector
//! connections check` accepts is exactly what the workers read.

use crate::ids::Email;
use crate::vendors::mailchimp::target::MailchimpTarget;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::connections::Connection;
use crate::event::SyncEvent;
use crate::flows::clients::VendorClients;
use crate::flows::errors::from_vendor;
use crate::flows::options::{FlowOptions, one_of};
use crate::ports::{Clock, IdMap, IdMapping};
use crate::vendors::mailchimp::models::{Member, MemberUpsert, MergeField};
use crate::vendors::mailchimp::{MailchimpApi, MailchimpError};
use crate::worker::{Handled, HandlerError};

// ---- options ----------------------------------------------------------------------------------

/// Mailchimp's `status_if_new` values a connection may choose. `cleaned` is Mailchimp's own
/// verdict on an address, never something a sync should set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, strum::EnumString, strum::VariantNames)]
#[strum(serialize_all = "lowercase")]
pub(crate) enum MemberStatus {
    Subscribed,
    Pending,
    Unsubscribed,
    /// Accounting data carries no marketing consent (docs/vendors/mailchimp.md §2.5): new members are
    /// transactional unless the connection says otherwise.
    #[default]
    Transactional,
}

impl MemberStatus {
    /// The value Mailchimp takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Subscribed => "subscribed",
            MemberStatus::Pending => "pending",
            MemberStatus::Unsubscribed => "unsubscribed",
            MemberStatus::Transactional => "transactional",
        }
    }
}

impl<'de> Deserialize<'de> for MemberStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d)
    }
}

pub(crate) use crate::flows::options::Retire;
pub(crate) use crate::flows::record_ids::{ConnectionIds, fingerprint};

// ---- members ----------------------------------------------------------------------------------

/// Merge tags for the person's names and company. Tags are at most 10 characters (Mailchimp's
/// limit).
const FNAME: &str = "FNAME";
const LNAME: &str = "LNAME";
const COMPANY: &str = "COMPANY";

/// The id-map fingerprint of a record whose member the flow archived (source record deleted or
/// deactivated). Never a sha256 hex, so it cannot collide with a real fingerprint.
pub(crate) const ARCHIVED: &str = "archived";

/// The definitions of [`FNAME`], [`LNAME`] and [`COMPANY`], for creating them on an audience
/// that lacks them (Mailchimp's default audience has only the first two).
pub(crate) fn name_merge_field_definitions() -> Vec<MergeField> {
    [
        (FNAME, "First Name"),
        (LNAME, "Last Name"),
        (COMPANY, "Company"),
    ]
    .into_iter()
    .map(|(tag, name)| MergeField {
        tag: tag.to_string(),
        name: name.to_string(),
        kind: "text".to_string(),
    })
    .collect()
}

/// The name merge fields of a person, each only when the source has a non-blank value, so a
/// blank source field does not wipe what someone typed in Mailchimp.
pub(crate) fn name_merge_fields(
    first: Option<&str>,
    last: Option<&str>,
    company: Option<&str>,
) -> BTreeMap<String, Value> {
    [(FNAME, first), (LNAME, last), (COMPANY, company)]
        .into_iter()
        .filter_map(|(tag, value)| {
            let v = value.map(str::trim).filter(|v| !v.is_empty())?;
            Some((tag.to_string(), json!(v)))
        })
        .collect()
}

// ---- email changes and unchanged writes ------------------------------------------------------

/// What a record's email means for the member last synced for it (the id map's entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmailChange {
    /// The address a changed email leaves behind: the last one synced (the entry's target id),
    /// when it is another member than the record's email now.
    pub(crate) old: Option<String>,
    /// `old`, when the connection archives it (`on_email_change = "archive"`).
    pub(crate) archive: Option<String>,
}

impl EmailChange {
    /// With `skip_archived`, an entry whose member is already [`ARCHIVED`] (the record was
    /// retired meanwhile) leaves nothing behind.
    pub(crate) fn new(
        previous: Option<&IdMapping>,
        email: &Email,
        on_email_change: Retire,
        skip_archived: bool,
    ) -> Self {
        let old = previous
            .filter(|m| !(skip_archived && m.fingerprint == ARCHIVED))
            .map(|m| m.target_id.clone())
            .filter(|old| !old.is_empty() && !email.same(old));
        let archive = old.clone().filter(|_| on_email_change == Retire::Archive);
        EmailChange { old, archive }
    }
}

/// Whether the id map's entry says this very write (fingerprint `fp`) was the last one synced,
/// to the same address: then there is nothing to write.
pub(crate) fn unchanged(previous: Option<&IdMapping>, fp: &str, email: &Email) -> bool {
    previous.is_some_and(|m| m.fingerprint == fp && email.same(&m.target_id))
}

// ---- the checks before a sync ----------------------------------------------------------------

/// What a Mailchimp-target flow takes from its source, for [`FlowParts::begin`]'s checks and
/// their messages.
pub(crate) struct SourceSpec {
    /// The source vendor as people spell it, e.g. `FreshBooks`.
    pub(crate) vendor: &'static str,
    /// What the source's `account` is, e.g. `account` or `company (realm)`.
    pub(crate) account: &'static str,
    /// The entities the flow syncs; events for others are skipped.
    pub(crate) entities: &'static [&'static str],
}

// ---- a flow's parts and one event's audience -----------------------------------------------

/// What every Mailchimp-target flow is built from: the vendor clients, the store (its id map), the clock, and the flow's per-process [`Ensured`] cache.
pub(crate) struct FlowParts {
    pub(crate) clients: Arc<dyn VendorClients>,
    /// The connections' id maps: all a flow needs of the state store.
    id_map: Arc<dyn IdMap>,
    pub(crate) clock: Arc<dyn Clock>,
    ensured: Ensured,
}

/// One event past [`FlowParts::begin`]: the source account, the connection's typed options and
/// the audience its member writes go to.
pub(crate) struct Begun<'a, O> {
    pub(crate) account: &'a str,
    pub(crate) options: O,
    pub(crate) audience: Audience<'a>,
}

impl FlowParts {
    pub(crate) fn new(
        clients: Arc<dyn VendorClients>,
        id_map: Arc<dyn IdMap>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        FlowParts {
            clients,
            id_map,
            clock,
            ensured: Ensured::default(),
        }
    }

    /// The checks every Mailchimp-target flow makes before calling any vendor (the target
    /// handler has already picked the flow from the connection): the entity is one the flow
    /// syncs and the connection is enabled (else `Ok(Err)` of a skip reason, audited as
    /// skipped), the event comes from the account the connection reads and the target names an
    /// audience (else a permanent configuration error that says what to fix). Then the
    /// connection's options (the flow's typed options, a bad value being a permanent
    /// configuration error) and its Mailchimp client.
    pub(crate) async fn begin<'a, O: FlowOptions>(
        &'a self,
        spec: &SourceSpec,
        name: &'a str,
        connection: &'a Connection,
        event: &SyncEvent,
    ) -> Result<Result<Begun<'a, O>, String>, HandlerError> {
        let SourceSpec {
            vendor,
            account: account_kind,
            entities,
        } = spec;
        if !entities.contains(&event.entity.as_str()) {
            return Ok(Err(format!(
                "{vendor} `{}` records are not synced to Mailchimp",
                event.entity
            )));
        }
        if !connection.enabled {
            return Ok(Err(format!("connection `{name}` is disabled")));
        }
        let account = connection.source.account.as_deref().unwrap_or_default();
        if event.source.account != account {
            return Err(HandlerError::permanent(
                "configuration",
                format!(
                    "the event is from {vendor} {account_kind} `{}` but connection `{name}` \
                     reads {account_kind} `{account}`",
                    event.source.account
                ),
            ));
        }
        let target = MailchimpTarget::of(&connection.target).map_err(|e| {
            HandlerError::permanent("configuration", format!("connection `{name}` {e}"))
        })?;
        let options = crate::flows::options::parse::<O>(&connection.options)
            .map_err(|e| HandlerError::permanent("configuration", format!("`{name}`: {e}")))?;
        Ok(Ok(Begun {
            account,
            options,
            audience: Audience {
                mc: self.clients.mailchimp(target.credentials).await?,
                list_id: target.list_id,
                credentials: target.credentials,
                ensured: &self.ensured,
                ids: ConnectionIds::new(&*self.id_map, &*self.clock, name),
            },
        }))
    }
}

/// Where one event's member writes go: the connection's audience through its Mailchimp
/// client, with the flow's [`Ensured`] cache and the connection's id map.
pub(crate) struct Audience<'a> {
    pub(crate) mc: Arc<dyn MailchimpApi>,
    pub(crate) list_id: &'a str,
    /// The Mailchimp credential-set name: part of every "ensured" key, since two Mailchimp
    /// accounts may use the same ids.
    pub(crate) credentials: &'a str,
    pub(crate) ensured: &'a Ensured,
    pub(crate) ids: ConnectionIds<'a>,
}

impl Audience<'_> {
    /// A Mailchimp error as a [`HandlerError`] ([`Ensured::mailchimp_error`]).
    pub(crate) fn error(&self, e: MailchimpError) -> HandlerError {
        self.ensured.mailchimp_error(e)
    }

    /// Makes sure the audience has every merge field in `fields` (read once per list and
    /// credential set per process, created when missing).
    pub(crate) async fn ensure_merge_fields(
        &self,
        fields: &[MergeField],
    ) -> Result<(), HandlerError> {
        let key = format!("merge-fields\0{}\0{}", self.credentials, self.list_id);
        if self.ensured.contains(&key) {
            return Ok(());
        }
        let have: HashSet<String> = self
            .mc
            .merge_fields(self.list_id)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|f| f.tag.to_ascii_uppercase())
            .collect();
        for field in fields {
            if have.contains(&field.tag) {
                continue;
            }
            match self.mc.create_merge_field(self.list_id, field).await {
                Ok(_) => {}
                // Another process created it first.
                Err(e) if already_exists(&e) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        self.ensured.insert(key);
        Ok(())
    }

    /// Upserts a member (`status_if_new` only: the body has no `status`).
    pub(crate) async fn upsert(&self, member: &MemberUpsert) -> Result<Member, HandlerError> {
        self.mc
            .upsert_member(self.list_id, member)
            .await
            .map_err(|e| self.error(e))
    }

    /// Archives the member of `email`; `false` when Mailchimp had nothing to archive.
    pub(crate) async fn archive(&self, email: &str) -> Result<bool, HandlerError> {
        self.mc
            .archive_member(self.list_id, email)
            .await
            .map_err(|e| self.error(e))
    }

    /// A source record deleted, deactivated or gone: archive the member of the last email
    /// synced (the id map's target id under `key`) unless the connection keeps it, and remember
    /// [`ARCHIVED`], so a repeat costs no call and a comeback syncs again. Never synced →
    /// skipped.
    pub(crate) async fn retire(
        &self,
        key: &str,
        previous: Option<IdMapping>,
        reason: RetireReason<'_>,
    ) -> Result<Handled, HandlerError> {
        let RetireReason {
            what,
            option,
            choice,
        } = reason;
        if choice == Retire::Keep {
            return Ok(Handled::Skipped {
                reason: format!(
                    "{what}; the connection keeps its member (options.{option} = \"keep\")"
                ),
            });
        }
        let Some(previous) = previous.filter(|m| !m.target_id.is_empty()) else {
            return Ok(Handled::Skipped {
                reason: format!("{what} before it was ever synced: no member to archive"),
            });
        };
        if previous.fingerprint == ARCHIVED {
            return Ok(Handled::Unchanged);
        }
        let archived = self.archive(&previous.target_id).await?;
        self.ids.put(key, &previous.target_id, ARCHIVED).await?;
        Ok(Handled::Synced {
            before: Some(json!({"email": previous.target_id})),
            // `false`: Mailchimp had nothing to archive (gone, already archived, cleaned).
            written: Some(json!({
                "archived": previous.target_id,
                "was_archivable": archived,
                "because": what,
            })),
        })
    }
}

// ---- retiring a member ------------------------------------------------------------------------

/// Why a source record's member may be archived, and the option that decides it.
pub(crate) struct RetireReason<'a> {
    /// What happened to the record, e.g. `client deleted` or `customer deactivated`.
    pub(crate) what: &'a str,
    /// The connection option that chose, e.g. `on_client_delete`.
    pub(crate) option: &'a str,
    pub(crate) choice: Retire,
}

// ---- ensuring what writes depend on -----------------------------------------------------------

/// Entries an [`Ensured`] holds before it starts over; bounds memory for a store with an
/// unbounded product catalogue.
const ENSURED_CAP: usize = 10_000;

/// Things (merge fields, stores, products) known to exist, per process: each is read (and
/// created if missing) once, not on every event. Keys should include the Mailchimp credential
/// set, since two accounts may use the same ids.
#[derive(Default)]
pub(crate) struct Ensured(Mutex<HashSet<String>>);

impl Ensured {
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    pub(crate) fn insert(&self, key: String) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= ENSURED_CAP {
            set.clear();
        }
        set.insert(key);
    }

    /// Forgets everything, e.g. after a 404 that may mean something cached was deleted behind
    /// our back: the replay re-creates what is missing.
    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Classifies a Mailchimp error ([`from_vendor`]). A 404 may mean a list, store or
    /// product cached as existing was deleted behind our back, so the cache starts over and the
    /// retry re-creates what is missing.
    fn mailchimp_error(&self, e: MailchimpError) -> HandlerError {
        if e.status() == Some(404) {
            self.clear();
        }
        from_vendor(e)
    }
}

/// Mailchimp's answer to creating something that exists. The exact title/detail is
/// UNCONFIRMED (docs/vendors/mailchimp.md §3.4 only says "already exists"), so this matches loosely on a 400.
pub(crate) fn already_exists(e: &MailchimpError) -> bool {
    match e {
        MailchimpError::Api {
            status: 400,
            title,
            detail,
            ..
        } => {
            let text = format!("{title} {detail}").to_ascii_lowercase();
            text.contains("already exists") || text.contains("duplicate")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_or_say_what_they_must_be() {
        let s = |v: &str| toml::Value::String(v.into());
        assert_eq!(
            MemberStatus::deserialize(s("pending")).unwrap(),
            MemberStatus::Pending
        );
        assert!(MemberStatus::deserialize(s("cleaned")).is_err());
        assert_eq!(Retire::deserialize(s("keep")).unwrap(), Retire::Keep);
        assert_eq!(
            Retire::deserialize(s("delete")).unwrap_err().message(),
            "must be \"archive\" or \"keep\""
        );
        assert_eq!(MemberStatus::default().as_str(), "transactional");
    }

    #[test]
    fn blank_names_are_left_out() {
        let f = name_merge_fields(Some(" Jane "), Some("  "), None);
        assert_eq!(json!(f), json!({"FNAME": "Jane"}));
    }

    #[test]
    fn fingerprints_ignore_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":null}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"b": 2})));
        assert_eq!(fingerprint(&a).len(), 64);
    }
}
