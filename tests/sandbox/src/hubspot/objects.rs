//! The CRM object routes (docs/vendors/hubspot.md §3.1): list, read, create, update, archive
//! and the five batch operations, for every object type, at `/crm/v3/objects/{type}` and
//! `/crm/objects/{version}/{type}`. One write path serves single and batch routes, so both
//! apply the same validation and rules; every batch answers through [`BatchAnswer`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mlc::vendors::hubspot::models::ObjectType;
use serde_json::{Map, Value, json};

use super::Inner;
use super::auth::Caller;
use super::errors::{BatchAnswer, HsError};
use super::properties;
use super::state::{Portal, State as Db, assoc_defs, def_by_id, not_found, singular};
use super::vendor::{
    batch_inputs, object_scope, object_type, parse_json, unknown_fields, writable,
};

type Shared = Arc<Inner>;
type Segments = Path<HashMap<String, String>>;
type Params = Query<Vec<(String, String)>>;

/// Turns a route's result into its answer.
pub(crate) fn answer(result: Result<Response, HsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn segment<'a>(p: &'a HashMap<String, String>, key: &str) -> &'a str {
    p.get(key).map_or("", String::as_str)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `properties=a,b&properties=c` → `[a, b, c]`, or `None` when not asked.
pub(crate) fn wanted(params: &[(String, String)]) -> Option<Vec<String>> {
    let names: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!names.is_empty()).then_some(names)
}

/// `associations=companies,contacts` → the object types asked for.
fn associations_wanted(params: &[(String, String)]) -> Vec<ObjectType> {
    params
        .iter()
        .filter(|(k, _)| k == "associations")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(super::state::parse_type)
        .collect()
}

