//! Pure text for the Mailchimp → QuickBooks flow: what a list event means
//! ([`MemberChange`]), the activity note recorded on the customer ([`activity_note`]) and the
//! e-mail status line kept current in the customer's `Notes` ([`StatusLine`], [`plan_notes`]).
//!
//! Everything vendor-supplied that goes into a text (emails, reasons) passes through [`clean`]:
//! control characters (line breaks above all, which would split the one-line status) become
//! spaces and each value is cut, so a hostile webhook cannot grow or reshape the customer's
//! notes.

use std::ops::Range;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::vendors::quickbooks::models::MAX_NOTE_CHARS;

/// Every status line begins with this; it is how the line is found again. Changing it would
/// leave the old lines behind in every customer's notes, so it is fixed.
pub(crate) const STATUS_MARKER: &str = "Mailchimp email status:";

/// Separates the status from its time in a status line; the time is read back from after the
/// last occurrence to order events ([`StatusLine::time_of`]).
const AS_OF: &str = ", as of ";

/// The time format of the status line (UTC, to the second: `fired_at`'s precision).
const LINE_TIME: &str = "%Y-%m-%d %H:%M:%S UTC";

/// The time format of activity notes (to the minute: for people).
const NOTE_TIME: &str = "%Y-%m-%d %H:%M UTC";

/// The most characters one vendor-supplied value (an email, a reason) keeps in a text.
/// Mailchimp's addresses fit (QuickBooks allows 100 for `PrimaryEmailAddr`, UNCONFIRMED).
const MAX_VALUE_CHARS: usize = 120;

/// A Mailchimp member event, as the flow records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemberChange {
    Subscribed,
    /// `action` `delete` means the member was also deleted from the audience.
    Unsubscribed {
        reason: Option<String>,
        deleted: bool,
    },
    ProfileUpdated,
    EmailChanged {
        from: Option<String>,
        to: String,
    },
    /// Mailchimp stopped sending to the address (`hard` bounce or `abuse`).
    Cleaned {
        reason: Option<String>,
    },
}

/// The member operations the flow records.
pub(crate) const OPERATIONS: [&str; 5] =
    ["subscribe", "unsubscribe", "profile", "upemail", "cleaned"];

impl MemberChange {
    /// The change a member event of `operation` with `detail` (`{email, old_email, new_email,
    /// reason, action}`) describes; `None` for operations not in [`OPERATIONS`], or an
    /// `upemail` without its new address.
    pub(crate) fn from_event(operation: &str, detail: &Map<String, Value>) -> Option<MemberChange> {
        let field = |k: &str| {
            detail
                .get(k)
                .and_then(Value::as_str)
                .map(|v| clean(v, MAX_VALUE_CHARS))
                .filter(|v| !v.is_empty())
        };
        Some(match operation {
            "subscribe" => MemberChange::Subscribed,
            "unsubscribe" => MemberChange::Unsubscribed {
                reason: field("reason"),
                deleted: field("action").is_some_and(|a| a.eq_ignore_ascii_case("delete")),
            },
            "profile" => MemberChange::ProfileUpdated,
            "upemail" => MemberChange::EmailChanged {
                from: field("old_email"),
                to: field("new_email").or_else(|| field("email"))?,
            },
            "cleaned" => MemberChange::Cleaned {
                reason: field("reason"),
            },
            _ => return None,
        })
    }

    /// What happened, for the activity note: `unsubscribed (reason: manual)`.
    fn describe(&self) -> String {
        match self {
            MemberChange::Subscribed => "subscribed".into(),
            MemberChange::Unsubscribed { reason, deleted } => {
                let what = if *deleted {
                    "unsubscribed and deleted from the audience"
                } else {
                    "unsubscribed"
                };
                with_reason(what, reason.as_deref().map(unsubscribe_reason))
            }
            MemberChange::ProfileUpdated => "profile updated".into(),
            MemberChange::EmailChanged {
                from: Some(from),
                to,
            } => {
                format!("email changed from {from} to {to}")
            }
            MemberChange::EmailChanged { from: None, to } => format!("email changed to {to}"),
            MemberChange::Cleaned { reason } => {
                with_reason("address cleaned", reason.as_deref().map(cleaned_reason))
            }
        }
    }

    /// The e-mail status this change leaves, with its detail: `("unsubscribed",
    /// Some("reason: manual"))`. `None` for a profile update, which says nothing about whether
    /// mail reaches the person, so it leaves the status line as it is.
    fn status(&self) -> Option<(&'static str, Option<String>)> {
        match self {
            MemberChange::Subscribed => Some(("subscribed", None)),
            MemberChange::Unsubscribed { reason, deleted } => Some((
                if *deleted {
                    "unsubscribed and deleted"
                } else {
                    "unsubscribed"
                },
                reason
                    .as_deref()
                    .map(|r| format!("reason: {}", unsubscribe_reason(r))),
            )),
            MemberChange::ProfileUpdated => None,
            MemberChange::EmailChanged { to, .. } => {
                Some(("email changed", Some(format!("now {to}"))))
            }
            MemberChange::Cleaned { reason } => Some((
                "cleaned",
                reason.as_deref().map(|r| cleaned_reason(r).to_string()),
            )),
        }
    }
}

fn with_reason(what: &str, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("{what} (reason: {r})"),
        None => what.to_string(),
    }
}

/// Mailchimp's unsubscribe reasons in words (`abuse` is a spam complaint, docs/vendors/mailchimp.md §4).
fn unsubscribe_reason(reason: &str) -> &str {
    match reason {
        "abuse" => "spam complaint",
        other => other,
    }
}

