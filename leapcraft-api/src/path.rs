//! Percent-encoding of path parameters, used by the generated code in place of progenitor's
//! `encode_path` (the xtask rewrites the calls).
//!
//! progenitor's set leaves `\` alone, which URL parsers read as `/` in `http(s)` URLs: an id
//! `a\b` would reach `/devices/a/b`. This set is progenitor's plus `\`, `^`, `|`, `[` and `]`.
//! Two ids no encoding can carry, `.` and `..`, are still resolved as dot segments by URL
//! parsers (even as `%2E%2E`); `leapcraft-ext` refuses them.

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

/// `segment`, percent-encoded to stay one path segment.
pub(crate) fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn separators_and_delimiters_are_encoded() {
        assert_eq!(encode_segment("a\\b/c"), "a%5Cb%2Fc");
        assert_eq!(encode_segment("D2:C1:AA:FF:3E:09"), "D2:C1:AA:FF:3E:09");
        assert_eq!(encode_segment("?#% [x]|^"), "%3F%23%25%20%5Bx%5D%7C%5E");
        assert_eq!(encode_segment("ä"), "%C3%A4");
    }
}
