//! The OAuth authorization-code flow's redirect: either a one-shot HTTP listener on a loopback
//! address (`http://127.0.0.1:<port>/callback`) that waits for the vendor's redirect, or — for
//! an app whose registered redirect URI is elsewhere (FreshBooks wants https) — the address the
//! browser landed on, pasted back. Either way `state` is checked before the code is used.
//! Vendor specifics (authorize URL, token exchange, extra redirect parameters such as
//! QuickBooks' `realmId`) sit behind [`OAuthProvider`]: one flow, FreshBooks and QuickBooks.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// Longest request head the listener reads; a redirect is a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

/// One vendor's authorization-code grant.
pub(crate) trait OAuthProvider {
    /// What the token endpoint gives back.
    type Tokens;

    /// The vendor's display name.
    fn vendor(&self) -> &'static str;

    /// Where the user approves the app; must carry `state` and `redirect_uri`.
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> anyhow::Result<Url>;

    /// Redirect parameters besides `code` and `state` the flow cannot do without (QuickBooks:
    /// `realmId`, the company). Checked before the code is spent.
    fn required_params(&self) -> &'static [&'static str] {
        &[]
    }

    /// Trades the code for the first token pair.
    async fn exchange(
        &self,
        code: &SecretString,
        redirect_uri: &str,
    ) -> anyhow::Result<Self::Tokens>;
}

/// An approval: the code, and the redirect's other parameters (not secret; e.g. `realmId`).
pub(crate) struct Approval {
    pub code: SecretString,
    pub params: BTreeMap<String, String>,
}

impl Approval {
    /// From a redirect's query pairs (already checked for `state`); `None` without a `code`.
    fn from_query<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Option<Self> {
        let mut code = None;
        let mut params = BTreeMap::new();
        for (k, v) in pairs {
            match k.as_ref() {
                "code" => code = Some(v.into_owned()).filter(|c| !c.is_empty()),
                "state" => {}
                _ => {
                    params.insert(k.into_owned(), v.into_owned());
                }
            }
        }
        code.map(|code| Self {
            code: SecretString::from(code),
            params,
        })
    }

    /// A redirect parameter other than `code`/`state`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// What came back on the redirect.
pub(crate) enum Redirect {
    Code(Approval),
    /// The user declined, or the vendor refused (`error`, `error_description`).
    Denied(String),
}

/// How the redirect comes back.
pub(crate) enum Return {
    /// Listen on this loopback listener for a GET of `path`.
    Listen { listener: TcpListener, path: String },
    /// Read the address the browser was sent to from the prompt / the next line of stdin.
    Paste,
}

/// Whether `redirect_uri` can be listened on here: `http` on 127.0.0.1 / localhost with an
/// explicit port. Returns (port, path).
pub(crate) fn loopback(redirect_uri: &Url) -> Option<(u16, String)> {
    let local = matches!(redirect_uri.host_str(), Some("127.0.0.1" | "localhost"));
    (redirect_uri.scheme() == "http" && local)
        .then(|| redirect_uri.port())
        .flatten()
        .map(|port| (port, redirect_uri.path().to_string()))
}

/// Runs the browser part: shows `url` (and opens it if `open_browser`), then waits up to
/// `timeout` for the redirect whose `state` matches.
pub(crate) async fn authorize(
    back: Return,
    url: &Url,
    state: &str,
    open_browser: bool,
    timeout: Duration,
) -> anyhow::Result<Approval> {
    eprintln!("Open this address in a browser to approve ml-connector:\n\n  {url}\n");
    if open_browser {
        try_open(url.as_str());
    }
    let redirect = match back {
        Return::Listen { listener, path } => {
            eprintln!("Waiting for the approval (up to {} s)…", timeout.as_secs());
            match tokio::time::timeout(timeout, wait_for_redirect(&listener, &path, state)).await {
                Err(_) => bail!(
                    "no approval arrived within {} s; run the command again",
                    timeout.as_secs()
                ),
                Ok(redirect) => redirect?,
            }
        }
        Return::Paste => {
            let pasted = tokio::task::spawn_blocking(|| {
                super::input::line(
                    "After approving, paste the full address your browser was sent to",
                )
            })
            .await
            .context("reading the pasted address")??;
            from_pasted(&pasted, state)?
        }
    };
    match redirect {
        Redirect::Code(code) => Ok(code),
        Redirect::Denied(why) => bail!("authorization refused: {why}"),
    }
}

/// The approval in a pasted redirect address, after checking its `state`.
pub(crate) fn from_pasted(pasted: &str, state: &str) -> anyhow::Result<Redirect> {
    let url = Url::parse(pasted.trim())
        .context("the pasted text is not an address (copy it whole from the address bar)")?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state) {
        bail!(
            "the pasted address is not the answer to this approval (state mismatch); run the command again"
        );
    }
    if let Some(error) = param("error") {
        let description = param("error_description").unwrap_or_default();
        return Ok(Redirect::Denied(
            format!("{error} {description}").trim().to_string(),
        ));
    }
    match Approval::from_query(url.query_pairs()) {
        Some(approval) => Ok(Redirect::Code(approval)),
        None => bail!("the pasted address carries no `code`"),
    }
}

