//! The sandbox's account data and the API semantics over it (docs/vendors/mailchimp.md §2–3): audiences with
//! merge fields, members and tags; e-commerce stores, customers, products with variants, orders
//! with lines. Pure functions of the state: the server does auth, limits, faults and validation.
//!
//! Error wording follows docs/vendors/mailchimp.md where it quotes Mailchimp; wording marked "sandbox" below
//! is ours (Mailchimp's exact text UNCONFIRMED), chosen so that "already exists" / "does not
//! exist" read like Mailchimp's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use mlc::vendors::mailchimp::webhook::subscriber_hash;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::spec::FieldError;
use super::webhooks::{
    EventExtra, EventKind, MemberEvent, Source, WebhookEvents, WebhookSources, WebhookState,
    Webhooks, diff_events, member_event, takes_source,
};

/// A problem answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub title: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: u16, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            404,
            "Resource Not Found",
            "The requested resource could not be found.",
        )
    }

    /// 400 "Invalid Resource" with field errors.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(400, "Invalid Resource", detail)
        }
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)?;
        for e in &self.errors {
            write!(f, "; {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A successful answer: status and optional JSON body.
pub type Reply = Result<(u16, Option<Value>), ApiError>;

fn ok(body: Value) -> Reply {
    Ok((200, Some(body)))
}

fn no_content() -> Reply {
    Ok((204, None))
}

/// Everything the account holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountState {
    pub lists: BTreeMap<String, ListState>,
    pub stores: BTreeMap<String, StoreState>,
    /// Member events not yet handed to the webhook deliveries (the server drains it after
    /// every change).
    #[serde(skip)]
    pub outbox: Vec<MemberEvent>,
}

/// An audience.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListState {
    pub id: String,
    pub name: String,
    pub merge_fields: Vec<MergeFieldState>,
    /// By subscriber hash.
    pub members: BTreeMap<String, MemberState>,
    /// Subscriber hashes of permanently deleted members.
    pub forgotten: BTreeSet<String>,
    /// List webhooks by id.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// When the audience was created (`date_created`).
    #[serde(default)]
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeFieldState {
    pub merge_id: u32,
    pub tag: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberState {
    pub email_address: String,
    pub status: String,
    pub merge_fields: BTreeMap<String, Value>,
    pub tags: BTreeSet<String>,
    /// Set through control: every write to this member answers "Member In Compliance State".
    pub compliance: bool,
    /// How many times the member was written through the API (PUT, customer, tags).
    pub writes: u32,
    /// When and how the member came, and when it last changed.
    #[serde(default)]
    pub meta: MemberMeta,
}

/// What Mailchimp reports about a member's history: `source`, `timestamp_signup`/`_opt`
/// (both the time the member was added: the sandbox has no signup forms or double opt-in, so
/// the two coincide), `last_changed`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemberMeta {
    /// How the member was added: `API - Generic`, `Admin Add`, `E-Commerce`, `Hosted Signup Form`.
    pub source: String,
    pub added: DateTime<Utc>,
    pub last_changed: DateTime<Utc>,
}

impl MemberMeta {
    pub fn new(source: &str) -> Self {
        let now = Utc::now();
        Self {
            source: source.into(),
            added: now,
            last_changed: now,
        }
    }
}

impl MemberState {
    /// Records a change to the member now (`last_changed`).
    pub fn touch(&mut self) {
        self.meta.last_changed = Utc::now();
    }
}

/// A member's numeric id in Mailchimp's web app, stable per address.
fn web_id(hash: &str) -> u64 {
    u64::from_str_radix(hash.get(..8).unwrap_or("0"), 16).unwrap_or(0) % 1_000_000_000
}

/// A time as Mailchimp writes it: `2026-12-07T14:00:36+00:00`.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreState {
    /// The store document as created/patched.
    pub store: Map<String, Value>,
    pub customers: BTreeMap<String, Map<String, Value>>,
    pub products: BTreeMap<String, ProductState>,
    pub orders: BTreeMap<String, OrderState>,
    /// When the store was created and last changed.
    #[serde(default)]
    pub times: Times,
    /// The same for each customer, by id.
    #[serde(default)]
    pub customer_times: BTreeMap<String, Times>,
}

/// Creation and last-change times Mailchimp reports (`created_at`, `updated_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Times {
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

impl Times {
    fn now() -> Self {
        let now = Utc::now();
        Self {
            created: now,
            updated: now,
        }
    }
}

