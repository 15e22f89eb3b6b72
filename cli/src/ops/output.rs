//! Output shared by the operations commands: tables for people, JSON for scripts, progress bars
//! on standard error (hidden with `--json` and when standard error is not a terminal).

use std::time::Duration;

use chrono::{DateTime, Utc};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// A table with `headers`, fitted to the terminal width.
pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.to_vec());
    t
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A UTC time as people read it, to the second.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `at` relative to `now`: `5m ago`, `in 3h`.
pub(crate) fn relative(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let span = |s: i64| match s {
        s if s < 90 => format!("{s}s"),
        s if s < 90 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    };
    if secs >= 0 {
        format!("{} ago", span(secs))
    } else {
        format!("in {}", span(-secs))
    }
}

/// `at` as time and relative time, or `-`.
pub(crate) fn when(now: DateTime<Utc>, at: Option<DateTime<Utc>>) -> String {
    at.map(|at| format!("{} ({})", time(at), relative(now, at)))
        .unwrap_or_else(|| "-".to_string())
}

/// The first `max` characters of `text` on one line, with `…` when cut.
pub(crate) fn short(text: &str, max: usize) -> String {
    let line = text.replace(['\n', '\r'], " ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A bar for `len` steps with `what` as its message; hidden when `hidden` (JSON output).
pub(crate) fn bar(len: u64, what: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:20} [{bar:30}] {pos}/{len} ({elapsed})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// A spinner with `what` as its message; hidden when `hidden`.
pub(crate) fn spinner(what: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(relative(now, now - chrono::Duration::seconds(5)), "5s ago");
        assert_eq!(relative(now, now - chrono::Duration::minutes(7)), "7m ago");
        assert_eq!(relative(now, now + chrono::Duration::hours(3)), "in 3h");
        assert_eq!(relative(now, now - chrono::Duration::days(3)), "3d ago");
    }

    #[test]
    fn short_cuts_on_characters() {
        assert_eq!(short("héllo\nworld", 20), "héllo world");
        assert_eq!(short("ééééé", 3), "éé…");
    }
}
