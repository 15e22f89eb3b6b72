//! Fault injection shared by the stateful sandboxes: status codes (next N, or with a
//! probability), 429 bursts with `Retry-After`, errors reported with HTTP 200, latency, and
//! connections closed without an answer. Each sandbox renders the answers in its vendor's shape.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::lock;

/// What a fault does to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status, in the vendor's error shape for it (e.g. FreshBooks: JSON 429,
    /// plain-text 5xx; QuickBooks: XML 429), with a `Retry-After` header when given.
    Status {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Answer HTTP 200 carrying an error (FreshBooks: `{"response":{"errors":[{"errno":…,
    /// "message":…}]}}`; QuickBooks: a `Fault` with `code` = `errno`).
    ErrorWith200 { errno: i64, message: String },
    /// Delay the request, then serve it normally (or apply the next matching fault).
    Latency { millis: u64 },
    /// Close the connection without answering.
    Drop,
}

/// A fault rule. Rules are checked in the order added; latency rules delay and fall through,
/// the first other matching rule decides the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The route class it applies to (FreshBooks: `token`, `identity`, `clients`, `invoices`,
    /// `payments`, `callbacks`; QuickBooks: see its module docs); every vendor route when
    /// absent. Never the control API.
    #[serde(default)]
    pub route: Option<String>,
    pub action: FaultAction,
    /// Applies to the next `times` matching requests, then disappears; forever when absent.
    #[serde(default)]
    pub times: Option<u32>,
    /// Applies to a matching request with this probability (deterministic, seeded).
    #[serde(default)]
    pub probability: Option<f64>,
}

impl Fault {
    /// Answer with `status`.
    pub fn status(status: u16) -> Self {
        Self::new(FaultAction::Status {
            status,
            retry_after_secs: None,
        })
    }

    /// A 429 with `Retry-After: retry_after_secs`.
    pub fn throttle(retry_after_secs: u64) -> Self {
        Self::new(FaultAction::Status {
            status: 429,
            retry_after_secs: Some(retry_after_secs),
        })
    }

    /// HTTP 200 carrying an error.
    pub fn error_with_200(errno: i64, message: &str) -> Self {
        Self::new(FaultAction::ErrorWith200 {
            errno,
            message: message.to_string(),
        })
    }