impl StoreState {
    pub fn list_id(&self) -> &str {
        self.store
            .get("list_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn is_syncing(&self) -> bool {
        self.store
            .get("is_syncing")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductState {
    /// The product without `variants`.
    pub product: Map<String, Value>,
    pub variants: BTreeMap<String, Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// The order without `lines`.
    pub order: Map<String, Value>,
    /// In the order they were added.
    pub lines: Vec<Map<String, Value>>,
    /// When the order was created (its `processed_at_foreign` unless given) and last changed.
    #[serde(default)]
    pub times: Times,
}

impl OrderState {
    pub fn line_ids(&self) -> Vec<String> {
        self.lines.iter().map(|l| str_of(l, "id")).collect()
    }

    pub fn financial_status(&self) -> Option<&str> {
        self.order.get("financial_status").and_then(Value::as_str)
    }
}

fn str_of(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn obj(body: &Value) -> Map<String, Value> {
    body.as_object().cloned().unwrap_or_default()
}

/// Mailchimp's default audience fields.
pub fn default_merge_fields() -> Vec<MergeFieldState> {
    [
        ("FNAME", "First Name", "text"),
        ("LNAME", "Last Name", "text"),
        ("ADDRESS", "Address", "address"),
        ("PHONE", "Phone Number", "phone"),
        ("BIRTHDAY", "Birthday", "birthday"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (tag, name, kind))| MergeFieldState {
        merge_id: i as u32 + 1,
        tag: tag.into(),
        name: name.into(),
        kind: kind.into(),
    })
    .collect()
}

const STATUSES: [&str; 5] = [
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
];

fn compliance_error(email: &str) -> ApiError {
    ApiError::new(
        400,
        "Member In Compliance State",
        format!(
            "{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."
        ),
    )
}

fn forgotten_error(email: &str) -> ApiError {
    ApiError::new(
        400,
        "Forgotten Email Not Subscribed",
        format!(
            "{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."
        ),
    )
}

impl AccountState {
    pub fn create_list(&mut self, id: &str, name: &str, default_fields: bool) {
        self.lists
            .entry(id.to_string())
            .or_insert_with(|| ListState {
                id: id.into(),
                name: name.into(),
                merge_fields: if default_fields {
                    default_merge_fields()
                } else {
                    Vec::new()
                },
                members: BTreeMap::new(),
                forgotten: BTreeSet::new(),
                webhooks: Webhooks::new(),
                created: Utc::now(),
            });
    }

    fn list(&mut self, list_id: &str) -> Result<&mut ListState, ApiError> {
        self.lists.get_mut(list_id).ok_or_else(ApiError::not_found)
    }

    fn store_mut(&mut self, store_id: &str) -> Result<&mut StoreState, ApiError> {
        self.stores
            .get_mut(store_id)
            .ok_or_else(ApiError::not_found)
    }

    pub fn get_list(&mut self, list_id: &str) -> Reply {
        let list = self.list(list_id)?;
        ok(render_list(list))
    }

    /// `GET /lists`: every audience, or those `email` is on; paged by `count`/`offset`.
    pub fn get_lists(&mut self, page: Page, email: Option<&str>) -> Reply {
        let hash = email.map(subscriber_hash);
        let lists: Vec<Value> = self
            .lists
            .values()
            .filter(|l| hash.as_ref().is_none_or(|h| l.members.contains_key(h)))
            .map(render_list)
            .collect();
        let total = lists.len();
        ok(json!({"lists": page.of(lists), "total_items": total,
            "constraints": {"may_create": true, "max_instances": 100, "current_total_instances": total},
            "_links": []}))
    }

    /// `GET /lists/{list_id}/members`: paged, filtered by what [`MemberFilter`] holds.
    pub fn get_members(&mut self, list_id: &str, page: Page, filter: &MemberFilter) -> Reply {
        let list = self.list(list_id)?;
        let members: Vec<Value> = list
            .members
            .iter()
            .filter(|(hash, m)| filter.keeps(hash, m))
            .map(|(hash, m)| Self::render_member(list, hash, m))
            .collect();
        let total = members.len();
        ok(
            json!({"members": page.of(members), "list_id": list.id, "total_items": total,
            "_links": []}),
        )
    }

    // ---- members ----------------------------------------------------------------------

    fn render_member(list: &ListState, hash: &str, m: &MemberState) -> Value {
        let mut merge = Map::new();
        for f in &list.merge_fields {
            merge.insert(
                f.tag.clone(),
                m.merge_fields.get(&f.tag).cloned().unwrap_or(json!("")),
            );
        }
        let tags: Vec<Value> = m
            .tags
            .iter()
            .enumerate()
            .take(50)
            .map(|(i, t)| json!({"id": i + 1, "name": t}))
            .collect();
        let merge_text = |tag: &str| {
            m.merge_fields
                .get(tag)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let full_name = [merge_text("FNAME"), merge_text("LNAME")]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        // Mailchimp leaves the opt-in time blank for members who never opted in.
        let opted_in = !matches!(m.status.as_str(), "transactional" | "pending");
        json!({
            "id": hash, "email_address": m.email_address, "unique_email_id": &hash[..10.min(hash.len())],
            "contact_id": hash, "full_name": full_name, "web_id": web_id(hash),
            "email_type": "html", "status": m.status, "merge_fields": merge,
            "interests": {}, "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "", "timestamp_signup": stamp(m.meta.added),
            "ip_opt": "", "timestamp_opt": if opted_in { stamp(m.meta.added) } else { String::new() },
            "member_rating": 2, "last_changed": stamp(m.meta.last_changed),
            "language": "", "vip": false, "email_client": "",
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0,
                "country_code": "", "timezone": "", "region": ""},
            "marketing_permissions": [], "source": m.meta.source,
            "tags_count": m.tags.len(), "tags": tags, "list_id": list.id,
            "consents_to_one_to_one_messaging": true,
        })
    }

    pub fn get_member(&mut self, list_id: &str, key: &str) -> Reply {
        let list = self.list(list_id)?;
        let hash = member_key(key);
        let m = list.members.get(&hash).ok_or_else(ApiError::not_found)?;
        ok(Self::render_member(list, &hash, m))
    }

    /// `PUT /lists/{list_id}/members/{subscriber_hash}`.
    pub fn put_member(&mut self, list_id: &str, key: &str, body: &Value, strict: bool) -> Reply {
        let list = self.list(list_id)?;
        let hash = member_key(key);
        let given = body
            .get("email_address")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_string());
        // `email_address` is required only for an address not yet on the list (the spec's
        // description of it), so an update may leave it out.
        let email = match (&given, list.members.get(&hash)) {
            (Some(email), _) => email.clone(),
            (None, Some(m)) => m.email_address.clone(),
            (None, None) => {
                return Err(ApiError::field(
                    "email_address",
                    "An email address is required to create a member.",
                ));
            }
        };
        if given.is_some() && subscriber_hash(&email) != hash {
            // Sandbox wording: catches a hash computed from an untrimmed/upper-case address.
            return Err(ApiError::field(
                "email_address",
                "The email address does not match the subscriber hash in the URL.",
            ));
        }
        if !looks_like_email(&email) {
            return Err(ApiError::invalid(
                format!("{email} looks fake or invalid, please enter a real email address."),
                Vec::new(),
            ));
        }
        if list.forgotten.contains(&hash) {
            return Err(forgotten_error(&email));
        }
        let merge = body
            .get("merge_fields")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if strict {
            // UNCONFIRMED how Mailchimp answers unknown merge tags (docs/vendors/mailchimp.md §2.2); the
            // sandbox refuses them so the product learns to read the audience's fields first.
            check_merge_tags(list, &merge)?;
        }
        let status = body.get("status").and_then(Value::as_str);
        let status_if_new = body.get("status_if_new").and_then(Value::as_str);
        // The events of an API write reach only webhooks taking `sources.api`: with none on
        // the list, the member is not copied to diff against.
        let before = list
            .webhooks
            .values()
            .any(|w| takes_source(&w.sources, Source::Api))
            .then(|| list.members.get(&hash).cloned());
        match list.members.get_mut(&hash) {
            Some(m) => {
                if m.compliance {
                    return Err(compliance_error(&email));
                }
                if let Some(status) = status {
                    if matches!(m.status.as_str(), "unsubscribed" | "cleaned")
                        && status == "subscribed"
                    {
                        return Err(compliance_error(&email));
                    }
                    // An explicit status unarchives; without one an archived member stays.
                    m.status = status.to_string();
                }
                m.merge_fields.extend(merge);
                m.writes += 1;
                m.touch();
            }
            None => {
                let Some(status) = status.or(status_if_new).filter(|s| STATUSES.contains(s)) else {
                    return Err(ApiError::field(
                        "status_if_new",
                        "A status is required to create a member.",
                    ));
                };
                list.members.insert(
                    hash.clone(),
                    MemberState {
                        email_address: email,
                        status: status.into(),
                        merge_fields: merge.into_iter().collect(),
                        tags: BTreeSet::new(),
                        compliance: false,
                        writes: 1,
                        meta: MemberMeta::new("API - Generic"),
                    },
                );
            }
        }
        let list = self.list(list_id)?;
        let m = &list.members[&hash];
        let rendered = Self::render_member(list, &hash, m);
        if let Some(before) = before {
            let events = diff_events(list_id, before.as_ref(), m, Source::Api);
            self.outbox.extend(events);
        }
        ok(rendered)
    }

    /// `POST /lists/{list_id}/members`: adds a new member (`status` required by the spec); an
    /// address already on the list (archived ones aside, which this re-adds) is 400 "Member
    /// Exists", as Mailchimp answers.
    pub fn post_member(&mut self, list_id: &str, body: &Value, strict: bool) -> Reply {
        let email = body
            .get("email_address")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        let hash = subscriber_hash(&email);
        let list = self.list(list_id)?;
        if list
            .members
            .get(&hash)
            .is_some_and(|m| m.status != "archived")
        {
            return Err(ApiError::new(
                400,
                "Member Exists",
                format!(
                    "{email} is already a list member. Use PUT to insert or update list members."
                ),
            ));
        }
        // From here it is an upsert of a new (or archived) address with an explicit status.
        self.put_member(list_id, &hash, body, strict)
    }

    /// `PATCH /lists/{list_id}/members/{subscriber_hash}`: changes an existing member's status
    /// and merge fields (404 for an unknown one). Changing the address this way is not
    /// implemented: 501, rather than a silent no-op.
    pub fn patch_member(&mut self, list_id: &str, key: &str, body: &Value, strict: bool) -> Reply {
        let hash = member_key(key);
        let list = self.list(list_id)?;
        let Some(existing) = list.members.get(&hash) else {
            return Err(ApiError::not_found());
        };
        let mut body = body.clone();
        match body.get("email_address").and_then(Value::as_str) {
            Some(new) if subscriber_hash(new.trim()) != hash => {
                return Err(ApiError::new(
                    501,
                    "Not Implemented",
                    "The sandbox does not implement changing a member's address with PATCH.",
                ));
            }
            _ => {}
        }
        if let Some(obj) = body.as_object_mut() {
            obj.insert("email_address".into(), json!(existing.email_address));
        }
        self.put_member(list_id, &hash, &body, strict)
    }

    /// `DELETE …/members/{hash}`: archive.
    pub fn archive_member(&mut self, list_id: &str, key: &str) -> Reply {
        let list = self.list(list_id)?;
        let m = list
            .members
            .get_mut(&member_key(key))
            .ok_or_else(ApiError::not_found)?;
        if matches!(m.status.as_str(), "cleaned" | "pending" | "archived") {
            return Err(ApiError::new(
                405,
                "Method Not Allowed",
                "The requested method and resource are not compatible. Can not archive a contact that is bounced, pending or archived.",
            ));
        }
        m.status = "archived".into();
        m.touch();
        no_content()
    }

    /// `POST …/members/{hash}/actions/delete-permanent`.
    pub fn delete_permanent(&mut self, list_id: &str, key: &str) -> Reply {
        let list = self.list(list_id)?;
        let hash = member_key(key);
        list.members.remove(&hash).ok_or_else(ApiError::not_found)?;
        list.forgotten.insert(hash);
        no_content()
    }

    pub fn post_tags(&mut self, list_id: &str, key: &str, body: &Value) -> Reply {
        let list = self.list(list_id)?;
        let m = list
            .members
            .get_mut(&member_key(key))
            .ok_or_else(ApiError::not_found)?;
        for tag in body
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = tag.get("name").and_then(Value::as_str).unwrap_or_default();
            match tag.get("status").and_then(Value::as_str) {
                Some("active") => {
                    m.tags.insert(name.to_string());
                }
                Some("inactive") => {
                    m.tags.remove(name);
                }
                _ => {}
            }
        }
        m.writes += 1;
        no_content()
    }

    pub fn get_tags(&mut self, list_id: &str, key: &str) -> Reply {
        let list = self.list(list_id)?;
        let m = list
            .members
            .get(&member_key(key))
            .ok_or_else(ApiError::not_found)?;
        let tags: Vec<Value> = m
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": i + 1, "name": t}))
            .collect();
        ok(json!({"tags": tags, "total_items": m.tags.len()}))
    }

    // ---- merge fields -----------------------------------------------------------------

    fn render_field(list_id: &str, f: &MergeFieldState) -> Value {
        json!({"merge_id": f.merge_id, "tag": f.tag, "name": f.name, "type": f.kind,
            "required": false, "default_value": "", "public": false, "display_order": f.merge_id,
            "options": {}, "help_text": "", "list_id": list_id})
    }

    pub fn get_merge_fields(&mut self, list_id: &str, count: usize, offset: usize) -> Reply {
        let list = self.list(list_id)?;
        let fields: Vec<Value> = list
            .merge_fields
            .iter()
            .skip(offset)
            .take(count)
            .map(|f| Self::render_field(list_id, f))
            .collect();
        ok(
            json!({"merge_fields": fields, "list_id": list_id, "total_items": list.merge_fields.len()}),
        )
    }

    /// `GET /lists/{list_id}/merge-fields/{merge_id}`.
    pub fn get_merge_field(&mut self, list_id: &str, merge_id: &str) -> Reply {
        let list = self.list(list_id)?;
        let field = list
            .merge_fields
            .iter()
            .find(|f| f.merge_id.to_string() == merge_id)
            .ok_or_else(ApiError::not_found)?;
        ok(Self::render_field(list_id, field))
    }

    pub fn post_merge_field(&mut self, list_id: &str, body: &Value) -> Reply {
        let list = self.list(list_id)?;
        let next_id = list
            .merge_fields
            .iter()
            .map(|f| f.merge_id)
            .max()
            .unwrap_or(0)
            + 1;
        let tag = match body.get("tag").and_then(Value::as_str) {
            Some(t) => t.trim().to_ascii_uppercase(),
            None => format!("MMERGE{next_id}"),
        };
        // Sandbox wording; Mailchimp limits tags to 10 characters.
        if tag.is_empty()
            || tag.len() > 10
            || !tag
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ApiError::field(
                "tag",
                "Merge tags must be 1 to 10 characters: letters, digits or underscores.",
            ));
        }
        if list.merge_fields.iter().any(|f| f.tag == tag) {
            return Err(ApiError::invalid(
                format!("A Merge Field with the tag \"{tag}\" already exists for this list."),
                Vec::new(),
            ));
        }
        let field = MergeFieldState {
            merge_id: next_id,
            tag,
            name: body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            kind: body
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("text")
                .into(),
        };
        let rendered = Self::render_field(list_id, &field);
        list.merge_fields.push(field);
        ok(rendered)
    }

