//! Ordered `application/x-www-form-urlencoded` parsing, shared by the vendors that post forms
//! (FreshBooks, Mailchimp).
//!
//! Unlike `form_urlencoded`, this keeps the fields in the order received (FreshBooks signs a
//! rendering of the fields in that order), refuses malformed percent escapes and invalid UTF-8
//! instead of replacing them (a signature over replaced text would be meaningless), and refuses
//! duplicate keys (vendors never send them, and frameworks disagree on which copy wins).
//! Fields borrow from the body unless they contain escapes.

use std::borrow::Cow;
use std::fmt;

/// Why a body is not a well-formed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape at byte {offset} of the form body")]
    BadEscape {
        /// Where the escape starts, in bytes.
        offset: usize,
    },
    /// A decoded key or value is not UTF-8.
    #[error("form field {index} is not valid UTF-8 after percent-decoding")]
    InvalidUtf8 {
        /// Which field, counting from 0.
        index: usize,
    },
    /// The same key appears twice. `key` is cut to 64 bytes.
    #[error("duplicate form key `{key}`")]
    DuplicateKey {
        /// The key, cut to 64 bytes.
        key: String,
    },
}

/// A parsed form: (key, value) pairs in the order received.
#[derive(Clone, PartialEq, Eq)]
pub struct Form<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    /// Parses a form body: split on `&`, each piece on its first `=` (a piece without `=` is a key
    /// with an empty value), `+` → space, `%XX` → byte, then UTF-8. Empty pieces are skipped, as
    /// every common form parser does.
    pub fn parse(body: &'a [u8]) -> Result<Self, FormError> {
        let pieces = body.iter().filter(|&&b| b == b'&').count() + 1;
        let mut fields = Vec::with_capacity(pieces);
        let mut start = 0usize;
        for piece in body.split(|&b| b == b'&') {
            let piece_start = start;
            start += piece.len() + 1;
            if piece.is_empty() {
                continue;
            }
            let (key, value, value_offset) = match piece.iter().position(|&b| b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..], piece_start + eq + 1),
                None => (piece, &piece[piece.len()..], piece_start + piece.len()),
            };
            let index = fields.len();
            let key = decode(key, piece_start, index)?;
            let value = decode(value, value_offset, index)?;
            fields.push((key, value));
        }
        check_duplicates(&fields)?;
        Ok(Form { fields })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The fields in the order received.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the form has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Keys only: a form can carry secrets (FreshBooks' handshake `verifier`).
impl fmt::Debug for Form<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field(
                "keys",
                &self.fields.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Percent-decodes one key or value; borrows when there is nothing to decode.
fn decode(raw: &[u8], offset: usize, index: usize) -> Result<Cow<'_, str>, FormError> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| FormError::InvalidUtf8 { index });
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_val);
                let lo = raw.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(FormError::BadEscape { offset: offset + i }),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| FormError::InvalidUtf8 { index })
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quadratic for the handful of fields vendors send; sorting beyond that, so a hostile body with
/// thousands of fields costs n·log n, not n².
fn check_duplicates(fields: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<(), FormError> {
    const QUADRATIC_UP_TO: usize = 24;
    let duplicate = if fields.len() <= QUADRATIC_UP_TO {
        fields.iter().enumerate().find_map(|(i, (k, _))| {
            fields[..i]
                .iter()
                .any(|(earlier, _)| earlier == k)
                .then_some(k.as_ref())
        })
    } else {
        let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    };
    match duplicate {
        Some(key) => Err(FormError::DuplicateKey {
            key: truncate(key, 64).to_string(),
        }),
        None => Ok(()),
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs<'a>(form: &'a Form<'_>) -> Vec<(&'a str, &'a str)> {
        form.iter().collect()
    }

    #[test]
    fn keeps_order_and_decodes() {
        let form = Form::parse(b"b=2&a=x+y%20z&c=%C3%A9%2F%22%5C%0A&empty=&bare").unwrap();
        assert_eq!(
            pairs(&form),
            [
                ("b", "2"),
                ("a", "x y z"),
                ("c", "é/\"\\\n"),
                ("empty", ""),
                ("bare", "")
            ]
        );
        assert_eq!(form.get("a"), Some("x y z"));
        assert_eq!(form.get("zz"), None);
        assert_eq!(form.len(), 5);
    }

    #[test]
    fn splits_on_the_first_equals_and_skips_empty_pieces() {
        let form = Form::parse(b"&&k=a=b&&%6B2=v&").unwrap();
        assert_eq!(pairs(&form), [("k", "a=b"), ("k2", "v")]);
        assert!(Form::parse(b"").unwrap().is_empty());
    }

    #[test]
    fn borrows_when_nothing_is_escaped() {
        let form = Form::parse(b"name=invoice.update&object_id=1").unwrap();
        assert!(
            form.fields
                .iter()
                .all(|(k, v)| matches!(k, Cow::Borrowed(_)) && matches!(v, Cow::Borrowed(_)))
        );
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(
            Form::parse(b"a=1&b=%G1"),
            Err(FormError::BadEscape { offset: 6 })
        );
        assert_eq!(
            Form::parse(b"a=%4"),
            Err(FormError::BadEscape { offset: 2 })
        );
        assert_eq!(
            Form::parse(b"a%=1"),
            Err(FormError::BadEscape { offset: 1 })
        );
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(
            Form::parse(b"a=%FF"),
            Err(FormError::InvalidUtf8 { index: 0 })
        );
        assert_eq!(
            Form::parse(b"a=1&b=\xC3"),
            Err(FormError::InvalidUtf8 { index: 1 })
        );
        // Raw (unescaped) UTF-8 is fine.
        assert_eq!(Form::parse("a=é".as_bytes()).unwrap().get("a"), Some("é"));
    }

    #[test]
    fn rejects_duplicate_keys_small_and_large() {
        assert_eq!(
            Form::parse(b"a=1&b=2&a=3"),
            Err(FormError::DuplicateKey { key: "a".into() })
        );
        // Escaped and unescaped spellings of one key are the same key.
        assert!(matches!(
            Form::parse(b"a=1&%61=2"),
            Err(FormError::DuplicateKey { .. })
        ));
        let mut big: String = (0..100).map(|i| format!("k{i}=v&")).collect();
        assert_eq!(Form::parse(big.as_bytes()).unwrap().len(), 100);
        big.push_str("k57=again");
        assert_eq!(
            Form::parse(big.as_bytes()),
            Err(FormError::DuplicateKey { key: "k57".into() })
        );
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let form = Form::parse(b"verifier=s3cr3t&object_id=9").unwrap();
        let debug = format!("{form:?}");
        assert!(debug.contains("verifier") && !debug.contains("s3cr3t"));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("abc", 64), "abc");
    }
}
