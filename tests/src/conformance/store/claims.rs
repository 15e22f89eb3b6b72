//! Conditional writes: idempotency claims, leases, webhook callback verification.

use std::time::Duration;

use chrono::Duration as Span;
use mlc::ports::{Begin, CallbackRecord, CallbackStatus, Outcome};
use mlc::vendor::Vendor;

use super::super::StoreFixture;
use super::unique;

const LEASE: Duration = Duration::from_secs(60);
const PROCEED: Begin = Begin::Proceed { replay: false };

/// Claim, in progress, done → duplicate until `expires_at`, abandon, lapsed claims.
pub async fn idempotency(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let t0 = fx.now();
    let key = unique("evt");

    assert_eq!(s.begin(&key, t0, LEASE).await.expect("begin"), PROCEED);
    let t1 = t0 + Span::seconds(59);
    assert_eq!(
        s.begin(&key, t1, LEASE).await.expect("begin"),
        Begin::InProgress,
        "a live claim blocks others"
    );
    let expires = t0 + Span::days(7);
    s.complete(&key, Outcome::Synced, expires)
        .await
        .expect("complete");
    assert_eq!(
        s.begin(&key, t1, LEASE).await.expect("begin"),
        Begin::Duplicate(Outcome::Synced)
    );
    s.abandon(&key).await.expect("abandon");
    assert_eq!(
        s.begin(&key, expires - Span::seconds(1), LEASE)
            .await
            .expect("begin"),
        Begin::Duplicate(Outcome::Synced),
        "abandoning a finished key does not undo it"
    );
    assert_eq!(
        s.begin(&key, expires, LEASE).await.expect("begin"),
        PROCEED,
        "at expires_at the record has lapsed"
    );
    assert_eq!(
        s.begin(&key, expires, LEASE).await.expect("begin"),
        Begin::InProgress
    );

    // A claim whose lease ran out, and an abandoned claim, let the next attempt proceed.
    let other = unique("evt");
    assert_eq!(s.begin(&other, t0, LEASE).await.expect("begin"), PROCEED);
    let lapsed = t0 + Span::seconds(60);
    assert_eq!(
        s.begin(&other, lapsed, LEASE).await.expect("begin"),
        PROCEED,
        "the lease ends at t0 + lease"
    );
    assert_eq!(
        s.begin(&other, lapsed + Span::seconds(30), LEASE)
            .await
            .expect("begin"),
        Begin::InProgress,
        "the new claim runs from its own start"
    );
    s.abandon(&other).await.expect("abandon");
    assert_eq!(
        s.begin(&other, lapsed + Span::seconds(30), LEASE)
            .await
            .expect("begin"),
        PROCEED
    );
    // Abandoning a key nobody claimed is fine.
    s.abandon(&unique("evt")).await.expect("abandon unknown");
}

/// A dead-lettered key is claimed again by its replay (so two copies of a replay cannot both
/// run), reported as a replay; a later successful outcome makes it a duplicate again.
pub async fn replays(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let t0 = fx.now();
    let key = unique("evt");
    let expires = t0 + Span::days(7);
    assert_eq!(s.begin(&key, t0, LEASE).await.expect("begin"), PROCEED);
    s.complete(&key, Outcome::DeadLettered, expires)
        .await
        .expect("complete");

    let t1 = t0 + Span::seconds(10);
    assert_eq!(
        s.begin(&key, t1, LEASE).await.expect("begin"),
        Begin::Proceed { replay: true },
        "a dead-lettered key is claimable, as a replay"
    );
    assert_eq!(
        s.begin(&key, t1 + Span::seconds(1), LEASE)
            .await
            .expect("begin"),
        Begin::InProgress,
        "the replay's claim blocks a concurrent copy"
    );
    s.complete(&key, Outcome::Synced, expires)
        .await
        .expect("complete");
    assert_eq!(
        s.begin(&key, t1 + Span::seconds(2), LEASE)
            .await
            .expect("begin"),
        Begin::Duplicate(Outcome::Synced)
    );

    // Abandoning a replay's claim leaves nothing behind: the next attempt is a plain claim.
    let other = unique("evt");
    s.complete(&other, Outcome::DeadLettered, expires)
        .await
        .expect("complete");
    assert_eq!(
        s.begin(&other, t1, LEASE).await.expect("begin"),
        Begin::Proceed { replay: true }
    );
    s.abandon(&other).await.expect("abandon");
    assert_eq!(s.begin(&other, t1, LEASE).await.expect("begin"), PROCEED);
}

