//! QuickBooks Online webhook deliveries: the `intuit-signature` check and both payload formats
//! (legacy `eventNotifications` and the CloudEvents array), docs/vendors/quickbooks.md §1.
//!
//! Verify over the raw body bytes first ([`verify`]), then [`parse`]. A parse error means a
//! signed body we cannot read: dead-letter it and still answer 200 (QuickBooks retries whole
//! batches and holds back later events otherwise).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::event::{SourceEvent, SourceRef, derived_event_id};
use crate::vendor::Vendor;
use crate::vendors::is_plain_id;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "intuit-signature";

/// Whether `header_value` is base64(HMAC-SHA256(verifier token, raw body)), compared in
/// constant time. The key is the app's webhook verifier token, not the OAuth client secret.
/// An empty token never verifies anything.
pub fn verify(verifier_token: &SecretString, body: &[u8], header_value: &str) -> bool {
    use base64::Engine as _;
    let key = verifier_token.expose_secret().as_bytes();
    let header = header_value.trim().as_bytes();
    // base64 of 32 bytes is exactly 44 characters; checking first keeps `decode_slice` in bounds.
    if key.is_empty() || header.len() != 44 {
        return false;
    }
    let mut expected = [0u8; 33];
    let Ok(len) = base64::engine::general_purpose::STANDARD.decode_slice(header, &mut expected)
    else {
        return false;
    };
    // HMAC takes keys of any length, so this never fails; refusing is the safe answer anyway.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected[..len]).is_ok()
}

/// Intuit's signature of `body` under `verifier_token`, as [`verify`] checks it: the value of
/// [`SIGNATURE_HEADER`]. For the sandbox and tests, which play Intuit's part.
pub fn sign(verifier_token: &SecretString, body: &[u8]) -> String {
    use base64::Engine as _;
    // HMAC takes keys of any length; an empty key signs too (and then never verifies).
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(verifier_token.expose_secret().as_bytes())
    else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Why a (signed) body is not a QuickBooks notification we can read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON whose fields have the wrong types or are missing.
    #[error("QuickBooks webhook body does not parse: {0}")]
    Json(#[from] serde_json::Error),
    /// Neither an object with `eventNotifications` nor an array of CloudEvents.
    #[error(
        "QuickBooks webhook body is neither a legacy `eventNotifications` object nor a CloudEvents array"
    )]
    UnknownShape,
    /// One event in the batch is unusable (the whole batch is refused, so it is dead-lettered
    /// in one piece and can be replayed as delivered).
    #[error("QuickBooks event {index}: {problem}")]
    InvalidEvent {
        /// The event's position in the delivery, from 0.
        index: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// The events in a delivery, in order, across every realm it mentions.
pub fn parse(body: &[u8]) -> Result<Vec<SourceEvent>, ParseError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => {
            let events: Vec<CloudEvent<'_>> = serde_json::from_slice(body)?;
            events
                .iter()
                .enumerate()
                .map(|(index, e)| {
                    e.to_source_event()
                        .map_err(|problem| ParseError::InvalidEvent { index, problem })
                })
                .collect()
        }
        Some(b'{') => {
            let legacy: Legacy<'_> = serde_json::from_slice(body)?;
            let notifications = legacy.event_notifications.ok_or(ParseError::UnknownShape)?;
            let mut out = Vec::new();
            for n in &notifications {
                let entities = n
                    .data_change_event
                    .as_ref()
                    .map_or(&[][..], |d| &d.entities[..]);
                for e in entities {
                    let index = out.len();
                    out.push(
                        e.to_source_event(&n.realm_id)
                            .map_err(|problem| ParseError::InvalidEvent { index, problem })?,
                    );
                }
            }
            Ok(out)
        }
        _ => {
            // Give garbage a precise JSON error where there is one.
            serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
            Err(ParseError::UnknownShape)
        }
    }
}

/// Parses QuickBooks timestamps leniently: RFC 3339 (`Z`, `-07:00`, up to nanoseconds), offsets
/// without a colon (`2015-10-05T14:42:19-0700`), and epoch numbers (milliseconds; values below
/// 10^11 are taken as seconds). `None` for anything else, including zone-less times.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        return if n < 100_000_000_000 {
            DateTime::from_timestamp(n, 0)
        } else {
            DateTime::from_timestamp_millis(n)
        };
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A string, or a number read as its decimal text (ids and times arrive as either). Borrows
/// from the body when the JSON string has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[derive(Deserialize)]
struct Legacy<'a> {
    #[serde(rename = "eventNotifications", borrow, default)]
    event_notifications: Option<Vec<Notification<'a>>>,
}

