//! `ml-connector dead-letters [list|show ID]`: what will not succeed, and why.

use anyhow::Context;
use mlc::ports::{DeadLetter, DeadLetterStatus};
use serde::Serialize;

use super::output::{self, short};
use super::{Attention, Common, UsageError};
use crate::target::Target;

pub(crate) const AFTER_HELP: &str = "\
A dead letter is a message (or webhook delivery) that will not succeed without a change: a
permanent vendor error, a credential set to fix, a record the target refuses. Each keeps its
stage (`worker:<queue>` or `webhook:<vendor>`), the error class and reason, the vendor's request
id and the payload. Fix the cause, then `ml-connector replay` (all of a queue) or
`ml-connector replay --id ID` (one).

Examples:
  ml-connector dead-letters                       open dead letters, newest first
  ml-connector dead-letters list --status resolved --connection acme
  ml-connector dead-letters show 'event:acme:freshbooks-3f2a…'

Exit codes: 0 ok (list: none open); 1 open dead letters listed, or the command failed;
2 usage error (show: no such id).";

#[derive(clap::Args)]
pub(crate) struct DeadLettersArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List dead letters, newest first (the default).
    List {
        /// open or resolved.
        #[arg(long, default_value = "open", value_parser = ["open", "resolved"])]
        status: String,
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        /// Only this queue's.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one dead letter in full, with its payload.
    Show {
        /// The dead letter's id (from `list`).
        id: String,
    },
}

pub(crate) async fn run(args: DeadLettersArgs) -> anyhow::Result<()> {
    let target = args.common.target.open().await?;
    match args.action.unwrap_or(Action::List {
        status: "open".into(),
        connection: None,
        queue: None,
        limit: 100,
    }) {
        Action::List {
            status,
            connection,
            queue,
            limit,
        } => {
            let status = if status == "resolved" {
                DeadLetterStatus::Resolved
            } else {
                DeadLetterStatus::Open
            };
            list(&target, status, connection, queue, limit, args.common.json).await
        }
        Action::Show { id } => show(&target, &id, args.common.json).await,
    }
}

async fn list(
    target: &Target,
    status: DeadLetterStatus,
    connection: Option<String>,
    queue: Option<String>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    // Filters apply after the read, so read enough to fill `limit` after them.
    let read = if connection.is_some() || queue.is_some() {
        limit.saturating_mul(20).max(1000)
    } else {
        limit
    };
    let mut letters = target
        .store
        .list_dead_letters(status, read)
        .await
        .context("listing dead letters")?;
    letters.retain(|l| {
        connection
            .as_ref()
            .is_none_or(|c| l.connection.as_ref() == Some(c))
            && queue.as_ref().is_none_or(|q| l.queue.as_ref() == Some(q))
    });
    letters.truncate(limit);
    if json {
        output::print_json(&letters)?;
    } else {
        let now = target.clock.now();
        println!(
            "{} {} dead letter(s) in the {}, newest first",
            letters.len(),
            status.as_str(),
            target.place
        );
        let mut t = output::table(&[
            "id",
            "created",
            "stage",
            "connection",
            "record",
            "error",
            "attempts",
        ]);
        for l in &letters {
            t.add_row(vec![
                l.id.clone(),
                output::when(now, Some(l.created_at)),
                l.stage.clone(),
                l.connection.clone().unwrap_or_default(),
                l.record_key.clone().unwrap_or_default(),
                format!("{}: {}", l.error_class, short(&l.reason, 100)),
                l.attempts.to_string(),
            ]);
        }
        if !letters.is_empty() {
            println!("{t}");
        }
    }
    if status == DeadLetterStatus::Open && !letters.is_empty() {
        return Err(Attention(format!("{} open dead letter(s)", letters.len())).into());
    }
    Ok(())
}

/// A dead letter with its payload read back (from the blob store when it was large).
#[derive(Debug, Serialize)]
struct Full {
    #[serde(flatten)]
    letter: DeadLetter,
    /// The payload as JSON when it parses, else as text.
    payload_body: serde_json::Value,
}

/// The dead letter `id`; a [`UsageError`] pointing at `dead-letters list` when there is none.
pub(crate) async fn get(target: &Target, id: &str) -> anyhow::Result<DeadLetter> {
    Ok(target
        .store
        .get_dead_letter(id)
        .await
        .context("reading the dead letter")?
        .ok_or_else(|| {
            UsageError(format!(
                "no dead letter `{id}`: `ml-connector dead-letters list` shows the ids"
            ))
        })?)
}

async fn show(target: &Target, id: &str, json: bool) -> anyhow::Result<()> {
    let letter = get(target, id).await?;
    let body = payload(target, &letter).await?;
    let payload_body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    if json {
        return output::print_json(&Full {
            letter,
            payload_body,
        });
    }
    let now = target.clock.now();
    let mut t = output::table(&["field", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", letter.id.clone()),
        ("status", letter.status.as_str().to_string()),
        ("created", output::when(now, Some(letter.created_at))),
        ("resolved", output::when(now, letter.resolved_at)),
        ("stage", letter.stage.clone()),
        ("queue", letter.queue.clone().unwrap_or_else(|| "-".into())),
        (
            "connection",
            letter.connection.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "record",
            letter.record_key.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "event",
            letter.event_id.clone().unwrap_or_else(|| "-".into()),
        ),
        ("error class", letter.error_class.clone()),
        ("reason", letter.reason.clone()),
        (
            "vendor request",
            letter
                .vendor_request_id
                .clone()
                .unwrap_or_else(|| "-".into()),
        ),
        ("attempts", letter.attempts.to_string()),
        ("expires", output::when(now, letter.expires_at)),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    println!("{t}");
    println!("payload:");
    println!(
        "{}",
        serde_json::to_string_pretty(&payload_body).unwrap_or_default()
    );
    if let Some(record) = &letter.record_key {
        println!("\nTrail of the record: ml-connector audit {record}");
    }
    Ok(())
}

/// The dead letter's payload, from the blob store when it was kept there (`blob:<key>`).
pub(crate) async fn payload(target: &Target, letter: &DeadLetter) -> anyhow::Result<String> {
    match letter.payload.strip_prefix("blob:") {
        Some(key) => {
            let bytes = target
                .store
                .get_blob(key)
                .await
                .with_context(|| format!("reading the payload blob `{key}`"))?
                .ok_or_else(|| {
                    anyhow::anyhow!("the payload blob `{key}` has expired or is gone")
                })?;
            String::from_utf8(bytes).context("the payload blob is not UTF-8")
        }
        None => Ok(letter.payload.clone()),
    }
}
