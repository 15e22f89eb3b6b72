//! HubSpot's error bodies, rendered in one place so every route (and every injected fault)
//! answers in the same shape (docs/vendors/hubspot.md §4.3): `{"status":"error","message",
//! "correlationId","category",…}`, plus the batch answer every `batch/*` route shares.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Where HubSpot points callers missing a scope.
const SCOPES_LINK: &str = "https://developers.hubspot.com/scopes";

/// A failed call (or, inside a batch, a failed input) in HubSpot's error shape.
#[derive(Debug, Clone)]
pub(crate) struct HsError {
    pub(crate) status: StatusCode,
    pub(crate) category: &'static str,
    pub(crate) message: String,
    /// `errors[]` (field-level details), omitted when empty.
    pub(crate) errors: Vec<Value>,
    /// Extra top-level fields (`links`, `policyName`, `errorType`…). Boxed: an error travels
    /// in every handler's `Result`, and a map inline would make each of them large.
    pub(crate) extra: Box<Map<String, Value>>,
}

impl HsError {
    pub(crate) fn new(
        status: StatusCode,
        category: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            category,
            message: message.into(),
            errors: Vec::new(),
            extra: Box::default(),
        }
    }

    /// 400 `VALIDATION_ERROR`.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// 404 `OBJECT_NOT_FOUND`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
    }

    /// 409 `CONFLICT`.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 403 `FORBIDDEN` (a portal switch: invoice writes, payment processing).
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    /// 401 `EXPIRED_AUTHENTICATION`: an OAuth token that expired `ago_secs` ago.
    pub(crate) fn expired(ago_secs: i64) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "EXPIRED_AUTHENTICATION",
            format!("The OAuth token used to make this call expired {ago_secs} second(s) ago."),
        )
    }

    /// 401: an unknown or revoked token (`INVALID_AUTHENTICATION`), or an expired OAuth token.
    pub(crate) fn unauthenticated(expired: bool) -> Self {
        if expired {
            Self::expired(0)
        } else {
            Self::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        }
    }

    /// 403 `MISSING_SCOPES` naming the scopes the call needs.
    pub(crate) fn missing_scopes(required: &[String]) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
        );
        e.errors.push(json!({
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": required},
        }));
        e.extra
            .insert("links".into(), json!({"scopes": SCOPES_LINK}));
        e
    }

    /// 429 of a rate-limit policy (the body carries `errorType`/`policyName`, no `category`).
    pub(crate) fn rate_limited(policy: Policy) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITS",
            policy.message(),
        );
        e.extra.insert("errorType".into(), json!("RATE_LIMIT"));
        if let Some(name) = policy.policy_name() {
            e.extra.insert("policyName".into(), json!(name));
        }
        e
    }

    /// `Property values were not valid: …` with one `errors[]` entry per bad property.
    pub(crate) fn invalid_properties(details: Vec<PropertyProblem>) -> Self {
        let summary: Vec<Value> = details
            .iter()
            .map(|d| {
                json!({"isValid": false, "message": d.message, "error": d.code, "name": d.name})
            })
            .collect();
        let mut e = Self::validation(format!(
            "Property values were not valid: {}",
            Value::Array(summary)
        ));
        e.errors = details
            .into_iter()
            .map(|d| {
                json!({"message": d.message, "code": d.code, "context": {"propertyName": [d.name]}})
            })
            .collect();
        e
    }

    /// The full body with a fresh `correlationId`.
    pub(crate) fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), json!("error"));
        body.insert("message".into(), json!(self.message));
        body.insert("correlationId".into(), json!(correlation_id()));
        // Rate-limit bodies name their policy instead of a category (§4.2).
        if self.status != StatusCode::TOO_MANY_REQUESTS {
            body.insert("category".into(), json!(self.category));
        }
        if !self.errors.is_empty() {
            body.insert("errors".into(), json!(self.errors));
        }
        for (k, v) in self.extra.iter() {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }

    /// The entry of a 207's `errors[]` for one failed input.
    pub(crate) fn item(&self, id: Option<&str>, trace: Option<&str>) -> Value {
        let mut context = Map::new();
        if let Some(id) = id {
            context.insert("ids".into(), json!([id]));
        }
        if let Some(trace) = trace {
            context.insert("objectWriteTraceId".into(), json!([trace]));
        }
        let mut item = json!({
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": context,
        });
        if !self.errors.is_empty() {
            item["errors"] = json!(self.errors);
        }
        item
    }
}

impl IntoResponse for HsError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// A property that failed validation on a write.
#[derive(Debug, Clone)]
pub(crate) struct PropertyProblem {
    pub(crate) name: String,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// HubSpot's rate-limit policies (docs/vendors/hubspot.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Policy {
    /// The rolling 10-second burst limit per app and portal.
    TenSecondlyRolling,
    /// The search API's own per-second limit (no `policyName` in its body).
    Secondly,
    /// The portal's daily quota.
    Daily,
}

impl Policy {
    fn message(self) -> &'static str {
        match self {
            Policy::TenSecondlyRolling => "You have reached your ten_secondly_rolling limit.",
            Policy::Secondly => "You have reached your secondly limit.",
            Policy::Daily => "You have reached your daily limit.",
        }
    }

    /// `policyName` (the search limit's body has none: UNCONFIRMED, clients match its message).
    pub(crate) fn policy_name(self) -> Option<&'static str> {
        match self {
            Policy::TenSecondlyRolling => Some("TEN_SECONDLY_ROLLING"),
            Policy::Secondly => None,
            Policy::Daily => Some("DAILY"),
        }
    }

    /// The counter key in the stats.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Policy::TenSecondlyRolling => "TEN_SECONDLY_ROLLING",
            Policy::Secondly => "SECONDLY",
            Policy::Daily => "DAILY",
        }
    }
}

/// A fresh correlation id (HubSpot's are UUIDs).
pub(crate) fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// HubSpot's timestamp format: RFC 3339, milliseconds, `Z`.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The answer of every `batch/*` route: 200 `{"status":"COMPLETE","results","startedAt",
/// "completedAt"}`, or 207 with `numErrors` and `errors[]` when an input failed.
///
/// Results come back in **reverse input order**: HubSpot does not promise input order
/// (UNCONFIRMED how it actually orders them), so a client that relies on order fails here.
pub(crate) struct BatchAnswer {
    started_at: DateTime<Utc>,
    results: Vec<Value>,
    errors: Vec<Value>,
}

impl BatchAnswer {
    pub(crate) fn new(started_at: DateTime<Utc>) -> Self {
        Self {
            started_at,
            results: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub(crate) fn ok(&mut self, result: Value) {
        self.results.push(result);
    }

    /// A failed input, keyed by its id (or `idProperty` value) and trace id.
    pub(crate) fn fail(&mut self, error: &HsError, id: Option<&str>, trace: Option<&str>) {
        self.errors.push(error.item(id, trace));
    }

    pub(crate) fn respond(mut self, completed_at: DateTime<Utc>) -> Response {
        self.results.reverse();
        let mut body = json!({
            "status": "COMPLETE",
            "results": self.results,
            "startedAt": timestamp(self.started_at),
            "completedAt": timestamp(completed_at),
        });
        if self.errors.is_empty() {
            return (StatusCode::OK, axum::Json(body)).into_response();
        }
        body["numErrors"] = json!(self.errors.len());
        body["errors"] = json!(self.errors);
        (StatusCode::MULTI_STATUS, axum::Json(body)).into_response()
    }
}
