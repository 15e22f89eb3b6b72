//! [`VendorSpec`]: what a vendor says about itself — how people spell it, what its endpoints in
//! a connections file need — so the code that checks connections (and the CLI that prompts for
//! them) asks the vendor instead of matching on it. Each vendor module holds its own `SPEC`;
//! `super::spec` finds it.

use super::ingress::{SourceDeps, WebhookSource};
use super::spec;
use crate::connections::{ConnectionSet, Endpoint};
use crate::vendor::Vendor;

/// Builds a vendor's webhook ingress from what sources may need.
pub type BuildSource = fn(&SourceDeps) -> Box<dyn WebhookSource>;

/// A vendor's description of itself.
pub struct VendorSpec {
    /// The vendor it describes.
    pub vendor: Vendor,
    /// The vendor's name as people spell it, e.g. `FreshBooks`.
    pub display: &'static str,
    /// What a source endpoint's `account` is, e.g. "the FreshBooks account id (e.g. `6BApk`)".
    pub source_account: &'static str,
    /// The endpoint fields only this vendor's endpoints take, with whether a target needs it.
    pub ids: &'static [IdField],
    /// When a target endpoint needs `account` (the account the writes go to), what it is.
    pub target_account: Option<&'static str>,
    /// Builds the vendor's webhook ingress, when it sends webhooks.
    pub ingress: Option<BuildSource>,
    /// Where its deliveries arrive and what verifies them, when it sends webhooks.
    pub route: Option<WebhookRoute>,
    /// What one of its credential sets holds.
    pub credentials: CredentialKind,
    /// The poller job that renews its access tokens ahead of expiry, as a schedule spells it
    /// (`token_refresh`); `None` when its tokens do not expire or are not ours to renew.
    pub token_job: Option<&'static str>,
    /// Whether the poller reads its source accounts on a schedule (a fallback poll or a CDC
    /// sweep), keeping a cursor per account under [`cursor_name`].
    pub polled: bool,
    /// Messages its worker takes per batch as a target: the queue's SQS event-source
    /// `BatchSize` in `template.yaml`, and what the local loop gathers (10 per receive). More
    /// than 10 pays off only for a target with batch endpoints.
    pub worker_batch: usize,
}

/// What a vendor's credential set (the secret `credentials/<name>`) holds.
#[derive(Debug, Clone, Copy)]
pub enum CredentialKind {
    /// An OAuth token set (`access_token`, `refresh_token`, `expires_at`) that the token
    /// managers refresh; `connect` runs the vendor's OAuth approval.
    OAuth,
    /// Vendor-specific JSON, read by this check (its error never quotes the value).
    Checked(fn(&str) -> Result<(), String>),
    /// A JSON object with these keys, typed in by a person (`connect` prompts for each).
    Keys(&'static [&'static str]),
}

/// Where a vendor's webhook deliveries arrive (below the API's `/webhooks`) and the secret that
/// verifies them, as `dev` lists them and `apply` prints what to register by hand.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRoute {
    /// The path below `/webhooks` for a source `account`, placeholders in angle brackets
    /// (`freshbooks/6BApk/<route>`).
    pub path: fn(&str) -> String,
    /// The name of the secret that verifies the deliveries of `account`'s route.
    pub secret: fn(&str) -> String,
    /// One endpoint serves every account of the app (QuickBooks), so it is listed once.
    pub one_per_app: bool,
    /// What a person does to register the route in the vendor's console, given the webhook base
    /// URL and the source account; `None` when `ml-connector apply` registers it.
    pub by_hand: Option<fn(&str, &str) -> String>,
}

/// A webhook route that the enabled connections of a set need.
#[derive(Debug, Clone, Copy)]
pub struct NeededRoute<'a> {
    /// The source vendor.
    pub vendor: Vendor,
    /// The source account it serves (empty for a route that serves the whole app).
    pub account: &'a str,
    /// Its route.
    pub route: &'static WebhookRoute,
}

impl NeededRoute<'_> {
    /// The route's path below `/webhooks`.
    pub fn path(&self) -> String {
        (self.route.path)(self.account)
    }

    /// The name of the secret that verifies its deliveries.
    pub fn secret(&self) -> String {
        (self.route.secret)(self.account)
    }
}

/// Every webhook route the enabled connections of `set` need, once each: one per source
/// account, one per vendor for a route that serves every account of the app; sorted by vendor
/// and account. Sources whose vendor sends no webhooks need none.
pub fn needed_routes(set: &ConnectionSet) -> Vec<NeededRoute<'_>> {
    let mut needed: Vec<NeededRoute<'_>> = Vec::new();
    for c in set.connections.values().filter(|c| c.enabled) {
        let vendor = c.source.vendor;
        let Some(route) = &spec(vendor).route else {
            continue;
        };
        let account = match route.one_per_app {
            true => "",
            false => c.source.account.as_deref().unwrap_or_default(),
        };
        if !needed
            .iter()
            .any(|n| n.vendor == vendor && n.account == account)
        {
            needed.push(NeededRoute {
                vendor,
                account,
                route,
            });
        }
    }
    needed.sort_by(|a, b| (a.vendor, a.account).cmp(&(b.vendor, b.account)));
    needed
}

