//! An in-memory HubSpot portal for the HubSpot flow's unit tests: objects by type with
//! unique-property upserts (emails case-insensitive, as HubSpot stores them lower-cased),
//! associations, properties and groups, every call recorded, and HubSpot's refusals as
//! switches (docs/vendors/hubspot.md §3, §4, §5):
//!
//! - per-input errors ([`HsState::refuse`]), answered inside the batch as a 207 would be;
//! - whole-call failures ([`HsState::fail_next`]): a status, or a 429 of a policy;
//! - invoice writes unavailable and no payment processing: 403 `MISSING_SCOPES`-style, for
//!   every write of invoices or commerce payments (how a real portal answers is UNCONFIRMED,
//!   §3.6, §3.7; the client reads any 403 as "unavailable", `HubspotError::is_unavailable`);
//! - the daily limit spent: every call answers [`HubspotError::DailyLimit`].
//!
//! [`FakeHubspot`] is `HubspotApi` itself; [`crate::testing::fakes::FakeClients`] serves it for
//! credential set `hs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::testing::fakes::lock;
use crate::vendors::hubspot::api::PerInput;
use crate::vendors::hubspot::error::RatePolicy;
use crate::vendors::hubspot::models::{
    AccountDetails, Association, AssociationType, HubObject, ObjectInput, ObjectType,
    PropertyDefinition, PropertyGroup, TokenInfo,
};
use crate::vendors::hubspot::{BATCH_LIMIT, HubspotApi, HubspotError};

/// The method names [`FakeHubspot::calls_to`] uses.
pub mod method {
    /// `HubspotApi::upsert`.
    pub const UPSERT: &str = "upsert";
    /// `HubspotApi::update`.
    pub const UPDATE: &str = "update";
    /// `HubspotApi::read`.
    pub const READ: &str = "read";
    /// `HubspotApi::archive`.
    pub const ARCHIVE: &str = "archive";
    /// `HubspotApi::associate`.
    pub const ASSOCIATE: &str = "associate";
    /// `HubspotApi::associate_labelled`.
    pub const ASSOCIATE_LABELLED: &str = "associate_labelled";
    /// `HubspotApi::properties`.
    pub const PROPERTIES: &str = "properties";
    /// `HubspotApi::create_property`.
    pub const CREATE_PROPERTY: &str = "create_property";
    /// `HubspotApi::property_groups`.
    pub const PROPERTY_GROUPS: &str = "property_groups";
    /// `HubspotApi::create_property_group`.
    pub const CREATE_PROPERTY_GROUP: &str = "create_property_group";
    /// `HubspotApi::account`.
    pub const ACCOUNT: &str = "account";
    /// `HubspotApi::token_info`.
    pub const TOKEN_INFO: &str = "token_info";

    /// The methods that write.
    pub const WRITES: [&str; 7] = [
        UPSERT,
        UPDATE,
        ARCHIVE,
        ASSOCIATE,
        ASSOCIATE_LABELLED,
        CREATE_PROPERTY,
        CREATE_PROPERTY_GROUP,
    ];
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The method ([`method`]).
    pub method: &'static str,
    /// The object type (for associations, the `from` type), if the call has one.
    pub object: Option<ObjectType>,
    /// How many inputs, ids or pairs it carried.
    pub inputs: usize,
}

/// A stored association.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredAssociation {
    /// The `from` type.
    pub from: ObjectType,
    /// The `from` object's id.
    pub from_id: String,
    /// The `to` type.
    pub to: ObjectType,
    /// The `to` object's id.
    pub to_id: String,
    /// The label's type id; `None` for the default (unlabelled) association.
    pub label: Option<u32>,
}

/// A whole-call failure to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An error answer of this status (`category` by status: 401 `EXPIRED_AUTHENTICATION`,
    /// 403 `MISSING_SCOPES`, 423 `LOCKED`, else `ERROR`).
    Status(u16),
    /// A 429 of this policy (`Daily` also starts the daily hold, as the client does, until
    /// [`HsState::daily_reset`]).
    RateLimited(RatePolicy),
}

