//! The sandbox's data: users, businesses, tokens, clients, invoices, payments, bill vendors,
//! callbacks; the mutations the control API makes; and the JSON the vendor routes render.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mlc::vendors::freshbooks::models::eastern_to_utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::SandboxError;

/// `vis_state` values.
pub(super) const ACTIVE: i64 = 0;
pub(super) const DELETED: i64 = 1;

/// A user (identity) and the businesses they belong to.
#[derive(Debug, Clone)]
pub(super) struct User {
    pub email: String,
    pub accounts: Vec<String>,
}

/// A business: its accounting `account_id` and numeric `business_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BusinessInfo {
    pub account_id: String,
    pub business_id: i64,
    pub name: String,
    pub owner_identity_id: i64,
}

#[derive(Debug, Clone)]
pub(super) struct AccessToken {
    pub identity_id: i64,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub(super) struct RefreshToken {
    pub identity_id: i64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub(super) struct AuthCode {
    pub identity_id: i64,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

/// A token pair as the sandbox minted it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub identity_id: i64,
}

/// What a new client gets. Absent fields are blank.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientSpec {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub fname: Option<String>,
    #[serde(default)]
    pub lname: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub currency_code: Option<String>,
}

/// One invoice line: `qty` and `unit_cost` as decimal strings (`"2"`, `"611.00"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub qty: String,
    pub unit_cost: String,
}

/// A new invoice. It starts as a draft unless `sent`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InvoiceSpec {
    pub customerid: String,
    #[serde(default)]
    pub lines: Vec<LineSpec>,
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default)]
    pub create_date: Option<NaiveDate>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    #[serde(default)]
    pub invoice_number: Option<String>,
    #[serde(default)]
    pub sent: bool,
}

/// Changes to an invoice; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InvoicePatch {
    #[serde(default)]
    pub lines: Option<Vec<LineSpec>>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
}

/// A new payment against an invoice; `amount` a decimal string.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PaymentSpec {
    pub invoiceid: String,
    pub amount: String,
    #[serde(default)]
    pub date: Option<NaiveDate>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub transactionid: Option<String>,
}

/// Declares [`BillVendorSpec`] from one list of its text fields, so creating, patching and
/// rendering cannot drift apart when a field is added.
macro_rules! bill_vendor_spec {
    ($($field:ident),* $(,)?) => {
        /// A bill vendor's fields, named as FreshBooks' Python SDK names them (UNCONFIRMED,
        /// docs/vendors/freshbooks.md §3.7). For a new vendor, absent fields are blank (the
        /// currency USD); for an update, absent fields stay.
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        pub struct BillVendorSpec {
            $(
                #[serde(default)]
                pub $field: Option<String>,
            )*
        }

        impl BillVendorSpec {
            /// Takes every field `patch` gives.
            fn apply(&mut self, patch: BillVendorSpec) {
                $(
                    if patch.$field.is_some() {
                        self.$field = patch.$field;
                    }
                )*
            }

            /// The fields with their API names, blank when unset.
            fn render_into(&self, v: &mut Value) {
                $( v[stringify!($field)] = json!(self.$field.clone().unwrap_or_default()); )*
            }
        }
    };
}

bill_vendor_spec!(
    vendor_name,
    primary_contact_first_name,
    primary_contact_last_name,
    primary_contact_email,
    phone,
    website,
    street,
    street2,
    city,
    province,
    postal_code,
    country,
    currency_code,
);

