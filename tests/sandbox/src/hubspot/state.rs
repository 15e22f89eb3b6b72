//! The portals: their tokens, objects, properties and associations, and the rules HubSpot
//! applies to writes (unique emails and unique-value properties, invoice status transitions and
//! amounts, line items owned by one invoice, payment requirements). Routes validate shapes and
//! scopes; this module keeps the data consistent.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mlc::vendors::hubspot::models::ObjectType;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub(crate) use super::assoc_types::{AssocDef, assoc_defs, def_by_id, default_def};
use super::errors::{HsError, PropertyProblem, timestamp};
use super::properties::{self, Property, PropertyGroup};
use crate::SandboxError;

/// The object type named by a path segment (`contacts`, `line_items`, …).
pub(crate) fn parse_type(segment: &str) -> Option<ObjectType> {
    ObjectType::ALL.into_iter().find(|t| t.path() == segment)
}

/// The object type id (`0-1`…; invoices, line items and payments UNCONFIRMED, §3.5–§3.7).
pub(crate) fn type_id(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "0-1",
        ObjectType::Companies => "0-2",
        ObjectType::LineItems => "0-8",
        ObjectType::Invoices => "0-53",
        ObjectType::CommercePayments => "0-101",
    }
}

/// The scope segment (`crm.objects.{segment}.read`): payments are `commercepayments`.
pub(crate) fn scope_segment(t: ObjectType) -> &'static str {
    match t {
        ObjectType::CommercePayments => "commercepayments",
        other => other.path(),
    }
}

/// The upper-case singular HubSpot uses in messages (`CONTACT`, `LINE_ITEM`).
pub(crate) fn singular(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "CONTACT",
        ObjectType::Companies => "COMPANY",
        ObjectType::LineItems => "LINE_ITEM",
        ObjectType::Invoices => "INVOICE",
        ObjectType::CommercePayments => "COMMERCE_PAYMENT",
    }
}

/// The last-modified property: `lastmodifieddate` on contacts, `hs_lastmodifieddate` elsewhere.
pub(crate) fn modified_property(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

/// A portal's subscription tier: it sets the burst limit (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 100 requests per 10 s.
    #[default]
    Free,
    /// 100 requests per 10 s.
    Starter,
    /// 190 requests per 10 s.
    Professional,
    /// 190 requests per 10 s.
    Enterprise,
}

impl Tier {
    /// Requests per rolling 10 s per app and portal.
    pub fn burst_limit(self) -> u32 {
        match self {
            Tier::Free | Tier::Starter => 100,
            Tier::Professional | Tier::Enterprise => 190,
        }
    }
}

/// What a new portal looks like ([`super::Control::add_portal`]); every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PortalSeed {
    /// The portal (hub) id; a fresh one when absent.
    pub portal_id: Option<u64>,
    /// IANA time zone (default `America/New_York`): the daily limit resets at its midnight.
    pub time_zone: Option<String>,
    /// Company currency (default `USD`).
    pub currency: Option<String>,
    /// Subscription tier (default Free).
    pub tier: Tier,
    /// Requests per day before `DAILY` 429s (default: the sandbox option, 250,000).
    pub daily_limit: Option<u64>,
}

/// A portal's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalInfo {
    /// The portal (hub) id.
    pub portal_id: u64,
    /// IANA time zone.
    pub time_zone: String,
    /// Company currency.
    pub currency: String,
    /// Subscription tier.
    pub tier: Tier,
    /// Requests per day.
    pub daily_limit: u64,
    /// Invoice and line-item writes answer 403 (reads still work).
    pub invoice_writes_unavailable: bool,
    /// Commerce-payment writes answer 403 (the portal has no payment processing).
    pub no_payment_processing: bool,
}

/// The kind of a token (all are sent as `Authorization: Bearer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A legacy private app's static token (`pat-na1-<uuid>`).
    PrivateApp,
    /// A service key (static, opaque).
    ServiceKey,
    /// An OAuth access token (expires).
    OAuth,
}

