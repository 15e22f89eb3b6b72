//! HubSpot-defined association types (docs/vendors/hubspot.md §3.4): which pairs of object
//! types associate, with which type ids in each direction and which labels.

use mlc::vendors::hubspot::models::ObjectType;

/// An association type between two object types (`types` in v4 bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AssocDef {
    pub(crate) from: ObjectType,
    pub(crate) to: ObjectType,
    pub(crate) type_id: u32,
    /// The id of the same association seen from `to`.
    pub(crate) reverse_id: u32,
    pub(crate) label: Option<&'static str>,
}

/// The HubSpot-defined association types the sandbox knows, one direction each (the reverse is
/// derived). contact↔company ids are HubSpot's (§3.4); the invoice, line item and payment ids
/// are UNCONFIRMED picks (third-party code, HubSpot's payments guide for 387).
const ASSOC_PAIRS: &[(ObjectType, ObjectType, u32, u32, Option<&str>)] = &[
    (ObjectType::Contacts, ObjectType::Companies, 279, 280, None),
    (
        ObjectType::Contacts,
        ObjectType::Companies,
        1,
        2,
        Some("Primary"),
    ),
    (ObjectType::Invoices, ObjectType::Contacts, 177, 178, None),
    (ObjectType::Invoices, ObjectType::Companies, 179, 180, None),
    (ObjectType::Invoices, ObjectType::LineItems, 409, 410, None),
    (
        ObjectType::CommercePayments,
        ObjectType::Invoices,
        541,
        542,
        None,
    ),
    (
        ObjectType::CommercePayments,
        ObjectType::Contacts,
        387,
        388,
        None,
    ),
    (
        ObjectType::CommercePayments,
        ObjectType::Companies,
        389,
        390,
        None,
    ),
    (
        ObjectType::CommercePayments,
        ObjectType::LineItems,
        391,
        392,
        None,
    ),
];

/// Every association type from `from` to `to`, the unlabelled one first.
pub(crate) fn assoc_defs(from: ObjectType, to: ObjectType) -> Vec<AssocDef> {
    let mut defs = Vec::new();
    for &(a, b, ab, ba, label) in ASSOC_PAIRS {
        if a == from && b == to {
            defs.push(AssocDef {
                from,
                to,
                type_id: ab,
                reverse_id: ba,
                label,
            });
        } else if a == to && b == from {
            defs.push(AssocDef {
                from,
                to,
                type_id: ba,
                reverse_id: ab,
                label,
            });
        }
    }
    defs
}

/// The unlabelled (default) association type from `from` to `to`.
pub(crate) fn default_def(from: ObjectType, to: ObjectType) -> Option<AssocDef> {
    assoc_defs(from, to).into_iter().find(|d| d.label.is_none())
}

/// The association type `type_id` from `from` (to any type).
pub(crate) fn def_by_id(from: ObjectType, type_id: u32) -> Option<AssocDef> {
    ObjectType::ALL
        .into_iter()
        .flat_map(|to| assoc_defs(from, to))
        .find(|d| d.type_id == type_id)
}