#[derive(Debug, Clone)]
pub(super) struct BillVendorRec {
    pub id: i64,
    pub spec: BillVendorSpec,
    pub vis_state: i64,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct ClientRec {
    pub id: i64,
    pub spec: ClientSpec,
    pub vis_state: i64,
    pub updated: DateTime<Utc>,
    pub signup: DateTime<Utc>,
    /// The contact fields beyond [`ClientSpec`] ([`CLIENT_TEXT_FIELDS`]), as the API wrote them.
    pub contact: BTreeMap<String, String>,
}

/// Text fields of a client the API writes besides [`ClientSpec`]'s (the SDK fixture's
/// get_client_response.json); blank until written.
pub(super) const CLIENT_TEXT_FIELDS: &[&str] = &[
    "bus_phone",
    "mob_phone",
    "home_phone",
    "fax",
    "p_street",
    "p_street2",
    "p_city",
    "p_province",
    "p_code",
    "p_country",
    "s_street",
    "s_street2",
    "s_city",
    "s_province",
    "s_code",
    "s_country",
    "note",
    "language",
    "username",
];

#[derive(Debug, Clone)]
pub(super) struct LineRec {
    pub lineid: i64,
    pub name: String,
    pub description: Option<String>,
    /// Hundredths.
    pub qty: i64,
    /// Cents.
    pub unit_cost: i64,
}

impl LineRec {
    fn amount(&self) -> i64 {
        self.qty * self.unit_cost / 100
    }
}

#[derive(Debug, Clone)]
pub(super) struct InvoiceRec {
    pub id: i64,
    pub number: String,
    pub customerid: i64,
    pub currency: String,
    pub create_date: NaiveDate,
    pub due_date: NaiveDate,
    pub lines: Vec<LineRec>,
    pub sent: bool,
    pub vis_state: i64,
    pub updated: DateTime<Utc>,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct PaymentRec {
    pub id: i64,
    pub invoiceid: i64,
    pub clientid: i64,
    /// Cents.
    pub amount: i64,
    pub currency: String,
    pub date: NaiveDate,
    pub kind: String,
    pub note: Option<String>,
    pub transactionid: Option<String>,
    pub vis_state: i64,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct CallbackRec {
    pub id: i64,
    pub event: String,
    pub uri: String,
    pub verified: bool,
    pub verifier: String,
    pub updated: DateTime<Utc>,
}

/// One business's records.
#[derive(Debug, Clone, Default)]
pub(super) struct Books {
    pub clients: BTreeMap<i64, ClientRec>,
    pub invoices: BTreeMap<i64, InvoiceRec>,
    pub payments: BTreeMap<i64, PaymentRec>,
    pub bill_vendors: BTreeMap<i64, BillVendorRec>,
    pub callbacks: BTreeMap<i64, CallbackRec>,
}

/// A webhook the mutation should cause: `name` on `object_id` in `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub account: String,
    pub name: String,
    pub object_id: i64,
}

/// Everything the sandbox knows.
#[derive(Debug, Default)]
pub(super) struct State {
    next_id: i64,
    next_token: u64,
    pub users: BTreeMap<i64, User>,
    pub businesses: BTreeMap<String, BusinessInfo>,
    pub books: HashMap<String, Books>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub codes: HashMap<String, AuthCode>,
}

impl State {
    pub(super) fn new() -> Self {
        Self {
            next_id: 100_000,
            ..Self::default()
        }
    }

    /// The next id: one deterministic sequence for every kind of record.
    pub(super) fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn token(&mut self, kind: &str) -> String {
        self.next_token += 1;
        format!("sandbox-{kind}-{:06}", self.next_token)
    }

    pub(super) fn add_user(&mut self, email: &str) -> i64 {
        let id = self.id();
        self.users.insert(
            id,
            User {
                email: email.to_string(),
                accounts: Vec::new(),
            },
        );
        id
    }

    pub(super) fn add_business(
        &mut self,
        identity_id: i64,
        name: &str,
    ) -> Result<BusinessInfo, SandboxError> {
        if !self.users.contains_key(&identity_id) {
            return Err(SandboxError::NotFound(format!("user {identity_id}")));
        }
        let business_id = self.id();
        let account_id = format!("Acct{business_id}");
        let info = BusinessInfo {
            account_id: account_id.clone(),
            business_id,
            name: name.to_string(),
            owner_identity_id: identity_id,
        };
        self.businesses.insert(account_id.clone(), info.clone());
        self.books.insert(account_id.clone(), Books::default());
        if let Some(user) = self.users.get_mut(&identity_id) {
            user.accounts.push(account_id);
        }
        Ok(info)
    }