    // ---- stores -----------------------------------------------------------------------

    pub fn post_store(&mut self, body: &Value) -> Reply {
        let store = obj(body);
        let id = str_of(&store, "id");
        let list_id = str_of(&store, "list_id");
        if !self.lists.contains_key(&list_id) {
            return Err(ApiError::field(
                "list_id",
                "The list_id provided does not match an audience in this account.",
            ));
        }
        if self.stores.contains_key(&id) {
            return Err(ApiError::invalid(
                "A store with the provided ID already exists in the account.",
                Vec::new(),
            ));
        }
        let mut store = store;
        store.entry("is_syncing").or_insert(Value::Bool(false));
        let times = Times::now();
        let rendered = render_store(&store, times);
        self.stores.insert(
            id,
            StoreState {
                store,
                customers: BTreeMap::new(),
                products: BTreeMap::new(),
                orders: BTreeMap::new(),
                times: Times::now(),
                customer_times: BTreeMap::new(),
            },
        );
        ok(rendered)
    }

    pub fn get_store(&mut self, store_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        ok(render_store(&s.store, s.times))
    }

    pub fn patch_store(&mut self, store_id: &str, body: &Value) -> Reply {
        let s = self.store_mut(store_id)?;
        let patch = obj(body);
        if let Some(list) = patch.get("list_id").and_then(Value::as_str)
            && list != s.list_id()
        {
            return Err(ApiError::invalid(
                "The list_id of a store cannot be changed.",
                vec![FieldError {
                    field: "list_id".into(),
                    message: "list_id is immutable".into(),
                }],
            ));
        }
        for (k, v) in patch {
            if k != "id" {
                s.store.insert(k, v);
            }
        }
        s.times.updated = Utc::now();
        ok(render_store(&s.store, s.times))
    }

