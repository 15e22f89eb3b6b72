//! What `apply` creates in a HubSpot portal: the flow's property group on each object type and
//! every property it writes, read first and created only where missing. An existing property
//! is never changed (HubSpot fixes `hasUniqueValue` at creation, and someone may rely on the
//! rest); where it differs from what the flow needs, a warning says what it breaks.

use std::collections::{BTreeMap, BTreeSet};

use mlc::vendors::hubspot::HubspotApi;
use mlc::vendors::hubspot::models::{ObjectType, PropertyDefinition, PropertyGroup};

/// What a portal lacks of the flow's properties on one object type, and what differs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PropertyPlan {
    /// The group, when the object type lacks it.
    pub group: Option<PropertyGroup>,
    /// Properties to create.
    pub create: Vec<PropertyDefinition>,
    /// Existing properties that differ from the flow's: what differs and what it breaks.
    pub warnings: Vec<String>,
}

/// The plan for `object`, from what the portal has (`existing`, `groups`) and what the flow
/// writes (`wanted`).
pub(crate) fn plan(
    object: ObjectType,
    existing: &[PropertyDefinition],
    groups: &[PropertyGroup],
    group: &PropertyGroup,
    wanted: &[PropertyDefinition],
) -> PropertyPlan {
    let mut out = PropertyPlan::default();
    if !groups.iter().any(|g| g.name == group.name) {
        out.group = Some(group.clone());
    }
    for w in wanted {
        match existing.iter().find(|e| e.name == w.name) {
            None => out.create.push(w.clone()),
            Some(e) => out.warnings.extend(differences(object, e, w)),
        }
    }
    out
}

/// How an existing property differs from the flow's, in words.
fn differences(
    object: ObjectType,
    existing: &PropertyDefinition,
    wanted: &PropertyDefinition,
) -> Vec<String> {
    let mut out = Vec::new();
    let name = &wanted.name;
    if existing.kind != wanted.kind {
        out.push(format!(
            "{object} property `{name}` exists with type `{}` where the flow writes `{}`: \
             HubSpot may refuse the values written to it (those records then fail); rename or \
             delete the existing property in HubSpot, then run `apply` again",
            existing.kind, wanted.kind
        ));
    }
    if wanted.has_unique_value && !existing.has_unique_value {
        out.push(format!(
            "{object} property `{name}` exists without unique values: HubSpot cannot upsert by \
             it, so every {object} write fails (and redeliveries could duplicate records); \
             uniqueness is fixed at creation: delete the property in HubSpot (nothing but \
             ml-connector writes it), then run `apply` again"
        ));
    }
    out
}

/// What `ensure` did on one portal.
#[derive(Debug, Default)]
pub(crate) struct Ensured {
    /// `<object>.<property>` created.
    pub created: Vec<String>,
    /// Groups created, by object type.
    pub groups: Vec<ObjectType>,
    pub warnings: Vec<String>,
}

/// Creates the flow's group and missing properties on every object type it writes.
pub(crate) async fn ensure(
    hs: &dyn HubspotApi,
    group: &PropertyGroup,
    definitions: &[(ObjectType, PropertyDefinition)],
) -> anyhow::Result<Ensured> {
    let mut by_type: BTreeMap<ObjectType, Vec<PropertyDefinition>> = BTreeMap::new();
    for (t, d) in definitions {
        by_type.entry(*t).or_default().push(d.clone());
    }
    let mut done = Ensured::default();
    for (object, wanted) in &by_type {
        let existing = hs
            .properties(*object)
            .await
            .map_err(|e| anyhow::anyhow!("reading the {object} properties: {e}"))?;
        let groups = hs
            .property_groups(*object)
            .await
            .map_err(|e| anyhow::anyhow!("reading the {object} property groups: {e}"))?;
        let p = plan(*object, &existing, &groups, group, wanted);
        if let Some(g) = &p.group {
            hs.create_property_group(*object, g)
                .await
                .map_err(|e| anyhow::anyhow!("creating the {object} group `{}`: {e}", g.name))?;
            done.groups.push(*object);
        }
        let mut seen = BTreeSet::new();
        for d in &p.create {
            if !seen.insert(d.name.clone()) {
                continue;
            }
            hs.create_property(*object, d)
                .await
                .map_err(|e| anyhow::anyhow!("creating the {object} property `{}`: {e}", d.name))?;
            done.created.push(format!("{object}.{}", d.name));
        }
        done.warnings.extend(p.warnings);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str, kind: &str, unique: bool) -> PropertyDefinition {
        PropertyDefinition {
            name: name.into(),
            label: name.into(),
            kind: kind.into(),
            field_type: "text".into(),
            group_name: "freshbooks".into(),
            has_unique_value: unique,
            ..PropertyDefinition::default()
        }
    }

    fn group() -> PropertyGroup {
        PropertyGroup {
            name: "freshbooks".into(),
            label: "FreshBooks".into(),
            display_order: -1,
        }
    }

    #[test]
    fn only_missing_properties_are_created_and_differences_warn() {
        let wanted = [
            prop("fb_invoice_id", "string", true),
            prop("fb_invoice_number", "string", false),
            prop("fb_total", "number", false),
        ];
        let existing = [
            prop("fb_invoice_id", "string", false),
            prop("fb_total", "string", false),
        ];
        let p = plan(ObjectType::Invoices, &existing, &[], &group(), &wanted);
        assert_eq!(p.group, Some(group()));
        assert_eq!(p.create, [prop("fb_invoice_number", "string", false)]);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("`fb_invoice_id` exists without unique values"));
        assert!(p.warnings[0].contains("every invoices write fails"));
        assert!(p.warnings[1].contains("type `string` where the flow writes `number`"));

        // Everything in place: nothing to do, nothing to say.
        let p = plan(ObjectType::Invoices, &wanted, &[group()], &group(), &wanted);
        assert_eq!(p, PropertyPlan::default());
    }
}
