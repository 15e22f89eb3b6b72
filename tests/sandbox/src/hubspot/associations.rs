//! Associations v4 (docs/vendors/hubspot.md §3.4): default and labelled batch creates, batch
//! read and archive, the single-pair PUT/DELETE, per-object listing and the labels of a type
//! pair. Every association is stored in both directions (the reverse with its own type id), so
//! either side reads it; writing one again changes nothing.
//!
//! Scopes (UNCONFIRMED): writes need the `from` type's write scope and the `to` type's read
//! scope; reads need both read scopes. A portal switch that turns a type's writes off also
//! refuses associations touching it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mlc::vendors::hubspot::models::ObjectType;
use serde_json::{Value, json};

use super::Inner;
use super::auth::Caller;
use super::errors::{BatchAnswer, HsError};
use super::objects::answer;
use super::state::{
    AssocDef, AssocKey, Portal, assoc_defs, def_by_id, default_def, not_found, type_id,
};
use super::vendor::{batch_inputs, object_scope, object_type, parse_json, writable};

type Shared = Arc<Inner>;
type Segments = Path<HashMap<String, String>>;

fn pair(
    p: &HashMap<String, String>,
    from: &str,
    to: &str,
) -> Result<(ObjectType, ObjectType), HsError> {
    Ok((
        object_type(p.get(from).map_or("", String::as_str))?,
        object_type(p.get(to).map_or("", String::as_str))?,
    ))
}

fn require(caller: &Caller, from: ObjectType, to: ObjectType, write: bool) -> Result<(), HsError> {
    caller.require(&[object_scope(from, write), object_scope(to, false)])
}

