//! Contacts, companies (clients' organizations and bill vendors) and the contact's primary
//! company.

use std::collections::HashMap;

use serde_json::json;

use super::batch::{Pending, WriteError, associate, write_objects};
use super::handler::{Cx, Loaded};
use super::ledger::Ledger;
use super::mapping::{self, Company};
use crate::flows::freshbooks_standing::{Standing, standing};
use crate::flows::options::Retire;
use crate::flows::record_ids::fingerprint;
use crate::ids::Email;
use crate::ports::IdMapping;
use crate::vendors::hubspot::BATCH_LIMIT;
use crate::vendors::hubspot::models::{
    Association, AssociationType, HubObject, ObjectInput, ObjectType, Properties,
};

/// What `write_people` established per client, for the invoices and payments after it.
#[derive(Default)]
pub(super) struct People {
    /// client id → contact id.
    pub(super) contacts: HashMap<String, String>,
    /// client id → company id.
    pub(super) companies: HashMap<String, String>,
    /// client id → the client's email, for payments.
    pub(super) emails: HashMap<String, Email>,
    /// client id → its standing's currency.
    pub(super) currencies: HashMap<String, String>,
}

/// A client's planned writes.
struct ClientPlan {
    id: String,
    previous: Option<IdMapping>,
    contact: Option<Properties>,
    email: Option<Email>,
    company: Option<Company>,
    company_previous: Option<IdMapping>,
    fp: String,
    company_fp: String,
}

