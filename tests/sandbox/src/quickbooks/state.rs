//! The sandbox's books: companies (realms), customers, note attachables, OAuth tokens and
//! codes, with QuickBooks' rules (docs/vendors/quickbooks.md §2, §3): SyncToken optimistic locking, sparse
//! and full updates, unique display names, rotating refresh tokens with a grace period.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use mlc::vendors::quickbooks::models::MAX_NOTE_CHARS;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::query::{Entity, FieldValue, Query, QueryError, Select};
use crate::SandboxError;

/// The longest `DisplayName` accepted (third-party figure, UNCONFIRMED).
pub(super) const MAX_DISPLAY_NAME_CHARS: usize = 500;
/// The longest `PrimaryEmailAddr.Address` accepted (third-party figure, UNCONFIRMED).
pub(super) const MAX_EMAIL_CHARS: usize = 100;
/// The user a concurrent edit is attributed to in the 5010 Detail.
const OTHER_USER: &str = "Sandbox User";
/// First realm id: QuickBooks company ids are long decimal numbers.
const REALM_BASE: u64 = 9_130_357_766_900_000;

/// Fields of a customer the client cannot write: kept through a full update.
const CUSTOMER_READ_ONLY: &[&str] = &[
    "Id",
    "SyncToken",
    "MetaData",
    "domain",
    "sparse",
    "Balance",
    "BalanceWithJobs",
    "FullyQualifiedName",
];

/// An error as QuickBooks answers it: `{"Fault":{"Error":[{Message, Detail, code, element}],
/// "type":…},"time":…}` with HTTP `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QboFault {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub detail: String,
    pub element: String,
    pub kind: &'static str,
}

impl QboFault {
    fn validation(code: &str, message: &str, detail: String, element: &str) -> Self {
        Self {
            status: 400,
            code: code.to_string(),
            message: message.to_string(),
            detail,
            element: element.to_string(),
            kind: "ValidationFault",
        }
    }

    /// Fault 610 (also what a merged-away or unknown id gets).
    pub fn not_found(what: &str) -> Self {
        Self::validation(
            "610",
            "Object Not Found",
            format!(
                "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. ({what})"
            ),
            "",
        )
    }

    /// Fault 5010 with Intuit's Detail text (docs/vendors/quickbooks.md §3.3).
    pub fn stale() -> Self {
        Self::validation(
            "5010",
            "Stale Object Error",
            format!(
                "Stale Object Error : You and {OTHER_USER} were working on this at the same time. {OTHER_USER} finished before you did, so your work was not saved."
            ),
            "",
        )
    }

    /// Fault 6240.
    pub fn duplicate_name(name: &str) -> Self {
        Self::validation(
            "6240",
            "Duplicate Name Exists Error",
            format!(
                "The name supplied already exists. : Another customer, vendor or employee is already using this name ({name}). Please use a different name."
            ),
            "",
        )
    }

    /// A field over its length limit. Code 2050 and the wording are UNCONFIRMED (python-
    /// quickbooks buckets 2000–4999 as validation); clients should branch on the 400 class.
    pub fn too_long(field: &str, max: usize, len: usize) -> Self {
        Self::validation(
            "2050",
            "String length is either shorter or longer than supported by specification",
            format!(
                "String length specified does not match the supported length. Min:0 Max:{max} supplied length:{len}"
            ),
            field,
        )
    }

    /// A required field missing (code 2020).
    pub fn required(field: &str) -> Self {
        Self::validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            format!("Required parameter {field} is missing in the request"),
            field,
        )
    }

    /// A body or field QuickBooks cannot read (code 2010; exact code for malformed JSON is
    /// UNCONFIRMED).
    pub fn invalid(detail: String) -> Self {
        Self::validation(
            "2010",
            "Request has invalid or unsupported property",
            detail,
            "",
        )
    }

    /// A reference to an object that does not exist (code 2500).
    pub fn invalid_reference(detail: String) -> Self {
        Self::validation("2500", "Invalid Reference Id", detail, "")
    }

    /// A refused query: 4000 (parser) / 4001 (validation).
    pub fn query(e: &QueryError) -> Self {
        let message = match e {
            QueryError::Parse(_) => "Error parsing query",
            QueryError::Validation(_) => "Invalid query",
        };
        Self::validation(e.code(), message, e.to_string(), "")
    }

    /// The JSON body, with `time`.
    pub fn body(&self, time: &str) -> Value {
        json!({"Fault": {"Error": [{"Message": self.message, "Detail": self.detail,
            "code": self.code, "element": self.element}], "type": self.kind}, "time": time})
    }
}

impl From<QboFault> for SandboxError {
    fn from(f: QboFault) -> Self {
        if f.code == "610" {
            SandboxError::NotFound(f.detail)
        } else {
            SandboxError::Invalid(format!("{} ({}): {}", f.message, f.code, f.detail))
        }
    }
}

/// An access/refresh token pair as the token endpoint issued it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenPair {
    // Tokens never show in logs, even the sandbox's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// A customer to create through the control API (as a person typing it into QuickBooks).
/// `display_name` defaults to "given family", else the company name, else the e-mail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CustomerSeed {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub company_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// A webhook operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum ChangeOp {
    Create,
    Update,
    Merge,
}

impl ChangeOp {
    /// The legacy `operation`.
    pub(super) fn legacy(self) -> &'static str {
        match self {
            ChangeOp::Create => "Create",
            ChangeOp::Update => "Update",
            ChangeOp::Merge => "Merge",
        }
    }

    /// The CloudEvents verb in `qbo.customer.<verb>.v1`.
    pub(super) fn verb(self) -> &'static str {
        match self {
            ChangeOp::Create => "created",
            ChangeOp::Update => "updated",
            ChangeOp::Merge => "merged",
        }
    }
}

/// A customer change that makes a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub realm: String,
    pub id: String,
    pub op: ChangeOp,
    pub deleted_id: Option<String>,
    pub at: DateTime<Utc>,
}

pub(super) struct AccessToken {
    pub realm: String,
    pub expires_at: DateTime<Utc>,
}

