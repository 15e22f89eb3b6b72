//! QuickBooks Online ↔ Mailchimp end to end, through the real pipeline pieces: QuickBooks
//! (sandbox) delivers signed webhooks (legacy and CloudEvents) and Mailchimp (sandbox) list
//! webhooks to the webhook handler on a local port → the Mailchimp and QuickBooks queues → the
//! two workers (harness + flow + real clients) → the other vendor; the poller for the CDC sweep
//! and token refresh. Every scenario runs on the embedded adapters and on moto.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::time::Duration;

use mlc::poller::Job;
use mlc::ports::secret_names;
use mlc::ports::{DeadLetterStatus, Outcome};
use mlc_tests::pipeline::Backend;
use mlc_tests::pipeline::quickbooks::{
    LIST, MC_QUEUE, QB_CREDENTIALS, QB_QUEUE, QboOptions, QboPipeline,
};
use mlc_tests::sandbox::quickbooks::{CustomerSeed, PayloadFormat, Webhooks};
use secrecy::ExposeSecret;
use serde_json::Value;

const DRAIN: Duration = Duration::from_secs(60);

fn seed(given: &str, family: &str, email: Option<&str>) -> CustomerSeed {
    CustomerSeed {
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        company_name: Some(format!("{family} & Co")),
        display_name: Some(format!("{given} {family}")),
        email: email.map(str::to_string),
    }
}

fn member_status(p: &QboPipeline, email: &str) -> String {
    p.mc.member(LIST, email)
        .unwrap_or_else(|| panic!("member {email} exists"))
        .status
}

