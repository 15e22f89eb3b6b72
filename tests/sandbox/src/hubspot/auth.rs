//! Tokens and identity: Bearer authentication of every API route (private-app tokens, service
//! keys, OAuth access tokens), scope checks, the OAuth token endpoint and authorize page, and
//! the account and token-introspection routes (docs/vendors/hubspot.md §1).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Offset, Utc};
use serde_json::{Value, json};

use super::errors::{HsError, correlation_id, timestamp};
use super::limits::next_midnight;
use super::state::{Code, Grant, State as Db, Token, TokenKind};
use super::{HubspotSandboxOptions, Inner, OAuthTokens};
use crate::authorize::{page, param};

type Shared = Arc<Inner>;

/// Who is calling: the token's portal, app and scopes (request extension set by the gate).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) token: String,
    pub(crate) kind: TokenKind,
    pub(crate) portal_id: u64,
    pub(crate) app_id: u64,
    pub(crate) scopes: BTreeSet<String>,
    pub(crate) method: String,
    pub(crate) path: String,
}

impl Caller {
    /// 403 `MISSING_SCOPES` unless the token holds every scope in `required`.
    pub(crate) fn require(&self, required: &[String]) -> Result<(), HsError> {
        if required.iter().all(|s| self.scopes.contains(s)) {
            Ok(())
        } else {
            Err(HsError::missing_scopes(required))
        }
    }
}

/// The caller behind `Authorization: Bearer …`, or the 401 to answer.
pub(crate) fn authenticate(
    inner: &Inner,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<Caller, HsError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| HsError::unauthenticated(false))?;
    let now = inner.now();
    let state = inner.state();
    let t = state
        .tokens
        .get(token)
        .ok_or_else(|| HsError::unauthenticated(false))?;
    if let Some(at) = t.expires_at.filter(|at| *at <= now) {
        return Err(HsError::expired((now - at).num_seconds()));
    }
    Ok(Caller {
        token: token.to_string(),
        kind: t.kind,
        portal_id: t.portal_id,
        app_id: t.app_id,
        scopes: t.scopes.clone(),
        method: method.to_string(),
        path: path.to_string(),
    })
}

/// A single-use authorization code.
pub(crate) fn mint_code(
    db: &mut Db,
    portal_id: u64,
    scopes: BTreeSet<String>,
    redirect_uri: Option<String>,
) -> String {
    let code = uuid::Uuid::new_v4().to_string();
    db.codes.insert(
        code.clone(),
        Code {
            grant: Grant {
                portal_id,
                scopes,
                user_id: 9_100_001,
            },
            redirect_uri,
        },
    );
    code
}

/// A new access token for a grant and a refresh token for it.
pub(crate) fn mint_pair(
    db: &mut Db,
    options: &HubspotSandboxOptions,
    grant: Grant,
    now: DateTime<Utc>,
) -> OAuthTokens {
    let refresh_token = format!("na1-{}", uuid::Uuid::new_v4());
    let tokens = mint_access(db, options, &grant, refresh_token.clone(), now);
    db.refresh_tokens.insert(refresh_token, grant);
    tokens
}

fn mint_access(
    db: &mut Db,
    options: &HubspotSandboxOptions,
    grant: &Grant,
    refresh_token: String,
    now: DateTime<Utc>,
) -> OAuthTokens {
    let access_token = format!("oat-na1-{}", uuid::Uuid::new_v4());
    db.tokens.insert(
        access_token.clone(),
        Token {
            kind: TokenKind::OAuth,
            portal_id: grant.portal_id,
            app_id: options.oauth_app_id,
            user_id: grant.user_id,
            scopes: grant.scopes.clone(),
            expires_at: Some(now + options.access_token_lifetime),
        },
    );
    OAuthTokens {
        access_token,
        refresh_token,
        expires_in: options.access_token_lifetime.num_seconds(),
    }
}

/// The token endpoint's error: `{"status":"BAD_…","message","correlationId"}` with 400.
fn oauth_error(status: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"status": status, "message": message, "correlationId": correlation_id()}),
        ),
    )
        .into_response()
}

