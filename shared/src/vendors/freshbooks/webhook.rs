//! FreshBooks callback deliveries: the signature, the handshake, the event.
//!
//! FreshBooks posts `application/x-www-form-urlencoded` bodies. The signature in
//! [`SIGNATURE_HEADER`] is NOT over the raw body: it is base64(HMAC-SHA256(verifier,
//! `json.dumps(form)`)) — Python's default `json.dumps` rendering of the fields in the order
//! received (docs/vendors/freshbooks.md §1.4). The key is the `verifier` FreshBooks sent in the registration
//! handshake. Typical use:
//!
//! ```ignore
//! let form = Form::parse(body)?;
//! match classify(&form)? {
//!     Delivery::Handshake(h) => { /* confirm with CallbackVerifier, then store h.verifier */ }
//!     Delivery::Event(e) if verify(&stored_verifier, &form, header) => e.to_source_event(now),
//!     Delivery::Event(_) => { /* 401 */ }
//! }
//! ```

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::event::{SourceEvent, SourceRef, derived_event_id};
use crate::vendor::Vendor;
use crate::vendors::is_plain_id;

pub(crate) use crate::vendors::form::Form;

/// The header carrying the signature (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-freshbooks-hmac-sha256";

type HmacSha256 = Hmac<Sha256>;

/// Whether `header_value` is FreshBooks' signature of `form` under `verifier`: standard base64
/// (with padding) of HMAC-SHA256 over Python's `json.dumps` of the fields in received order
/// (streamed into the HMAC; `python_json_dumps` renders the same bytes for tests), compared in
/// constant time. Only the received order is accepted: a sorted-keys rendering is a
/// different message. An empty verifier never verifies anything.
pub fn verify(verifier: &SecretString, form: &Form<'_>, header_value: &str) -> bool {
    let key = verifier.expose_secret().as_bytes();
    let header = header_value.trim().as_bytes();
    // base64 of 32 bytes is exactly 44 characters; checking first keeps `decode_slice` in bounds.
    if key.is_empty() || header.len() != 44 {
        return false;
    }
    let mut expected = [0u8; 33];
    let Ok(len) = base64_decode(header, &mut expected) else {
        return false;
    };
    // HMAC takes keys of any length, so this never fails; refusing is the safe answer anyway.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    render(form, &mut mac);
    mac.verify_slice(&expected[..len]).is_ok()
}

/// FreshBooks' signature of `form` under `verifier`, as [`verify`] checks it: the value of
/// [`SIGNATURE_HEADER`]. For the sandbox and tests, which play FreshBooks' part.
pub fn sign(verifier: &SecretString, form: &Form<'_>) -> String {
    use base64::Engine as _;
    // HMAC takes keys of any length; an empty key signs too (and then never verifies).
    let mut mac = match HmacSha256::new_from_slice(verifier.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    render(form, &mut mac);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn base64_decode(input: &[u8], out: &mut [u8]) -> Result<usize, base64::DecodeSliceError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode_slice(input, out)
}

/// The exact string FreshBooks signs: Python's `json.dumps(dict(form))` with default settings
/// (`", "` and `": "` separators, `ensure_ascii`, lower-case `\uXXXX`, surrogate pairs, `/` not
/// escaped). For tests; [`verify`] streams the same bytes into the HMAC.
#[cfg(test)]
fn python_json_dumps(form: &Form<'_>) -> String {
    let mut out = Vec::with_capacity(
        16 + form
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>(),
    );
    render(form, &mut out);
    // `render` writes only ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Where [`render`] writes: a buffer, or the HMAC directly (no intermediate string).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for HmacSha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

fn render(form: &Form<'_>, out: &mut impl Sink) {
    out.put(b"{");
    for (i, (key, value)) in form.iter().enumerate() {
        if i > 0 {
            out.put(b", ");
        }
        put_json_string(key, out);
        out.put(b": ");
        put_json_string(value, out);
    }
    out.put(b"}");
}

/// A JSON string literal as Python's `json.dumps(..., ensure_ascii=True)` writes it. Runs of
/// printable ASCII go out as one slice.
fn put_json_string(s: &str, out: &mut impl Sink) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    fn put_u(unit: u16, out: &mut impl Sink) {
        let buf = [
            b'\\',
            b'u',
            HEX[usize::from(unit >> 12)],
            HEX[usize::from((unit >> 8) & 0xf)],
            HEX[usize::from((unit >> 4) & 0xf)],
            HEX[usize::from(unit & 0xf)],
        ];
        out.put(&buf);
    }

    out.put(b"\"");
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let short: &[u8] = match c {
            ' '..='~' if c != '"' && c != '\\' => continue,
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            '\u{8}' => b"\\b",
            '\u{c}' => b"\\f",
            _ => b"",
        };
        out.put(&bytes[run..i]);
        run = i + c.len_utf8();
        if short.is_empty() {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                put_u(*unit, out);
            }
        } else {
            out.put(short);
        }
    }
    out.put(&bytes[run..]);
    out.put(b"\"");
}

