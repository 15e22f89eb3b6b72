//! Plain records: the id map, cursors, blobs (including ones larger than a DynamoDB item) and
//! the applied connections.

use chrono::Duration as Span;
use mlc::connections::ConnectionSet;
use mlc::ports::IdMapping;

use super::super::StoreFixture;
use super::unique;

/// Id map and cursors: absent, put, overwrite, independent keys.
pub async fn id_map_and_cursors(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let connection = unique("conn");
    assert_eq!(
        s.get_mapping(&connection, "client:1").await.expect("get"),
        None
    );
    let first = IdMapping {
        target_id: "mc-member-1".into(),
        fingerprint: "sha256:aa".into(),
        updated_at: fx.now(),
    };
    s.put_mapping(&connection, "client:1", &first)
        .await
        .expect("put");
    assert_eq!(
        s.get_mapping(&connection, "client:1").await.expect("get"),
        Some(first.clone())
    );
    let second = IdMapping {
        fingerprint: "sha256:bb".into(),
        updated_at: fx.now() + Span::milliseconds(1),
        ..first.clone()
    };
    s.put_mapping(&connection, "client:1", &second)
        .await
        .expect("overwrite");
    assert_eq!(
        s.get_mapping(&connection, "client:1").await.expect("get"),
        Some(second)
    );
    assert_eq!(
        s.get_mapping(&connection, "client:2").await.expect("get"),
        None
    );
    assert_eq!(
        s.get_mapping(&unique("conn"), "client:1")
            .await
            .expect("get"),
        None
    );

    let cursor = unique("poll");
    assert_eq!(s.get_cursor(&cursor).await.expect("get"), None);
    s.put_cursor(&cursor, "2026-01-01T00:00:00Z")
        .await
        .expect("put");
    s.put_cursor(&cursor, "2026-01-02T00:00:00Z")
        .await
        .expect("put");
    assert_eq!(
        s.get_cursor(&cursor).await.expect("get").as_deref(),
        Some("2026-01-02T00:00:00Z")
    );
}

/// A body that is not the same byte repeated, so misordered chunks show.
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// Blobs round-trip at any size (over DynamoDB's 400 KB item limit too), overwrite cleanly, and
/// expire.
pub async fn blobs(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let expires = Some(fx.now() + Span::days(1));
    let key = unique("blob");
    assert_eq!(s.get_blob(&key).await.expect("get"), None);

    let large = patterned(1_000_003);
    s.put_blob(&key, &large, expires).await.expect("put large");
    assert_eq!(
        s.get_blob(&key).await.expect("get").as_deref(),
        Some(&large[..])
    );

    // Smaller over larger: no stale tail.
    let small = b"{\"small\":true}".to_vec();
    s.put_blob(&key, &small, expires).await.expect("put small");
    assert_eq!(s.get_blob(&key).await.expect("get"), Some(small));

    // Larger again, then empty.
    let medium = patterned(450_000);
    s.put_blob(&key, &medium, None).await.expect("put medium");
    assert_eq!(s.get_blob(&key).await.expect("get"), Some(medium));
    s.put_blob(&key, &[], None).await.expect("put empty");
    assert_eq!(s.get_blob(&key).await.expect("get"), Some(Vec::new()));

    let short = unique("blob");
    s.put_blob(
        &short,
        &patterned(400_001),
        Some(fx.now() + Span::seconds(30)),
    )
    .await
    .expect("put");
    assert!(s.get_blob(&short).await.expect("get").is_some());
    fx.clock.advance(Span::seconds(30));
    assert_eq!(s.get_blob(&short).await.expect("get"), None, "expired");
}

/// The applied connections set: absent, then exactly what was put.
pub async fn connections(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    assert_eq!(s.get_connections().await.expect("get"), None);
    let set = ConnectionSet::from_toml(
        include_str!("../../../../connections.example.toml"),
        "connections.example.toml",
    )
    .expect("the example connections file parses");
    s.put_connections(&set).await.expect("put");
    assert_eq!(s.get_connections().await.expect("get"), Some(set.clone()));
    s.put_connections(&ConnectionSet::default())
        .await
        .expect("replace");
    assert_eq!(
        s.get_connections().await.expect("get"),
        Some(ConnectionSet::default())
    );
}