    /// `GET /ecommerce/stores`.
    pub fn get_stores(&mut self, page: Page) -> Reply {
        let stores: Vec<Value> = self
            .stores
            .values()
            .map(|s| render_store(&s.store, s.times))
            .collect();
        let total = stores.len();
        ok(json!({"stores": page.of(stores), "total_items": total, "_links": []}))
    }

    /// `GET /ecommerce/stores/{id}/customers`, optionally only `email_address`'s.
    pub fn get_customers(&mut self, store_id: &str, page: Page, email: Option<&str>) -> Reply {
        let s = self.store_mut(store_id)?;
        let customers: Vec<Value> = s
            .customers
            .iter()
            .filter(|(_, c)| {
                email.is_none_or(|e| str_of(c, "email_address").eq_ignore_ascii_case(e))
            })
            .map(|(id, c)| render_customer(s, id, c))
            .collect();
        let total = customers.len();
        ok(
            json!({"store_id": store_id, "customers": page.of(customers), "total_items": total,
            "_links": []}),
        )
    }

    /// `GET /ecommerce/stores/{id}/products`.
    pub fn get_products(&mut self, store_id: &str, page: Page) -> Reply {
        let s = self.store_mut(store_id)?;
        let products: Vec<Value> = s.products.values().map(Self::render_product).collect();
        let total = products.len();
        ok(
            json!({"store_id": store_id, "products": page.of(products), "total_items": total,
            "_links": []}),
        )
    }

    /// `GET /ecommerce/stores/{id}/orders`, optionally only `customer_id`'s.
    pub fn get_orders(&mut self, store_id: &str, page: Page, customer_id: Option<&str>) -> Reply {
        let s = self.store_mut(store_id)?;
        let orders: Vec<Value> = s
            .orders
            .values()
            .filter(|o| {
                customer_id.is_none_or(|want| {
                    o.order
                        .get("customer")
                        .and_then(Value::as_object)
                        .is_some_and(|c| str_of(c, "id") == want)
                })
            })
            .map(|o| Self::render_order(s, o))
            .collect();
        let total = orders.len();
        ok(
            json!({"store_id": store_id, "orders": page.of(orders), "total_items": total,
            "_links": []}),
        )
    }

    /// `GET …/orders/{order_id}/lines`.
    pub fn get_order_lines(&mut self, store_id: &str, order_id: &str, page: Page) -> Reply {
        let s = self.store_mut(store_id)?;
        let o = s.orders.get(order_id).ok_or_else(ApiError::not_found)?;
        let lines: Vec<Value> = o.lines.iter().cloned().map(Value::Object).collect();
        let total = lines.len();
        ok(
            json!({"store_id": store_id, "order_id": order_id, "lines": page.of(lines),
            "total_items": total, "_links": []}),
        )
    }

    /// `GET …/orders/{order_id}/lines/{line_id}`.
    pub fn get_order_line(&mut self, store_id: &str, order_id: &str, line_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        let o = s.orders.get(order_id).ok_or_else(ApiError::not_found)?;
        let line = o
            .lines
            .iter()
            .find(|l| str_of(l, "id") == line_id)
            .ok_or_else(ApiError::not_found)?;
        ok(Value::Object(line.clone()))
    }

    /// `GET …/products/{product_id}/variants`.
    pub fn get_variants(&mut self, store_id: &str, product_id: &str, page: Page) -> Reply {
        let s = self.store_mut(store_id)?;
        let p = s.products.get(product_id).ok_or_else(ApiError::not_found)?;
        let variants: Vec<Value> = p.variants.values().cloned().map(Value::Object).collect();
        let total = variants.len();
        ok(json!({"store_id": store_id, "product_id": product_id,
            "variants": page.of(variants), "total_items": total, "_links": []}))
    }

    /// `GET …/products/{product_id}/variants/{variant_id}`.
    pub fn get_variant(&mut self, store_id: &str, product_id: &str, variant_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        let p = s.products.get(product_id).ok_or_else(ApiError::not_found)?;
        let v = p.variants.get(variant_id).ok_or_else(ApiError::not_found)?;
        ok(Value::Object(v.clone()))
    }

    pub fn delete_store(&mut self, store_id: &str) -> Reply {
        self.stores
            .remove(store_id)
            .ok_or_else(ApiError::not_found)?;
        no_content()
    }

    // ---- customers --------------------------------------------------------------------

    /// The audience effect of a customer write (docs/vendors/mailchimp.md §3.2).
    fn customer_member(&mut self, list_id: &str, customer: &Map<String, Value>) {
        let email = str_of(customer, "email_address");
        let opt_in = customer
            .get("opt_in_status")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let Some(list) = self.lists.get_mut(list_id) else {
            return;
        };
        let hash = subscriber_hash(&email);
        if list.forgotten.contains(&hash) || !looks_like_email(&email) {
            return;
        }
        match list.members.get_mut(&hash) {
            Some(m) => {
                if opt_in && m.status == "transactional" {
                    m.status = "subscribed".into();
                    m.writes += 1;
                    m.touch();
                }
            }
            None => {
                let mut merge = BTreeMap::new();
                for (key, tag) in [("first_name", "FNAME"), ("last_name", "LNAME")] {
                    if let Some(v) = customer.get(key).and_then(Value::as_str) {
                        merge.insert(tag.to_string(), json!(v));
                    }
                }
                list.members.insert(
                    hash,
                    MemberState {
                        email_address: email.trim().to_string(),
                        status: if opt_in {
                            "subscribed"
                        } else {
                            "transactional"
                        }
                        .into(),
                        merge_fields: merge,
                        tags: BTreeSet::new(),
                        compliance: false,
                        writes: 1,
                        meta: MemberMeta::new("E-Commerce"),
                    },
                );
            }
        }
    }

