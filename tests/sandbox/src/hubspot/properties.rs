//! Property definitions: the built-in ones seeded per object type, the properties API
//! (`/crm/v3/properties/{objectType}…`, docs/vendors/hubspot.md §5), and the validation every
//! object write goes through (unknown, read-only and ill-typed values are refused).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use mlc::vendors::hubspot::models::ObjectType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::{HsError, PropertyProblem, timestamp};
use super::state::singular;

/// `type` values HubSpot accepts (§5).
const TYPES: [&str; 7] = [
    "bool",
    "date",
    "datetime",
    "enumeration",
    "number",
    "phone_number",
    "string",
];

/// `fieldType` values HubSpot accepts (§5).
const FIELD_TYPES: [&str; 12] = [
    "booleancheckbox",
    "calculation_equation",
    "checkbox",
    "date",
    "file",
    "html",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
];

/// `numberDisplayHint` values (§5).
const NUMBER_HINTS: [&str; 6] = [
    "currency",
    "duration",
    "formatted",
    "percentage",
    "probability",
    "unformatted",
];

/// Custom unique-value properties allowed per object type (§3.2, UNCONFIRMED).
pub(crate) const MAX_UNIQUE: usize = 10;

/// A property definition as the sandbox keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// `type`.
    pub kind: String,
    /// `fieldType`.
    pub field_type: String,
    /// `groupName`.
    pub group_name: String,
    /// `description`.
    pub description: String,
    /// Enumeration options, as sent.
    pub options: Vec<Value>,
    /// `hasUniqueValue` (fixed at creation).
    pub has_unique_value: bool,
    /// Values are computed by HubSpot (writes answer 400).
    pub read_only: bool,
    /// Seeded by the sandbox (HubSpot's own).
    pub hubspot_defined: bool,
    /// `numberDisplayHint`.
    pub number_display_hint: Option<String>,
    /// `displayOrder`.
    pub display_order: i64,
    /// `hidden`.
    pub hidden: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Property {
    /// The JSON HubSpot returns for a property.
    pub(crate) fn render(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": self.options,
            "displayOrder": self.display_order,
            "calculated": false,
            "externalOptions": false,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": !self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": !self.read_only,
            "createdAt": timestamp(self.created_at),
            "updatedAt": timestamp(self.updated_at),
            "archived": false,
        });
        if let Some(hint) = &self.number_display_hint {
            v["numberDisplayHint"] = json!(hint);
        }
        v
    }
}

/// A property group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyGroup {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// `displayOrder`.
    pub display_order: i64,
}

impl PropertyGroup {
    pub(crate) fn render(&self) -> Value {
        json!({"name": self.name, "label": self.label, "displayOrder": self.display_order, "archived": false})
    }
}

/// The object type's default group (contacts: `contactinformation`; the others UNCONFIRMED).
pub(crate) fn default_group(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "contactinformation",
        ObjectType::Companies => "companyinformation",
        ObjectType::LineItems => "lineiteminformation",
        ObjectType::Invoices => "invoiceinformation",
        ObjectType::CommercePayments => "paymentinformation",
    }
}

pub(crate) fn seed_groups(t: ObjectType) -> Vec<PropertyGroup> {
    vec![PropertyGroup {
        name: default_group(t).into(),
        label: format!(
            "{} information",
            singular(t).replace('_', " ").to_lowercase()
        ),
        display_order: 0,
    }]
}

