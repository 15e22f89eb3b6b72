//! `ml-connector audit`: the trail of one record (newest first, with what changed and why it
//! failed), or every entry with an outcome, day by day.

use anyhow::Context;
use chrono::{DateTime, Days, NaiveDate, Utc};
use mlc::connections::ConnectionSet;
use mlc::ports::{AuditEntry, Outcome};
use mlc::vendor::Vendor;
use serde::Serialize;
use serde_json::Value;

use super::output::{self, short};
use super::{Attention, Common, UsageError};

pub(crate) const AFTER_HELP: &str = "\
RECORD is `vendor:account:entity:id` (e.g. `freshbooks:6BApk:client:123`) or, when the applied
connections read only one account of that vendor, `vendor:entity:id` (`freshbooks:client:123`).
Each entry shows what the target held before and what was written (only the fields that
changed), the error of a failed attempt and the vendor's request id.

Without RECORD, --outcome lists every entry with that outcome on each day from --since
(default: 7 days ago) to today; `failed` means retrying, dead_lettered and rejected.

Examples:
  ml-connector audit freshbooks:client:123
  ml-connector audit freshbooks:client:123 --since 2026-11-01 --outcome synced
  ml-connector audit --outcome failed --since 2026-11-20 --json

Exit codes: 0 entries found; 1 no entries (or the command failed); 2 usage error.";

/// Outcomes `--outcome failed` stands for.
const FAILED: [Outcome; 3] = [Outcome::Retrying, Outcome::DeadLettered, Outcome::Rejected];

#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    /// The record: `vendor:account:entity:id`, or `vendor:entity:id` when unambiguous.
    record: Option<String>,
    /// Only entries on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<NaiveDate>,
    /// Only entries with this outcome: synced, unchanged, duplicate, retrying, dead_lettered,
    /// rejected, skipped, or `failed` (retrying + dead_lettered + rejected).
    #[arg(long)]
    outcome: Option<String>,
    /// At most this many entries (per outcome and day without RECORD).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    common: Common,
}

/// One audit entry with the fields that changed.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    entry: &'a AuditEntry,
    changes: Vec<Change>,
}

/// One field that differs between what the target held and what was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Change {
    pub path: String,
    pub before: Option<Value>,
    pub written: Option<Value>,
}

pub(crate) async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let outcomes = match args.outcome.as_deref() {
        None => None,
        Some("failed") => Some(FAILED.to_vec()),
        Some(o) => Some(vec![o.parse::<Outcome>().map_err(|e| {
            UsageError(format!(
                "--outcome: {e}; use one of {} or failed",
                Outcome::ALL.map(|o| o.as_str()).join(", ")
            ))
        })?]),
    };
    if args.record.is_none() && outcomes.is_none() {
        return Err(UsageError(
            "give a RECORD (e.g. freshbooks:client:123) or --outcome (e.g. --outcome failed)"
                .to_string(),
        )
        .into());
    }
    let target = args.common.target.open().await?;
    let now = target.clock.now();
    let since = args
        .since
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());

    let (title, entries) = match &args.record {
        Some(record) => {
            let key = match target.store.get_connections().await? {
                Some(set) => resolve_record(record, &set)?,
                None => resolve_record(record, &ConnectionSet::default())?,
            };
            let mut entries = target
                .store
                .audit_by_record(&key, args.limit)
                .await
                .with_context(|| format!("reading the trail of {key}"))?;
            entries.retain(|e| {
                since.is_none_or(|s| e.at >= s)
                    && outcomes.as_ref().is_none_or(|o| o.contains(&e.outcome))
            });
            (key, entries)
        }
        None => {
            let outcomes = outcomes.unwrap_or_default();
            let from = args.since.unwrap_or_else(|| {
                now.date_naive()
                    .checked_sub_days(Days::new(7))
                    .unwrap_or(now.date_naive())
            });
            let mut entries = Vec::new();
            let mut day = now.date_naive();
            while day >= from {
                for outcome in &outcomes {
                    entries.extend(
                        target
                            .store
                            .audit_by_outcome(*outcome, day, args.limit)
                            .await
                            .with_context(|| format!("reading {outcome} entries of {day}"))?,
                    );
                }
                let Some(previous) = day.pred_opt() else {
                    break;
                };
                day = previous;
            }
            entries.sort_by_key(|e| std::cmp::Reverse(e.at));
            (
                format!(
                    "{} from {from} to {}",
                    args.outcome.as_deref().unwrap_or_default(),
                    now.date_naive()
                ),
                entries,
            )
        }
    };

    let shown: Vec<Shown> = entries
        .iter()
        .map(|e| Shown {
            entry: e,
            changes: diff(e.before.as_ref(), e.written.as_ref()),
        })
        .collect();
    if args.common.json {
        output::print_json(&shown)?;
    } else {
        print_table(&title, &shown, now, args.record.is_none());
    }
    if shown.is_empty() {
        return Err(Attention(format!("no audit entries for {title}")).into());
    }
    Ok(())
}

