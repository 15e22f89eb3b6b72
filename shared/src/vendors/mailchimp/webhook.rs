//! Mailchimp list webhooks (docs/vendors/mailchimp.md §4): the URL secret check and the PHP-style form body.
//!
//! Mailchimp signs nothing; the webhook URL carries a secret path segment (`secret_matches`).
//! Bodies are `application/x-www-form-urlencoded` with bracket keys (`data[merges][FNAME]`).
//! Validation GETs carry no body and are answered by the route, not here.

use chrono::{DateTime, NaiveDateTime, Utc};
use md5::{Digest as _, Md5};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::event::{SourceEvent, SourceRef, derived_event_id};
use crate::vendor::Vendor;
use crate::vendors::form::{Form, FormError, truncate};
use crate::vendors::is_plain_id;

/// Whether the secret in the request URL is the configured one. Both sides are hashed with
/// SHA-256 first so the comparison is constant-time without leaking the secret's length. An
/// empty configured secret matches nothing.
pub(crate) fn secret_matches(expected: &SecretString, given: &str) -> bool {
    let expected = expected.expose_secret();
    if expected.is_empty() {
        return false;
    }
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.ct_eq(&b).into()
}

/// Mailchimp's member id in the API: lower-case hex MD5 of the trimmed, lower-cased email.
pub fn subscriber_hash(email: &str) -> String {
    let mut md5 = Md5::new();
    let mut buf = [0u8; 4];
    for c in email.trim().chars().flat_map(char::to_lowercase) {
        md5.update(c.encode_utf8(&mut buf).as_bytes());
    }
    hex::encode(md5.finalize())
}

