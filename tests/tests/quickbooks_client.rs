//! The QuickBooks client and the token manager against the QuickBooks sandbox: reads and email
//! queries (quotes escaped), CDC with deleted stubs and the server's time, paging past 1000,
//! sparse updates and stale SyncTokens, idempotent note attachables, the XML 429, the
//! 401 → refresh → retry path, single-flight refresh across ten instances, and a rotated-out
//! refresh token breaking the connection (marked, then failing fast until reconnected).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc::app::live_clients::{LiveClients, LiveClientsConfig, QUICKBOOKS_TOKEN_MARGIN};
use mlc::flows::clients::VendorClients;
use mlc::flows::errors::from_vendor;
use mlc::ports::Clock;
use mlc::tokens::{TokenError, TokenManager};
use mlc::vendors::quickbooks::client::{ClientOptions, QuickbooksClient};
use mlc::vendors::quickbooks::models::{CustomerUpdate, MAX_NOTE_CHARS};
use mlc::vendors::quickbooks::oauth::QuickbooksOauth;
use mlc::vendors::quickbooks::{QuickbooksApi, QuickbooksError};
use mlc_tests::sandbox::quickbooks::*;
use mlc_tests::token_rig::TokenRig;

const CREDENTIALS: &str = "qb-main";

struct Fixture {
    sandbox: QuickbooksSandbox,
    company: SandboxCompany,
    rig: TokenRig,
}

impl Fixture {
    async fn new() -> Self {
        let rig = TokenRig::new("2026-03-02T15:00:00Z".parse().unwrap());
        let sandbox = QuickbooksSandbox::start(QuickbooksSandboxOptions {
            clock: rig.clock.clone(),
            ..QuickbooksSandboxOptions::default()
        })
        .await;
        let company = sandbox.setup_company("Acme Books");
        rig.store_credentials(CREDENTIALS, &sandbox.credentials_json(&company))
            .await;
        Self {
            sandbox,
            company,
            rig,
        }
    }

    async fn store(&self, json: &str) {
        self.rig.store_credentials(CREDENTIALS, json).await;
    }

    async fn stored(&self) -> serde_json::Value {
        self.rig.stored(CREDENTIALS).await
    }

    /// One "Lambda instance", with the QuickBooks margin.
    fn manager(&self) -> Arc<TokenManager> {
        let oauth = QuickbooksOauth::for_api_base(&self.sandbox.base_url()).unwrap();
        self.rig.manager(Arc::new(oauth), QUICKBOOKS_TOKEN_MARGIN)
    }

    fn client(&self) -> QuickbooksClient {
        self.client_with(self.manager())
    }

    fn client_with(&self, manager: Arc<TokenManager>) -> QuickbooksClient {
        QuickbooksClient::new(
            &self.sandbox.base_url(),
            manager,
            CREDENTIALS,
            &ClientOptions::default(),
        )
        .unwrap()
    }

    fn realm(&self) -> &str {
        &self.company.realm_id
    }

    async fn customer(&self, given: &str, email: &str) -> String {
        self.sandbox
            .create_customer(
                self.realm(),
                CustomerSeed {
                    given_name: Some(given.into()),
                    family_name: Some("Lovelace".into()),
                    email: Some(email.into()),
                    ..CustomerSeed::default()
                },
                Webhooks::Suppress,
            )
            .await
            .unwrap()
    }

    fn assert_minorversion_always_sent(&self) {
        let stats = self.sandbox.stats();
        assert!(!stats.requests.is_empty());
        assert_eq!(
            stats.minorversion_violations, 0,
            "{:?}",
            stats.requests_without_minorversion
        );
    }
}