/// The full record key for `record`: as given when it has an account, else with the only
/// account of the vendor that the applied connections read.
pub(crate) fn resolve_record(record: &str, connections: &ConnectionSet) -> anyhow::Result<String> {
    let parts: Vec<&str> = record.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() < 3 {
        return Err(UsageError(format!(
            "`{record}` is not a record key: use vendor:account:entity:id or vendor:entity:id"
        ))
        .into());
    }
    if parts.len() != 3 {
        return Ok(record.to_string());
    }
    let vendor: Vendor = parts[0]
        .parse()
        .map_err(|_| UsageError(format!("`{}` is not a vendor", parts[0])))?;
    let mut accounts: Vec<&str> = connections
        .connections
        .values()
        .filter(|c| c.source.vendor == vendor)
        .filter_map(|c| c.source.account.as_deref())
        .collect();
    accounts.sort();
    accounts.dedup();
    match accounts.as_slice() {
        [account] => Ok(format!("{}:{account}:{}:{}", parts[0], parts[1], parts[2])),
        [] => Err(UsageError(format!(
            "no applied connection reads a {vendor} account: give the account, e.g. {}:<account>:{}:{}",
            parts[0], parts[1], parts[2]
        ))
        .into()),
        many => Err(UsageError(format!(
            "the connections read several {vendor} accounts ({}): give one, e.g. {}:{}:{}:{}",
            many.join(", "),
            parts[0],
            many[0],
            parts[1],
            parts[2]
        ))
        .into()),
    }
}

/// The leaves that differ between `before` and `written`, by dotted path. Fields only in
/// `before` are not listed: the writes are partial, so absence means "not written", not
/// "removed".
pub(crate) fn diff(before: Option<&Value>, written: Option<&Value>) -> Vec<Change> {
    let mut changes = Vec::new();
    if let Some(written) = written {
        walk("", before, written, &mut changes);
    }
    changes
}

fn walk(path: &str, before: Option<&Value>, written: &Value, out: &mut Vec<Change>) {
    match written {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, value) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(&child, before.and_then(|b| b.get(key)), value, out);
            }
        }
        _ if before == Some(written) => {}
        _ => out.push(Change {
            path: if path.is_empty() {
                "(value)".into()
            } else {
                path.to_string()
            },
            before: before.cloned(),
            written: Some(written.clone()),
        }),
    }
}

fn print_table(title: &str, shown: &[Shown], now: DateTime<Utc>, with_record: bool) {
    println!("audit: {title} ({} entries, newest first)", shown.len());
    let mut headers = vec!["at"];
    if with_record {
        headers.push("record");
    }
    headers.extend([
        "connection",
        "origin/op",
        "outcome",
        "before → written",
        "error",
    ]);
    let mut t = output::table(&headers);
    for s in shown {
        let e = s.entry;
        let changes = s
            .changes
            .iter()
            .take(12)
            .map(|c| {
                let show = |v: &Option<Value>| {
                    v.as_ref()
                        .map(|v| short(&v.to_string(), 40))
                        .unwrap_or_else(|| "∅".to_string())
                };
                format!("{}: {} → {}", c.path, show(&c.before), show(&c.written))
            })
            .chain((s.changes.len() > 12).then(|| format!("… {} more", s.changes.len() - 12)))
            .collect::<Vec<_>>()
            .join("\n");
        let error = match (&e.error_class, &e.error_message) {
            (Some(c), Some(m)) => format!("{c}: {}", short(m, 120)),
            (Some(c), None) => c.clone(),
            (None, Some(m)) => short(m, 120),
            (None, None) => String::new(),
        };
        let error = match &e.vendor_request_id {
            Some(id) if !error.is_empty() => format!("{error}\n(request {id})"),
            _ => error,
        };
        let mut row = vec![output::when(now, Some(e.at))];
        if with_record {
            row.push(e.record_key.clone());
        }
        row.extend([
            e.connection.clone(),
            format!(
                "{}/{}",
                e.origin.map(|o| o.as_str()).unwrap_or("-"),
                e.operation
            ),
            format!("{} (attempt {})", e.outcome, e.attempt),
            changes,
            error,
        ]);
        t.add_row(row);
    }
    println!("{t}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(accounts: &[&str]) -> ConnectionSet {
        let mut text = String::new();
        for (i, a) in accounts.iter().enumerate() {
            text.push_str(&format!(
                "[connection.c{i}]\nsource = {{ vendor = \"freshbooks\", account = \"{a}\", credentials = \"fb{i}\" }}\n\
                 target = {{ vendor = \"mailchimp\", credentials = \"mc\", list_id = \"l1\" }}\n"
            ));
        }
        ConnectionSet::from_toml(&text, "t.toml").unwrap()
    }

    #[test]
    fn short_keys_resolve_to_the_only_account() {
        let one = set(&["acme"]);
        assert_eq!(
            resolve_record("freshbooks:client:123", &one).unwrap(),
            "freshbooks:acme:client:123"
        );
        assert_eq!(
            resolve_record("freshbooks:x:client:9", &one).unwrap(),
            "freshbooks:x:client:9"
        );
        let two = set(&["acme", "beta"]);
        let err = resolve_record("freshbooks:client:123", &two).unwrap_err();
        assert!(
            err.is::<UsageError>() && err.to_string().contains("acme, beta"),
            "{err}"
        );
        assert!(
            resolve_record("client:1", &one)
                .unwrap_err()
                .is::<UsageError>()
        );
        assert!(
            resolve_record("nope:client:1", &one)
                .unwrap_err()
                .is::<UsageError>()
        );
    }

    #[test]
    fn diff_lists_changed_leaves_only() {
        let before = json!({"email": "a@x", "merge_fields": {"FNAME": "Ann", "BAL": "1"}});
        let written =
            json!({"email": "a@x", "merge_fields": {"FNAME": "Anne", "BAL": "1", "NEW": 2}});
        let changes = diff(Some(&before), Some(&written));
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["merge_fields.FNAME", "merge_fields.NEW"]);
        assert_eq!(changes[0].before, Some(json!("Ann")));
        assert_eq!(changes[1].before, None);
        assert!(diff(Some(&before), None).is_empty());
        assert_eq!(diff(None, Some(&json!(5)))[0].path, "(value)");
    }
}