/// Serves connections until one is the redirect with the expected `state`. Requests for other
/// paths or with another `state` are answered and ignored: a stray or forged request must not
/// end the flow or smuggle in a code.
pub(crate) async fn wait_for_redirect(
    listener: &TcpListener,
    path: &str,
    state: &str,
) -> anyhow::Result<Redirect> {
    loop {
        let (mut stream, _) = listener.accept().await.context("accepting the redirect")?;
        let Some(target) = read_target(&mut stream).await else {
            respond(&mut stream, 400, "Bad request.").await;
            continue;
        };
        let Ok(url) = Url::parse("http://127.0.0.1").and_then(|b| b.join(&target)) else {
            respond(&mut stream, 400, "Bad request.").await;
            continue;
        };
        if url.path() != path {
            respond(&mut stream, 404, "Not found.").await;
            continue;
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(state) {
            respond(
                &mut stream,
                400,
                "This approval does not belong to the running ml-connector command (state mismatch).",
            )
            .await;
            eprintln!("ignored a redirect with the wrong `state`");
            continue;
        }
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            respond(
                &mut stream,
                200,
                "Authorization was refused. You can close this window.",
            )
            .await;
            return Ok(Redirect::Denied(
                format!("{error} {description}").trim().to_string(),
            ));
        }
        match Approval::from_query(url.query_pairs()) {
            Some(approval) => {
                respond(
                    &mut stream,
                    200,
                    "ml-connector is authorised. You can close this window.",
                )
                .await;
                return Ok(Redirect::Code(approval));
            }
            None => respond(&mut stream, 400, "The redirect carries no code.").await,
        }
    }
}

/// The request target of a `GET` (e.g. `/callback?code=…`), or `None` for anything else.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let text = std::str::from_utf8(&head).ok()?;
    let mut parts = text.lines().next()?.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, message: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ml-connector</title></head><body><p>{message}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser may already have gone; nothing to do about it.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Best effort: the platform's opener. Failure is fine, the URL is printed.
fn try_open(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// A fresh unguessable `state` value.
/// An authorization-code request: `base` with `client_id`, `response_type=code`, the `extra`
/// pairs (e.g. a scope), `redirect_uri` and `state`.
pub(crate) fn code_request_url(
    base: &str,
    client_id: &str,
    extra: &[(&str, &str)],
    redirect_uri: &str,
    state: &str,
) -> anyhow::Result<Url> {
    let mut url = Url::parse(base).with_context(|| format!("authorize URL `{base}`"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code");
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        query
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
    }
    Ok(url)
}

pub(crate) fn new_state() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, target: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn ignores_wrong_state_and_other_paths_then_takes_the_code() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let waiter =
            tokio::spawn(async move { wait_for_redirect(&listener, "/callback", "s1").await });
        assert!(get(addr, "/favicon.ico").await.starts_with("HTTP/1.1 404"));
        assert!(
            get(addr, "/callback?code=evil&state=other")
                .await
                .starts_with("HTTP/1.1 400")
        );
        assert!(
            get(addr, "/callback?code=c%2F1&state=s1&realmId=123")
                .await
                .starts_with("HTTP/1.1 200")
        );
        match waiter.await.unwrap().unwrap() {
            Redirect::Code(a) => {
                assert_eq!(secrecy::ExposeSecret::expose_secret(&a.code), "c/1");
                assert_eq!(a.param("realmId"), Some("123"));
                assert_eq!(a.param("state"), None);
            }
            Redirect::Denied(why) => panic!("denied: {why}"),
        }
    }

    #[test]
    fn pasted_addresses_are_checked() {
        let ok = from_pasted("https://example.com/cb?code=abc&state=s&realmId=9\n", "s").unwrap();
        assert!(matches!(
            ok,
            Redirect::Code(a) if secrecy::ExposeSecret::expose_secret(&a.code) == "abc"
                && a.param("realmId") == Some("9")
        ));
        assert!(from_pasted("https://example.com/cb?code=&state=s", "s").is_err());
        assert!(from_pasted("https://example.com/cb?code=abc&state=x", "s").is_err());
        assert!(from_pasted("abc", "s").is_err());
        assert!(matches!(
            from_pasted("https://e.com/?error=access_denied&state=s", "s").unwrap(),
            Redirect::Denied(_)
        ));
    }

    #[test]
    fn only_http_loopback_with_a_port_is_listened_on() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            loopback(&u("http://127.0.0.1:8976/callback")),
            Some((8976, "/callback".to_string()))
        );
        assert_eq!(
            loopback(&u("http://localhost:9000/fb")),
            Some((9000, "/fb".to_string()))
        );
        assert_eq!(loopback(&u("https://127.0.0.1:8976/callback")), None);
        assert_eq!(loopback(&u("http://127.0.0.1/callback")), None);
        assert_eq!(loopback(&u("https://example.com/callback")), None);
    }

    #[tokio::test]
    async fn a_refusal_ends_the_flow() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let waiter =
            tokio::spawn(async move { wait_for_redirect(&listener, "/callback", "s").await });
        get(addr, "/callback?error=access_denied&state=s").await;
        assert!(matches!(
            waiter.await.unwrap().unwrap(),
            Redirect::Denied(why) if why.contains("access_denied")
        ));
    }
}
