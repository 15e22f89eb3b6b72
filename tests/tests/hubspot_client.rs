//! The HubSpot client against the HubSpot sandbox, over HTTP: every `HubspotApi` call on both
//! API versions, 207 partial answers mapped to their inputs (the sandbox answers out of order),
//! error classification through `flows::errors::from_vendor`, the daily hold to the portal's
//! midnight, the limiter against the sandbox's burst window, the OAuth 401 → refresh → retry
//! path, single-flight refresh across instances, and a refused refresh token. Every test ends
//! asserting the sandbox saw no request that breaks HubSpot's shapes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc::app::live_clients::{HUBSPOT_TOKEN_MARGIN, LiveClients, LiveClientsConfig};
use mlc::flows::clients::VendorClients;
use mlc::flows::errors::from_vendor;
use mlc::ports::Clock;
use mlc::tokens::{TokenError, TokenManager};
use mlc::vendors::hubspot::client::{ClientOptions, HubspotClient};
use mlc::vendors::hubspot::error::RatePolicy;
use mlc::vendors::hubspot::models::{
    Association, AssociationType, ObjectInput, ObjectType, PropertyDefinition, PropertyGroup,
};
use mlc::vendors::hubspot::oauth::HubspotOauth;
use mlc::vendors::hubspot::{BATCH_LIMIT, HubspotApi, HubspotCredentials, HubspotError};
use mlc::worker::HandlerError;
use mlc_tests::sandbox::hubspot::*;
use mlc_tests::token_rig::TokenRig;
use serde_json::{Value, json};

const CREDENTIALS: &str = "hs-main";

/// 13:00 UTC: 08:00 in New York (the default portal), 22:00 in Tokyo (the daily-limit test's
/// portal, whose midnight is two hours away — neither UTC's nor New York's).
const START: &str = "2026-12-07T13:00:00Z";

/// How long an event waits while its connection is broken (`flows::errors`).
const BROKEN_WAIT: Duration = Duration::from_secs(15 * 60);

struct Fixture {
    sandbox: HubspotSandbox,
    setup: SandboxPortal,
    rig: TokenRig,
}

impl Fixture {
    /// A sandbox on the rig's manual clock: token expiry, rate windows and the daily reset move
    /// only when the test moves the clock.
    async fn new() -> Self {
        let rig = TokenRig::new(START.parse().unwrap());
        let sandbox = HubspotSandbox::start(HubspotSandboxOptions {
            clock: rig.clock.clone(),
            ..HubspotSandboxOptions::default()
        })
        .await;
        let setup = sandbox.setup_portal();
        Self {
            sandbox,
            setup,
            rig,
        }
    }

    fn portal(&self) -> u64 {
        self.setup.portal.portal_id
    }

    fn options(&self) -> ClientOptions {
        options(&self.sandbox)
    }

    /// A client of a static set (`private_app` or `service_key`) with `extra` fields.
    fn static_client(&self, kind: &str, token: &str, extra: Value) -> HubspotClient {
        let mut set = json!({ "kind": kind, "access_token": token, "portal_id": self.portal() });
        if let (Some(set), Value::Object(extra)) = (set.as_object_mut(), extra) {
            set.extend(extra);
        }
        let set = HubspotCredentials::from_json(&set.to_string()).unwrap();
        HubspotClient::with_static_token(&set, CREDENTIALS, &self.options())
            .unwrap()
            .with_clock(self.rig.clock.clone())
    }

    /// The private-app client with every scope.
    fn client(&self) -> HubspotClient {
        self.static_client("private_app", &self.setup.token, json!({}))
    }

    /// Issues OAuth tokens for the portal and stores them as the set [`CREDENTIALS`].
    async fn store_oauth(&self) -> OAuthTokens {
        let tokens = self
            .sandbox
            .issue_oauth_tokens(self.portal(), ALL_SCOPES)
            .unwrap();
        let defaults = HubspotSandboxOptions::default();
        let expires_at = self.rig.clock.now() + chrono::Duration::seconds(tokens.expires_in);
        let set = json!({
            "kind": "oauth",
            "client_id": defaults.client_id,
            "client_secret": defaults.client_secret,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": expires_at.to_rfc3339(),
            "portal_id": self.portal(),
        });
        self.rig
            .store_credentials(CREDENTIALS, &set.to_string())
            .await;
        tokens
    }

    /// One "Lambda instance": its own token manager (HubSpot's margin) and client.
    async fn oauth_client(&self) -> HubspotClient {
        let oauth = HubspotOauth::for_api_base(&self.sandbox.base_url()).unwrap();
        let manager: Arc<TokenManager> = self.rig.manager(Arc::new(oauth), HUBSPOT_TOKEN_MARGIN);
        let stored = self.rig.stored(CREDENTIALS).await.to_string();
        let set = HubspotCredentials::from_json(&stored).unwrap();
        HubspotClient::new(&set, manager, CREDENTIALS, &self.options())
            .unwrap()
            .with_clock(self.rig.clock.clone())
    }

    fn requests(&self, route: &str) -> u64 {
        requests(&self.sandbox, route)
    }

    fn assert_no_violations(&self) {
        assert_no_violations(&self.sandbox);
    }
}

fn options(sandbox: &HubspotSandbox) -> ClientOptions {
    ClientOptions {
        api_base: Some(sandbox.base_url()),
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    }
}