/// `(name, type, fieldType, read-only)`.
type Seed = (&'static str, &'static str, &'static str, bool);

const SYSTEM: [Seed; 2] = [
    ("hs_object_id", "number", "number", true),
    ("createdate", "datetime", "date", true),
];

fn seeds(t: ObjectType) -> Vec<Seed> {
    let s = |n, k, f| (n, k, f, false);
    let mut v: Vec<Seed> = SYSTEM.to_vec();
    match t {
        ObjectType::Contacts => {
            v.push(("lastmodifieddate", "datetime", "date", true));
            for n in [
                "email",
                "firstname",
                "lastname",
                "address",
                "city",
                "state",
                "zip",
                "country",
                "company",
                "jobtitle",
                "website",
            ] {
                v.push(s(n, "string", "text"));
            }
            v.push(s("phone", "string", "phonenumber"));
            v.push(s("mobilephone", "string", "phonenumber"));
        }
        ObjectType::Companies => {
            v.push(("hs_lastmodifieddate", "datetime", "date", true));
            for n in [
                "name", "domain", "address", "city", "state", "zip", "country", "website",
            ] {
                v.push(s(n, "string", "text"));
            }
            v.push(s("phone", "string", "phonenumber"));
        }
        ObjectType::LineItems => {
            v.push(("hs_lastmodifieddate", "datetime", "date", true));
            v.push(s("name", "string", "text"));
            v.push(s("description", "string", "textarea"));
            v.push(s("quantity", "number", "number"));
            v.push(s("price", "number", "number"));
            v.push(s("hs_product_id", "string", "text"));
            v.push(s("hs_sku", "string", "text"));
            v.push(s("hs_tax_rate_group_id", "string", "text"));
            v.push(s("hs_recurring_billing_period", "string", "text"));
            v.push(("amount", "number", "number", true));
        }
        ObjectType::Invoices => {
            v.push(("hs_lastmodifieddate", "datetime", "date", true));
            v.push(s("hs_currency", "string", "text"));
            v.push(s("hs_invoice_date", "date", "date"));
            v.push(s("hs_due_date", "date", "date"));
            v.push(s("hs_invoice_status", "enumeration", "select"));
            v.push(s("hs_title", "string", "text"));
            v.push(s("hs_comments", "string", "textarea"));
            v.push(s("hs_purchase_order_number", "string", "text"));
            v.push(s("hs_tax_id", "string", "text"));
            v.push(("hs_number", "string", "text", true));
            v.push(("hs_amount_billed", "number", "number", true));
            v.push(("hs_balance_due", "number", "number", true));
            v.push(("hs_amount_paid", "number", "number", true));
        }
        ObjectType::CommercePayments => {
            v.push(("hs_lastmodifieddate", "datetime", "date", true));
            v.push(s("hs_initial_amount", "number", "number"));
            v.push(s("hs_initiated_date", "datetime", "date"));
            v.push(s("hs_customer_email", "string", "text"));
            v.push(s("hs_currency_code", "string", "text"));
            v.push(s("hs_payment_method", "enumeration", "select"));
            v.push(s("hs_latest_status", "enumeration", "select"));
            v.push(s("hs_reference_number", "string", "text"));
            v.push(s("hs_internal_comment", "string", "textarea"));
        }
    }
    v
}

fn options(values: &[&str]) -> Vec<Value> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"label": v, "value": v, "displayOrder": i, "hidden": false}))
        .collect()
}

/// The built-in properties of `t`.
pub(crate) fn seed(t: ObjectType, now: DateTime<Utc>) -> BTreeMap<String, Property> {
    seeds(t)
        .into_iter()
        .enumerate()
        .map(|(i, (name, kind, field_type, read_only))| {
            let opts = match name {
                "hs_invoice_status" => options(&["draft", "open", "paid", "voided"]),
                "hs_payment_method" => {
                    options(&["ach", "card", "cash", "check", "wire_transfer", "other"])
                }
                "hs_latest_status" => options(&["processing", "succeeded", "failed", "refunded"]),
                _ => Vec::new(),
            };
            let p = Property {
                name: name.into(),
                label: name.replace('_', " "),
                kind: kind.into(),
                field_type: field_type.into(),
                group_name: default_group(t).into(),
                description: String::new(),
                options: opts,
                has_unique_value: false,
                read_only,
                hubspot_defined: true,
                number_display_hint: None,
                display_order: i64::try_from(i).unwrap_or(0),
                hidden: false,
                created_at: now,
                updated_at: now,
            };
            (name.to_string(), p)
        })
        .collect()
}

/// Checks the `properties` of a write and turns them into strings. Non-string values are
/// accepted as HubSpot does (stringified) but reported in `violations`; unknown, read-only,
/// non-option and non-numeric values fail the whole input with `Property values were not
/// valid` (codes `PROPERTY_DOESNT_EXIST`, `READ_ONLY_VALUE`, `INVALID_OPTION`,
/// `INVALID_DECIMAL`, `INVALID_BOOLEAN`, `INVALID_DATE`, `INVALID_DATETIME`; all but the first
/// two UNCONFIRMED).
pub(crate) fn validate(
    defs: &BTreeMap<String, Property>,
    input: &Map<String, Value>,
    violations: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, HsError> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, value) in input {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Number(n) => {
                violations.push(format!("property {name}: a number, not a string"));
                n.to_string()
            }
            Value::Bool(b) => {
                violations.push(format!("property {name}: a boolean, not a string"));
                b.to_string()
            }
            other => {
                violations.push(format!("property {name}: {other} is not a string"));
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code: "INVALID_PROPERTY_VALUE",
                    message: format!("{other} is not a valid value for {name}"),
                });
                continue;
            }
        };
        let Some(def) = defs.get(name) else {
            problems.push(PropertyProblem {
                name: name.clone(),
                code: "PROPERTY_DOESNT_EXIST",
                message: format!("Property \"{name}\" does not exist"),
            });
            continue;
        };
        if def.read_only {
            problems.push(PropertyProblem {
                name: name.clone(),
                code: "READ_ONLY_VALUE",
                message: format!("{name} is a read only property; its value cannot be set."),
            });
            continue;
        }
        if !value.is_empty()
            && let Err((code, message)) = check_value(def, &value)
        {
            problems.push(PropertyProblem {
                name: name.clone(),
                code,
                message,
            });
            continue;
        }
        out.insert(name.clone(), value);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(HsError::invalid_properties(problems))
    }
}

