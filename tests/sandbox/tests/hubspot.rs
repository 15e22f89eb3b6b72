//! Self-tests of the HubSpot sandbox over HTTP: what a client sees (docs/vendors/hubspot.md).
//! Time never passes by itself: the sandbox runs on a manual clock the tests move.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mlc::ports::ManualClock;
use mlc::vendors::hubspot::models::ObjectType;
use mlc_sandbox::hubspot::*;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Fx {
    sandbox: HubspotSandbox,
    portal: u64,
    token: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn start_time() -> DateTime<Utc> {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

impl Fx {
    async fn new() -> Self {
        Self::with(HubspotSandboxOptions::default()).await
    }

    async fn with(options: HubspotSandboxOptions) -> Self {
        let sandbox = HubspotSandbox::start(HubspotSandboxOptions {
            clock: Arc::new(ManualClock::new(start_time())),
            ..options
        })
        .await;
        let setup = sandbox.setup_portal();
        Self {
            portal: setup.portal.portal_id,
            token: setup.token,
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sandbox.base_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Some(&self.token), method, path, body).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    async fn put(&self, path: &str) -> Answer {
        self.call(Method::PUT, path, None).await
    }

    async fn form(&self, pairs: &[(&str, &str)]) -> Answer {
        let r = self
            .http
            .post(self.sandbox.token_url())
            .form(pairs)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        Answer {
            status,
            headers,
            body: r.json().await.unwrap_or(Value::Null),
        }
    }

    /// Creates one object over HTTP; its id.
    async fn create(&self, t: &str, properties: Value) -> String {
        let a = self
            .post(
                &format!("/crm/v3/objects/{t}"),
                json!({"properties": properties}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }

    fn advance(&self, secs: i64) {
        self.sandbox.advance_clock(chrono::Duration::seconds(secs));
    }
}

fn assert_error(a: &Answer, status: u16, category: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.body);
    assert_eq!(a.body["status"], "error", "{}", a.body);
    assert_eq!(a.body["category"], category, "{}", a.body);
    assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        uuid::Uuid::parse_str(a.body["correlationId"].as_str().unwrap()).is_ok(),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn every_token_kind_authenticates_and_bad_ones_get_401() {
    let fx = Fx::new().await;
    assert!(fx.token.starts_with("pat-na1-"));
    let credentials: Value = serde_json::from_str(&fx.sandbox.credentials_json(&fx.token)).unwrap();
    assert_eq!(credentials, json!({"access_token": fx.token}));
    assert_eq!(
        fx.get("/account-info/v3/details").await.status,
        StatusCode::OK
    );
    let key = fx
        .sandbox
        .issue_service_key(fx.portal, &["crm.objects.contacts.read"])
        .unwrap();
    let a = fx
        .call_as(Some(&key), Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let oauth = fx
        .sandbox
        .issue_oauth_tokens(fx.portal, &["crm.objects.contacts.read"])
        .unwrap();
    let a = fx
        .call_as(
            Some(&oauth.access_token),
            Method::GET,
            "/crm/v3/objects/contacts",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);

    for token in [Some("pat-na1-00000000-0000-0000-0000-000000000000"), None] {
        let a = fx
            .call_as(token, Method::GET, "/crm/v3/objects/contacts", None)
            .await;
        assert_error(&a, 401, "INVALID_AUTHENTICATION");
        assert!(
            a.body["message"]
                .as_str()
                .unwrap()
                .starts_with("Authentication credentials not found.")
        );
    }
    fx.sandbox.revoke_token(&key);
    let a = fx
        .call_as(Some(&key), Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_error(&a, 401, "INVALID_AUTHENTICATION");
    assert_eq!(fx.sandbox.stats().unauthenticated, 3);
}

#[tokio::test]
async fn oauth_codes_expire_refresh_and_refuse_bad_grants() {
    let fx = Fx::new().await;
    let o = HubspotSandboxOptions::default();
    // The authorize page approves at once and redirects with a code.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .get(format!("{}/oauth/authorize", fx.sandbox.base_url()))
        .query(&[
            ("client_id", o.client_id.as_str()),
            ("redirect_uri", o.redirect_uri.as_str()),
            (
                "scope",
                "crm.objects.contacts.read crm.objects.contacts.write",
            ),
            ("state", "xyz"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let code = q.iter().find(|(k, _)| k == "code").unwrap().1.clone();
    assert!(q.contains(&("state".into(), "xyz".into())));

    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", o.redirect_uri.as_str()),
        ("client_id", o.client_id.as_str()),
        ("client_secret", o.client_secret.as_str()),
    ];
    let a = fx.form(&exchange).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["expires_in"], 1800);
    assert_eq!(a.body["token_type"], "bearer");
    let access = a.body["access_token"].as_str().unwrap().to_string();
    let refresh = a.body["refresh_token"].as_str().unwrap().to_string();
    // A code is single use.
    let a = fx.form(&exchange).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["status"], "BAD_AUTH_CODE");

    let list = "/crm/v3/objects/contacts";
    assert_eq!(
        fx.call_as(Some(&access), Method::GET, list, None)
            .await
            .status,
        StatusCode::OK
    );
    fx.advance(1800);
    let a = fx.call_as(Some(&access), Method::GET, list, None).await;
    assert_error(&a, 401, "EXPIRED_AUTHENTICATION");
    assert_eq!(
        a.body["message"],
        "The OAuth token used to make this call expired 0 second(s) ago."
    );

    let a = fx
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", o.client_id.as_str()),
            ("client_secret", o.client_secret.as_str()),
        ])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["refresh_token"], refresh.as_str());
    let fresh = a.body["access_token"].as_str().unwrap();
    assert_eq!(
        fx.call_as(Some(fresh), Method::GET, list, None)
            .await
            .status,
        StatusCode::OK
    );

    let a = fx
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "na1-nope"),
            ("client_id", o.client_id.as_str()),
            ("client_secret", o.client_secret.as_str()),
        ])
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["status"], "BAD_REFRESH_TOKEN");
    assert_eq!(a.body["message"], "missing or unknown refresh token");
}