/// Contacts and client companies, and the contact's primary company.
pub(super) async fn write_people(cx: &Cx<'_>, loaded: &Loaded, ledger: &mut Ledger) -> People {
    let mut people = People::default();
    let mut plans = Vec::new();
    let mut deleted = Vec::new();
    for (id, data) in &loaded.clients {
        let key = format!("client:{id}");
        let previous = match cx.ids.get(&key).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        let client = match &data.client {
            Some(c) if !c.is_deleted() => c,
            _ => {
                deleted.push((id.clone(), previous));
                continue;
            }
        };
        let s: Standing = standing(client, &data.invoices, cx.today);
        if let Some(c) = &s.currency {
            people.currencies.insert(id.clone(), c.clone());
        }
        let email = Email::parse(client.email.as_deref());
        let contact = email.as_ref().map(|e| mapping::contact(client, e, &s));
        let company = mapping::client_company(cx.account, client, &s);
        if contact.is_none() && company.is_none() {
            ledger.skip(&key, "client has no email and no organization");
            continue;
        }
        let company_previous = match cx.ids.get(&format!("company:client:{id}")).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        if let Some(e) = &email {
            people.emails.insert(id.clone(), e.clone());
        }
        let fp = fingerprint(
            &json!({"contact": contact, "company": company.as_ref().map(|c| &c.properties)}),
        );
        let company_fp = fingerprint(&json!(company.as_ref().map(|c| &c.properties)));
        plans.push(ClientPlan {
            id: id.clone(),
            previous,
            contact,
            email,
            company,
            company_previous,
            fp,
            company_fp,
        });
    }

    retire_clients(cx, deleted, &mut people, ledger).await;

    // Contacts: unchanged ones cost nothing; mapped ones are updated by id (an email change
    // stays the same contact), the rest upserted by email.
    let mut by_id = Vec::new();
    let mut by_email = Vec::new();
    for plan in &plans {
        let key = format!("client:{}", plan.id);
        let mapped = plan.previous.as_ref().filter(|m| !m.target_id.is_empty());
        if let Some(m) = mapped {
            people.contacts.insert(plan.id.clone(), m.target_id.clone());
        }
        if let Some(m) = plan
            .company_previous
            .as_ref()
            .filter(|m| !m.target_id.is_empty())
        {
            people
                .companies
                .insert(plan.id.clone(), m.target_id.clone());
        }
        if plan
            .previous
            .as_ref()
            .is_some_and(|m| m.fingerprint == plan.fp)
        {
            ledger.unchanged(&key);
            continue;
        }
        let (Some(props), Some(email)) = (&plan.contact, &plan.email) else {
            continue;
        };
        match mapped {
            Some(m) => by_id.push(Pending {
                key: key.clone(),
                input: ObjectInput {
                    id: m.target_id.clone(),
                    properties: props.clone(),
                },
            }),
            None => by_email.push(Pending {
                key: key.clone(),
                input: ObjectInput {
                    id: email.to_string(),
                    properties: props.clone(),
                },
            }),
        }
    }
    let mut results = write_objects(&*cx.hs, ObjectType::Contacts, None, by_id).await;
    results.extend(write_objects(&*cx.hs, ObjectType::Contacts, Some("email"), by_email).await);
    for (key, r) in results {
        match r {
            Ok(obj) => {
                let id = key.trim_start_matches("client:").to_string();
                ledger.wrote(&key, "contact", json!({"id": obj.id}));
                people.contacts.insert(id, obj.id);
            }
            Err(e) => ledger.fail(&key, e.error),
        }
    }

    // Companies of the clients whose record changed.
    let changed: Vec<&ClientPlan> = plans
        .iter()
        .filter(|p| {
            let key = format!("client:{}", p.id);
            !ledger.settled(&key) && p.previous.as_ref().is_none_or(|m| m.fingerprint != p.fp)
        })
        .collect();
    let companies: Vec<(String, Company, Option<String>)> = changed
        .iter()
        .filter(|p| {
            p.company_previous
                .as_ref()
                .is_none_or(|m| m.fingerprint != p.company_fp)
        })
        .filter_map(|p| {
            let company = p.company.clone()?;
            let mapped = p
                .company_previous
                .as_ref()
                .map(|m| m.target_id.clone())
                .filter(|t| !t.is_empty());
            Some((format!("client:{}", p.id), company, mapped))
        })
        .collect();
    for (key, r) in write_companies(cx, companies).await {
        let id = key.trim_start_matches("client:").to_string();
        match r {
            Ok(obj) => {
                ledger.wrote(&key, "company", json!({"id": obj.id}));
                people.companies.insert(id, obj.id);
            }
            Err(e) => ledger.fail(&key, e.error),
        }
    }

    // The contact's primary company: labelled (type 1) on top of the default association.
    let pairs: Vec<(String, Association)> = changed
        .iter()
        .filter_map(|p| {
            let key = format!("client:{}", p.id);
            let contact = people.contacts.get(&p.id)?;
            let company = people.companies.get(&p.id)?;
            (!ledger.settled(&key)).then(|| {
                (
                    key,
                    Association {
                        from: contact.clone(),
                        to: company.clone(),
                    },
                )
            })
        })
        .collect();
    for (key, e) in associate(
        &*cx.hs,
        ObjectType::Contacts,
        ObjectType::Companies,
        Some(AssociationType::CONTACT_TO_PRIMARY_COMPANY),
        pairs,
    )
    .await
    {
        ledger.fail(&key, e.error);
    }

    // The id map last: a failure above leaves the old fingerprint, and the retry writes again.
    for plan in changed {
        let key = format!("client:{}", plan.id);
        if ledger.settled(&key) {
            continue;
        }
        let contact = people.contacts.get(&plan.id).cloned().unwrap_or_default();
        if let Err(e) = cx.ids.put(&key, &contact, &plan.fp).await {
            ledger.fail(&key, e);
            continue;
        }
        if let Some(company) = people.companies.get(&plan.id)
            && let Err(e) = cx
                .ids
                .put(
                    &format!("company:client:{}", plan.id),
                    company,
                    &plan.company_fp,
                )
                .await
        {
            ledger.fail(&key, e);
        }
    }
    people
}

/// Companies by HubSpot id when mapped, else upserted by `fb_company_key`; two records with
/// the same key in one batch (a vendor and a client on one domain) are one input.
async fn write_companies(
    cx: &Cx<'_>,
    companies: Vec<(String, Company, Option<String>)>,
) -> Vec<(String, Result<HubObject, WriteError>)> {
    let mut by_id = Vec::new();
    let mut by_key: Vec<(Vec<String>, Company)> = Vec::new();
    for (record, company, mapped) in companies {
        match mapped {
            Some(id) => by_id.push(Pending {
                key: record,
                input: ObjectInput {
                    id,
                    properties: company.properties,
                },
            }),
            None => match by_key.iter_mut().find(|(_, c)| c.key == company.key) {
                Some((records, c)) => {
                    records.push(record);
                    c.merge(company);
                }
                None => by_key.push((vec![record], company)),
            },
        }
    }
    let mut out = write_objects(&*cx.hs, ObjectType::Companies, None, by_id).await;
    let upserts: Vec<Pending> = by_key
        .iter()
        .map(|(records, c)| Pending {
            key: records.join("\n"),
            input: ObjectInput {
                id: c.key.clone(),
                properties: c.properties.clone(),
            },
        })
        .collect();
    for (keys, r) in write_objects(
        &*cx.hs,
        ObjectType::Companies,
        Some(mapping::FB_COMPANY_KEY),
        upserts,
    )
    .await
    {
        for key in keys.split('\n') {
            out.push((key.to_string(), r.clone()));
        }
    }
    out
}