/// The portal.
#[derive(Debug)]
pub struct HsState {
    /// Objects by type, then by HubSpot id.
    pub objects: BTreeMap<ObjectType, BTreeMap<String, HubObject>>,
    /// The next id handed out (ids are unique across types, as numbers in one sequence).
    pub next_id: u64,
    /// Every association made.
    pub associations: BTreeSet<StoredAssociation>,
    /// Property definitions by type (HubSpot's own are not listed: only `email` on contacts is
    /// known unique without a definition).
    pub properties: BTreeMap<ObjectType, Vec<PropertyDefinition>>,
    /// Property groups by type (seeded with `contactinformation` and `companyinformation`).
    pub groups: BTreeMap<ObjectType, Vec<PropertyGroup>>,
    /// What `account` answers.
    pub account: AccountDetails,
    /// What `token_info` answers.
    pub token: TokenInfo,
    /// Invoice writes answer 403.
    pub invoice_writes_unavailable: bool,
    /// Commerce-payment writes answer 403.
    pub no_payment_processing: bool,
    /// While set, every call answers `DailyLimit { until }`.
    pub daily_limit: Option<DateTime<Utc>>,
    /// When a `RateLimited(Daily)` failure holds until (default: far in the future).
    pub daily_reset: DateTime<Utc>,
    /// Per-input refusals by object type and key (an upsert key, lower-cased, or an object
    /// id): `(status, category, message)`, answered inside the batch.
    pub refuse: BTreeMap<(ObjectType, String), (u16, String, String)>,
    /// Whole-call failures, answered in order by the next calls.
    pub fail_next: VecDeque<Failure>,
}

impl Default for HsState {
    fn default() -> Self {
        let group = |name: &str, label: &str| PropertyGroup {
            name: name.into(),
            label: label.into(),
            display_order: -1,
        };
        Self {
            objects: BTreeMap::new(),
            next_id: 1001,
            associations: BTreeSet::new(),
            properties: BTreeMap::new(),
            groups: BTreeMap::from([
                (
                    ObjectType::Contacts,
                    vec![group("contactinformation", "Contact information")],
                ),
                (
                    ObjectType::Companies,
                    vec![group("companyinformation", "Company information")],
                ),
            ]),
            account: AccountDetails {
                portal_id: 1,
                account_type: "STANDARD".into(),
                time_zone: "US/Eastern".into(),
                company_currency: "USD".into(),
                data_hosting_location: "na1".into(),
            },
            token: TokenInfo {
                hub_id: 1,
                scopes: ObjectType::ALL
                    .iter()
                    .map(|o| o.write_scope().to_string())
                    .collect(),
                app_id: Some(1),
            },
            invoice_writes_unavailable: false,
            no_payment_processing: false,
            daily_limit: None,
            daily_reset: DateTime::<Utc>::MAX_UTC,
            refuse: BTreeMap::new(),
            fail_next: VecDeque::new(),
        }
    }
}

/// An error as the client parses a HubSpot error answer.
pub fn api_error(status: u16, category: &str, message: &str) -> HubspotError {
    HubspotError::Api {
        status,
        category: Some(category.into()),
        sub_category: None,
        message: message.into(),
        correlation_id: Some(format!("fake-{status}")),
        policy: None,
        retry_after: None,
        resets_at: None,
    }
}

/// A 429 of `policy`, as the client parses it.
pub fn rate_limited(policy: RatePolicy, resets_at: Option<DateTime<Utc>>) -> HubspotError {
    let (message, wait) = match policy {
        RatePolicy::TenSecondly => (
            "You have reached your ten_secondly_rolling limit.",
            Some(Duration::from_secs(10)),
        ),
        RatePolicy::Secondly => (
            "You have reached your secondly limit.",
            Some(Duration::from_secs(1)),
        ),
        RatePolicy::Daily => ("You have reached your daily limit.", None),
        RatePolicy::Other => ("Too many requests.", Some(Duration::from_secs(10))),
    };
    HubspotError::Api {
        status: 429,
        category: Some("RATE_LIMITS".into()),
        sub_category: None,
        message: message.into(),
        correlation_id: Some("fake-429".into()),
        policy: Some(policy),
        retry_after: wait,
        resets_at,
    }
}