pub(super) struct RefreshToken {
    pub realm: String,
    pub expires_at: DateTime<Utc>,
    /// When a refresh with it issued its successor; it keeps working for the grace period.
    pub superseded_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

impl RefreshToken {
    /// Whether a refresh with it works at `now`: not revoked, not expired, and superseded less
    /// than `grace` ago if at all.
    pub(super) fn check(&self, now: DateTime<Utc>, grace: Duration) -> Result<(), GrantRefused> {
        if self.revoked {
            return Err(GrantRefused("Token invalid"));
        }
        if self.expires_at <= now {
            return Err(GrantRefused("Token expired"));
        }
        if let Some(at) = self.superseded_at
            && at + grace <= now
        {
            return Err(GrantRefused("Token invalid"));
        }
        Ok(())
    }
}

struct AuthCode {
    realm: String,
    redirect_uri: Option<String>,
    expires_at: DateTime<Utc>,
    used: bool,
}

/// Why an access token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthFailure {
    Expired,
    Unknown,
}

/// Why the token endpoint refuses a grant: always `invalid_grant` (docs/vendors/quickbooks.md §2), the
/// description says which case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GrantRefused(pub &'static str);

/// Token lifetimes and the rotation grace period.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lifetimes {
    pub access: Duration,
    pub refresh: Duration,
    pub grace: Duration,
    pub code: Duration,
}

pub(super) struct CustomerRec {
    /// Every field except `Id`, `SyncToken`, `MetaData`, `domain`, `sparse`.
    fields: Map<String, Value>,
    sync_token: u64,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    /// Set once merged away: the survivor's id. Such a record is gone (610, CDC stub).
    merged_into: Option<u64>,
}

struct AttachableRec {
    value: Value,
    created: DateTime<Utc>,
}

pub(super) struct Company {
    pub name: String,
    created: DateTime<Utc>,
    customers: BTreeMap<u64, CustomerRec>,
    attachables: BTreeMap<u64, AttachableRec>,
    next_id: u64,
    /// Answers to writes by `requestid`, replayed for a retry (docs/vendors/quickbooks.md §3.1).
    request_ids: HashMap<String, Value>,
    /// Customers whose next n API updates meet a concurrent edit.
    concurrent_edits: HashMap<u64, u32>,
    edits_made: u32,
}

/// Everything the sandbox holds.
pub(super) struct State {
    offset: FixedOffset,
    counter: u64,
    pub companies: BTreeMap<String, Company>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    codes: HashMap<String, AuthCode>,
}

impl State {
    /// Empty books; times are written with `offset` (a company's local time, as Intuit does).
    pub(super) fn new(offset: FixedOffset) -> Self {
        Self {
            offset,
            counter: 0,
            companies: BTreeMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
        }
    }

    /// The company's zone: zone-less times in queries and CDC are read in it.
    pub(super) fn zone(&self) -> FixedOffset {
        self.offset
    }