    pub fn put_customer(&mut self, store_id: &str, customer_id: &str, body: &Value) -> Reply {
        let s = self.store_mut(store_id)?;
        let customer = obj(body);
        if str_of(&customer, "id") != customer_id {
            return Err(ApiError::field(
                "id",
                "The customer id in the body does not match the URL.",
            ));
        }
        if customer_id.chars().count() > 50 {
            return Err(ApiError::field(
                "id",
                "Customer ids are at most 50 characters.",
            ));
        }
        let list_id = s.list_id().to_string();
        let stored = s.customers.entry(customer_id.to_string()).or_default();
        stored.extend(customer);
        let stored = stored.clone();
        touch_customer(s, customer_id);
        let rendered = render_customer(s, customer_id, &stored);
        self.customer_member(&list_id, &stored);
        ok(rendered)
    }

    /// `POST …/customers`: a new customer only (an id already in the store is 400), otherwise as
    /// `PUT`.
    pub fn post_customer(&mut self, store_id: &str, body: &Value) -> Reply {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if self.store_mut(store_id)?.customers.contains_key(&id) {
            return Err(ApiError::invalid(
                "A customer with the provided ID already exists in the account.",
                Vec::new(),
            ));
        }
        self.put_customer(store_id, &id, body)
    }

    /// `PATCH …/customers/{id}`: an existing customer's given fields (404 for an unknown one).
    pub fn patch_customer(&mut self, store_id: &str, customer_id: &str, body: &Value) -> Reply {
        let s = self.store_mut(store_id)?;
        let Some(existing) = s.customers.get(customer_id) else {
            return Err(ApiError::not_found());
        };
        let mut merged = existing.clone();
        for (k, v) in obj(body) {
            if k != "id" {
                merged.insert(k, v);
            }
        }
        self.put_customer(store_id, customer_id, &Value::Object(merged))
    }

    /// `DELETE …/customers/{id}`.
    pub fn delete_customer(&mut self, store_id: &str, customer_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        s.customers
            .remove(customer_id)
            .ok_or_else(ApiError::not_found)?;
        s.customer_times.remove(customer_id);
        no_content()
    }

    pub fn get_customer(&mut self, store_id: &str, customer_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        let c = s
            .customers
            .get(customer_id)
            .ok_or_else(ApiError::not_found)?;
        ok(render_customer(s, customer_id, c))
    }

    // ---- products ---------------------------------------------------------------------

    fn render_product(p: &ProductState) -> Value {
        let mut out = p.product.clone();
        out.insert(
            "variants".into(),
            Value::Array(p.variants.values().cloned().map(Value::Object).collect()),
        );
        Value::Object(out)
    }

    pub fn post_product(&mut self, store_id: &str, body: &Value) -> Reply {
        let s = self.store_mut(store_id)?;
        let mut product = obj(body);
        let id = str_of(&product, "id");
        if s.products.contains_key(&id) {
            return Err(ApiError::invalid(
                "A product with the provided ID already exists in the account.",
                Vec::new(),
            ));
        }
        let variants: BTreeMap<String, Map<String, Value>> = match product.remove("variants") {
            Some(Value::Array(vs)) => vs.iter().map(obj).map(|v| (str_of(&v, "id"), v)).collect(),
            _ => BTreeMap::new(),
        };
        if variants.is_empty() {
            return Err(ApiError::field(
                "variants",
                "A product needs at least one variant.",
            ));
        }
        let state = ProductState { product, variants };
        let rendered = Self::render_product(&state);
        s.products.insert(id, state);
        ok(rendered)
    }

    pub fn get_product(&mut self, store_id: &str, product_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        let p = s.products.get(product_id).ok_or_else(ApiError::not_found)?;
        ok(Self::render_product(p))
    }

    pub fn patch_product(&mut self, store_id: &str, product_id: &str, body: &Value) -> Reply {
        let s = self.store_mut(store_id)?;
        let p = s
            .products
            .get_mut(product_id)
            .ok_or_else(ApiError::not_found)?;
        for (k, v) in obj(body) {
            match (k.as_str(), v) {
                ("id", _) => {}
                ("variants", Value::Array(vs)) => {
                    for v in vs.iter().map(obj) {
                        p.variants.entry(str_of(&v, "id")).or_default().extend(v);
                    }
                }
                (_, v) => {
                    p.product.insert(k, v);
                }
            }
        }
        ok(Self::render_product(p))
    }

    pub fn put_variant(
        &mut self,
        store_id: &str,
        product_id: &str,
        variant_id: &str,
        body: &Value,
    ) -> Reply {
        let s = self.store_mut(store_id)?;
        let p = s
            .products
            .get_mut(product_id)
            .ok_or_else(ApiError::not_found)?;
        let variant = obj(body);
        if str_of(&variant, "id") != variant_id {
            return Err(ApiError::field(
                "id",
                "The variant id in the body does not match the URL.",
            ));
        }
        let stored = p.variants.entry(variant_id.to_string()).or_default();
        stored.extend(variant);
        ok(Value::Object(stored.clone()))
    }

    // ---- orders -----------------------------------------------------------------------

    /// Checks a line's product and variant exist (docs/vendors/mailchimp.md §3).
    fn check_line(s: &StoreState, line: &Map<String, Value>) -> Result<(), ApiError> {
        let product_id = str_of(line, "product_id");
        let variant_id = str_of(line, "product_variant_id");
        let Some(p) = s.products.get(&product_id) else {
            return Err(ApiError::invalid(
                "A product with the provided ID does not exist in the account for this list.",
                vec![FieldError {
                    field: "lines.product_id".into(),
                    message: format!("unknown product {product_id}"),
                }],
            ));
        };
        if !p.variants.contains_key(&variant_id) {
            return Err(ApiError::invalid(
                "A product variant with the provided variant ID does not exist in the account for this list.",
                vec![FieldError {
                    field: "lines.product_variant_id".into(),
                    message: format!("unknown variant {variant_id}"),
                }],
            ));
        }
        Ok(())
    }

