//! `apply` for FreshBooks sources: registers each account's callbacks at FreshBooks against
//! our store's callback records and waits for their verification handshakes
//! (docs/vendors/freshbooks.md §1.1–1.2). Callbacks are registered only at a webhook base the
//! vendor can reach (`--webhook-base-url` or the stack's output).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use mlc::connections::{Connection, ConnectionSet};
use mlc::flows::Flow;
use mlc::ports::secret_names;
use mlc::ports::{CallbackStatus, Clock, Secrets, Store, SystemClock};
use mlc::tokens::TokenManager;
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callback_registration::{
    CallbackSpec, register_pending, wait_verified,
};
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc::vendors::freshbooks::models::{Callback, Entity};
use mlc::vendors::freshbooks::oauth::FreshbooksOauth;

use crate::onboarding::apply::{Applying, Base};

/// Registers the callbacks of every FreshBooks source of the applied set. `Ok(false)` when one
/// failed or was not verified in time.
pub(super) async fn apply(applying: &Applying<'_>) -> anyhow::Result<bool> {
    let mut ok = true;
    let (store, secrets, args) = (&applying.store, &applying.secrets, applying.args);
    let sources = sources_of(applying.new);
    // Callbacks are not deleted for sources that went away: a person may be moving the
    // account to another connection file or stack. Say so, so nobody wonders.
    let kept: BTreeSet<&String> = sources.keys().map(|(a, _)| a).collect();
    for (account, _) in sources_of(applying.old).into_keys() {
        if !kept.contains(&account) {
            println!(
                "note: FreshBooks account {account} is no longer a source; its callbacks stay registered at FreshBooks (delete them there if it is gone for good)"
            );
        }
    }
    match applying.base {
        Base::Given(given) if !sources.is_empty() => {
            let tokens = Arc::new(TokenManager::new(
                secrets.clone(),
                store.clone(),
                Arc::new(SystemClock),
                Arc::new(FreshbooksOauth::new(&args.freshbooks_api)?),
            ));
            let registrar = Registrar {
                store: store.clone(),
                secrets: secrets.clone(),
                clock: Arc::new(SystemClock),
                tokens,
                api: args.freshbooks_api.clone(),
                base: given.trim_end_matches('/').to_string(),
            };
            ok = registrar
                .register_all(&sources, Duration::from_secs(args.wait))
                .await?;
        }
        Base::Dev(_) | Base::Missing if !sources.is_empty() => println!(
            "no --webhook-base-url: FreshBooks callbacks not registered (events still arrive through the poller; `ml-connector dev --sandbox` registers its own)"
        ),
        _ => {}
    }
    Ok(ok)
}

/// Every enabled FreshBooks source (account, credential set), with the entities whose
/// callbacks it registers: what the account's connections' flows read between them
/// ([`entities_for`]), so `bill_vendor` only for an account some flow reads bill vendors of.
fn sources_of(set: &ConnectionSet) -> Sources {
    sources_with(set, Flow::source_entities_of)
}

/// [`sources_of`] with each connection's source entities from `needs`: for tests of flows this
/// build does not have.
fn sources_with(
    set: &ConnectionSet,
    needs: impl Fn(&Connection) -> &'static [&'static str],
) -> Sources {
    set.for_vendor(Vendor::Freshbooks)
        .filter_map(|(_, c)| {
            let account = c.source.account.as_deref()?;
            let of_account = set
                .for_vendor(Vendor::Freshbooks)
                .map(|(_, c)| c)
                .filter(|o| o.source.account.as_deref() == Some(account));
            let entities = Entity::among(&Flow::needed_entities(of_account, &needs));
            Some((
                (account.to_string(), c.source.credentials.clone()),
                entities,
            ))
        })
        .collect()
}

/// The entities to subscribe to per (account, credential set).
type Sources = BTreeMap<(String, String), Vec<Entity>>;

/// The route id of an account's callback for `event`. Route ids key the callback records, so
/// they carry the account to stay unique across accounts.
pub(crate) fn route_id(account: &str, event: &str) -> String {
    format!("{account}-{event}")
}

struct Registrar {
    store: Arc<dyn Store>,
    secrets: Arc<dyn Secrets>,
    clock: Arc<dyn Clock>,
    tokens: Arc<TokenManager>,
    api: String,
    base: String,
}

/// Where one callback stands after registration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AlreadyVerified,
    Waiting,
    Failed(String),
}