/// What a FreshBooks delivery is.
#[derive(Debug)]
pub(crate) enum Delivery<'f> {
    /// The registration handshake: confirm it with
    /// [`CallbackVerifier`](super::callbacks::CallbackVerifier), and only when FreshBooks answers
    /// `verified: true` store the verifier — this POST is unsigned, so anyone could send one.
    Handshake(Handshake),
    /// A change notification; check [`verify`] before using it.
    Event(Event<'f>),
}

/// The verification handshake FreshBooks posts right after a callback is registered.
#[derive(Debug)]
pub(crate) struct Handshake {
    /// FreshBooks' callback id (sent in `object_id`).
    pub(crate) callback_id: String,
    /// The account, if FreshBooks sent one (UNCONFIRMED whether it does).
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "parsed to learn whether FreshBooks sends it; only tests read it"
        )
    )]
    account_id: Option<String>,
    /// The verification code: the HMAC key for every later delivery of this callback.
    pub(crate) verifier: SecretString,
}

/// A change notification. Fields borrow from the [`Form`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event<'f> {
    /// `invoice.update`, `client.create`, `invoice.sendByEmail`, `payment`…
    name: &'f str,
    object_id: &'f str,
    pub(crate) account_id: &'f str,
    business_id: Option<&'f str>,
    identity_id: Option<&'f str>,
}

/// Why a form is neither a handshake nor an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeliveryError {
    /// A required field is absent or empty.
    #[error("FreshBooks delivery has no `{0}` field")]
    MissingField(&'static str),
    /// A field that ends up in record keys or URLs holds something other than a plain id.
    #[error("FreshBooks delivery field `{0}` is not a plain id")]
    InvalidField(&'static str),
}

/// Tells a handshake (the form has `verifier`) from an event (`name`, `object_id`, `account_id`).
pub(crate) fn classify<'f>(form: &'f Form<'_>) -> Result<Delivery<'f>, DeliveryError> {
    let field = |key: &'static str| form.get(key).filter(|v| !v.is_empty());
    let plain = |key: &'static str| match field(key) {
        None => Err(DeliveryError::MissingField(key)),
        Some(v) if is_plain_id(v) => Ok(v),
        Some(_) => Err(DeliveryError::InvalidField(key)),
    };
    let optional_plain = |key: &'static str| match field(key) {
        None => Ok(None),
        Some(_) => plain(key).map(Some),
    };

    if let Some(verifier) = form.get("verifier") {
        if verifier.is_empty() {
            return Err(DeliveryError::MissingField("verifier"));
        }
        return Ok(Delivery::Handshake(Handshake {
            callback_id: plain("object_id")?.to_string(),
            account_id: optional_plain("account_id")?.map(str::to_string),
            verifier: SecretString::from(verifier),
        }));
    }

    let name = plain("name")?;
    let (entity, op) = split_name(name);
    if entity.is_empty() || op.is_some_and(str::is_empty) {
        return Err(DeliveryError::InvalidField("name"));
    }
    Ok(Delivery::Event(Event {
        name,
        object_id: plain("object_id")?,
        account_id: plain("account_id")?,
        business_id: optional_plain("business_id")?,
        identity_id: optional_plain("identity_id")?,
    }))
}

fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.split_once('.') {
        Some((entity, op)) => (entity, Some(op)),
        None => (name, None),
    }
}