fn requests(sandbox: &HubspotSandbox, route: &str) -> u64 {
    sandbox
        .stats()
        .by_route
        .get(route)
        .copied()
        .unwrap_or_default()
}

fn assert_no_violations(sandbox: &HubspotSandbox) {
    let violations = sandbox.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

fn input(id: &str, properties: &[(&str, &str)]) -> ObjectInput {
    ObjectInput {
        id: id.to_string(),
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The unique key the flows upsert companies by: `fb_client_id`.
fn fb_client_id() -> PropertyDefinition {
    PropertyDefinition {
        name: "fb_client_id".into(),
        label: "FreshBooks client id".into(),
        kind: "string".into(),
        field_type: "text".into(),
        group_name: "companyinformation".into(),
        has_unique_value: true,
        ..PropertyDefinition::default()
    }
}

/// One cheap call whose answer the error tests shape with faults.
async fn read(hs: &HubspotClient) -> Result<(), HubspotError> {
    hs.read(ObjectType::Contacts, None, &ids(&["1"]), &[])
        .await
        .map(|_| ())
}

fn permanent(e: &HandlerError) -> (&str, &str) {
    match e {
        HandlerError::Permanent { class, message, .. } => (class, message),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn upserts_updates_reads_and_archives_map_results_to_their_inputs() {
    let f = Fixture::new().await;
    let hs = f.client();

    // By email: HubSpot lower-cases it; the sandbox answers in reverse order, so a client
    // mapping by position would swap Ada and Bob.
    let first = hs
        .upsert(
            ObjectType::Contacts,
            "email",
            &[
                input("Ada@Example.com", &[("firstname", "Ada")]),
                input("bob@example.com", &[("firstname", "Bob")]),
            ],
        )
        .await
        .unwrap();
    let ada = first[0].as_ref().unwrap();
    let bob = first[1].as_ref().unwrap();
    assert_eq!(ada.property("email"), Some("ada@example.com"));
    assert_eq!(ada.property("firstname"), Some("Ada"));
    assert_eq!(bob.property("firstname"), Some("Bob"));
    assert_eq!((ada.new, bob.new), (Some(true), Some(true)));
    let (ada_id, bob_id) = (ada.id.clone(), bob.id.clone());

    // Again with one existing contact and one new: `new` tells them apart.
    let again = hs
        .upsert(
            ObjectType::Contacts,
            "email",
            &[
                input("cy@example.com", &[("firstname", "Cy")]),
                input("ADA@example.com", &[("lastname", "Lovelace")]),
            ],
        )
        .await
        .unwrap();
    let (cy, ada2) = (again[0].as_ref().unwrap(), again[1].as_ref().unwrap());
    assert_eq!((cy.new, ada2.new), (Some(true), Some(false)));
    assert_eq!(ada2.id, ada_id);
    assert_eq!(ada2.property("firstname"), Some("Ada"), "kept");
    assert_eq!(ada2.property("lastname"), Some("Lovelace"));

    // By a unique `fb_…` property, which must exist (with hasUniqueValue) first.
    hs.create_property(ObjectType::Companies, &fb_client_id())
        .await
        .unwrap();
    let companies = hs
        .upsert(
            ObjectType::Companies,
            "fb_client_id",
            &[
                input("fb-1", &[("name", "One Ltd")]),
                input("fb-2", &[("name", "Two Ltd")]),
                input("fb-3", &[("name", "Three Ltd")]),
            ],
        )
        .await
        .unwrap();
    for (i, key) in ["fb-1", "fb-2", "fb-3"].iter().enumerate() {
        let c = companies[i].as_ref().unwrap();
        assert_eq!(c.property("fb_client_id"), Some(*key));
        assert_eq!(c.new, Some(true));
    }
    assert_eq!(
        companies[1].as_ref().unwrap().property("name"),
        Some("Two Ltd")
    );
    let two = companies[1].as_ref().unwrap().id.clone();
    let renamed = hs
        .upsert(
            ObjectType::Companies,
            "fb_client_id",
            &[input("fb-2", &[("name", "Two Renamed")])],
        )
        .await
        .unwrap();
    let renamed = renamed[0].as_ref().unwrap();
    assert_eq!(
        (renamed.id.as_str(), renamed.new),
        (two.as_str(), Some(false))
    );

    // Update by id; a missing id is its own input's error, the others succeed.
    let updated = hs
        .update(
            ObjectType::Contacts,
            &[
                input(&bob_id, &[("lastname", "Builder")]),
                input("987654321", &[("lastname", "Nobody")]),
                input(&ada_id, &[("lastname", "Byron")]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(updated[0].as_ref().unwrap().id, bob_id);
    assert_eq!(
        updated[0].as_ref().unwrap().property("lastname"),
        Some("Builder")
    );
    let missing = updated[1].as_ref().unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    assert_eq!(updated[2].as_ref().unwrap().id, ada_id);
    assert_eq!(
        updated[2].as_ref().unwrap().property("lastname"),
        Some("Byron")
    );
    assert_eq!(
        f.sandbox
            .object(f.portal(), ObjectType::Contacts, &bob_id)
            .unwrap()
            .properties["lastname"],
        "Builder"
    );

    // Read by id (a missing one is None), by email (any case) and by the fb key.
    let read = hs
        .read(
            ObjectType::Contacts,
            None,
            &ids(&[&ada_id, "987654321", &bob_id]),
            &["firstname", "lastname"],
        )
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(
        read[0].as_ref().unwrap().property("lastname"),
        Some("Byron")
    );
    assert!(read[1].is_none());
    assert_eq!(read[2].as_ref().unwrap().property("firstname"), Some("Bob"));
    let by_email = hs
        .read(
            ObjectType::Contacts,
            Some("email"),
            &ids(&["nobody@example.com", "BOB@example.com"]),
            &["firstname"],
        )
        .await
        .unwrap();
    assert!(by_email[0].is_none());
    assert_eq!(by_email[1].as_ref().unwrap().id, bob_id);
    let by_key = hs
        .read(
            ObjectType::Companies,
            Some("fb_client_id"),
            &ids(&["fb-3", "fb-9", "fb-2"]),
            &["name"],
        )
        .await
        .unwrap();
    assert_eq!(
        by_key[0].as_ref().unwrap().property("name"),
        Some("Three Ltd")
    );
    assert!(by_key[1].is_none());
    assert_eq!(by_key[2].as_ref().unwrap().id, two);

    // Archive, with an id that never existed; again once it is gone.
    hs.archive(ObjectType::Contacts, &ids(&[&ada_id, "987654321"]))
        .await
        .unwrap();
    assert!(
        f.sandbox
            .object(f.portal(), ObjectType::Contacts, &ada_id)
            .is_none()
    );
    assert!(
        f.sandbox
            .archived(f.portal(), ObjectType::Contacts)
            .iter()
            .any(|o| o.id.to_string() == ada_id)
    );
    hs.archive(ObjectType::Contacts, &ids(&[&ada_id]))
        .await
        .unwrap();
    let gone = hs
        .read(ObjectType::Contacts, None, &ids(&[&ada_id]), &[])
        .await
        .unwrap();
    assert!(gone[0].is_none());
    // Empty batches send nothing.
    let before = f.sandbox.stats().total;
    assert!(
        hs.upsert(ObjectType::Contacts, "email", &[])
            .await
            .unwrap()
            .is_empty()
    );
    hs.archive(ObjectType::Contacts, &[]).await.unwrap();
    assert_eq!(f.sandbox.stats().total, before);
    f.assert_no_violations();
}

#[tokio::test]
async fn a_partial_answer_fails_only_its_inputs_and_oversized_batches_are_refused() {
    let f = Fixture::new().await;
    let hs = f.client();
    hs.create_property(ObjectType::Companies, &fb_client_id())
        .await
        .unwrap();

    // 207: the middle input names a property that does not exist.
    let answer = hs
        .upsert(
            ObjectType::Contacts,
            "email",
            &[
                input("a@example.com", &[("firstname", "A")]),
                input("b@example.com", &[("no_such_property", "x")]),
                input("c@example.com", &[("firstname", "C")]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        answer[0].as_ref().unwrap().property("email"),
        Some("a@example.com")
    );
    assert_eq!(
        answer[2].as_ref().unwrap().property("email"),
        Some("c@example.com")
    );
    let refused = answer[1].as_ref().unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused:?}");
    assert_eq!(refused.category(), Some("VALIDATION_ERROR"));
    assert!(!refused.is_transient());
    assert!(
        f.sandbox
            .objects(f.portal(), ObjectType::Contacts)
            .iter()
            .all(|o| o.properties.get("email").map(String::as_str) != Some("b@example.com")),
        "the refused input was not written"
    );
    assert_eq!(requests(&f.sandbox, "contacts batch/upsert"), 1);

    // The same through a unique property, first and last inputs refused.
    let answer = hs
        .upsert(
            ObjectType::Companies,
            "fb_client_id",
            &[
                input("fb-1", &[("bogus", "1")]),
                input("fb-2", &[("name", "Two")]),
                input("fb-3", &[("bogus", "3")]),
            ],
        )
        .await
        .unwrap();
    assert!(answer[0].is_err() && answer[2].is_err(), "{answer:?}");
    assert_eq!(
        answer[1].as_ref().unwrap().property("fb_client_id"),
        Some("fb-2")
    );
    let handled = from_vendor(answer.into_iter().next().unwrap().unwrap_err());
    assert_eq!(permanent(&handled).0, "validation");

    // More than 100 inputs: refused before any request, for every batch call.
    let too_many: Vec<ObjectInput> = (0..=BATCH_LIMIT)
        .map(|i| input(&format!("c{i}@example.com"), &[]))
        .collect();
    let many_ids: Vec<String> = (0..=BATCH_LIMIT).map(|i| (1000 + i).to_string()).collect();
    let pairs: Vec<Association> = many_ids
        .iter()
        .map(|id| Association {
            from: id.clone(),
            to: "1".into(),
        })
        .collect();
    let before = f.sandbox.stats().total;
    let errors = [
        hs.upsert(ObjectType::Contacts, "email", &too_many)
            .await
            .unwrap_err(),
        hs.update(ObjectType::Contacts, &too_many)
            .await
            .unwrap_err(),
        hs.read(ObjectType::Contacts, None, &many_ids, &[])
            .await
            .unwrap_err(),
        hs.archive(ObjectType::Contacts, &many_ids)
            .await
            .unwrap_err(),
        hs.associate(ObjectType::Contacts, ObjectType::Companies, &pairs)
            .await
            .unwrap_err(),
        hs.associate_labelled(
            ObjectType::Contacts,
            ObjectType::Companies,
            AssociationType::CONTACT_TO_PRIMARY_COMPANY,
            &pairs,
        )
        .await
        .unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(e, HubspotError::InvalidArgument(_)), "{e:?}");
        assert_eq!(permanent(&from_vendor(e)).0, "validation");
    }
    assert_eq!(f.sandbox.stats().total, before, "nothing was sent");
    // Exactly 100 goes through.
    let hundred = &too_many[..BATCH_LIMIT];
    let done = hs
        .upsert(ObjectType::Contacts, "email", hundred)
        .await
        .unwrap();
    assert!(done.iter().all(Result::is_ok));
    assert_eq!(
        f.sandbox.stats().batch_inputs["contacts batch/upsert"],
        3 + BATCH_LIMIT as u64
    );
    f.assert_no_violations();
}

#[tokio::test]
async fn associations_default_and_primary_company() {
    let f = Fixture::new().await;
    let hs = f.client();
    let contact = f
        .sandbox
        .create_object(
            f.portal(),
            ObjectType::Contacts,
            &[("email", "ada@example.com")],
        )
        .unwrap();
    let one = f
        .sandbox
        .create_object(f.portal(), ObjectType::Companies, &[("name", "One")])
        .unwrap();
    let two = f
        .sandbox
        .create_object(f.portal(), ObjectType::Companies, &[("name", "Two")])
        .unwrap();
    let pair = |to: &str| Association {
        from: contact.clone(),
        to: to.to_string(),
    };

    let linked = hs
        .associate(
            ObjectType::Contacts,
            ObjectType::Companies,
            &[pair(&one), pair("987654321"), pair(&two)],
        )
        .await
        .unwrap();
    assert!(linked[0].is_ok() && linked[2].is_ok(), "{linked:?}");
    assert!(linked[1].as_ref().unwrap_err().is_not_found(), "{linked:?}");
    // Idempotent.
    let again = hs
        .associate(ObjectType::Contacts, ObjectType::Companies, &[pair(&one)])
        .await
        .unwrap();
    assert!(again[0].is_ok());

    let primary = hs
        .associate_labelled(
            ObjectType::Contacts,
            ObjectType::Companies,
            AssociationType::CONTACT_TO_PRIMARY_COMPANY,
            &[pair(&one)],
        )
        .await
        .unwrap();
    assert!(primary[0].is_ok(), "{primary:?}");
    let mut links = f.sandbox.associations(
        f.portal(),
        ObjectType::Contacts,
        &contact,
        ObjectType::Companies,
    );
    links.sort();
    let types = |id: &str| {
        links
            .iter()
            .find(|(other, _)| other == id)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    assert!(types(&one).contains(&1), "primary: {links:?}");
    assert!(types(&one).contains(&279), "unlabelled too: {links:?}");
    assert!(types(&two).contains(&279) && !types(&two).contains(&1));

    // A labelled pair with a missing side fails alone.
    let partial = hs
        .associate_labelled(
            ObjectType::Contacts,
            ObjectType::Companies,
            AssociationType::CONTACT_TO_PRIMARY_COMPANY,
            &[pair("987654321"), pair(&one)],
        )
        .await
        .unwrap();
    assert!(partial[0].as_ref().unwrap_err().is_not_found());
    assert!(partial[1].is_ok());
    f.assert_no_violations();
}

#[tokio::test]
async fn properties_and_groups_are_read_and_created_and_a_taken_name_is_a_conflict() {
    let f = Fixture::new().await;
    let hs = f.client();
    let groups = hs.property_groups(ObjectType::Contacts).await.unwrap();
    assert!(
        groups.iter().any(|g| g.name == "contactinformation"),
        "{groups:?}"
    );
    let group = PropertyGroup {
        name: "freshbooks".into(),
        label: "FreshBooks".into(),
        display_order: 3,
    };
    hs.create_property_group(ObjectType::Contacts, &group)
        .await
        .unwrap();
    let groups = hs.property_groups(ObjectType::Contacts).await.unwrap();
    assert!(groups.iter().any(|g| g == &group), "{groups:?}");
    let taken = hs
        .create_property_group(ObjectType::Contacts, &group)
        .await
        .unwrap_err();
    assert_eq!(taken.status(), Some(409), "{taken:?}");
    assert_eq!(taken.category(), Some("OBJECT_ALREADY_EXISTS"));
    assert!(!taken.is_transient());

    let properties = hs.properties(ObjectType::Contacts).await.unwrap();
    assert!(properties.iter().any(|p| p.name == "email"));
    assert!(!properties.iter().any(|p| p.name == "fb_client_id"));
    let property = PropertyDefinition {
        group_name: "freshbooks".into(),
        description: Some("The FreshBooks client this contact came from".into()),
        ..fb_client_id()
    };
    hs.create_property(ObjectType::Contacts, &property)
        .await
        .unwrap();
    let properties = hs.properties(ObjectType::Contacts).await.unwrap();
    let created = properties
        .iter()
        .find(|p| p.name == "fb_client_id")
        .unwrap();
    assert!(created.has_unique_value);
    assert_eq!(created.group_name, "freshbooks");
    assert_eq!(created.kind, "string");

    let taken = hs
        .create_property(ObjectType::Contacts, &property)
        .await
        .unwrap_err();
    assert_eq!(taken.status(), Some(409), "{taken:?}");
    assert_eq!(taken.class(), "conflict");
    let handled = from_vendor(taken);
    let (class, _) = permanent(&handled);
    assert_eq!(class, "conflict");
    assert!(handled.vendor_request_id().is_some(), "the correlationId");
    f.assert_no_violations();
}

#[tokio::test]
async fn account_and_token_info_for_a_private_app_a_service_key_and_an_oauth_token() {
    let f = Fixture::new().await;
    let hs = f.client();
    let account = hs.account().await.unwrap();
    assert_eq!(account.portal_id, f.portal());
    assert_eq!(account.time_zone, "America/New_York");
    assert_eq!(account.company_currency, "USD");

    let private = hs.token_info().await.unwrap();
    assert_eq!(private.hub_id, f.portal());
    assert_eq!(private.scopes.len(), ALL_SCOPES.len());
    assert!(private.app_id.is_some());
    assert_eq!(requests(&f.sandbox, "oauth access-token-info"), 1);

    let key = f
        .sandbox
        .issue_service_key(f.portal(), &["crm.objects.contacts.read"])
        .unwrap();
    let service = f
        .static_client("service_key", &key, json!({}))
        .token_info()
        .await
        .unwrap();
    assert_eq!(service.hub_id, f.portal());
    assert_eq!(
        service.scopes,
        vec!["crm.objects.contacts.read".to_string()]
    );
    assert_ne!(service.app_id, private.app_id, "its own app");

    f.store_oauth().await;
    let oauth = f.oauth_client().await.token_info().await.unwrap();
    assert_eq!(oauth.hub_id, f.portal());
    assert_eq!(
        oauth.app_id,
        Some(HubspotSandboxOptions::default().oauth_app_id)
    );
    assert!(
        oauth
            .scopes
            .iter()
            .any(|s| s == "crm.objects.invoices.write")
    );
    assert_eq!(requests(&f.sandbox, "oauth access-tokens"), 1);
    assert_eq!(requests(&f.sandbox, "oauth token"), 0, "no refresh needed");
    f.assert_no_violations();
}

#[tokio::test]
async fn both_api_versions_hit_their_object_paths() {
    let f = Fixture::new().await;
    for (version, extra) in [
        ("v3", json!({})),
        ("2026-03", json!({ "api_version": "2026-03" })),
    ] {
        f.sandbox.reset_stats();
        let hs = f.static_client("private_app", &f.setup.token, extra);
        let email = format!("v{version}@example.com");
        let up = hs
            .upsert(ObjectType::Contacts, "email", &[input(&email, &[])])
            .await
            .unwrap();
        let id = up[0].as_ref().unwrap().id.clone();
        hs.update(ObjectType::Contacts, &[input(&id, &[("firstname", "V")])])
            .await
            .unwrap();
        let read = hs
            .read(ObjectType::Contacts, None, &ids(&[&id]), &["firstname"])
            .await
            .unwrap();
        assert_eq!(read[0].as_ref().unwrap().property("firstname"), Some("V"));
        hs.archive(ObjectType::Contacts, &ids(&[&id]))
            .await
            .unwrap();
        // Properties and associations keep their numbered paths on either version.
        hs.properties(ObjectType::Contacts).await.unwrap();
        let stats = f.sandbox.stats();
        assert_eq!(
            stats.by_version,
            [(version.to_string(), 4)].into_iter().collect(),
            "{version}"
        );
        assert_eq!(stats.by_route["properties contacts GET "], 1);
    }
    f.assert_no_violations();
}

#[tokio::test]
async fn errors_are_classified_through_from_vendor() {
    let f = Fixture::new().await;
    let hs = f.client();
    read(&hs).await.unwrap();

    // 401 on a static token: final (no refresh), and the connection waits for a reconnect.
    let revoked = f
        .sandbox
        .issue_private_app_token(f.portal(), ALL_SCOPES)
        .unwrap();
    let gone = f.static_client("private_app", &revoked, json!({}));
    f.sandbox.revoke_token(&revoked);
    let e = gone.account().await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e:?}");
    assert_eq!(e.category(), Some("INVALID_AUTHENTICATION"));
    assert_eq!(requests(&f.sandbox, "oauth token"), 0);
    let handled = from_vendor(e);
    assert!(handled.is_transient());
    assert_eq!(handled.retry_after(), Some(BROKEN_WAIT));
    assert!(handled.to_string().contains("connect hubspot"), "{handled}");

    // 403 MISSING_SCOPES: permanent, with what to do.
    let reader = f
        .sandbox
        .issue_private_app_token(f.portal(), &["crm.objects.contacts.read"])
        .unwrap();
    let e = f
        .static_client("private_app", &reader, json!({}))
        .upsert(
            ObjectType::Contacts,
            "email",
            &[input("a@example.com", &[])],
        )
        .await
        .unwrap_err();
    assert_eq!(e.category(), Some("MISSING_SCOPES"), "{e:?}");
    assert!(e.is_unavailable());
    let handled = from_vendor(e);
    let (class, message) = permanent(&handled);
    assert_eq!(class, "forbidden");
    assert!(message.contains("ml-connector ping"), "{message}");
    assert!(handled.vendor_request_id().is_some());

    // The portal's switches: invoice writes unavailable, no payment processing.
    let invoice = f
        .sandbox
        .create_object(f.portal(), ObjectType::Invoices, &[("hs_currency", "USD")])
        .unwrap();
    f.sandbox
        .set_invoice_writes_unavailable(f.portal(), true)
        .unwrap();
    let e = hs
        .update(
            ObjectType::Invoices,
            &[input(&invoice, &[("hs_comments", "x")])],
        )
        .await
        .unwrap_err();
    assert!(e.is_unavailable() && !e.is_transient(), "{e:?}");
    assert_eq!(permanent(&from_vendor(e)).0, "forbidden");
    let payment = f
        .sandbox
        .create_object(
            f.portal(),
            ObjectType::CommercePayments,
            &[
                ("hs_initial_amount", "10"),
                ("hs_initiated_date", "2026-12-01"),
            ],
        )
        .unwrap();
    f.sandbox
        .set_no_payment_processing(f.portal(), true)
        .unwrap();
    let e = hs
        .update(
            ObjectType::CommercePayments,
            &[input(&payment, &[("hs_initial_amount", "12")])],
        )
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(e.to_string().contains("payment processing"), "{e}");
    assert_eq!(permanent(&from_vendor(e)).0, "forbidden");

    // 409 on a unique value: a second company with a taken fb key through update.
    hs.create_property(ObjectType::Companies, &fb_client_id())
        .await
        .unwrap();
    let companies = hs
        .upsert(
            ObjectType::Companies,
            "fb_client_id",
            &[input("fb-1", &[]), input("fb-2", &[])],
        )
        .await
        .unwrap();
    let second = companies[1].as_ref().unwrap().id.clone();
    let clash = hs
        .update(
            ObjectType::Companies,
            &[input(&second, &[("fb_client_id", "fb-1")])],
        )
        .await
        .unwrap();
    let e = clash.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.status(), Some(409), "{e:?}");
    assert_eq!(permanent(&from_vendor(e)).0, "conflict");

    // Transient answers, each with its wait; the next call goes through.
    let cases: [(Fault, u16, Option<Duration>); 4] = [
        (Fault::status(423), 423, Some(Duration::from_secs(2))),
        (Fault::status(477), 477, Some(Duration::from_secs(60))),
        (
            Fault {
                action: FaultAction::Status {
                    status: 477,
                    retry_after_secs: Some(7),
                },
                ..Fault::status(477)
            },
            477,
            Some(Duration::from_secs(7)),
        ),
        (Fault::status(503), 503, None),
    ];
    for (fault, status, wait) in cases {
        f.sandbox.inject(fault.on_route("batch").times(1));
        let e = read(&hs).await.unwrap_err();
        assert_eq!(e.status(), Some(status), "{e:?}");
        assert!(e.is_transient(), "{e:?}");
        let handled = from_vendor(e);
        assert!(handled.is_transient() && handled.hold_until().is_none());
        assert_eq!(handled.retry_after(), wait, "{status}");
        read(&hs).await.unwrap();
    }

    // The burst limit: wait out the window, hold nothing.
    f.sandbox
        .storm(Policy::TenSecondlyRolling, 1, Some("batch"));
    let e = read(&hs).await.unwrap_err();
    assert_eq!(e.policy(), Some(RatePolicy::TenSecondly), "{e:?}");
    let handled = from_vendor(e);
    assert!(handled.is_transient() && handled.hold_until().is_none());
    assert_eq!(handled.retry_after(), Some(Duration::from_secs(10)));
    assert!(handled.vendor_request_id().is_some());
    read(&hs).await.unwrap();

    // Search's secondly limit (its body has no policyName: read from the message).
    f.sandbox.storm(Policy::Secondly, 1, Some("batch"));
    let e = read(&hs).await.unwrap_err();
    assert_eq!(e.policy(), Some(RatePolicy::Secondly), "{e:?}");
    let handled = from_vendor(e);
    assert_eq!(handled.retry_after(), Some(Duration::from_secs(1)));
    read(&hs).await.unwrap();
    f.assert_no_violations();
}

#[tokio::test]
async fn a_daily_429_holds_the_portal_until_its_midnight_without_requests() {
    let f = Fixture::new().await;
    let tokyo = f
        .sandbox
        .add_portal(PortalSeed {
            time_zone: Some("Asia/Tokyo".into()),
            daily_limit: Some(3),
            ..PortalSeed::default()
        })
        .unwrap();
    let token = f
        .sandbox
        .issue_private_app_token(tokyo.portal_id, ALL_SCOPES)
        .unwrap();
    let set = HubspotCredentials::from_json(
        &json!({ "kind": "private_app", "access_token": token, "portal_id": tokyo.portal_id })
            .to_string(),
    )
    .unwrap();
    let hs = HubspotClient::with_static_token(&set, CREDENTIALS, &f.options())
        .unwrap()
        .with_clock(f.rig.clock.clone());

    // The time-zone lookup and two reads spend the day's three requests.
    read(&hs).await.unwrap();
    read(&hs).await.unwrap();
    assert_eq!(requests(&f.sandbox, "account details"), 1);
    assert_eq!(f.sandbox.daily_usage(tokyo.portal_id), 3);
    let midnight: DateTime<Utc> = "2026-12-07T15:00:00Z".parse().unwrap();

    let e = read(&hs).await.unwrap_err();
    assert_eq!(e.policy(), Some(RatePolicy::Daily), "{e:?}");
    assert_eq!(e.daily_limit_until(), Some(midnight), "Tokyo's midnight");
    let handled = from_vendor(e);
    assert!(handled.is_transient());
    assert_eq!(handled.hold_until(), Some(midnight));
    assert_eq!(f.sandbox.stats().throttled["DAILY"], 1);
    let sent = f.sandbox.stats().total;

    // Until then, every call is held without a request, whatever it is.
    for _ in 0..3 {
        let e = read(&hs).await.unwrap_err();
        assert!(
            matches!(e, HubspotError::DailyLimit { until } if until == midnight),
            "{e:?}"
        );
        assert_eq!(from_vendor(e).hold_until(), Some(midnight));
    }
    let e = hs.account().await.unwrap_err();
    assert_eq!(e.daily_limit_until(), Some(midnight));
    f.rig.clock.advance(chrono::Duration::minutes(119));
    assert!(read(&hs).await.is_err(), "a minute before midnight");
    assert_eq!(f.sandbox.stats().total, sent, "no request while held");

    // Past Tokyo's midnight the hold lapses and the sandbox's day restarts.
    f.rig.clock.advance(chrono::Duration::minutes(1));
    read(&hs).await.unwrap();
    assert_eq!(f.sandbox.stats().total, sent + 1);
    assert_eq!(f.sandbox.daily_usage(tokyo.portal_id), 1);
    assert_eq!(f.sandbox.stats().throttled["DAILY"], 1);

    // A storm of DAILY 429s (another app spending the quota) holds the same way.
    f.sandbox.storm(Policy::Daily, 1, None);
    let e = read(&hs).await.unwrap_err();
    let next: DateTime<Utc> = "2026-12-08T15:00:00Z".parse().unwrap();
    assert_eq!(from_vendor(e).hold_until(), Some(next));
    f.assert_no_violations();
}

/// A sandbox on the real clock: the limiter paces on real time, so the sandbox's rolling
/// window must see the same time to judge it. Tier Free: 100 requests per 10 s.
async fn real_time_sandbox() -> (HubspotSandbox, SandboxPortal) {
    let sandbox = HubspotSandbox::start(HubspotSandboxOptions::default()).await;
    let setup = sandbox.setup_portal();
    (sandbox, setup)
}

/// `n` reads at once through one client; every one must succeed.
async fn burst(hs: Arc<HubspotClient>, n: usize) {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let hs = hs.clone();
            tokio::spawn(
                async move { hs.read(ObjectType::Contacts, None, &ids(&["1"]), &[]).await },
            )
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_keeps_a_free_portal_under_its_burst_limit() {
    let (sandbox, setup) = real_time_sandbox().await;
    let set = HubspotCredentials::from_json(
        &json!({ "kind": "private_app", "access_token": setup.token,
                 "portal_id": setup.portal.portal_id, "tier": "free" })
        .to_string(),
    )
    .unwrap();
    let hs =
        Arc::new(HubspotClient::with_static_token(&set, CREDENTIALS, &options(&sandbox)).unwrap());
    // 110 at once: without the limiter the sandbox refuses at least ten of them.
    burst(hs, 110).await;
    let stats = sandbox.stats();
    assert!(stats.throttled.is_empty(), "{:?}", stats.throttled);
    assert!(
        (90..=100).contains(&stats.max_in_window),
        "paced to the limit, not far below it: {}",
        stats.max_in_window
    );
    assert_no_violations(&sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_learns_the_burst_limit_from_the_portals_answers() {
    let (sandbox, setup) = real_time_sandbox().await;
    // The set claims Professional (190 per 10 s); the portal is Free (100).
    let set = HubspotCredentials::from_json(
        &json!({ "kind": "private_app", "access_token": setup.token,
                 "portal_id": setup.portal.portal_id, "tier": "professional" })
        .to_string(),
    )
    .unwrap();
    let hs =
        Arc::new(HubspotClient::with_static_token(&set, CREDENTIALS, &options(&sandbox)).unwrap());
    assert!(format!("{hs:?}").contains("burst: 190"), "{hs:?}");
    hs.account().await.unwrap();
    assert!(
        format!("{hs:?}").contains("burst: 100"),
        "X-HubSpot-RateLimit-Max beats the configured tier: {hs:?}"
    );
    // The HubSpot flow sets the connection's tier before every batch of events: the portal's
    // answer still stands.
    hs.set_burst(190);
    assert!(format!("{hs:?}").contains("burst: 100"), "{hs:?}");
    // At 190 per 10 s these would pass the sandbox's 100; at the learned 100 none is refused.
    burst(hs.clone(), 110).await;
    let stats = sandbox.stats();
    assert!(stats.throttled.is_empty(), "{:?}", stats.throttled);
    assert!(stats.max_in_window <= 100);

    // The portal upgrades: the next answer says 190, and the client follows.
    sandbox
        .set_tier(setup.portal.portal_id, Tier::Professional)
        .unwrap();
    hs.account().await.unwrap();
    assert!(format!("{hs:?}").contains("burst: 190"), "{hs:?}");
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn an_expired_access_token_refreshes_once_and_retries() {
    let f = Fixture::new().await;
    let issued = f.store_oauth().await;
    let hs = f.oauth_client().await;
    hs.read(ObjectType::Contacts, None, &ids(&["1"]), &[])
        .await
        .unwrap();
    assert_eq!(f.requests("oauth token"), 0);

    // HubSpot drops the token early (the stored expiry still says it is good): 401
    // EXPIRED_AUTHENTICATION → one refresh → the call again.
    f.sandbox.expire_oauth_tokens();
    let before = f.sandbox.stats().unauthenticated;
    hs.read(ObjectType::Contacts, None, &ids(&["1"]), &[])
        .await
        .unwrap();
    assert_eq!(f.requests("oauth token"), 1);
    assert_eq!(f.sandbox.stats().unauthenticated, before + 1);
    let stored = f.rig.stored(CREDENTIALS).await;
    assert_ne!(stored["access_token"], issued.access_token.as_str());
    assert_eq!(
        stored["refresh_token"],
        issued.refresh_token.as_str(),
        "HubSpot's refresh tokens do not rotate"
    );
    assert_eq!(stored["portal_id"], f.portal(), "kept");

    // The sandbox clock passes the new token's 30 minutes: refreshed ahead, no 401.
    f.rig.clock.advance(chrono::Duration::minutes(31));
    let unauthenticated = f.sandbox.stats().unauthenticated;
    hs.account().await.unwrap();
    assert_eq!(f.requests("oauth token"), 2);
    assert_eq!(f.sandbox.stats().unauthenticated, unauthenticated);
    f.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_instances_over_an_expired_token_refresh_once() {
    let f = Fixture::new().await;
    f.store_oauth().await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(Arc::new(f.oauth_client().await));
    }
    f.rig.clock.advance(chrono::Duration::minutes(31));
    let calls: Vec<_> = clients
        .iter()
        .map(|hs| {
            let hs = hs.clone();
            tokio::spawn(
                async move { hs.read(ObjectType::Contacts, None, &ids(&["1"]), &[]).await },
            )
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(f.requests("oauth token"), 1, "single flight");
    assert_eq!(f.sandbox.stats().unauthenticated, 0);
    f.assert_no_violations();
}

#[tokio::test]
async fn a_refused_refresh_token_breaks_the_connection() {
    let f = Fixture::new().await;
    let issued = f.store_oauth().await;
    let hs = f.oauth_client().await;
    hs.account().await.unwrap();
    // The app was uninstalled: the refresh token is refused with BAD_REFRESH_TOKEN.
    f.sandbox.revoke_token(&issued.refresh_token);
    f.sandbox.expire_oauth_tokens();
    let e = hs
        .read(ObjectType::Contacts, None, &ids(&["1"]), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, HubspotError::Token(TokenError::Broken { .. })),
        "{e:?}"
    );
    assert_eq!(f.requests("oauth token"), 1);
    let stored = f.rig.stored(CREDENTIALS).await;
    assert!(
        stored["needs_reconnect"]["reason"]
            .as_str()
            .unwrap()
            .contains("BAD_REFRESH_TOKEN"),
        "{stored}"
    );
    let handled = from_vendor(e);
    assert!(handled.is_transient(), "waits in the queue");
    assert_eq!(handled.retry_after(), Some(BROKEN_WAIT));
    assert!(handled.to_string().contains("connect"), "{handled}");

    // Every instance now fails fast, without asking HubSpot again.
    for hs in [&hs, &f.oauth_client().await] {
        let e = hs.account().await.unwrap_err();
        assert!(matches!(e, HubspotError::Token(TokenError::Broken { .. })));
    }
    assert_eq!(f.requests("oauth token"), 1);
    f.assert_no_violations();
}

#[tokio::test]
async fn live_clients_build_the_client_under_hubspot_api_base() {
    let f = Fixture::new().await;
    let live = |f: &Fixture| {
        LiveClients::new(
            f.rig.secrets.clone(),
            Arc::new(f.rig.db.clone()),
            f.rig.clock.clone(),
            LiveClientsConfig {
                hubspot_api_base: Some(f.sandbox.base_url()),
                ..LiveClientsConfig::default()
            },
        )
        .unwrap()
    };
    f.rig
        .store_credentials(
            "hs-private",
            &json!({ "kind": "private_app", "access_token": f.setup.token,
                     "portal_id": f.portal(), "api_version": "2026-03" })
            .to_string(),
        )
        .await;
    let hs = live(&f).hubspot("hs-private").await.unwrap();
    assert_eq!(hs.account().await.unwrap().portal_id, f.portal());
    hs.upsert(
        ObjectType::Contacts,
        "email",
        &[input("a@example.com", &[])],
    )
    .await
    .unwrap();
    assert_eq!(f.sandbox.stats().by_version["2026-03"], 1);

    // An OAuth set refreshes through the sandbox's token endpoint.
    f.store_oauth().await;
    let hs = live(&f).hubspot(CREDENTIALS).await.unwrap();
    f.rig.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(hs.account().await.unwrap().portal_id, f.portal());
    assert_eq!(f.requests("oauth token"), 1);
    f.assert_no_violations();
}