/// The in-memory portal.
#[derive(Default)]
pub struct FakeHubspot {
    /// The portal's state; tests read and change it through [`FakeHubspot::with`].
    pub state: Mutex<HsState>,
    calls: Mutex<Vec<Call>>,
}

impl FakeHubspot {
    /// Reads or changes the state.
    pub fn with<R>(&self, f: impl FnOnce(&mut HsState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Every call so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *lock(&self.calls))
    }

    /// How many calls `method` got.
    pub fn calls_to(&self, method: &str) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// How many write calls were made.
    pub fn writes(&self) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|c| method::WRITES.contains(&c.method))
            .count()
    }

    /// The object of `object` type with HubSpot id `id`.
    pub fn object(&self, object: ObjectType, id: &str) -> Option<HubObject> {
        lock(&self.state).objects.get(&object)?.get(id).cloned()
    }

    /// Every object of a type.
    pub fn objects(&self, object: ObjectType) -> Vec<HubObject> {
        lock(&self.state)
            .objects
            .get(&object)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The object whose `property` is `value` (emails case-insensitively).
    pub fn find(&self, object: ObjectType, property: &str, value: &str) -> Option<HubObject> {
        let s = lock(&self.state);
        find_id(&s, object, property, value)
            .and_then(|id| s.objects.get(&object)?.get(&id).cloned())
    }

    /// The contact with this email.
    pub fn contact(&self, email: &str) -> Option<HubObject> {
        self.find(ObjectType::Contacts, "email", email)
    }

    /// The ids of the `to` objects associated with `from_id` (any label, either direction).
    pub fn associated(&self, from: ObjectType, from_id: &str, to: ObjectType) -> Vec<String> {
        let s = lock(&self.state);
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for a in &s.associations {
            if a.from == from && a.from_id == from_id && a.to == to {
                ids.insert(a.to_id.clone());
            }
            if a.to == from && a.to_id == from_id && a.from == to {
                ids.insert(a.from_id.clone());
            }
        }
        ids.into_iter().collect()
    }

    /// Records a call and answers a pending whole-call failure or the daily hold.
    fn call(
        &self,
        method: &'static str,
        object: Option<ObjectType>,
        inputs: usize,
    ) -> Result<(), HubspotError> {
        lock(&self.calls).push(Call {
            method,
            object,
            inputs,
        });
        let mut s = lock(&self.state);
        if let Some(until) = s.daily_limit {
            return Err(HubspotError::DailyLimit { until });
        }
        if inputs > BATCH_LIMIT {
            return Err(HubspotError::InvalidArgument(format!(
                "{inputs} inputs in one batch; HubSpot takes at most {BATCH_LIMIT}"
            )));
        }
        match s.fail_next.pop_front() {
            None => Ok(()),
            Some(Failure::Status(status)) => {
                let category = match status {
                    401 => "EXPIRED_AUTHENTICATION",
                    403 => "MISSING_SCOPES",
                    423 => "LOCKED",
                    _ => "ERROR",
                };
                Err(api_error(status, category, "injected failure"))
            }
            Some(Failure::RateLimited(RatePolicy::Daily)) => {
                let until = s.daily_reset;
                s.daily_limit = Some(until);
                Err(rate_limited(RatePolicy::Daily, Some(until)))
            }
            Some(Failure::RateLimited(policy)) => Err(rate_limited(policy, None)),
        }
    }

    /// A write of `object` refused by a switch: the whole call answers 403.
    fn check_writable(s: &HsState, object: ObjectType) -> Result<(), HubspotError> {
        let refused = match object {
            ObjectType::Invoices => s.invoice_writes_unavailable,
            ObjectType::CommercePayments => s.no_payment_processing,
            _ => false,
        };
        if refused {
            return Err(api_error(
                403,
                "MISSING_SCOPES",
                &format!("This app may not write {object} in this portal."),
            ));
        }
        Ok(())
    }

    fn refusal(s: &HsState, object: ObjectType, key: &str) -> Option<HubspotError> {
        s.refuse
            .get(&(object, key.trim().to_lowercase()))
            .map(|(status, category, message)| api_error(*status, category, message))
    }
}