/// Single-flight leases: free, held, renewed by the holder, lapsed, released.
pub async fn leases(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let t0 = fx.now();
    let name = unique("refresh");
    assert!(
        s.acquire_lease(&name, "a", t0, LEASE)
            .await
            .expect("acquire")
    );
    let t1 = t0 + Span::seconds(30);
    assert!(
        !s.acquire_lease(&name, "b", t1, LEASE)
            .await
            .expect("acquire")
    );
    assert!(
        s.acquire_lease(&name, "a", t1, LEASE).await.expect("renew"),
        "the holder renews"
    );
    // Renewed at t1: still held at t0 + 60 s, free at t1 + 60 s.
    let t2 = t0 + Span::seconds(60);
    assert!(
        !s.acquire_lease(&name, "b", t2, LEASE)
            .await
            .expect("acquire")
    );
    let t3 = t1 + Span::seconds(60);
    assert!(
        s.acquire_lease(&name, "b", t3, LEASE)
            .await
            .expect("acquire lapsed")
    );

    s.release_lease(&name, "a")
        .await
        .expect("release by non-holder");
    assert!(
        !s.acquire_lease(&name, "c", t3, LEASE)
            .await
            .expect("acquire"),
        "only the holder's release counts"
    );
    s.release_lease(&name, "b").await.expect("release");
    assert!(
        s.acquire_lease(&name, "c", t3, LEASE)
            .await
            .expect("acquire released")
    );
    s.release_lease(&unique("nobody"), "x")
        .await
        .expect("release of an unknown lease");
}

/// Callback records: pending → verified exactly once.
pub async fn callbacks(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let t0 = fx.now();
    let route = unique("route");
    assert_eq!(s.get_callback(&route).await.expect("get"), None);
    assert!(
        !s.mark_callback_verified(&route, t0).await.expect("mark"),
        "nothing to verify"
    );

    let record = CallbackRecord {
        route_id: route.clone(),
        vendor: Vendor::Freshbooks,
        account: "6BApk".into(),
        callback_id: Some("cb-1".into()),
        event: "invoice".into(),
        credentials: "freshbooks-acme".into(),
        status: CallbackStatus::Pending,
        updated_at: t0,
    };
    s.put_callback(&record).await.expect("put");
    assert_eq!(
        s.get_callback(&route).await.expect("get"),
        Some(record.clone())
    );

    let t1 = t0 + Span::milliseconds(1500);
    assert!(s.mark_callback_verified(&route, t1).await.expect("mark"));
    assert!(
        !s.mark_callback_verified(&route, t1)
            .await
            .expect("mark again"),
        "only a pending record is verified"
    );
    let verified = s.get_callback(&route).await.expect("get").expect("exists");
    assert_eq!(verified.status, CallbackStatus::Verified);
    assert_eq!(verified.updated_at, t1);
    assert_eq!(verified.callback_id, record.callback_id);

    // The registration's id lands after the handshake verified the callback: still verified.
    assert!(
        s.record_callback_id(&route, "cb-2")
            .await
            .expect("record id")
    );
    let recorded = s.get_callback(&route).await.expect("get").expect("exists");
    assert_eq!(recorded.callback_id.as_deref(), Some("cb-2"));
    assert_eq!(recorded.status, CallbackStatus::Verified);
    assert!(
        !s.record_callback_id(&unique("route"), "cb-3")
            .await
            .expect("record id"),
        "no record, nothing recorded"
    );

    // Re-registering puts it back to pending.
    s.put_callback(&record).await.expect("put again");
    assert!(s.mark_callback_verified(&route, t1).await.expect("mark"));
}
