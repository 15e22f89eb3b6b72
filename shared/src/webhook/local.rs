//! Local host for the webhook handler: the same [`WebhookHandler::handle`] served over HTTP on a
//! local port, as `lambda_http` serves it on Lambda.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::net::TcpListener;

use super::WebhookHandler;

/// Serves every path with the handler until `shutdown` resolves.
pub async fn serve(
    handler: Arc<WebhookHandler>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(dispatch).with_state(handler);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `addr` and returns the listener with its actual address (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

async fn dispatch(State(handler): State<Arc<WebhookHandler>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // One byte over the limit is enough for the handler to answer 413 with its message.
    let limit = handler.config.body_limit.saturating_add(1);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let resp = crate::vendors::ingress::response::error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than this endpoint's limit of {} bytes",
                    handler.config.body_limit
                ),
            );
            return resp.map(Body::from);
        }
    };
    handler
        .handle(http::Request::from_parts(parts, bytes))
        .await
        .map(Body::from)
}