/// Why a body is not a Mailchimp webhook we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not a well-formed URL-encoded form.
    #[error(transparent)]
    Form(#[from] FormError),
    /// A key is not `name` or `name[a][b]…` (cut to 64 bytes).
    #[error("malformed bracket key `{key}`")]
    BadKey {
        /// The key, cut to 64 bytes.
        key: String,
    },
    /// A key is used both as a value and as a parent (`data=x` and `data[id]=y`).
    #[error("form key `{key}` is both a value and a group")]
    KeyConflict {
        /// The key, cut to 64 bytes.
        key: String,
    },
    /// A field every delivery of its type carries is missing (e.g. `data[list_id]`).
    #[error("Mailchimp webhook has no `{0}`")]
    MissingField(&'static str),
    /// A field used in keys and ids holds something other than a plain id.
    #[error("Mailchimp webhook field `{0}` is not a plain id")]
    InvalidField(&'static str),
    /// The delivery names another list than the route it came in on.
    #[error("Mailchimp webhook is for list `{found}`, but this route is for list `{expected}`")]
    ListMismatch {
        /// The route's list.
        expected: String,
        /// The list the delivery names.
        found: String,
    },
    /// A `type` this parser has no member or campaign for.
    #[error("unsupported Mailchimp webhook type `{0}`")]
    UnsupportedType(String),
}

/// The whole form as nested JSON: `data[merges][ADDRESS][addr1]=x` becomes
/// `{"data":{"merges":{"ADDRESS":{"addr1":"x"}}}}`. All leaves are strings; `[]` (list append) is
/// not something Mailchimp sends and is refused.
pub fn parse_form(body: &[u8]) -> Result<Value, ParseError> {
    let form = Form::parse(body)?;
    let mut root = Map::new();
    for (key, value) in form.iter() {
        let (base, rest) = split_key(key).ok_or_else(|| ParseError::BadKey {
            key: truncate(key, 64).to_string(),
        })?;
        let conflict = || ParseError::KeyConflict {
            key: truncate(key, 64).to_string(),
        };
        let mut node = &mut root;
        let mut segment = base;
        for next in rest {
            let child = node
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            node = child.as_object_mut().ok_or_else(conflict)?;
            segment = next;
        }
        if node.contains_key(segment) {
            return Err(conflict());
        }
        node.insert(segment.to_string(), Value::String(value.to_string()));
    }
    Ok(Value::Object(root))
}

/// `a[b][c]` → (`a`, [`b`, `c`]); `None` if malformed.
fn split_key(key: &str) -> Option<(&str, Vec<&str>)> {
    let (base, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if base.is_empty() || base.contains(']') {
        return None;
    }
    let mut segments = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let segment = &inner[..close];
        if segment.is_empty() || segment.contains('[') {
            return None;
        }
        segments.push(segment);
        rest = &inner[close + 1..];
    }
    Some((base, segments))
}

/// The delivery as a [`SourceEvent`] of `expected_list_id` (the route's list; a delivery naming
/// another list is refused).
///
/// Member types (`subscribe`, `unsubscribe`, `profile`, `cleaned`, `upemail`, and any other type
/// that carries `data[email]`): entity `member`, entity id = [`subscriber_hash`] of the email
/// (`upemail`: of `new_email`), detail `{email, old_email, new_email, reason, action}` where
/// present — `email` is the member's current address, also for `upemail`. `campaign`: entity
/// `campaign`, entity id `data[id]`, detail `{status, reason}`. The id is derived from list,
/// entity, id, type and `fired_at`, so Mailchimp's retries of one delivery share it.
pub fn parse(body: &[u8], expected_list_id: &str) -> Result<SourceEvent, ParseError> {
    let form = Form::parse(body)?;
    let field = |key: &str| form.get(key).map(str::trim).filter(|v| !v.is_empty());

    let list = field("data[list_id]").ok_or(ParseError::MissingField("data[list_id]"))?;
    if list != expected_list_id {
        return Err(ParseError::ListMismatch {
            expected: truncate(expected_list_id, 64).to_string(),
            found: truncate(list, 64).to_string(),
        });
    }
    if !is_plain_id(list) {
        return Err(ParseError::InvalidField("data[list_id]"));
    }
    let kind = field("type").ok_or(ParseError::MissingField("type"))?;
    if !is_plain_id(kind) {
        return Err(ParseError::InvalidField("type"));
    }
    let operation = kind.to_ascii_lowercase();
    let fired_at = field("fired_at").ok_or(ParseError::MissingField("fired_at"))?;

    let mut detail = Map::new();
    let mut hint = |name: &str, key: &str| {
        if let Some(v) = field(key) {
            detail.insert(name.to_string(), v.into());
        }
    };
    let (entity, entity_id) = match operation.as_str() {
        "campaign" => {
            let id = field("data[id]").ok_or(ParseError::MissingField("data[id]"))?;
            if !is_plain_id(id) {
                return Err(ParseError::InvalidField("data[id]"));
            }
            hint("status", "data[status]");
            hint("reason", "data[reason]");
            ("campaign", id.to_string())
        }
        "upemail" => {
            let new_email =
                field("data[new_email]").ok_or(ParseError::MissingField("data[new_email]"))?;
            hint("email", "data[new_email]");
            hint("new_email", "data[new_email]");
            hint("old_email", "data[old_email]");
            ("member", subscriber_hash(new_email))
        }
        _ => {
            let Some(email) = field("data[email]") else {
                return Err(match operation.as_str() {
                    "subscribe" | "unsubscribe" | "profile" | "cleaned" => {
                        ParseError::MissingField("data[email]")
                    }
                    _ => ParseError::UnsupportedType(operation),
                });
            };
            hint("email", "data[email]");
            hint("reason", "data[reason]");
            hint("action", "data[action]");
            ("member", subscriber_hash(email))
        }
    };

    let source = SourceRef {
        vendor: Vendor::Mailchimp,
        account: list.into(),
    };
    Ok(SourceEvent {
        event_id: derived_event_id(&source, entity, &entity_id, &operation, fired_at),
        // `fired_at` has no zone; Mailchimp's servers are taken to write UTC (UNCONFIRMED).
        occurred_at: NaiveDateTime::parse_from_str(fired_at, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc)),
        source,
        entity: entity.to_string(),
        entity_id,
        operation,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "a6b5da1054";

    fn event(body: &str) -> SourceEvent {
        parse(body.as_bytes(), LIST).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    fn detail(e: &SourceEvent) -> Value {
        Value::Object(e.detail.clone())
    }

    fn member_id(list: &str, hash: &str, op: &str, fired_at: &str) -> String {
        let source = SourceRef {
            vendor: Vendor::Mailchimp,
            account: list.into(),
        };
        derived_event_id(&source, "member", hash, op, fired_at)
    }

    #[test]
    fn subscriber_hash_vector() {
        assert_eq!(
            subscriber_hash("Jane.Doe@Example.COM"),
            "0cba00ca3da1b283a57287bcceb17e35"
        );
        assert_eq!(
            subscriber_hash("  jane.doe@example.com\n"),
            "0cba00ca3da1b283a57287bcceb17e35"
        );
        assert_ne!(
            subscriber_hash("jane.doe@example.co"),
            subscriber_hash("jane.doe@example.com")
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        let expected = SecretString::from("s3cr3t-path-token");
        assert!(secret_matches(&expected, "s3cr3t-path-token"));
        for given in [
            "",
            "s3cr3t-path-toke",
            "s3cr3t-path-token ",
            "S3CR3T-PATH-TOKEN",
        ] {
            assert!(!secret_matches(&expected, given), "{given:?}");
        }
        assert!(!secret_matches(&SecretString::from(""), ""));
    }

    #[test]
    fn subscribe() {
        let e = event(
            "type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054\
             &data%5Bemail%5D=Api%40Mailchimp.com&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com\
             &data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bmerges%5D%5BLNAME%5D=API\
             &data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2&data%5Bip_opt%5D=10.20.10.30&data%5Bip_signup%5D=10.20.10.30&data%5Bweb_id%5D=1",
        );
        let hash = subscriber_hash("api@mailchimp.com");
        assert_eq!(e.source.account, LIST);
        assert_eq!(
            (
                e.entity.as_str(),
                e.entity_id.as_str(),
                e.operation.as_str()
            ),
            ("member", hash.as_str(), "subscribe")
        );
        assert_eq!(
            e.event_id,
            member_id(LIST, &hash, "subscribe", "2009-03-26 21:35:57")
        );
        assert_eq!(
            e.occurred_at,
            Some(
                DateTime::parse_from_rfc3339("2009-03-26T21:35:57Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );
        // Only hints: no merge fields, no ids, no IPs.
        assert_eq!(
            detail(&e),
            serde_json::json!({"email": "Api@Mailchimp.com"})
        );
    }

    #[test]
    fn unsubscribe() {
        let e = event(
            "type=unsubscribe&fired_at=2009-03-26+21%3A40%3A57&data[action]=unsub&data[reason]=manual&data[id]=8a25ff1d98\
             &data[list_id]=a6b5da1054&data[email]=api%2Bunsub%40mailchimp.com&data[email_type]=html\
             &data[merges][EMAIL]=api%2Bunsub%40mailchimp.com&data[merges][FNAME]=Mailchimp&data[ip_opt]=10.20.10.30&data[campaign_id]=cb398d21d2",
        );
        assert_eq!(e.operation, "unsubscribe");
        assert_eq!(e.entity_id, subscriber_hash("api+unsub@mailchimp.com"));
        assert_eq!(
            detail(&e),
            serde_json::json!({"email": "api+unsub@mailchimp.com", "reason": "manual", "action": "unsub"})
        );
        let abuse = event(
            "type=unsubscribe&fired_at=2009-03-26+21%3A40%3A57&data[action]=delete&data[reason]=abuse&data[list_id]=a6b5da1054&data[email]=x%40y.z",
        );
        assert_eq!(detail(&abuse)["action"], "delete");
        assert_eq!(detail(&abuse)["reason"], "abuse");
    }

    #[test]
    fn profile() {
        let e = event(
            "type=profile&fired_at=2009-03-26+21%3A31%3A21&data[id]=8a25ff1d98&data[list_id]=a6b5da1054&data[email]=api%40mailchimp.com\
             &data[email_type]=html&data[merges][EMAIL]=api%40mailchimp.com&data[merges][FNAME]=Mailchimp&data[ip_opt]=10.20.10.30&data[web_id]=1",
        );
        assert_eq!(e.operation, "profile");
        assert_eq!(e.entity_id, subscriber_hash("api@mailchimp.com"));
        assert_eq!(
            detail(&e),
            serde_json::json!({"email": "api@mailchimp.com"})
        );
    }

    #[test]
    fn upemail_hashes_the_new_address() {
        let e = event(
            "type=upemail&fired_at=2009-03-26+22%3A15%3A09&data[list_id]=a6b5da1054&data[new_id]=51da8c3259\
             &data[new_email]=api%2Bnew%40mailchimp.com&data[old_email]=api%2Bold%40mailchimp.com",
        );
        assert_eq!(e.operation, "upemail");
        assert_eq!(e.entity_id, subscriber_hash("api+new@mailchimp.com"));
        assert_eq!(
            detail(&e),
            serde_json::json!({"email": "api+new@mailchimp.com", "new_email": "api+new@mailchimp.com", "old_email": "api+old@mailchimp.com"})
        );
        assert_eq!(
            parse(
                b"type=upemail&fired_at=x&data[list_id]=a6b5da1054&data[old_email]=a%40b.c",
                LIST
            ),
            Err(ParseError::MissingField("data[new_email]"))
        );
    }

    #[test]
    fn cleaned() {
        let e = event(
            "type=cleaned&fired_at=2009-03-26+22%3A01%3A00&data[list_id]=a6b5da1054&data[campaign_id]=4fjk2ma9xd\
             &data[reason]=hard&data[email]=api%2Bcleaned%40mailchimp.com",
        );
        assert_eq!(e.operation, "cleaned");
        assert_eq!(e.entity_id, subscriber_hash("api+cleaned@mailchimp.com"));
        assert_eq!(
            detail(&e),
            serde_json::json!({"email": "api+cleaned@mailchimp.com", "reason": "hard"})
        );
    }

    #[test]
    fn campaign() {
        let e = event(
            "type=campaign&fired_at=2009-03-26+21%3A31%3A21&data[id]=5aa2102003&data[subject]=Test+Campaign+Subject\
             &data[status]=sent&data[reason]=&data[list_id]=a6b5da1054",
        );
        assert_eq!(
            (
                e.entity.as_str(),
                e.entity_id.as_str(),
                e.operation.as_str()
            ),
            ("campaign", "5aa2102003", "campaign")
        );
        assert_eq!(detail(&e), serde_json::json!({"status": "sent"}));
        let source = SourceRef {
            vendor: Vendor::Mailchimp,
            account: LIST.into(),
        };
        assert_eq!(
            e.event_id,
            derived_event_id(
                &source,
                "campaign",
                "5aa2102003",
                "campaign",
                "2009-03-26 21:31:21"
            )
        );
    }

    #[test]
    fn other_types_with_an_email_are_members_the_rest_unsupported() {
        let e = event(
            "type=Future_Thing&fired_at=2026-01-01+00%3A00%3A00&data[list_id]=a6b5da1054&data[email]=a%40b.c",
        );
        assert_eq!(
            (e.entity.as_str(), e.operation.as_str()),
            ("member", "future_thing")
        );
        assert_eq!(
            parse(
                b"type=sms_subscribe&fired_at=x&data[list_id]=a6b5da1054&data[phone]=1",
                LIST
            ),
            Err(ParseError::UnsupportedType("sms_subscribe".into()))
        );
    }

    #[test]
    fn retries_share_an_id_and_later_changes_do_not() {
        let body = |fired: &str| {
            format!("type=profile&fired_at={fired}&data[list_id]=a6b5da1054&data[email]=a%40b.c")
        };
        let a = event(&body("2026-01-01+00%3A00%3A00"));
        assert_eq!(a.event_id, event(&body("2026-01-01+00%3A00%3A00")).event_id);
        assert_ne!(a.event_id, event(&body("2026-01-01+00%3A00%3A01")).event_id);
        // An unparseable time still identifies the delivery; it just has no occurred_at.
        assert_eq!(event(&body("soon")).occurred_at, None);
    }

    #[test]
    fn the_list_must_be_the_routes() {
        assert_eq!(
            parse(
                b"type=subscribe&fired_at=x&data[list_id]=other&data[email]=a%40b.c",
                LIST
            ),
            Err(ParseError::ListMismatch {
                expected: LIST.into(),
                found: "other".into()
            })
        );
        assert_eq!(
            parse(b"type=subscribe&fired_at=x&data[email]=a%40b.c", LIST),
            Err(ParseError::MissingField("data[list_id]"))
        );
        assert_eq!(
            parse(
                b"type=subscribe&fired_at=x&data[list_id]=a%3Ab&data[email]=a%40b.c",
                "a:b"
            ),
            Err(ParseError::InvalidField("data[list_id]"))
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for (body, err) in [
            (&b""[..], ParseError::MissingField("data[list_id]")),
            (
                b"\x00\xff",
                ParseError::Form(FormError::InvalidUtf8 { index: 0 }),
            ),
            (
                b"type=%ZZ",
                ParseError::Form(FormError::BadEscape { offset: 5 }),
            ),
            (
                b"type=a&type=b",
                ParseError::Form(FormError::DuplicateKey { key: "type".into() }),
            ),
            (
                b"data[list_id]=a6b5da1054&fired_at=x",
                ParseError::MissingField("type"),
            ),
            (
                b"data[list_id]=a6b5da1054&type=subscribe",
                ParseError::MissingField("fired_at"),
            ),
            (
                b"data[list_id]=a6b5da1054&type=subscribe&fired_at=x",
                ParseError::MissingField("data[email]"),
            ),
            (
                b"data[list_id]=a6b5da1054&type=sub+scribe&fired_at=x",
                ParseError::InvalidField("type"),
            ),
            (
                b"data[list_id]=a6b5da1054&type=campaign&fired_at=x",
                ParseError::MissingField("data[id]"),
            ),
            (
                b"data[list_id]=a6b5da1054&type=campaign&fired_at=x&data[id]=a%2Fb",
                ParseError::InvalidField("data[id]"),
            ),
            (
                b"{\"type\":\"subscribe\"}",
                ParseError::MissingField("data[list_id]"),
            ),
        ] {
            assert_eq!(
                parse(body, LIST),
                Err(err),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn forms_nest_php_style() {
        let v = parse_form(
            b"type=profile&data[list_id]=a6b5da1054&data[merges][FNAME]=Jane&data%5Bmerges%5D%5BADDRESS%5D%5Baddr1%5D=1+Main+St\
              &data[merges][ADDRESS][city]=Springfield&data[merges][ADDRESS][zip]=12345",
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "profile",
                "data": {
                    "list_id": "a6b5da1054",
                    "merges": {
                        "FNAME": "Jane",
                        "ADDRESS": {"addr1": "1 Main St", "city": "Springfield", "zip": "12345"}
                    }
                }
            })
        );
    }

    #[test]
    fn malformed_and_conflicting_keys_are_refused() {
        for body in [
            &b"data[=1"[..],
            b"data]x=1",
            b"data[a]x=1",
            b"data[]=1",
            b"[a]=1",
            b"data[a[b]]=1",
        ] {
            assert!(
                matches!(parse_form(body), Err(ParseError::BadKey { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &b"data=1&data[a]=2"[..],
            b"data[a]=2&data=1",
            b"data[a][b]=1&data[a]=2",
        ] {
            assert!(
                matches!(parse_form(body), Err(ParseError::KeyConflict { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(parse_form(b"a=%"), Err(ParseError::Form(_))));
    }
}
