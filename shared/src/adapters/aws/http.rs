//! The AWS SDK's HTTPS client and configuration loader, set up for a fast Lambda cold start.
//!
//! The SDK's default client (rustls + aws-lc) reads the platform's root certificates from
//! `/etc/ssl/certs` and builds its TLS configuration while each service client is being
//! *constructed*, once per client. A Lambda that builds SQS, DynamoDB and Secrets Manager
//! clients at init that way makes ~150 file reads and spends ~5 ms before it can take its first
//! invocation: 3-4x a hello-world function's whole init (`infra/bench-coldstart.sh --probe`).
//!
//! The client that [`sdk_config_loader`] installs keeps the same TLS stack (rustls, aws-lc, the SDK's cipher-suite
//! restrictions, proxy settings from the environment, connect/read timeouts) and changes two
//! things:
//! - Trust anchors are Mozilla's root program as compiled into the binary by the
//!   `webpki-root-certs` crate, so neither start-up nor the first connection reads a file. AWS
//!   service endpoints chain to Amazon Trust Services roots, which are in that set. A CA bundle
//!   added to the host (a TLS-inspecting proxy) is therefore *not* honoured; the Lambda
//!   runtime has none.
//! - Nothing TLS-related happens until the first request: the trust store and rustls
//!   configuration are built on the first call to [`HttpClient::http_connector`] and shared by
//!   every client created from the same [`SdkConfig`]. That first request pays ~1 ms for it
//!   (the SDK only accepts PEM and decodes it in constant time), once per process.
//!
//! [`sdk_config_loader`] also skips building the SDK's default region and credential chains
//! when the environment alone decides them, as it does in Lambda.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine as _;

/// An HTTPS client for the AWS SDK that trusts the compiled-in webpki roots and defers all TLS
/// set-up to the first request. Clone it (cheap) or put it in one [`SdkConfig`] so every
/// service client shares its connection pools.
fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(WebPkiHttpClient::default())
}

/// `aws_config::defaults` for the latest behaviour version, with the HTTPS client described in
/// the [module documentation](self).
///
/// When the environment already holds the region and static credentials (always the case in
/// a Lambda without SnapStart), the loader reads them from there directly instead of
/// building the SDK's default provider chains. Those chains would return the very same values,
/// since the environment comes first in both, but building them constructs an IMDS client and
/// an STS client (for web identity) at start-up. Without those variables the default chains
/// are used unchanged.
///
/// Use this when more settings are needed (an endpoint URL for a local emulator, a region);
/// settings made on the returned loader take precedence, and environment variables such as
/// `AWS_ENDPOINT_URL` are honoured as with the SDK default.
pub fn sdk_config_loader() -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(sdk_http_client());
    let shortcuts = EnvShortcuts::detect(|name| std::env::var(name).ok());
    if shortcuts.region {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    if shortcuts.credentials {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader
}

/// Loads the shared SDK configuration (region, credentials, endpoint overrides) from the
/// environment, with [`sdk_config_loader`]'s HTTPS client and shortcuts. Call once at
/// init and build every service client from the result.
pub async fn load_sdk_config() -> SdkConfig {
    sdk_config_loader().load().await
}

/// Which default provider chains would be decided by their first, environment-variable link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EnvShortcuts {
    region: bool,
    credentials: bool,
}

impl EnvShortcuts {
    /// Mirrors the SDK's environment providers: a variable counts only when it is not blank
    /// (the SDK treats blank as unset and would fall through to the next link).
    fn detect(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
        Self {
            region: set("AWS_REGION") || set("AWS_DEFAULT_REGION"),
            credentials: set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"),
        }
    }
}

/// Connector timeouts the SDK asked for; connectors are cached per distinct pair, as the
/// SDK's own client does.
type CacheKey = (Option<Duration>, Option<Duration>);

/// The [`HttpClient`] behind [`sdk_http_client`].
///
/// It relies on the trait's default, no-op `validate_base_client_config`: the SDK's own
/// client overrides it to build a connector (and load certificates) while a service client
/// is constructed, which is exactly the start-up cost avoided here.
#[derive(Clone, Default)]
struct WebPkiHttpClient {
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    tls: OnceLock<TlsContext>,
    connectors: Mutex<HashMap<CacheKey, SharedHttpConnector>>,
}

impl fmt::Debug for WebPkiHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The PEM bundle is ~200 KB; leave it out.
        f.debug_struct("WebPkiHttpClient")
            .field("tls_initialised", &self.state.tls.get().is_some())
            .finish_non_exhaustive()
    }
}

