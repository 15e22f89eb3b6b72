//! A minimal fake of the Lambda runtime API, just enough to time a cold start.
//!
//! A Lambda function's init phase ends when the runtime asks the runtime API for its first
//! invocation (`GET /2018-06-01/runtime/invocation/next`). This fake listens on loopback,
//! accepts one connection and records the instant that request line arrives. It never answers:
//! the caller kills the function process once the instant is recorded, so no HTTP response
//! logic (and no HTTP library) is needed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Path of the runtime API call that marks the end of a function's init phase.
pub const NEXT_INVOCATION_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// Longest request line accepted; the real `next` line is under 60 bytes.
const MAX_REQUEST_LINE: usize = 8 * 1024;

/// Why no `next` request was observed.
#[derive(Debug, thiserror::Error)]
pub enum FakeRuntimeError {
    /// Binding, accepting or reading failed.
    #[error("fake runtime API I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before sending a full request line.
    #[error("connection closed before a full request line arrived")]
    Closed,
    /// The request line was longer than [`MAX_REQUEST_LINE`] bytes or not UTF-8.
    #[error("malformed request line")]
    Malformed,
    /// The first request was something other than `GET` [`NEXT_INVOCATION_PATH`].
    #[error("unexpected first request: {0:?}")]
    Unexpected(String),
}

/// The first request line the fake received, and when its last byte arrived.
#[derive(Debug, Clone)]
pub struct NextRequest {
    /// When the request line's terminating CRLF was read.
    pub at: Instant,
    /// The request line without its CRLF, e.g. `GET /2018-06-01/runtime/invocation/next HTTP/1.1`.
    pub request_line: String,
}

/// A loopback listener standing in for the Lambda runtime API.
#[derive(Debug)]
pub struct FakeRuntimeApi {
    listener: TcpListener,
}

impl FakeRuntimeApi {
    /// Binds an ephemeral port on 127.0.0.1.
    pub async fn bind() -> Result<Self, FakeRuntimeError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Ok(Self { listener })
    }

    /// The address to put in `AWS_LAMBDA_RUNTIME_API` (`host:port`, no scheme).
    pub fn addr(&self) -> Result<SocketAddr, FakeRuntimeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts the next connection and waits for its first request line, which must be a
    /// `GET` of [`NEXT_INVOCATION_PATH`].
    ///
    /// The connection is dropped without a response; that is fine because the caller ends
    /// the function process right after.
    pub async fn wait_for_next(&self) -> Result<NextRequest, FakeRuntimeError> {
        let (mut stream, _) = self.listener.accept().await?;
        // Small writes from the client must not be delayed by us either.
        stream.set_nodelay(true)?;
        let (at, request_line) = read_request_line(&mut stream).await?;
        if is_next_invocation(&request_line) {
            Ok(NextRequest { at, request_line })
        } else {
            Err(FakeRuntimeError::Unexpected(request_line))
        }
    }

    /// [`Self::wait_for_next`] bounded by `limit`; `Ok(None)` when it elapsed.
    pub async fn wait_for_next_within(
        &self,
        limit: Duration,
    ) -> Result<Option<NextRequest>, FakeRuntimeError> {
        match tokio::time::timeout(limit, self.wait_for_next()).await {
            Ok(result) => result.map(Some),
            Err(_elapsed) => Ok(None),
        }
    }
}

/// Reads bytes until the first CRLF and returns the instant it arrived plus the line.
async fn read_request_line(stream: &mut TcpStream) -> Result<(Instant, String), FakeRuntimeError> {
    let mut line = Vec::with_capacity(128);
    let mut chunk = [0u8; 512];
    loop {
        let read = stream.read(&mut chunk).await?;
        let at = Instant::now();
        if read == 0 {
            return Err(FakeRuntimeError::Closed);
        }
        let searched_from = line.len().saturating_sub(1);
        line.extend_from_slice(&chunk[..read]);
        if let Some(offset) = line[searched_from..].windows(2).position(|w| w == b"\r\n") {
            line.truncate(searched_from + offset);
            let text = String::from_utf8(line).map_err(|_| FakeRuntimeError::Malformed)?;
            return Ok((at, text));
        }
        if line.len() > MAX_REQUEST_LINE {
            return Err(FakeRuntimeError::Malformed);
        }
    }
}

/// Whether `request_line` is `GET <NEXT_INVOCATION_PATH> HTTP/x`.
fn is_next_invocation(request_line: &str) -> bool {
    let mut parts = request_line.split(' ');
    parts.next() == Some("GET")
        && parts.next() == Some(NEXT_INVOCATION_PATH)
        && parts
            .next()
            .is_some_and(|version| version.starts_with("HTTP/"))
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn send(api: &FakeRuntimeApi, parts: &[&[u8]]) -> Result<NextRequest, FakeRuntimeError> {
        let addr = api.addr()?;
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            for part in parts {
                stream.write_all(&part).await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Keep the connection open until the server has read what it needs.
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
            Ok::<_, std::io::Error>(())
        });
        let result = api.wait_for_next().await;
        client.abort();
        result
    }

    #[tokio::test]
    async fn records_next_request_split_across_writes() {
        let api = FakeRuntimeApi::bind().await.unwrap();
        let before = Instant::now();
        let got = send(
            &api,
            &[
                b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r",
                b"\nhost: 127.0.0.1\r\n\r\n",
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            got.request_line,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1"
        );
        assert!(got.at > before);
    }

    #[tokio::test]
    async fn rejects_other_first_request() {
        let api = FakeRuntimeApi::bind().await.unwrap();
        let err = send(
            &api,
            &[b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n\r\n"],
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, FakeRuntimeError::Unexpected(line) if line.starts_with("POST ")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn reports_early_close() {
        let api = FakeRuntimeApi::bind().await.unwrap();
        let addr = api.addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.write_all(b"GET /2018-06-01").await?;
            stream.shutdown().await
        });
        let err = api.wait_for_next().await.unwrap_err();
        assert!(matches!(err, FakeRuntimeError::Closed), "{err:?}");
        client.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn times_out_without_a_client() {
        let api = FakeRuntimeApi::bind().await.unwrap();
        let got = api
            .wait_for_next_within(Duration::from_millis(20))
            .await
            .unwrap();
        assert!(got.is_none());
    }

    #[test]
    fn next_invocation_line_is_matched_exactly() {
        assert!(is_next_invocation(
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1"
        ));
        assert!(!is_next_invocation(
            "GET /2018-06-01/runtime/invocation/next/x HTTP/1.1"
        ));
        assert!(!is_next_invocation(
            "GET /2018-06-01/runtime/invocation/next"
        ));
        assert!(!is_next_invocation(
            "HEAD /2018-06-01/runtime/invocation/next HTTP/1.1"
        ));
    }
}
