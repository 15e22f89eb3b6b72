//! An in-memory QuickBooks company for the QuickBooks flows' unit tests: stateful (customers by
//! id with `SyncToken` optimistic locking, note attachables, a change log for CDC), counting
//! every call per method, with QuickBooks' documented refusals (docs/vendors/quickbooks.md §3.3): Fault 5010
//! on a stale `SyncToken`, Fault 610 on an unknown id (`Ok(None)` for reads), and hooks to
//! inject errors and concurrent edits.
//!
//! [`FakeQuickbooks`] is `QuickbooksApi` itself; hold it in an `Arc` next to other fakes (e.g.
//! [`crate::testing::fakes::FakeClients`], which can serve it alone).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::testing::fakes::lock;
use crate::vendors::quickbooks::models::{
    Attachable, AttachableRef, ChangedCustomers, Customer, CustomerUpdate, EmailAddress, EntityRef,
    MAX_NOTE_CHARS, MetaData,
};
use crate::vendors::quickbooks::{QuickbooksApi, QuickbooksError};

/// A QuickBooks Fault as the client parses it (HTTP `status`, string `code`).
pub fn fault(status: u16, code: &str, message: &str) -> QuickbooksError {
    QuickbooksError::Fault {
        status,
        code: Some(code.into()),
        message: message.into(),
        detail: None,
        intuit_tid: Some(format!("fake-tid-{code}")),
        retry_after: None,
    }
}

/// Fault 5010, as QuickBooks answers a stale `SyncToken`.
pub fn stale() -> QuickbooksError {
    fault(400, "5010", "Stale Object Error")
}

/// Fault 610, as QuickBooks answers an unknown (or deleted) object.
pub fn not_found() -> QuickbooksError {
    fault(400, "610", "Object Not Found")
}

/// A throttling answer (429), transient.
pub fn throttled() -> QuickbooksError {
    fault(429, "3001", "ThrottleExceeded")
}

/// How the fake answers `customers_by_email`: QuickBooks' case handling, and whether
/// `PrimaryEmailAddr` is filterable at all, are UNCONFIRMED (docs/vendors/quickbooks.md §3.4), so a flow
/// must work under each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailQuery {
    /// Trimmed, case-insensitive match (the default).
    IgnoreCase,
    /// Exact match.
    Exact,
    /// The filter is ignored: every customer comes back.
    Unfiltered,
}

/// How another user's edit changes a customer between our read and our write.
pub type Edit = Arc<dyn Fn(&mut Customer) + Send + Sync>;

/// The method names [`FakeQuickbooks::calls_to`] and [`FakeQuickbooks::inject`] use.
pub mod method {
    /// `QuickbooksApi::customer`.
    pub const CUSTOMER: &str = "customer";
    /// `QuickbooksApi::customers_by_email`.
    pub const CUSTOMERS_BY_EMAIL: &str = "customers_by_email";
    /// `QuickbooksApi::changed_customers`.
    pub const CHANGED_CUSTOMERS: &str = "changed_customers";
    /// `QuickbooksApi::customers_updated_since`.
    pub const CUSTOMERS_UPDATED_SINCE: &str = "customers_updated_since";
    /// `QuickbooksApi::update_customer`.
    pub const UPDATE_CUSTOMER: &str = "update_customer";
    /// `QuickbooksApi::create_customer_note`.
    pub const CREATE_CUSTOMER_NOTE: &str = "create_customer_note";
    /// `QuickbooksApi::company_name`.
    pub const COMPANY_NAME: &str = "company_name";
}

/// The company's state. Public so a test can look at or set anything directly.
pub struct QbState {
    /// By `Id`. Deleted customers are removed (and logged as deleted in `changes`).
    pub customers: BTreeMap<String, Customer>,
    /// Every note attachable created, in order.
    pub notes: Vec<Attachable>,
    /// `requestid` → the attachable it created: a replay returns it instead of a second note.
    pub note_requests: BTreeMap<String, Attachable>,
    /// (when, customer id, deleted): what CDC and the updated-since query read.
    pub changes: Vec<(DateTime<Utc>, String, bool)>,
    /// The server clock; every write advances it by one second, so change times are distinct.
    pub now: DateTime<Utc>,
    /// The most objects one CDC answer holds (QuickBooks: 1000).
    pub cdc_cap: usize,
    /// How the email query compares (QuickBooks' own behaviour is UNCONFIRMED).
    pub email_query: EmailQuery,
    /// The company's name, as `CompanyInfo` answers it.
    pub company_name: String,
    /// Errors the next calls of a method fail with, first in first out (by [`method`] name).
    pub inject: BTreeMap<&'static str, VecDeque<QuickbooksError>>,
    /// Per customer id: the edits that hit the next sparse updates of that customer just before
    /// they arrive (so each of them meets a new `SyncToken` → 5010).
    pub concurrent: BTreeMap<String, VecDeque<Edit>>,
    next_id: u64,
}