    fn render_order(s: &StoreState, o: &OrderState) -> Value {
        let mut out = o.order.clone();
        if let Some(Value::Object(c)) = out.get("customer") {
            let id = str_of(c, "id");
            if let Some(full) = s.customers.get(&id) {
                out.insert("customer".into(), render_customer(s, &id, full));
            }
        }
        // What Mailchimp fills in when the order did not say: times from when it reached
        // Mailchimp, zero totals. Status-like fields the order did not set stay absent (what
        // Mailchimp answers for them is UNCONFIRMED, and the product reads financial_status).
        let store_id = str_of(&s.store, "id");
        for (key, value) in [
            ("store_id", json!(store_id)),
            ("processed_at_foreign", json!(stamp(o.times.created))),
            ("updated_at_foreign", json!(stamp(o.times.updated))),
            ("tax_total", json!(0)),
            ("shipping_total", json!(0)),
            ("discount_total", json!(0)),
        ] {
            out.entry(key).or_insert(value);
        }
        out.insert(
            "lines".into(),
            Value::Array(o.lines.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(out)
    }

    pub fn post_order(&mut self, store_id: &str, body: &Value) -> Reply {
        let list_id = self.store_mut(store_id)?.list_id().to_string();
        let mut order = obj(body);
        let id = str_of(&order, "id");
        let lines: Vec<Map<String, Value>> = match order.remove("lines") {
            Some(Value::Array(ls)) => ls.iter().map(obj).collect(),
            _ => Vec::new(),
        };
        let customer = order
            .get("customer")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let customer_id = str_of(&customer, "id");
        {
            let s = self.store_mut(store_id)?;
            if s.orders.contains_key(&id) {
                return Err(ApiError::invalid(
                    "An order with the provided ID already exists in the account.",
                    Vec::new(),
                ));
            }
            let mut seen = BTreeSet::new();
            for line in &lines {
                if !seen.insert(str_of(line, "id")) {
                    return Err(ApiError::field(
                        "lines.id",
                        "Line ids must be unique in an order.",
                    ));
                }
                Self::check_line(s, line)?;
            }
            if !s.customers.contains_key(&customer_id) && !customer.contains_key("email_address") {
                // UNCONFIRMED exactly what Mailchimp requires for a new customer (docs/vendors/mailchimp.md §3.4).
                return Err(ApiError::field(
                    "customer.email_address",
                    "A new customer needs an email_address.",
                ));
            }
        }
        // A customer given in full is created/updated as with PUT.
        if customer.contains_key("email_address") {
            let s = self.store_mut(store_id)?;
            let stored = s.customers.entry(customer_id.clone()).or_default();
            stored.extend(customer);
            let stored = stored.clone();
            touch_customer(s, &customer_id);
            self.customer_member(&list_id, &stored);
        }
        if order.contains_key("cancelled_at_foreign") && !order.contains_key("financial_status") {
            order.insert("financial_status".into(), json!("cancelled"));
        }
        let s = self.store_mut(store_id)?;
        let state = OrderState {
            order,
            lines,
            times: Times::now(),
        };
        let rendered = Self::render_order(s, &state);
        s.orders.insert(id, state);
        ok(rendered)
    }

    pub fn get_order(&mut self, store_id: &str, order_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        let o = s.orders.get(order_id).ok_or_else(ApiError::not_found)?;
        ok(Self::render_order(s, o))
    }

    /// PATCH merges lines by id and never removes one (docs/vendors/mailchimp.md §3.4).
    pub fn patch_order(&mut self, store_id: &str, order_id: &str, body: &Value) -> Reply {
        let s = self.store_mut(store_id)?;
        let Some(mut o) = s.orders.get(order_id).cloned() else {
            return Err(ApiError::not_found());
        };
        for (k, v) in obj(body) {
            match (k.as_str(), v) {
                ("id", _) => {}
                ("lines", Value::Array(ls)) => {
                    for line in ls.iter().map(obj) {
                        let line_id = str_of(&line, "id");
                        match o.lines.iter_mut().find(|l| str_of(l, "id") == line_id) {
                            Some(existing) => {
                                let mut merged = existing.clone();
                                merged.extend(line);
                                Self::check_line(s, &merged)?;
                                *existing = merged;
                            }
                            None => {
                                for key in [
                                    "id",
                                    "product_id",
                                    "product_variant_id",
                                    "quantity",
                                    "price",
                                ] {
                                    if !line.contains_key(key) {
                                        return Err(ApiError::field(
                                            &format!("lines.{key}"),
                                            "Required for a new line.",
                                        ));
                                    }
                                }
                                Self::check_line(s, &line)?;
                                o.lines.push(line);
                            }
                        }
                    }
                }
                (_, v) => {
                    o.order.insert(k, v);
                }
            }
        }
        o.times.updated = Utc::now();
        let rendered = Self::render_order(s, &o);
        s.orders.insert(order_id.to_string(), o);
        ok(rendered)
    }

    pub fn delete_order(&mut self, store_id: &str, order_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        s.orders.remove(order_id).ok_or_else(ApiError::not_found)?;
        no_content()
    }

    pub fn delete_order_line(&mut self, store_id: &str, order_id: &str, line_id: &str) -> Reply {
        let s = self.store_mut(store_id)?;
        let o = s.orders.get_mut(order_id).ok_or_else(ApiError::not_found)?;
        let before = o.lines.len();
        o.lines.retain(|l| str_of(l, "id") != line_id);
        if o.lines.len() == before {
            return Err(ApiError::not_found());
        }
        o.times.updated = Utc::now();
        no_content()
    }
}

/// An audience as Mailchimp answers it. The sandbox keeps no campaigns, so campaign figures are
/// zero; contact and defaults are a plausible account's.
fn render_list(list: &ListState) -> Value {
    let count = |status: &str| list.members.values().filter(|m| m.status == status).count();
    let last = |status: &str, at: fn(&MemberState) -> DateTime<Utc>| {
        list.members
            .values()
            .filter(|m| m.status == status)
            .map(at)
            .max()
            .map(stamp)
            .unwrap_or_default()
    };
    json!({
        "id": list.id, "web_id": web_id(&subscriber_hash(&list.id)), "name": list.name,
        "contact": {"company": list.name, "address1": "1 Main St", "address2": "",
            "city": "Atlanta", "state": "GA", "zip": "30308", "country": "US", "phone": ""},
        "permission_reminder": "You signed up for updates from us.",
        "use_archive_bar": true,
        "campaign_defaults": {"from_name": list.name, "from_email": "news@example.com",
            "subject": "", "language": "en"},
        "notify_on_subscribe": "", "notify_on_unsubscribe": "",
        "date_created": stamp(list.created), "list_rating": 0, "email_type_option": false,
        "subscribe_url_short": format!("https://eepurl.com/{}", list.id),
        "subscribe_url_long": format!("https://example.us21.list-manage.com/subscribe?id={}", list.id),
        "beamer_address": format!("{}@inbound.mailchimp.com", list.id),
        "visibility": "prv", "double_optin": false, "has_welcome": false,
        "marketing_permissions": false, "modules": [],
        "stats": {
            "member_count": count("subscribed"), "unsubscribe_count": count("unsubscribed"),
            "cleaned_count": count("cleaned"), "member_count_since_send": count("subscribed"),
            "unsubscribe_count_since_send": count("unsubscribed"),
            "cleaned_count_since_send": count("cleaned"), "campaign_count": 0,
            "campaign_last_sent": "", "merge_field_count": list.merge_fields.len(),
            "avg_sub_rate": 0, "avg_unsub_rate": 0, "target_sub_rate": 0, "open_rate": 0,
            "click_rate": 0,
            "last_sub_date": last("subscribed", |m| m.meta.added),
            "last_unsub_date": last("unsubscribed", |m| m.meta.last_changed),
        },
        "_links": [],
    })
}

/// `count`/`offset` of a Mailchimp list operation: 10 by default, at most 1000.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub count: usize,
    pub offset: usize,
}

impl Page {
    fn of(self, items: Vec<Value>) -> Vec<Value> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.count)
            .collect()
    }
}

