//! Stripe webhook deliveries: the `Stripe-Signature` check and the event envelope (docs/vendors/stripe.md §1,
//! §5.1).
//!
//! `verify` over the raw body first, then `parse`. Events carry the whole object, but
//! workers fetch current state anyway; only ids and the event type travel on.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::event::{SourceEvent, SourceRef};
use crate::vendor::Vendor;
use crate::vendors::is_plain_id;

/// The header carrying the timestamp and signatures.
pub(crate) const SIGNATURE_HEADER: &str = "stripe-signature";

/// How far the signed timestamp may be from now, in either direction (Stripe's default).
const TOLERANCE_SECS: i64 = 300;

/// Which check a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    #[error("Stripe-Signature has no `t=` timestamp")]
    NoTimestamp,
    #[error("Stripe-Signature timestamp is not an integer")]
    InvalidTimestamp,
    #[error("Stripe-Signature has no `v1=` signature")]
    NoV1,
    /// Every candidate secret was empty (a configuration problem, not the sender's).
    #[error("no Stripe signing secret is configured")]
    NoSecret,
    #[error("no v1 signature matches the payload under any configured secret")]
    NoMatch,
    /// Correctly signed, but `skew_secs` = now − t is beyond [`TOLERANCE_SECS`] (positive: signed
    /// in the past, i.e. a replay or a late retry; negative: our clock is behind).
    #[error(
        "Stripe-Signature timestamp is {skew_secs} s from now, outside the ±{TOLERANCE_SECS} s tolerance"
    )]
    OutsideTolerance { skew_secs: i64 },
}

/// Checks `header_value` against the raw body with each candidate secret (several during a
/// rotation on our side, e.g. one `whsec_…` per line of the stored secret). A secret is the whole
/// `whsec_…` string, used as key bytes. Passes if any `v1` matches under any secret and `t` is
/// within ±[`TOLERANCE_SECS`] of `now`; returns the index of the secret that matched. `v0` and
/// unknown keys are ignored; secrets are trimmed and empty ones skipped.
pub(crate) fn verify<'s>(
    secrets: impl IntoIterator<Item = &'s str>,
    body: &[u8],
    header_value: &str,
    now: DateTime<Utc>,
) -> Result<usize, SignatureError> {
    let items = || {
        header_value
            .split(',')
            .filter_map(|item| item.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
    };
    let t = items()
        .find(|(k, _)| *k == "t")
        .ok_or(SignatureError::NoTimestamp)?
        .1
        .parse::<i64>()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    if !items().any(|(k, _)| k == "v1") {
        return Err(SignatureError::NoV1);
    }

    // Stripe signs `<t>.<body>` with `t` as a plain decimal integer.
    let mut t_buf = [0u8; 20];
    let t_text = format_i64(t, &mut t_buf);
    let mut any_secret = false;
    let mut matched = None;
    for (index, secret) in secrets.into_iter().enumerate() {
        // Surrounding whitespace is never part of a `whsec_` secret (it comes from storage).
        let secret = secret.trim();
        if secret.is_empty() {
            continue;
        }
        any_secret = true;
        // HMAC takes keys of any length, so this never fails.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(t_text);
        mac.update(b".");
        mac.update(body);
        let mut expected = [0u8; 64];
        // 32 bytes always fit 64 hex digits.
        if hex::encode_to_slice(mac.finalize().into_bytes(), &mut expected).is_err() {
            continue;
        }
        // Lower-case hex compared as text, like Stripe's libraries: an upper-cased copy fails.
        if items().any(|(k, v)| k == "v1" && bool::from(expected.ct_eq(v.as_bytes()))) {
            matched = Some(index);
            break;
        }
    }
    if !any_secret {
        return Err(SignatureError::NoSecret);
    }
    let index = matched.ok_or(SignatureError::NoMatch)?;
    let skew_secs = now.timestamp().saturating_sub(t);
    if skew_secs.unsigned_abs() > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance { skew_secs });
    }
    Ok(index)
}

/// `n` in decimal, written into `buf` (20 bytes hold any i64).
fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Why a (verified) body is not a Stripe event we can use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("Stripe webhook body does not parse as an event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Stripe event is unusable: {0}")]
    InvalidEvent(&'static str),
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    created: i64,
    #[serde(default)]
    livemode: bool,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    object: Object<'a>,
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    object: Cow<'a, str>,
}

