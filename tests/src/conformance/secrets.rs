//! Secrets port checks: absent, create, new versions, independent names.

use mlc::ports::Secrets;
use secrecy::{ExposeSecret, SecretString};

fn unique_name(kind: &str) -> String {
    format!("{kind}/{}", uuid::Uuid::new_v4().simple())
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_string())
}

async fn read(s: &dyn Secrets, name: &str) -> Option<String> {
    s.get(name)
        .await
        .expect("get")
        .map(|v| v.expose_secret().to_string())
}

/// `get` is `None` until `put`; every `put` makes a new current value.
pub async fn secrets(s: &dyn Secrets) {
    let name = unique_name("credentials");
    assert_eq!(read(s, &name).await, None);

    let v1 =
        r#"{"access_token":"at-1","refresh_token":"rt-1","expires_at":"2026-01-01T00:00:00Z"}"#;
    s.put(&name, &secret(v1)).await.expect("create");
    assert_eq!(read(s, &name).await.as_deref(), Some(v1));

    let v2 =
        r#"{"access_token":"at-2","refresh_token":"rt-2 ✓","expires_at":"2026-01-01T12:00:00Z"}"#;
    s.put(&name, &secret(v2)).await.expect("new version");
    assert_eq!(
        read(s, &name).await.as_deref(),
        Some(v2),
        "the latest version"
    );
    let v3 = "plain-webhook-secret";
    s.put(&name, &secret(v3)).await.expect("third version");
    assert_eq!(read(s, &name).await.as_deref(), Some(v3));

    let webhook = format!("webhook/stripe/{}", uuid::Uuid::new_v4().simple());
    s.put(&webhook, &secret("whsec_abc")).await.expect("create");
    assert_eq!(read(s, &webhook).await.as_deref(), Some("whsec_abc"));
    assert_eq!(
        read(s, &name).await.as_deref(),
        Some(v3),
        "names are independent"
    );
}
