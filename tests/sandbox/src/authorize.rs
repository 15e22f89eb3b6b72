//! The OAuth authorize page the stateful sandboxes serve in place of the vendor's consent
//! screen: it approves at once. A wrong `client_id` or `redirect_uri` gets an error page, never a
//! redirect (an unregistered URI must not receive anything); otherwise 302 to
//! `redirect_uri?code=…[&realmId=…]&state=…`, or with `error=unsupported_response_type` /
//! `error=access_denied` (`deny=1`).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A query parameter's first value.
pub(crate) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A token endpoint's OAuth error: `{"error", "error_description"}` with `status`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// A plain-text page (the sandbox's stand-in for the vendor's error screens).
pub(crate) fn page(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// Checks the request against the app (`client_id`, the registered redirect URI) and answers
/// it. `approve` gets the redirect URI and returns the pairs to add to it (the code, and e.g.
/// `realmId`), or why the sandbox cannot approve (a 400 page).
pub(crate) fn respond(
    params: &[(String, String)],
    client_id: &str,
    registered_redirect_uri: &str,
    approve: impl FnOnce(&str) -> Result<Vec<(&'static str, String)>, String>,
) -> Response {
    if param(params, "client_id") != Some(client_id) {
        return page(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let Some(redirect_uri) =
        param(params, "redirect_uri").filter(|u| *u == registered_redirect_uri)
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "redirect_uri does not match the app's registered redirect URI",
        );
    };
    let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "redirect_uri is not a URL");
    };
    let pairs = if param(params, "response_type") != Some("code") {
        vec![("error", "unsupported_response_type".to_string())]
    } else if param(params, "deny").is_some() {
        vec![("error", "access_denied".to_string())]
    } else {
        match approve(redirect_uri) {
            Ok(pairs) => pairs,
            Err(why) => return page(StatusCode::BAD_REQUEST, &why),
        }
    };
    {
        let mut q = target.query_pairs_mut();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(state) = param(params, "state") {
            q.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}
