//! In-memory FreshBooks and Mailchimp for the flows' tests (and [`FakeClients`], which serves
//! them with [`FakeQuickbooks`] and [`FakeHubspot`] by credential-set name): stateful (so a test can assert the
//! Mailchimp state an event sequence ends in), recording every call (so a test can assert that
//! an unchanged record costs no call), with Mailchimp's documented refusals: compliance state on
//! upsert, 404 on a missing store or member, 400 on a line whose product is unknown, and PATCH
//! that never removes lines.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::flows::clients::VendorClients;
use crate::testing::hubspot_fake::FakeHubspot;
use crate::testing::quickbooks_fake::FakeQuickbooks;
use crate::vendors::freshbooks::models::{BillVendor, Changed, Client, Entity, Invoice, Payment};
use crate::vendors::freshbooks::{FreshbooksApi, FreshbooksError};
use crate::vendors::hubspot::HubspotApi;
use crate::vendors::mailchimp::models::{
    Customer, Member, MemberTag, MemberUpsert, MergeField, Order, Problem, Product, Store,
    TagChange,
};
use crate::vendors::mailchimp::{MailchimpApi, MailchimpError};
use crate::vendors::quickbooks::QuickbooksApi;
use crate::worker::HandlerError;

/// Locks `m`, carrying on past a panic in another test thread (the fakes hold plain data).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- FreshBooks -----------------------------------------------------------------------------

#[derive(Default)]
/// The fake FreshBooks account's records, by id.
pub struct FbState {
    /// Clients by id.
    pub clients: BTreeMap<String, Client>,
    /// Invoices by id.
    pub invoices: BTreeMap<String, Invoice>,
    /// Payments by id.
    pub payments: BTreeMap<String, Payment>,
    /// Bill vendors by id.
    pub bill_vendors: BTreeMap<String, BillVendor>,
    /// The status every call fails with while set.
    pub fail: Option<u16>,
}

#[derive(Default)]
/// An in-memory FreshBooks: its records and every call made, so a test can assert on costs.
pub struct FakeFreshbooks {
    /// The records it serves.
    pub state: Mutex<FbState>,
    /// Every call made, named with its ids, in order.
    pub calls: Mutex<Vec<String>>,
}