/// The member filters the sandbox applies (`GET /lists/{id}/members`).
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub status: Option<String>,
    pub unique_email_id: Option<String>,
    pub vip_only: bool,
    pub since_last_changed: Option<DateTime<Utc>>,
    pub before_last_changed: Option<DateTime<Utc>>,
    pub since_timestamp_opt: Option<DateTime<Utc>>,
    pub before_timestamp_opt: Option<DateTime<Utc>>,
}

impl MemberFilter {
    fn keeps(&self, hash: &str, m: &MemberState) -> bool {
        // Archived members are listed only when asked for by status, as Mailchimp does.
        let status_ok = match &self.status {
            Some(s) => &m.status == s,
            None => m.status != "archived",
        };
        status_ok
            && self
                .unique_email_id
                .as_deref()
                .is_none_or(|u| hash.starts_with(u))
            // No member is a VIP in the sandbox.
            && !self.vip_only
            && self.since_last_changed.is_none_or(|t| m.meta.last_changed >= t)
            && self.before_last_changed.is_none_or(|t| m.meta.last_changed < t)
            && self.since_timestamp_opt.is_none_or(|t| m.meta.added >= t)
            && self.before_timestamp_opt.is_none_or(|t| m.meta.added < t)
    }
}

/// A store as Mailchimp answers it: the stored document plus what Mailchimp fills in (its
/// times, and blanks for the contact fields the store did not give).
fn render_store(store: &Map<String, Value>, times: Times) -> Value {
    let mut out = store.clone();
    for (key, value) in [
        ("created_at", json!(stamp(times.created))),
        ("updated_at", json!(stamp(times.updated))),
        ("list_is_active", json!(true)),
        ("platform", json!("")),
        ("domain", json!("")),
        ("email_address", json!("")),
        ("money_format", json!("$")),
        ("primary_locale", json!("en")),
        ("timezone", json!("")),
        ("phone", json!("")),
        ("address", json!({})),
    ] {
        out.entry(key).or_insert(value);
    }
    Value::Object(out)
}

fn touch_customer(s: &mut StoreState, customer_id: &str) {
    let now = Utc::now();
    s.customer_times
        .entry(customer_id.to_string())
        .and_modify(|t| t.updated = now)
        .or_insert(Times {
            created: now,
            updated: now,
        });
}

/// A customer as Mailchimp answers it: its times, and `orders_count`/`total_spent` over the
/// store's orders for it (Mailchimp computes them; they cannot be written).
fn render_customer(s: &StoreState, customer_id: &str, c: &Map<String, Value>) -> Value {
    let mut out = c.clone();
    let times = s
        .customer_times
        .get(customer_id)
        .copied()
        .unwrap_or_default();
    let orders: Vec<&OrderState> = s
        .orders
        .values()
        .filter(|o| {
            o.order
                .get("customer")
                .and_then(Value::as_object)
                .is_some_and(|c| str_of(c, "id") == customer_id)
        })
        .collect();
    let spent: f64 = orders
        .iter()
        .filter_map(|o| o.order.get("order_total").and_then(Value::as_f64))
        .sum();
    out.insert("orders_count".into(), json!(orders.len()));
    // Cents, so sums of prices like 0.1 + 0.2 read as Mailchimp shows them.
    out.insert("total_spent".into(), json!((spent * 100.0).round() / 100.0));
    out.insert("created_at".into(), json!(stamp(times.created)));
    out.insert("updated_at".into(), json!(stamp(times.updated)));
    for (key, value) in [
        ("company", json!("")),
        ("first_name", json!("")),
        ("last_name", json!("")),
        ("address", json!({})),
    ] {
        out.entry(key).or_insert(value);
    }
    Value::Object(out)
}

/// A webhook about to be created: checked, not yet validated with its GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: WebhookEvents,
    pub sources: WebhookSources,
}

// ---- list webhooks (docs/vendors/mailchimp.md §4) --------------------------------------------------------

impl AccountState {
    fn webhook_url_taken(list: &ListState, url: &str) -> Result<(), ApiError> {
        if list.webhooks.values().any(|w| w.url == url) {
            // Mailchimp refuses a second webhook with the same URL; its wording is UNCONFIRMED.
            return Err(ApiError::field(
                "url",
                "A webhook with this URL already exists for this list.",
            ));
        }
        Ok(())
    }

    /// Checks a `POST /lists/{list_id}/webhooks` body. Flags it leaves out are off (Mailchimp's
    /// defaults are UNCONFIRMED; a product should send all of them).
    pub fn check_new_webhook(
        &mut self,
        list_id: &str,
        body: &Value,
    ) -> Result<NewWebhook, ApiError> {
        let list = self.list(list_id)?;
        let url = body
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        let parsed = reqwest::Url::parse(&url).ok();
        if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
            return Err(ApiError::field("url", "Invalid URL"));
        }
        Self::webhook_url_taken(list, &url)?;
        let flags = |key: &str| body.get(key).cloned().unwrap_or_else(|| json!({}));
        let events: WebhookEvents = serde_json::from_value(flags("events"))
            .map_err(|e| ApiError::field("events", e.to_string()))?;
        let sources: WebhookSources = serde_json::from_value(flags("sources"))
            .map_err(|e| ApiError::field("sources", e.to_string()))?;
        Ok(NewWebhook {
            url,
            events,
            sources,
        })
    }

    /// Adds a validated webhook (the URL is checked again: a concurrent create may have won).
    pub fn insert_webhook(
        &mut self,
        list_id: &str,
        new: NewWebhook,
    ) -> Result<WebhookState, ApiError> {
        let list = self.list(list_id)?;
        Self::webhook_url_taken(list, &new.url)?;
        let webhook = WebhookState {
            id: uuid::Uuid::new_v4().simple().to_string()[..10].to_string(),
            url: new.url,
            events: new.events,
            sources: new.sources,
        };
        list.webhooks.insert(webhook.id.clone(), webhook.clone());
        Ok(webhook)
    }

    pub fn list_webhooks(&mut self, list_id: &str) -> Reply {
        let list = self.list(list_id)?;
        let hooks: Vec<Value> = list.webhooks.values().map(|w| w.render(list_id)).collect();
        ok(json!({"webhooks": hooks, "list_id": list_id, "total_items": hooks.len(), "_links": []}))
    }

    pub fn get_webhook(&mut self, list_id: &str, webhook_id: &str) -> Reply {
        let list = self.list(list_id)?;
        let w = list
            .webhooks
            .get(webhook_id)
            .ok_or_else(ApiError::not_found)?;
        ok(w.render(list_id))
    }

    pub fn delete_webhook(&mut self, list_id: &str, webhook_id: &str) -> Reply {
        let list = self.list(list_id)?;
        list.webhooks
            .remove(webhook_id)
            .ok_or_else(ApiError::not_found)?;
        no_content()
    }
}