impl Default for QbState {
    fn default() -> Self {
        QbState {
            customers: BTreeMap::new(),
            notes: vec![],
            note_requests: BTreeMap::new(),
            changes: vec![],
            now: Utc
                .with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
                .single()
                .unwrap_or_default(),
            cdc_cap: 1000,
            email_query: EmailQuery::IgnoreCase,
            company_name: "Fake Company".into(),
            inject: BTreeMap::new(),
            concurrent: BTreeMap::new(),
            next_id: 1,
        }
    }
}

impl QbState {
    fn tick(&mut self) -> DateTime<Utc> {
        self.now += Duration::seconds(1);
        self.now
    }

    fn new_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        id.to_string()
    }

    fn touch(&mut self, c: &mut Customer, deleted: bool) {
        let at = self.tick();
        let meta = c.meta_data.get_or_insert(MetaData {
            create_time: Some(stamp(at)),
            last_updated_time: None,
        });
        meta.last_updated_time = Some(stamp(at));
        self.changes.push((at, c.id.clone(), deleted));
    }

    fn bump(c: &mut Customer) {
        let n: u64 = c.sync_token.parse().unwrap_or(0);
        c.sync_token = (n + 1).to_string();
    }
}

/// QuickBooks writes times with an offset (`2026-03-02T12:00:01-08:00`); the fake writes UTC so.
fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// An active customer with only an id (and `SyncToken` "0").
fn blank(id: &str) -> Customer {
    Customer {
        id: id.into(),
        sync_token: "0".into(),
        display_name: None,
        given_name: None,
        family_name: None,
        company_name: None,
        primary_email_addr: None,
        active: true,
        notes: None,
        meta_data: None,
        status: None,
    }
}

/// The fake company. One realm: the `realm` argument is recorded but not checked.
#[derive(Default)]
pub struct FakeQuickbooks {
    /// The companies it serves.
    pub state: Mutex<QbState>,
    /// Every call as `method args`, in order.
    pub calls: Mutex<Vec<String>>,
}