/// `POST /oauth/v1/token` (form): `authorization_code` or `refresh_token` grants.
pub(crate) async fn token(State(inner): State<Shared>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let o = &inner.options;
    if param(&form, "client_id") != Some(o.client_id.as_str()) {
        return oauth_error("BAD_CLIENT_ID", "missing or unknown client id");
    }
    if param(&form, "client_secret") != Some(o.client_secret.as_str()) {
        return oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret");
    }
    let now = inner.now();
    let mut db = inner.state();
    let tokens = match param(&form, "grant_type") {
        Some("authorization_code") => {
            let Some(code) = param(&form, "code").and_then(|c| db.codes.get(c)).cloned() else {
                return oauth_error("BAD_AUTH_CODE", "missing or unknown auth code");
            };
            let redirect = param(&form, "redirect_uri");
            if redirect.is_none()
                || code
                    .redirect_uri
                    .as_deref()
                    .is_some_and(|r| Some(r) != redirect)
            {
                return oauth_error(
                    "BAD_REDIRECT_URI",
                    "redirect_uri does not match the one the code was issued for",
                );
            }
            if let Some(c) = param(&form, "code") {
                db.codes.remove(c);
            }
            mint_pair(&mut db, o, code.grant, now)
        }
        Some("refresh_token") => {
            let Some(refresh) = param(&form, "refresh_token") else {
                return oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token");
            };
            let Some(grant) = db.refresh_tokens.get(refresh).cloned() else {
                return oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token");
            };
            // HubSpot's refresh tokens do not rotate.
            mint_access(&mut db, o, &grant, refresh.to_string(), now)
        }
        _ => {
            return oauth_error(
                "BAD_GRANT_TYPE",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    axum::Json(json!({
        "token_type": "bearer",
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
    }))
    .into_response()
}

/// `GET /oauth/authorize?client_id&redirect_uri&scope&optional_scope&state[&portal_id]`:
/// approves at once and redirects to `redirect_uri?code=…&state=…` (`deny=1` →
/// `error=access_denied`). HubSpot's install URL has no `response_type`; `portal_id` (a
/// sandbox-only parameter) picks the portal, else the only one.
pub(crate) async fn authorize(
    State(inner): State<Shared>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let o = &inner.options;
    if param(&params, "client_id") != Some(o.client_id.as_str()) {
        return page(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let Some(redirect_uri) = param(&params, "redirect_uri").filter(|u| *u == o.redirect_uri) else {
        return page(
            StatusCode::BAD_REQUEST,
            "redirect_uri does not match the app's registered redirect URI",
        );
    };
    let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "redirect_uri is not a URL");
    };
    let scopes: BTreeSet<String> = ["scope", "optional_scope"]
        .iter()
        .filter_map(|k| param(&params, k))
        .flat_map(|s| s.split([' ', '+', ',']))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let pair = if param(&params, "deny").is_some() {
        ("error", "access_denied".to_string())
    } else {
        let mut db = inner.state();
        let portal = match param(&params, "portal_id") {
            Some(p) => p.parse::<u64>().ok().filter(|p| db.portals.contains_key(p)),
            None if db.portals.len() == 1 => db.portals.keys().next().copied(),
            None => None,
        };
        let Some(portal) = portal else {
            return page(
                StatusCode::BAD_REQUEST,
                "which portal installs the app? pass portal_id (the sandbox has several or none)",
            );
        };
        (
            "code",
            mint_code(&mut db, portal, scopes, Some(redirect_uri.to_string())),
        )
    };
    {
        let mut q = target.query_pairs_mut();
        q.append_pair(pair.0, &pair.1);
        if let Some(state) = param(&params, "state") {
            q.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// `GET /account-info/v3/details` (no scope checked: HubSpot's spec names `oauth`, which
/// private apps do not list).
pub(crate) async fn details(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let now = inner.now();
    let db = inner.state();
    let Ok(portal) = db.portal(caller.portal_id) else {
        return HsError::unauthenticated(false).into_response();
    };
    let offset = portal
        .tz
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
        .local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.abs();
    axum::Json(json!({
        "portalId": portal.info.portal_id,
        "accountType": "STANDARD",
        "timeZone": portal.info.time_zone,
        "companyCurrency": portal.info.currency,
        "additionalCurrencies": [],
        "utcOffset": format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60),
        "utcOffsetMilliseconds": i64::from(offset) * 1000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    }))
    .into_response()
}

use chrono::TimeZone as _;

/// `POST /oauth/v2/private-apps/get/access-token-info` `{"tokenKey"}`: private-app tokens and
/// service keys; an OAuth token → 400, an unknown one → 401.
pub(crate) async fn access_token_info(State(inner): State<Shared>, body: Bytes) -> Response {
    let key = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("tokenKey")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let Some(key) = key else {
        return HsError::validation("Invalid input JSON: tokenKey is required").into_response();
    };
    let db = inner.state();
    match db.tokens.get(&key) {
        None => HsError::unauthenticated(false).into_response(),
        Some(t) if t.kind == TokenKind::OAuth => HsError::validation(
            "The token is not a private app access token; use /oauth/v1/access-tokens/{token}",
        )
        .into_response(),
        Some(t) => axum::Json(json!({
            "userId": t.user_id,
            "hubId": t.portal_id,
            "appId": t.app_id,
            "scopes": t.scopes,
        }))
        .into_response(),
    }
}

/// `GET /oauth/v1/access-tokens/{token}`: an OAuth access token's metadata.
pub(crate) async fn access_token_meta(
    State(inner): State<Shared>,
    Path(token): Path<String>,
) -> Response {
    let now = inner.now();
    let db = inner.state();
    match db.tokens.get(&token) {
        None => HsError::unauthenticated(false).into_response(),
        Some(t) if t.kind != TokenKind::OAuth => {
            HsError::validation("The token is not an OAuth access token").into_response()
        }
        Some(t) => {
            let Some(expires_at) = t.expires_at.filter(|at| *at > now) else {
                return HsError::unauthenticated(true).into_response();
            };
            axum::Json(json!({
                "token": token,
                "user": format!("user{}@example.com", t.user_id),
                "hub_domain": format!("portal-{}.hubspot.com", t.portal_id),
                "scopes": t.scopes,
                "hub_id": t.portal_id,
                "app_id": t.app_id,
                "expires_in": (expires_at - now).num_seconds(),
                "user_id": t.user_id,
                "token_type": "access",
            }))
            .into_response()
        }
    }
}

/// `GET /account-info/v3/api-usage/daily/private-apps`: the portal's daily usage.
pub(crate) async fn daily_usage(
    State(inner): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let now = inner.now();
    let mut db = inner.state();
    let Ok(portal) = db.portal_mut(caller.portal_id) else {
        return HsError::unauthenticated(false).into_response();
    };
    let used = super::limits::roll_day(portal, now);
    axum::Json(json!({"results": [{
        "name": "private-apps-api-calls-daily",
        "usageLimit": portal.info.daily_limit,
        "currentUsage": used,
        "collectedAt": timestamp(now),
        "resetsAt": timestamp(next_midnight(portal.tz, now)),
        "fetchStatus": "SUCCESS",
    }]}))
    .into_response()
}
