//! HTTP pieces every vendor client shares: the process-wide `reqwest` clients, base-URL
//! checks, capped body reads and `Retry-After`. Errors here are vendor-neutral; each vendor maps
//! them to its own error type.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use crate::vendors::limits::Registry;

/// The longest wait for a TCP/TLS connection, whatever the whole-request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The process-wide HTTP client (rustls) for whole-request timeout `timeout`: one connection
/// pool, and one load of the TLS roots, per timeout for every vendor and credential set.
/// Clients rebuilt per credential set (Mailchimp's every few minutes) would throw both away.
pub fn shared_http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    static CLIENTS: Registry<Duration, reqwest::Client> = Registry::new();
    CLIENTS.get_or_try_insert_with(timeout, || {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .user_agent(concat!("ml-connector/", env!("CARGO_PKG_VERSION")))
            .build()
    })
}

/// `base` as an `http(s)` URL that paths can be appended to; `None` for anything else.
pub(crate) fn http_base(base: &str) -> Option<Url> {
    Url::parse(base)
        .ok()
        .filter(|u| !u.cannot_be_a_base() && matches!(u.scheme(), "http" | "https"))
}

/// Why [`read_capped`] gave up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The connection failed while the body was read.
    #[error(transparent)]
    Transport(reqwest::Error),
    /// The body is longer than the cap (the value).
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
}

/// Reads a body of at most `max` bytes; a longer one is refused as soon as it is seen rather
/// than held in memory.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` in delta-seconds. Whether Mailchimp or Intuit send it at all is UNCONFIRMED
/// (docs/vendors/mailchimp.md §5), and the HTTP-date form is ignored: the harness backs off by itself then.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    use reqwest::header::HeaderValue;

    #[test]
    fn bases_must_be_http_and_take_paths() {
        assert!(http_base("http://127.0.0.1:9/3.0").is_some());
        assert!(http_base("https://api.freshbooks.com").is_some());
        for bad in ["ftp://x", "mailto:a@b", "not a url", ""] {
            assert!(http_base(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn retry_after_takes_delta_seconds_only() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
            retry_after(&h)
        };
        assert_eq!(with(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