#[derive(Deserialize)]
struct Notification<'a> {
    #[serde(rename = "realmId", borrow)]
    realm_id: Text<'a>,
    #[serde(rename = "dataChangeEvent", borrow, default)]
    data_change_event: Option<DataChangeEvent<'a>>,
}

#[derive(Deserialize)]
struct DataChangeEvent<'a> {
    #[serde(borrow, default)]
    entities: Vec<Entity<'a>>,
}

#[derive(Deserialize)]
struct Entity<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    operation: Text<'a>,
    #[serde(rename = "lastUpdated", borrow, default)]
    last_updated: Option<Text<'a>>,
    #[serde(rename = "deletedId", alias = "deletedid", borrow, default)]
    deleted_id: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct CloudEvent<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow, default)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    intuitentityid: Text<'a>,
    #[serde(borrow)]
    intuitaccountid: Text<'a>,
    #[serde(borrow, default)]
    data: Option<CloudEventData<'a>>,
}

#[derive(Deserialize)]
struct CloudEventData<'a> {
    #[serde(alias = "deletedId", borrow, default)]
    deletedid: Option<Text<'a>>,
}

impl Entity<'_> {
    fn to_source_event(&self, realm: &str) -> Result<SourceEvent, &'static str> {
        let entity = self.name.to_ascii_lowercase();
        let operation = self.operation.to_ascii_lowercase();
        // Legacy deliveries carry no event id; the vendor time makes the derived one unique per
        // change, so without it two updates of one record would collapse into one.
        let last_updated = self
            .last_updated
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or("no lastUpdated")?;
        let source = source(realm)?;
        check_ids(&entity, &self.id, &operation)?;
        Ok(SourceEvent {
            event_id: derived_event_id(&source, &entity, &self.id, &operation, last_updated),
            occurred_at: parse_time(last_updated),
            detail: deleted_id_detail(self.deleted_id.as_deref())?,
            entity_id: self.id.to_string(),
            source,
            entity,
            operation,
        })
    }
}

impl CloudEvent<'_> {
    fn to_source_event(&self) -> Result<SourceEvent, &'static str> {
        let (entity, verb) =
            split_type(&self.kind).ok_or("`type` is not <prefix>.<entity>.<verb>[.v<n>]")?;
        let entity = entity.to_ascii_lowercase();
        let operation = operation_of(verb);
        let source = source(&self.intuitaccountid)?;
        check_ids(&entity, &self.intuitentityid, &operation)?;
        if !is_event_id(&self.id) {
            return Err("`id` is empty or not printable ASCII");
        }
        let deleted_id = self.data.as_ref().and_then(|d| d.deletedid.as_deref());
        Ok(SourceEvent {
            event_id: self.id.to_string(),
            occurred_at: self.time.as_deref().and_then(parse_time),
            detail: deleted_id_detail(deleted_id)?,
            entity_id: self.intuitentityid.to_string(),
            source,
            entity,
            operation,
        })
    }
}

fn source(realm: &str) -> Result<SourceRef, &'static str> {
    if !is_plain_id(realm) {
        return Err("realm id is missing or not a plain id");
    }
    Ok(SourceRef {
        vendor: Vendor::Quickbooks,
        account: realm.into(),
    })
}

fn check_ids(entity: &str, id: &str, operation: &str) -> Result<(), &'static str> {
    if !is_plain_id(entity) {
        return Err("entity name is missing or not a plain name");
    }
    if !is_plain_id(id) {
        return Err("entity id is missing or not a plain id");
    }
    if !is_plain_id(operation) {
        return Err("operation is missing or not a plain name");
    }
    Ok(())
}

/// Event ids end up in idempotency keys and audit sort keys, where `#` is the separator.
fn is_event_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
}

fn deleted_id_detail(
    deleted_id: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>, &'static str> {
    let mut detail = serde_json::Map::new();
    if let Some(id) = deleted_id.filter(|id| !id.is_empty()) {
        if !is_plain_id(id) {
            return Err("deleted id is not a plain id");
        }
        detail.insert("deleted_id".to_string(), id.into());
    }
    Ok(detail)
}