    /// A new token pair for `identity_id`. With `supersede`, the user's older tokens stop
    /// working (FreshBooks: "a new token pair invalidates older ones").
    pub(super) fn mint_pair(
        &mut self,
        identity_id: i64,
        now: DateTime<Utc>,
        lifetime: Duration,
        supersede: bool,
    ) -> Result<TokenPair, SandboxError> {
        if !self.users.contains_key(&identity_id) {
            return Err(SandboxError::NotFound(format!("user {identity_id}")));
        }
        if supersede {
            for t in self.access_tokens.values_mut() {
                if t.identity_id == identity_id {
                    t.revoked = true;
                }
            }
            for t in self.refresh_tokens.values_mut() {
                if t.identity_id == identity_id {
                    t.used = true;
                }
            }
        }
        let access = self.token("access");
        let refresh = self.token("refresh");
        let expires_at = now + lifetime;
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                identity_id,
                expires_at,
                revoked: false,
            },
        );
        self.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                identity_id,
                used: false,
            },
        );
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_at,
            identity_id,
        })
    }

    pub(super) fn mint_code(
        &mut self,
        identity_id: i64,
        now: DateTime<Utc>,
    ) -> Result<String, SandboxError> {
        if !self.users.contains_key(&identity_id) {
            return Err(SandboxError::NotFound(format!("user {identity_id}")));
        }
        let code = self.token("code");
        self.codes.insert(
            code.clone(),
            AuthCode {
                identity_id,
                // FreshBooks authorization codes live 5 minutes.
                expires_at: now + Duration::minutes(5),
                used: false,
            },
        );
        Ok(code)
    }

    /// The identity a bearer token stands for, if it is valid at `now`.
    pub(super) fn authenticate(&self, token: &str, now: DateTime<Utc>) -> Option<i64> {
        let t = self.access_tokens.get(token)?;
        (!t.revoked && t.expires_at > now).then_some(t.identity_id)
    }

    pub(super) fn may_access(&self, identity_id: i64, account: &str) -> bool {
        self.users
            .get(&identity_id)
            .is_some_and(|u| u.accounts.iter().any(|a| a == account))
    }

    pub(super) fn books_mut(&mut self, account: &str) -> Result<&mut Books, SandboxError> {
        self.books
            .get_mut(account)
            .ok_or_else(|| SandboxError::NotFound(format!("account {account}")))
    }

    // ---- mutations (the control API) ----

    pub(super) fn create_client(
        &mut self,
        account: &str,
        spec: ClientSpec,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<Change>), SandboxError> {
        let id = self.id();
        self.books_mut(account)?.clients.insert(
            id,
            ClientRec {
                id,
                spec,
                vis_state: ACTIVE,
                updated: now,
                signup: now,
                contact: BTreeMap::new(),
            },
        );
        Ok((id, vec![change(account, "client.create", id)]))
    }

    pub(super) fn update_client(
        &mut self,
        account: &str,
        id: i64,
        patch: ClientSpec,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let client = client_mut(self.books_mut(account)?, id)?;
        let s = &mut client.spec;
        for (field, new) in [
            (&mut s.email, patch.email),
            (&mut s.fname, patch.fname),
            (&mut s.lname, patch.lname),
            (&mut s.organization, patch.organization),
            (&mut s.currency_code, patch.currency_code),
        ] {
            if new.is_some() {
                *field = new;
            }
        }
        client.updated = now;
        Ok(vec![change(account, "client.update", id)])
    }

    pub(super) fn delete_client(
        &mut self,
        account: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let client = client_mut(self.books_mut(account)?, id)?;
        client.vis_state = DELETED;
        client.updated = now;
        Ok(vec![change(account, "client.delete", id)])
    }

    /// Sets contact fields ([`CLIENT_TEXT_FIELDS`]) of a client, without a webhook of its own:
    /// the API write that carries them sends one.
    pub(super) fn set_client_contact(
        &mut self,
        account: &str,
        id: i64,
        fields: BTreeMap<String, String>,
    ) -> Result<(), SandboxError> {
        let client = client_mut(self.books_mut(account)?, id)?;
        client.contact.extend(fields);
        Ok(())
    }

    /// Restores (0) or archives (2) a client: an update as FreshBooks reports it.
    pub(super) fn set_client_vis_state(
        &mut self,
        account: &str,
        id: i64,
        vis_state: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let client = client_mut(self.books_mut(account)?, id)?;
        client.vis_state = vis_state;
        client.updated = now;
        Ok(vec![change(account, "client.update", id)])
    }

    pub(super) fn create_invoice(
        &mut self,
        account: &str,
        spec: InvoiceSpec,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<Change>), SandboxError> {
        let customerid: i64 = spec
            .customerid
            .parse()
            .map_err(|_| SandboxError::Invalid("customerid is not a number".into()))?;
        let lines = spec
            .lines
            .iter()
            .map(|l| self.line(l))
            .collect::<Result<Vec<_>, _>>()?;
        let id = self.id();
        let books = self.books_mut(account)?;
        let client = client_mut(books, customerid)?;
        let currency = spec
            .currency_code
            .or_else(|| client.spec.currency_code.clone())
            .unwrap_or_else(|| "USD".into());
        let today = eastern_date(now);
        let number = spec
            .invoice_number
            .unwrap_or_else(|| format!("{:07}", books.invoices.len() + 1));
        books.invoices.insert(
            id,
            InvoiceRec {
                id,
                number,
                customerid,
                currency,
                create_date: spec.create_date.unwrap_or(today),
                due_date: spec.due_date.unwrap_or(today + Duration::days(30)),
                lines,
                sent: spec.sent,
                vis_state: ACTIVE,
                updated: now,
                created: now,
            },
        );
        Ok((id, vec![change(account, "invoice.create", id)]))
    }

    fn line(&mut self, spec: &LineSpec) -> Result<LineRec, SandboxError> {
        Ok(LineRec {
            lineid: self.id(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            qty: parse_hundredths(&spec.qty)
                .ok_or_else(|| SandboxError::Invalid("qty is not a decimal".into()))?,
            unit_cost: parse_hundredths(&spec.unit_cost)
                .ok_or_else(|| SandboxError::Invalid("unit_cost is not a decimal".into()))?,
        })
    }

    pub(super) fn update_invoice(
        &mut self,
        account: &str,
        id: i64,
        patch: InvoicePatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let lines = match &patch.lines {
            Some(specs) => Some(
                specs
                    .iter()
                    .map(|l| self.line(l))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let invoice = invoice_mut(self.books_mut(account)?, id)?;
        if let Some(lines) = lines {
            invoice.lines = lines;
        }
        if let Some(due) = patch.due_date {
            invoice.due_date = due;
        }
        invoice.updated = now;
        Ok(vec![change(account, "invoice.update", id)])
    }

    pub(super) fn mark_invoice_sent(
        &mut self,
        account: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let invoice = invoice_mut(self.books_mut(account)?, id)?;
        invoice.sent = true;
        invoice.updated = now;
        Ok(vec![change(account, "invoice.update", id)])
    }

    pub(super) fn delete_invoice(
        &mut self,
        account: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let invoice = invoice_mut(self.books_mut(account)?, id)?;
        invoice.vis_state = DELETED;
        invoice.updated = now;
        Ok(vec![change(account, "invoice.delete", id)])
    }

    /// Records a payment; the invoice's paid/outstanding/status follow.
    pub(super) fn create_payment(
        &mut self,
        account: &str,
        spec: PaymentSpec,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<Change>), SandboxError> {
        let invoiceid: i64 = spec
            .invoiceid
            .parse()
            .map_err(|_| SandboxError::Invalid("invoiceid is not a number".into()))?;
        let amount = parse_hundredths(&spec.amount)
            .filter(|a| *a > 0)
            .ok_or_else(|| SandboxError::Invalid("amount is not a positive decimal".into()))?;
        let id = self.id();
        let books = self.books_mut(account)?;
        let invoice = invoice_mut(books, invoiceid)?;
        if invoice.vis_state == DELETED {
            return Err(SandboxError::Invalid("the invoice is deleted".into()));
        }
        // Recording a payment marks a draft as sent, as FreshBooks does.
        invoice.sent = true;
        invoice.updated = now;
        let (clientid, currency) = (invoice.customerid, invoice.currency.clone());
        books.payments.insert(
            id,
            PaymentRec {
                id,
                invoiceid,
                clientid,
                amount,
                currency,
                date: spec.date.unwrap_or_else(|| eastern_date(now)),
                kind: spec.kind.unwrap_or_else(|| "Check".into()),
                note: spec.note,
                transactionid: spec.transactionid,
                vis_state: ACTIVE,
                updated: now,
            },
        );
        Ok((
            id,
            vec![
                change(account, "payment.create", id),
                change(account, "invoice.update", invoiceid),
            ],
        ))
    }

    /// Pays the invoice's outstanding amount in full.
    pub(super) fn mark_invoice_paid(
        &mut self,
        account: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<Change>), SandboxError> {
        let books = self.books_mut(account)?;
        let invoice = invoice_mut(books, id)?.clone();
        let outstanding = invoice_totals(books, &invoice).2;
        if outstanding <= 0 {
            return Err(SandboxError::Invalid("the invoice is already paid".into()));
        }
        self.create_payment(
            account,
            PaymentSpec {
                invoiceid: id.to_string(),
                amount: format_cents(outstanding),
                ..PaymentSpec::default()
            },
            now,
        )
    }

    pub(super) fn delete_payment(
        &mut self,
        account: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let books = self.books_mut(account)?;
        let payment = books
            .payments
            .get_mut(&id)
            .filter(|p| p.vis_state != DELETED)
            .ok_or_else(|| SandboxError::NotFound(format!("payment {id}")))?;
        payment.vis_state = DELETED;
        payment.updated = now;
        let invoiceid = payment.invoiceid;
        if let Some(invoice) = books.invoices.get_mut(&invoiceid) {
            invoice.updated = now;
        }
        Ok(vec![
            change(account, "payment.delete", id),
            change(account, "invoice.update", invoiceid),
        ])
    }

    pub(super) fn create_bill_vendor(
        &mut self,
        account: &str,
        spec: BillVendorSpec,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<Change>), SandboxError> {
        let id = self.id();
        self.books_mut(account)?.bill_vendors.insert(
            id,
            BillVendorRec {
                id,
                spec,
                vis_state: ACTIVE,
                updated: now,
            },
        );
        Ok((id, vec![change(account, "bill_vendor.create", id)]))
    }

    pub(super) fn update_bill_vendor(
        &mut self,
        account: &str,
        id: i64,
        patch: BillVendorSpec,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let vendor = bill_vendor_mut(self.books_mut(account)?, id)?;
        vendor.spec.apply(patch);
        vendor.updated = now;
        Ok(vec![change(account, "bill_vendor.update", id)])
    }

    pub(super) fn delete_bill_vendor(
        &mut self,
        account: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SandboxError> {
        let vendor = bill_vendor_mut(self.books_mut(account)?, id)?;
        vendor.vis_state = DELETED;
        vendor.updated = now;
        Ok(vec![change(account, "bill_vendor.delete", id)])
    }

    // ---- rendering (the vendor API) ----

    /// A client with every field of the SDK fixture (get_client_response.json): the ones the
    /// sandbox keeps, and the rest at what a new client has.
    pub(super) fn render_client(c: &ClientRec) -> Value {
        let s = &c.spec;
        let currency = s.currency_code.clone().unwrap_or_else(|| "USD".into());
        let mut v = json!({
            "id": c.id, "userid": c.id,
            "email": s.email.clone().unwrap_or_default(),
            "fname": s.fname.clone().unwrap_or_default(),
            "lname": s.lname.clone().unwrap_or_default(),
            "organization": s.organization.clone().unwrap_or_default(),
            "currency_code": currency,
            "vis_state": c.vis_state,
            // UTC, unlike `updated`: the SDK reads signup_date as UTC (its models.py names the
            // accounting fields that are), in the same zone-less format.
            "signup_date": c.signup.format("%Y-%m-%d %H:%M:%S").to_string(),
            "updated": eastern(c.updated),
            "accounting_systemid": "", "allow_email_include_pdf": false, "allow_late_fees": true,
            "allow_late_notifications": true, "company_industry": null, "company_size": null,
            "direct_link_token": null, "grand_total_balance": [], "has_retainer": null,
            "last_activity": null, "last_login": null, "level": 0, "notified": false,
            "num_logins": 0, "outstanding_balance": [], "pref_email": true, "pref_gmail": false,
            "retainer_id": null, "role": "client", "statement_token": null, "subdomain": null,
            "uuid": uuid_of(c.id), "vat_name": null, "vat_number": null,
        });
        for field in CLIENT_TEXT_FIELDS {
            let value = c.contact.get(*field).cloned().unwrap_or_else(|| {
                // A new client's language is its business's; the rest start blank.
                if *field == "language" {
                    "en".into()
                } else {
                    String::new()
                }
            });
            v[*field] = json!(value);
        }
        v
    }

    pub(super) fn render_invoice(
        books: &Books,
        account: &str,
        inv: &InvoiceRec,
        lines: bool,
    ) -> Value {
        let (amount, paid, outstanding) = invoice_totals(books, inv);
        let money = |cents: i64| json!({"amount": format_cents(cents), "code": inv.currency});
        let (status, v3, payment_status, display) = if paid > 0 && outstanding <= 0 {
            (4, "paid", "paid", "sent")
        } else if paid > 0 {
            (8, "partial", "partial", "sent")
        } else if inv.sent {
            (2, "sent", "unpaid", "sent")
        } else {
            (1, "draft", "unpaid", "draft")
        };
        let date_paid = (status == 4)
            .then(|| {
                live_payments(books, inv.id)
                    .map(|p| p.date)
                    .max()
                    .map(|d| d.to_string())
            })
            .flatten();
        let client = books.clients.get(&inv.customerid);
        let field = |f: fn(&ClientSpec) -> &Option<String>| {
            client.and_then(|c| f(&c.spec).clone()).unwrap_or_default()
        };
        let mut v = json!({
            "id": inv.id, "invoiceid": inv.id, "invoice_number": inv.number,
            "customerid": inv.customerid, "accountid": account,
            "create_date": inv.create_date.to_string(), "due_date": inv.due_date.to_string(),
            "date_paid": date_paid, "currency_code": inv.currency,
            "amount": money(amount), "paid": money(paid), "outstanding": money(outstanding.max(0)),
            "discount_total": money(0),
            "status": status, "v3_status": v3, "payment_status": payment_status,
            "display_status": display,
            "fname": field(|s| &s.fname), "lname": field(|s| &s.lname),
            "organization": field(|s| &s.organization), "email": field(|s| &s.email),
            "vis_state": inv.vis_state,
            "created_at": eastern(inv.created), "updated": eastern(inv.updated),
        });
        if lines {
            v["lines"] = inv
                .lines
                .iter()
                .map(|l| {
                    json!({
                        "lineid": l.lineid, "name": l.name,
                        "description": l.description.clone().unwrap_or_default(),
                        "qty": format_qty(l.qty),
                        "unit_cost": money(l.unit_cost), "amount": money(l.amount()),
                        "type": 0, "updated": eastern(inv.updated),
                    })
                })
                .collect();
        }
        v
    }

    pub(super) fn render_payment(p: &PaymentRec) -> Value {
        json!({
            "id": p.id, "logid": p.id, "invoiceid": p.invoiceid, "clientid": p.clientid,
            "amount": {"amount": format_cents(p.amount), "code": p.currency},
            "date": p.date.to_string(), "type": p.kind,
            "note": p.note.clone().unwrap_or_default(),
            "transactionid": p.transactionid, "vis_state": p.vis_state,
            "from_credit": false, "updated": eastern(p.updated),
        })
    }

    /// A bill vendor with the fields [`BillVendorSpec`] names, both id spellings (`id` and the
    /// legacy `vendorid`, as clients carry `id` and `userid`), `vis_state` and `updated`.
    pub(super) fn render_bill_vendor(b: &BillVendorRec) -> Value {
        let mut v = json!({
            "id": b.id, "vendorid": b.id, "vis_state": b.vis_state, "updated": eastern(b.updated),
        });
        b.spec.render_into(&mut v);
        if b.spec.currency_code.is_none() {
            // As a new client's: the sandbox's businesses all bill in USD.
            v["currency_code"] = json!("USD");
        }
        v
    }

    pub(super) fn render_callback(c: &CallbackRec) -> Value {
        json!({
            "callbackid": c.id, "id": c.id, "event": c.event, "uri": c.uri,
            // The events API writes ISO 8601 UTC with `Z` (the SDK fixtures), not Eastern.
            "verified": c.verified,
            "updated_at": c.updated.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        })
    }
}

/// A stable UUID-shaped id for a record (FreshBooks clients carry one besides `id`).
fn uuid_of(id: i64) -> String {
    format!("00000000-0000-4000-8000-{:012x}", id.unsigned_abs())
}

fn change(account: &str, name: &str, object_id: i64) -> Change {
    Change {
        account: account.to_string(),
        name: name.to_string(),
        object_id,
    }
}

fn client_mut(books: &mut Books, id: i64) -> Result<&mut ClientRec, SandboxError> {
    books
        .clients
        .get_mut(&id)
        .ok_or_else(|| SandboxError::NotFound(format!("client {id}")))
}

fn bill_vendor_mut(books: &mut Books, id: i64) -> Result<&mut BillVendorRec, SandboxError> {
    books
        .bill_vendors
        .get_mut(&id)
        .ok_or_else(|| SandboxError::NotFound(format!("bill vendor {id}")))
}

fn invoice_mut(books: &mut Books, id: i64) -> Result<&mut InvoiceRec, SandboxError> {
    books
        .invoices
        .get_mut(&id)
        .ok_or_else(|| SandboxError::NotFound(format!("invoice {id}")))
}

fn live_payments(books: &Books, invoiceid: i64) -> impl Iterator<Item = &PaymentRec> {
    books
        .payments
        .values()
        .filter(move |p| p.invoiceid == invoiceid && p.vis_state != DELETED)
}

/// (amount, paid, outstanding) in cents.
pub(super) fn invoice_totals(books: &Books, inv: &InvoiceRec) -> (i64, i64, i64) {
    let amount: i64 = inv.lines.iter().map(LineRec::amount).sum();
    let paid: i64 = live_payments(books, inv.id).map(|p| p.amount).sum();
    (amount, paid, amount - paid)
}

/// `"12"`, `"12.5"`, `"12.50"` → 1250. More than two decimals, signs or junk → `None`.
pub(super) fn parse_hundredths(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// 1250 → `"12.50"`.
pub(super) fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// Hundredths → `"2"` or `"1.5"`.
fn format_qty(h: i64) -> String {
    let s = format_cents(h);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// FreshBooks' zone-less US/Eastern rendering of an instant. Eastern is UTC−4 in summer and
/// UTC−5 in winter: the right one is the offset whose local time converts back to `at`.
pub(super) fn eastern(at: DateTime<Utc>) -> String {
    for hours in [4, 5] {
        let local = (at - Duration::hours(hours))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        if eastern_to_utc(&local) == Some(at.with_nanosecond_zero()) {
            return local;
        }
    }
    (at - Duration::hours(5))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The US/Eastern calendar date of an instant.
pub(super) fn eastern_date(at: DateTime<Utc>) -> NaiveDate {
    mlc::vendors::freshbooks::models::eastern_date(at)
}

trait NanosZero {
    fn with_nanosecond_zero(self) -> Self;
}

impl NanosZero for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_eastern_times() {
        assert_eq!(parse_hundredths("12"), Some(1200));
        assert_eq!(parse_hundredths("1.5"), Some(150));
        assert_eq!(parse_hundredths("611.00"), Some(61100));
        assert_eq!(parse_hundredths("1.234"), None);
        assert_eq!(parse_hundredths("-1"), None);
        assert_eq!(format_cents(122200), "1222.00");
        assert_eq!(format_qty(150), "1.5");
        assert_eq!(format_qty(200), "2");
        let winter: DateTime<Utc> = "2019-11-14T16:27:45Z".parse().unwrap();
        assert_eq!(eastern(winter), "2019-11-14 11:27:45");
        let summer: DateTime<Utc> = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(eastern(summer), "2026-07-01 08:00:00");
    }
}