/// An object read with `associations=…`: adds `"associations":{type:{"results":[{"id","type"}]}}`
/// (v3's names: `contact_to_company` for the primary label, `…_unlabeled` for the default when
/// the pair has labels, else `{from}_to_{to}`).
fn with_associations(
    portal: &Portal,
    t: ObjectType,
    id: u64,
    mut v: Value,
    kinds: &[ObjectType],
) -> Value {
    let mut map = Map::new();
    for &to in kinds {
        let name = format!(
            "{}_to_{}",
            singular(t).to_lowercase(),
            singular(to).to_lowercase()
        );
        let labelled = assoc_defs(t, to).iter().any(|d| d.label.is_some());
        let results: Vec<Value> = portal
            .linked(t, id, to)
            .into_iter()
            .flat_map(|other| {
                portal
                    .link_types((t, id), (to, other))
                    .into_iter()
                    .map(|(_, type_id)| {
                        let kind = match def_by_id(t, type_id).map(|d| d.label) {
                            Some(Some(_)) | None => name.clone(),
                            Some(None) if labelled => format!("{name}_unlabeled"),
                            Some(None) => name.clone(),
                        };
                        json!({"id": other.to_string(), "type": kind})
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if !results.is_empty() {
            map.insert(to.path().to_string(), json!({"results": results}));
        }
    }
    if !map.is_empty() {
        v["associations"] = Value::Object(map);
    }
    v
}

/// A string field of a JSON object (non-strings are stringified and reported).
fn text(v: &Value, key: &str, at: &str, problems: &mut Vec<String>) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => {
            problems.push(format!("{at}.{key}: {other} is not a string"));
            Some(other.to_string().trim_matches('"').to_string())
        }
    }
}

/// The `properties` object of an input.
fn input_properties(input: &Value) -> Result<Map<String, Value>, HsError> {
    match input.get("properties") {
        Some(Value::Object(m)) => Ok(m.clone()),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(HsError::validation(
            "Invalid input JSON: properties must be an object of property values",
        )),
    }
}

/// How an input names its object.
pub(crate) enum Target<'a> {
    /// A new object (with inline `associations`).
    Create,
    /// An existing one, by HubSpot id or `idProperty`.
    Update {
        id_property: Option<&'a str>,
        id: &'a str,
    },
    /// Created or updated by a unique property.
    Upsert { id_property: &'a str, id: &'a str },
}

/// One write (any route): validates the properties against the portal's definitions, then
/// creates, updates or upserts. `(id, new)` where `new` is said for upserts only.
pub(crate) fn write_one(
    inner: &Inner,
    db: &mut Db,
    caller: &Caller,
    t: ObjectType,
    target: Target<'_>,
    input: &Value,
    problems: &mut Vec<String>,
) -> Result<(u64, Option<bool>), HsError> {
    let now = inner.now();
    let raw = input_properties(input)?;
    let fresh = db.next_object_id();
    let portal = db.api_portal_mut(caller.portal_id)?;
    let defs = portal.property_defs(t).cloned().unwrap_or_default();
    let mut props = properties::validate(&defs, &raw, problems)?;
    match target {
        Target::Create => {
            let links = inline_associations(portal, t, input)?;
            // An invoice starts as a draft; a requested status is applied once its
            // associations are in place, with the transition rules.
            let status = match t {
                ObjectType::Invoices => props
                    .remove("hs_invoice_status")
                    .filter(|s| s != "draft" && !s.is_empty()),
                _ => None,
            };
            let id = portal.create(fresh, t, props, now)?;
            for (def, to) in links {
                if let Err(e) = portal.associate(def, id, to, now) {
                    portal.purge(t, id, now);
                    return Err(e);
                }
            }
            if let Some(status) = status {
                let change = BTreeMap::from([("hs_invoice_status".to_string(), status)]);
                if let Err(e) = portal.update(t, id, change, now) {
                    portal.purge(t, id, now);
                    return Err(e);
                }
            }
            Ok((id, None))
        }
        Target::Update { id_property, id } => {
            if let Some(p) = id_property
                && !portal.is_unique_property(t, p)
            {
                problems.push(format!("idProperty {p} is not a unique property"));
                return Err(HsError::validation(format!(
                    "{p} is not a unique property of {}",
                    t.path()
                )));
            }
            let Some(found) = portal.resolve(t, id_property, id) else {
                return Err(not_found(t, id));
            };
            portal.update(t, found, props, now).map(|()| (found, None))
        }
        Target::Upsert { id_property, id } => {
            // The key property is set by the upsert itself.
            props.remove(id_property);
            portal
                .upsert(fresh, t, id_property, id, props, now)
                .map(|(id, new)| (id, Some(new)))
        }
    }
}

/// `associations:[{"to":{"id"},"types":[{"associationCategory","associationTypeId"}]}]` of a
/// create, checked before anything is written.
fn inline_associations(
    portal: &Portal,
    t: ObjectType,
    input: &Value,
) -> Result<Vec<(super::state::AssocDef, u64)>, HsError> {
    let mut links = Vec::new();
    let Some(list) = input.get("associations").and_then(Value::as_array) else {
        return Ok(links);
    };
    for a in list {
        let to = a
            .pointer("/to/id")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .unwrap_or_default();
        let types = a
            .get("types")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if types.is_empty() {
            return Err(HsError::validation(
                "Each association needs at least one type (associationCategory, associationTypeId)",
            ));
        }
        for ty in types {
            let type_id = ty
                .get("associationTypeId")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            let Some(def) = def_by_id(t, type_id) else {
                return Err(HsError::validation(format!(
                    "{type_id} is not a valid association type id from {}",
                    t.path()
                )));
            };
            let Some(to_id) = to
                .parse::<u64>()
                .ok()
                .filter(|id| portal.object(def.to, *id).is_some())
            else {
                return Err(HsError::validation(format!(
                    "Invalid association: {} {to} does not exist",
                    singular(def.to)
                )));
            };
            links.push((def, to_id));
        }
    }
    Ok(links)
}

/// `GET …/{type}?limit&after&properties`: by id, `after` is the next id to return.
pub(crate) async fn list(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    Query(params): Params,
) -> Response {
    answer((|| {
        let t = object_type(segment(&p, "type"))?;
        caller.require(&[object_scope(t, false)])?;
        let limit = match param(&params, "limit") {
            None => 10,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| HsError::validation("limit must be between 1 and 100"))?,
        };
        let after = param(&params, "after")
            .map(|a| {
                a.parse::<u64>().map_err(|_| {
                    HsError::validation("after must be a cursor from paging.next.after")
                })
            })
            .transpose()?
            .unwrap_or(0);
        let wanted = wanted(&params);
        let kinds = associations_wanted(&params);
        let db = inner.state();
        let portal = db.api_portal(caller.portal_id)?;
        let mut page = portal.objects_of(t).filter(|o| o.id >= after);
        let results: Vec<Value> = page
            .by_ref()
            .take(limit)
            .map(|o| {
                let v = portal.render(t, o, wanted.as_deref());
                with_associations(portal, t, o.id, v, &kinds)
            })
            .collect();
        let mut body = json!({"results": results});
        if let Some(next) = page.next() {
            body["paging"] = json!({"next": {"after": next.id.to_string(), "link": format!("?after={}", next.id)}});
        }
        Ok(axum::Json(body).into_response())
    })())
}