/// A token the sandbox knows.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) portal_id: u64,
    pub(crate) app_id: u64,
    pub(crate) user_id: u64,
    pub(crate) scopes: BTreeSet<String>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// An OAuth refresh token's grant.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) portal_id: u64,
    pub(crate) scopes: BTreeSet<String>,
    pub(crate) user_id: u64,
}

/// An authorization code: its grant and the redirect URI it was issued for, if any.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) grant: Grant,
    pub(crate) redirect_uri: Option<String>,
}

/// A stored CRM object. Property values are strings, as HubSpot stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The HubSpot id.
    pub id: u64,
    /// Every set property (system ones included).
    pub properties: BTreeMap<String, String>,
    /// Created (sandbox clock).
    pub created_at: DateTime<Utc>,
    /// Last written (sandbox clock): search does not see it for the search lag after this.
    pub updated_at: DateTime<Utc>,
}

/// `(category, typeId)` of one association.
pub(crate) type AssocKey = (String, u32);
type Links = BTreeMap<(ObjectType, u64), BTreeMap<(ObjectType, u64), BTreeSet<AssocKey>>>;

/// One portal's data.
#[derive(Debug)]
pub(crate) struct Portal {
    pub(crate) info: PortalInfo,
    pub(crate) tz: Tz,
    pub(crate) objects: BTreeMap<ObjectType, BTreeMap<u64, StoredObject>>,
    /// Archived objects (HubSpot's recycle bin), readable through the control API only.
    pub(crate) archived: BTreeMap<ObjectType, BTreeMap<u64, StoredObject>>,
    pub(crate) properties: BTreeMap<ObjectType, BTreeMap<String, Property>>,
    pub(crate) groups: BTreeMap<ObjectType, Vec<PropertyGroup>>,
    pub(crate) links: Links,
    next_invoice_number: u64,
    /// The portal's day (in its zone) and the requests counted in it.
    pub(crate) day: Option<chrono::NaiveDate>,
    pub(crate) used_today: u64,
}

/// Everything the sandbox holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) portals: BTreeMap<u64, Portal>,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) refresh_tokens: HashMap<String, Grant>,
    pub(crate) codes: HashMap<String, Code>,
    next_portal: u64,
    next_id: u64,
    next_app: u64,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            next_portal: 62_515_000,
            next_id: 1001,
            next_app: 3_100_000,
            ..Self::default()
        }
    }

    pub(crate) fn add_portal(
        &mut self,
        seed: PortalSeed,
        default_daily: u64,
        now: DateTime<Utc>,
    ) -> Result<PortalInfo, SandboxError> {
        let time_zone = seed
            .time_zone
            .unwrap_or_else(|| "America/New_York".to_string());
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| SandboxError::Invalid(format!("unknown time zone {time_zone}")))?;
        let portal_id = match seed.portal_id {
            Some(id) if self.portals.contains_key(&id) => {
                return Err(SandboxError::Invalid(format!("portal {id} exists")));
            }
            Some(id) => id,
            None => {
                self.next_portal += 1;
                self.next_portal
            }
        };
        let info = PortalInfo {
            portal_id,
            time_zone,
            currency: seed.currency.unwrap_or_else(|| "USD".into()),
            tier: seed.tier,
            daily_limit: seed.daily_limit.unwrap_or(default_daily),
            invoice_writes_unavailable: false,
            no_payment_processing: false,
        };
        let portal = Portal {
            info: info.clone(),
            tz,
            objects: ObjectType::ALL.map(|t| (t, BTreeMap::new())).into(),
            archived: ObjectType::ALL.map(|t| (t, BTreeMap::new())).into(),
            properties: ObjectType::ALL
                .map(|t| (t, properties::seed(t, now)))
                .into(),
            groups: ObjectType::ALL
                .map(|t| (t, properties::seed_groups(t)))
                .into(),
            links: BTreeMap::new(),
            next_invoice_number: 1001,
            day: None,
            used_today: 0,
        };
        self.portals.insert(portal_id, portal);
        Ok(info)
    }

    pub(crate) fn portal(&self, id: u64) -> Result<&Portal, SandboxError> {
        self.portals
            .get(&id)
            .ok_or_else(|| SandboxError::NotFound(format!("portal {id}")))
    }

    pub(crate) fn portal_mut(&mut self, id: u64) -> Result<&mut Portal, SandboxError> {
        self.portals
            .get_mut(&id)
            .ok_or_else(|| SandboxError::NotFound(format!("portal {id}")))
    }

    /// The portal of an API caller; a token whose portal is gone reads as unauthenticated.
    pub(crate) fn api_portal(&self, id: u64) -> Result<&Portal, HsError> {
        self.portals
            .get(&id)
            .ok_or_else(|| HsError::unauthenticated(false))
    }

    /// [`State::api_portal`], to change.
    pub(crate) fn api_portal_mut(&mut self, id: u64) -> Result<&mut Portal, HsError> {
        self.portals
            .get_mut(&id)
            .ok_or_else(|| HsError::unauthenticated(false))
    }

    /// A fresh object id (unique across portals, like HubSpot's).
    pub(crate) fn next_object_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A fresh app id (each private app and service key is its own app).
    pub(crate) fn next_app_id(&mut self) -> u64 {
        self.next_app += 1;
        self.next_app
    }
}