impl FakeFreshbooks {
    /// Runs `f` on the records (to seed or inspect them).
    pub fn with<R>(&self, f: impl FnOnce(&mut FbState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    fn call(&self, what: String) -> Result<(), FreshbooksError> {
        lock(&self.calls).push(what);
        match lock(&self.state).fail {
            Some(status) => Err(FreshbooksError::Api {
                status,
                errno: None,
                message: "injected".into(),
            }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl FreshbooksApi for FakeFreshbooks {
    async fn client(&self, _account: &str, id: &str) -> Result<Option<Client>, FreshbooksError> {
        self.call(format!("client {id}"))?;
        Ok(lock(&self.state).clients.get(id).cloned())
    }

    async fn invoice(&self, _account: &str, id: &str) -> Result<Option<Invoice>, FreshbooksError> {
        self.call(format!("invoice {id}"))?;
        Ok(lock(&self.state).invoices.get(id).cloned())
    }

    async fn invoices_for_client(
        &self,
        _account: &str,
        client_id: &str,
    ) -> Result<Vec<Invoice>, FreshbooksError> {
        self.call(format!("invoices_for_client {client_id}"))?;
        Ok(lock(&self.state)
            .invoices
            .values()
            .filter(|i| i.customerid == client_id && !i.is_deleted())
            .cloned()
            .collect())
    }

    async fn payment(&self, _account: &str, id: &str) -> Result<Option<Payment>, FreshbooksError> {
        self.call(format!("payment {id}"))?;
        Ok(lock(&self.state).payments.get(id).cloned())
    }

    async fn bill_vendor(
        &self,
        _account: &str,
        id: &str,
    ) -> Result<Option<BillVendor>, FreshbooksError> {
        self.call(format!("bill_vendor {id}"))?;
        Ok(lock(&self.state).bill_vendors.get(id).cloned())
    }

    async fn changed_since(
        &self,
        _account: &str,
        _entity: Entity,
        _since: NaiveDate,
    ) -> Result<Vec<Changed>, FreshbooksError> {
        Ok(vec![])
    }
}

// ---- Mailchimp ------------------------------------------------------------------------------

#[derive(Default)]
/// The fake Mailchimp account's audiences and e-commerce stores.
pub struct McState {
    /// By lower-cased email.
    pub members: BTreeMap<String, Member>,
    /// The audience's merge fields.
    pub merge_fields: Vec<MergeField>,
    /// E-commerce stores by id.
    pub stores: BTreeMap<String, Store>,
    /// Store customers by id.
    pub customers: BTreeMap<String, Customer>,
    /// Store products by id.
    pub products: BTreeMap<String, Product>,
    /// Store orders by id.
    pub orders: BTreeMap<String, Order>,
    /// `is_syncing` of every tag update, in order.
    pub tag_syncing: Vec<bool>,
    /// Lower-cased emails whose upsert Mailchimp refuses: (status, title, detail).
    pub refuse: BTreeMap<String, (u16, String, String)>,
    /// The status the next call fails with (once), e.g. 503.
    pub fail_next: Option<u16>,
}

/// An in-memory Mailchimp: its state and every call made.
pub struct FakeMailchimp {
    /// The state it serves.
    pub state: Mutex<McState>,
    /// Every call made, named with its ids, in order.
    pub calls: Mutex<Vec<String>>,
}

/// Calls that only read.
const READS: [&str; 5] = ["member", "merge_fields", "store", "product", "order"];

fn api_error(status: u16, title: &str, detail: &str) -> MailchimpError {
    MailchimpError::from_problem(
        status,
        Some(Problem {
            title: title.into(),
            status,
            detail: detail.into(),
            instance: Some(format!("req-{status}")),
            errors: vec![],
        }),
        None,
        None,
    )
}

fn not_found(what: &str) -> MailchimpError {
    api_error(404, "Resource Not Found", &format!("{what} not found"))
}

impl Default for FakeMailchimp {
    /// A new audience has FNAME and LNAME, like Mailchimp's default audience.
    fn default() -> Self {
        let field = |tag: &str, kind: &str| MergeField {
            tag: tag.into(),
            name: tag.into(),
            kind: kind.into(),
        };
        FakeMailchimp {
            state: Mutex::new(McState {
                merge_fields: vec![field("FNAME", "text"), field("LNAME", "text")],
                ..McState::default()
            }),
            calls: Mutex::new(vec![]),
        }
    }
}

impl FakeMailchimp {
    /// Runs `f` on the state (to seed or inspect it).
    pub fn with<R>(&self, f: impl FnOnce(&mut McState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Every call so far, as `name args`, and clears the log.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.calls))
    }

    /// The write calls in `calls`.
    pub fn writes(calls: &[String]) -> Vec<String> {
        calls
            .iter()
            .filter(|c| !READS.contains(&c.split(' ').next().unwrap_or_default()))
            .cloned()
            .collect()
    }

    /// The member with `email`, if any (any case).
    pub fn member(&self, email: &str) -> Option<Member> {
        lock(&self.state)
            .members
            .get(&email.to_lowercase())
            .cloned()
    }

    /// The store order with `id`, if any.
    pub fn order(&self, id: &str) -> Option<Order> {
        lock(&self.state).orders.get(id).cloned()
    }

    fn call(&self, what: String) -> Result<(), MailchimpError> {
        lock(&self.calls).push(what);
        match lock(&self.state).fail_next.take() {
            Some(status) => Err(api_error(status, "Service Unavailable", "injected")),
            None => Ok(()),
        }
    }

    fn store_exists(s: &McState, store_id: &str) -> Result<(), MailchimpError> {
        if s.stores.contains_key(store_id) {
            Ok(())
        } else {
            Err(not_found("store"))
        }
    }

    fn check_order(s: &McState, order: &Order) -> Result<(), MailchimpError> {
        if !s.customers.contains_key(&order.customer.id) {
            return Err(api_error(
                400,
                "Invalid Resource",
                "customer does not exist",
            ));
        }
        for line in &order.lines {
            let ok = s
                .products
                .get(&line.product_id)
                .is_some_and(|p| p.variants.iter().any(|v| v.id == line.product_variant_id));
            if !ok {
                return Err(api_error(
                    400,
                    "Invalid Resource",
                    "A product with the provided ID does not exist in the account for this list.",
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl MailchimpApi for FakeMailchimp {
    async fn upsert_member(
        &self,
        list_id: &str,
        member: &MemberUpsert,
    ) -> Result<Member, MailchimpError> {
        self.call(format!("upsert_member {list_id} {}", member.email_address))?;
        let mut s = lock(&self.state);
        let key = member.email_address.trim().to_lowercase();
        if let Some((status, title, detail)) = s.refuse.get(&key) {
            return Err(api_error(*status, title, detail));
        }
        let m = s.members.entry(key).or_insert_with(|| Member {
            email_address: member.email_address.clone(),
            status: member.status_if_new.clone(),
            merge_fields: BTreeMap::new(),
            tags: vec![],
        });
        // PUT with only status_if_new never changes an existing member's status (archived
        // stays archived, docs/vendors/mailchimp.md §2.5).
        m.merge_fields.extend(member.merge_fields.clone());
        Ok(m.clone())
    }

    async fn member(&self, list_id: &str, email: &str) -> Result<Option<Member>, MailchimpError> {
        self.call(format!("member {list_id} {email}"))?;
        Ok(self.member(email))
    }

    async fn archive_member(&self, list_id: &str, email: &str) -> Result<bool, MailchimpError> {
        self.call(format!("archive_member {list_id} {email}"))?;
        let mut s = lock(&self.state);
        match s.members.get_mut(&email.to_lowercase()) {
            Some(m) if !["archived", "cleaned", "pending"].contains(&m.status.as_str()) => {
                m.status = "archived".into();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn update_tags(
        &self,
        list_id: &str,
        email: &str,
        tags: &[TagChange],
        is_syncing: bool,
    ) -> Result<(), MailchimpError> {
        self.call(format!("update_tags {list_id} {email}"))?;
        let mut s = lock(&self.state);
        s.tag_syncing.push(is_syncing);
        let m = s
            .members
            .get_mut(&email.to_lowercase())
            .ok_or_else(|| not_found("member"))?;
        for t in tags {
            m.tags.retain(|x| x.name != t.name);
            if t.status {
                m.tags.push(MemberTag {
                    name: t.name.clone(),
                });
            }
        }
        m.tags.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    async fn merge_fields(&self, list_id: &str) -> Result<Vec<MergeField>, MailchimpError> {
        self.call(format!("merge_fields {list_id}"))?;
        Ok(lock(&self.state).merge_fields.clone())
    }

    async fn create_merge_field(
        &self,
        list_id: &str,
        field: &MergeField,
    ) -> Result<MergeField, MailchimpError> {
        self.call(format!("create_merge_field {list_id} {}", field.tag))?;
        let mut s = lock(&self.state);
        if s.merge_fields.iter().any(|f| f.tag == field.tag) {
            return Err(api_error(
                400,
                "Invalid Resource",
                &format!(
                    "A Merge Field with the tag \"{}\" already exists",
                    field.tag
                ),
            ));
        }
        s.merge_fields.push(field.clone());
        Ok(field.clone())
    }

    async fn store(&self, store_id: &str) -> Result<Option<Store>, MailchimpError> {
        self.call(format!("store {store_id}"))?;
        Ok(lock(&self.state).stores.get(store_id).cloned())
    }

    async fn create_store(&self, store: &Store) -> Result<Store, MailchimpError> {
        self.call(format!("create_store {}", store.id))?;
        lock(&self.state)
            .stores
            .insert(store.id.clone(), store.clone());
        Ok(store.clone())
    }

    async fn set_store_syncing(&self, store_id: &str, syncing: bool) -> Result<(), MailchimpError> {
        self.call(format!("set_store_syncing {store_id} {syncing}"))?;
        let mut s = lock(&self.state);
        let store = s
            .stores
            .get_mut(store_id)
            .ok_or_else(|| not_found("store"))?;
        store.is_syncing = Some(syncing);
        Ok(())
    }

    async fn upsert_customer(
        &self,
        store_id: &str,
        customer: &Customer,
    ) -> Result<(), MailchimpError> {
        self.call(format!("upsert_customer {store_id} {}", customer.id))?;
        let mut s = lock(&self.state);
        Self::store_exists(&s, store_id)?;
        s.customers.insert(customer.id.clone(), customer.clone());
        // Mailchimp adds a customer's address to the audience as transactional if absent.
        let key = customer.email_address.to_lowercase();
        s.members.entry(key).or_insert_with(|| Member {
            email_address: customer.email_address.clone(),
            status: "transactional".into(),
            merge_fields: BTreeMap::new(),
            tags: vec![],
        });
        Ok(())
    }

    async fn product(
        &self,
        store_id: &str,
        product_id: &str,
    ) -> Result<Option<Product>, MailchimpError> {
        self.call(format!("product {store_id} {product_id}"))?;
        Ok(lock(&self.state).products.get(product_id).cloned())
    }

    async fn create_product(
        &self,
        store_id: &str,
        product: &Product,
    ) -> Result<(), MailchimpError> {
        self.call(format!("create_product {store_id} {}", product.id))?;
        let mut s = lock(&self.state);
        Self::store_exists(&s, store_id)?;
        s.products.insert(product.id.clone(), product.clone());
        Ok(())
    }

    async fn order(&self, store_id: &str, order_id: &str) -> Result<Option<Order>, MailchimpError> {
        self.call(format!("order {store_id} {order_id}"))?;
        Ok(lock(&self.state).orders.get(order_id).cloned())
    }

    async fn create_order(&self, store_id: &str, order: &Order) -> Result<(), MailchimpError> {
        self.call(format!("create_order {store_id} {}", order.id))?;
        let mut s = lock(&self.state);
        Self::store_exists(&s, store_id)?;
        if s.orders.contains_key(&order.id) {
            return Err(api_error(
                400,
                "Invalid Resource",
                "An order with the provided ID already exists.",
            ));
        }
        Self::check_order(&s, order)?;
        s.orders.insert(order.id.clone(), order.clone());
        Ok(())
    }

    async fn update_order(&self, store_id: &str, order: &Order) -> Result<(), MailchimpError> {
        self.call(format!(
            "update_order {store_id} {} {}",
            order.id,
            order.financial_status.as_deref().unwrap_or("-")
        ))?;
        let mut s = lock(&self.state);
        Self::store_exists(&s, store_id)?;
        Self::check_order(&s, order)?;
        let existing = s
            .orders
            .get_mut(&order.id)
            .ok_or_else(|| not_found("order"))?;
        // PATCH replaces lines by id and adds new ones, but never removes any.
        let mut lines = existing.lines.clone();
        for line in &order.lines {
            match lines.iter_mut().find(|l| l.id == line.id) {
                Some(l) => *l = line.clone(),
                None => lines.push(line.clone()),
            }
        }
        *existing = Order {
            lines,
            ..order.clone()
        };
        Ok(())
    }

    async fn delete_order_line(
        &self,
        store_id: &str,
        order_id: &str,
        line_id: &str,
    ) -> Result<(), MailchimpError> {
        self.call(format!("delete_order_line {store_id} {order_id} {line_id}"))?;
        let mut s = lock(&self.state);
        if let Some(o) = s.orders.get_mut(order_id) {
            o.lines.retain(|l| l.id != line_id);
        }
        Ok(())
    }
}

// ---- clients --------------------------------------------------------------------------------

/// Serves each fake for its credential name (`fb`, `mc`, `qb`, `hs`) when set; other names, and a
/// vendor without a fake, are refused like a missing credential set.
pub struct FakeClients {
    /// The FreshBooks every credential set gets; `None`: credentials missing.
    pub fb: Option<Arc<FakeFreshbooks>>,
    /// The Mailchimp every credential set gets; `None`: credentials missing.
    pub mc: Option<Arc<FakeMailchimp>>,
    /// The QuickBooks every credential set gets; `None`: credentials missing.
    pub quickbooks: Option<Arc<FakeQuickbooks>>,
    /// The HubSpot portal credential set `hs` gets; `None`: credentials missing.
    pub hubspot: Option<Arc<FakeHubspot>>,
}

impl FakeClients {
    /// All three fakes.
    pub fn new(
        fb: Arc<FakeFreshbooks>,
        mc: Arc<FakeMailchimp>,
        quickbooks: Arc<FakeQuickbooks>,
    ) -> Self {
        FakeClients {
            fb: Some(fb),
            mc: Some(mc),
            quickbooks: Some(quickbooks),
            hubspot: None,
        }
    }

    /// The same clients, with `hubspot` served for credential set `hs`.
    pub fn with_hubspot(mut self, hubspot: Arc<FakeHubspot>) -> Self {
        self.hubspot = Some(hubspot);
        self
    }

    /// FreshBooks (`fb`) and HubSpot (`hs`) only: the HubSpot flow's world.
    pub fn freshbooks_hubspot(fb: Arc<FakeFreshbooks>, hubspot: Arc<FakeHubspot>) -> Self {
        FakeClients {
            fb: Some(fb),
            mc: None,
            quickbooks: None,
            hubspot: Some(hubspot),
        }
    }

    /// QuickBooks only: FreshBooks and Mailchimp are refused.
    pub fn quickbooks_only(quickbooks: Arc<FakeQuickbooks>) -> Self {
        FakeClients {
            fb: None,
            mc: None,
            quickbooks: Some(quickbooks),
            hubspot: None,
        }
    }
}

fn missing(vendor: &str, name: &str) -> HandlerError {
    HandlerError::permanent("credentials", format!("no {vendor} credentials `{name}`"))
}

#[async_trait]
impl VendorClients for FakeClients {
    async fn freshbooks(&self, credentials: &str) -> Result<Arc<dyn FreshbooksApi>, HandlerError> {
        match (&self.fb, credentials) {
            (Some(fb), "fb") => Ok(fb.clone()),
            _ => Err(missing("FreshBooks", credentials)),
        }
    }

    async fn mailchimp(&self, credentials: &str) -> Result<Arc<dyn MailchimpApi>, HandlerError> {
        match (&self.mc, credentials) {
            (Some(mc), "mc") => Ok(mc.clone()),
            _ => Err(missing("Mailchimp", credentials)),
        }
    }

    async fn quickbooks(&self, credentials: &str) -> Result<Arc<dyn QuickbooksApi>, HandlerError> {
        match (&self.quickbooks, credentials) {
            (Some(qb), "qb") => Ok(qb.clone()),
            _ => Err(missing("QuickBooks", credentials)),
        }
    }

    async fn hubspot(&self, credentials: &str) -> Result<Arc<dyn HubspotApi>, HandlerError> {
        match (&self.hubspot, credentials) {
            (Some(hs), "hs") => Ok(hs.clone()),
            _ => Err(missing("HubSpot", credentials)),
        }
    }
}