/// A date or datetime as epoch ms (`1700000000000`, RFC 3339, `YYYY-MM-DD`).
pub(crate) fn epoch_ms(s: &str) -> Option<f64> {
    if let Ok(n) = s.trim().parse::<f64>() {
        return Some(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis() as f64);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis() as f64)
}

/// Milliseconds in a day: a `date` value given as epoch ms must be a UTC midnight.
const DAY_MS: f64 = 86_400_000.0;

fn check_value(def: &Property, value: &str) -> Result<(), (&'static str, String)> {
    match def.kind.as_str() {
        "date" if !epoch_ms(value).is_some_and(|ms| ms % DAY_MS == 0.0) => Err((
            "INVALID_DATE",
            format!(
                "{value} is not a valid date: use YYYY-MM-DD or epoch milliseconds at midnight UTC."
            ),
        )),
        "datetime" if epoch_ms(value).is_none() => Err((
            "INVALID_DATETIME",
            format!("{value} is not a valid datetime: use epoch milliseconds or ISO 8601."),
        )),
        "number" if value.trim().parse::<f64>().is_err() => Err((
            "INVALID_DECIMAL",
            format!("{value} was not a valid number."),
        )),
        "bool" if value != "true" && value != "false" => Err((
            "INVALID_BOOLEAN",
            format!("{value} was not a valid boolean."),
        )),
        "enumeration" => {
            let allowed: Vec<&str> = def
                .options
                .iter()
                .filter_map(|o| o.get("value").and_then(Value::as_str))
                .collect();
            // A checkbox enumeration takes `a;b`.
            let ok = value.split(';').all(|v| allowed.contains(&v));
            if ok {
                Ok(())
            } else {
                Err((
                    "INVALID_OPTION",
                    format!(
                        "{value} was not one of the allowed options: [{}]",
                        allowed.join(", ")
                    ),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// A property definition from a create body: required fields, type/fieldType sets, options.
pub(crate) fn definition(
    t: ObjectType,
    body: &Value,
    groups: &[PropertyGroup],
    now: DateTime<Utc>,
) -> Result<Property, HsError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let mut missing = Vec::new();
    for k in ["name", "label", "type", "fieldType", "groupName"] {
        if text(k).is_none_or(|v| v.is_empty()) {
            missing.push(k);
        }
    }
    if !missing.is_empty() {
        return Err(HsError::validation(format!(
            "Invalid input JSON: missing required field(s) {}",
            missing.join(", ")
        )));
    }
    let name = text("name").unwrap_or_default();
    let kind = text("type").unwrap_or_default();
    let field_type = text("fieldType").unwrap_or_default();
    let group_name = text("groupName").unwrap_or_default();
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.starts_with("hs_")
    {
        return Err(HsError::validation(format!(
            "Property name '{name}' is invalid: use lower-case letters, digits and _, not starting with hs_"
        )));
    }
    if !TYPES.contains(&kind.as_str()) {
        return Err(HsError::validation(format!(
            "'{kind}' is not a valid type: one of {}",
            TYPES.join(", ")
        )));
    }
    if !FIELD_TYPES.contains(&field_type.as_str()) {
        return Err(HsError::validation(format!(
            "'{field_type}' is not a valid fieldType: one of {}",
            FIELD_TYPES.join(", ")
        )));
    }
    if !groups.iter().any(|g| g.name == group_name) {
        return Err(HsError::validation(format!(
            "Property group '{group_name}' does not exist for {}",
            t.path()
        )));
    }
    let options = body
        .get("options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_options(&kind, &options)?;
    let hint = text("numberDisplayHint");
    if let Some(h) = &hint
        && !NUMBER_HINTS.contains(&h.as_str())
    {
        return Err(HsError::validation(format!(
            "'{h}' is not a valid numberDisplayHint"
        )));
    }
    Ok(Property {
        name,
        label: text("label").unwrap_or_default(),
        kind,
        field_type,
        group_name,
        description: text("description").unwrap_or_default(),
        options,
        has_unique_value: body
            .get("hasUniqueValue")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        read_only: false,
        hubspot_defined: false,
        number_display_hint: hint,
        display_order: body
            .get("displayOrder")
            .and_then(Value::as_i64)
            .unwrap_or(-1),
        hidden: body.get("hidden").and_then(Value::as_bool).unwrap_or(false),
        created_at: now,
        updated_at: now,
    })
}

/// Enumerations need options with a label and a unique value; a `bool` may carry its two
/// (HubSpot's own bool properties read back with `Yes`/`true` and `No`/`false`, and its docs
/// show them sent at creation); other types take none.
fn check_options(kind: &str, options: &[Value]) -> Result<(), HsError> {
    if kind == "bool" {
        let values: std::collections::BTreeSet<&str> = options
            .iter()
            .filter_map(|o| o.get("value").and_then(Value::as_str))
            .collect();
        if options.is_empty() || (options.len() == 2 && values == ["false", "true"].into()) {
            return Ok(());
        }
        return Err(HsError::validation(
            "A bool property's options must be the two values true and false",
        ));
    }
    if kind != "enumeration" {
        if options.is_empty() {
            return Ok(());
        }
        return Err(HsError::validation(format!(
            "Options are only allowed on enumeration properties, not {kind}"
        )));
    }
    if options.is_empty() {
        return Err(HsError::validation(
            "An enumeration property needs at least one option",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for o in options {
        let label = o.get("label").and_then(Value::as_str);
        let value = o.get("value").and_then(Value::as_str);
        match (label, value) {
            (Some(_), Some(v)) if seen.insert(v.to_string()) => {}
            (Some(_), Some(v)) => {
                return Err(HsError::validation(format!("Duplicate option value '{v}'")));
            }
            _ => {
                return Err(HsError::validation(
                    "Every option needs a label and a value",
                ));
            }
        }
    }
    Ok(())
}

/// Applies a PATCH to a property: `hasUniqueValue`, `name` and `type` cannot change.
pub(crate) fn patch(p: &mut Property, body: &Value, now: DateTime<Utc>) -> Result<(), HsError> {
    if let Some(u) = body.get("hasUniqueValue").and_then(Value::as_bool)
        && u != p.has_unique_value
    {
        return Err(HsError::validation(
            "hasUniqueValue cannot be changed after a property is created",
        ));
    }
    if p.hubspot_defined {
        return Err(HsError::validation(format!(
            "{} is a HubSpot-defined property and cannot be changed",
            p.name
        )));
    }
    let mut next = p.clone();
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(v) = text("label") {
        next.label = v;
    }
    if let Some(v) = text("description") {
        next.description = v;
    }
    if let Some(v) = text("groupName") {
        next.group_name = v;
    }
    if let Some(v) = text("fieldType") {
        if !FIELD_TYPES.contains(&v.as_str()) {
            return Err(HsError::validation(format!(
                "'{v}' is not a valid fieldType"
            )));
        }
        next.field_type = v;
    }
    if let Some(v) = text("type") {
        if !TYPES.contains(&v.as_str()) {
            return Err(HsError::validation(format!("'{v}' is not a valid type")));
        }
        next.kind = v;
    }
    if let Some(opts) = body.get("options").and_then(Value::as_array) {
        next.options = opts.clone();
    }
    if let Some(h) = body.get("hidden").and_then(Value::as_bool) {
        next.hidden = h;
    }
    if let Some(o) = body.get("displayOrder").and_then(Value::as_i64) {
        next.display_order = o;
    }
    check_options(&next.kind, &next.options)?;
    next.updated_at = now;
    *p = next;
    Ok(())
}

/// 409 for a property that exists.
pub(crate) fn exists(name: &str) -> HsError {
    HsError::new(
        StatusCode::CONFLICT,
        "OBJECT_ALREADY_EXISTS",
        format!("Property named '{name}' already exists."),
    )
}

/// 404 for a property that does not.
pub(crate) fn unknown(t: ObjectType, name: &str) -> HsError {
    HsError::not_found(format!(
        "Unable to find property {name} for object type {}",
        t.path()
    ))
}

/// `{"results":[…]}`.
pub(crate) fn results(items: Vec<Value>) -> Response {
    axum::Json(json!({"results": items})).into_response()
}