fn merge_field(p: &QboPipeline, email: &str, field: &str) -> Value {
    p.mc.member(LIST, email)
        .unwrap_or_else(|| panic!("member {email} exists"))
        .merge_fields
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Member writes (PUT/PATCH/POST under `/lists/.../members`) Mailchimp has seen so far.
fn member_writes(p: &QboPipeline) -> usize {
    p.mc.requests()
        .iter()
        .filter(|r| r.method != "GET" && r.path.contains("/members"))
        .count()
}

fn assert_clean(p: &QboPipeline) {
    let violations = p.mc.violations();
    assert!(
        violations.is_empty(),
        "Mailchimp spec violations: {violations:#?}"
    );
    let stats = p.qb.stats();
    assert_eq!(
        stats.minorversion_violations, 0,
        "every QuickBooks request sends minorversion"
    );
}

async fn open_dead_letters(p: &QboPipeline) -> usize {
    p.store
        .list_dead_letters(DeadLetterStatus::Open, 50)
        .await
        .unwrap()
        .len()
}

async fn stored_credentials(p: &QboPipeline) -> Value {
    let raw = p
        .secrets
        .get(&secret_names::credentials(QB_CREDENTIALS))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(raw.expose_secret()).unwrap()
}

async fn start(backend: Backend, format: PayloadFormat) -> QboPipeline {
    QboPipeline::start(QboOptions {
        backend,
        format,
        ..QboOptions::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------------

/// A customer created, email changed, merged, deactivated — delivered as legacy webhooks.
async fn customer_lifecycle(backend: Backend) {
    let p = start(backend, PayloadFormat::Legacy).await;
    let realm = p.realm().to_string();

    let ann =
        p.qb.create_customer(
            &realm,
            seed("Ann", "Lee", Some("ann@example.com")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(merge_field(&p, "ann@example.com", "FNAME"), "Ann");
    assert_eq!(merge_field(&p, "ann@example.com", "LNAME"), "Lee");
    assert_eq!(merge_field(&p, "ann@example.com", "COMPANY"), "Lee & Co");
    assert_eq!(member_status(&p, "ann@example.com"), "transactional");
    // Accounting data stays in QuickBooks.
    let fields = p.mc.member(LIST, "ann@example.com").unwrap().merge_fields;
    assert!(
        fields
            .keys()
            .all(|k| !k.starts_with("FB_") && !k.contains("BAL")),
        "no accounting data in Mailchimp: {fields:?}"
    );

    // Email change → a new member, the old one archived.
    p.qb.update_customer(
        &realm,
        &ann,
        |c| c["PrimaryEmailAddr"] = serde_json::json!({"Address": "ann@new.example.com"}),
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "ann@new.example.com"), "transactional");
    assert_eq!(member_status(&p, "ann@example.com"), "archived");

    // Merge: Bob is merged into Ann. Bob's member is archived, Ann's stays.
    let bob =
        p.qb.create_customer(
            &realm,
            seed("Bob", "Ray", Some("bob@example.com")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "bob@example.com"), "transactional");
    p.qb.merge_customers(&realm, &ann, &bob, Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "bob@example.com"), "archived");
    assert_eq!(member_status(&p, "ann@new.example.com"), "transactional");
    let moved = p
        .store
        .get_mapping(
            mlc_tests::pipeline::quickbooks::QB_TO_MC,
            &format!("customer:{bob}"),
        )
        .await
        .unwrap()
        .expect("the merged-away id keeps a tombstone");
    assert!(
        moved.fingerprint.contains(&ann),
        "the merged-away id points at the survivor: {moved:?}"
    );

    // Deactivation archives the member.
    p.qb.deactivate_customer(&realm, &ann, Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "ann@new.example.com"), "archived");

    // A customer without email is audited as skipped.
    let nobody =
        p.qb.create_customer(&realm, seed("No", "Mail", None), Webhooks::Send)
            .await
            .unwrap();
    p.drain(DRAIN).await;
    let audit = p
        .store
        .audit_by_record(&format!("quickbooks:{realm}:customer:{nobody}"), 10)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.outcome == Outcome::Skipped),
        "no-email customer skipped: {audit:#?}"
    );
    assert_eq!(open_dead_letters(&p).await, 0);
    assert_clean(&p);
}

/// An unsubscribe in Mailchimp lands on the QuickBooks customer as a note and a Notes status
/// line, through a 5010 forced by a concurrent QuickBooks edit; our own Notes write comes back
/// as a QuickBooks webhook and costs Mailchimp nothing; the member is never re-subscribed.
async fn unsubscribe_becomes_note(backend: Backend) {
    // The customer opted in (an unsubscribe needs a subscriber).
    let p = QboPipeline::start(QboOptions {
        backend,
        options_toml: r#"status_if_new = "subscribed""#.into(),
        ..QboOptions::default()
    })
    .await;
    let realm = p.realm().to_string();
    let id =
        p.qb.create_customer(
            &realm,
            seed("Cy", "Dee", Some("cy@example.com")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "cy@example.com"), "subscribed");
    let writes_before = member_writes(&p);

    p.qb.concurrent_edit_before_next_update(&realm, &id, 1)
        .unwrap();
    p.mc.unsubscribe_member(LIST, "cy@example.com", Some("manual"))
        .await
        .unwrap();
    p.drain(DRAIN).await;

    let notes = p.qb.notes_of(&realm, &id);
    assert_eq!(notes.len(), 1, "one activity note: {notes:?}");
    assert!(notes[0].contains("unsubscribed"), "{notes:?}");
    let customer = p.qb.customer(&realm, &id).expect("the customer");
    let text = customer["Notes"].as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("unsubscribed"),
        "status line in Notes: {text:?}"
    );
    // The concurrent edit was not overwritten (sparse update after a re-read).
    assert!(
        customer["SyncToken"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 2,
        "{customer:#}"
    );
    // Our Notes write came back as a QuickBooks webhook and wrote nothing to Mailchimp.
    let updates =
        p.qb.deliveries()
            .into_iter()
            .filter(|d| d.entity_id == id && d.operation == "Update")
            .count();
    assert!(
        updates >= 1,
        "the Notes write was announced by a webhook: {:#?}",
        p.qb.deliveries()
    );
    let audit = p
        .store
        .audit_by_record(&format!("quickbooks:{realm}:customer:{id}"), 20)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.outcome == Outcome::Unchanged),
        "the echo was handled as unchanged: {audit:#?}"
    );
    assert_eq!(member_writes(&p), writes_before, "no Mailchimp write storm");
    assert_eq!(member_status(&p, "cy@example.com"), "unsubscribed");

    // A later QuickBooks change syncs the name but never re-subscribes.
    p.qb.update_customer(
        &realm,
        &id,
        |c| c["GivenName"] = "Cyd".into(),
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(merge_field(&p, "cy@example.com", "FNAME"), "Cyd");
    assert_eq!(member_status(&p, "cy@example.com"), "unsubscribed");

    // Cleaned and an event for an address QuickBooks does not know.
    p.mc.clean_member(LIST, "cy@example.com", Some("hard"))
        .await
        .unwrap();
    p.mc.seed_member(LIST, "stranger@example.com", "subscribed", false);
    p.mc.unsubscribe_member(LIST, "stranger@example.com", Some("manual"))
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let notes = p.qb.notes_of(&realm, &id);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("cleaned")), "{notes:?}");
    assert_eq!(
        open_dead_letters(&p).await,
        0,
        "no customer → skipped, not failed"
    );
    assert_clean(&p);
}

/// Ten worker instances meet an expired access token at once → exactly one refresh.
async fn token_refresh_single_flight(backend: Backend) {
    let p = start(backend, PayloadFormat::CloudEvents).await;
    let realm = p.realm().to_string();
    for i in 0..20 {
        p.qb.create_customer(
            &realm,
            seed("C", &format!("N{i}"), Some(&format!("c{i}@example.com"))),
            Webhooks::Send,
        )
        .await
        .unwrap();
    }
    let before = stored_credentials(&p).await;
    p.qb.expire_access_tokens();
    let instances: Vec<_> = (0..10).map(|_| p.instance().0).collect();
    p.drain_concurrently(MC_QUEUE, &instances, DRAIN).await;

    assert_eq!(
        p.qb.refresh_calls(),
        1,
        "exactly one refresh across instances"
    );
    assert_eq!(p.mc.members(LIST).len(), 20);
    assert_eq!(open_dead_letters(&p).await, 0);
    let after = stored_credentials(&p).await;
    assert_ne!(
        before["refresh_token"], after["refresh_token"],
        "the rotated refresh token is stored"
    );
    assert_clean(&p);
}