// ---- members changed as people do in Mailchimp (control) ------------------------------------

fn member_missing(email: &str) -> ApiError {
    ApiError::new(
        404,
        "Resource Not Found",
        format!("{email} is not a member of this audience."),
    )
}

/// Refuses merge tags the audience does not have, naming each.
fn check_merge_tags(list: &ListState, merges: &Map<String, Value>) -> Result<(), ApiError> {
    let unknown: Vec<FieldError> = merges
        .keys()
        .filter(|k| !list.merge_fields.iter().any(|f| &f.tag == *k))
        .map(|k| FieldError {
            field: format!("merge_fields.{k}"),
            message: "This merge field does not exist in the audience.".into(),
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "Your merge fields were invalid.",
            unknown,
        ))
    }
}

impl AccountState {
    fn member_mut(&mut self, list_id: &str, email: &str) -> Result<&mut MemberState, ApiError> {
        self.list(list_id)?
            .members
            .get_mut(&subscriber_hash(email))
            .ok_or_else(|| member_missing(email))
    }

    fn emit(
        &mut self,
        list_id: &str,
        email: &str,
        kind: EventKind,
        source: Source,
        extra: &EventExtra<'_>,
    ) {
        if let Some(m) = self
            .lists
            .get(list_id)
            .and_then(|l| l.members.get(&subscriber_hash(email)))
        {
            let event = member_event(list_id, kind, source, m, extra);
            self.outbox.push(event);
        }
    }

    /// The person signs up (or back up) through a Mailchimp form: created or re-subscribed,
    /// also after a permanent delete (re-subscribing themselves is the way back, docs/vendors/mailchimp.md §2.5).
    pub fn subscribe_member(&mut self, list_id: &str, email: &str) -> Result<(), ApiError> {
        let email = email.trim();
        if !looks_like_email(email) {
            return Err(ApiError::field(
                "email_address",
                format!("{email} is not an email address."),
            ));
        }
        let list = self.list(list_id)?;
        let hash = subscriber_hash(email);
        if list
            .members
            .get(&hash)
            .is_some_and(|m| m.status == "subscribed")
        {
            return Err(ApiError::new(
                400,
                "Member Exists",
                format!("{email} is already a list member."),
            ));
        }
        list.forgotten.remove(&hash);
        let member = list.members.entry(hash).or_insert_with(|| MemberState {
            email_address: email.to_string(),
            status: "subscribed".into(),
            merge_fields: BTreeMap::new(),
            tags: BTreeSet::new(),
            compliance: false,
            writes: 0,
            meta: MemberMeta::new("Hosted Signup Form"),
        });
        member.status = "subscribed".into();
        member.touch();
        self.emit(
            list_id,
            email,
            EventKind::Subscribe,
            Source::User,
            &EventExtra::default(),
        );
        Ok(())
    }

    /// The person unsubscribes (reason `manual` unless given, e.g. `abuse`).
    pub fn unsubscribe_member(
        &mut self,
        list_id: &str,
        email: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        let m = self.member_mut(list_id, email)?;
        if m.status != "subscribed" {
            return Err(ApiError::new(
                400,
                "Invalid Resource",
                format!("{email} is {}, not subscribed.", m.status),
            ));
        }
        m.status = "unsubscribed".into();
        m.touch();
        let extra = EventExtra {
            reason: Some(reason.unwrap_or("manual")),
            action: Some("unsub"),
            ..EventExtra::default()
        };
        self.emit(list_id, email, EventKind::Unsubscribe, Source::User, &extra);
        Ok(())
    }

    /// The person updates their profile: `merges` (merge tag → value) are set. Only the
    /// audience's merge tags exist in the form.
    pub fn update_member_profile(
        &mut self,
        list_id: &str,
        email: &str,
        merges: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        check_merge_tags(self.list(list_id)?, merges)?;
        let m = self.member_mut(list_id, email)?;
        m.merge_fields.extend(merges.clone());
        m.touch();
        self.emit(
            list_id,
            email,
            EventKind::Profile,
            Source::User,
            &EventExtra::default(),
        );
        Ok(())
    }

    /// The person changes their address: the member (status, fields, tags) moves to the new
    /// address and subscriber hash. Mailchimp follows `upemail` with a `profile` event.
    pub fn change_member_email(
        &mut self,
        list_id: &str,
        old: &str,
        new: &str,
    ) -> Result<(), ApiError> {
        let new = new.trim();
        if !looks_like_email(new) {
            return Err(ApiError::field(
                "email_address",
                format!("{new} is not an email address."),
            ));
        }
        let list = self.list(list_id)?;
        let old_hash = subscriber_hash(old);
        let new_hash = subscriber_hash(new);
        // A missing old address is answered below, even when the new one is taken.
        if new_hash != old_hash
            && list.members.contains_key(&old_hash)
            && list.members.contains_key(&new_hash)
        {
            return Err(ApiError::new(
                400,
                "Member Exists",
                format!("{new} is already a list member."),
            ));
        }
        let Some(mut member) = list.members.remove(&old_hash) else {
            return Err(member_missing(old));
        };
        let old_email = std::mem::replace(&mut member.email_address, new.to_string());
        member.touch();
        list.members.insert(new_hash, member);
        let extra = EventExtra {
            old_email: Some(&old_email),
            ..EventExtra::default()
        };
        self.emit(list_id, new, EventKind::Upemail, Source::User, &extra);
        self.emit(
            list_id,
            new,
            EventKind::Profile,
            Source::User,
            &EventExtra::default(),
        );
        Ok(())
    }

    /// Mailchimp cleans the address (reason `hard` bounce unless given, e.g. `abuse`). Sent
    /// with source `admin`: Mailchimp's own action in the account (UNCONFIRMED which source
    /// Mailchimp reports; our product listens to both `user` and `admin`).
    pub fn clean_member(
        &mut self,
        list_id: &str,
        email: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        let m = self.member_mut(list_id, email)?;
        if m.status == "cleaned" {
            return Err(ApiError::new(
                400,
                "Invalid Resource",
                format!("{email} is already cleaned."),
            ));
        }
        m.status = "cleaned".into();
        m.touch();
        let extra = EventExtra {
            reason: Some(reason.unwrap_or("hard")),
            ..EventExtra::default()
        };
        self.emit(list_id, email, EventKind::Cleaned, Source::Admin, &extra);
        Ok(())
    }
}

/// The `{subscriber_hash}` slot also accepts the address itself (docs/vendors/mailchimp.md §2.1).
pub fn member_key(key: &str) -> String {
    if key.contains('@') {
        subscriber_hash(key)
    } else {
        key.to_ascii_lowercase()
    }
}

fn looks_like_email(email: &str) -> bool {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}