impl FakeQuickbooks {
    /// An empty fake.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `f` on the state (to seed or inspect it).
    pub fn with<R>(&self, f: impl FnOnce(&mut QbState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Adds an active customer (`SyncToken` "0") and returns its id.
    pub fn add_customer(&self, display_name: &str, email: Option<&str>) -> String {
        self.add_customer_with(|c| {
            c.display_name = Some(display_name.into());
            c.primary_email_addr = email.map(|e| EmailAddress {
                address: Some(e.into()),
            });
        })
    }

    /// Adds a customer shaped by `f` (the id, `SyncToken` and `MetaData` are the fake's).
    pub fn add_customer_with(&self, f: impl FnOnce(&mut Customer)) -> String {
        let mut s = lock(&self.state);
        let id = s.new_id();
        let mut c = blank(&id);
        f(&mut c);
        c.id = id.clone();
        c.sync_token = "0".into();
        s.touch(&mut c, false);
        s.customers.insert(id.clone(), c);
        id
    }

    /// Changes a customer as a QuickBooks user would (new `SyncToken`, logged for CDC).
    /// `false` when there is no such customer.
    pub fn edit_customer(&self, id: &str, f: impl FnOnce(&mut Customer)) -> bool {
        let mut s = lock(&self.state);
        let Some(mut c) = s.customers.remove(id) else {
            return false;
        };
        f(&mut c);
        QbState::bump(&mut c);
        s.touch(&mut c, false);
        s.customers.insert(id.into(), c);
        true
    }

    /// Deletes a customer outright (as a merge does to the merged-away one): reads answer 610,
    /// CDC returns a deleted stub.
    pub fn delete_customer(&self, id: &str) -> bool {
        let mut s = lock(&self.state);
        let Some(mut c) = s.customers.remove(id) else {
            return false;
        };
        s.touch(&mut c, true);
        true
    }

    /// The customer as stored now (no call counted).
    pub fn stored(&self, id: &str) -> Option<Customer> {
        lock(&self.state).customers.get(id).cloned()
    }

    /// The notes of the attachables linked to customer `id`, in creation order.
    pub fn notes_of(&self, id: &str) -> Vec<String> {
        lock(&self.state)
            .notes
            .iter()
            .filter(|a| a.attachable_ref.iter().any(|r| r.entity_ref.value == id))
            .filter_map(|a| a.note.clone())
            .collect()
    }

    /// The next call of `method` (a [`method`] name) fails with `error`; several injections
    /// fail several calls, in order.
    pub fn inject(&self, method: &'static str, error: QuickbooksError) {
        lock(&self.state)
            .inject
            .entry(method)
            .or_default()
            .push_back(error);
    }

    /// The next `n` sparse updates of customer `id` each meet a concurrent edit made by `edit`
    /// (plus a new `SyncToken`) just before they arrive, so each fails with 5010 unless it was
    /// built from a read made after the edit.
    pub fn concurrent_edits(&self, id: &str, n: usize, edit: Edit) {
        let mut s = lock(&self.state);
        let q = s.concurrent.entry(id.into()).or_default();
        for _ in 0..n {
            q.push_back(edit.clone());
        }
    }

    /// Every call so far, as `method args`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Every call so far, and clears the log.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.calls))
    }

    /// How many times `method` (a [`method`] name) was called.
    pub fn calls_to(&self, method: &str) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|c| c.split(' ').next() == Some(method))
            .count()
    }

    fn call(&self, method: &'static str, args: &str) -> Result<(), QuickbooksError> {
        lock(&self.calls).push(format!("{method} {args}").trim_end().to_string());
        match lock(&self.state)
            .inject
            .get_mut(method)
            .and_then(VecDeque::pop_front)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn changed(s: &QbState, since: DateTime<Utc>, cap: Option<usize>) -> ChangedCustomers {
        // The latest change of each customer after `since`, in change order.
        let mut latest: BTreeMap<&str, (DateTime<Utc>, bool)> = BTreeMap::new();
        for (at, id, deleted) in s.changes.iter().filter(|(at, ..)| *at > since) {
            latest.insert(id, (*at, *deleted));
        }
        let mut ordered: Vec<_> = latest.into_iter().collect();
        ordered.sort_by_key(|(_, (at, _))| *at);
        let mut customers: Vec<Customer> = ordered
            .into_iter()
            .filter_map(|(id, (at, deleted))| {
                if deleted {
                    Some(Customer {
                        sync_token: String::new(),
                        meta_data: Some(MetaData {
                            create_time: None,
                            last_updated_time: Some(stamp(at)),
                        }),
                        status: Some("Deleted".into()),
                        ..blank(id)
                    })
                } else {
                    s.customers.get(id).cloned()
                }
            })
            .collect();
        let truncated = cap.is_some_and(|cap| customers.len() >= cap);
        if let Some(cap) = cap {
            customers.truncate(cap);
        }
        ChangedCustomers {
            customers,
            server_time: s.now,
            truncated,
        }
    }
}

#[async_trait]
impl QuickbooksApi for FakeQuickbooks {
    async fn customer(&self, _realm: &str, id: &str) -> Result<Option<Customer>, QuickbooksError> {
        self.call(method::CUSTOMER, id)?;
        Ok(lock(&self.state).customers.get(id).cloned())
    }

    /// Matches as [`QbState::email_query`] says (case-insensitively by default).
    async fn customers_by_email(
        &self,
        _realm: &str,
        email: &str,
    ) -> Result<Vec<Customer>, QuickbooksError> {
        self.call(method::CUSTOMERS_BY_EMAIL, email)?;
        let s = lock(&self.state);
        let wanted = email.trim();
        let matches = |e: &str| match s.email_query {
            EmailQuery::IgnoreCase => e.to_lowercase() == wanted.to_lowercase(),
            EmailQuery::Exact => e == wanted,
            EmailQuery::Unfiltered => true,
        };
        Ok(s.customers
            .values()
            .filter(|c| s.email_query == EmailQuery::Unfiltered || c.email().is_some_and(matches))
            .cloned()
            .collect())
    }

