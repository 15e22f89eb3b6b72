//! The properties API routes (`/crm/v3/properties/{objectType}…`, docs/vendors/hubspot.md
//! §5): list, create (409 `OBJECT_ALREADY_EXISTS` when the name is taken), batch create, read,
//! update, archive, and property groups. Needs `crm.schemas.{type}.read|write`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mlc::vendors::hubspot::models::ObjectType;
use serde_json::Value;

use super::Inner;
use super::auth::Caller;
use super::errors::{BatchAnswer, HsError};
use super::objects::answer;
use super::properties::{self, MAX_UNIQUE, PropertyGroup, results};
use super::state::Portal;
use super::vendor::{batch_inputs, object_type, parse_json, schema_scope, unknown_fields};

type Shared = Arc<Inner>;
type Segments = Path<HashMap<String, String>>;

/// Fields a property definition may carry (anything else is a violation).
const PROPERTY_FIELDS: &[&str] = &[
    "name",
    "label",
    "type",
    "fieldType",
    "groupName",
    "description",
    "options",
    "displayOrder",
    "hasUniqueValue",
    "hidden",
    "formField",
    "numberDisplayHint",
    "calculationFormula",
    "externalOptions",
    "referencedObjectType",
    "dataSensitivity",
    "showCurrencySymbol",
];

/// Runs `f` on the caller's portal and type after the scope check.
fn with_type<T>(
    inner: &Inner,
    caller: &Caller,
    p: &HashMap<String, String>,
    write: bool,
    f: impl FnOnce(&mut Portal, ObjectType) -> Result<T, HsError>,
) -> Result<T, HsError> {
    let t = object_type(p.get("type").map_or("", String::as_str))?;
    caller.require(&[schema_scope(t, write)])?;
    let mut db = inner.state();
    let portal = db.api_portal_mut(caller.portal_id)?;
    f(portal, t)
}

