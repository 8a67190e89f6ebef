//! Bodies read leniently, so that one bad field or record does not hide the others: text
//! that is not valid UTF-8 (a raw `0xFF`) or escapes that name no character (a lone
//! `\ud800`) are replaced by U+FFFD before decoding, and a list whose items do not all
//! decode keeps the ones that do. Both are told in a `tracing` warning, naming the
//! operation and, for a skipped record, its position and id.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

/// `body` with invalid UTF-8 and lone surrogate escapes replaced by U+FFFD, and how many
/// were replaced; the same bytes, not copied, when there is nothing to repair.
pub(crate) fn repair_text(body: &[u8]) -> (Cow<'_, [u8]>, usize) {
    let (text, mut repairs) = match std::str::from_utf8(body) {
        Ok(text) => (Cow::Borrowed(text), 0),
        Err(_) => {
            let invalid = body
                .utf8_chunks()
                .filter(|chunk| !chunk.invalid().is_empty())
                .count();
            (
                Cow::Owned(String::from_utf8_lossy(body).into_owned()),
                invalid,
            )
        }
    };
    if !text.contains("\\u") {
        return match text {
            Cow::Borrowed(_) => (Cow::Borrowed(body), repairs),
            Cow::Owned(text) => (Cow::Owned(text.into_bytes()), repairs),
        };
    }
    let (fixed, lone) = replace_lone_surrogates(&text);
    repairs += lone;
    match (fixed, text) {
        (None, Cow::Borrowed(_)) => (Cow::Borrowed(body), repairs),
        (None, Cow::Owned(text)) => (Cow::Owned(text.into_bytes()), repairs),
        (Some(fixed), _) => (Cow::Owned(fixed.into_bytes()), repairs),
    }
}

/// `text` with every `\uXXXX` escape of a surrogate that is not half of a pair replaced by
/// `\ufffd`, and how many; `None` if there was none.
fn replace_lone_surrogates(text: &str) -> (Option<String>, usize) {
    let bytes = text.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        let digits = text.get(at..at + 4)?;
        u16::from_str_radix(digits, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u16> {
        (bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u'))
            .then(|| hex(at + 2))
            .flatten()
    };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escape_at(i) else {
            i += 2; // another escape (`\\`, `\"`...): its second character is not a start
            continue;
        };
        let len = match unit {
            0xD800..=0xDBFF => match escape_at(i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    i += 12;
                    continue;
                }
                _ => 6,
            },
            0xDC00..=0xDFFF => 6,
            _ => {
                i += 6;
                continue;
            }
        };
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..i]);
        out.push_str("\\ufffd");
        copied = i + len;
        count += 1;
        i += len;
    }
    if let Some(out) = &mut out {
        out.push_str(&text[copied..]);
    }
    (out, count)
}

/// The items of a JSON list that decode as `I`, when the list as a whole does not: `None`
/// if `body` is not a JSON list at all. Each record that cannot be read is told in a
/// warning (its position, and its `physical_id` or `id` if it has one) and skipped.
pub(crate) fn decode_items<I: DeserializeOwned>(
    operation: &'static str,
    body: &[u8],
) -> Option<Vec<I>> {
    let records: Vec<serde_json::Value> = serde_json::from_slice(body).ok()?;
    let mut items = Vec::with_capacity(records.len());
    for (position, record) in records.into_iter().enumerate() {
        let id = record
            .get("physical_id")
            .or_else(|| record.get("id"))
            .map(|id| crate::error::cut(&id.to_string()));
        match serde_json::from_value(record) {
            Ok(item) => items.push(item),
            Err(e) => tracing::warn!(
                operation,
                record = position,
                id = id.as_deref(),
                error = %crate::error::cut(&e.to_string()),
                "{operation}: record {position} cannot be read; skipped, the others are kept"
            ),
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(body: &[u8]) -> (String, usize) {
        let (fixed, count) = repair_text(body);
        (String::from_utf8(fixed.into_owned()).unwrap(), count)
    }

    #[test]
    fn text_is_repaired_only_where_broken() {
        for (body, expected, count) in [
            (&br#"{"name":"ok"}"#[..], r#"{"name":"ok"}"#, 0),
            (b"{\"name\":\"a\xFFb\"}", "{\"name\":\"a\u{FFFD}b\"}", 1),
            (br#"{"name":"\ud800x"}"#, r#"{"name":"\ufffdx"}"#, 1),
            (br#"{"name":"\udc00"}"#, r#"{"name":"\ufffd"}"#, 1),
            (
                br#"{"name":"\ud83d\ude00"}"#,
                r#"{"name":"\ud83d\ude00"}"#,
                0,
            ),
            (br#"{"name":"\\ud800"}"#, r#"{"name":"\\ud800"}"#, 0),
            (
                br#"{"name":"\ud800\ud800\u0041"}"#,
                r#"{"name":"\ufffd\ufffd\u0041"}"#,
                2,
            ),
            (br#"{"name":"\u12"}"#, r#"{"name":"\u12"}"#, 0),
        ] {
            assert_eq!(repaired(body), (expected.to_owned(), count), "{body:?}");
            let (fixed, _) = repair_text(body);
            if count > 0 {
                let value: Result<serde_json::Value, _> = serde_json::from_slice(&fixed);
                assert!(value.is_ok(), "{expected} decodes");
            }
        }
    }

    #[test]
    fn a_bad_record_is_skipped_and_the_others_kept() {
        #[derive(serde::Deserialize)]
        struct Item {
            #[allow(dead_code)]
            physical_id: String,
        }
        let body = br#"[{"physical_id":"a"},{"physical_id":7},{"physical_id":"c"}]"#;
        let items: Vec<Item> = decode_items("list_test", body).unwrap();
        assert_eq!(items.len(), 2);
        assert!(decode_items::<Item>("list_test", b"{}").is_none());
    }
}
