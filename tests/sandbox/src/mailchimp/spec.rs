//! Request validation against Mailchimp's OpenAPI document (`tests/sandbox/specs/mailchimp.marketing.json`,
//! see `tests/sandbox/specs/README.md`), in process.
//!
//! - The document is read, parsed and registered once per process ([`spec`], a `OnceLock`).
//! - A request is matched to a path template of the document (literal segments win over
//!   `{params}`), which also gives the template the request log counts by.
//! - Its JSON body is validated against the operation's `requestBody` schema, compiled on first
//!   use and cached. The schema is reached by a `$ref` into the registered document
//!   (`urn:mailchimp:marketing#/paths/…/requestBody/content/application~1json/schema`), so any
//!   `$ref` inside resolves against the whole document; `requestBody` `$ref`s
//!   (`#/components/requestBodies/…`) are followed when building that pointer.
//! - Query parameters: required ones must be there, `boolean`/`integer` ones must parse, and
//!   parameters the operation does not declare are reported (typos would otherwise pass).
//!
//! OpenAPI 3.0 quirks and what is done about them:
//! - Schema objects are JSON Schema draft 4 plus extras, so draft 4 is used (boolean
//!   `exclusiveMinimum`, no `const`).
//! - `nullable: true` (absent from this copy, which was converted from Swagger 2.0) is rewritten
//!   to a `"null"` alternative in `type`/`enum` before registering, so a newer copy still works.
//! - `example`, `x-*`, `readOnly`, `discriminator` are not JSON Schema assertions and are ignored
//!   (no request schema used here marks a required property `readOnly`).
//! - Formats are asserted (`date-time`, `uri`); this copy's non-standard ones (`float`,
//!   `swagger`, `Promo date-time`) are ignored.
//! - A property whose own description says it is "required only if …" (the member upsert's
//!   `email_address` and `status_if_new`: only for an address not yet on the list) is dropped
//!   from `required`: the schema cannot express the condition, and the sandbox must be no
//!   stricter than Mailchimp. The state enforces the condition instead.
//! - Boolean query values are read case-insensitively: the official Python SDK sends `True`
//!   (Python's rendering of a bool), which Mailchimp accepts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Draft, Registry, Validator};
use serde::Serialize;
use serde_json::{Value, json};

/// The vendored document, found through the crate's source directory (a checkout: tests,
/// `cargo run` and CI all build from one).
pub const SPEC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/specs/mailchimp.marketing.json"
);

/// Overrides [`SPEC_PATH`], for a binary run away from its checkout.
pub const SPEC_PATH_ENV: &str = "MLC_SANDBOX_MAILCHIMP_SPEC";

/// The URI the document is registered under.
const BASE_URI: &str = "urn:mailchimp:marketing";

/// One field-level problem, in the shape of Mailchimp's `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What validation says about one request.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The matched path template (`/lists/{list_id}/members/{subscriber_hash}`), if any.
    pub template: Option<String>,
    /// Path parameters by name, percent-decoded.
    pub params: BTreeMap<String, String>,
    /// Whether the template has this method.
    pub method_known: bool,
    /// The parsed body, when there was one and it was JSON.
    pub body: Option<Value>,
    /// Problems; empty when the request is valid.
    pub errors: Vec<FieldError>,
}

struct QueryParam {
    name: String,
    required: bool,
    kind: String,
}

struct Operation {
    /// JSON pointer (unescaped form for the fragment) to the body schema, and whether a body
    /// is required.
    body: Option<(String, bool)>,
    query: Vec<QueryParam>,
}

struct Route {
    template: String,
    /// `None` for a `{param}` segment (with its name in `names`).
    segments: Vec<Option<String>>,
    names: Vec<String>,
    ops: HashMap<String, Operation>,
}

