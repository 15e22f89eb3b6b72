//! HubSpot's rate limits (docs/vendors/hubspot.md §4.1, §3.3), on the sandbox clock so tests
//! move time instead of sleeping: a rolling 10-second burst window per app and portal (100 or
//! 190 by tier), the portal's daily quota (reset at midnight in its time zone), and the search
//! API's own per-token limit (4 per second). Refused requests do not count against a window.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::auth::Caller;
use super::errors::Policy;
use super::state::{Portal, TokenKind};
use super::{Inner, lock};

/// The burst window.
pub(crate) const BURST_WINDOW_MS: i64 = 10_000;

/// Request times per burst key `(portal, app)` and per search token.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    burst: HashMap<(u64, u64), VecDeque<DateTime<Utc>>>,
    search: HashMap<String, VecDeque<DateTime<Utc>>>,
}

/// Response headers of an admitted (or refused) request.
pub(crate) type Headers = Vec<(&'static str, String)>;

/// The portal's next midnight (its zone) after `now`.
pub(crate) fn next_midnight(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.with_timezone(&tz).date_naive() + chrono::Duration::days(1);
    let midnight = tomorrow.and_time(NaiveTime::MIN);
    // A zone that skips midnight (DST) starts its day an hour later.
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or(now + chrono::Duration::days(1), |t| t.with_timezone(&Utc))
}

/// Starts a new day for the portal when its local date moved; the requests counted today.
pub(crate) fn roll_day(portal: &mut Portal, now: DateTime<Utc>) -> u64 {
    let today = now.with_timezone(&portal.tz).date_naive();
    if portal.day != Some(today) {
        portal.day = Some(today);
        portal.used_today = 0;
    }
    portal.used_today
}

fn prune(window: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, span_ms: i64) {
    while window
        .front()
        .is_some_and(|t| (now - *t).num_milliseconds() >= span_ms)
    {
        window.pop_front();
    }
}

/// Counts an authenticated request against its limits: the headers to answer with, or the
/// policy that refuses it (with the headers of the refusal).
pub(crate) fn admit(
    inner: &Inner,
    caller: &Caller,
    search: bool,
) -> Result<Headers, (Policy, Headers)> {
    let now = inner.now();
    let mut state = inner.state();
    let Ok(portal) = state.portal_mut(caller.portal_id) else {
        return Ok(Vec::new());
    };
    let used = roll_day(portal, now);
    let daily = portal.info.daily_limit;
    let burst_max = portal.info.tier.burst_limit();
    let mut windows = lock(&inner.limits);
    let daily_headers = |used: u64| -> Headers {
        if caller.kind == TokenKind::OAuth {
            return Vec::new();
        }
        vec![
            ("X-HubSpot-RateLimit-Daily", daily.to_string()),
            (
                "X-HubSpot-RateLimit-Daily-Remaining",
                daily.saturating_sub(used).to_string(),
            ),
        ]
    };
    if search {
        // Search answers carry no rate-limit headers (§3.3).
        let window = windows.search.entry(caller.token.clone()).or_default();
        prune(window, now, 1000);
        if used >= daily {
            return Err((Policy::Daily, Vec::new()));
        }
        if window.len() >= inner.options.search_per_second as usize {
            return Err((Policy::Secondly, Vec::new()));
        }
        window.push_back(now);
        portal.used_today += 1;
        return Ok(Vec::new());
    }
    let window = windows
        .burst
        .entry((caller.portal_id, caller.app_id))
        .or_default();
    prune(window, now, BURST_WINDOW_MS);
    let burst_headers = |n: usize| -> Headers {
        vec![
            ("X-HubSpot-RateLimit-Max", burst_max.to_string()),
            (
                "X-HubSpot-RateLimit-Remaining",
                (burst_max as usize).saturating_sub(n).to_string(),
            ),
            (
                "X-HubSpot-RateLimit-Interval-Milliseconds",
                BURST_WINDOW_MS.to_string(),
            ),
        ]
    };
    if used >= daily {
        let mut h = burst_headers(window.len());
        h.extend(daily_headers(used));
        return Err((Policy::Daily, h));
    }
    if window.len() >= burst_max as usize {
        let mut h = burst_headers(window.len());
        h.extend(daily_headers(used));
        return Err((Policy::TenSecondlyRolling, h));
    }
    window.push_back(now);
    portal.used_today += 1;
    let in_window = window.len();
    let mut h = burst_headers(in_window);
    h.extend(daily_headers(portal.used_today));
    drop(windows);
    drop(state);
    let mut stats = lock(&inner.stats);
    stats.max_in_window = stats.max_in_window.max(in_window as u64);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_is_in_the_portal_zone() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let now = "2026-12-07T22:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            next_midnight(tz, now),
            "2026-12-08T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let late = "2026-12-08T04:59:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            next_midnight(tz, late),
            "2026-12-08T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