/// Deleted clients: the contact is flagged `fb_deleted` (or archived, with
/// `on_client_delete = "archive"`); a client never synced is skipped.
async fn retire_clients(
    cx: &Cx<'_>,
    deleted: Vec<(String, Option<IdMapping>)>,
    people: &mut People,
    ledger: &mut Ledger,
) {
    let archive = cx.options.on_client_delete == Retire::Archive;
    let marker = if archive { "archived" } else { "deleted" };
    let mut flag = Vec::new();
    let mut gone = Vec::new();
    for (id, previous) in deleted {
        let key = format!("client:{id}");
        let Some(m) = previous.filter(|m| !m.target_id.is_empty()) else {
            ledger.skip(&key, "client deleted in FreshBooks and never synced");
            continue;
        };
        if m.fingerprint == marker {
            ledger.unchanged(&key);
            continue;
        }
        people.contacts.insert(id.clone(), m.target_id.clone());
        if archive {
            gone.push((key, m.target_id));
        } else {
            flag.push(Pending {
                key,
                input: ObjectInput {
                    id: m.target_id,
                    properties: mapping::deleted(),
                },
            });
        }
    }
    let mut done = Vec::new();
    for (key, r) in write_objects(&*cx.hs, ObjectType::Contacts, None, flag).await {
        match r {
            Ok(obj) => {
                ledger.wrote(
                    &key,
                    "contact",
                    json!({"id": obj.id, mapping::FB_DELETED: true}),
                );
                done.push((key, obj.id));
            }
            Err(e) => ledger.fail(&key, e.error),
        }
    }
    for chunk in gone.chunks(BATCH_LIMIT) {
        let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
        match cx.hs.archive(ObjectType::Contacts, &ids).await {
            Ok(()) => {
                for (key, id) in chunk {
                    ledger.wrote(key, "contact", json!({"id": id, "archived": true}));
                    done.push((key.clone(), id.clone()));
                }
            }
            Err(e) => {
                let shared = WriteError::from(e);
                for (key, _) in chunk {
                    ledger.fail(key, shared.error.clone());
                }
            }
        }
    }
    for (key, id) in done {
        if let Err(e) = cx.ids.put(&key, &id, marker).await {
            ledger.fail(&key, e);
        }
    }
}

/// Bill vendors as companies, marked as vendors.
pub(super) async fn write_vendors(cx: &Cx<'_>, loaded: &Loaded, ledger: &mut Ledger) {
    let mut companies = Vec::new();
    let mut fps = HashMap::new();
    for (id, vendor) in &loaded.vendors {
        let key = format!("vendor:{id}");
        let map_key = format!("company:vendor:{id}");
        let previous = match cx.ids.get(&map_key).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        let Some(vendor) = vendor else {
            ledger.skip(&key, "bill vendor no longer in FreshBooks");
            continue;
        };
        if vendor.is_deleted() && previous.is_none() {
            ledger.skip(&key, "bill vendor deleted in FreshBooks and never synced");
            continue;
        }
        let company = mapping::vendor_company(cx.account, vendor);
        let fp = fingerprint(&json!(company.properties));
        if previous.as_ref().is_some_and(|m| m.fingerprint == fp) {
            ledger.unchanged(&key);
            continue;
        }
        fps.insert(key.clone(), (map_key, fp));
        let mapped = previous.map(|m| m.target_id).filter(|t| !t.is_empty());
        companies.push((key, company, mapped));
    }
    for (key, r) in write_companies(cx, companies).await {
        match r {
            Ok(obj) => {
                ledger.wrote(&key, "company", json!({"id": obj.id}));
                if let Some((map_key, fp)) = fps.get(&key)
                    && let Err(e) = cx.ids.put(map_key, &obj.id, fp).await
                {
                    ledger.fail(&key, e);
                }
            }
            Err(e) => ledger.fail(&key, e.error),
        }
    }
}