/// Whether `property` holds one value per object of the type (an upsert key).
fn is_unique(s: &HsState, object: ObjectType, property: &str) -> bool {
    (object == ObjectType::Contacts && property == "email")
        || property == "hs_object_id"
        || s.properties
            .get(&object)
            .is_some_and(|ps| ps.iter().any(|p| p.name == property && p.has_unique_value))
}

/// Emails compare (and are stored) lower-cased.
fn normal(property: &str, value: &str) -> String {
    if property == "email" {
        value.trim().to_lowercase()
    } else {
        value.to_string()
    }
}

fn find_id(s: &HsState, object: ObjectType, property: &str, value: &str) -> Option<String> {
    if property == "hs_object_id" {
        return s
            .objects
            .get(&object)?
            .contains_key(value)
            .then(|| value.to_string());
    }
    let wanted = normal(property, value);
    s.objects
        .get(&object)?
        .values()
        .find(|o| o.property(property).map(|v| normal(property, v)) == Some(wanted.clone()))
        .map(|o| o.id.clone())
}

fn set_properties(o: &mut HubObject, input: &ObjectInput) {
    for (k, v) in &input.properties {
        o.properties.insert(k.clone(), Some(normal(k, v)));
    }
}

/// `o` with only `properties` (and `hs_object_id`, and the key property), all when empty: what
/// a batch read with `properties` answers.
fn only(o: &HubObject, properties: &[&str], key: Option<&str>) -> HubObject {
    if properties.is_empty() {
        return o.clone();
    }
    let mut out = o.clone();
    out.properties.retain(|k, _| {
        k == "hs_object_id" || properties.contains(&k.as_str()) || Some(k.as_str()) == key
    });
    out
}