/// Mailchimp's cleaned reasons in words (`hard` bounce or `abuse`, docs/vendors/mailchimp.md §4).
fn cleaned_reason(reason: &str) -> &str {
    match reason {
        "hard" => "hard bounce",
        "abuse" => "spam complaint",
        other => other,
    }
}

/// The activity note: `Mailchimp: unsubscribed (reason: manual) at 2026-03-02 17:04 UTC`, cut
/// to [`MAX_NOTE_CHARS`] characters.
pub(crate) fn activity_note(change: &MemberChange, at: DateTime<Utc>) -> String {
    let text = format!(
        "Mailchimp: {} at {}",
        change.describe(),
        at.format(NOTE_TIME)
    );
    cut(&text, MAX_NOTE_CHARS)
}

/// The one status line a customer's `Notes` holds:
/// `Mailchimp email status: unsubscribed (reason: manual), as of 2026-03-02 17:04:05 UTC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusLine {
    pub(crate) status: &'static str,
    pub(crate) detail: Option<String>,
    pub(crate) at: DateTime<Utc>,
}

impl StatusLine {
    /// The line `change` at `at` leaves; `None` when it does not change the status.
    pub(crate) fn for_change(change: &MemberChange, at: DateTime<Utc>) -> Option<StatusLine> {
        let (status, detail) = change.status()?;
        Some(StatusLine { status, detail, at })
    }

    /// The whole line, with the detail.
    pub(crate) fn full(&self) -> String {
        match &self.detail {
            Some(d) => self.render(&format!("{} ({d})", self.status)),
            None => self.short(),
        }
    }

    /// The line without the detail: what goes in when the full one does not fit.
    pub(crate) fn short(&self) -> String {
        self.render(self.status)
    }

    fn render(&self, what: &str) -> String {
        format!("{STATUS_MARKER} {what}{AS_OF}{}", self.at.format(LINE_TIME))
    }

    /// The time a status line (ours, possibly shortened) says it is as of; `None` when it was
    /// edited beyond recognition.
    pub(crate) fn time_of(line: &str) -> Option<DateTime<Utc>> {
        let (_, time) = line.trim_end().rsplit_once(AS_OF)?;
        NaiveDateTime::parse_from_str(time, LINE_TIME)
            .ok()
            .map(|t| t.and_utc())
    }
}

/// What to do with a customer's `Notes` for one status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotesPlan {
    /// The notes already hold this line (full or short): no write.
    Current,
    /// The notes hold a line as of a later time than the event: an older event (a late
    /// delivery, a replay) must not overwrite what a newer one wrote. No write.
    Newer { existing: String },
    /// Write these notes (`shortened`: the line went in without its detail to fit).
    Write {
        notes: String,
        line: String,
        shortened: bool,
    },
    /// Even the short line would take the notes over [`MAX_NOTE_CHARS`]; the user's text is
    /// never cut, so the notes stay as they are.
    TooLong { needed: usize },
}

/// The first status line in `notes` (without its line break), if any.
pub(crate) fn find_status_line(notes: &str) -> Option<&str> {
    status_line_range(notes).map(|r| &notes[r])
}

/// Where the first status line is in `notes`, as a byte range without its line break.
fn status_line_range(notes: &str) -> Option<Range<usize>> {
    let mut start = 0;
    for raw in notes.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim_start().starts_with(STATUS_MARKER) {
            return Some(start..start + line.len());
        }
        start += raw.len() + 1;
    }
    None
}

/// How `notes` take `line`: the first existing status line is replaced in place (keeping the
/// rest byte for byte, other marker lines included: they may be the user's copies), or the
/// line is appended on a line of its own.
///
/// Ordering: the existing line's time (read back with [`StatusLine::time_of`]) against the
/// event's. A strictly later existing line wins; an equal time is rewritten (two events of one
/// second cannot be ordered, so the last handled wins); a line whose time cannot be read (the
/// user edited it) is treated as older.
pub(crate) fn plan_notes(notes: Option<&str>, line: &StatusLine) -> NotesPlan {
    let notes = notes.unwrap_or_default();
    let (full, short) = (line.full(), line.short());
    let range = status_line_range(notes);
    if let Some(existing) = range.clone().map(|r| &notes[r]) {
        let trimmed = existing.trim();
        if trimmed == full || trimmed == short {
            return NotesPlan::Current;
        }
        if StatusLine::time_of(existing).is_some_and(|t| t > line.at) {
            return NotesPlan::Newer {
                existing: existing.to_string(),
            };
        }
    }
    let compose = |text: &str| match &range {
        Some(r) => format!("{}{text}{}", &notes[..r.start], &notes[r.end..]),
        None if notes.is_empty() => text.to_string(),
        None if notes.ends_with('\n') => format!("{notes}{text}"),
        None => format!("{notes}\n{text}"),
    };
    let with_full = compose(&full);
    if with_full.chars().count() <= MAX_NOTE_CHARS {
        return NotesPlan::Write {
            notes: with_full,
            line: full,
            shortened: false,
        };
    }
    let with_short = compose(&short);
    let needed = with_short.chars().count();
    if needed <= MAX_NOTE_CHARS {
        return NotesPlan::Write {
            notes: with_short,
            line: short,
            shortened: true,
        };
    }
    NotesPlan::TooLong { needed }
}

/// `value` with control characters turned into spaces, trimmed, cut to `max` characters.
pub(crate) fn clean(value: &str, max: usize) -> String {
    let spaced: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(spaced.trim(), max)
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