/// A write's outcome: the object id and whether it was created.
pub(crate) type Written = (u64, bool);

impl Portal {
    pub(crate) fn object(&self, t: ObjectType, id: u64) -> Option<&StoredObject> {
        self.objects.get(&t).and_then(|m| m.get(&id))
    }

    pub(crate) fn objects_of(&self, t: ObjectType) -> impl Iterator<Item = &StoredObject> {
        self.objects.get(&t).into_iter().flat_map(|m| m.values())
    }

    pub(crate) fn property_defs(&self, t: ObjectType) -> Option<&BTreeMap<String, Property>> {
        self.properties.get(&t)
    }

    /// Whether `name` may key an upsert or a read: `email` on contacts, `hs_object_id`, or a
    /// property with `hasUniqueValue`.
    pub(crate) fn is_unique_property(&self, t: ObjectType, name: &str) -> bool {
        (t == ObjectType::Contacts && name == "email")
            || name == "hs_object_id"
            || self
                .property_defs(t)
                .and_then(|d| d.get(name))
                .is_some_and(|p| p.has_unique_value)
    }

    /// The object whose `property` is `value` (emails case-insensitively).
    pub(crate) fn find_by(&self, t: ObjectType, property: &str, value: &str) -> Option<u64> {
        if property == "hs_object_id" {
            let id = value.parse::<u64>().ok()?;
            return self.object(t, id).map(|o| o.id);
        }
        let email = t == ObjectType::Contacts && property == "email";
        let wanted = if email {
            value.trim().to_lowercase()
        } else {
            value.to_string()
        };
        self.objects_of(t)
            .find(|o| o.properties.get(property).is_some_and(|v| *v == wanted))
            .map(|o| o.id)
    }

    /// Resolves an id by `id_property` (HubSpot id when absent).
    pub(crate) fn resolve(
        &self,
        t: ObjectType,
        id_property: Option<&str>,
        id: &str,
    ) -> Option<u64> {
        match id_property {
            None | Some("hs_object_id") => id
                .parse::<u64>()
                .ok()
                .filter(|id| self.object(t, *id).is_some()),
            Some(p) => self.find_by(t, p, id),
        }
    }

    /// Refuses a value another object already holds for a unique property (409).
    fn check_unique(
        &self,
        t: ObjectType,
        id: Option<u64>,
        props: &BTreeMap<String, String>,
    ) -> Result<(), HsError> {
        for (name, value) in props {
            if value.is_empty() || name == "hs_object_id" || !self.is_unique_property(t, name) {
                continue;
            }
            if let Some(other) = self.find_by(t, name, value).filter(|o| Some(*o) != id) {
                return Err(if t == ObjectType::Contacts && name == "email" {
                    HsError::conflict(format!("Contact already exists. Existing ID: {other}"))
                } else {
                    HsError::conflict(format!(
                        "A {} with the value '{value}' for the unique property '{name}' already exists. Existing ID: {other}",
                        singular(t).to_lowercase()
                    ))
                });
            }
        }
        Ok(())
    }