#[async_trait]
impl HubspotApi for FakeHubspot {
    async fn upsert(
        &self,
        object: ObjectType,
        id_property: &str,
        inputs: &[ObjectInput],
    ) -> Result<PerInput<HubObject>, HubspotError> {
        self.call(method::UPSERT, Some(object), inputs.len())?;
        let mut s = lock(&self.state);
        Self::check_writable(&s, object)?;
        let unique = is_unique(&s, object, id_property);
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(e) = Self::refusal(&s, object, &input.id) {
                out.push(Err(e));
                continue;
            }
            if !unique {
                out.push(Err(api_error(
                    400,
                    "VALIDATION_ERROR",
                    &format!("{id_property} is not a unique property of {object}"),
                )));
                continue;
            }
            let existing = find_id(&s, object, id_property, &input.id);
            let (id, new) = match existing {
                Some(id) => (id, false),
                None => {
                    let id = s.next_id.to_string();
                    s.next_id += 1;
                    (id, true)
                }
            };
            let stored = s
                .objects
                .entry(object)
                .or_default()
                .entry(id.clone())
                .or_insert_with(|| HubObject {
                    id: id.clone(),
                    ..HubObject::default()
                });
            stored
                .properties
                .insert("hs_object_id".into(), Some(id.clone()));
            if id_property != "hs_object_id" {
                stored
                    .properties
                    .insert(id_property.into(), Some(normal(id_property, &input.id)));
            }
            set_properties(stored, input);
            out.push(Ok(HubObject {
                new: Some(new),
                ..stored.clone()
            }));
        }
        Ok(out)
    }

    async fn update(
        &self,
        object: ObjectType,
        inputs: &[ObjectInput],
    ) -> Result<PerInput<HubObject>, HubspotError> {
        self.call(method::UPDATE, Some(object), inputs.len())?;
        let mut s = lock(&self.state);
        Self::check_writable(&s, object)?;
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(e) = Self::refusal(&s, object, &input.id) {
                out.push(Err(e));
                continue;
            }
            match s
                .objects
                .get_mut(&object)
                .and_then(|m| m.get_mut(&input.id))
            {
                Some(stored) => {
                    set_properties(stored, input);
                    out.push(Ok(stored.clone()));
                }
                None => out.push(Err(api_error(404, "OBJECT_NOT_FOUND", "Object not found."))),
            }
        }
        Ok(out)
    }

    async fn read(
        &self,
        object: ObjectType,
        id_property: Option<&str>,
        ids: &[String],
        properties: &[&str],
    ) -> Result<Vec<Option<HubObject>>, HubspotError> {
        self.call(method::READ, Some(object), ids.len())?;
        let s = lock(&self.state);
        let key = id_property.unwrap_or("hs_object_id");
        Ok(ids
            .iter()
            .map(|id| {
                let found = find_id(&s, object, key, id)?;
                s.objects
                    .get(&object)?
                    .get(&found)
                    .map(|o| only(o, properties, id_property))
            })
            .collect())
    }

    async fn archive(&self, object: ObjectType, ids: &[String]) -> Result<(), HubspotError> {
        self.call(method::ARCHIVE, Some(object), ids.len())?;
        let mut s = lock(&self.state);
        Self::check_writable(&s, object)?;
        for id in ids {
            if let Some(m) = s.objects.get_mut(&object) {
                m.remove(id);
            }
            s.associations.retain(|a| {
                !((a.from == object && &a.from_id == id) || (a.to == object && &a.to_id == id))
            });
        }
        Ok(())
    }

    async fn associate(
        &self,
        from: ObjectType,
        to: ObjectType,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError> {
        self.call(method::ASSOCIATE, Some(from), pairs.len())?;
        Ok(self.associate_pairs(from, to, None, pairs))
    }

    async fn associate_labelled(
        &self,
        from: ObjectType,
        to: ObjectType,
        label: AssociationType,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError> {
        self.call(method::ASSOCIATE_LABELLED, Some(from), pairs.len())?;
        Ok(self.associate_pairs(from, to, Some(label.association_type_id), pairs))
    }

    async fn properties(
        &self,
        object: ObjectType,
    ) -> Result<Vec<PropertyDefinition>, HubspotError> {
        self.call(method::PROPERTIES, Some(object), 0)?;
        Ok(lock(&self.state)
            .properties
            .get(&object)
            .cloned()
            .unwrap_or_default())
    }

    async fn create_property(
        &self,
        object: ObjectType,
        property: &PropertyDefinition,
    ) -> Result<(), HubspotError> {
        self.call(method::CREATE_PROPERTY, Some(object), 1)?;
        let mut s = lock(&self.state);
        let group_exists = s
            .groups
            .get(&object)
            .is_some_and(|g| g.iter().any(|g| g.name == property.group_name));
        if !group_exists {
            return Err(api_error(
                400,
                "VALIDATION_ERROR",
                &format!("Property group {} does not exist.", property.group_name),
            ));
        }
        let list = s.properties.entry(object).or_default();
        if list.iter().any(|p| p.name == property.name) {
            // The status and wording for "already exists" are UNCONFIRMED (§5): 409 here.
            return Err(api_error(
                409,
                "OBJECT_ALREADY_EXISTS",
                &format!("A property named '{}' already exists.", property.name),
            ));
        }
        list.push(property.clone());
        Ok(())
    }

    async fn property_groups(
        &self,
        object: ObjectType,
    ) -> Result<Vec<PropertyGroup>, HubspotError> {
        self.call(method::PROPERTY_GROUPS, Some(object), 0)?;
        Ok(lock(&self.state)
            .groups
            .get(&object)
            .cloned()
            .unwrap_or_default())
    }

    async fn create_property_group(
        &self,
        object: ObjectType,
        group: &PropertyGroup,
    ) -> Result<(), HubspotError> {
        self.call(method::CREATE_PROPERTY_GROUP, Some(object), 1)?;
        let mut s = lock(&self.state);
        let list = s.groups.entry(object).or_default();
        if list.iter().any(|g| g.name == group.name) {
            return Err(api_error(
                409,
                "OBJECT_ALREADY_EXISTS",
                &format!("A property group named '{}' already exists.", group.name),
            ));
        }
        list.push(group.clone());
        Ok(())
    }

    async fn account(&self) -> Result<AccountDetails, HubspotError> {
        self.call(method::ACCOUNT, None, 0)?;
        Ok(lock(&self.state).account.clone())
    }

    async fn token_info(&self) -> Result<TokenInfo, HubspotError> {
        self.call(method::TOKEN_INFO, None, 0)?;
        Ok(lock(&self.state).token.clone())
    }
}

impl FakeHubspot {
    /// Associates each pair whose objects both exist (idempotent); the others get a 400.
    fn associate_pairs(
        &self,
        from: ObjectType,
        to: ObjectType,
        label: Option<u32>,
        pairs: &[Association],
    ) -> PerInput<()> {
        let mut s = lock(&self.state);
        let exists = |s: &HsState, t: ObjectType, id: &str| {
            s.objects.get(&t).is_some_and(|m| m.contains_key(id))
        };
        pairs
            .iter()
            .map(|p| {
                if let Some(e) = Self::refusal(&s, from, &p.from) {
                    return Err(e);
                }
                if !exists(&s, from, &p.from) || !exists(&s, to, &p.to) {
                    return Err(api_error(
                        400,
                        "VALIDATION_ERROR",
                        "One or more objects of the association do not exist.",
                    ));
                }
                s.associations.insert(StoredAssociation {
                    from,
                    from_id: p.from.clone(),
                    to,
                    to_id: p.to.clone(),
                    label,
                });
                Ok(())
            })
            .collect()
    }
}

impl std::fmt::Debug for FakeHubspot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHubspot")
            .field("calls", &lock(&self.calls).len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(id: &str, props: &[(&str, &str)]) -> ObjectInput {
        ObjectInput {
            id: id.into(),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn unique(name: &str, group: &str) -> PropertyDefinition {
        PropertyDefinition {
            name: name.into(),
            label: name.into(),
            kind: "string".into(),
            field_type: "text".into(),
            group_name: group.into(),
            has_unique_value: true,
            ..PropertyDefinition::default()
        }
    }

    #[tokio::test]
    async fn upserts_by_email_ignore_case_and_update_in_place() {
        let hs = FakeHubspot::default();
        let first = hs
            .upsert(
                ObjectType::Contacts,
                "email",
                &[input("Jane@X.com", &[("firstname", "Jane")])],
            )
            .await
            .unwrap();
        let created = first[0].as_ref().unwrap();
        assert_eq!(created.new, Some(true));
        assert_eq!(created.property("email"), Some("jane@x.com"));
        let again = hs
            .upsert(
                ObjectType::Contacts,
                "email",
                &[input("jane@x.COM", &[("lastname", "Doe")])],
            )
            .await
            .unwrap();
        let updated = again[0].as_ref().unwrap();
        assert_eq!(
            (updated.id.as_str(), updated.new),
            (created.id.as_str(), Some(false))
        );
        assert_eq!(hs.objects(ObjectType::Contacts).len(), 1);
        let c = hs.contact("JANE@x.com").unwrap();
        assert_eq!(
            (c.property("firstname"), c.property("lastname")),
            (Some("Jane"), Some("Doe"))
        );
        assert_eq!(hs.calls_to(method::UPSERT), 2);
        assert_eq!(hs.writes(), 2);
    }

    #[tokio::test]
    async fn company_upserts_need_a_unique_property() {
        let hs = FakeHubspot::default();
        let out = hs
            .upsert(ObjectType::Companies, "fb_client_id", &[input("42", &[])])
            .await
            .unwrap();
        assert!(matches!(&out[0], Err(e) if e.status() == Some(400)));
        hs.create_property(ObjectType::Companies, &unique("fb_client_id", "nope"))
            .await
            .unwrap_err();
        hs.create_property(
            ObjectType::Companies,
            &unique("fb_client_id", "companyinformation"),
        )
        .await
        .unwrap();
        let again = hs
            .create_property(
                ObjectType::Companies,
                &unique("fb_client_id", "companyinformation"),
            )
            .await
            .unwrap_err();
        assert_eq!(again.status(), Some(409));
        let out = hs
            .upsert(
                ObjectType::Companies,
                "fb_client_id",
                &[input("42", &[("name", "Acme")])],
            )
            .await
            .unwrap();
        let id = out[0].as_ref().unwrap().id.clone();
        let read = hs
            .read(
                ObjectType::Companies,
                Some("fb_client_id"),
                &["42".into(), "43".into()],
                &["name"],
            )
            .await
            .unwrap();
        assert_eq!(read[0].as_ref().unwrap().id, id);
        assert_eq!(read[1], None);
    }

    #[tokio::test]
    async fn refusals_switches_and_the_daily_limit() {
        let hs = FakeHubspot::default();
        hs.with(|s| {
            s.refuse.insert(
                (ObjectType::Contacts, "bad@x.com".into()),
                (
                    400,
                    "VALIDATION_ERROR".into(),
                    "Email address is invalid".into(),
                ),
            );
            s.invoice_writes_unavailable = true;
            s.no_payment_processing = true;
        });
        let out = hs
            .upsert(
                ObjectType::Contacts,
                "email",
                &[input("ok@x.com", &[]), input("BAD@x.com", &[])],
            )
            .await
            .unwrap();
        assert!(out[0].is_ok() && out[1].is_err());
        for object in [ObjectType::Invoices, ObjectType::CommercePayments] {
            let e = hs.update(object, &[input("1", &[])]).await.unwrap_err();
            assert!(e.is_unavailable(), "{e}");
        }
        hs.with(|s| {
            s.fail_next
                .push_back(Failure::RateLimited(RatePolicy::TenSecondly))
        });
        let e = hs.account().await.unwrap_err();
        assert!(e.is_transient() && e.daily_limit_until().is_none());
        let until: DateTime<Utc> = "2026-12-08T05:00:00Z".parse().unwrap();
        hs.with(|s| {
            s.daily_reset = until;
            s.fail_next
                .push_back(Failure::RateLimited(RatePolicy::Daily));
        });
        assert_eq!(
            hs.account().await.unwrap_err().daily_limit_until(),
            Some(until)
        );
        assert!(matches!(
            hs.token_info().await,
            Err(HubspotError::DailyLimit { until: u }) if u == until
        ));
        assert_eq!(hs.calls_to(method::ACCOUNT), 2);
        assert_eq!(hs.calls().len(), 6);
    }

    #[tokio::test]
    async fn associations_need_both_objects() {
        let hs = FakeHubspot::default();
        let c = hs
            .upsert(ObjectType::Contacts, "email", &[input("a@x.com", &[])])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        hs.create_property_group(
            ObjectType::Companies,
            &PropertyGroup {
                name: "freshbooks".into(),
                label: "FreshBooks".into(),
                display_order: 0,
            },
        )
        .await
        .unwrap();
        hs.create_property(ObjectType::Companies, &unique("fb_client_id", "freshbooks"))
            .await
            .unwrap();
        let co = hs
            .upsert(ObjectType::Companies, "fb_client_id", &[input("1", &[])])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        let pairs = [
            Association {
                from: c.id.clone(),
                to: co.id.clone(),
            },
            Association {
                from: c.id.clone(),
                to: "999".into(),
            },
        ];
        let out = hs
            .associate_labelled(
                ObjectType::Contacts,
                ObjectType::Companies,
                AssociationType::CONTACT_TO_PRIMARY_COMPANY,
                &pairs,
            )
            .await
            .unwrap();
        assert!(out[0].is_ok() && out[1].is_err());
        assert_eq!(
            hs.associated(ObjectType::Companies, &co.id, ObjectType::Contacts),
            vec![c.id.clone()]
        );
        hs.archive(ObjectType::Companies, std::slice::from_ref(&co.id))
            .await
            .unwrap();
        assert!(
            hs.associated(ObjectType::Contacts, &c.id, ObjectType::Companies)
                .is_empty()
        );
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert!(matches!(
            hs.archive(ObjectType::Contacts, &many).await,
            Err(HubspotError::InvalidArgument(_))
        ));
    }
}