/// `GET …/{type}/{id}?idProperty&properties`.
pub(crate) async fn read(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    Query(params): Params,
) -> Response {
    answer((|| {
        let t = object_type(segment(&p, "type"))?;
        caller.require(&[object_scope(t, false)])?;
        let id = segment(&p, "id");
        let id_property = param(&params, "idProperty");
        let db = inner.state();
        let portal = db.api_portal(caller.portal_id)?;
        if let Some(prop) = id_property
            && !portal.is_unique_property(t, prop)
        {
            inner.violate(
                &caller.method,
                &caller.path,
                vec![format!("idProperty {prop} is not a unique property")],
            );
            return Err(HsError::validation(format!(
                "{prop} is not a unique property"
            )));
        }
        let found = portal
            .resolve(t, id_property, id)
            .and_then(|id| portal.object(t, id))
            .ok_or_else(|| not_found(t, id))?;
        let v = portal.render(t, found, wanted(&params).as_deref());
        let v = with_associations(portal, t, found.id, v, &associations_wanted(&params));
        Ok(axum::Json(v).into_response())
    })())
}

/// `POST …/{type}` `{"properties","associations"?}` → 201.
pub(crate) async fn create(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    answer((|| {
        let t = object_type(segment(&p, "type"))?;
        caller.require(&[object_scope(t, true)])?;
        let body = parse_json(&body)?;
        let mut problems = Vec::new();
        unknown_fields(
            &body,
            &["properties", "associations", "objectWriteTraceId"],
            "body",
            &mut problems,
        );
        let mut db = inner.state();
        writable(&db.api_portal(caller.portal_id)?.info, t)?;
        let result = write_one(
            &inner,
            &mut db,
            &caller,
            t,
            Target::Create,
            &body,
            &mut problems,
        );
        inner.violate(&caller.method, &caller.path, problems);
        let (id, _) = result?;
        let portal = db.api_portal(caller.portal_id)?;
        Ok((StatusCode::CREATED, axum::Json(portal.render_all(t, id))).into_response())
    })())
}

/// `PATCH …/{type}/{id}?idProperty` `{"properties"}`.
pub(crate) async fn update(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    Query(params): Params,
    body: Bytes,
) -> Response {
    answer((|| {
        let t = object_type(segment(&p, "type"))?;
        caller.require(&[object_scope(t, true)])?;
        let body = parse_json(&body)?;
        let mut problems = Vec::new();
        unknown_fields(
            &body,
            &["properties", "objectWriteTraceId"],
            "body",
            &mut problems,
        );
        let mut db = inner.state();
        writable(&db.api_portal(caller.portal_id)?.info, t)?;
        let target = Target::Update {
            id_property: param(&params, "idProperty"),
            id: segment(&p, "id"),
        };
        let result = write_one(&inner, &mut db, &caller, t, target, &body, &mut problems);
        inner.violate(&caller.method, &caller.path, problems);
        let (id, _) = result?;
        let portal = db.api_portal(caller.portal_id)?;
        Ok(axum::Json(portal.render_all(t, id)).into_response())
    })())
}