/// The loaded document: routes and the schema registry.
pub struct Spec {
    registry: Registry<'static>,
    routes: Vec<Route>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The process-wide spec, loaded on first use. An error (missing file) is returned to every
/// caller.
pub fn spec() -> Result<&'static Spec, String> {
    static SPEC: OnceLock<Result<Spec, String>> = OnceLock::new();
    SPEC.get_or_init(|| match std::env::var(SPEC_PATH_ENV) {
        Ok(path) if !path.is_empty() => Spec::load(&path),
        _ => Spec::load(SPEC_PATH),
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Percent-encodes what a URI fragment cannot hold as is.
fn fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for c in pointer.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '/' | '~' | '-' | '_' | '.' => out.push(c),
            other => {
                let mut buf = [0u8; 4];
                for b in other.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// Rewrites OpenAPI 3.0 `nullable: true` into draft-4 terms, everywhere in the document.
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(options)) = map.get_mut("enum")
                    && !options.contains(&Value::Null)
                {
                    options.push(Value::Null);
                }
            }
            map.values_mut().for_each(rewrite_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

/// Drops from `required` every property whose description makes it conditional ("required only
/// if …"), everywhere in the document.
fn relax_conditionally_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let conditional: Vec<String> = map
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .filter(|(_, p)| {
                            p.get("description")
                                .and_then(Value::as_str)
                                .is_some_and(|d| {
                                    d.to_ascii_lowercase().contains("required only if")
                                })
                        })
                        .map(|(name, _)| name.clone())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Array(required)) = map.get_mut("required") {
                required.retain(|r| {
                    r.as_str()
                        .is_none_or(|r| !conditional.iter().any(|c| c == r))
                });
            }
            map.values_mut().for_each(relax_conditionally_required);
        }
        Value::Array(items) => items.iter_mut().for_each(relax_conditionally_required),
        _ => {}
    }
}

