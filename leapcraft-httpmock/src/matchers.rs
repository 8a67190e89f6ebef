//! Matchers the generated helpers use where progenitor's own cannot match what the client
//! sends (the xtask routes them here): a path parameter, and a form body.

use serde::Serialize;

/// A regex that matches `value` as one path segment, however it is percent-encoded: each
/// byte either as itself (where a path may carry it unencoded) or as `%XX`, in either case.
pub(crate) fn path_segment(value: &str) -> String {
    let mut pattern = String::new();
    for byte in value.bytes() {
        let escaped = format!("%{}", hex_pattern(byte));
        let literal = regex::escape(&char::from(byte).to_string());
        match byte {
            // Unreserved: never encoded.
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                pattern.push_str(&literal);
            }
            // Never unencoded in a segment: they end it, or start an escape.
            b'/' | b'?' | b'#' | b'%' => pattern.push_str(&escaped),
            b'!'..=b'~' => pattern.push_str(&format!("(?:{literal}|{escaped})")),
            _ => pattern.push_str(&escaped),
        }
    }
    pattern
}

/// The two hex digits of `byte`, each letter in either case (`3[aA]`).
fn hex_pattern(byte: u8) -> String {
    format!("{byte:02X}")
        .chars()
        .map(|digit| {
            if digit.is_ascii_alphabetic() {
                format!("[{digit}{}]", digit.to_ascii_lowercase())
            } else {
                digit.to_string()
            }
        })
        .collect()
}

/// Adds to `when` that the body is the form `value` encodes: its content type, each of its
/// fields with its value, and no other field.
pub(crate) fn form_body<T: Serialize + ?Sized>(when: httpmock::When, value: &T) -> httpmock::When {
    let encoded = serde_urlencoded::to_string(value).expect("a request body encodes as a form");
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_str(&encoded).expect("a form decodes into its fields");
    let count = fields.len();
    fields
        .into_iter()
        .fold(
            when.header("content-type", "application/x-www-form-urlencoded"),
            |when, (name, value)| when.form_urlencoded_tuple(name, value),
        )
        .form_urlencoded_tuple_count(".*", ".*", count)
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    fn matches(value: &str, segment: &str) -> bool {
        regex::Regex::new(&format!("^{}$", path_segment(value)))
            .unwrap()
            .is_match(segment)
    }

    #[test]
    fn a_segment_matches_every_encoding_of_its_value_and_nothing_else() {
        assert!(matches("D2:C1:AA:FF:3E:09", "D2:C1:AA:FF:3E:09"));
        assert!(matches("D2:C1:AA:FF:3E:09", "D2%3AC1%3aAA:FF:3E:09"));
        assert!(matches("a/b", "a%2Fb"));
        assert!(matches("a/b", "a%2fb"));
        assert!(!matches("a/b", "a/b"));
        assert!(matches("ä€", "%C3%A4%E2%82%AC"));
        assert!(matches("a b", "a%20b"));
        assert!(!matches("a b", "a b"));
        assert!(matches("100%", "100%25"));
        assert!(!matches("100%", "100%"));
        // Regex syntax in an id is literal.
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "axb"));
        assert!(matches("[x]|^", "%5Bx%5D%7C%5E"));
        assert!(matches("[x]|^", "[x]|^"));
        assert!(!matches("[x]|^", "x"));
        assert!(!matches("ab", "abc"));
    }
}
