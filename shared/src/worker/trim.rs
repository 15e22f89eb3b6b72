//! Size caps for what the audit trail and dead letters keep: a DynamoDB item holds 400 KB, and
//! an audit entry is a summary, not an archive of the vendor's record.

use serde_json::{Map, Value, json};

/// The most serialized JSON an audit entry keeps for `before` or `written`.
pub(crate) const AUDIT_VALUE_LIMIT: usize = 4096;

/// The most bytes of an error message (audit entries, dead-letter reasons) kept.
pub(crate) const TEXT_LIMIT: usize = 2048;

/// The key of the note a trimmed value carries.
const TRIMMED_KEY: &str = "_trimmed";

/// Room kept for the note within the limit.
const NOTE_RESERVE: usize = 512;

/// Field names listed in the note, at most this many bytes of them.
const NAMES_BUDGET: usize = 256;

/// Returns `value` if its JSON fits in `limit` bytes. Otherwise an object keeps the fields that
/// fit (small ones first come, first kept — ids and statuses, typically) plus a `_trimmed` note
/// with the original size and the omitted field names; anything else becomes just the note.
pub(crate) fn trim_value(value: Value, limit: usize) -> Value {
    let size = json_len(&value);
    if size <= limit {
        return value;
    }
    let Value::Object(fields) = value else {
        return json!({ TRIMMED_KEY: { "bytes": size } });
    };
    let budget = limit.saturating_sub(NOTE_RESERVE);
    let mut kept = Map::new();
    let mut used = 2; // the braces
    let mut omitted = Vec::new();
    let mut names_len = 0;
    let mut unnamed = 0usize;
    for (key, field) in fields {
        // `"key":value,`
        let cost = json_len(&Value::String(key.clone())) + 1 + json_len(&field) + 1;
        if used + cost <= budget {
            used += cost;
            kept.insert(key, field);
        } else if names_len + key.len() <= NAMES_BUDGET {
            names_len += key.len() + 3;
            omitted.push(key);
        } else {
            unnamed += 1;
        }
    }
    let mut note = Map::new();
    note.insert("bytes".into(), size.into());
    note.insert("omitted".into(), omitted.into());
    if unnamed > 0 {
        note.insert("omitted_more".into(), unnamed.into());
    }
    kept.insert(TRIMMED_KEY.into(), Value::Object(note));
    Value::Object(kept)
}

/// `text` cut to at most `limit` bytes on a character boundary, marked when cut.
pub(crate) fn trim_text(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    const MARK: &str = "… (truncated)";
    let mut end = limit.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

fn json_len(value: &Value) -> usize {
    // Serializing a `Value` cannot fail (its map keys are strings); 0 would only under-count.
    serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_pass_unchanged() {
        let v = json!({"id": "1", "email": "a@example.com"});
        assert_eq!(trim_value(v.clone(), AUDIT_VALUE_LIMIT), v);
        assert_eq!(trim_value(json!("x"), 3), json!("x"));
    }

    #[test]
    fn large_objects_keep_small_fields_and_say_what_went() {
        let v = json!({
            "id": "217506",
            "lines": "x".repeat(10_000),
            "status": "sent",
            "notes": "y".repeat(10_000),
        });
        let t = trim_value(v, AUDIT_VALUE_LIMIT);
        assert!(serde_json::to_vec(&t).unwrap().len() <= AUDIT_VALUE_LIMIT);
        assert_eq!(t["id"], "217506");
        assert_eq!(t["status"], "sent");
        assert!(t.get("lines").is_none());
        assert_eq!(t[TRIMMED_KEY]["omitted"], json!(["lines", "notes"]));
        assert!(t[TRIMMED_KEY]["bytes"].as_u64().unwrap() > 20_000);
    }

    #[test]
    fn many_fields_stay_within_the_limit() {
        let mut m = Map::new();
        for i in 0..2000 {
            m.insert(format!("field_with_a_long_name_{i}"), json!(i));
        }
        let t = trim_value(Value::Object(m), AUDIT_VALUE_LIMIT);
        assert!(serde_json::to_vec(&t).unwrap().len() <= AUDIT_VALUE_LIMIT);
        assert!(t[TRIMMED_KEY]["omitted_more"].as_u64().unwrap() > 0);
    }

    #[test]
    fn large_non_objects_become_a_note() {
        let t = trim_value(json!(["a".repeat(5000)]), AUDIT_VALUE_LIMIT);
        assert_eq!(t, json!({ TRIMMED_KEY: { "bytes": 5004 } }));
    }

    #[test]
    fn text_is_cut_on_a_char_boundary() {
        assert_eq!(trim_text("short", 10), "short");
        let long = "é".repeat(100);
        let cut = trim_text(&long, 50);
        assert!(cut.len() <= 50);
        assert!(cut.ends_with("(truncated)"));
        assert!(cut.starts_with("éé"));
    }
}
