//! What the operator command (`apply`, `ping`, `status`, `backfill`) knows of a FreshBooks →
//! HubSpot connection's portal, through the flow so it never spells the flow's keys: the
//! properties the flow writes, whether the portal takes invoice and commerce-payment writes
//! (the id map's [`INVOICES_FLAG`] and [`PAYMENTS_FLAG`]), and a live probe of invoice writes.

use chrono::{DateTime, Utc};

use super::mapping::{self, FB_INVOICE_ID};
use super::{ENTITIES, INVOICES_FLAG, PAYMENTS_FLAG, UNAVAILABLE};
use crate::ports::{IdMap, IdMapping, PortResult};
use crate::vendors::hubspot::models::{
    ObjectInput, ObjectType, Properties, PropertyDefinition, PropertyGroup,
};
use crate::vendors::hubspot::{HubspotApi, HubspotError};

/// The flag's fingerprint once writes are (again) taken: anything but [`UNAVAILABLE`].
const AVAILABLE: &str = "available";

/// The key of the throwaway draft invoice the probe writes and archives.
pub const PROBE_INVOICE_KEY: &str = "mlc-probe";

/// The entities the flow syncs (what `backfill --only` accepts).
pub fn entities() -> &'static [&'static str] {
    ENTITIES
}

/// The property the flow's invoices are upserted by (`fb_invoice_id`).
pub fn invoice_key_property() -> &'static str {
    FB_INVOICE_ID
}

/// Every property the flow writes, by object type, as `apply` creates them.
pub fn property_definitions() -> Vec<(ObjectType, PropertyDefinition)> {
    mapping::property_definitions()
}

/// The property group the flow's properties live in, created on each object type.
pub fn property_group() -> PropertyGroup {
    mapping::group()
}

/// Which kinds of writes a connection's portal refused (as the worker recorded it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unavailable {
    /// Invoice writes were refused: invoices are skipped (`invoices_unavailable`).
    pub invoices: bool,
    /// Commerce payments were refused: payments go to the contact's properties only.
    pub payments: bool,
}

/// Which writes the portal of connection `connection` refused, from the id map.
pub async fn unavailable(id_map: &dyn IdMap, connection: &str) -> PortResult<Unavailable> {
    let off = |m: Option<IdMapping>| m.is_some_and(|m| m.fingerprint == UNAVAILABLE);
    Ok(Unavailable {
        invoices: off(id_map.get_mapping(connection, INVOICES_FLAG).await?),
        payments: off(id_map.get_mapping(connection, PAYMENTS_FLAG).await?),
    })
}

/// Records whether connection `connection`'s portal takes invoice writes: cleared, the worker
/// writes invoices again (`backfill --only invoices` brings the skipped ones); set, it skips
/// them.
pub async fn set_invoices_available(
    id_map: &dyn IdMap,
    connection: &str,
    available: bool,
    now: DateTime<Utc>,
) -> PortResult<()> {
    let mapping = IdMapping {
        target_id: String::new(),
        fingerprint: if available { AVAILABLE } else { UNAVAILABLE }.to_string(),
        updated_at: now,
    };
    id_map
        .put_mapping(connection, INVOICES_FLAG, &mapping)
        .await
}

/// What the invoice probe found.
#[derive(Debug)]
pub enum InvoiceProbe {
    /// A draft invoice was written (and archived again).
    Available,
    /// HubSpot refused the write as unavailable in this portal (403).
    Unavailable(HubspotError),
    /// The portal has no unique `fb_invoice_id` on invoices, so nothing can be upserted
    /// (`apply` creates it).
    NoKeyProperty,
    /// The probe failed for another reason (transient, scopes, …): nothing learnt.
    Failed(HubspotError),
}

/// Upserts a throwaway draft invoice keyed `fb_invoice_id = "mlc-probe"` (in `currency`) and
/// archives it again: whether the portal takes invoice writes. Only tried when the invoice key
/// property exists and is unique.
pub async fn probe_invoice_writes(hs: &dyn HubspotApi, currency: &str) -> InvoiceProbe {
    match hs.properties(ObjectType::Invoices).await {
        Ok(props) => {
            if !props
                .iter()
                .any(|p| p.name == FB_INVOICE_ID && p.has_unique_value)
            {
                return InvoiceProbe::NoKeyProperty;
            }
        }
        Err(e) if e.is_unavailable() => return InvoiceProbe::Unavailable(e),
        Err(e) => return InvoiceProbe::Failed(e),
    }
    let mut properties = Properties::new();
    properties.insert(FB_INVOICE_ID.into(), PROBE_INVOICE_KEY.into());
    properties.insert("hs_currency".into(), currency.to_string());
    properties.insert(
        "hs_title".into(),
        "ml-connector probe (archived at once)".into(),
    );
    let input = ObjectInput {
        id: PROBE_INVOICE_KEY.into(),
        properties,
    };
    let written = match hs
        .upsert(ObjectType::Invoices, FB_INVOICE_ID, &[input])
        .await
        .map(|mut r| r.pop())
    {
        Ok(Some(Ok(obj))) => obj,
        Ok(Some(Err(e))) | Err(e) if e.is_unavailable() => return InvoiceProbe::Unavailable(e),
        Ok(Some(Err(e))) | Err(e) => return InvoiceProbe::Failed(e),
        Ok(None) => {
            return InvoiceProbe::Failed(HubspotError::InvalidArgument(
                "HubSpot answered the probe's upsert without a result".into(),
            ));
        }
    };
    match hs.archive(ObjectType::Invoices, &[written.id]).await {
        Ok(()) => InvoiceProbe::Available,
        // Written, so available; the draft stays (it is named as a probe).
        Err(e) => {
            tracing::warn!(error = %e, "could not archive the probe invoice `mlc-probe`");
            InvoiceProbe::Available
        }
    }
}