    /// Type rules on a write (create when `existing` is `None`): required properties, signs,
    /// invoice status transitions.
    fn check_rules(
        &self,
        t: ObjectType,
        existing: Option<&StoredObject>,
        props: &BTreeMap<String, String>,
    ) -> Result<(), HsError> {
        let merged = |name: &str| -> Option<String> {
            match props.get(name) {
                Some(v) => Some(v.clone()).filter(|v| !v.is_empty()),
                None => existing.and_then(|o| o.properties.get(name).cloned()),
            }
        };
        match t {
            ObjectType::LineItems => {
                if let Some(price) = props.get("price").filter(|p| !p.is_empty())
                    && price.trim().parse::<f64>().is_ok_and(|p| p < 0.0)
                {
                    return Err(HsError::validation(format!(
                        "Line item price must not be negative: {price}"
                    )));
                }
            }
            ObjectType::Invoices => {
                if merged("hs_currency").is_none() {
                    return Err(HsError::validation(
                        "hs_currency is required to create an invoice",
                    ));
                }
                if let Some(current) = existing {
                    let from = current
                        .properties
                        .get("hs_invoice_status")
                        .map(String::as_str)
                        .unwrap_or("draft");
                    if from == "voided" {
                        return Err(HsError::validation(format!(
                            "Invoice {} is voided and cannot be edited",
                            current.id
                        )));
                    }
                    if let Some(to) = props.get("hs_invoice_status") {
                        self.check_transition(current.id, from, to)?;
                    }
                }
            }
            ObjectType::CommercePayments => {
                if existing.is_none() {
                    for required in ["hs_initial_amount", "hs_initiated_date"] {
                        if merged(required).is_none() {
                            return Err(HsError::validation(format!(
                                "{required} is required to create a commerce payment"
                            )));
                        }
                    }
                }
            }
            ObjectType::Contacts => {
                if let Some(email) = props.get("email").filter(|e| !e.is_empty())
                    && !plausible_email(email)
                {
                    return Err(HsError::invalid_properties(vec![PropertyProblem {
                        name: "email".into(),
                        code: "INVALID_EMAIL",
                        message: format!("Email address {email} is invalid"),
                    }]));
                }
            }
            ObjectType::Companies => {}
        }
        Ok(())
    }