    /// Seconds, company offset: how `MetaData` times read (`2015-07-24T10:33:39-07:00`).
    pub(super) fn meta_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.offset)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    fn token(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!(
            "{prefix}-{}-{}",
            self.counter,
            uuid::Uuid::new_v4().simple()
        )
    }

    /// A new company; returns its realm id.
    pub(super) fn add_company(&mut self, name: &str, now: DateTime<Utc>) -> String {
        let realm = (REALM_BASE + self.companies.len() as u64 + 1).to_string();
        self.companies.insert(
            realm.clone(),
            Company {
                name: name.to_string(),
                created: now,
                customers: BTreeMap::new(),
                attachables: BTreeMap::new(),
                next_id: 1,
                request_ids: HashMap::new(),
                concurrent_edits: HashMap::new(),
                edits_made: 0,
            },
        );
        realm
    }

    pub(super) fn company(&self, realm: &str) -> Result<&Company, SandboxError> {
        self.companies
            .get(realm)
            .ok_or_else(|| SandboxError::NotFound(format!("company {realm}")))
    }

    fn company_mut(&mut self, realm: &str) -> Result<&mut Company, SandboxError> {
        self.companies
            .get_mut(realm)
            .ok_or_else(|| SandboxError::NotFound(format!("company {realm}")))
    }

    /// The company as the Accounting API sees it: an unknown realm is Fault 610.
    fn books(&self, realm: &str) -> Result<&Company, QboFault> {
        self.companies
            .get(realm)
            .ok_or_else(|| QboFault::not_found(&format!("company {realm}")))
    }

    fn books_mut(&mut self, realm: &str) -> Result<&mut Company, QboFault> {
        self.companies
            .get_mut(realm)
            .ok_or_else(|| QboFault::not_found(&format!("company {realm}")))
    }

    // ---- OAuth --------------------------------------------------------------------------

    /// A fresh token pair for `realm`.
    pub(super) fn mint_pair(&mut self, realm: &str, now: DateTime<Utc>, l: Lifetimes) -> TokenPair {
        let access_token = self.token("qbo-at");
        let refresh_token = self.token("qbo-rt");
        let pair = TokenPair {
            access_token: access_token.clone(),
            refresh_token: refresh_token.clone(),
            expires_at: now + l.access,
            refresh_expires_at: now + l.refresh,
        };
        self.access_tokens.insert(
            access_token,
            AccessToken {
                realm: realm.to_string(),
                expires_at: pair.expires_at,
            },
        );
        self.refresh_tokens.insert(
            refresh_token,
            RefreshToken {
                realm: realm.to_string(),
                expires_at: pair.refresh_expires_at,
                superseded_at: None,
                revoked: false,
            },
        );
        pair
    }

    /// An authorization code for `realm`, bound to `redirect_uri` when given.
    pub(super) fn mint_code(
        &mut self,
        realm: &str,
        redirect_uri: Option<&str>,
        now: DateTime<Utc>,
        l: Lifetimes,
    ) -> Result<String, SandboxError> {
        self.company(realm)?;
        let code = self.token("qbo-code");
        self.codes.insert(
            code.clone(),
            AuthCode {
                realm: realm.to_string(),
                redirect_uri: redirect_uri.map(str::to_string),
                expires_at: now + l.code,
                used: false,
            },
        );
        Ok(code)
    }

    /// `grant_type=authorization_code`: single use, unexpired, same redirect URI.
    pub(super) fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        now: DateTime<Utc>,
        l: Lifetimes,
    ) -> Result<(String, TokenPair), GrantRefused> {
        let c = self
            .codes
            .get_mut(code)
            .ok_or(GrantRefused("unknown authorization code"))?;
        if c.used {
            return Err(GrantRefused("authorization code already used"));
        }
        if c.expires_at <= now {
            return Err(GrantRefused("authorization code expired"));
        }
        if let Some(bound) = &c.redirect_uri
            && redirect_uri != Some(bound.as_str())
        {
            return Err(GrantRefused(
                "redirect_uri does not match the authorize request",
            ));
        }
        c.used = true;
        let realm = c.realm.clone();
        let pair = self.mint_pair(&realm, now, l);
        Ok((realm, pair))
    }

    /// `grant_type=refresh_token`: every refresh rotates; the used token stays valid for the
    /// grace period, then (or when unknown, expired or revoked) `invalid_grant`.
    pub(super) fn refresh(
        &mut self,
        refresh_token: &str,
        now: DateTime<Utc>,
        l: Lifetimes,
    ) -> Result<TokenPair, GrantRefused> {
        let t = self
            .refresh_tokens
            .get_mut(refresh_token)
            .ok_or(GrantRefused("Token invalid"))?;
        t.check(now, l.grace)?;
        t.superseded_at.get_or_insert(now);
        let realm = t.realm.clone();
        Ok(self.mint_pair(&realm, now, l))
    }

    /// The realm an access token opens.
    pub(super) fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&str, AuthFailure> {
        let t = self.access_tokens.get(token).ok_or(AuthFailure::Unknown)?;
        if t.expires_at <= now {
            return Err(AuthFailure::Expired);
        }
        Ok(&t.realm)
    }

    /// Revokes every token of the realm that `token` (access or refresh) belongs to: the app
    /// is disconnected from the company.
    pub(super) fn revoke_by_token(&mut self, token: &str) -> bool {
        let realm = self
            .refresh_tokens
            .get(token)
            .map(|t| t.realm.clone())
            .or_else(|| self.access_tokens.get(token).map(|t| t.realm.clone()));
        match realm {
            Some(realm) => {
                self.revoke_realm(&realm);
                true
            }
            None => false,
        }
    }

    /// Disconnects the app from `realm`: all its tokens stop working.
    pub(super) fn revoke_realm(&mut self, realm: &str) {
        self.access_tokens.retain(|_, t| t.realm != realm);
        for t in self.refresh_tokens.values_mut() {
            if t.realm == realm {
                t.revoked = true;
            }
        }
    }

    // ---- customers ----------------------------------------------------------------------

    fn render_customer(&self, id: u64, rec: &CustomerRec) -> Value {
        let mut v = rec.fields.clone();
        v.insert("Id".into(), json!(id.to_string()));
        v.insert("SyncToken".into(), json!(rec.sync_token.to_string()));
        if let Some(name) = v.get("DisplayName").cloned() {
            v.insert("FullyQualifiedName".into(), name);
        }
        v.insert("domain".into(), json!("QBO"));
        v.insert("sparse".into(), json!(false));
        v.insert(
            "MetaData".into(),
            json!({"CreateTime": self.meta_time(rec.created),
                "LastUpdatedTime": self.meta_time(rec.updated)}),
        );
        // What QuickBooks fills in on every customer it returns (the SDK's Customer type has
        // them; CurrencyRef is the home currency, the sandbox's is USD), unless written.
        let print_name = v.get("DisplayName").cloned().unwrap_or(json!(""));
        for (key, value) in [
            (
                "CurrencyRef",
                json!({"value": "USD", "name": "United States Dollar"}),
            ),
            ("Balance", json!(0)),
            ("BalanceWithJobs", json!(0)),
            ("Job", json!(false)),
            ("BillWithParent", json!(false)),
            ("Taxable", json!(true)),
            ("IsProject", json!(false)),
            ("PreferredDeliveryMethod", json!("Print")),
            ("PrintOnCheckName", print_name),
        ] {
            v.entry(key).or_insert(value);
        }
        Value::Object(v)
    }

    /// A customer as `GET customer/{id}` returns it; `None` when unknown or merged away.
    pub(super) fn customer(&self, realm: &str, id: &str) -> Option<Value> {
        let id: u64 = id.parse().ok()?;
        let rec = self
            .companies
            .get(realm)?
            .customers
            .get(&id)
            .filter(|r| r.merged_into.is_none())?;
        Some(self.render_customer(id, rec))
    }

    fn live_customer_mut(
        &mut self,
        realm: &str,
        id: &str,
    ) -> Result<(u64, &mut CustomerRec), QboFault> {
        let n: u64 = id
            .parse()
            .map_err(|_| QboFault::not_found(&format!("Customer {id}")))?;
        let rec = self
            .companies
            .get_mut(realm)
            .and_then(|c| c.customers.get_mut(&n))
            .filter(|r| r.merged_into.is_none())
            .ok_or_else(|| QboFault::not_found(&format!("Customer {id}")))?;
        Ok((n, rec))
    }

    /// Creates a customer from QuickBooks-shaped fields (as `POST customer` without `Id`).
    pub(super) fn create_customer(
        &mut self,
        realm: &str,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(Value, Change), QboFault> {
        let mut fields = writable(body);
        for (k, v) in [
            ("Active", json!(true)),
            ("Balance", json!(0)),
            ("BalanceWithJobs", json!(0)),
            ("Job", json!(false)),
            ("BillWithParent", json!(false)),
            ("Taxable", json!(false)),
            ("PreferredDeliveryMethod", json!("Print")),
        ] {
            fields.entry(k.to_string()).or_insert(v);
        }
        let company = self.books_mut(realm)?;
        let id = company.next_id;
        validate_customer(company, &mut fields, None)?;
        company.next_id += 1;
        company.customers.insert(
            id,
            CustomerRec {
                fields,
                sync_token: 0,
                created: now,
                updated: now,
                merged_into: None,
            },
        );
        let value = self.customer(realm, &id.to_string()).unwrap_or(Value::Null);
        Ok((value, change(realm, id, ChangeOp::Create, now)))
    }

    /// `POST customer` with `Id`: sparse or full update under SyncToken control. A concurrent
    /// edit scheduled for this customer happens first (its change is returned even when the
    /// update then fails with 5010).
    pub(super) fn update_customer(
        &mut self,
        realm: &str,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> (Result<Value, QboFault>, Vec<Change>) {
        let mut changes = Vec::new();
        let result = self.update_customer_inner(realm, body, now, &mut changes);
        (result, changes)
    }

    fn update_customer_inner(
        &mut self,
        realm: &str,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
        changes: &mut Vec<Change>,
    ) -> Result<Value, QboFault> {
        let id = id_text(body.get("Id")).ok_or_else(|| QboFault::required("Id"))?;
        let sent_token =
            id_text(body.get("SyncToken")).ok_or_else(|| QboFault::required("SyncToken"))?;
        let sparse = match body.get("sparse") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(other) => {
                return Err(QboFault::invalid(format!(
                    "sparse must be a boolean, not {other}"
                )));
            }
        };
        let (n, _) = self.live_customer_mut(realm, &id)?;
        // A person editing the customer in QuickBooks just before this update.
        if let Some(company) = self.companies.get_mut(realm)
            && let Some(left) = company.concurrent_edits.get_mut(&n)
            && *left > 0
        {
            *left -= 1;
            company.edits_made += 1;
            let phone = format!("(555) 010-{:04}", company.edits_made % 10_000);
            if let Some(rec) = company.customers.get_mut(&n) {
                rec.fields
                    .insert("PrimaryPhone".into(), json!({"FreeFormNumber": phone}));
                rec.sync_token += 1;
                rec.updated = now;
            }
            changes.push(change(realm, n, ChangeOp::Update, now));
        }
        let company = self.books_mut(realm)?;
        let current = company
            .customers
            .get(&n)
            .map(|r| r.sync_token)
            .unwrap_or_default();
        if sent_token.trim() != current.to_string() {
            return Err(QboFault::stale());
        }
        let merged;
        let source = if sparse {
            // Sparse: the fields sent replace theirs, `null` removes one, the rest stays.
            let mut fields = company.customers[&n].fields.clone();
            patch_fields(&mut fields, body);
            merged = fields;
            &merged
        } else {
            // Full: every writable field is replaced; what is not sent becomes null (absent),
            // as QuickBooks does.
            body
        };
        self.replace_customer(realm, n, source, now)?;
        changes.push(change(realm, n, ChangeOp::Update, now));
        Ok(self.customer(realm, &id).unwrap_or(Value::Null))
    }

    /// Stores `body`'s writable fields as the customer's (balances, not writable, stay;
    /// `Active` defaults to true), validated; moves SyncToken and LastUpdatedTime.
    fn replace_customer(
        &mut self,
        realm: &str,
        n: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), QboFault> {
        let not_found = || QboFault::not_found(&format!("Customer {n}"));
        let company = self.books_mut(realm)?;
        let mut fields = writable(body);
        let old = &company.customers.get(&n).ok_or_else(not_found)?.fields;
        for k in ["Balance", "BalanceWithJobs"] {
            if let Some(v) = old.get(k) {
                fields.insert(k.to_string(), v.clone());
            }
        }
        fields.entry("Active".to_string()).or_insert(json!(true));
        validate_customer(company, &mut fields, Some(n))?;
        let rec = company.customers.get_mut(&n).ok_or_else(not_found)?;
        rec.fields = fields;
        rec.sync_token += 1;
        rec.updated = now;
        Ok(())
    }

    /// Changes a customer through `edit` on its JSON (as a person in QuickBooks would):
    /// validated like an API update, SyncToken and LastUpdatedTime move.
    pub(super) fn edit_customer(
        &mut self,
        realm: &str,
        id: &str,
        edit: impl FnOnce(&mut Value),
        now: DateTime<Utc>,
    ) -> Result<Change, SandboxError> {
        let mut value = self
            .customer(realm, id)
            .ok_or_else(|| SandboxError::NotFound(format!("customer {id} in {realm}")))?;
        edit(&mut value);
        let Value::Object(edited) = value else {
            return Err(SandboxError::Invalid(
                "the edited customer is not a JSON object".into(),
            ));
        };
        let (n, _) = self.live_customer_mut(realm, id)?;
        self.replace_customer(realm, n, &edited, now)?;
        Ok(change(realm, n, ChangeOp::Update, now))
    }

    /// Merges `merged_away` into `survivor` (QuickBooks' UI merge): the merged-away customer
    /// is gone (610, a deleted stub in CDC), the survivor changes.
    pub(super) fn merge_customers(
        &mut self,
        realm: &str,
        survivor: &str,
        merged_away: &str,
        now: DateTime<Utc>,
    ) -> Result<Change, SandboxError> {
        if survivor == merged_away {
            return Err(SandboxError::Invalid(
                "a customer cannot be merged into itself".into(),
            ));
        }
        let (gone, _) = self.live_customer_mut(realm, merged_away)?;
        let (kept, _) = self.live_customer_mut(realm, survivor)?;
        let company = self.company_mut(realm)?;
        let moved_balance = company.customers[&gone]
            .fields
            .get("Balance")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if let Some(rec) = company.customers.get_mut(&gone) {
            rec.merged_into = Some(kept);
            rec.updated = now;
        }
        if let Some(rec) = company.customers.get_mut(&kept) {
            let balance = rec
                .fields
                .get("Balance")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            rec.fields
                .insert("Balance".into(), json!(balance + moved_balance));
            rec.sync_token += 1;
            rec.updated = now;
        }
        Ok(Change {
            realm: realm.to_string(),
            id: kept.to_string(),
            op: ChangeOp::Merge,
            deleted_id: Some(gone.to_string()),
            at: now,
        })
    }

    /// The next `n` API updates of the customer each meet a concurrent edit first.
    pub(super) fn schedule_concurrent_edits(
        &mut self,
        realm: &str,
        id: &str,
        n: u32,
    ) -> Result<(), SandboxError> {
        let (id, _) = self.live_customer_mut(realm, id)?;
        self.company_mut(realm)?.concurrent_edits.insert(id, n);
        Ok(())
    }

    // ---- queries and CDC ------------------------------------------------------------------

    /// Answers a parsed query: `QueryResponse` (`{}` when no rows).
    pub(super) fn query(&self, realm: &str, q: &Query) -> Result<Value, QboFault> {
        let company = self.books(realm)?;
        q.check_literals(self.offset)
            .map_err(|e| QboFault::query(&e))?;
        // Inactive customers only when the query asks about Active (docs/vendors/quickbooks.md §3.2).
        let implicit_active = !q.mentions("Active");
        let rows: Vec<Row<'_>> = match q.entity {
            Entity::Customer => company
                .customers
                .iter()
                .filter(|(_, rec)| {
                    rec.merged_into.is_none() && (!implicit_active || is_active(rec))
                })
                .map(|(id, rec)| Row::Customer(*id, rec))
                .collect(),
            Entity::Attachable => company
                .attachables
                .iter()
                .map(|(id, rec)| Row::Attachable(*id, rec))
                .collect(),
        };
        let matched = rows.into_iter().filter(|row| {
            q.conditions
                .iter()
                .all(|c| c.matches(&row.field(c.field), self.offset))
        });
        if q.select == Select::Count {
            return Ok(json!({"totalCount": matched.count()}));
        }
        // Rows are in Id order already; a sort is stable, so ties keep Id order.
        let mut keyed: Vec<(Vec<FieldValue>, Row<'_>)> = matched
            .map(|row| {
                (
                    q.order_by.map(|(f, _)| row.field(f)).unwrap_or_default(),
                    row,
                )
            })
            .collect();
        if let Some((_, desc)) = q.order_by {
            keyed.sort_by(|(a, _), (b, _)| {
                let o = match (a.first(), b.first()) {
                    (Some(a), Some(b)) => a.compare(b).unwrap_or(std::cmp::Ordering::Equal),
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (None, None) => std::cmp::Ordering::Equal,
                };
                if desc { o.reverse() } else { o }
            });
        }
        let page: Vec<Value> = keyed
            .into_iter()
            .skip(usize::try_from(q.start_position - 1).unwrap_or(usize::MAX))
            .take(usize::try_from(q.max_results).unwrap_or(usize::MAX))
            .map(|(_, row)| match row {
                Row::Customer(id, rec) => self.render_customer(id, rec),
                Row::Attachable(_, rec) => self.render_attachable(rec),
            })
            .collect();
        if page.is_empty() {
            return Ok(json!({}));
        }
        Ok(
            json!({q.entity.name(): page, "startPosition": q.start_position,
            "maxResults": page.len()}),
        )
    }

    /// Customers changed after `since` (inactive included, merged-away ones as deleted stubs),
    /// oldest change first, at most `cap`: the `QueryResponse` entry of a CDC answer.
    pub(super) fn changed_customers(
        &self,
        realm: &str,
        since: DateTime<Utc>,
        cap: usize,
    ) -> Result<Value, QboFault> {
        let company = self.books(realm)?;
        let mut changed: Vec<(DateTime<Utc>, u64, &CustomerRec)> = company
            .customers
            .iter()
            .filter(|(_, r)| r.updated > since)
            .map(|(id, r)| (r.updated, *id, r))
            .collect();
        changed.sort_by_key(|(t, id, _)| (*t, *id));
        let customers: Vec<Value> = changed
            .into_iter()
            .take(cap)
            .map(|(t, id, rec)| match rec.merged_into {
                Some(_) => json!({"domain": "QBO", "status": "Deleted", "Id": id.to_string(),
                    "MetaData": {"LastUpdatedTime": self.meta_time(t)}}),
                None => self.render_customer(id, rec),
            })
            .collect();
        if customers.is_empty() {
            return Ok(json!({}));
        }
        let n = customers.len();
        Ok(json!({"Customer": customers, "startPosition": 1, "maxResults": n}))
    }

    // ---- attachables ----------------------------------------------------------------------

    fn render_attachable(&self, rec: &AttachableRec) -> Value {
        let mut v = rec.value.clone();
        if let Some(o) = v.as_object_mut() {
            let t = self.meta_time(rec.created);
            o.insert(
                "MetaData".into(),
                json!({"CreateTime": t, "LastUpdatedTime": t}),
            );
        }
        v
    }

    /// `POST attachable`: a note linked by `AttachableRef` to existing entities.
    pub(super) fn create_attachable(
        &mut self,
        realm: &str,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Value, QboFault> {
        let note = match body.get("Note") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => return Err(QboFault::required("Note")),
            Some(other) => {
                return Err(QboFault::invalid(format!("Note must be text, not {other}")));
            }
        };
        let len = note.chars().count();
        if len > MAX_NOTE_CHARS {
            return Err(QboFault::too_long("Note", MAX_NOTE_CHARS, len));
        }
        let refs = match body.get("AttachableRef") {
            Some(Value::Array(refs)) if !refs.is_empty() => refs.clone(),
            _ => return Err(QboFault::required("AttachableRef")),
        };
        let company = self.books_mut(realm)?;
        for r in &refs {
            let kind = r.pointer("/EntityRef/type").and_then(Value::as_str);
            let value = r.pointer("/EntityRef/value").and_then(id_value);
            let (Some(kind), Some(value)) = (kind, value) else {
                return Err(QboFault::required("AttachableRef.EntityRef"));
            };
            if kind.eq_ignore_ascii_case("Customer") {
                let live = value
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| company.customers.get(&n))
                    .is_some_and(|c| c.merged_into.is_none());
                if !live {
                    return Err(QboFault::invalid_reference(format!(
                        "Invalid Reference Id : Customer {value} does not exist"
                    )));
                }
            }
        }
        let id = company.next_id;
        company.next_id += 1;
        let mut value = json!({"Id": id.to_string(), "SyncToken": "0", "domain": "QBO",
            "sparse": false, "Note": note, "AttachableRef": refs});
        for k in ["FileName", "Category", "ContentType"] {
            if let (Some(v), Some(o)) = (body.get(k), value.as_object_mut()) {
                o.insert(k.to_string(), v.clone());
            }
        }
        company.attachables.insert(
            id,
            AttachableRec {
                value,
                created: now,
            },
        );
        let company = &self.companies[realm];
        Ok(self.render_attachable(&company.attachables[&id]))
    }

    /// Notes of the attachables linked to a customer, oldest first.
    pub(super) fn notes_of(
        &self,
        realm: &str,
        customer_id: &str,
    ) -> Result<Vec<String>, SandboxError> {
        let company = self.company(realm)?;
        Ok(company
            .attachables
            .values()
            .filter(|a| {
                a.value["AttachableRef"].as_array().is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r.pointer("/EntityRef/type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.eq_ignore_ascii_case("Customer"))
                            && r.pointer("/EntityRef/value").and_then(id_value).as_deref()
                                == Some(customer_id)
                    })
                })
            })
            .filter_map(|a| a.value["Note"].as_str().map(str::to_string))
            .collect())
    }

    /// The answer a write with this `requestid` got, if any.
    pub(super) fn replayed(&self, realm: &str, request_id: &str) -> Option<Value> {
        self.companies
            .get(realm)?
            .request_ids
            .get(request_id)
            .cloned()
    }

    /// Remembers a write's answer under its `requestid`.
    pub(super) fn remember(&mut self, realm: &str, request_id: &str, answer: Value) {
        if let Some(c) = self.companies.get_mut(realm) {
            c.request_ids.insert(request_id.to_string(), answer);
        }
    }

    /// `CompanyInfo`.
    pub(super) fn company_info(&self, realm: &str) -> Option<Value> {
        let c = self.companies.get(realm)?;
        let t = self.meta_time(c.created);
        // The address and contact fields of Intuit's CompanyInfo (Finance.xsd), filled with a
        // plausible US company: the SDK's CompanyInfo type reads each into its own class.
        let address = json!({"Id": "1", "Line1": "2700 Coast Ave", "City": "Mountain View",
            "CountrySubDivisionCode": "CA", "PostalCode": "94043", "Country": "US"});
        let email = format!("books@{}.example.com", slug(&c.name));
        Some(
            json!({"CompanyName": c.name, "LegalName": c.name, "Id": "1", "Country": "US",
            "CompanyAddr": address, "CustomerCommunicationAddr": address, "LegalAddr": address,
            "CustomerCommunicationEmailAddr": {"Address": email},
            "PrimaryPhone": {"FreeFormNumber": "(650) 555-0100"},
            "Email": {"Address": email}, "WebAddr": {},
            "CompanyStartDate": c.created.with_timezone(&self.offset).date_naive().to_string(),
            "FiscalYearStartMonth": "January", "SupportedLanguages": "en",
            "NameValue": [{"Name": "NeoEnabled", "Value": "true"},
                {"Name": "IndustryType", "Value": "Other"}],
            "SyncToken": "0", "domain": "QBO", "sparse": false,
            "MetaData": {"CreateTime": t, "LastUpdatedTime": t}}),
        )
    }
}

