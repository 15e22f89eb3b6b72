//! `POST …/{type}/search` (docs/vendors/hubspot.md §3.3): filter groups (ORed) of filters
//! (ANDed), one sort, `query`, `properties`, `limit` ≤ 200 and `after`, capped at 10,000
//! results (paging past it → 400). Search is eventually consistent: objects written within the
//! search lag are not found yet. Its own per-second limit is applied by the gate.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Caller;
use super::errors::HsError;
use super::objects::answer;
use super::properties::{Property, epoch_ms};
use super::state::StoredObject;
use super::vendor::{object_scope, object_type, parse_json, unknown_fields};
use super::{Inner, lock};

type Shared = Arc<Inner>;

/// Results one query can reach.
pub(crate) const MAX_RESULTS: usize = 10_000;
/// Page size cap.
const MAX_LIMIT: usize = 200;
/// Filter limits (changelog 2024-08-26: 5 groups, 25 filters; 10 per group UNCONFIRMED).
const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 10;
const MAX_FILTERS: usize = 25;

const OPERATORS: [&str; 13] = [
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
];

struct Filter {
    property: String,
    operator: String,
    value: Option<String>,
    high: Option<String>,
    values: Vec<String>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_filters(body: &Value, problems: &mut Vec<String>) -> Result<Vec<Vec<Filter>>, HsError> {
    let groups = body
        .get("filterGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if groups.len() > MAX_GROUPS {
        return Err(HsError::validation(format!(
            "Too many filter groups: {} (at most {MAX_GROUPS})",
            groups.len()
        )));
    }
    let mut total = 0;
    let mut out = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        unknown_fields(group, &["filters"], &format!("filterGroups[{g}]"), problems);
        let filters = group
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if filters.len() > MAX_FILTERS_PER_GROUP {
            return Err(HsError::validation(format!(
                "Too many filters in a group: {} (at most {MAX_FILTERS_PER_GROUP})",
                filters.len()
            )));
        }
        total += filters.len();
        let mut parsed = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            let at = format!("filterGroups[{g}].filters[{i}]");
            unknown_fields(
                f,
                &["propertyName", "operator", "value", "highValue", "values"],
                &at,
                problems,
            );
            let property = f
                .get("propertyName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let operator = f.get("operator").and_then(Value::as_str).unwrap_or("EQ");
            if property.is_empty() {
                return Err(HsError::validation(format!(
                    "{at}: propertyName is required"
                )));
            }
            if !OPERATORS.contains(&operator) {
                return Err(HsError::validation(format!(
                    "{operator} is not a valid operator: one of {}",
                    OPERATORS.join(", ")
                )));
            }
            if let Some(v) = f.get("value")
                && !v.is_string()
            {
                problems.push(format!("{at}.value: {v} is not a string"));
            }
            parsed.push(Filter {
                property: property.to_string(),
                operator: operator.to_string(),
                value: f.get("value").and_then(scalar),
                high: f.get("highValue").and_then(scalar),
                values: f
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(scalar).collect())
                    .unwrap_or_default(),
            });
        }
        out.push(parsed);
    }
    if total > MAX_FILTERS {
        return Err(HsError::validation(format!(
            "Too many filters: {total} (at most {MAX_FILTERS})"
        )));
    }
    Ok(out)
}