    async fn changed_customers(
        &self,
        _realm: &str,
        since: DateTime<Utc>,
    ) -> Result<ChangedCustomers, QuickbooksError> {
        self.call(method::CHANGED_CUSTOMERS, &since.to_rfc3339())?;
        let s = lock(&self.state);
        if since < s.now - Duration::days(30) {
            // CDC looks back at most 30 days (docs/vendors/quickbooks.md §3.5); the exact code is UNCONFIRMED.
            return Err(fault(
                400,
                "4001",
                "changedSince is more than 30 days in the past",
            ));
        }
        Ok(Self::changed(&s, since, Some(s.cdc_cap)))
    }

    async fn customers_updated_since(
        &self,
        _realm: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<ChangedCustomers, QuickbooksError> {
        self.call(
            method::CUSTOMERS_UPDATED_SINCE,
            &since.map(|t| t.to_rfc3339()).unwrap_or_default(),
        )?;
        let s = lock(&self.state);
        let since = since.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut changed = Self::changed(&s, since, None);
        // The query endpoint never returns deleted records (only CDC has stubs).
        changed.customers.retain(|c| !c.is_deleted());
        changed
            .customers
            .sort_by_key(|c| c.id.parse::<u64>().unwrap_or(u64::MAX));
        Ok(changed)
    }

    async fn update_customer(
        &self,
        _realm: &str,
        update: &CustomerUpdate,
    ) -> Result<Customer, QuickbooksError> {
        self.call(
            method::UPDATE_CUSTOMER,
            &format!("{} {}", update.id, update.sync_token),
        )?;
        let mut s = lock(&self.state);
        let Some(mut c) = s.customers.remove(&update.id) else {
            return Err(not_found());
        };
        if let Some(edit) = s
            .concurrent
            .get_mut(&update.id)
            .and_then(VecDeque::pop_front)
        {
            edit(&mut c);
            QbState::bump(&mut c);
            s.touch(&mut c, false);
        }
        if c.sync_token != update.sync_token {
            s.customers.insert(update.id.clone(), c);
            return Err(stale());
        }
        if let Some(notes) = &update.notes {
            if notes.chars().count() > MAX_NOTE_CHARS {
                s.customers.insert(update.id.clone(), c);
                // The length limit and this code are UNCONFIRMED (docs/vendors/quickbooks.md §3.2).
                return Err(fault(400, "2050", "Notes is too long"));
            }
            c.notes = Some(notes.clone());
        }
        if let Some(active) = update.active {
            c.active = active;
        }
        QbState::bump(&mut c);
        s.touch(&mut c, false);
        s.customers.insert(update.id.clone(), c.clone());
        Ok(c)
    }

    async fn create_customer_note(
        &self,
        _realm: &str,
        customer_id: &str,
        note: &str,
        request_id: &str,
    ) -> Result<Attachable, QuickbooksError> {
        self.call(
            method::CREATE_CUSTOMER_NOTE,
            &format!("{customer_id} {request_id}"),
        )?;
        let mut s = lock(&self.state);
        if let Some(first) = s.note_requests.get(request_id) {
            return Ok(first.clone());
        }
        if !s.customers.contains_key(customer_id) {
            return Err(not_found());
        }
        let id = s.new_id();
        s.tick();
        let a = Attachable {
            id: Some(id),
            sync_token: Some("0".into()),
            note: Some(note.chars().take(MAX_NOTE_CHARS).collect()),
            attachable_ref: vec![AttachableRef {
                entity_ref: EntityRef {
                    kind: "Customer".into(),
                    value: customer_id.into(),
                },
                include_on_send: false,
            }],
        };
        s.notes.push(a.clone());
        s.note_requests.insert(request_id.into(), a.clone());
        Ok(a)
    }

    async fn company_name(&self, _realm: &str) -> Result<String, QuickbooksError> {
        self.call(method::COMPANY_NAME, "")?;
        Ok(lock(&self.state).company_name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::clients::VendorClients;
    use crate::testing::fakes::FakeClients;

    #[tokio::test]
    async fn sync_token_guards_updates_and_reads_of_unknown_ids_are_none() {
        let qb = FakeQuickbooks::new();
        let id = qb.add_customer("Jane", Some("Jane@Example.com"));
        {
            assert_eq!(qb.customer("r", "999").await.ok(), Some(None));
            let found = qb.customers_by_email("r", "jane@example.com").await;
            assert_eq!(found.map(|v| v.len()).ok(), Some(1));
            let update = |token: &str| CustomerUpdate {
                id: id.clone(),
                sync_token: token.into(),
                notes: Some("n".into()),
                active: None,
            };
            let c = qb.update_customer("r", &update("0")).await;
            assert_eq!(c.map(|c| c.sync_token).ok().as_deref(), Some("1"));
            let e = qb.update_customer("r", &update("0")).await;
            assert!(e.is_err_and(|e| e.is_stale()));
            qb.concurrent_edits(&id, 1, Arc::new(|c| c.notes = Some("theirs".into())));
            let e = qb.update_customer("r", &update("1")).await;
            assert!(e.is_err_and(|e| e.is_stale()));
            assert_eq!(
                qb.stored(&id).and_then(|c| c.notes).as_deref(),
                Some("theirs")
            );
            let e = qb
                .update_customer(
                    "r",
                    &CustomerUpdate {
                        id: "999".into(),
                        ..update("0")
                    },
                )
                .await;
            assert!(e.is_err_and(|e| e.is_not_found()));
        }
        assert_eq!(qb.calls_to(method::UPDATE_CUSTOMER), 4);
    }

    #[tokio::test]
    async fn notes_dedupe_on_request_id_and_injected_errors_fail_once() {
        let qb = FakeQuickbooks::new();
        let id = qb.add_customer("Jane", None);
        qb.inject(method::CREATE_CUSTOMER_NOTE, throttled());
        {
            let e = qb.create_customer_note("r", &id, "hello", "req-1").await;
            assert!(e.is_err_and(|e| e.is_transient()));
            let a = qb.create_customer_note("r", &id, "hello", "req-1").await;
            let b = qb.create_customer_note("r", &id, "other", "req-1").await;
            assert_eq!(a.ok().and_then(|a| a.id), b.ok().and_then(|b| b.id));
        }
        assert_eq!(qb.notes_of(&id), vec!["hello".to_string()]);
    }

    #[tokio::test]
    async fn cdc_returns_latest_versions_and_deleted_stubs() {
        let qb = FakeQuickbooks::new();
        let start = qb.with(|s| s.now);
        let a = qb.add_customer("A", None);
        let b = qb.add_customer("B", None);
        qb.edit_customer(&a, |c| c.active = false);
        qb.delete_customer(&b);
        let changed = qb.changed_customers("r", start).await;
        let changed = changed.unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(String, bool, bool)> = changed
            .customers
            .iter()
            .map(|c| (c.id.clone(), c.active, c.is_deleted()))
            .collect();
        assert_eq!(got, vec![(a.clone(), false, false), (b, true, true)]);
        let updated = qb.customers_updated_since("r", None).await;
        let ids: Vec<String> = updated
            .map(|u| u.customers.into_iter().map(|c| c.id).collect())
            .unwrap_or_default();
        assert_eq!(ids, vec![a]);
        let old = qb.changed_customers("r", start - Duration::days(31)).await;
        assert!(old.is_err());
    }

    #[tokio::test]
    async fn clients_serve_the_fake_for_qb_only() {
        let qb = FakeQuickbooks::new();
        let clients = FakeClients::quickbooks_only(qb.clone());
        let api = clients.quickbooks("qb").await;
        let name = match api {
            Ok(api) => api.company_name("r").await.ok(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(name.as_deref(), Some("Fake Company"));
        assert!(clients.quickbooks("other").await.is_err());
        assert!(clients.mailchimp("mc").await.is_err());
        assert!(clients.freshbooks("fb").await.is_err());
        assert_eq!(qb.calls(), vec!["company_name".to_string()]);
        assert_eq!(qb.take_calls().len(), 1);
        assert!(qb.calls().is_empty());
    }
}