    /// Creates an object from validated properties.
    pub(crate) fn create(
        &mut self,
        id: u64,
        t: ObjectType,
        mut props: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<u64, HsError> {
        normalise(t, &mut props);
        self.check_rules(t, None, &props)?;
        self.check_unique(t, None, &props)?;
        props.retain(|_, v| !v.is_empty());
        let stamp = timestamp(now);
        props.insert("hs_object_id".into(), id.to_string());
        props.insert("createdate".into(), stamp.clone());
        props.insert(modified_property(t).into(), stamp.clone());
        match t {
            ObjectType::Invoices => {
                props
                    .entry("hs_invoice_status".into())
                    .or_insert_with(|| "draft".into());
                props.insert(
                    "hs_number".into(),
                    format!("INV-{}", self.next_invoice_number),
                );
                self.next_invoice_number += 1;
                let today = now.with_timezone(&self.tz).date_naive();
                props
                    .entry("hs_invoice_date".into())
                    .or_insert_with(|| today.to_string());
                props
                    .entry("hs_due_date".into())
                    .or_insert_with(|| (today + chrono::Duration::days(30)).to_string());
            }
            ObjectType::CommercePayments => {
                props
                    .entry("hs_latest_status".into())
                    .or_insert_with(|| "succeeded".into());
                props
                    .entry("hs_currency_code".into())
                    .or_insert_with(|| self.info.currency.clone());
            }
            _ => {}
        }
        let object = StoredObject {
            id,
            properties: props,
            created_at: now,
            updated_at: now,
        };
        self.objects.entry(t).or_default().insert(id, object);
        self.settle(t, id, now);
        Ok(id)
    }

    /// Updates an object with validated properties (`""` clears).
    pub(crate) fn update(
        &mut self,
        t: ObjectType,
        id: u64,
        mut props: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), HsError> {
        normalise(t, &mut props);
        let Some(existing) = self.object(t, id) else {
            return Err(not_found(t, id));
        };
        self.check_rules(t, Some(existing), &props)?;
        self.check_unique(t, Some(id), &props)?;
        let modified = modified_property(t);
        let Some(object) = self.objects.get_mut(&t).and_then(|m| m.get_mut(&id)) else {
            return Err(not_found(t, id));
        };
        for (k, v) in props {
            if v.is_empty() {
                object.properties.remove(&k);
            } else {
                object.properties.insert(k, v);
            }
        }
        object.properties.insert(modified.into(), timestamp(now));
        object.updated_at = now;
        self.settle(t, id, now);
        Ok(())
    }

    /// Creates or updates by a unique property; `(id, new)`.
    pub(crate) fn upsert(
        &mut self,
        fresh_id: u64,
        t: ObjectType,
        id_property: &str,
        key: &str,
        mut props: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<Written, HsError> {
        match self.find_by(t, id_property, key) {
            Some(id) => self.update(t, id, props, now).map(|()| (id, false)),
            None if id_property == "hs_object_id" => Err(not_found(t, key)),
            None => {
                props.insert(id_property.to_string(), key.to_string());
                self.create(fresh_id, t, props, now).map(|id| (id, true))
            }
        }
    }

    /// Moves an object to the recycle bin and drops its associations.
    pub(crate) fn archive(&mut self, t: ObjectType, id: u64, now: DateTime<Utc>) -> bool {
        let Some(object) = self.objects.get_mut(&t).and_then(|m| m.remove(&id)) else {
            return false;
        };
        self.archived.entry(t).or_default().insert(id, object);
        let touched = self.touched_invoices(t, id);
        if let Some(targets) = self.links.remove(&(t, id)) {
            for key in targets.keys() {
                if let Some(back) = self.links.get_mut(key) {
                    back.remove(&(t, id));
                }
            }
        }
        for invoice in touched {
            self.settle_invoice(invoice, now);
        }
        true
    }

    /// Removes an object for good (a create undone), with its associations.
    pub(crate) fn purge(&mut self, t: ObjectType, id: u64, now: DateTime<Utc>) {
        if self.archive(t, id, now)
            && let Some(bin) = self.archived.get_mut(&t)
        {
            bin.remove(&id);
        }
    }

    /// The ids of `to` objects associated with `(from, id)`.
    pub(crate) fn linked(&self, from: ObjectType, id: u64, to: ObjectType) -> Vec<u64> {
        self.links
            .get(&(from, id))
            .map(|m| {
                m.keys()
                    .filter(|(t, _)| *t == to)
                    .map(|(_, id)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The association types from `(from, id)` to `(to, to_id)`.
    pub(crate) fn link_types(
        &self,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
    ) -> BTreeSet<AssocKey> {
        self.links
            .get(&from)
            .and_then(|m| m.get(&to))
            .cloned()
            .unwrap_or_default()
    }

    /// Associates two objects with `def` (and its reverse); labelled ones also get the
    /// unlabelled type, as HubSpot does. Idempotent.
    pub(crate) fn associate(
        &mut self,
        def: AssocDef,
        from_id: u64,
        to_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), HsError> {
        if self.object(def.from, from_id).is_none() {
            return Err(not_found(def.from, from_id));
        }
        if self.object(def.to, to_id).is_none() {
            return Err(not_found(def.to, to_id));
        }
        // A line item belongs to one invoice (§3.5).
        let owner = match (def.from, def.to) {
            (ObjectType::Invoices, ObjectType::LineItems) => Some((to_id, from_id)),
            (ObjectType::LineItems, ObjectType::Invoices) => Some((from_id, to_id)),
            _ => None,
        };
        if let Some((item, invoice)) = owner
            && let Some(other) = self
                .linked(ObjectType::LineItems, item, ObjectType::Invoices)
                .into_iter()
                .find(|i| *i != invoice)
        {
            return Err(HsError::validation(format!(
                "Line item {item} is already associated with invoice {other}; a line item belongs to one invoice"
            )));
        }
        let mut defs = vec![def];
        if def.label.is_some()
            && let Some(d) = default_def(def.from, def.to)
        {
            defs.push(d);
        }
        for d in defs {
            self.links
                .entry((d.from, from_id))
                .or_default()
                .entry((d.to, to_id))
                .or_default()
                .insert(("HUBSPOT_DEFINED".into(), d.type_id));
            self.links
                .entry((d.to, to_id))
                .or_default()
                .entry((d.from, from_id))
                .or_default()
                .insert(("HUBSPOT_DEFINED".into(), d.reverse_id));
        }
        self.settle(def.from, from_id, now);
        self.settle(def.to, to_id, now);
        Ok(())
    }

    /// Removes every association between two objects (both directions).
    pub(crate) fn disassociate(
        &mut self,
        from: (ObjectType, u64),
        to: (ObjectType, u64),
        now: DateTime<Utc>,
    ) {
        if let Some(m) = self.links.get_mut(&from) {
            m.remove(&to);
        }
        if let Some(m) = self.links.get_mut(&to) {
            m.remove(&from);
        }
        self.settle(from.0, from.1, now);
        self.settle(to.0, to.1, now);
    }

    /// Renders an object as HubSpot returns it: the requested properties (`null` when unset)
    /// or, without a request, the type's defaults; the id and dates always.
    pub(crate) fn render(
        &self,
        t: ObjectType,
        object: &StoredObject,
        wanted: Option<&[String]>,
    ) -> Value {
        let mut props = serde_json::Map::new();
        let always = ["hs_object_id", "createdate", modified_property(t)];
        match wanted {
            Some(names) if !names.is_empty() => {
                for name in names.iter().map(String::as_str).chain(always) {
                    props.insert(
                        name.to_string(),
                        object
                            .properties
                            .get(name)
                            .map_or(Value::Null, |v| json!(v)),
                    );
                }
            }
            _ => {
                for name in default_properties(t).iter().copied().chain(always) {
                    if let Some(v) = object.properties.get(name) {
                        props.insert(name.to_string(), json!(v));
                    }
                }
            }
        }
        json!({
            "id": object.id.to_string(),
            "properties": props,
            "createdAt": timestamp(object.created_at),
            "updatedAt": timestamp(object.updated_at),
            "archived": false,
        })
    }

    /// An object after a write: every property it has.
    pub(crate) fn render_all(&self, t: ObjectType, id: u64) -> Value {
        match self.object(t, id) {
            Some(o) => {
                let names: Vec<String> = o.properties.keys().cloned().collect();
                self.render(t, o, Some(&names))
            }
            None => Value::Null,
        }
    }
}

/// Lower-cases contact emails (HubSpot stores them so; uniqueness is case-insensitive).
fn normalise(t: ObjectType, props: &mut BTreeMap<String, String>) {
    if t == ObjectType::Contacts
        && let Some(email) = props.get_mut("email")
    {
        *email = email.trim().to_lowercase();
    }
}

/// What HubSpot accepts as an email (roughly: one `@`, a dotted domain, no spaces; its exact
/// rule is UNCONFIRMED).
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// 404 for an unknown object (`id` as the caller sent it).
pub(crate) fn not_found(t: ObjectType, id: impl std::fmt::Display) -> HsError {
    HsError::not_found(format!(
        "Object not found. objectId are usually numeric. {} {id} does not exist",
        singular(t)
    ))
}

/// The properties a read returns without `properties=` (HubSpot's defaults, abridged).
pub(crate) fn default_properties(t: ObjectType) -> &'static [&'static str] {
    match t {
        ObjectType::Contacts => &["email", "firstname", "lastname"],
        ObjectType::Companies => &["domain", "name"],
        ObjectType::LineItems => &["name", "price", "quantity"],
        ObjectType::Invoices => &["hs_currency", "hs_invoice_status", "hs_number"],
        ObjectType::CommercePayments => &["hs_initial_amount", "hs_initiated_date"],
    }
}
