//! Server text made harmless where it lands: control characters shown escaped on a terminal,
//! spreadsheet formulas neutralised in CSV.
//!
//! Device names, serials, messages and metric keys come from the server and may hold
//! terminal escape sequences (`ESC ]52` writes the clipboard, `ESC [2J` clears the screen) or
//! formulas a spreadsheet would run (`=HYPERLINK(...)`, `+cmd|...`).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as is: the C0 and C1 controls (ESC, BEL, carriage
/// return... included), DEL, and the bidirectional overrides that reorder what a line shows.
fn is_unsafe_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal would act on written as a visible escape, such as
/// `\u{1b}` for ESC.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_on_terminal(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text with the characters serde_json leaves raw in strings but a terminal may act on
/// (DEL and the C1 controls) written as `\u00XX` escapes: the same JSON value, safe to show.
/// JSON text holds such characters only inside strings, where the escape means the same.
pub fn json_for_terminal(json: String) -> String {
    if !json
        .chars()
        .any(|c| c.is_control() && !c.is_ascii_whitespace())
    {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_control() && !c.is_ascii_whitespace() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// A CSV cell a spreadsheet shows as text: a cell that starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return, and is not a number, gets a leading `'` (as the OWASP guidance on
/// CSV injection recommends). Numbers such as `-12.5` are left alone.
pub fn for_spreadsheet(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !is_number(cell) => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// A plain decimal number (`-12.5`, `+3`, `1e-3`), not `-inf` or `NaN`.
fn is_number(cell: &str) -> bool {
    cell.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && cell.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_has_no_control_characters() {
        let hostile = "a\u{1b}]52;c;Y2FsYw==\u{7}b\u{1b}[2Jc\rd\u{9b}e\u{7f}f\u{202e}g\nh";
        let safe = for_terminal(hostile);
        assert!(!safe.chars().any(is_unsafe_on_terminal), "{safe}");
        assert_eq!(
            safe,
            "a\\u{1b}]52;c;Y2FsYw==\\u{7}b\\u{1b}[2Jc\\u{d}d\\u{9b}e\\u{7f}f\\u{202e}g\\u{a}h"
        );
        assert!(matches!(for_terminal("Room 3 — 21 °C"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_the_same_value() {
        let value = serde_json::json!({"name": "x\u{9b}2J\u{7f}\u{1b}y", "n": [1, 2]});
        let text = json_for_terminal(serde_json::to_string_pretty(&value).unwrap());
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
        assert!(
            text.contains("\\u009b") && text.contains("\\u001b"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn spreadsheet_formulas_are_neutralised() {
        for (cell, expected) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-inf", "'-inf"),
            ("-12.5", "-12.5"),
            ("+3", "+3"),
            ("-1e-3", "-1e-3"),
            ("Room = 3", "Room = 3"),
            ("", ""),
        ] {
            assert_eq!(for_spreadsheet(cell), expected, "{cell:?}");
        }
    }
}