#[tokio::test]
async fn reads_queries_by_email_and_names_the_company() {
    let f = Fixture::new().await;
    let client = f.client();
    let id = f.customer("Ada", "o'brien+ada@example.com").await;
    let _other = f.customer("Bob", "bob@example.com").await;

    let c = client.customer(f.realm(), &id).await.unwrap().unwrap();
    assert_eq!(c.email(), Some("o'brien+ada@example.com"));
    assert!(c.active && !c.sync_token.is_empty());
    assert!(c.last_updated().is_some());

    // A quote in the address, and an inactive customer still found.
    f.sandbox
        .deactivate_customer(f.realm(), &id, Webhooks::Suppress)
        .await
        .unwrap();
    let found = client
        .customers_by_email(f.realm(), "o'brien+ada@example.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert!(!found[0].active, "inactive is not deleted");
    assert!(
        client
            .customers_by_email(f.realm(), "nobody@example.com")
            .await
            .unwrap()
            .is_empty()
    );

    // Unknown ids are "not found", not errors.
    assert!(
        client
            .customer(f.realm(), "999999")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(client.company_name(f.realm()).await.unwrap(), "Acme Books");
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn cdc_returns_changes_with_deleted_stubs_and_the_server_time() {
    let f = Fixture::new().await;
    let client = f.client();
    let since = f.rig.clock.now() - chrono::Duration::minutes(1);
    let survivor = f.customer("Ada", "ada@example.com").await;
    let merged = f.customer("Ada2", "ada2@example.com").await;
    let inactive = f.customer("Cy", "cy@example.com").await;
    f.rig.clock.advance(chrono::Duration::seconds(5));
    f.sandbox
        .deactivate_customer(f.realm(), &inactive, Webhooks::Suppress)
        .await
        .unwrap();
    f.sandbox
        .merge_customers(f.realm(), &survivor, &merged, Webhooks::Suppress)
        .await
        .unwrap();

    let changed = client.changed_customers(f.realm(), since).await.unwrap();
    assert!(!changed.truncated);
    assert_eq!(
        changed.server_time,
        f.rig.clock.now(),
        "the sandbox's clock"
    );
    let by_id = |id: &str| changed.customers.iter().find(|c| c.id == id).unwrap();
    assert!(by_id(&merged).is_deleted(), "{:?}", by_id(&merged));
    assert!(!by_id(&inactive).active);
    assert_eq!(by_id(&survivor).email(), Some("ada@example.com"));

    // From the answer's time on, nothing has changed.
    let next = client
        .changed_customers(f.realm(), changed.server_time)
        .await
        .unwrap();
    assert!(next.customers.is_empty(), "{:?}", next.customers);
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn updated_since_pages_past_a_thousand() {
    let f = Fixture::new().await;
    let client = f.client();
    for i in 0..1001 {
        f.customer(&format!("C{i:04}"), &format!("c{i}@example.com"))
            .await;
    }
    let all = client
        .customers_updated_since(f.realm(), None)
        .await
        .unwrap();
    assert_eq!(all.customers.len(), 1001);
    assert!(!all.truncated);
    let mut ids: Vec<u64> = all
        .customers
        .iter()
        .map(|c| c.id.parse().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1001, "no customer twice across pages");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ORDERBY Id");
    assert_eq!(f.sandbox.request_count("GET query"), 2, "two pages");

    // Only later changes after a time, inactive ones included.
    let cut = f.rig.clock.now();
    f.rig.clock.advance(chrono::Duration::minutes(5));
    let id = all.customers[10].id.clone();
    f.sandbox
        .deactivate_customer(f.realm(), &id, Webhooks::Suppress)
        .await
        .unwrap();
    let later = client
        .customers_updated_since(f.realm(), Some(cut))
        .await
        .unwrap();
    assert_eq!(later.customers.len(), 1);
    assert_eq!(later.customers[0].id, id);
    assert!(!later.customers[0].active);
    assert_eq!(later.server_time, f.rig.clock.now());
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn sparse_updates_keep_other_fields_and_stale_tokens_are_5010() {
    let f = Fixture::new().await;
    let client = f.client();
    let id = f.customer("Ada", "ada@example.com").await;
    let c = client.customer(f.realm(), &id).await.unwrap().unwrap();

    let updated = client
        .update_customer(
            f.realm(),
            &CustomerUpdate {
                id: id.clone(),
                sync_token: c.sync_token.clone(),
                notes: Some("x".repeat(MAX_NOTE_CHARS + 50)),
                active: None,
            },
        )
        .await
        .unwrap();
    assert_ne!(updated.sync_token, c.sync_token);
    assert_eq!(
        updated.notes.as_deref().map(|n| n.chars().count()),
        Some(MAX_NOTE_CHARS),
        "cut, never refused"
    );
    assert_eq!(updated.email(), Some("ada@example.com"), "sparse: kept");
    assert_eq!(updated.given_name.as_deref(), Some("Ada"));

    // The old token is stale now.
    let stale = client
        .update_customer(
            f.realm(),
            &CustomerUpdate {
                id: id.clone(),
                sync_token: c.sync_token.clone(),
                notes: None,
                active: Some(false),
            },
        )
        .await
        .unwrap_err();
    assert!(stale.is_stale() && !stale.is_transient(), "{stale}");
    assert!(stale.intuit_tid().is_some());

    // Someone edits just before our next write: 5010 with the current token too.
    f.sandbox
        .concurrent_edit_before_next_update(f.realm(), &id, 1)
        .unwrap();
    let raced = client
        .update_customer(
            f.realm(),
            &CustomerUpdate {
                id: id.clone(),
                sync_token: updated.sync_token.clone(),
                notes: None,
                active: Some(false),
            },
        )
        .await
        .unwrap_err();
    assert!(raced.is_stale(), "{raced}");
    // Re-read and re-apply works.
    let fresh = client.customer(f.realm(), &id).await.unwrap().unwrap();
    let done = client
        .update_customer(
            f.realm(),
            &CustomerUpdate {
                id: id.clone(),
                sync_token: fresh.sync_token,
                notes: None,
                active: Some(false),
            },
        )
        .await
        .unwrap();
    assert!(!done.active);
    assert_eq!(done.email(), Some("ada@example.com"));
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn a_note_is_written_once_per_request_id() {
    let f = Fixture::new().await;
    let client = f.client();
    let id = f.customer("Ada", "ada@example.com").await;
    let long = format!("Mailchimp: opened 'Spring' {}", "é".repeat(MAX_NOTE_CHARS));
    let first = client
        .create_customer_note(f.realm(), &id, &long, "req-1")
        .await
        .unwrap();
    let again = client
        .create_customer_note(f.realm(), &id, &long, "req-1")
        .await
        .unwrap();
    assert_eq!(first.id, again.id, "the replay answers the first result");
    assert!(first.id.is_some());
    assert_eq!(first.attachable_ref[0].entity_ref.value, id);
    let notes = f.sandbox.notes_of(f.realm(), &id);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].chars().count(), MAX_NOTE_CHARS);
    client
        .create_customer_note(f.realm(), &id, "second", "req-2")
        .await
        .unwrap();
    assert_eq!(f.sandbox.notes_of(f.realm(), &id).len(), 2);
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn a_throttled_call_is_transient_with_its_intuit_tid() {
    let f = Fixture::new().await;
    let client = f.client();
    let id = f.customer("Ada", "ada@example.com").await;
    f.sandbox
        .inject(Fault::throttle(7).on_route("customer").times(1));
    let err = client.customer(f.realm(), &id).await.unwrap_err();
    assert!(err.is_transient() && err.is_throttled(), "{err}");
    assert_eq!(err.code(), Some("3001"), "parsed from the XML body");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let tid = err.intuit_tid().expect("intuit_tid kept").to_string();
    let handled = from_vendor(err);
    assert!(handled.is_transient());
    assert_eq!(handled.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(handled.vendor_request_id(), Some(tid.as_str()));
    // The next call goes through.
    assert!(client.customer(f.realm(), &id).await.unwrap().is_some());

    // Twenty calls at once from one process stay within the realm's 10 concurrent: QuickBooks
    // never throttles them.
    let client = Arc::new(client);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, realm, id) = (client.clone(), f.realm().to_string(), id.clone());
            tokio::spawn(async move { client.customer(&realm, &id).await })
        })
        .collect();
    for c in calls {
        assert!(c.await.unwrap().unwrap().is_some());
    }
    assert_eq!(f.sandbox.stats().throttled, 0);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let f = Fixture::new().await;
    let client = f.client();
    let id = f.customer("Ada", "ada@example.com").await;
    assert!(client.customer(f.realm(), &id).await.unwrap().is_some());
    let before = f.stored().await;
    // QuickBooks drops the token early (the stored expiry still says it is good).
    f.sandbox.expire_access_tokens();
    assert!(client.customer(f.realm(), &id).await.unwrap().is_some());
    assert_eq!(f.sandbox.refresh_calls(), 1);
    let after = f.stored().await;
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(
        after["refresh_token"], before["refresh_token"],
        "rotated and stored"
    );
    assert_ne!(after["refresh_expires_at"], serde_json::Value::Null);
    assert_eq!(after["realm_id"], f.company.realm_id.as_str(), "kept");
    assert_eq!(f.sandbox.request_count("GET customer"), 3);
}

#[tokio::test]
async fn ten_instances_over_an_expired_token_refresh_once() {
    let f = Fixture::new().await;
    let id = f.customer("Ada", "ada@example.com").await;
    f.rig.clock.advance(chrono::Duration::minutes(61));
    let clients: Vec<_> = (0..10).map(|_| Arc::new(f.client())).collect();
    let calls: Vec<_> = clients
        .iter()
        .map(|c| {
            let (c, realm, id) = (c.clone(), f.realm().to_string(), id.clone());
            tokio::spawn(async move { c.customer(&realm, &id).await })
        })
        .collect();
    for c in calls {
        assert!(c.await.unwrap().unwrap().is_some());
    }
    assert_eq!(f.sandbox.refresh_calls(), 1);
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn a_rotated_out_refresh_token_breaks_the_connection_until_reconnected() {
    let f = Fixture::new().await;
    let id = f.customer("Ada", "ada@example.com").await;
    let original = f.sandbox.credentials_json(&f.company);
    // One refresh rotates the refresh token ...
    f.rig.clock.advance(chrono::Duration::minutes(55));
    assert!(f.client().customer(f.realm(), &id).await.unwrap().is_some());
    assert_eq!(f.sandbox.refresh_calls(), 1);
    // ... the old one outlives its grace, and a stale copy of the set comes back (a restored
    // backup, a second deployment's write).
    f.rig.clock.advance(chrono::Duration::hours(25));
    f.store(&original).await;
    let client = f.client();
    let err = client.customer(f.realm(), &id).await.unwrap_err();
    assert!(
        matches!(err, QuickbooksError::Token(TokenError::Broken { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("ml-connector connect"), "{err}");
    assert_eq!(f.sandbox.refresh_calls(), 2);
    let stored = f.stored().await;
    assert!(stored["needs_reconnect"]["since"].is_string(), "{stored}");
    assert!(
        stored["needs_reconnect"]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    assert!(stored["refresh_token"].is_string(), "tokens kept");
    let handled = from_vendor(err);
    assert!(handled.is_transient(), "waits in the queue");

    // Every instance now fails fast, without calling Intuit.
    for c in [&client, &f.client()] {
        let err = c.customer(f.realm(), &id).await.unwrap_err();
        assert!(matches!(
            err,
            QuickbooksError::Token(TokenError::Broken { .. })
        ));
    }
    assert_eq!(f.sandbox.refresh_calls(), 2);

    // Reconnecting rewrites the set, which clears the mark.
    let tokens = f.sandbox.mint_tokens(f.realm()).unwrap();
    f.store(&f.sandbox.credentials_json(&SandboxCompany {
        tokens,
        ..f.company.clone()
    }))
    .await;
    assert!(client.customer(f.realm(), &id).await.unwrap().is_some());
    f.assert_minorversion_always_sent();
}

#[tokio::test]
async fn a_revoked_connection_is_broken() {
    let f = Fixture::new().await;
    let id = f.customer("Ada", "ada@example.com").await;
    let client = f.client();
    f.sandbox.revoke_tokens(f.realm());
    // 401 with the gateway's lower-case fault → refresh → invalid_grant.
    let err = client.customer(f.realm(), &id).await.unwrap_err();
    assert!(
        matches!(err, QuickbooksError::Token(TokenError::Broken { .. })),
        "{err:?}"
    );
    assert_eq!(f.sandbox.refresh_calls(), 1);
    assert!(f.stored().await.get("needs_reconnect").is_some());
}

#[tokio::test]
async fn live_clients_reach_the_api_and_token_endpoint_under_quickbooks_api_base() {
    let f = Fixture::new().await;
    let live = LiveClients::new(
        f.rig.secrets.clone(),
        Arc::new(f.rig.db.clone()),
        f.rig.clock.clone(),
        LiveClientsConfig {
            quickbooks_api_base: Some(f.sandbox.base_url()),
            ..LiveClientsConfig::default()
        },
    )
    .unwrap();
    let client = live.quickbooks(CREDENTIALS).await.unwrap();
    assert_eq!(client.company_name(f.realm()).await.unwrap(), "Acme Books");

    // The poller's proactive refresh runs on the same manager and stores both expiries.
    f.rig.clock.advance(chrono::Duration::minutes(55));
    let tokens = live.quickbooks_tokens();
    assert!(
        tokens
            .refresh_if_expiring(CREDENTIALS, QUICKBOOKS_TOKEN_MARGIN)
            .await
            .unwrap()
    );
    assert_eq!(f.sandbox.refresh_calls(), 1);
    let stored = f.stored().await;
    let at = |k: &str| {
        stored[k]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    };
    assert!(at("expires_at") - f.rig.clock.now() > chrono::Duration::minutes(59));
    assert!(at("refresh_expires_at") - f.rig.clock.now() > chrono::Duration::days(100));
    // The worker's client uses the new token without refreshing again.
    assert_eq!(client.company_name(f.realm()).await.unwrap(), "Acme Books");
    assert_eq!(f.sandbox.refresh_calls(), 1);
    f.assert_minorversion_always_sent();
}