    /// Delay requests by `latency`.
    pub fn latency(latency: Duration) -> Self {
        Self::new(FaultAction::Latency {
            millis: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Close the connection without answering.
    pub fn drop_connection() -> Self {
        Self::new(FaultAction::Drop)
    }

    fn new(action: FaultAction) -> Self {
        Self {
            route: None,
            action,
            times: None,
            probability: None,
        }
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Each matching request with probability `p` (0–1).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Only requests to route class `route`.
    pub fn on_route(mut self, route: &str) -> Self {
        self.route = Some(route.to_string());
        self
    }
}

/// The active rules plus a seeded generator for probabilities (xorshift: reproducible runs).
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Vec<Fault>,
    rng: u64,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            rng: seed | 1,
        }
    }

    pub(crate) fn add(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.rules.clone()
    }

    fn roll(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The actions for one request to `route`: total latency, then the deciding action if any.
    pub(crate) fn decide(&mut self, route: &str) -> (Duration, Option<FaultAction>) {
        let mut latency = Duration::ZERO;
        let mut decided = None;
        let mut i = 0;
        while i < self.rules.len() {
            let rule = &self.rules[i];
            let applies = rule.route.as_deref().is_none_or(|r| r == route)
                && (decided.is_none() || matches!(rule.action, FaultAction::Latency { .. }));
            if !applies {
                i += 1;
                continue;
            }
            if let Some(p) = rule.probability
                && self.roll() >= p
            {
                i += 1;
                continue;
            }
            let rule = &mut self.rules[i];
            match &rule.action {
                FaultAction::Latency { millis } => latency += Duration::from_millis(*millis),
                other => decided = Some(other.clone()),
            }
            if let Some(times) = rule.times.as_mut() {
                *times = times.saturating_sub(1);
                if *times == 0 {
                    self.rules.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        (latency, decided)
    }
}

/// A deciding fault the vendor answers in its own shape.
pub(crate) enum Injected {
    /// An injected status (unknown codes become 503); the gate adds `Retry-After`.
    Status(StatusCode),
    /// HTTP 200 carrying the vendor's error.
    ErrorWith200 { errno: i64, message: String },
}

/// A sandbox's request counters and fault rules, and the first step of every vendor request:
/// count it under `"<METHOD> <route class>"`, then apply the rules for its class.
#[derive(Debug)]
pub(crate) struct Gate {
    requests: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Faults>,
}

impl Gate {
    /// No counts and no rules; `seed` seeds the fault probabilities.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(Faults::new(seed)),
        }
    }

    pub(crate) fn inject(&self, fault: Fault) {
        lock(&self.faults).add(fault);
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn faults(&self) -> Vec<Fault> {
        lock(&self.faults).list()
    }

    /// Every counter, by `"<METHOD> <route class>"`.
    pub(crate) fn requests(&self) -> BTreeMap<String, u64> {
        lock(&self.requests).clone()
    }

    /// The counter of `key` (`"<METHOD> <route class>"`).
    pub(crate) fn request_count(&self, key: &str) -> u64 {
        lock(&self.requests).get(key).copied().unwrap_or(0)
    }

    /// Counts a `method` request to route `class` and applies the fault rules: sleeps their
    /// latency, then either lets the request through (`Ok` with the counter key) or answers
    /// for it: a dropped connection is killed (and the 503 never written), the other faults
    /// are rendered by `render` in the vendor's shape.
    pub(crate) async fn pass(
        &self,
        method: &Method,
        class: &str,
        kill: &KillSwitch,
        render: impl FnOnce(Injected) -> Response,
    ) -> Result<String, Response> {
        let key = format!("{method} {class}");
        *lock(&self.requests).entry(key.clone()).or_default() += 1;
        let (latency, action) = lock(&self.faults).decide(class);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match action {
            // Latency never decides.
            None | Some(FaultAction::Latency { .. }) => Ok(key),
            Some(FaultAction::Drop) => {
                kill.kill();
                Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
            }
            Some(FaultAction::ErrorWith200 { errno, message }) => {
                Err(render(Injected::ErrorWith200 { errno, message }))
            }
            Some(FaultAction::Status {
                status,
                retry_after_secs,
            }) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut response = render(Injected::Status(status));
                if let Some(secs) = retry_after_secs {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                Err(response)
            }
        }
    }
}

/// Serves `app` on `127.0.0.1:0` with killable connections ([`KillSwitch`] as connect info);
/// returns the address and the server task (abort it to stop).
pub(crate) async fn serve(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the sandbox binds a local port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let service = app.into_make_service_with_connect_info::<KillSwitch>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(KillableListener(listener), service).await;
    });
    (addr, server)
}

/// A TCP listener whose connections a handler can kill (to "drop the connection").
pub(crate) struct KillableListener(pub TcpListener);

/// A connection that fails every read and write once killed, so hyper closes it without
/// writing the response.
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

/// The kill switch of the connection a request arrived on (axum connect info).
#[derive(Clone, Debug)]
pub(crate) struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    pub(crate) fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (inner, addr) = Listener::accept(&mut self.0).await;
        let _ = inner.set_nodelay(true);
        (
            KillableStream {
                inner,
                killed: Arc::new(AtomicBool::new(false)),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for KillSwitch {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        KillSwitch(stream.io().killed.clone())
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "sandbox dropped the connection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_n_and_routes() {
        let mut f = Faults::new(7);
        f.add(Fault::status(503).times(2).on_route("clients"));
        assert_eq!(f.decide("invoices").1, None);
        assert!(f.decide("clients").1.is_some());
        assert!(f.decide("clients").1.is_some());
        assert_eq!(f.decide("clients").1, None);
        assert!(f.list().is_empty());
    }

    #[test]
    fn probabilities_are_roughly_right_and_reproducible() {
        let run = || {
            let mut f = Faults::new(42);
            f.add(Fault::status(503).probability(0.2));
            (0..1000).filter(|_| f.decide("x").1.is_some()).count()
        };
        let hits = run();
        assert!((120..280).contains(&hits), "{hits}");
        assert_eq!(hits, run());
    }

    #[test]
    fn latency_falls_through() {
        let mut f = Faults::new(1);
        f.add(Fault::latency(Duration::from_millis(5)).times(1));
        f.add(Fault::drop_connection().times(1));
        let (latency, action) = f.decide("x");
        assert_eq!(latency, Duration::from_millis(5));
        assert_eq!(action, Some(FaultAction::Drop));
        assert_eq!(f.decide("x"), (Duration::ZERO, None));
    }
}