impl Registrar {
    async fn register_all(&self, sources: &Sources, wait: Duration) -> anyhow::Result<bool> {
        let mut states: BTreeMap<(String, String), State> = BTreeMap::new();
        for ((account, credentials), entities) in sources {
            // The callback events are the entities' names (docs/vendors/freshbooks.md §1.5).
            let events = entities.iter().map(|e| e.as_str());
            let client = FreshbooksClient::new(&self.api, self.tokens.clone(), credentials)?;
            let existing = match client.list_callbacks(account).await {
                Ok(list) => list,
                Err(e) => {
                    for event in events {
                        states.insert(
                            (account.clone(), event.to_string()),
                            State::Failed(format!("listing callbacks: {e}")),
                        );
                    }
                    continue;
                }
            };
            for event in events {
                let state = self
                    .register_one(&client, account, credentials, event, &existing)
                    .await;
                states.insert((account.clone(), event.to_string()), state);
            }
        }
        let waiting: Vec<String> = states
            .iter()
            .filter(|(_, s)| **s == State::Waiting)
            .map(|((account, event), _)| route_id(account, event))
            .collect();
        if !waiting.is_empty() {
            eprintln!(
                "waiting up to {} s for {} verification handshake(s)…",
                wait.as_secs(),
                waiting.len()
            );
        }
        let waiting: Vec<&str> = waiting.iter().map(String::as_str).collect();
        let verified = wait_verified(
            self.store.as_ref(),
            &waiting,
            wait,
            Duration::from_millis(250),
        )
        .await;
        println!("FreshBooks callbacks:");
        let mut ok = true;
        for ((account, event), state) in &states {
            let uri = self.uri(account, event);
            let text = match state {
                State::AlreadyVerified => "verified (already registered)".to_string(),
                State::Waiting if verified.contains(route_id(account, event).as_str()) => {
                    "verified".to_string()
                }
                State::Waiting => {
                    ok = false;
                    format!(
                        "NOT verified within {} s: is the webhook route reachable from FreshBooks? run apply again to resend",
                        wait.as_secs()
                    )
                }
                State::Failed(why) => {
                    ok = false;
                    format!("FAILED: {why}")
                }
            };
            println!("  {account} {event:<11} {uri}  {text}");
        }
        Ok(ok)
    }

    fn uri(&self, account: &str, event: &str) -> String {
        format!(
            "{}/freshbooks/{account}/{}",
            self.base,
            route_id(account, event)
        )
    }

    /// Registers one callback unless FreshBooks and this store both have it verified; one
    /// registered before but not usable here (unverified, or its verifier is not in this
    /// store) gets its handshake resent.
    async fn register_one(
        &self,
        client: &FreshbooksClient,
        account: &str,
        credentials: &str,
        event: &str,
        existing: &[Callback],
    ) -> State {
        let route = route_id(account, event);
        let uri = self.uri(account, event);
        let found = existing.iter().find(|c| c.uri == uri && c.event == event);
        let record = self.store.get_callback(&route).await.ok().flatten();
        let verifier = self
            .secrets
            .get(&secret_names::freshbooks(account, &route))
            .await
            .ok()
            .flatten();
        if let Some(cb) = found
            && cb.verified
            && verifier.is_some()
            && record.as_ref().is_some_and(|r| {
                r.status == CallbackStatus::Verified
                    && r.callback_id.as_deref() == Some(cb.callbackid.as_str())
            })
        {
            return State::AlreadyVerified;
        }
        let spec = CallbackSpec {
            account,
            credentials,
            event,
            route_id: &route,
            uri: &uri,
        };
        let registered = found.map(|c| c.callbackid.as_str());
        match register_pending(
            self.store.as_ref(),
            self.clock.as_ref(),
            client,
            &spec,
            registered,
        )
        .await
        {
            Ok(()) => State::Waiting,
            Err(e) => State::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_the_enabled_accounts_once_each() {
        let set = ConnectionSet::from_toml(
            r#"
[connection.a]
source = { vendor = "freshbooks", account = "A", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.a2]
source = { vendor = "freshbooks", account = "A", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
[connection.off]
enabled = false
source = { vendor = "freshbooks", account = "B", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.d]
source = { vendor = "freshbooks", account = "D", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
"#,
            "t.toml",
        )
        .unwrap();
        let accounts: Vec<String> = sources_of(&set).into_keys().map(|(a, _)| a).collect();
        assert_eq!(accounts, ["A", "D"]);
    }

    #[test]
    fn bill_vendor_callbacks_only_for_accounts_whose_flows_read_them() {
        let set = ConnectionSet::from_toml_any_flow(
            r#"
[connection.mc]
source = { vendor = "freshbooks", account = "A", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1" }
[connection.hs]
source = { vendor = "freshbooks", account = "A", credentials = "fb" }
target = { vendor = "hubspot", credentials = "hs", portal_id = "1" }
[connection.mc-only]
source = { vendor = "freshbooks", account = "B", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
"#,
            "t.toml",
        )
        .unwrap();
        let events = |sources: Sources| -> Vec<(String, Vec<&'static str>)> {
            sources
                .into_iter()
                .map(|((a, _), es)| (a, es.iter().map(|e| e.as_str()).collect()))
                .collect()
        };
        let three = vec!["client", "invoice", "payment"];
        // This build's flows: FreshBooks → HubSpot reads bill vendors, so account A (and only
        // A) subscribes to them.
        assert_eq!(
            events(sources_of(&set)),
            [
                (
                    "A".to_string(),
                    vec!["client", "invoice", "payment", "bill_vendor"]
                ),
                ("B".to_string(), three.clone())
            ]
        );
        // With a flow that reads bill vendors, its account subscribes to them too.
        let hubspot = |c: &Connection| match c.target.vendor {
            Vendor::Hubspot => &["client", "invoice", "payment", "bill_vendor"][..],
            _ => Flow::source_entities_of(c),
        };
        assert_eq!(
            events(sources_with(&set, hubspot)),
            [
                (
                    "A".to_string(),
                    vec!["client", "invoice", "payment", "bill_vendor"]
                ),
                ("B".to_string(), three)
            ]
        );
    }
}
