//! A Mailchimp target endpoint as flows use it: the audience the writes go to, typed, with the
//! fields a Mailchimp target requires present. (The optional e-commerce store is read where it
//! is used: `flows::freshbooks_mailchimp::store_id`.)

use crate::connections::Endpoint;
use crate::vendors::spec::{MissingField, required_target_field};

/// Where a connection's Mailchimp writes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailchimpTarget<'a> {
    /// The credential set the writes use.
    pub credentials: &'a str,
    /// The audience (list) id.
    pub list_id: &'a str,
}

impl<'a> MailchimpTarget<'a> {
    /// The typed target of `ep`, a Mailchimp endpoint.
    pub fn of(ep: &'a Endpoint) -> Result<Self, MissingField> {
        Ok(MailchimpTarget {
            credentials: &ep.credentials,
            list_id: required_target_field(ep, "list_id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::Vendor;

    fn endpoint(list_id: Option<&str>) -> Endpoint {
        Endpoint {
            vendor: Vendor::Mailchimp,
            account: None,
            credentials: "mc".into(),
            list_id: list_id.map(str::to_string),
            store_id: Some("s1".into()),
            portal_id: None,
            instance: None,
            realm_id: None,
        }
    }

    #[test]
    fn a_target_needs_its_audience() {
        let ep = endpoint(Some("l1"));
        let t = MailchimpTarget::of(&ep).unwrap();
        assert_eq!((t.credentials, t.list_id), ("mc", "l1"));
        for missing in [None, Some(" ")] {
            let e = MailchimpTarget::of(&endpoint(missing)).unwrap_err();
            assert_eq!(e.field, "list_id");
            assert!(
                e.to_string()
                    .starts_with("has no target.list_id (the audience id"),
                "{e}"
            );
        }
    }
}