/// An id in `{"id": "…"}` (numbers tolerated).
fn id_of(v: Option<&Value>) -> String {
    match v.and_then(|v| v.get("id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn label_of(from: ObjectType, type_id: u32) -> Value {
    def_by_id(from, type_id)
        .and_then(|d| d.label)
        .map_or(Value::Null, |l| json!(l))
}

fn types_json(from: ObjectType, types: &std::collections::BTreeSet<AssocKey>) -> Vec<Value> {
    types
        .iter()
        .map(|(category, id)| json!({"category": category, "typeId": id, "label": label_of(from, *id)}))
        .collect()
}

/// Associates one pair, answering which id is missing (`OBJECT_NOT_FOUND` with that id).
fn link(
    portal: &mut Portal,
    def: AssocDef,
    from_id: &str,
    to_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), (HsError, String)> {
    let from = from_id
        .parse::<u64>()
        .ok()
        .filter(|id| portal.object(def.from, *id).is_some())
        .ok_or_else(|| (not_found(def.from, from_id), from_id.to_string()))?;
    let to = to_id
        .parse::<u64>()
        .ok()
        .filter(|id| portal.object(def.to, *id).is_some())
        .ok_or_else(|| (not_found(def.to, to_id), to_id.to_string()))?;
    portal
        .associate(def, from, to, now)
        .map_err(|e| (e, from_id.to_string()))
}

fn labels_between(from: ObjectType, types: &std::collections::BTreeSet<AssocKey>) -> Vec<Value> {
    types
        .iter()
        .filter_map(|(_, id)| def_by_id(from, *id).and_then(|d| d.label))
        .map(|l| json!(l))
        .collect()
}

fn pair_result(portal: &Portal, from: (ObjectType, u64), to: (ObjectType, u64)) -> Value {
    json!({
        "fromObjectTypeId": type_id(from.0),
        "fromObjectId": from.1,
        "toObjectTypeId": type_id(to.0),
        "toObjectId": to.1,
        "labels": labels_between(from.0, &portal.link_types(from, to)),
    })
}

fn default_result(def: AssocDef, from: &str, to: &str) -> Value {
    json!({
        "from": {"id": from},
        "to": {"id": to},
        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": def.type_id},
    })
}

fn no_default(from: ObjectType, to: ObjectType) -> HsError {
    HsError::validation(format!(
        "There is no default association type from {} to {}",
        from.path(),
        to.path()
    ))
}

/// Checks scopes and switches, then runs `f` on the caller's portal.
fn with_portal<T>(
    inner: &Inner,
    caller: &Caller,
    (from, to): (ObjectType, ObjectType),
    write: bool,
    f: impl FnOnce(&mut Portal) -> Result<T, HsError>,
) -> Result<T, HsError> {
    require(caller, from, to, write)?;
    let mut db = inner.state();
    let portal = db.api_portal_mut(caller.portal_id)?;
    if write {
        writable(&portal.info, from)?;
        writable(&portal.info, to)?;
    }
    f(portal)
}

/// `POST /crm/v4/associations/{from}/{to}/batch/associate/default`.
pub(crate) async fn batch_default(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    answer((|| {
        let types = pair(&p, "from", "to")?;
        require(&caller, types.0, types.1, true)?;
        let body = parse_json(&body)?;
        let inputs = batch_inputs(
            &inner,
            &caller,
            "associations batch/associate/default",
            &body,
            &["inputs"],
            &["from", "to"],
        )?;
        let def = default_def(types.0, types.1).ok_or_else(|| no_default(types.0, types.1))?;
        let started = inner.now();
        with_portal(&inner, &caller, types, true, |portal| {
            let mut answer = BatchAnswer::new(started);
            for input in &inputs {
                let (from, to) = (id_of(input.get("from")), id_of(input.get("to")));
                match link(portal, def, &from, &to, started) {
                    Ok(()) => answer.ok(default_result(def, &from, &to)),
                    Err((e, id)) => answer.fail(&e, Some(&id), None),
                }
            }
            Ok(answer.respond(inner.now()))
        })
    })())
}

/// `POST /crm/v4/associations/{from}/{to}/batch/{create|read|archive}`.
pub(crate) async fn batch(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    answer((|| {
        let types = pair(&p, "from", "to")?;
        let op = p.get("op").map_or("", String::as_str);
        let fields: &[&str] = match op {
            "create" => &["from", "to", "types"],
            "read" => &["id", "after"],
            "archive" => &["from", "to"],
            _ => return Err(HsError::not_found(format!("unknown batch operation {op}"))),
        };
        let write = op != "read";
        require(&caller, types.0, types.1, write)?;
        let body = parse_json(&body)?;
        let inputs = batch_inputs(
            &inner,
            &caller,
            &format!("associations batch/{op}"),
            &body,
            &["inputs"],
            fields,
        )?;
        let started = inner.now();
        with_portal(&inner, &caller, types, write, |portal| match op {
            "create" => Ok(create(portal, types, &inputs, started).respond(inner.now())),
            "read" => Ok(read(portal, types, &inputs, started).respond(inner.now())),
            _ => {
                for input in &inputs {
                    let Ok(from) = id_of(input.get("from")).parse::<u64>() else {
                        continue;
                    };
                    let tos = input
                        .get("to")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for to in tos {
                        if let Ok(to) = id_of(Some(&to)).parse::<u64>() {
                            portal.disassociate((types.0, from), (types.1, to), started);
                        }
                    }
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        })
    })())
}

fn create(
    portal: &mut Portal,
    types: (ObjectType, ObjectType),
    inputs: &[Value],
    now: chrono::DateTime<chrono::Utc>,
) -> BatchAnswer {
    let mut answer = BatchAnswer::new(now);
    for input in inputs {
        match create_one(portal, types, input, now) {
            Ok(v) => answer.ok(v),
            Err((e, id)) => answer.fail(&e, Some(&id), None),
        }
    }
    answer
}

/// One labelled association input: every type in `types` must be a HubSpot-defined type
/// between the pair.
fn create_one(
    portal: &mut Portal,
    (from_t, to_t): (ObjectType, ObjectType),
    input: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, (HsError, String)> {
    let (from, to) = (id_of(input.get("from")), id_of(input.get("to")));
    let types = input
        .get("types")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if types.is_empty() {
        return Err((
            HsError::validation("types is required: at least one association type"),
            from,
        ));
    }
    for ty in &types {
        let id = ty
            .get("associationTypeId")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        let category = ty
            .get("associationCategory")
            .and_then(Value::as_str)
            .unwrap_or("");
        let def = def_by_id(from_t, id)
            .filter(|d| d.to == to_t && category == "HUBSPOT_DEFINED")
            .ok_or_else(|| {
                (
                    HsError::validation(format!(
                        "{category} {id} is not a valid association type from {} to {}",
                        from_t.path(),
                        to_t.path()
                    )),
                    from.clone(),
                )
            })?;
        link(portal, def, &from, &to, now)?;
    }
    let from_id = from.parse::<u64>().unwrap_or(0);
    let to_id = to.parse::<u64>().unwrap_or(0);
    Ok(pair_result(portal, (from_t, from_id), (to_t, to_id)))
}

fn read(
    portal: &Portal,
    (from_t, to_t): (ObjectType, ObjectType),
    inputs: &[Value],
    now: chrono::DateTime<chrono::Utc>,
) -> BatchAnswer {
    let mut answer = BatchAnswer::new(now);
    for input in inputs {
        let id = id_of(Some(input));
        let Some(from) = id
            .parse::<u64>()
            .ok()
            .filter(|i| portal.object(from_t, *i).is_some())
        else {
            answer.fail(&not_found(from_t, &id), Some(&id), None);
            continue;
        };
        let to: Vec<Value> = portal
            .linked(from_t, from, to_t)
            .into_iter()
            .map(|other| {
                json!({
                    "toObjectId": other,
                    "associationTypes": types_json(from_t, &portal.link_types((from_t, from), (to_t, other))),
                })
            })
            .collect();
        answer.ok(json!({"from": {"id": id}, "to": to}));
    }
    answer
}

/// `GET /crm/v4/associations/{from}/{to}/labels`.
pub(crate) async fn labels(
    State(_inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    answer((|| {
        let (from, to) = pair(&p, "from", "to")?;
        require(&caller, from, to, false)?;
        let results: Vec<Value> = assoc_defs(from, to)
            .into_iter()
            .map(|d| json!({"category": "HUBSPOT_DEFINED", "typeId": d.type_id, "label": d.label}))
            .collect();
        Ok(axum::Json(json!({"results": results})).into_response())
    })())
}

/// `PUT /crm/v4/objects/{type}/{id}/associations/default/{toType}/{toId}`.
pub(crate) async fn put_default(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    answer((|| {
        let types = pair(&p, "type", "to_type")?;
        let def = default_def(types.0, types.1).ok_or_else(|| no_default(types.0, types.1))?;
        let (from, to) = (
            p.get("id").cloned().unwrap_or_default(),
            p.get("to_id").cloned().unwrap_or_default(),
        );
        let now = inner.now();
        with_portal(&inner, &caller, types, true, |portal| {
            link(portal, def, &from, &to, now).map_err(|(e, _)| e)?;
            let mut answer = BatchAnswer::new(now);
            answer.ok(default_result(def, &from, &to));
            Ok(answer.respond(now))
        })
    })())
}

/// `PUT /crm/v4/objects/{type}/{id}/associations/{toType}/{toId}` with a body of types → 201.
pub(crate) async fn put_labelled(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    body: Bytes,
) -> Response {
    answer((|| {
        let types = pair(&p, "type", "to_type")?;
        let body = parse_json(&body)?;
        let input = json!({
            "from": {"id": p.get("id")},
            "to": {"id": p.get("to_id")},
            "types": body,
        });
        let now = inner.now();
        with_portal(&inner, &caller, types, true, |portal| {
            let created = create_one(portal, types, &input, now).map_err(|(e, _)| e)?;
            Ok((StatusCode::CREATED, axum::Json(created)).into_response())
        })
    })())
}

/// `DELETE /crm/v4/objects/{type}/{id}/associations/{toType}/{toId}` → 204.
pub(crate) async fn delete(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
) -> Response {
    answer((|| {
        let types = pair(&p, "type", "to_type")?;
        let now = inner.now();
        with_portal(&inner, &caller, types, true, |portal| {
            let from = p.get("id").and_then(|i| i.parse::<u64>().ok()).unwrap_or(0);
            let to = p
                .get("to_id")
                .and_then(|i| i.parse::<u64>().ok())
                .unwrap_or(0);
            portal.disassociate((types.0, from), (types.1, to), now);
            Ok(StatusCode::NO_CONTENT.into_response())
        })
    })())
}

/// `GET /crm/v4/objects/{type}/{id}/associations/{toType}?limit&after` (500 per page).
pub(crate) async fn list(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Segments,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    answer((|| {
        let types = pair(&p, "type", "to_type")?;
        let id = p.get("id").cloned().unwrap_or_default();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let limit = param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(500)
            .clamp(1, 500);
        let after = param("after")
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(0);
        with_portal(&inner, &caller, types, false, |portal| {
            let from = id
                .parse::<u64>()
                .ok()
                .filter(|i| portal.object(types.0, *i).is_some())
                .ok_or_else(|| not_found(types.0, &id))?;
            let all = portal.linked(types.0, from, types.1);
            let results: Vec<Value> = all
                .iter()
                .skip(after)
                .take(limit)
                .map(|other| {
                    json!({
                        "toObjectId": other,
                        "associationTypes": types_json(types.0, &portal.link_types((types.0, from), (types.1, *other))),
                    })
                })
                .collect();
            let mut body = json!({"results": results});
            if after + limit < all.len() {
                body["paging"] = json!({"next": {"after": (after + limit).to_string()}});
            }
            Ok(axum::Json(body).into_response())
        })
    })())
}