impl Event<'_> {
    /// The entity: `name` before the first `.`, lower-cased.
    fn entity(&self) -> String {
        split_name(self.name).0.to_ascii_lowercase()
    }

    /// The operation: `name` after the first `.`, lower-cased (`sendByEmail` → `sendbyemail`);
    /// a bare parent name (`invoice`) means `update`.
    fn operation(&self) -> String {
        split_name(self.name)
            .1
            .map_or_else(|| "update".to_string(), str::to_ascii_lowercase)
    }

    /// The event for fan-out. FreshBooks sends neither an event id nor a timestamp, so the id is
    /// derived from the change and `received_at` (RFC 3339, milliseconds). A FreshBooks retry
    /// therefore gets a new id and is processed again; that is harmless because workers fetch the
    /// record's current state and skip writes when it is unchanged (the id map's fingerprint).
    pub(crate) fn to_source_event(&self, received_at: DateTime<Utc>) -> SourceEvent {
        let source = SourceRef {
            vendor: Vendor::Freshbooks,
            account: self.account_id.into(),
        };
        let entity = self.entity();
        let operation = self.operation();
        let event_id = derived_event_id(
            &source,
            &entity,
            self.object_id,
            &operation,
            &received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        let mut detail = serde_json::Map::new();
        for (key, value) in [
            ("business_id", self.business_id),
            ("identity_id", self.identity_id),
        ] {
            if let Some(value) = value {
                detail.insert(key.to_string(), value.into());
            }
        }
        SourceEvent {
            event_id,
            source,
            entity,
            entity_id: self.object_id.to_string(),
            operation,
            occurred_at: None,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::form::FormError;

    const VERIFIER: &str = "a1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW";
    const BODY_A: &[u8] = b"name=invoice.update&object_id=217506&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1";
    const SIGNED_A: &str = r#"{"name": "invoice.update", "object_id": "217506", "account_id": "6BApk", "business_id": "6543", "identity_id": "1234", "user_id": "1"}"#;
    const HEADER_A: &str = "6F2rFUY1A7AzEMuMqGvboq7iafQHKAsZwKvnS7qfMkw=";
    const BODY_B: &[u8] = b"name=client.update&object_id=921895&user_id=1&identity_id=14051539&business_id=14393743&account_id=p7rQW5";
    const SIGNED_B: &str = r#"{"name": "client.update", "object_id": "921895", "user_id": "1", "identity_id": "14051539", "business_id": "14393743", "account_id": "p7rQW5"}"#;
    const HEADER_B: &str = "i/0D32jc0LLz+5iiUY7uoRzpiWc5KX/RS3HZvH3AOYU=";

    fn verifier() -> SecretString {
        SecretString::from(VERIFIER)
    }

    fn form(body: &[u8]) -> Form<'_> {
        Form::parse(body).unwrap()
    }

    #[test]
    fn vector_a() {
        let f = form(BODY_A);
        let signed = python_json_dumps(&f);
        assert_eq!(signed, SIGNED_A);
        assert_eq!(signed.len(), 134);
        assert!(verify(&verifier(), &f, HEADER_A));
        // Surrounding whitespace in the header value is not part of the signature.
        assert!(verify(&verifier(), &f, &format!(" {HEADER_A}\t")));
    }

    #[test]
    fn sign_produces_the_vector_signatures() {
        assert_eq!(sign(&verifier(), &form(BODY_A)), HEADER_A);
        assert_eq!(sign(&verifier(), &form(BODY_B)), HEADER_B);
    }

    #[test]
    fn vector_b() {
        let f = form(BODY_B);
        assert_eq!(python_json_dumps(&f), SIGNED_B);
        assert!(verify(&verifier(), &f, HEADER_B));
        assert!(!verify(&verifier(), &f, HEADER_A));
    }

    #[test]
    fn the_hmac_itself_matches_the_vector() {
        let mut mac = HmacSha256::new_from_slice(VERIFIER.as_bytes()).unwrap();
        render(&form(BODY_A), &mut mac);
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "e85dab15463503b03310cb8ca86bdba2aee269f407280b19c0abe74bba9f324c"
        );
    }

    #[test]
    fn negative_controls_do_not_verify() {
        let f = form(BODY_A);
        // Each is the correct HMAC of a wrong message; none may be accepted for the real one.
        for (what, header) in [
            (
                "compact JSON",
                "amVs7uBwMq3N53xgegHp6JIpZlIGM9Y2uKrqzmB2XhM=",
            ),
            ("raw body", "EIJPI297sXyHVM89cU/TYRF34Sns0qpe2rthjTFjOtA="),
            (
                "sorted keys",
                "Z8lHspbMRjpAlHgydDoi7G6flJz5Lv0NIP/X9ooKgNk=",
            ),
        ] {
            assert!(!verify(&verifier(), &f, header), "{what} must not verify");
        }
    }

    #[test]
    fn negative_controls_are_the_hmacs_of_the_wrong_messages() {
        // Proves the controls above fail for the right reason, not because they are junk.
        let sign = |msg: &[u8]| {
            use base64::Engine as _;
            let mut mac = HmacSha256::new_from_slice(VERIFIER.as_bytes()).unwrap();
            mac.update(msg);
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        };
        // Compact JSON in received order (what serde_json would write for an ordered map).
        let compact = SIGNED_A.replace("\": ", "\":").replace(", \"", ",\"");
        assert_eq!(
            sign(compact.as_bytes()),
            "amVs7uBwMq3N53xgegHp6JIpZlIGM9Y2uKrqzmB2XhM="
        );
        assert_eq!(sign(BODY_A), "EIJPI297sXyHVM89cU/TYRF34Sns0qpe2rthjTFjOtA=");
        let sorted = form(b"account_id=6BApk&business_id=6543&identity_id=1234&name=invoice.update&object_id=217506&user_id=1");
        assert_eq!(
            sign(python_json_dumps(&sorted).as_bytes()),
            "Z8lHspbMRjpAlHgydDoi7G6flJz5Lv0NIP/X9ooKgNk="
        );
        // And the sorted-order body, signed in its own order, is not the vector A signature.
        assert!(!verify(&verifier(), &sorted, HEADER_A));
    }

    #[test]
    fn escaping_matches_python() {
        let f = form(b"v=%C3%A9%2F%22%5C%0A");
        assert_eq!(python_json_dumps(&f), r#"{"v": "\u00e9/\"\\\n"}"#);
        // Control characters, DEL, tab/CR/backspace/formfeed, an astral char (surrogate pair,
        // lower-case hex) and a BMP char with letters in its hex.
        let f = form("k=%00%1F%7F%09%0D%08%0C%F0%9F%98%80%E2%82%AC+a/b".as_bytes());
        assert_eq!(
            python_json_dumps(&f),
            r#"{"k": "\u0000\u001f\u007f\t\r\b\f\ud83d\ude00\u20ac a/b"}"#
        );
        assert_eq!(python_json_dumps(&form(b"")), "{}");
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        let tampered = form(b"name=invoice.update&object_id=217507&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1");
        assert!(!verify(&verifier(), &tampered, HEADER_A));
        let f = form(BODY_A);
        assert!(!verify(
            &SecretString::from("a1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvX"),
            &f,
            HEADER_A
        ));
        assert!(!verify(&SecretString::from(""), &f, HEADER_A));
    }

    #[test]
    fn malformed_headers_fail() {
        let f = form(BODY_A);
        for header in [
            "",
            "   ",
            "not base64 at all, but exactly forty-four!!",
            "6F2rFUY1A7AzEMuMqGvboq7iafQHKAsZwKvnS7qfMkw",
            "6F2rFUY1A7AzEMuMqGvboq7iafQHKAsZwKvnS7qfMkw==",
            "e85dab15463503b03310cb8ca86bdba2aee269f407280b19c0abe74bba9f324c",
            "6F2rFUY1A7AzEMuMqGvboq7iafQHKAsZwKvnS7qfMk_=",
        ] {
            assert!(!verify(&verifier(), &f, header), "{header:?}");
        }
    }

    #[test]
    fn form_errors_are_typed() {
        assert!(matches!(
            Form::parse(b"name=a&name=b"),
            Err(FormError::DuplicateKey { .. })
        ));
        assert!(matches!(
            Form::parse(b"name=%zz"),
            Err(FormError::BadEscape { .. })
        ));
        assert!(matches!(
            Form::parse(b"name=%C3%28"),
            Err(FormError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn events_become_source_events() {
        let f = form(BODY_A);
        let Ok(Delivery::Event(event)) = classify(&f) else {
            panic!("vector A is an event")
        };
        assert_eq!(event.business_id, Some("6543"));
        let at = DateTime::parse_from_rfc3339("2026-03-02T17:04:11.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let se = event.to_source_event(at);
        let source = SourceRef {
            vendor: Vendor::Freshbooks,
            account: "6BApk".into(),
        };
        assert_eq!(se.source, source);
        assert_eq!(
            (
                se.entity.as_str(),
                se.entity_id.as_str(),
                se.operation.as_str()
            ),
            ("invoice", "217506", "update")
        );
        assert_eq!(se.occurred_at, None);
        assert_eq!(
            se.event_id,
            derived_event_id(
                &source,
                "invoice",
                "217506",
                "update",
                "2026-03-02T17:04:11.123Z"
            )
        );
        assert_eq!(
            serde_json::Value::Object(se.detail.clone()),
            serde_json::json!({"business_id": "6543", "identity_id": "1234"})
        );
        // A later delivery of the same change is a new event.
        let later = event.to_source_event(at + chrono::Duration::milliseconds(1));
        assert_ne!(later.event_id, se.event_id);
    }

    #[test]
    fn operations_are_lower_cased_and_default_to_update() {
        for (name, entity, op) in [
            ("invoice.sendByEmail", "invoice", "sendbyemail"),
            ("client", "client", "update"),
            ("time_entry.create", "time_entry", "create"),
            ("invoice.pastdue.1", "invoice", "pastdue.1"),
        ] {
            let body = format!("name={name}&object_id=1&account_id=abc");
            let f = form(body.as_bytes());
            let Ok(Delivery::Event(e)) = classify(&f) else {
                panic!("{name}")
            };
            let se = e.to_source_event(Utc::now());
            assert_eq!((se.entity.as_str(), se.operation.as_str()), (entity, op));
            assert!(se.detail.is_empty());
        }
    }

    #[test]
    fn bill_vendor_deliveries_are_bill_vendor_events() {
        use crate::vendors::freshbooks::models::Entity;
        // docs/vendors/freshbooks.md §1.5: the parent name and its create/update/delete.
        for (name, op) in [
            ("bill_vendor.create", "create"),
            ("bill_vendor.update", "update"),
            ("bill_vendor.delete", "delete"),
            ("bill_vendor", "update"),
        ] {
            let body = format!("name={name}&object_id=3301&account_id=6BApk&business_id=6543");
            let f = form(body.as_bytes());
            // Signed like any delivery: over the rendered form, not the raw body (§1.4).
            let header = sign(&verifier(), &f);
            assert!(verify(&verifier(), &f, &header), "{name}");
            let Ok(Delivery::Event(e)) = classify(&f) else {
                panic!("{name} is an event")
            };
            let se = e.to_source_event(Utc::now());
            assert_eq!(
                (
                    se.entity.as_str(),
                    se.entity_id.as_str(),
                    se.operation.as_str()
                ),
                ("bill_vendor", "3301", op),
                "{name}"
            );
            // The name workers and polls know the entity by: one spelling end to end.
            assert_eq!(Entity::parse(&se.entity), Some(Entity::BillVendor));
        }
    }

    #[test]
    fn handshakes_expose_the_verifier_as_a_secret() {
        let f = form(b"name=callback.verify&object_id=2001&verifier=sEcReTcOdE&account_id=6BApk");
        let Ok(Delivery::Handshake(h)) = classify(&f) else {
            panic!("a form with a verifier is a handshake")
        };
        assert_eq!(h.callback_id, "2001");
        assert_eq!(h.account_id.as_deref(), Some("6BApk"));
        assert_eq!(h.verifier.expose_secret(), "sEcReTcOdE");
        assert!(!format!("{h:?}").contains("sEcReTcOdE"));
        let f = form(b"verifier=x&object_id=7");
        assert!(matches!(
            classify(&f),
            Ok(Delivery::Handshake(Handshake {
                account_id: None,
                ..
            }))
        ));
    }

    #[test]
    fn incomplete_or_odd_deliveries_are_refused() {
        for (body, err) in [
            (
                &b"object_id=1&account_id=a"[..],
                DeliveryError::MissingField("name"),
            ),
            (
                b"name=invoice.update&account_id=a",
                DeliveryError::MissingField("object_id"),
            ),
            (
                b"name=invoice.update&object_id=1",
                DeliveryError::MissingField("account_id"),
            ),
            (
                b"name=invoice.update&object_id=1&account_id=",
                DeliveryError::MissingField("account_id"),
            ),
            (
                b"name=.update&object_id=1&account_id=a",
                DeliveryError::InvalidField("name"),
            ),
            (
                b"name=invoice.&object_id=1&account_id=a",
                DeliveryError::InvalidField("name"),
            ),
            (
                b"name=invoice.update&object_id=1%3A2&account_id=a",
                DeliveryError::InvalidField("object_id"),
            ),
            (
                b"name=invoice.update&object_id=1&account_id=a%2Fb",
                DeliveryError::InvalidField("account_id"),
            ),
            (
                b"name=invoice.update&object_id=1&account_id=a&business_id=x%20y",
                DeliveryError::InvalidField("business_id"),
            ),
            (
                b"verifier=&object_id=1",
                DeliveryError::MissingField("verifier"),
            ),
            (b"verifier=abc", DeliveryError::MissingField("object_id")),
            (b"", DeliveryError::MissingField("name")),
        ] {
            assert_eq!(
                classify(&form(body)).unwrap_err(),
                err,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
