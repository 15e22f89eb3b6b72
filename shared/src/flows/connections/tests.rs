//! Connections files through the flow table: the shipped example, flows this build does not
//! run, per-flow options, and errors that name the file, connection and field.

use crate::connections::ConnectionSet;
use crate::event::SourceRef;
use crate::flows::{FLOWS, Flow};
use crate::vendor::Vendor;

const EXAMPLE: &str = include_str!("../../../../connections.example.toml");

fn err(text: &str) -> String {
    ConnectionSet::from_toml(text, "c.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn the_shipped_example_is_valid_and_covers_every_flow() {
    let set = ConnectionSet::from_toml(EXAMPLE, "connections.example.toml").unwrap();
    let flows: std::collections::HashSet<_> = set
        .connections
        .values()
        .filter_map(|c| Flow::of(c).map(|f| (f.source, f.target)))
        .collect();
    assert_eq!(flows.len(), FLOWS.len());
}

#[test]
fn a_flow_this_build_does_not_run_is_refused_with_the_ones_it_runs() {
    let marketo = r#"
[connection.m]
source = { vendor = "freshbooks", account = "x", credentials = "fb" }
target = { vendor = "marketo", credentials = "m", instance = "123-ABC-456" }
"#;
    let e = err(marketo);
    assert!(
        e.contains("connection `m`: target.vendor: there is no flow from freshbooks to marketo in this build"),
        "{e}"
    );
    for flow in FLOWS {
        assert!(e.contains(&flow.to_string()), "{e}");
    }
}

#[test]
fn fans_out_by_source_account() {
    let set = ConnectionSet::from_toml(EXAMPLE, "x").unwrap();
    let fb = SourceRef {
        vendor: Vendor::Freshbooks,
        account: "6BApk".into(),
    };
    let names: Vec<_> = set.for_source(&fb).map(|(n, _)| n).collect();
    // The example's FreshBooks account feeds both its Mailchimp and its HubSpot connection.
    assert_eq!(names, ["acme-books-to-hubspot", "acme-books-to-mailchimp"]);
    let other = SourceRef {
        vendor: Vendor::Freshbooks,
        account: "nope".into(),
    };
    assert_eq!(set.for_source(&other).count(), 0);
}

#[test]
fn disabled_connections_get_no_events() {
    let text = EXAMPLE.replace(
        "options = { status_if_new = \"transactional\", sync_drafts = false, on_email_change = \"archive\", on_client_delete = \"archive\", tags = true }",
        "enabled = false",
    );
    let set = ConnectionSet::from_toml(&text, "x").unwrap();
    let fb = SourceRef {
        vendor: Vendor::Freshbooks,
        account: "6BApk".into(),
    };
    assert!(
        set.for_source(&fb)
            .all(|(n, _)| n != "acme-books-to-mailchimp")
    );
}

#[test]
fn errors_name_file_connection_and_field() {
    let missing_list = r#"
[connection.a]
source = { vendor = "freshbooks", account = "x", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc" }
"#;
    let e = err(missing_list);
    assert!(
        e.starts_with("c.toml: connection `a`: target.list_id: required for a mailchimp target"),
        "{e}"
    );

    let no_flow = r#"
[connection.b]
source = { vendor = "hubspot", account = "x", credentials = "h" }
target = { vendor = "freshbooks", credentials = "fb", account = "y" }
"#;
    assert!(
        err(no_flow)
            .contains("connection `b`: target.vendor: there is no flow from hubspot to freshbooks")
    );

    let bad_option = r#"
[connection.c]
source = { vendor = "freshbooks", account = "x", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
options = { status_if_new = "maybe" }
"#;
    assert!(
        err(bad_option)
            .contains("connection `c`: options.status_if_new: must be one of subscribed")
    );

    let unknown_option = bad_option.replace("status_if_new = \"maybe\"", "colour = \"red\"");
    assert!(
        err(&unknown_option).contains(
            "options.colour: `colour` is not an option of the freshbooks → mailchimp flow"
        )
    );

    let misplaced = r#"
[connection.d]
source = { vendor = "freshbooks", account = "x", credentials = "fb", list_id = "l" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
"#;
    assert!(
        err(misplaced).contains("source.list_id: applies to a mailchimp endpoint, not freshbooks")
    );

    let no_account = r#"
[connection.e]
source = { vendor = "quickbooks", credentials = "q" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
"#;
    assert!(err(no_account).contains("source.account: required: the QuickBooks realm"));

    let bad_name = r#"
[connection."no spaces"]
source = { vendor = "quickbooks", account = "1", credentials = "q" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
"#;
    assert!(err(bad_name).contains("connection `no spaces`: name:"));
}

#[test]
fn syntax_and_unknown_fields_are_reported_with_the_file() {
    let e = err(
        "[connection.a]\nsource = { vendor = \"freshbooks\", acount = \"x\", credentials = \"f\" }\n",
    );
    assert!(e.starts_with("c.toml: "), "{e}");
    assert!(e.contains("acount"), "{e}");
    let e = err("[connection.a]\nsource = { vendor = \"freshbox\" }\n");
    assert!(e.contains("freshbox"), "{e}");
}

#[test]
fn duplicate_connections_are_refused() {
    let one = r#"
[connection.a]
source = { vendor = "freshbooks", account = "x", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
[connection.b]
source = { vendor = "freshbooks", account = "x", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
"#;
    assert!(err(one).contains("connection `b`: target: duplicates connection `a`"));
}

#[test]
fn the_applied_set_round_trips_through_json() {
    let set = ConnectionSet::from_toml(EXAMPLE, "x").unwrap();
    let json = serde_json::to_string(&set).unwrap();
    assert_eq!(serde_json::from_str::<ConnectionSet>(&json).unwrap(), set);
}

#[test]
fn flow_options_are_checked_per_flow() {
    let with = |options: &str| {
        format!(
            "[connection.m]\nsource = {{ vendor = \"freshbooks\", account = \"x\", credentials = \"fb\" }}\n\
             target = {{ vendor = \"mailchimp\", credentials = \"mc\", list_id = \"l\" }}\n\
             options = {{ {options} }}\n"
        )
    };
    let ok = with(
        "on_email_change = \"keep\", on_client_delete = \"archive\", tags = false, sync_drafts = true",
    );
    let set = ConnectionSet::from_toml(&ok, "c.toml").unwrap();
    assert_eq!(set.connections["m"].options.len(), 4);

    assert!(
        err(&with("on_email_change = \"delete\""))
            .contains("connection `m`: options.on_email_change: must be \"archive\" or \"keep\"")
    );
    assert!(
        err(&with("on_client_delete = true"))
            .contains("options.on_client_delete: must be \"archive\" or \"keep\"")
    );
    assert!(err(&with("tags = \"yes\"")).contains("options.tags: must be true or false"));
    assert!(err(&with("sync_drafts = 1")).contains("options.sync_drafts: must be true or false"));

    // A QuickBooks source has customers, not clients, and no drafts.
    let qbo = r#"
[connection.q]
source = { vendor = "quickbooks", account = "1", credentials = "q" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l" }
options = { on_client_delete = "keep" }
"#;
    let e = err(qbo);
    assert!(
        e.contains("options.on_client_delete: `on_client_delete` is not an option of the quickbooks → mailchimp flow"),
        "{e}"
    );
    assert!(
        e.contains("on_email_change") && e.contains("on_customer_deactivate"),
        "{e}"
    );
    // No accounting data goes to Mailchimp from QuickBooks, so no status tags either.
    assert!(!e.contains("sync_drafts") && !e.contains("tags"), "{e}");

    // The Mailchimp → QuickBooks direction has one option of its own.
    let back = r#"
[connection.b]
source = { vendor = "mailchimp", account = "l", credentials = "mc" }
target = { vendor = "quickbooks", credentials = "q", realm_id = "1" }
options = { register_webhook = "yes" }
"#;
    assert!(
        err(back).contains("options.register_webhook: must be true or false"),
        "{}",
        err(back)
    );
}