/// `DELETE …/{type}/{id}` → 204 (also when already gone).
pub(crate) async fn archive(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    answer((|| {
        let t = object_type(segment(&p, "type"))?;
        caller.require(&[object_scope(t, true)])?;
        let now = inner.now();
        let mut db = inner.state();
        let portal = db.api_portal_mut(caller.portal_id)?;
        writable(&portal.info, t)?;
        if let Ok(id) = segment(&p, "id").parse::<u64>() {
            portal.archive(t, id, now);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

/// The input fields each batch operation takes (anything else is a violation).
fn batch_shape(op: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match op {
        "read" => (
            &[
                "inputs",
                "idProperty",
                "properties",
                "propertiesWithHistory",
                "archived",
            ],
            &["id"],
        ),
        "create" => (
            &["inputs"],
            &["properties", "associations", "objectWriteTraceId"],
        ),
        "update" => (
            &["inputs"],
            &["id", "idProperty", "properties", "objectWriteTraceId"],
        ),
        "upsert" => (
            &["inputs"],
            &["id", "idProperty", "properties", "objectWriteTraceId"],
        ),
        "archive" => (&["inputs"], &["id"]),
        _ => return None,
    })
}

/// `POST …/{type}/batch/{read|create|update|upsert|archive}`.
pub(crate) async fn batch(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    answer((|| {
        let t = object_type(segment(&p, "type"))?;
        let op = segment(&p, "op");
        let (top, fields) = batch_shape(op)
            .ok_or_else(|| HsError::not_found(format!("unknown batch operation {op}")))?;
        let write = op != "read";
        caller.require(&[object_scope(t, write)])?;
        let body = parse_json(&body)?;
        let inputs = batch_inputs(
            &inner,
            &caller,
            &format!("{t} batch/{op}"),
            &body,
            top,
            fields,
        )?;
        let started = inner.now();
        let mut problems = Vec::new();
        let mut db = inner.state();
        let info = db.api_portal(caller.portal_id)?.info.clone();
        if write {
            writable(&info, t)?;
        }
        let ids: Vec<Option<String>> = inputs
            .iter()
            .enumerate()
            .map(|(i, v)| text(v, "id", &format!("inputs[{i}]"), &mut problems))
            .collect();
        let response = match op {
            "read" => batch_read(&inner, &db, &caller, t, &body, &ids, started, &mut problems),
            "archive" => {
                let now = inner.now();
                let portal = db.api_portal_mut(caller.portal_id)?;
                for id in ids.iter().flatten().filter_map(|id| id.parse::<u64>().ok()) {
                    portal.archive(t, id, now);
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => batch_write(
                &inner,
                &mut db,
                &caller,
                t,
                op,
                &inputs,
                &ids,
                started,
                &mut problems,
            ),
        };
        inner.violate(&caller.method, &caller.path, problems);
        response
    })())
}

#[allow(clippy::too_many_arguments)]
fn batch_read(
    inner: &Inner,
    db: &Db,
    caller: &Caller,
    t: ObjectType,
    body: &Value,
    ids: &[Option<String>],
    started: chrono::DateTime<chrono::Utc>,
    problems: &mut Vec<String>,
) -> Result<Response, HsError> {
    let portal = db.api_portal(caller.portal_id)?;
    let id_property = text(body, "idProperty", "body", problems);
    if let Some(prop) = &id_property
        && !portal.is_unique_property(t, prop)
    {
        problems.push(format!("idProperty {prop} is not a unique property"));
        return Err(HsError::validation(format!(
            "{prop} is not a unique property of {}",
            t.path()
        )));
    }
    let wanted: Option<Vec<String>> = body.get("properties").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    let mut answer = BatchAnswer::new(started);
    for id in ids {
        let id = id.clone().unwrap_or_default();
        match portal.resolve(t, id_property.as_deref(), &id).and_then(|found| portal.object(t, found)) {
            Some(o) => answer.ok(portal.render(t, o, wanted.as_deref())),
            None => answer.fail(
                &HsError::not_found(format!(
                    "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                    singular(t)
                )),
                Some(&id),
                None,
            ),
        }
    }
    Ok(answer.respond(inner.now()))
}

#[allow(clippy::too_many_arguments)]
fn batch_write(
    inner: &Inner,
    db: &mut Db,
    caller: &Caller,
    t: ObjectType,
    op: &str,
    inputs: &[Value],
    ids: &[Option<String>],
    started: chrono::DateTime<chrono::Utc>,
    problems: &mut Vec<String>,
) -> Result<Response, HsError> {
    let id_properties: Vec<Option<String>> = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| text(v, "idProperty", &format!("inputs[{i}]"), problems))
        .collect();
    if op != "create" {
        check_keys(db, caller, t, op, ids, &id_properties, problems)?;
    }
    let mut answer = BatchAnswer::new(started);
    for (i, input) in inputs.iter().enumerate() {
        let id = ids[i].as_deref().unwrap_or_default();
        let target = match op {
            "create" => Target::Create,
            "update" => Target::Update {
                id_property: id_properties[i].as_deref(),
                id,
            },
            _ => Target::Upsert {
                id_property: id_properties[i].as_deref().unwrap_or("hs_object_id"),
                id,
            },
        };
        let trace = input.get("objectWriteTraceId").and_then(Value::as_str);
        match write_one(inner, db, caller, t, target, input, problems) {
            Ok((written, new)) => {
                let portal = db.api_portal(caller.portal_id)?;
                let mut result = portal.render_all(t, written);
                if let Some(new) = new {
                    result["new"] = json!(new);
                }
                answer.ok(result);
            }
            Err(e) => answer.fail(&e, ids[i].as_deref(), trace),
        }
    }
    Ok(answer.respond(inner.now()))
}

/// Update and upsert keys: every input has an id; upserts name a unique `idProperty` (`email`
/// on contacts or a `hasUniqueValue` property); no id twice in one batch (HubSpot: 400).
fn check_keys(
    db: &Db,
    caller: &Caller,
    t: ObjectType,
    op: &str,
    ids: &[Option<String>],
    id_properties: &[Option<String>],
    problems: &mut Vec<String>,
) -> Result<(), HsError> {
    let portal = db.api_portal(caller.portal_id)?;
    if ids.iter().any(Option::is_none) {
        problems.push("an input has no id".into());
        return Err(HsError::validation(
            "Invalid input JSON: every input needs an id",
        ));
    }
    for prop in id_properties.iter() {
        match prop {
            None if op == "upsert" => {
                problems.push("an upsert input has no idProperty".into());
                return Err(HsError::validation(
                    "Invalid input JSON: every upsert input needs an idProperty",
                ));
            }
            Some(prop) if !portal.is_unique_property(t, prop) => {
                problems.push(format!("idProperty {prop} is not a unique property"));
                return Err(HsError::validation(format!(
                    "{prop} is not a unique property of {}: upserts need email (contacts) or a property with hasUniqueValue",
                    t.path()
                )));
            }
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut duplicates = Vec::new();
    for (id, prop) in ids.iter().flatten().zip(id_properties) {
        let key = if t == ObjectType::Contacts && prop.as_deref() == Some("email") {
            id.trim().to_lowercase()
        } else {
            id.clone()
        };
        if !seen.insert(key) {
            duplicates.push(id.clone());
        }
    }
    if !duplicates.is_empty() {
        problems.push(format!("duplicate ids in one batch: {duplicates:?}"));
        return Err(HsError::validation(format!(
            "Duplicate IDs found in batch input: {duplicates:?}. IDs must be unique"
        )));
    }
    Ok(())
}