#[tokio::test]
async fn account_details_and_token_introspection() {
    let fx = Fx::new().await;
    let berlin = fx
        .sandbox
        .add_portal(PortalSeed {
            portal_id: Some(4242),
            time_zone: Some("Europe/Berlin".into()),
            currency: Some("EUR".into()),
            tier: Tier::Professional,
            daily_limit: Some(625_000),
        })
        .unwrap();
    let token = fx
        .sandbox
        .issue_private_app_token(berlin.portal_id, &["crm.objects.contacts.read"])
        .unwrap();
    let a = fx
        .call_as(Some(&token), Method::GET, "/account-info/v3/details", None)
        .await;
    assert_eq!(
        a.body,
        json!({
            "portalId": 4242, "accountType": "STANDARD", "timeZone": "Europe/Berlin",
            "companyCurrency": "EUR", "additionalCurrencies": [], "utcOffset": "+01:00",
            "utcOffsetMilliseconds": 3_600_000, "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        })
    );
    assert_eq!(a.headers["x-hubspot-ratelimit-max"], "190");

    let info = fx
        .post(
            "/oauth/v2/private-apps/get/access-token-info",
            json!({"tokenKey": token}),
        )
        .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["hubId"], 4242);
    assert_eq!(info.body["scopes"], json!(["crm.objects.contacts.read"]));
    assert!(info.body["appId"].is_u64() && info.body["userId"].is_u64());

    let oauth = fx
        .sandbox
        .issue_oauth_tokens(4242, &["crm.objects.contacts.read"])
        .unwrap();
    let a = fx
        .post(
            "/oauth/v2/private-apps/get/access-token-info",
            json!({"tokenKey": oauth.access_token}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = fx
        .post(
            "/oauth/v2/private-apps/get/access-token-info",
            json!({"tokenKey": "pat-na1-unknown"}),
        )
        .await;
    assert_error(&a, 401, "INVALID_AUTHENTICATION");

    let meta = fx
        .get(&format!("/oauth/v1/access-tokens/{}", oauth.access_token))
        .await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.body);
    assert_eq!(meta.body["hub_id"], 4242);
    assert_eq!(meta.body["token_type"], "access");
    assert_eq!(meta.body["expires_in"], 1800);
    assert_eq!(
        meta.body["app_id"],
        HubspotSandboxOptions::default().oauth_app_id
    );

    let usage = fx
        .call_as(
            Some(&token),
            Method::GET,
            "/account-info/v3/api-usage/daily/private-apps",
            None,
        )
        .await;
    let r = &usage.body["results"][0];
    assert_eq!(r["name"], "private-apps-api-calls-daily");
    assert_eq!(r["usageLimit"], 625_000);
    assert_eq!(r["currentUsage"], 2);
    assert_eq!(r["fetchStatus"], "SUCCESS");
    assert_eq!(r["resetsAt"], "2026-12-07T23:00:00.000Z");
}

#[tokio::test]
async fn upsert_by_email_and_by_unique_property() {
    let fx = Fx::new().await;
    let up = "/crm/v3/objects/contacts/batch/upsert";
    let a = fx
        .post(
            up,
            json!({"inputs": [{"idProperty": "email", "id": "Jane@Acme.com", "properties": {"firstname": "Jane"}}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let first = &a.body["results"][0];
    assert_eq!(first["new"], true);
    assert_eq!(first["properties"]["email"], "jane@acme.com");
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["status"], "COMPLETE");

    let a = fx
        .post(
            up,
            json!({"inputs": [{"idProperty": "email", "id": "JANE@acme.COM", "properties": {"lastname": "Doe"}}]}),
        )
        .await;
    assert_eq!(a.body["results"][0]["new"], false);
    assert_eq!(a.body["results"][0]["id"], id.as_str());
    assert_eq!(a.body["results"][0]["properties"]["firstname"], "Jane");
    assert_eq!(a.body["results"][0]["properties"]["lastname"], "Doe");

    let a = fx
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "jane@ACME.com"}}),
        )
        .await;
    assert_error(&a, 409, "CONFLICT");
    assert_eq!(
        a.body["message"],
        format!("Contact already exists. Existing ID: {id}")
    );
    let a = fx
        .post(
            up,
            json!({"inputs": [{"idProperty": "email", "id": "not an email", "properties": {}}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS, "{}", a.body);
    assert_eq!(a.body["errors"][0]["errors"][0]["code"], "INVALID_EMAIL");
    assert_eq!(
        a.body["errors"][0]["context"]["ids"],
        json!(["not an email"])
    );

    // Companies: upsert by a unique-value property.
    let a = fx
        .post(
            "/crm/v3/properties/companies",
            json!({"name": "fb_client_id", "label": "FreshBooks client", "type": "string",
                   "fieldType": "text", "groupName": "companyinformation", "hasUniqueValue": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let up = "/crm/v3/objects/companies/batch/upsert";
    let input = |name: &str| json!({"inputs": [{"idProperty": "fb_client_id", "id": "c-1", "properties": {"name": name}}]});
    let a = fx.post(up, input("Acme")).await;
    assert_eq!(a.body["results"][0]["new"], true);
    let a = fx.post(up, input("Acme Ltd")).await;
    assert_eq!(a.body["results"][0]["new"], false);
    assert_eq!(a.body["results"][0]["properties"]["name"], "Acme Ltd");
    assert_eq!(
        fx.sandbox.objects(fx.portal, ObjectType::Companies).len(),
        1
    );
    let a = fx
        .post(
            "/crm/v3/objects/companies",
            json!({"properties": {"fb_client_id": "c-1"}}),
        )
        .await;
    assert_error(&a, 409, "CONFLICT");
    assert!(fx.sandbox.violations().is_empty());

    // A property without unique values cannot key an upsert.
    let a = fx
        .post(
            up,
            json!({"inputs": [{"idProperty": "name", "id": "Acme", "properties": {}}]}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert_eq!(fx.sandbox.violations().len(), 1);
}

#[tokio::test]
async fn partial_failures_answer_207_with_ids_and_trace_ids() {
    let fx = Fx::new().await;
    let id = fx.create("contacts", json!({"email": "a@b.c"})).await;
    let a = fx
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [
                {"id": id, "properties": {"firstname": "A"}, "objectWriteTraceId": "t-1"},
                {"id": "999999", "properties": {"firstname": "B"}, "objectWriteTraceId": "t-2"},
                {"id": id.clone() + "0", "properties": {"nope": "x"}, "objectWriteTraceId": "t-3"},
            ]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS, "{}", a.body);
    assert_eq!(a.body["status"], "COMPLETE");
    assert_eq!(a.body["numErrors"], 2);
    assert!(a.body["startedAt"].is_string() && a.body["completedAt"].is_string());
    assert_eq!(a.body["results"].as_array().unwrap().len(), 1);
    let errors = a.body["errors"].as_array().unwrap();
    let missing = errors
        .iter()
        .find(|e| e["context"]["ids"] == json!(["999999"]))
        .unwrap();
    assert_eq!(missing["status"], "error");
    assert_eq!(missing["category"], "OBJECT_NOT_FOUND");
    assert_eq!(missing["context"]["objectWriteTraceId"], json!(["t-2"]));
    let invalid = errors
        .iter()
        .find(|e| e["context"]["objectWriteTraceId"] == json!(["t-3"]))
        .unwrap();
    assert_eq!(invalid["category"], "VALIDATION_ERROR");
    assert!(
        invalid["message"]
            .as_str()
            .unwrap()
            .starts_with("Property values were not valid: ")
    );
    assert_eq!(invalid["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
    assert_eq!(
        invalid["errors"][0]["context"]["propertyName"],
        json!(["nope"])
    );

    // A single write with an unknown property: 400 with the same details.
    let a = fx
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "x@y.z", "nope": "1"}}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert_eq!(a.body["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");

    // batch/read: missing ids are item errors.
    let a = fx
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": [{"id": id}, {"id": "424242"}], "properties": ["email"]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS);
    assert_eq!(a.body["results"][0]["properties"]["email"], "a@b.c");
    assert_eq!(a.body["errors"][0]["context"]["ids"], json!(["424242"]));
    assert!(fx.sandbox.violations().is_empty());
}

#[tokio::test]
async fn more_than_100_inputs_is_a_400_and_a_violation() {
    let fx = Fx::new().await;
    let inputs: Vec<Value> = (0..101)
        .map(|i| json!({"properties": {"email": format!("u{i}@x.y")}}))
        .collect();
    let a = fx
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert!(
        fx.sandbox
            .objects(fx.portal, ObjectType::Contacts)
            .is_empty()
    );
    let v = fx.sandbox.violations();
    assert_eq!(v.len(), 1);
    assert!(v[0].problems.iter().any(|p| p.contains("101 inputs")));

    // Unknown fields in batch bodies are recorded too (the call itself is served).
    fx.sandbox.reset_stats();
    let a = fx
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [{"properties": {"email": "q@x.y"}, "idProperty": "email"}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        fx.sandbox.violations()[0].problems[0].contains("unknown field `idProperty`"),
        "{:?}",
        fx.sandbox.violations()
    );
}

#[tokio::test]
async fn batch_results_do_not_follow_input_order() {
    let fx = Fx::new().await;
    let emails = ["a@x.y", "b@x.y", "c@x.y"];
    let inputs: Vec<Value> = emails
        .iter()
        .map(|e| json!({"properties": {"email": e}}))
        .collect();
    let a = fx
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    let got: Vec<&str> = a.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["properties"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["c@x.y", "b@x.y", "a@x.y"]);
}

#[tokio::test]
async fn associations_default_labelled_and_read_both_ways() {
    let fx = Fx::new().await;
    let contact = fx.create("contacts", json!({"email": "a@b.c"})).await;
    let company = fx.create("companies", json!({"name": "Acme"})).await;
    let pair = json!({"inputs": [{"from": {"id": contact}, "to": {"id": company}}]});
    for _ in 0..2 {
        let a = fx
            .post(
                "/crm/v4/associations/contacts/companies/batch/associate/default",
                pair.clone(),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(
            a.body["results"][0]["associationSpec"],
            json!({"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279})
        );
    }
    let back = fx
        .get(&format!(
            "/crm/v4/objects/companies/{company}/associations/contacts"
        ))
        .await;
    assert_eq!(
        back.body["results"],
        json!([{"toObjectId": contact.parse::<u64>().unwrap(),
                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 280, "label": null}]}])
    );

    let a = fx
        .post(
            "/crm/v4/associations/contacts/companies/batch/create",
            json!({"inputs": [{"from": {"id": contact}, "to": {"id": company},
                   "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["results"][0]["labels"], json!(["Primary"]));
    assert_eq!(a.body["results"][0]["fromObjectTypeId"], "0-1");
    let types = fx.sandbox.associations(
        fx.portal,
        ObjectType::Companies,
        &company,
        ObjectType::Contacts,
    );
    assert_eq!(types, vec![(contact.clone(), vec![2, 280])]);

    let a = fx
        .post(
            "/crm/v4/associations/contacts/companies/batch/read",
            json!({"inputs": [{"id": contact}, {"id": "777"}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS, "{}", a.body);
    let to = &a.body["results"][0]["to"][0];
    assert_eq!(to["associationTypes"].as_array().unwrap().len(), 2);
    assert_eq!(a.body["errors"][0]["context"]["ids"], json!(["777"]));

    let a = fx
        .post(
            "/crm/v4/associations/contacts/companies/batch/associate/default",
            json!({"inputs": [{"from": {"id": contact}, "to": {"id": "888"}}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS);
    assert_eq!(a.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(a.body["errors"][0]["context"]["ids"], json!(["888"]));

    // Object reads name their associations when asked.
    let read = fx
        .get(&format!(
            "/crm/v3/objects/contacts/{contact}?associations=companies"
        ))
        .await;
    let mut kinds: Vec<&str> = read.body["associations"]["companies"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["id"], company.as_str());
            r["type"].as_str().unwrap()
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["contact_to_company", "contact_to_company_unlabeled"]
    );

    let labels = fx
        .get("/crm/v4/associations/contacts/companies/labels")
        .await;
    assert_eq!(
        labels.body["results"],
        json!([{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": null},
               {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}])
    );

    let a = fx
        .post(
            "/crm/v4/associations/contacts/companies/batch/archive",
            json!({"inputs": [{"from": {"id": contact}, "to": [{"id": company}]}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(
        fx.sandbox
            .associations(
                fx.portal,
                ObjectType::Companies,
                &company,
                ObjectType::Contacts
            )
            .is_empty()
    );
    assert!(fx.sandbox.violations().is_empty());
}

#[tokio::test]
async fn both_path_forms_serve_the_same_objects() {
    let fx = Fx::new().await;
    let a = fx
        .post(
            "/crm/objects/2026-03/contacts",
            json!({"properties": {"email": "d@b.v"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let id = a.body["id"].as_str().unwrap();
    let v3 = fx.get(&format!("/crm/v3/objects/contacts/{id}")).await;
    assert_eq!(v3.body["properties"]["email"], "d@b.v");
    assert_eq!(v3.body["archived"], false);
    assert_eq!(v3.body["properties"]["hs_object_id"], id);
    assert!(v3.body["properties"]["lastmodifieddate"].is_string());
    let dbv = fx
        .get("/crm/objects/2026-03/contacts/d@b.v?idProperty=email&properties=email,firstname")
        .await;
    assert_eq!(dbv.body["id"], id);
    assert_eq!(dbv.body["properties"]["firstname"], Value::Null);
    let a = fx
        .patch(
            "/crm/v3/objects/contacts/d@b.v?idProperty=email",
            json!({"properties": {"lastname": "V"}}),
        )
        .await;
    assert_eq!(a.body["properties"]["lastname"], "V", "{}", a.body);
    assert!(fx.sandbox.violations().is_empty());
    let a = fx
        .patch(
            "/crm/v3/objects/contacts/V?idProperty=lastname",
            json!({"properties": {"lastname": "W"}}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert_eq!(fx.sandbox.violations().len(), 1);
    fx.sandbox.reset_stats();
    let a = fx
        .post(
            "/crm/objects/2026-03/contacts/batch/upsert",
            json!({"inputs": [{"idProperty": "email", "id": "d@b.v", "properties": {"firstname": "D"}}]}),
        )
        .await;
    assert_eq!(a.body["results"][0]["new"], false);
    let a = fx
        .post(
            "/crm/objects/2026-03/contacts/search",
            json!({"filterGroups": [{"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "d"}]}]}),
        )
        .await;
    assert_eq!(a.body["total"], 1);
    // Counted by the version in the path (since the reset above), so a client test can tell
    // which form it used.
    fx.get(&format!("/crm/v3/objects/contacts/{id}")).await;
    let stats = fx.sandbox.stats();
    assert_eq!(stats.by_version["2026-03"], 2);
    assert_eq!(stats.by_version["v3"], 1);
    assert!(fx.sandbox.violations().is_empty());
}

#[tokio::test]
async fn an_object_path_without_a_date_version_is_a_violation() {
    let fx = Fx::new().await;
    // `/crm/objects/v3/…` is not a HubSpot path: the date form takes YYYY-MM only (§0).
    fx.get("/crm/objects/v3/contacts").await;
    fx.get("/crm/objects/2026-13/contacts").await;
    let violations = fx.sandbox.violations();
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(violations[0].problems[0].contains("not a date version"));
    assert_eq!(violations[0].path, "/crm/objects/v3/contacts");
}

async fn line_item(fx: &Fx, quantity: &str, price: &str) -> String {
    fx.create(
        "line_items",
        json!({"name": "Work", "quantity": quantity, "price": price}),
    )
    .await
}

async fn associate(fx: &Fx, from: &str, id: &str, to: &str, to_id: &str) -> Answer {
    fx.put(&format!(
        "/crm/v4/objects/{from}/{id}/associations/default/{to}/{to_id}"
    ))
    .await
}

#[tokio::test]
async fn invoice_lifecycle_draft_open_paid_voided() {
    let fx = Fx::new().await;
    let a = fx
        .post("/crm/v3/objects/invoices", json!({"properties": {}}))
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert!(a.body["message"].as_str().unwrap().contains("hs_currency"));

    let invoice = fx.create("invoices", json!({"hs_currency": "USD"})).await;
    let stored = fx
        .sandbox
        .object(fx.portal, ObjectType::Invoices, &invoice)
        .unwrap();
    assert_eq!(stored.properties["hs_invoice_status"], "draft");
    assert!(stored.properties["hs_number"].starts_with("INV-"));
    let open = json!({"properties": {"hs_invoice_status": "open"}});
    let path = format!("/crm/v3/objects/invoices/{invoice}");
    let a = fx.patch(&path, open.clone()).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("associated contact and at least one associated line item")
    );

    let a = fx
        .post(
            "/crm/v3/objects/line_items",
            json!({"properties": {"name": "x", "quantity": "1", "price": "-5"}}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = fx
        .patch(&path, json!({"properties": {"hs_amount_billed": "5"}}))
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert_eq!(a.body["errors"][0]["code"], "READ_ONLY_VALUE");

    let contact = fx.create("contacts", json!({"email": "pay@er.com"})).await;
    let item = line_item(&fx, "2", "50").await;
    assert_eq!(
        associate(&fx, "invoices", &invoice, "contacts", &contact)
            .await
            .status,
        StatusCode::OK
    );
    // Still no line item.
    assert_eq!(
        fx.patch(&path, open.clone()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        associate(&fx, "line_items", &item, "invoices", &invoice)
            .await
            .status,
        StatusCode::OK
    );
    let a = fx.patch(&path, open.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["properties"]["hs_invoice_status"], "open");
    assert_eq!(a.body["properties"]["hs_amount_billed"], "100");
    assert_eq!(a.body["properties"]["hs_balance_due"], "100");

    // A line item belongs to one invoice.
    let other = fx.create("invoices", json!({"hs_currency": "USD"})).await;
    let a = associate(&fx, "invoices", &other, "line_items", &item).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    // `paid` comes from payments only.
    let a = fx
        .patch(&path, json!({"properties": {"hs_invoice_status": "paid"}}))
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");

    let a = fx
        .post(
            "/crm/v3/objects/commerce_payments",
            json!({"properties": {"hs_initial_amount": "60"}}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let p1 = fx
        .create(
            "commerce_payments",
            json!({"hs_initial_amount": "60", "hs_initiated_date": "2026-12-07T12:00:00Z"}),
        )
        .await;
    associate(&fx, "commerce_payments", &p1, "invoices", &invoice).await;
    let got = fx
        .get(&format!(
            "{path}?properties=hs_invoice_status,hs_amount_paid,hs_balance_due"
        ))
        .await;
    assert_eq!(got.body["properties"]["hs_invoice_status"], "open");
    assert_eq!(got.body["properties"]["hs_amount_paid"], "60");
    assert_eq!(got.body["properties"]["hs_balance_due"], "40");
    // A payment created with its invoice association inline.
    let a = fx
        .post(
            "/crm/v3/objects/commerce_payments",
            json!({"properties": {"hs_initial_amount": "40", "hs_initiated_date": "2026-12-07"},
                   "associations": [{"to": {"id": invoice}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 541}]}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let got = fx
        .get(&format!(
            "{path}?properties=hs_invoice_status,hs_balance_due"
        ))
        .await;
    assert_eq!(got.body["properties"]["hs_invoice_status"], "paid");
    assert_eq!(got.body["properties"]["hs_balance_due"], "0");

    // Void the other (draft) invoice; a voided invoice cannot change.
    let other_path = format!("/crm/v3/objects/invoices/{other}");
    let a = fx
        .patch(
            &other_path,
            json!({"properties": {"hs_invoice_status": "voided"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = fx
        .patch(&other_path, json!({"properties": {"hs_title": "x"}}))
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert!(fx.sandbox.violations().is_empty());
}

#[tokio::test]
async fn portal_switches_refuse_writes_with_403() {
    let fx = Fx::new().await;
    let invoice = fx.create("invoices", json!({"hs_currency": "USD"})).await;
    fx.sandbox
        .set_invoice_writes_unavailable(fx.portal, true)
        .unwrap();
    for (t, props) in [
        ("invoices", json!({"hs_currency": "USD"})),
        ("line_items", json!({"name": "x"})),
    ] {
        let a = fx
            .post(
                &format!("/crm/v3/objects/{t}"),
                json!({"properties": props}),
            )
            .await;
        assert_error(&a, 403, "FORBIDDEN");
    }
    let a = fx
        .post(
            "/crm/v3/objects/invoices/batch/upsert",
            json!({"inputs": [{"idProperty": "hs_object_id", "id": invoice, "properties": {}}]}),
        )
        .await;
    assert_error(&a, 403, "FORBIDDEN");
    let a = fx.get(&format!("/crm/v3/objects/invoices/{invoice}")).await;
    assert_eq!(a.status, StatusCode::OK);
    fx.sandbox
        .set_invoice_writes_unavailable(fx.portal, false)
        .unwrap();

    fx.sandbox
        .set_no_payment_processing(fx.portal, true)
        .unwrap();
    let a = fx
        .post(
            "/crm/v3/objects/commerce_payments",
            json!({"properties": {"hs_initial_amount": "1", "hs_initiated_date": "2026-12-07"}}),
        )
        .await;
    assert_error(&a, 403, "FORBIDDEN");
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("payment processing")
    );
    assert_eq!(
        fx.get("/crm/v3/objects/commerce_payments").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_scopes_answer_hubspots_403() {
    let fx = Fx::new().await;
    let token = fx
        .sandbox
        .issue_private_app_token(fx.portal, &["crm.objects.contacts.read"])
        .unwrap();
    let a = fx
        .call_as(
            Some(&token),
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "a@b.c"}})),
        )
        .await;
    assert_error(&a, 403, "MISSING_SCOPES");
    assert_eq!(
        a.body["message"],
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes."
    );
    assert_eq!(
        a.body["errors"],
        json!([{"message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}])
    );
    assert_eq!(
        a.body["links"],
        json!({"scopes": "https://developers.hubspot.com/scopes"})
    );
    let a = fx
        .call_as(
            Some(&token),
            Method::GET,
            "/crm/v3/properties/contacts",
            None,
        )
        .await;
    assert_error(&a, 403, "MISSING_SCOPES");
    assert_eq!(
        a.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.schemas.contacts.read"])
    );
}

#[tokio::test]
async fn properties_and_groups() {
    let fx = Fx::new().await;
    let a = fx
        .post(
            "/crm/v3/properties/contacts/groups",
            json!({"name": "freshbooks", "label": "FreshBooks", "displayOrder": 1}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = fx
        .post(
            "/crm/v3/properties/contacts/groups",
            json!({"name": "freshbooks", "label": "FreshBooks"}),
        )
        .await;
    assert_error(&a, 409, "OBJECT_ALREADY_EXISTS");
    let groups = fx.get("/crm/v3/properties/contacts/groups").await;
    assert!(
        groups.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "freshbooks")
    );

    let status = json!({"name": "fb_payment_status", "label": "Payment status", "type": "enumeration",
        "fieldType": "select", "groupName": "freshbooks",
        "options": [{"label": "Paid", "value": "paid", "displayOrder": 0, "hidden": false},
                    {"label": "Unpaid", "value": "unpaid", "displayOrder": 1, "hidden": false}]});
    let a = fx.post("/crm/v3/properties/contacts", status.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["hasUniqueValue"], false);
    let a = fx.post("/crm/v3/properties/contacts", status).await;
    assert_error(&a, 409, "OBJECT_ALREADY_EXISTS");
    assert_eq!(
        a.body["message"],
        "Property named 'fb_payment_status' already exists."
    );

    let a = fx
        .post(
            "/crm/v3/properties/contacts/batch/create",
            json!({"inputs": [
                {"name": "fb_balance", "label": "Balance", "type": "number", "fieldType": "number", "groupName": "freshbooks", "numberDisplayHint": "currency"},
                {"name": "fb_bad", "label": "Bad", "type": "text", "fieldType": "text", "groupName": "freshbooks"},
            ]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::MULTI_STATUS, "{}", a.body);
    assert_eq!(a.body["errors"][0]["context"]["ids"], json!(["fb_bad"]));
    let one = fx.get("/crm/v3/properties/contacts/fb_balance").await;
    assert_eq!(one.body["type"], "number");
    assert_eq!(one.body["numberDisplayHint"], "currency");
    let all = fx.get("/crm/v3/properties/contacts").await;
    assert!(
        all.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "email")
    );
    let a = fx
        .patch(
            "/crm/v3/properties/contacts/fb_balance",
            json!({"hasUniqueValue": true}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = fx
        .patch(
            "/crm/v3/properties/contacts/fb_balance",
            json!({"label": "Outstanding"}),
        )
        .await;
    assert_eq!(a.body["label"], "Outstanding");

    // At most 10 custom unique-value properties per object type.
    for i in 0..11 {
        let a = fx
            .post(
                "/crm/v3/properties/companies",
                json!({"name": format!("key_{i}"), "label": "Key", "type": "string",
                       "fieldType": "text", "groupName": "companyinformation", "hasUniqueValue": true}),
            )
            .await;
        let want = if i < 10 { 201 } else { 400 };
        assert_eq!(a.status.as_u16(), want, "{}", a.body);
    }

    // Values are checked against the definitions.
    let a = fx
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "e@x.y", "fb_payment_status": "overdue"}}),
        )
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert_eq!(a.body["errors"][0]["code"], "INVALID_OPTION");
    let a = fx
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "e@x.y", "fb_payment_status": "paid", "fb_balance": "12.5"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert!(fx.sandbox.violations().is_empty());
    // Dates: YYYY-MM-DD or epoch ms at midnight UTC.
    let invoice = |date: &str| json!({"properties": {"hs_currency": "USD", "hs_due_date": date}});
    for (date, status) in [
        ("2026-12-31", 201),
        ("1798675200000", 201),
        ("1798675200001", 400),
        ("12/31/2026", 400),
    ] {
        let r = fx.post("/crm/v3/objects/invoices", invoice(date)).await;
        assert_eq!(r.status.as_u16(), status, "{date}: {}", r.body);
    }
    // A number sent as a JSON number is served but recorded.
    fx.patch(
        &format!(
            "/crm/v3/objects/contacts/{}",
            a.body["id"].as_str().unwrap()
        ),
        json!({"properties": {"fb_balance": 3}}),
    )
    .await;
    assert_eq!(fx.sandbox.violations().len(), 1);
}

#[tokio::test]
async fn search_filters_paging_cap_lag_and_its_own_limit() {
    let fx = Fx::new().await;
    for (i, name) in ["Ann Lee", "Bob Ray", "Cat Lee"].iter().enumerate() {
        let (first, last) = name.split_once(' ').unwrap();
        fx.sandbox
            .create_object(
                fx.portal,
                ObjectType::Contacts,
                &[
                    ("email", &format!("{}@x.io", first.to_lowercase())),
                    ("firstname", first),
                    ("lastname", last),
                    ("zip", &format!("{}", 100 + i)),
                ],
            )
            .unwrap();
    }
    let search = "/crm/v3/objects/contacts/search";
    let filter = |f: Value| json!({"filterGroups": [{"filters": [f]}], "properties": ["email"]});
    let cases = [
        (
            json!({"propertyName": "lastname", "operator": "EQ", "value": "lee"}),
            2,
        ),
        (
            json!({"propertyName": "zip", "operator": "GT", "value": "100"}),
            2,
        ),
        (
            json!({"propertyName": "firstname", "operator": "IN", "values": ["Ann", "Bob"]}),
            2,
        ),
        (
            json!({"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}),
            3,
        ),
        (
            json!({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "bob"}),
            1,
        ),
    ];
    for (f, total) in cases {
        let a = fx.post(search, filter(f.clone())).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["total"], total, "{f}");
        // Four per second per token: move the clock between searches.
        fx.advance(1);
    }
    let a = fx
        .post(
            search,
            json!({"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}], "limit": 2}),
        )
        .await;
    assert_eq!(a.body["results"][0]["properties"]["firstname"], "Cat");
    assert_eq!(a.body["paging"]["next"]["after"], "2");
    let a = fx.post(search, json!({"after": "10000"})).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = fx.post(search, json!({"limit": 201})).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    fx.advance(1);

    // Eventual consistency.
    fx.sandbox.set_search_lag(std::time::Duration::from_secs(5));
    fx.create("contacts", json!({"email": "new@x.io"})).await;
    let q = filter(json!({"propertyName": "email", "operator": "EQ", "value": "new@x.io"}));
    assert_eq!(fx.post(search, q.clone()).await.body["total"], 0);
    fx.advance(5);
    assert_eq!(fx.post(search, q.clone()).await.body["total"], 1);

    // The secondly limit.
    fx.advance(1);
    for _ in 0..4 {
        assert_eq!(fx.post(search, q.clone()).await.status, StatusCode::OK);
    }
    let a = fx.post(search, q.clone()).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["message"], "You have reached your secondly limit.");
    assert_eq!(a.body["errorType"], "RATE_LIMIT");
    // Other routes are not held by it.
    assert_eq!(
        fx.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK
    );
    fx.advance(1);
    assert_eq!(fx.post(search, q).await.status, StatusCode::OK);
    assert_eq!(fx.sandbox.stats().throttled["SECONDLY"], 1);
}

#[tokio::test]
async fn the_burst_limit_answers_429_with_headers() {
    let fx = Fx::new().await;
    let a = fx.get("/crm/v3/objects/contacts").await;
    assert_eq!(a.headers["x-hubspot-ratelimit-max"], "100");
    assert_eq!(a.headers["x-hubspot-ratelimit-remaining"], "99");
    assert_eq!(
        a.headers["x-hubspot-ratelimit-interval-milliseconds"],
        "10000"
    );
    assert_eq!(a.headers["x-hubspot-ratelimit-daily"], "250000");
    assert_eq!(a.headers["x-hubspot-ratelimit-daily-remaining"], "249999");
    for _ in 1..100 {
        assert_eq!(
            fx.get("/crm/v3/objects/contacts").await.status,
            StatusCode::OK
        );
    }
    let a = fx.get("/crm/v3/objects/contacts").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["status"], "error");
    assert_eq!(
        a.body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(a.body["errorType"], "RATE_LIMIT");
    assert_eq!(a.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert!(a.body["correlationId"].is_string());
    assert_eq!(a.headers["x-hubspot-ratelimit-remaining"], "0");
    // Another app (token) on the same portal has its own window.
    let other = fx
        .sandbox
        .issue_private_app_token(fx.portal, ALL_SCOPES)
        .unwrap();
    let a = fx
        .call_as(Some(&other), Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    fx.advance(10);
    assert_eq!(
        fx.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK
    );
    let stats = fx.sandbox.stats();
    assert_eq!(stats.throttled["TEN_SECONDLY_ROLLING"], 1);
    assert_eq!(stats.max_in_window, 100);
    // OAuth answers carry no daily headers.
    let oauth = fx
        .sandbox
        .issue_oauth_tokens(fx.portal, ALL_SCOPES)
        .unwrap();
    let a = fx
        .call_as(
            Some(&oauth.access_token),
            Method::GET,
            "/crm/v3/objects/contacts",
            None,
        )
        .await;
    assert!(a.headers.get("x-hubspot-ratelimit-daily").is_none());
    assert!(a.headers.get("x-hubspot-ratelimit-max").is_some());
}

#[tokio::test]
async fn the_daily_limit_resets_at_the_portals_midnight() {
    let fx = Fx::new().await;
    let portal = fx
        .sandbox
        .add_portal(PortalSeed {
            time_zone: Some("America/Los_Angeles".into()),
            daily_limit: Some(3),
            ..PortalSeed::default()
        })
        .unwrap();
    let token = fx
        .sandbox
        .issue_private_app_token(portal.portal_id, ALL_SCOPES)
        .unwrap();
    let list = "/crm/v3/objects/contacts";
    for _ in 0..3 {
        let a = fx.call_as(Some(&token), Method::GET, list, None).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let a = fx.call_as(Some(&token), Method::GET, list, None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["message"], "You have reached your daily limit.");
    assert_eq!(a.body["policyName"], "DAILY");
    assert_eq!(a.headers["x-hubspot-ratelimit-daily-remaining"], "0");
    // 12:00 UTC is 04:00 in Los Angeles: midnight there is 08:00 UTC tomorrow.
    fx.advance(19 * 3600 + 59 * 60);
    let a = fx.call_as(Some(&token), Method::GET, list, None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    fx.advance(60);
    let a = fx.call_as(Some(&token), Method::GET, list, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(fx.sandbox.daily_usage(portal.portal_id), 1);
    assert_eq!(fx.sandbox.stats().throttled["DAILY"], 2);
}

#[tokio::test]
async fn faults_render_in_hubspots_shape() {
    let fx = Fx::new().await;
    let list = "/crm/v3/objects/contacts";
    fx.sandbox
        .inject(Fault::status(503).times(1).on_route("objects"));
    let a = fx.get(list).await;
    assert_error(&a, 503, "INTERNAL_ERROR");
    fx.sandbox.inject(Fault::status(477).times(1));
    let a = fx.get(list).await;
    assert_error(&a, 477, "MIGRATION_IN_PROGRESS");
    assert_eq!(a.headers["retry-after"], "60");
    fx.sandbox.inject(Fault::status(423).times(1));
    assert_error(&fx.get(list).await, 423, "LOCKED");
    fx.sandbox.inject(Fault::throttle(3).times(1));
    let a = fx.get(list).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(a.headers["retry-after"], "3");
    // Fault rules on another class leave this one alone.
    fx.sandbox
        .inject(Fault::status(500).times(1).on_route("search"));
    assert_eq!(fx.get(list).await.status, StatusCode::OK);
    fx.sandbox.clear_faults();

    fx.sandbox.storm(Policy::Daily, 2, Some("batch"));
    let up = json!({"inputs": [{"idProperty": "email", "id": "s@t.u", "properties": {}}]});
    for _ in 0..2 {
        let a = fx
            .post("/crm/v3/objects/contacts/batch/upsert", up.clone())
            .await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a.body["policyName"], "DAILY");
    }
    assert_eq!(
        fx.post("/crm/v3/objects/contacts/batch/upsert", up)
            .await
            .status,
        StatusCode::OK
    );

    fx.sandbox.inject(Fault::drop_connection().times(1));
    let err = fx
        .http
        .get(format!("{}{list}", fx.sandbox.base_url()))
        .bearer_auth(&fx.token)
        .send()
        .await;
    assert!(err.is_err());
    assert_eq!(fx.get(list).await.status, StatusCode::OK);
}

#[tokio::test]
async fn counters_count_routes_batches_and_throttles() {
    let fx = Fx::new().await;
    let inputs: Vec<Value> = (0..5)
        .map(|i| json!({"idProperty": "email", "id": format!("c{i}@x.y"), "properties": {}}))
        .collect();
    fx.post(
        "/crm/v3/objects/contacts/batch/upsert",
        json!({"inputs": inputs}),
    )
    .await;
    fx.get("/crm/v3/objects/contacts").await;
    fx.sandbox.storm(Policy::TenSecondlyRolling, 1, None);
    fx.get("/crm/v3/objects/contacts").await;
    let stats = fx.sandbox.stats();
    assert_eq!(stats.total, 3);
    assert_eq!(stats.by_route["contacts batch/upsert"], 1);
    assert_eq!(stats.by_route["contacts list"], 2);
    assert_eq!(stats.batch_calls["contacts batch/upsert"], 1);
    assert_eq!(stats.batch_inputs["contacts batch/upsert"], 5);
    assert_eq!(stats.stormed["TEN_SECONDLY_ROLLING"], 1);
    assert_eq!(stats.max_in_window, 2);
    assert_eq!(stats.violations, 0);

    // Over HTTP too.
    let http: Value = fx
        .http
        .get(format!("{}/_sandbox/stats", fx.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(http["total"], 3);
    fx.sandbox.reset_stats();
    assert_eq!(fx.sandbox.stats(), HubspotStats::default());
}

#[tokio::test]
async fn the_http_control_api_sets_up_a_portal() {
    let fx = Fx::new().await;
    let base = fx.sandbox.base_url();
    let setup: Value = fx
        .http
        .post(format!("{base}/_sandbox/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let portal = setup["portal"]["portal_id"].as_u64().unwrap();
    let created: Value = fx
        .http
        .post(format!("{base}/_sandbox/portals/{portal}/objects/contacts"))
        .json(&json!({"properties": {"email": "ctl@x.y"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string());
    let r = fx
        .http
        .put(format!("{base}/_sandbox/portals/{portal}/switches"))
        .json(&json!({"no_payment_processing": true, "tier": "enterprise"}))
        .send()
        .await
        .unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["no_payment_processing"], true);
    assert_eq!(info["tier"], "enterprise");
    let snapshot: Value = fx
        .http
        .get(format!("{base}/_sandbox/portals/{portal}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        snapshot["objects"]["contacts"][0]["properties"]["email"],
        "ctl@x.y"
    );
}