/// `name` in lower case with every run of other characters as one `-` (a host label).
fn slug(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "company".into()
    } else {
        out.to_string()
    }
}

fn change(realm: &str, id: u64, op: ChangeOp, at: DateTime<Utc>) -> Change {
    Change {
        realm: realm.to_string(),
        id: id.to_string(),
        op,
        deleted_id: None,
        at,
    }
}

/// Applies `patch` to `fields`: a `null` removes the field, any other value sets it.
pub(super) fn patch_fields(fields: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            fields.remove(k);
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
}

/// The writable, non-null fields of a customer body.
fn writable(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(k, v)| !CUSTOMER_READ_ONLY.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn is_active(rec: &CustomerRec) -> bool {
    rec.fields.get("Active").and_then(Value::as_bool) != Some(false)
}

/// An id sent as a string or a number.
fn id_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_text(v: Option<&Value>) -> Option<String> {
    v.and_then(id_value).filter(|s| !s.is_empty())
}

fn text_field(fields: &Map<String, Value>, key: &str) -> Vec<FieldValue> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .map(|s| vec![FieldValue::Text(s.to_string())])
        .unwrap_or_default()
}

/// A stored entity a query looks at.
enum Row<'a> {
    Customer(u64, &'a CustomerRec),
    Attachable(u64, &'a AttachableRec),
}

impl Row<'_> {
    /// The values a condition or ORDER BY on `field` sees.
    fn field(&self, field: &str) -> Vec<FieldValue> {
        match self {
            Row::Customer(id, rec) => customer_field(*id, rec, field),
            Row::Attachable(id, rec) => attachable_field(*id, rec, field),
        }
    }
}