/// `qbo.customer.updated.v1` → (`customer`, `updated`); the version suffix is optional.
fn split_type(kind: &str) -> Option<(&str, &str)> {
    let kind = match kind.rsplit_once('.') {
        Some((rest, version))
            if version.len() > 1
                && version.starts_with(['v', 'V'])
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => kind,
    };
    let mut parts = kind.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(prefix), Some(entity), Some(verb), None)
            if !prefix.is_empty() && !entity.is_empty() && !verb.is_empty() =>
        {
            Some((entity, verb))
        }
        _ => None,
    }
}

/// CloudEvents verbs in the legacy operation vocabulary; unknown verbs pass through lower-cased.
fn operation_of(verb: &str) -> String {
    let verb = verb.to_ascii_lowercase();
    match verb.as_str() {
        "created" => "create".to_string(),
        "updated" => "update".to_string(),
        "deleted" => "delete".to_string(),
        "merged" => "merge".to_string(),
        "voided" => "void".to_string(),
        // `emailed` is also the legacy spelling.
        _ => verb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "c0ffee00-1234-4abc-9def-0123456789ab";
    const BODY_A: &str = r#"{"eventNotifications":[{"realmId":"9130357766900000","dataChangeEvent":{"entities":[{"name":"Customer","id":"58","operation":"Update","lastUpdated":"2026-03-02T17:04:11.000Z"}]}}]}"#;
    const HEADER_A: &str = "Bq6czDfnA1GdW2i2YzEbPpdhysEwGpCcIxEdsrkYLs4=";
    const HEADER_A_NEWLINE: &str = "L1rIS2YzrDbcvpZnMtjEp+huFFuwUZZjwcPzSS5eqSQ=";
    const BODY_B: &str = r#"[{"specversion":"1.0","id":"6f1c2a9e-0b7d-4c1e-9a55-2f0d6b1e8c42","source":"intuit.abc123","type":"qbo.customer.updated.v1","datacontenttype":"application/json","time":"2026-03-02T17:04:11Z","intuitentityid":"58","intuitaccountid":"9130357766900000","data":{}}]"#;
    const HEADER_B: &str = "syiIgrzhB048RoB8ppY9vPJ7Tb/NjZkA0U98zJiLcyg=";
    const REALM: &str = "9130357766900000";

    fn token() -> SecretString {
        SecretString::from(TOKEN)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn realm(account: &str) -> SourceRef {
        SourceRef {
            vendor: Vendor::Quickbooks,
            account: account.into(),
        }
    }

    #[test]
    fn vector_a_legacy() {
        assert_eq!(BODY_A.len(), 180);
        assert!(verify(&token(), BODY_A.as_bytes(), HEADER_A));
        use base64::Engine as _;
        let mac = base64::engine::general_purpose::STANDARD
            .decode(sign(&token(), BODY_A.as_bytes()))
            .unwrap();
        assert_eq!(
            hex::encode(mac),
            "06ae9ccc37e703519d5b68b663311b3e9761cac1301a909c23111db2b9182ece"
        );
        let events = parse(BODY_A.as_bytes()).unwrap();
        assert_eq!(
            events,
            [SourceEvent {
                event_id: derived_event_id(
                    &realm(REALM),
                    "customer",
                    "58",
                    "update",
                    "2026-03-02T17:04:11.000Z"
                ),
                source: realm(REALM),
                entity: "customer".into(),
                entity_id: "58".into(),
                operation: "update".into(),
                occurred_at: Some(at("2026-03-02T17:04:11Z")),
                detail: Default::default(),
            }]
        );
    }

    #[test]
    fn vector_a_with_a_trailing_newline_is_rejected() {
        let with_newline = format!("{BODY_A}\n");
        assert!(!verify(&token(), with_newline.as_bytes(), HEADER_A));
        // The control is the right signature of the wrong bytes.
        assert!(verify(&token(), with_newline.as_bytes(), HEADER_A_NEWLINE));
        assert!(!verify(&token(), BODY_A.as_bytes(), HEADER_A_NEWLINE));
    }

    #[test]
    fn vector_b_cloudevents() {
        assert_eq!(BODY_B.len(), 261);
        assert!(verify(&token(), BODY_B.as_bytes(), HEADER_B));
        assert!(!verify(&token(), BODY_B.as_bytes(), HEADER_A));
        let events = parse(BODY_B.as_bytes()).unwrap();
        assert_eq!(
            events,
            [SourceEvent {
                event_id: "6f1c2a9e-0b7d-4c1e-9a55-2f0d6b1e8c42".into(),
                source: realm(REALM),
                entity: "customer".into(),
                entity_id: "58".into(),
                operation: "update".into(),
                occurred_at: Some(at("2026-03-02T17:04:11Z")),
                detail: Default::default(),
            }]
        );
    }

    #[test]
    fn wrong_tokens_tampering_and_bad_headers_fail() {
        let body = BODY_B.as_bytes();
        assert!(!verify(
            &SecretString::from("c0ffee00-1234-4abc-9def-0123456789ac"),
            body,
            HEADER_B
        ));
        assert!(!verify(&SecretString::from(""), body, HEADER_B));
        assert!(!verify(
            &token(),
            BODY_B.replace("\"58\"", "\"59\"").as_bytes(),
            HEADER_B
        ));
        for header in [
            "",
            "syiIgrzhB048RoB8ppY9vPJ7Tb/NjZkA0U98zJiLcyg",
            "syiIgrzhB048RoB8ppY9vPJ7Tb_NjZkA0U98zJiLcyg=",
            "b3288882bce1074e3c46807ca6963dbcf27b4dbfcd8d9900d14f7ccc988b7328",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
        ] {
            assert!(!verify(&token(), body, header), "{header:?}");
        }
        assert!(verify(&token(), body, &format!(" {HEADER_B} ")));
    }

    #[test]
    fn legacy_batches_span_realms_and_events_with_merges() {
        let body = br#"{"eventNotifications":[
            {"realmId":"111","dataChangeEvent":{"entities":[
                {"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"},
                {"name":"Customer","id":"5","operation":"Merge","lastUpdated":"2015-10-05T14:42:20-0700","deletedId":"27"}]}},
            {"realmId":222,"dataChangeEvent":{"entities":[
                {"name":"Invoice","id":9,"operation":"Void","lastUpdated":1443999739000},
                {"name":"Invoice","id":"10","operation":"Emailed","lastUpdated":"2015-10-05T21:42:19Z"}]}},
            {"realmId":"333"}]}"#;
        let events = parse(body).unwrap();
        let summary: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.source.account.as_str(),
                    e.entity.as_str(),
                    e.entity_id.as_str(),
                    e.operation.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("111", "customer", "1", "create"),
                ("111", "customer", "5", "merge"),
                ("222", "invoice", "9", "void"),
                ("222", "invoice", "10", "emailed"),
            ]
        );
        assert_eq!(events[0].occurred_at, Some(at("2015-10-05T21:42:19Z")));
        assert_eq!(events[1].detail.get("deleted_id"), Some(&"27".into()));
        assert!(events[0].detail.is_empty());
        assert_eq!(events[2].occurred_at, Some(at("2015-10-04T23:02:19Z")));
        assert_eq!(
            events[2].event_id,
            derived_event_id(&realm("222"), "invoice", "9", "void", "1443999739000")
        );
        let ids: std::collections::HashSet<_> =
            events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn cloudevents_batches_tolerate_missing_optional_fields() {
        let body = br#"[
            {"specversion":"1.0","id":"e1","source":"intuit.x","type":"qbo.customer.merged.v1","time":"2025-09-10T21:31:25.179851517Z","intuitentityid":"5","intuitaccountid":"111","data":{"deletedid":"27"}},
            {"specversion":"1.0","id":"e2","source":"intuit.x","type":"qbo.invoice.created.v1","intuitentityid":"130","intuitaccountid":"222"},
            {"specversion":"1.0","id":"e3","type":"qbo.vendor.merged.v1","time":"2025-09-10T21:31:25Z","intuitentityid":"8","intuitaccountid":"111","data":{"deletedId":"9"}},
            {"specversion":"1.0","id":"e4","type":"qbo.invoice.voided.v1","time":"bogus","intuitentityid":"131","intuitaccountid":"222","data":null},
            {"specversion":"1.0","id":"e5","type":"qbo.invoice.Archived.v2","intuitentityid":"132","intuitaccountid":"222","data":{"alternative_ids":[{"k":"v"}],"entity":{"big":[1,2,3]}}},
            {"specversion":"1.0","id":"e6","type":"qbo.bill.deleted","intuitentityid":"1","intuitaccountid":"222"},
            {"specversion":"1.0","id":"e7","type":"qbo.invoice.emailed.v1","intuitentityid":"2","intuitaccountid":"222"}
        ]"#;
        let events = parse(body).unwrap();
        let summary: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.event_id.as_str(),
                    e.source.account.as_str(),
                    e.entity.as_str(),
                    e.entity_id.as_str(),
                    e.operation.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("e1", "111", "customer", "5", "merge"),
                ("e2", "222", "invoice", "130", "create"),
                ("e3", "111", "vendor", "8", "merge"),
                ("e4", "222", "invoice", "131", "void"),
                ("e5", "222", "invoice", "132", "archived"),
                ("e6", "222", "bill", "1", "delete"),
                ("e7", "222", "invoice", "2", "emailed"),
            ]
        );
        assert_eq!(events[0].detail.get("deleted_id"), Some(&"27".into()));
        assert_eq!(events[2].detail.get("deleted_id"), Some(&"9".into()));
        assert_eq!(
            events[0].occurred_at.unwrap().timestamp_subsec_nanos(),
            179_851_517
        );
        assert_eq!(events[1].occurred_at, None);
        assert_eq!(events[3].occurred_at, None);
        assert!(events[4].detail.is_empty());
        assert!(parse(b" [ ] ").unwrap().is_empty());
        assert!(parse(br#"{"eventNotifications":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn garbage_and_wrong_shapes_are_typed_errors() {
        for body in [
            &b""[..],
            b"   ",
            b"not json",
            b"{",
            b"[{]",
            b"\"str\"",
            b"42",
            b"null",
        ] {
            let err = parse(body).unwrap_err();
            assert!(
                matches!(err, ParseError::Json(_) | ParseError::UnknownShape),
                "{body:?}: {err:?}"
            );
        }
        assert!(matches!(
            parse(br#"{"other":1}"#),
            Err(ParseError::UnknownShape)
        ));
        assert!(matches!(parse(b"[1]"), Err(ParseError::Json(_))));
        assert!(matches!(
            parse(br#"{"eventNotifications":{}}"#),
            Err(ParseError::Json(_))
        ));
        // A required field missing.
        assert!(matches!(
            parse(br#"[{"id":"e","type":"qbo.customer.updated.v1","intuitaccountid":"1"}]"#),
            Err(ParseError::Json(_))
        ));
        let bad_events: [(&[u8], usize); 7] = [
            (br#"[{"id":"e","type":"customer.updated","intuitentityid":"1","intuitaccountid":"1"}]"#, 0),
            (br#"[{"id":"e","type":"qbo.customer.updated.v1","intuitentityid":"1","intuitaccountid":"1"},{"id":"e","type":"qbo..updated.v1","intuitentityid":"1","intuitaccountid":"1"}]"#, 1),
            (br#"[{"id":"","type":"qbo.customer.updated.v1","intuitentityid":"1","intuitaccountid":"1"}]"#, 0),
            (br#"[{"id":"a#b","type":"qbo.customer.updated.v1","intuitentityid":"1","intuitaccountid":"1"}]"#, 0),
            (br#"[{"id":"e","type":"qbo.customer.updated.v1","intuitentityid":"1:2","intuitaccountid":"1"}]"#, 0),
            (br#"{"eventNotifications":[{"realmId":"","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Update","lastUpdated":"x"}]}}]}"#, 0),
            (br#"{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Update"}]}}]}"#, 0),
        ];
        for (body, expected) in bad_events {
            match parse(body) {
                Err(ParseError::InvalidEvent { index, .. }) => assert_eq!(index, expected),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn times_parse_leniently() {
        let t = at("2015-10-05T21:42:19Z");
        for s in [
            "2015-10-05T14:42:19-0700",
            "2015-10-05T14:42:19-07:00",
            "2015-10-05T21:42:19Z",
            "2015-10-05T21:42:19.000Z",
            " 2015-10-05T21:42:19+0000 ",
            "1444081339000",
            "1444081339",
        ] {
            assert_eq!(parse_time(s), Some(t), "{s}");
        }
        for s in [
            "",
            "2015-10-05T14:42:19",
            "yesterday",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_time(s), None, "{s}");
        }
    }

    #[test]
    fn types_split_with_or_without_version() {
        assert_eq!(
            split_type("qbo.customer.updated.v1"),
            Some(("customer", "updated"))
        );
        assert_eq!(
            split_type("qbo.customer.updated"),
            Some(("customer", "updated"))
        );
        assert_eq!(split_type("qbo.customer.v1"), None);
        assert_eq!(split_type("qbo.a.b.c.v1"), None);
        assert_eq!(split_type("qbo.customer.updated.v"), None);
        assert_eq!(split_type(""), None);
    }
}