/// The cursor (and the seen markers' pseudo connection) of one polled source account:
/// `poll:<vendor>:<account>` (no real connection name contains `:`).
pub fn cursor_name(vendor: Vendor, account: &str) -> String {
    format!("poll:{vendor}:{account}")
}

/// The vendor whose access tokens the poller job named `job` renews.
pub(crate) fn token_job_vendor(job: &str) -> Option<Vendor> {
    Vendor::ALL
        .iter()
        .copied()
        .find(|v| spec(*v).token_job == Some(job))
}

/// A target endpoint lacks a field its vendor requires (the connections check refuses such a
/// file, but an applied set may predate the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("has no target.{field} ({hint})")]
pub struct MissingField {
    /// The field, as a connections file spells it.
    pub field: &'static str,
    /// What it is, from the vendor's spec.
    pub hint: &'static str,
}

/// The value of `field`, one of the target fields the endpoint's vendor requires: present and
/// not blank, else what is missing.
pub fn required_target_field<'a>(
    ep: &'a Endpoint,
    field: &'static str,
) -> Result<&'a str, MissingField> {
    let own = spec(ep.vendor);
    let id = own.ids.iter().find(|id| id.field == field);
    let hint = id.and_then(|id| id.target_requires).unwrap_or(field);
    id.and_then(|id| (id.get)(ep).as_deref())
        .filter(|v| !v.trim().is_empty())
        .ok_or(MissingField { field, hint })
}

/// An endpoint field only one vendor takes (`list_id`, `realm_id`, …).
#[derive(Debug)]
pub struct IdField {
    /// The field's name in a connections file.
    pub field: &'static str,
    /// Reads the field from an endpoint.
    pub get: fn(&Endpoint) -> &Option<String>,
    /// `Some(what it is)` when a target endpoint of the vendor must give it.
    pub target_requires: Option<&'static str>,
}

/// Checks one side of a connection against its vendor's spec: `Err((field, message))`.
pub(crate) fn check_endpoint(ep: &Endpoint, is_source: bool) -> Result<(), (&'static str, String)> {
    if ep.credentials.trim().is_empty() {
        return Err((
            "credentials",
            "must name the secret holding this vendor's credentials".into(),
        ));
    }
    let own = spec(ep.vendor);
    let every = Vendor::ALL.iter().copied().map(spec);
    if is_source && ep.account.as_deref().is_none_or(|a| a.trim().is_empty()) {
        return Err(("account", format!("required: {}", own.source_account)));
    }
    for other in every {
        for id in other.ids {
            match (id.get)(ep).as_deref() {
                Some(v) if v.trim().is_empty() => {
                    return Err((id.field, "must not be empty".into()));
                }
                Some(_) if other.vendor != ep.vendor => {
                    return Err((
                        id.field,
                        format!("applies to a {} endpoint, not {}", other.vendor, ep.vendor),
                    ));
                }
                _ => {}
            }
        }
    }
    if is_source {
        return Ok(());
    }
    let required = own
        .ids
        .iter()
        .filter_map(|id| Some((id.field, id.target_requires?, (id.get)(ep).is_some())))
        .chain(
            own.target_account
                .map(|hint| ("account", hint, ep.account.is_some())),
        );
    for (field, hint, present) in required {
        if !present {
            return Err((
                field,
                format!("required for a {} target: {hint}", ep.vendor),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each worker's SQS event source hands it the batch its spec says, so the Lambda and the
    /// local loop batch alike.
    #[test]
    fn the_template_batches_each_worker_as_its_spec_says() {
        let template = include_str!("../../../template.yaml");
        let mut checked = 0;
        for vendor in Vendor::ALL.iter().copied() {
            let lower: &str = vendor.into();
            let resource = format!(
                "  {}{}WorkerFunction:\n",
                lower[..1].to_uppercase(),
                &lower[1..]
            );
            let Some(at) = template.find(&resource) else {
                continue;
            };
            // The resource runs until the next line indented as a resource name.
            let body = &template[at + resource.len()..];
            let end = body
                .lines()
                .position(|l| l.starts_with("  ") && !l.starts_with("   "))
                .unwrap_or(usize::MAX);
            let batch = body
                .lines()
                .take(end)
                .find_map(|l| l.trim().strip_prefix("BatchSize: "))
                .and_then(|n| n.parse::<usize>().ok());
            assert_eq!(batch, Some(spec(vendor).worker_batch), "{vendor}");
            checked += 1;
        }
        assert!(
            checked >= 3,
            "found {checked} worker functions in template.yaml"
        );
    }

    #[test]
    fn every_vendor_describes_itself() {
        for vendor in Vendor::ALL.iter().copied() {
            let s = spec(vendor);
            assert_eq!(s.vendor, vendor);
            assert!(
                s.display.eq_ignore_ascii_case(vendor.as_str()),
                "{}",
                s.display
            );
        }
    }
}