/// Compares a stored value with a filter value: as dates for date properties, as numbers when
/// both are, else case-insensitively as text.
fn compare(def: Option<&Property>, stored: &str, wanted: &str) -> Ordering {
    let dated = def.is_some_and(|d| d.kind == "date" || d.kind == "datetime");
    let numbers = if dated {
        epoch_ms(stored).zip(epoch_ms(wanted))
    } else {
        stored
            .trim()
            .parse::<f64>()
            .ok()
            .zip(wanted.trim().parse::<f64>().ok())
    };
    match numbers {
        Some((a, b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        None => stored.to_lowercase().cmp(&wanted.to_lowercase()),
    }
}

fn tokens(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn contains_token(stored: &str, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    if wanted.contains('*') {
        let core = wanted.trim_matches('*');
        return stored.to_lowercase().contains(core);
    }
    stored.to_lowercase() == wanted || tokens(stored).contains(&wanted)
}

fn matches(defs: &BTreeMap<String, Property>, o: &StoredObject, f: &Filter) -> bool {
    let def = defs.get(&f.property);
    let stored = o.properties.get(&f.property).filter(|v| !v.is_empty());
    let eq = |w: &str| stored.is_some_and(|s| compare(def, s, w) == Ordering::Equal);
    let cmp = |w: &Option<String>, ok: fn(Ordering) -> bool| {
        stored
            .zip(w.as_deref())
            .is_some_and(|(s, w)| ok(compare(def, s, w)))
    };
    match f.operator.as_str() {
        "HAS_PROPERTY" => stored.is_some(),
        "NOT_HAS_PROPERTY" => stored.is_none(),
        "EQ" => f.value.as_deref().is_some_and(eq),
        "NEQ" => !f.value.as_deref().is_some_and(eq),
        "LT" => cmp(&f.value, Ordering::is_lt),
        "LTE" => cmp(&f.value, Ordering::is_le),
        "GT" => cmp(&f.value, Ordering::is_gt),
        "GTE" => cmp(&f.value, Ordering::is_ge),
        "BETWEEN" => cmp(&f.value, Ordering::is_ge) && cmp(&f.high, Ordering::is_le),
        "IN" => f.values.iter().any(|v| eq(v)),
        "NOT_IN" => !f.values.iter().any(|v| eq(v)),
        "CONTAINS_TOKEN" => stored
            .zip(f.value.as_deref())
            .is_some_and(|(s, w)| contains_token(s, w)),
        "NOT_CONTAINS_TOKEN" => !stored
            .zip(f.value.as_deref())
            .is_some_and(|(s, w)| contains_token(s, w)),
        _ => false,
    }
}

/// `(property, descending)` of the first sort: `["createdate"]`, `["-createdate"]` or
/// `[{"propertyName","direction"}]`.
fn sort_of(body: &Value) -> Option<(String, bool)> {
    let first = body.get("sorts")?.as_array()?.first()?.clone();
    match first {
        Value::String(s) => Some(match s.strip_prefix('-') {
            Some(p) => (p.to_string(), true),
            None => (s, false),
        }),
        Value::Object(o) => Some((
            o.get("propertyName")?.as_str()?.to_string(),
            o.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
        )),
        _ => None,
    }
}

/// `POST …/{type}/search`.
pub(crate) async fn search(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    answer((|| {
        let t = object_type(p.get("type").map_or("", String::as_str))?;
        caller.require(&[object_scope(t, false)])?;
        let body = parse_json(&body)?;
        let mut problems = Vec::new();
        unknown_fields(
            &body,
            &[
                "filterGroups",
                "sorts",
                "properties",
                "limit",
                "after",
                "query",
            ],
            "body",
            &mut problems,
        );
        let result = run(&inner, &caller, t, &body, &mut problems);
        inner.violate(&caller.method, &caller.path, problems);
        result
    })())
}

fn run(
    inner: &Inner,
    caller: &Caller,
    t: mlc::vendors::hubspot::models::ObjectType,
    body: &Value,
    problems: &mut Vec<String>,
) -> Result<Response, HsError> {
    let limit = match body.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => v
            .as_u64()
            .map(|l| l as usize)
            .ok_or_else(|| HsError::validation("limit must be a number"))?,
    };
    if limit > MAX_LIMIT {
        problems.push(format!("limit {limit} is more than {MAX_LIMIT}"));
        return Err(HsError::validation(format!(
            "limit must be at most {MAX_LIMIT}; got {limit}"
        )));
    }
    let after = match body.get("after") {
        None | Some(Value::Null) => 0,
        Some(v) => scalar(v)
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| HsError::validation("after must be a paging cursor"))?,
    };
    if after >= MAX_RESULTS {
        return Err(HsError::validation(format!(
            "Paging past {MAX_RESULTS} results is not supported: narrow the query (e.g. by hs_lastmodifieddate) instead of paging further"
        )));
    }
    let groups = parse_filters(body, problems)?;
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let wanted: Option<Vec<String>> = body.get("properties").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    let now = inner.now();
    let lag = chrono::Duration::from_std(*lock(&inner.search_lag)).unwrap_or_default();
    let db = inner.state();
    let portal = db.api_portal(caller.portal_id)?;
    let defs = portal.property_defs(t).cloned().unwrap_or_default();
    let mut found: Vec<&StoredObject> = portal
        .objects_of(t)
        .filter(|o| o.updated_at + lag <= now)
        .filter(|o| {
            groups.is_empty()
                || groups
                    .iter()
                    .any(|g| g.iter().all(|f| matches(&defs, o, f)))
        })
        .filter(|o| {
            query
                .as_deref()
                .is_none_or(|q| o.properties.values().any(|v| v.to_lowercase().contains(q)))
        })
        .collect();
    if let Some((property, descending)) = sort_of(body) {
        let def = defs.get(&property);
        found.sort_by(|a, b| {
            let ord = match (a.properties.get(&property), b.properties.get(&property)) {
                (Some(x), Some(y)) => compare(def, x, y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
            .then(a.id.cmp(&b.id));
            if descending { ord.reverse() } else { ord }
        });
    }
    let total = found.len();
    let end = (after + limit).min(total).min(MAX_RESULTS);
    let results: Vec<Value> = found
        .get(after..end)
        .unwrap_or_default()
        .iter()
        .map(|o| portal.render(t, o, wanted.as_deref()))
        .collect();
    let mut out = json!({"total": total, "results": results});
    if end < total {
        out["paging"] = json!({"next": {"after": end.to_string()}});
    }
    Ok(axum::Json(out).into_response())
}