/// A boolean query value as Mailchimp reads it: `true`/`false` in any case (the Python SDK
/// sends `True`).
pub fn query_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl Spec {
    /// Reads and prepares the document at `path`.
    pub fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
        let mut doc: Value =
            serde_json::from_str(&text).map_err(|e| format!("parsing {path}: {e}"))?;
        rewrite_nullable(&mut doc);
        relax_conditionally_required(&mut doc);
        let routes = routes(&doc);
        let registry = Registry::new()
            .draft(Draft::Draft4)
            .add(BASE_URI, doc)
            .and_then(|b| b.prepare())
            .map_err(|e| format!("registering {path}: {e}"))?;
        Ok(Self {
            registry,
            routes,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// Every operation of the document as `(METHOD, template)`, sorted.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops: Vec<(String, String)> = self
            .routes
            .iter()
            .flat_map(|r| {
                r.ops
                    .keys()
                    .map(|m| (m.to_ascii_uppercase(), r.template.clone()))
            })
            .collect();
        ops.sort();
        ops
    }

    /// Matches `path` (relative to `/3.0`, e.g. `/lists/abc/members/0cba…`) to a template.
    fn route(&self, path: &str) -> Option<(&Route, BTreeMap<String, String>)> {
        let parts: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let mut best: Option<(&Route, usize)> = None;
        for route in &self.routes {
            if route.segments.len() != parts.len() {
                continue;
            }
            let mut literal = 0;
            let fits = route
                .segments
                .iter()
                .zip(&parts)
                .all(|(seg, part)| match seg {
                    Some(lit) => {
                        literal += 1;
                        lit == part
                    }
                    None => !part.is_empty(),
                });
            if fits && best.is_none_or(|(_, n)| literal > n) {
                best = Some((route, literal));
            }
        }
        let (route, _) = best?;
        let params = route
            .segments
            .iter()
            .zip(&parts)
            .filter(|(seg, _)| seg.is_none())
            .map(|(_, part)| part.clone())
            .zip(&route.names)
            .map(|(value, name)| (name.clone(), value))
            .collect();
        Some((route, params))
    }

    /// Validates one request: method, path relative to `/3.0`, decoded query pairs, raw body.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Checked {
        let mut checked = Checked::default();
        let Some((route, params)) = self.route(path) else {
            checked.errors.push(FieldError {
                field: String::new(),
                message: format!("no path in the spec matches {path}"),
            });
            return checked;
        };
        checked.template = Some(route.template.clone());
        checked.params = params;
        let Some(op) = route.ops.get(&method.to_ascii_lowercase()) else {
            checked.errors.push(FieldError {
                field: String::new(),
                message: format!("{} has no {method} operation in the spec", route.template),
            });
            return checked;
        };
        checked.method_known = true;
        for (name, value) in query {
            match op.query.iter().find(|q| &q.name == name) {
                None => checked.errors.push(FieldError {
                    field: name.clone(),
                    message: "query parameter not defined for this operation".into(),
                }),
                Some(q) => {
                    let ok = match q.kind.as_str() {
                        "boolean" => query_bool(value).is_some(),
                        "integer" => value.parse::<i64>().is_ok(),
                        _ => true,
                    };
                    if !ok {
                        checked.errors.push(FieldError {
                            field: name.clone(),
                            message: format!("query parameter must be {}", q.kind),
                        });
                    }
                }
            }
        }
        for q in op.query.iter().filter(|q| q.required) {
            if !query.iter().any(|(n, _)| n == &q.name) {
                checked.errors.push(FieldError {
                    field: q.name.clone(),
                    message: "required query parameter missing".into(),
                });
            }
        }
        let has_body = !body.iter().all(u8::is_ascii_whitespace);
        if has_body {
            match serde_json::from_slice::<Value>(body) {
                Ok(v) => checked.body = Some(v),
                Err(e) => {
                    checked.errors.push(FieldError {
                        field: String::new(),
                        message: format!("body is not JSON: {e}"),
                    });
                    return checked;
                }
            }
        }
        match (&op.body, &checked.body) {
            (Some((_, true)), None) => checked.errors.push(FieldError {
                field: String::new(),
                message: "a JSON request body is required".into(),
            }),
            (Some((pointer, _)), Some(body)) => match self.validator(pointer) {
                Ok(validator) => {
                    for e in validator.iter_errors(body) {
                        let location = e.instance_path().as_str().trim_start_matches('/');
                        checked.errors.push(FieldError {
                            field: location.replace('/', "."),
                            message: e.to_string(),
                        });
                    }
                }
                Err(message) => checked.errors.push(FieldError {
                    field: String::new(),
                    message,
                }),
            },
            (None, Some(_)) => checked.errors.push(FieldError {
                field: String::new(),
                message: "this operation takes no request body".into(),
            }),
            (None, None) | (Some((_, false)), None) => {}
        }
        checked
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        let mut cache = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        let schema = json!({ "$ref": format!("{BASE_URI}#{}", fragment(pointer)) });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft4)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("compiling the schema at {pointer}: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_string(), validator.clone());
        Ok(validator)
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The routes of the document's `paths`.
fn routes(doc: &Value) -> Vec<Route> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for (template, item) in paths {
        let mut segments = Vec::new();
        let mut names = Vec::new();
        for seg in template.trim_matches('/').split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                segments.push(None);
                names.push(name.to_string());
            } else {
                segments.push(Some(seg.to_string()));
            }
        }
        let mut ops = HashMap::new();
        for method in ["get", "put", "post", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let body = op.get("requestBody").map(|rb| {
                let (base, rb) = match rb.get("$ref").and_then(Value::as_str) {
                    Some(r) => (
                        r.trim_start_matches('#').to_string(),
                        doc.pointer(r.trim_start_matches('#'))
                            .unwrap_or(&Value::Null),
                    ),
                    None => (
                        format!("/paths/{}/{method}/requestBody", escape_pointer(template)),
                        rb,
                    ),
                };
                let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                (format!("{base}/content/application~1json/schema"), required)
            });
            let query = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                .filter_map(|p| {
                    Some(QueryParam {
                        name: p.get("name")?.as_str()?.to_string(),
                        required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        kind: p
                            .pointer("/schema/type")
                            .and_then(Value::as_str)
                            .unwrap_or("string")
                            .to_string(),
                    })
                })
                .collect();
            ops.insert(method.to_string(), Operation { body, query });
        }
        routes.push(Route {
            template: template.clone(),
            segments,
            names,
            ops,
        });
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn member_put_is_checked() {
        let spec = spec().unwrap();
        let path = "/lists/abc/members/0cba00ca3da1b283a57287bcceb17e35";
        let ok = spec.check(
            "PUT",
            path,
            &q(&[("skip_merge_validation", "true")]),
            br#"{"email_address":"a@b.c","status_if_new":"transactional","merge_fields":{"FNAME":"A"}}"#,
        );
        assert_eq!(ok.errors, vec![], "{ok:?}");
        assert_eq!(
            ok.template.as_deref(),
            Some("/lists/{list_id}/members/{subscriber_hash}")
        );
        assert_eq!(ok.params["list_id"], "abc");
        let bad = spec.check(
            "PUT",
            path,
            &q(&[("skip_merge_validation", "yes"), ("cuont", "1")]),
            br#"{"email_address":"a@b.c","status_if_new":"bogus"}"#,
        );
        assert_eq!(bad.errors.len(), 3, "{:?}", bad.errors);
        assert!(bad.errors.iter().any(|e| e.field == "status_if_new"));
        // Required only for a new address (the state decides), so not by the schema.
        let update = spec.check("PUT", path, &[], br#"{"merge_fields":{"FNAME":"B"}}"#);
        assert_eq!(update.errors, vec![], "{update:?}");
        // The Python SDK's rendering of a bool.
        for value in ["True", "False", "TRUE", "false"] {
            let c = spec.check(
                "PUT",
                path,
                &q(&[("skip_merge_validation", value)]),
                br#"{"email_address":"a@b.c"}"#,
            );
            assert_eq!(c.errors, vec![], "{value}: {c:?}");
        }
    }

    #[test]
    fn only_conditionally_required_properties_are_relaxed() {
        let mut v = json!({"required": ["a", "b"], "properties": {
            "a": {"description": "This value is required only if the email address is not already present on the list."},
            "b": {"description": "Always needed."}}});
        relax_conditionally_required(&mut v);
        assert_eq!(v["required"], json!(["b"]));
    }

    #[test]
    fn literal_segments_win_and_ref_bodies_resolve() {
        let spec = spec().unwrap();
        let c = spec.check(
            "GET",
            "/lists/abc/merge-fields",
            &q(&[("count", "1000")]),
            b"",
        );
        assert_eq!(c.template.as_deref(), Some("/lists/{list_id}/merge-fields"));
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        // The variant PUT's requestBody is a `$ref` to components/requestBodies.
        let path = "/ecommerce/stores/s1/products/p1/variants/v1";
        let ok = spec.check("PUT", path, &[], br#"{"id":"v1","title":"V"}"#);
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
        let bad = spec.check("PUT", path, &[], br#"{"id":"v1"}"#);
        assert_eq!(bad.errors.len(), 1, "{:?}", bad.errors);
        let order = spec.check(
            "POST",
            "/ecommerce/stores/s1/orders",
            &[],
            br#"{"id":"o1","customer":{"id":"c1"},"currency_code":"USD","order_total":1,
                "processed_at_foreign":"not a date",
                "lines":[{"id":"l1","product_id":"p","product_variant_id":"p","quantity":1.5,"price":1}]}"#,
        );
        let mut fields: Vec<_> = order.errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["lines.0.quantity", "processed_at_foreign"],
            "{:?}",
            order.errors
        );
        assert!(!spec.check("GET", "/nope", &[], b"").errors.is_empty());
        assert!(!spec.check("PUT", "/ping", &[], b"").errors.is_empty());
    }

    #[test]
    fn nullable_becomes_a_null_alternative() {
        let mut v = json!({"a": {"type": "string", "nullable": true, "enum": ["x"]}});
        rewrite_nullable(&mut v);
        assert_eq!(v["a"]["type"], json!(["string", "null"]));
        assert_eq!(v["a"]["enum"], json!(["x", null]));
    }
}