/// The event as a [`SourceEvent`] of `account` (the route's account label): `event_id` = `id`,
/// entity = `data.object.object`, entity id = `data.object.id`, operation = `type`
/// (`invoice.paid`), occurred at `created`, detail `{type, livemode}`.
pub(crate) fn parse(body: &[u8], account: &str) -> Result<SourceEvent, ParseError> {
    let event: Event<'_> = serde_json::from_slice(body)?;
    if event.object.as_deref().is_some_and(|o| o != "event") {
        return Err(ParseError::InvalidEvent("`object` is not \"event\""));
    }
    if !is_plain_id(account) {
        return Err(ParseError::InvalidEvent(
            "the route's account is not a plain id",
        ));
    }
    for (value, problem) in [
        (&event.id, "`id` is not a plain id"),
        (&event.kind, "`type` is not a plain name"),
        (&event.data.object.id, "`data.object.id` is not a plain id"),
        (
            &event.data.object.object,
            "`data.object.object` is not a plain name",
        ),
    ] {
        if !is_plain_id(value) {
            return Err(ParseError::InvalidEvent(problem));
        }
    }
    let operation = event.kind.to_ascii_lowercase();
    let mut detail = serde_json::Map::new();
    detail.insert("type".to_string(), operation.clone().into());
    detail.insert("livemode".to_string(), event.livemode.into());
    Ok(SourceEvent {
        event_id: event.id.into_owned(),
        source: SourceRef {
            vendor: Vendor::Stripe,
            account: account.into(),
        },
        entity: event.data.object.object.to_ascii_lowercase(),
        entity_id: event.data.object.id.into_owned(),
        operation,
        occurred_at: DateTime::from_timestamp(event.created, 0),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_1: &str = "whsec_test_secret";
    const PAYLOAD_1: &str = r#"{"id":"evt_test_1","object":"event","api_version":"2026-10-28.endive","created":1700000000,"data":{"object":{"id":"in_test_1","object":"invoice","amount_paid":1999,"currency":"usd","customer":"cus_test_1","metadata":{"fb_invoice_id":"217506"},"status":"paid"}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid"}"#;
    const HEADER_1: &str =
        "t=1700000000,v1=ec07df07ba279a66bd7b62d4c1d20a9933b055bd559ba8acf6ac9853b365fd89";
    const PAYLOAD_2: &str = r#"{"id":"evt_test_2","object":"event","created":1735689600,"data":{"object":{"id":"ch_test_2","object":"charge","amount":5000,"amount_refunded":5000,"currency":"jpy","refunded":true}},"livemode":false,"type":"charge.refunded"}"#;
    const HEADER_2: &str = "t=1735689600,v1=e18de52608ab011bb476c1e651220187682829b8b3d1b7579bea6fded0f6eb48,v1=1f7834421119a1efd2359adbf9490b1cd7ddbefac6d3fa118494f30d15fbc884,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
    const NEW_2: &str = "whsec_new_secret_B";
    const OLD_2: &str = "whsec_old_secret_A";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn vector_1_with_an_injected_clock() {
        assert_eq!(PAYLOAD_1.len(), 366);
        let body = PAYLOAD_1.as_bytes();
        for now in [1_700_000_000, 1_700_000_300, 1_699_999_700] {
            assert_eq!(verify([SECRET_1], body, HEADER_1, at(now)), Ok(0), "{now}");
        }
    }

    #[test]
    fn vector_1_is_outside_the_tolerance_now_and_either_side() {
        let body = PAYLOAD_1.as_bytes();
        assert_eq!(
            verify([SECRET_1], body, HEADER_1, at(1_700_000_301)),
            Err(SignatureError::OutsideTolerance { skew_secs: 301 })
        );
        assert_eq!(
            verify([SECRET_1], body, HEADER_1, at(1_699_999_699)),
            Err(SignatureError::OutsideTolerance { skew_secs: -301 })
        );
        assert!(matches!(
            verify([SECRET_1], body, HEADER_1, Utc::now()),
            Err(SignatureError::OutsideTolerance { skew_secs }) if skew_secs > 300
        ));
    }

    #[test]
    fn vector_1_parses() {
        let event = parse(PAYLOAD_1.as_bytes(), "acct-main").unwrap();
        assert_eq!(
            event,
            SourceEvent {
                event_id: "evt_test_1".into(),
                source: SourceRef {
                    vendor: Vendor::Stripe,
                    account: "acct-main".into()
                },
                entity: "invoice".into(),
                entity_id: "in_test_1".into(),
                operation: "invoice.paid".into(),
                occurred_at: Some(at(1_700_000_000)),
                detail: serde_json::json!({"type": "invoice.paid", "livemode": false})
                    .as_object()
                    .unwrap()
                    .clone(),
            }
        );
    }

    #[test]
    fn vector_2_rotation() {
        let body = PAYLOAD_2.as_bytes();
        let now = at(1_735_689_600);
        assert_eq!(PAYLOAD_2.len(), 224);
        assert_eq!(verify([NEW_2], body, HEADER_2, now), Ok(0));
        assert_eq!(verify([OLD_2], body, HEADER_2, now), Ok(0));
        assert_eq!(verify(["whsec_wrong", OLD_2], body, HEADER_2, now), Ok(1));
        assert_eq!(verify(["", NEW_2, OLD_2], body, HEADER_2, now), Ok(1));
        assert_eq!(
            verify([" whsec_new_secret_B\r"], body, HEADER_2, now),
            Ok(0)
        );
        assert_eq!(
            verify(["whsec_wrong"], body, HEADER_2, now),
            Err(SignatureError::NoMatch)
        );
        // The secret is the whole `whsec_` string, not what follows the prefix.
        assert_eq!(
            verify(["new_secret_B"], body, HEADER_2, now),
            Err(SignatureError::NoMatch)
        );
        let tampered = PAYLOAD_2.replace("\"amount\":5000", "\"amount\":5001");
        assert_ne!(tampered, PAYLOAD_2);
        assert_eq!(
            verify([NEW_2, OLD_2], tampered.as_bytes(), HEADER_2, now),
            Err(SignatureError::NoMatch)
        );
        // Only the v0 entry left: nothing to check.
        let v0_only =
            "t=1735689600,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
        assert_eq!(
            verify([NEW_2], body, v0_only, now),
            Err(SignatureError::NoV1)
        );

        let event = parse(body, "acct-main").unwrap();
        assert_eq!(
            (
                event.entity.as_str(),
                event.entity_id.as_str(),
                event.operation.as_str()
            ),
            ("charge", "ch_test_2", "charge.refunded")
        );
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let body = PAYLOAD_1.as_bytes();
        let now = at(1_700_000_000);
        let sig = "ec07df07ba279a66bd7b62d4c1d20a9933b055bd559ba8acf6ac9853b365fd89";
        let cases = [
            ("", Err(SignatureError::NoTimestamp)),
            ("garbage", Err(SignatureError::NoTimestamp)),
            (
                &format!("v1={sig}") as &str,
                Err(SignatureError::NoTimestamp),
            ),
            (
                &format!("t=abc,v1={sig}"),
                Err(SignatureError::InvalidTimestamp),
            ),
            ("t=1700000000", Err(SignatureError::NoV1)),
            ("t=1700000000,v1", Err(SignatureError::NoV1)),
            (
                &format!("t=1700000000,v1={}", sig.to_uppercase()),
                Err(SignatureError::NoMatch),
            ),
            (
                &format!("t=1700000000,v1={}", &sig[..63]),
                Err(SignatureError::NoMatch),
            ),
            (
                &format!("t=1700000001,v1={sig}"),
                Err(SignatureError::NoMatch),
            ),
            ("t=1700000000,v1=", Err(SignatureError::NoMatch)),
            (&format!(" t=1700000000 , foo=bar,v1={sig} "), Ok(0)),
            (&format!("t=1700000000,v1=00,v1={sig}"), Ok(0)),
        ];
        for (header, expected) in cases {
            assert_eq!(
                verify([SECRET_1], body, header, now),
                expected,
                "{header:?}"
            );
        }
        assert_eq!(
            verify([] as [&str; 0], body, HEADER_1, now),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            verify([""], body, HEADER_1, now),
            Err(SignatureError::NoSecret)
        );
        // Extreme timestamps neither overflow nor pass.
        let extreme = format!("t={},v1={sig}", i64::MIN);
        assert_eq!(
            verify([SECRET_1], body, &extreme, now),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn formats_timestamps_like_stripe() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 1_700_000_000, -42, i64::MAX, i64::MIN] {
            assert_eq!(format_i64(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn bad_events_are_typed_errors() {
        assert!(matches!(parse(b"", "a"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[]", "a"), Err(ParseError::Json(_))));
        assert!(matches!(
            parse(br#"{"id":"evt_1","type":"invoice.paid","created":1}"#, "a"),
            Err(ParseError::Json(_))
        ));
        let event = |id: &str, object: &str, obj_id: &str| {
            format!(
                r#"{{"id":"{id}","object":"{object}","type":"invoice.paid","created":1,"data":{{"object":{{"id":"{obj_id}","object":"invoice"}}}}}}"#
            )
        };
        assert!(parse(event("evt_1", "event", "in_1").as_bytes(), "a").is_ok());
        for (body, account) in [
            (event("evt_1", "list", "in_1"), "a"),
            (event("evt:1", "event", "in_1"), "a"),
            (event("evt_1", "event", ""), "a"),
            (event("evt_1", "event", "in_1"), "a:b"),
        ] {
            assert!(
                matches!(
                    parse(body.as_bytes(), account),
                    Err(ParseError::InvalidEvent(_))
                ),
                "{body} {account}"
            );
        }
    }
}