/// Adds a new definition to the portal (409 if taken, 400 past the unique-value cap).
fn add(
    portal: &mut Portal,
    t: ObjectType,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<Value, HsError> {
    let groups = portal.groups.get(&t).cloned().unwrap_or_default();
    let property = properties::definition(t, body, &groups, now)?;
    let defs = portal.properties.entry(t).or_default();
    if defs.contains_key(&property.name) {
        return Err(properties::exists(&property.name));
    }
    let unique = defs
        .values()
        .filter(|p| p.has_unique_value && !p.hubspot_defined)
        .count();
    if property.has_unique_value && unique >= MAX_UNIQUE {
        return Err(HsError::validation(format!(
            "An object type can have at most {MAX_UNIQUE} unique value properties"
        )));
    }
    let rendered = property.render();
    defs.insert(property.name.clone(), property);
    Ok(rendered)
}

/// `GET /crm/v3/properties/{type}`.
pub(crate) async fn list(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    answer(with_type(&inner, &caller, &p, false, |portal, t| {
        let items = portal
            .property_defs(t)
            .map(|d| d.values().map(properties::Property::render).collect())
            .unwrap_or_default();
        Ok(results(items))
    }))
}

/// `POST /crm/v3/properties/{type}` → 201.
pub(crate) async fn create(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    let now = inner.now();
    answer((|| {
        let body = parse_json(&body)?;
        let mut problems = Vec::new();
        unknown_fields(&body, PROPERTY_FIELDS, "body", &mut problems);
        inner.violate(&caller.method, &caller.path, problems);
        with_type(&inner, &caller, &p, true, |portal, t| {
            let created = add(portal, t, &body, now)?;
            Ok((StatusCode::CREATED, axum::Json(created)).into_response())
        })
    })())
}

/// `POST /crm/v3/properties/{type}/batch/create` `{"inputs":[definition…]}`.
pub(crate) async fn batch_create(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    let now = inner.now();
    answer((|| {
        let body = parse_json(&body)?;
        let t = p.get("type").cloned().unwrap_or_default();
        let inputs = batch_inputs(
            &inner,
            &caller,
            &format!("properties {t} batch/create"),
            &body,
            &["inputs"],
            PROPERTY_FIELDS,
        )?;
        with_type(&inner, &caller, &p, true, |portal, t| {
            let mut answer = BatchAnswer::new(now);
            for input in &inputs {
                match add(portal, t, input, now) {
                    Ok(v) => answer.ok(v),
                    Err(e) => answer.fail(&e, input.get("name").and_then(Value::as_str), None),
                }
            }
            Ok(answer.respond(now))
        })
    })())
}

/// `GET /crm/v3/properties/{type}/{name}`.
pub(crate) async fn read(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    let name = p.get("name").cloned().unwrap_or_default();
    answer(with_type(&inner, &caller, &p, false, |portal, t| {
        let property = portal
            .property_defs(t)
            .and_then(|d| d.get(&name))
            .ok_or_else(|| properties::unknown(t, &name))?;
        Ok(axum::Json(property.render()).into_response())
    }))
}

/// `PATCH /crm/v3/properties/{type}/{name}`.
pub(crate) async fn update(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    let name = p.get("name").cloned().unwrap_or_default();
    let now = inner.now();
    answer((|| {
        let body = parse_json(&body)?;
        let mut problems = Vec::new();
        unknown_fields(&body, PROPERTY_FIELDS, "body", &mut problems);
        inner.violate(&caller.method, &caller.path, problems);
        with_type(&inner, &caller, &p, true, |portal, t| {
            let property = portal
                .properties
                .get_mut(&t)
                .and_then(|d| d.get_mut(&name))
                .ok_or_else(|| properties::unknown(t, &name))?;
            properties::patch(property, &body, now)?;
            Ok(axum::Json(property.render()).into_response())
        })
    })())
}

/// `DELETE /crm/v3/properties/{type}/{name}` → 204 (HubSpot-defined ones → 400).
pub(crate) async fn archive(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    let name = p.get("name").cloned().unwrap_or_default();
    answer(with_type(&inner, &caller, &p, true, |portal, t| {
        let defs = portal.properties.entry(t).or_default();
        match defs.get(&name) {
            None => Err(properties::unknown(t, &name)),
            Some(p) if p.hubspot_defined => Err(HsError::validation(format!(
                "{name} is a HubSpot-defined property and cannot be archived"
            ))),
            Some(_) => {
                defs.remove(&name);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        }
    }))
}

/// `GET /crm/v3/properties/{type}/groups`.
pub(crate) async fn groups(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    answer(with_type(&inner, &caller, &p, false, |portal, t| {
        let items = portal
            .groups
            .get(&t)
            .map(|g| g.iter().map(PropertyGroup::render).collect())
            .unwrap_or_default();
        Ok(results(items))
    }))
}

/// `POST /crm/v3/properties/{type}/groups` `{"name","label","displayOrder"?}` → 201.
pub(crate) async fn create_group(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    answer((|| {
        let body = parse_json(&body)?;
        let mut problems = Vec::new();
        unknown_fields(
            &body,
            &["name", "label", "displayOrder"],
            "body",
            &mut problems,
        );
        inner.violate(&caller.method, &caller.path, problems);
        with_type(&inner, &caller, &p, true, |portal, t| {
            let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
            let label = body
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() || label.is_empty() {
                return Err(HsError::validation(
                    "Invalid input JSON: name and label are required",
                ));
            }
            let groups = portal.groups.entry(t).or_default();
            if groups.iter().any(|g| g.name == name) {
                return Err(HsError::new(
                    StatusCode::CONFLICT,
                    "OBJECT_ALREADY_EXISTS",
                    format!("Property group named '{name}' already exists."),
                ));
            }
            let group = PropertyGroup {
                name: name.to_string(),
                label: label.to_string(),
                display_order: body
                    .get("displayOrder")
                    .and_then(Value::as_i64)
                    .unwrap_or(-1),
            };
            let rendered = group.render();
            groups.push(group);
            Ok((StatusCode::CREATED, axum::Json(rendered)).into_response())
        })
    })())
}