impl WebPkiHttpClient {
    fn tls_context(&self) -> &TlsContext {
        self.state.tls.get_or_init(|| {
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(webpki_roots_pem()))
                .build()
                // Invariant: `TlsContextBuilder::build` only moves its inputs into the
                // context and always returns `Ok`. Falling back to a default context instead
                // would silently re-enable native roots, so a change there should be loud.
                .expect("TlsContextBuilder::build is infallible")
        })
    }

    fn connector(
        &self,
        settings: &HttpConnectorSettings,
        components: Option<&RuntimeComponents>,
    ) -> SharedHttpConnector {
        let mut builder = Connector::builder()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(self.tls_context().clone());
        builder.set_connector_settings(Some(settings.clone()));
        builder.set_sleep_impl(components.and_then(RuntimeComponents::sleep_impl));
        // The SDK default for behaviour versions >= 2025-08-07.
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        SharedHttpConnector::new(builder.build())
    }
}

impl HttpClient for WebPkiHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        // A panic while the lock is held leaves the map unchanged, so a poisoned map is
        // still consistent.
        let mut connectors = self
            .state
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connectors
            .entry(key)
            .or_insert_with(|| self.connector(settings, Some(components)))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        // Same user-agent metadata as the SDK's own hyper-based client.
        Some(ConnectorMetadata::new("hyper", Some(Cow::Borrowed("1.x"))))
    }
}

/// The compiled-in Mozilla roots as one PEM bundle, the only form the SDK's [`TrustStore`]
/// accepts. Encoding ~150 certificates takes ~0.1 ms and happens once, on the first request.
fn webpki_roots_pem() -> Vec<u8> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
    let mut pem = Vec::with_capacity(roots.iter().map(|der| der.len() * 4 / 3 + 96).sum());
    for der in roots {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Splits our PEM bundle back into DER blobs.
    fn decode_bundle(pem: &[u8]) -> Vec<Vec<u8>> {
        let text = std::str::from_utf8(pem).unwrap();
        text.split("-----END CERTIFICATE-----\n")
            .filter(|block| !block.is_empty())
            .map(|block| {
                let body = block.strip_prefix("-----BEGIN CERTIFICATE-----\n").unwrap();
                assert!(body.lines().all(|l| l.len() <= 64), "PEM lines wrap at 64");
                let b64: String = body.lines().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn pem_bundle_round_trips_every_root() {
        let decoded = decode_bundle(&webpki_roots_pem());
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(roots.len() > 100, "webpki roots unexpectedly small");
        assert_eq!(decoded.len(), roots.len());
        for (got, want) in decoded.iter().zip(roots) {
            assert_eq!(got.as_slice(), want.as_ref());
        }
    }

    #[test]
    fn env_shortcuts_only_when_the_env_link_would_decide() {
        let detect = |vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            EnvShortcuts::detect(|name| vars.get(name).cloned())
        };
        let lambda = detect(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
        assert_eq!(
            lambda,
            EnvShortcuts {
                region: true,
                credentials: true
            }
        );
        // SnapStart and ECS-style hosts: container credentials, no keys in the environment.
        let snapstart = detect(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9000/creds",
            ),
        ]);
        assert_eq!(
            snapstart,
            EnvShortcuts {
                region: true,
                credentials: false
            }
        );
        // A key without its secret, or blank values, leave the SDK's chains in charge.
        let partial = detect(&[("AWS_REGION", " "), ("AWS_ACCESS_KEY_ID", "AKID")]);
        assert_eq!(
            partial,
            EnvShortcuts {
                region: false,
                credentials: false
            }
        );
    }

    #[test]
    fn connector_builds_from_the_bundle() {
        // Building a connector parses every PEM block into the rustls root store; the SDK
        // panics on an unparsable one, so this is the check that our bundle is acceptable.
        let client = WebPkiHttpClient::default();
        let settings = HttpConnectorSettings::builder().build();
        let _connector = client.connector(&settings, None);
        assert!(client.state.tls.get().is_some());
    }

    /// Answers one HTTP request with a Secrets Manager `GetSecretValue` reply.
    async fn serve_one_secret(listener: TcpListener) -> String {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read headers, then the body announced by content-length.
        let body_start = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed early");
            request.extend_from_slice(&chunk[..n]);
            if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while request.len() < body_start + length {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed early");
            request.extend_from_slice(&chunk[..n]);
        }
        let body = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:s","Name":"s","SecretString":"hello","VersionId":"v1","VersionStages":["AWSCURRENT"]}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        head
    }

    #[tokio::test]
    async fn sdk_client_is_lazy_and_works_through_it() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(serve_one_secret(listener));

        let http = WebPkiHttpClient::default();
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .http_client(SharedHttpClient::new(http.clone()))
            .build();
        let client = aws_sdk_secretsmanager::Client::from_conf(config);
        assert!(
            http.state.tls.get().is_none(),
            "constructing a service client must not build TLS state"
        );
        assert!(http.state.connectors.lock().unwrap().is_empty());

        let reply = client
            .get_secret_value()
            .secret_id("s")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.secret_string(), Some("hello"));
        let head = server.await.unwrap();
        assert!(head.starts_with("post / http/1.1"), "{head}");
        assert!(head.contains("x-amz-target: secretsmanager.getsecretvalue"));
        assert!(http.state.tls.get().is_some());
        assert_eq!(http.state.connectors.lock().unwrap().len(), 1);
    }
}