fn customer_field(id: u64, rec: &CustomerRec, field: &str) -> Vec<FieldValue> {
    match field {
        "Id" => vec![FieldValue::Number(i64::try_from(id).unwrap_or(i64::MAX))],
        "Active" => vec![FieldValue::Bool(is_active(rec))],
        "PrimaryEmailAddr" => rec
            .fields
            .get("PrimaryEmailAddr")
            .and_then(|e| e.get("Address"))
            .and_then(Value::as_str)
            .map(|s| vec![FieldValue::Text(s.to_string())])
            .unwrap_or_default(),
        "MetaData.CreateTime" => vec![FieldValue::Time(rec.created)],
        "MetaData.LastUpdatedTime" => vec![FieldValue::Time(rec.updated)],
        other => text_field(&rec.fields, other),
    }
}

fn attachable_field(id: u64, rec: &AttachableRec, field: &str) -> Vec<FieldValue> {
    let refs = || {
        rec.value["AttachableRef"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    match field {
        "Id" => vec![FieldValue::Number(i64::try_from(id).unwrap_or(i64::MAX))],
        "AttachableRef.EntityRef.Type" => refs()
            .iter()
            .filter_map(|r| r.pointer("/EntityRef/type").and_then(Value::as_str))
            .map(|s| FieldValue::Text(s.to_string()))
            .collect(),
        "AttachableRef.EntityRef.value" => refs()
            .iter()
            .filter_map(|r| r.pointer("/EntityRef/value").and_then(id_value))
            .map(FieldValue::Text)
            .collect(),
        "MetaData.CreateTime" | "MetaData.LastUpdatedTime" => vec![FieldValue::Time(rec.created)],
        _ => Vec::new(),
    }
}

/// Checks a customer's fields as QuickBooks would on create/update, deriving `DisplayName`
/// when absent. `own` is the customer's id on update (its own name is not a duplicate).
fn validate_customer(
    company: &Company,
    fields: &mut Map<String, Value>,
    own: Option<u64>,
) -> Result<(), QboFault> {
    for key in [
        "DisplayName",
        "GivenName",
        "FamilyName",
        "CompanyName",
        "Notes",
    ] {
        if let Some(v) = fields.get(key)
            && !v.is_string()
        {
            return Err(QboFault::invalid(format!("{key} must be text, not {v}")));
        }
    }
    if let Some(v) = fields.get("Active")
        && !v.is_boolean()
    {
        return Err(QboFault::invalid(format!(
            "Active must be a boolean, not {v}"
        )));
    }
    let display = fields
        .get("DisplayName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let names: Vec<&str> = ["GivenName", "MiddleName", "FamilyName"]
                .iter()
                .filter_map(|k| fields.get(*k).and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            (!names.is_empty()).then(|| names.join(" "))
        })
        .or_else(|| {
            fields
                .get("CompanyName")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .ok_or_else(|| QboFault::required("DisplayName"))?;
    let email = fields.get("PrimaryEmailAddr");
    if email.is_some_and(|e| !e.is_object()) {
        return Err(QboFault::invalid(
            "PrimaryEmailAddr must be an object with Address".into(),
        ));
    }
    for (field, len, max) in [
        (
            "DisplayName",
            display.chars().count(),
            MAX_DISPLAY_NAME_CHARS,
        ),
        (
            "Notes",
            fields
                .get("Notes")
                .and_then(Value::as_str)
                .map_or(0, |s| s.chars().count()),
            MAX_NOTE_CHARS,
        ),
        (
            "PrimaryEmailAddr.Address",
            email
                .and_then(|e| e.get("Address"))
                .and_then(Value::as_str)
                .map_or(0, str::len),
            MAX_EMAIL_CHARS,
        ),
    ] {
        if len > max {
            return Err(QboFault::too_long(field, max, len));
        }
    }
    // Inactive customers keep their names (whether QuickBooks frees an inactive customer's
    // name is UNCONFIRMED); merged-away ones are gone.
    let taken = company.customers.iter().any(|(id, rec)| {
        Some(*id) != own
            && rec.merged_into.is_none()
            && rec
                .fields
                .get("DisplayName")
                .and_then(Value::as_str)
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(&display))
    });
    if taken {
        return Err(QboFault::duplicate_name(&display));
    }
    fields.insert("DisplayName".into(), json!(display));
    Ok(())
}

/// QuickBooks-shaped customer fields from a seed.
pub(super) fn seed_fields(seed: &CustomerSeed) -> Map<String, Value> {
    let mut fields = Map::new();
    for (key, value) in [
        ("GivenName", &seed.given_name),
        ("FamilyName", &seed.family_name),
        ("CompanyName", &seed.company_name),
        ("DisplayName", &seed.display_name),
    ] {
        if let Some(v) = value {
            fields.insert(key.into(), json!(v));
        }
    }
    if let Some(email) = &seed.email {
        fields.insert("PrimaryEmailAddr".into(), json!({"Address": email}));
        if !fields.contains_key("DisplayName")
            && seed.given_name.is_none()
            && seed.family_name.is_none()
            && seed.company_name.is_none()
        {
            fields.insert("DisplayName".into(), json!(email));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quickbooks::query::parse;

    fn t0() -> DateTime<Utc> {
        "2026-03-02T17:00:00Z".parse().unwrap()
    }

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            access: Duration::hours(1),
            refresh: Duration::seconds(8_726_400),
            grace: Duration::hours(24),
            code: Duration::minutes(10),
        }
    }

    fn books() -> (State, String) {
        let mut s = State::new(FixedOffset::west_opt(7 * 3600).unwrap());
        let realm = s.add_company("Acme", t0());
        (s, realm)
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn create(s: &mut State, realm: &str, seed: CustomerSeed) -> String {
        let (v, _) = s.create_customer(realm, &seed_fields(&seed), t0()).unwrap();
        v["Id"].as_str().unwrap().to_string()
    }

    #[test]
    fn sparse_updates_need_the_current_sync_token_and_move_it() {
        let (mut s, realm) = books();
        let id = create(
            &mut s,
            &realm,
            CustomerSeed {
                given_name: Some("Jane".into()),
                family_name: Some("Doe".into()),
                email: Some("jane@example.com".into()),
                ..Default::default()
            },
        );
        let c = s.customer(&realm, &id).unwrap();
        assert_eq!(c["SyncToken"], "0");
        assert_eq!(c["DisplayName"], "Jane Doe");
        let later = t0() + Duration::minutes(5);
        let (r, changes) = s.update_customer(
            &realm,
            &obj(json!({"Id": id, "SyncToken": "0", "sparse": true, "Notes": "hi"})),
            later,
        );
        let c = r.unwrap();
        assert_eq!(c["SyncToken"], "1");
        assert_eq!(c["Notes"], "hi");
        assert_eq!(c["GivenName"], "Jane", "sparse keeps the rest");
        assert_eq!(
            c["MetaData"]["LastUpdatedTime"],
            "2026-03-02T10:05:00-07:00"
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op, ChangeOp::Update);
        let (r, changes) = s.update_customer(
            &realm,
            &obj(json!({"Id": id, "SyncToken": "0", "sparse": true, "Notes": "again"})),
            later,
        );
        assert_eq!(r.unwrap_err().code, "5010");
        assert!(changes.is_empty());
        assert_eq!(s.customer(&realm, &id).unwrap()["Notes"], "hi");
    }

    #[test]
    fn a_full_update_nulls_what_it_leaves_out() {
        let (mut s, realm) = books();
        let id = create(
            &mut s,
            &realm,
            CustomerSeed {
                display_name: Some("Jane".into()),
                email: Some("jane@example.com".into()),
                ..Default::default()
            },
        );
        let (r, _) = s.update_customer(
            &realm,
            &obj(json!({"Id": id, "SyncToken": "0", "DisplayName": "Jane", "Notes": "n"})),
            t0(),
        );
        let c = r.unwrap();
        assert!(c.get("PrimaryEmailAddr").is_none());
        assert_eq!(c["Active"], true);
        assert_eq!(c["Balance"], 0);
    }

    #[test]
    fn concurrent_edits_make_the_next_updates_stale() {
        let (mut s, realm) = books();
        let id = create(
            &mut s,
            &realm,
            CustomerSeed {
                display_name: Some("Jane".into()),
                ..Default::default()
            },
        );
        s.schedule_concurrent_edits(&realm, &id, 2).unwrap();
        for expected_token in ["0", "1"] {
            let (r, changes) = s.update_customer(
                &realm,
                &obj(
                    json!({"Id": id, "SyncToken": expected_token, "sparse": true, "Active": false}),
                ),
                t0(),
            );
            assert_eq!(r.unwrap_err().code, "5010");
            assert_eq!(changes.len(), 1, "the person's edit still makes a webhook");
        }
        let c = s.customer(&realm, &id).unwrap();
        assert_eq!(c["SyncToken"], "2");
        assert!(c["PrimaryPhone"]["FreeFormNumber"].is_string());
        let (r, _) = s.update_customer(
            &realm,
            &obj(json!({"Id": id, "SyncToken": "2", "sparse": true, "Active": false})),
            t0(),
        );
        assert_eq!(r.unwrap()["Active"], false);
    }

    #[test]
    fn names_are_unique_and_notes_bounded() {
        let (mut s, realm) = books();
        let seed = CustomerSeed {
            display_name: Some("Jane".into()),
            ..Default::default()
        };
        let id = create(&mut s, &realm, seed.clone());
        let err = s
            .create_customer(&realm, &seed_fields(&seed), t0())
            .unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (400, "6240"));
        let (r, _) = s.update_customer(
            &realm,
            &obj(json!({"Id": id, "SyncToken": "0", "sparse": true, "Notes": "x".repeat(2001)})),
            t0(),
        );
        assert_eq!(r.unwrap_err().code, "2050");
        let (r, _) = s.update_customer(
            &realm,
            &obj(json!({"Id": "999", "SyncToken": "0", "sparse": true})),
            t0(),
        );
        assert_eq!(r.unwrap_err().code, "610");
    }

    #[test]
    fn refresh_tokens_rotate_with_a_grace_period() {
        let (mut s, realm) = books();
        let l = lifetimes();
        let first = s.mint_pair(&realm, t0(), l);
        let second = s.refresh(&first.refresh_token, t0(), l).unwrap();
        assert_ne!(second.refresh_token, first.refresh_token);
        // The old one still works within the grace period…
        let again = s
            .refresh(&first.refresh_token, t0() + Duration::hours(23), l)
            .unwrap();
        assert_ne!(again.refresh_token, second.refresh_token);
        // …and not after it.
        assert_eq!(
            s.refresh(&first.refresh_token, t0() + Duration::hours(24), l),
            Err(GrantRefused("Token invalid"))
        );
        assert!(s.refresh("nope", t0(), l).is_err());
        // Access tokens last an hour.
        assert_eq!(
            s.authenticate(&second.access_token, t0()),
            Ok(realm.as_str())
        );
        assert_eq!(
            s.authenticate(&second.access_token, t0() + Duration::hours(1)),
            Err(AuthFailure::Expired)
        );
        s.revoke_realm(&realm);
        assert!(s.refresh(&second.refresh_token, t0(), l).is_err());
        assert_eq!(
            s.authenticate(&second.access_token, t0()),
            Err(AuthFailure::Unknown)
        );
    }

    #[test]
    fn codes_are_single_use_and_bound_to_the_redirect_uri() {
        let (mut s, realm) = books();
        let l = lifetimes();
        let code = s.mint_code(&realm, Some("https://a/cb"), t0(), l).unwrap();
        assert!(
            s.exchange_code(&code, Some("https://b/cb"), t0(), l)
                .is_err()
        );
        let (r, _) = s
            .exchange_code(&code, Some("https://a/cb"), t0(), l)
            .unwrap();
        assert_eq!(r, realm);
        assert!(
            s.exchange_code(&code, Some("https://a/cb"), t0(), l)
                .is_err()
        );
        let code = s.mint_code(&realm, None, t0(), l).unwrap();
        assert!(
            s.exchange_code(&code, None, t0() + Duration::minutes(10), l)
                .is_err()
        );
    }

    #[test]
    fn queries_hide_inactive_customers_unless_asked_and_page() {
        let (mut s, realm) = books();
        for i in 1..=5 {
            create(
                &mut s,
                &realm,
                CustomerSeed {
                    display_name: Some(format!("C{i}")),
                    email: Some(format!("c{i}@example.com")),
                    ..Default::default()
                },
            );
        }
        s.edit_customer(&realm, "2", |v| v["Active"] = json!(false), t0())
            .unwrap();
        let q = |text: &str| s.query(&realm, &parse(text).unwrap()).unwrap();
        assert_eq!(q("SELECT COUNT(*) FROM Customer")["totalCount"], 4);
        assert_eq!(
            q("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'c2@example.com'"),
            json!({})
        );
        let r = q(
            "SELECT * FROM Customer WHERE PrimaryEmailAddr = 'c2@example.com' AND Active IN (true, false)",
        );
        assert_eq!(r["Customer"][0]["Id"], "2");
        let r = q(
            "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Id DESC STARTPOSITION 2 MAXRESULTS 2",
        );
        let ids: Vec<&str> = r["Customer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["4", "3"]);
        assert_eq!(r["startPosition"], 2);
        assert_eq!(r["maxResults"], 2);
    }

    #[test]
    fn cdc_lists_changes_with_merged_away_customers_as_stubs() {
        let (mut s, realm) = books();
        for name in ["A", "B", "C"] {
            create(
                &mut s,
                &realm,
                CustomerSeed {
                    display_name: Some(name.into()),
                    ..Default::default()
                },
            );
        }
        let later = t0() + Duration::minutes(1);
        let change = s.merge_customers(&realm, "1", "2", later).unwrap();
        assert_eq!(change.deleted_id.as_deref(), Some("2"));
        assert!(s.customer(&realm, "2").is_none());
        let r = s.changed_customers(&realm, t0(), 1000).unwrap();
        let got: Vec<(String, Option<String>)> = r["Customer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["Id"].as_str().unwrap().to_string(),
                    c["status"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1".to_string(), None),
                ("2".to_string(), Some("Deleted".to_string()))
            ]
        );
        assert_eq!(
            s.changed_customers(&realm, t0() - Duration::seconds(1), 2)
                .unwrap()["maxResults"],
            2
        );
        assert_eq!(s.changed_customers(&realm, later, 1000).unwrap(), json!({}));
    }

    #[test]
    fn attachables_link_notes_to_live_customers() {
        let (mut s, realm) = books();
        let id = create(
            &mut s,
            &realm,
            CustomerSeed {
                display_name: Some("A".into()),
                ..Default::default()
            },
        );
        let body = |cid: &str, note: &str| {
            obj(
                json!({"AttachableRef": [{"EntityRef": {"type": "Customer", "value": cid}}], "Note": note}),
            )
        };
        let a = s
            .create_attachable(&realm, &body(&id, "opened"), t0())
            .unwrap();
        assert_eq!(a["SyncToken"], "0");
        assert_eq!(s.notes_of(&realm, &id).unwrap(), ["opened"]);
        assert_eq!(
            s.create_attachable(&realm, &body("77", "x"), t0())
                .unwrap_err()
                .code,
            "2500"
        );
        assert_eq!(
            s.create_attachable(&realm, &body(&id, &"x".repeat(2001)), t0())
                .unwrap_err()
                .code,
            "2050"
        );
        let r = s
            .query(
                &realm,
                &parse(&format!("SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = 'customer' AND AttachableRef.EntityRef.value = '{id}'")).unwrap(),
            )
            .unwrap();
        assert_eq!(r["Attachable"][0]["Note"], "opened");
    }
}
