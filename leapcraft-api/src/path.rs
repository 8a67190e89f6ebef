//! Path parameters of the generated code, checked and percent-encoded in place of
//! progenitor's `encode_path` (the xtask routes every call here).
//!
//! progenitor's set leaves `\` alone, which URL parsers read as `/` in `http(s)` URLs: an id
//! `a\b` would reach `/devices/a/b`. This set is progenitor's plus `\`, `^`, `|`, `[` and `]`.
//! Three values no encoding can carry are refused: the empty string (`/devices/` is another
//! resource), and `.` and `..`, which URL parsers resolve as dot segments (even as `%2E%2E`):
//! `get_device("..")` would request the API's root.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// `value`, percent-encoded to stay one path segment; an error for a value that cannot be
/// one (empty, `.` or `..`).
pub(crate) fn segment(value: &str) -> Result<String, String> {
    match value {
        "" | "." | ".." => Err(format!(
            "the path parameter {value:?} cannot be sent: it would not name one resource"
        )),
        _ => Ok(encode_segment(value)),
    }
}

/// `segment`, percent-encoded to stay one path segment.
fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::{encode_segment, segment};

    #[test]
    fn separators_and_delimiters_are_encoded() {
        assert_eq!(encode_segment("a\\b/c"), "a%5Cb%2Fc");
        assert_eq!(encode_segment("D2:C1:AA:FF:3E:09"), "D2:C1:AA:FF:3E:09");
        assert_eq!(encode_segment("?#% [x]|^"), "%3F%23%25%20%5Bx%5D%7C%5E");
        assert_eq!(encode_segment("ä"), "%C3%A4");
    }

    #[test]
    fn values_no_encoding_can_carry_are_refused() {
        for value in ["", ".", ".."] {
            assert!(segment(value).is_err(), "{value:?}");
        }
        for value in ["...", ".a", "a.", "%2e%2e", " "] {
            assert!(segment(value).is_ok(), "{value:?}");
        }
    }
}