/// A refresh token superseded by a rotation and used after Intuit's grace period →
/// `invalid_grant`: the connection is marked for reconnect, events wait in the queue (no dead
/// letter, no refresh storm), and after the user reconnects they are processed.
async fn stale_refresh_token_needs_reconnect(backend: Backend) {
    let p = QboPipeline::start(QboOptions {
        backend,
        max_receives: 50,
        ..QboOptions::default()
    })
    .await;
    let realm = p.realm().to_string();
    let mut stale = stored_credentials(&p).await;
    // Fifty minutes on, the poller's scheduled refresh rotates the refresh token…
    stale["expires_at"] = (chrono::Utc::now() + chrono::Duration::minutes(10))
        .to_rfc3339()
        .into();
    p.adapters
        .put_secret(
            &secret_names::credentials(QB_CREDENTIALS),
            &stale.to_string(),
        )
        .await;
    p.poller.run_job(Job::QuickbooksTokenRefresh).await.unwrap();
    assert_eq!(p.qb.refresh_calls(), 1);
    // …but the stored set goes back to the superseded one (a restored backup, a second
    // deployment), and it is used after the grace period.
    p.adapters
        .put_secret(
            &secret_names::credentials(QB_CREDENTIALS),
            &stale.to_string(),
        )
        .await;
    p.qb.advance_clock(chrono::Duration::hours(25));

    p.qb.create_customer(
        &realm,
        seed("Di", "Eve", Some("di@example.com")),
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.wait_for_deliveries().await;
    p.pump(Duration::from_secs(6)).await;
    let marked = stored_credentials(&p).await;
    assert!(
        marked.get("needs_reconnect").is_some(),
        "the connection is marked for reconnect: {:?}",
        marked.get("needs_reconnect")
    );
    assert_eq!(
        p.qb.refresh_calls(),
        2,
        "one refused refresh, then no more calls until reconnect"
    );
    assert!(p.mc.member(LIST, "di@example.com").is_none());
    let depth = p.adapters.depth(MC_QUEUE).await;
    assert_eq!(
        depth.visible + depth.in_flight,
        1,
        "the event waits: {depth:?}"
    );
    assert_eq!(open_dead_letters(&p).await, 0, "nothing dead-lettered");

    // The user reconnects (`ml-connector connect quickbooks` rewrites the credential set).
    let fresh = p.reconnected_credentials();
    p.adapters
        .put_secret(&secret_names::credentials(QB_CREDENTIALS), &fresh)
        .await;
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "di@example.com"), "transactional");
    assert_eq!(open_dead_letters(&p).await, 0);
    assert!(
        stored_credentials(&p)
            .await
            .get("needs_reconnect")
            .is_none()
    );
}

/// Changes whose webhooks never came are found by the CDC sweep; a second sweep enqueues
/// nothing.
async fn cdc_sweep_finds_missed_changes(backend: Backend) {
    let p = start(backend, PayloadFormat::CloudEvents).await;
    let realm = p.realm().to_string();
    let a =
        p.qb.create_customer(
            &realm,
            seed("Al", "One", Some("al@example.com")),
            Webhooks::Suppress,
        )
        .await
        .unwrap();
    let _b =
        p.qb.create_customer(
            &realm,
            seed("Bo", "Two", Some("bo@example.com")),
            Webhooks::Suppress,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert!(
        p.mc.members(LIST).is_empty(),
        "no webhook, nothing synced yet"
    );

    p.poller.run_job(Job::QuickbooksCdc).await.unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "al@example.com"), "transactional");
    assert_eq!(member_status(&p, "bo@example.com"), "transactional");

    // A second sweep finds nothing new.
    p.poller.run_job(Job::QuickbooksCdc).await.unwrap();
    let depth = p.adapters.depth(MC_QUEUE).await;
    assert_eq!(
        depth.visible + depth.in_flight,
        0,
        "nothing re-enqueued: {depth:?}"
    );

    // A deactivation whose webhook was lost.
    p.qb.deactivate_customer(&realm, &a, Webhooks::Suppress)
        .await
        .unwrap();
    p.poller.run_job(Job::QuickbooksCdc).await.unwrap();
    p.drain(DRAIN).await;
    assert_eq!(member_status(&p, "al@example.com"), "archived");
    assert_eq!(open_dead_letters(&p).await, 0);
    let depth = p.adapters.depth(QB_QUEUE).await;
    assert_eq!(depth.visible + depth.in_flight, 0);
    assert_clean(&p);
}

mlc_tests::on_both_backends!(
    customer_lifecycle,
    unsubscribe_becomes_note,
    token_refresh_single_flight,
    stale_refresh_token_needs_reconnect,
    cdc_sweep_finds_missed_changes,
);
