//! Request paths and URLs of the generated code: path parameters checked and
//! percent-encoded (in place of progenitor's `encode_path`), and the URL built from the
//! client's base URL parsed once (in place of reqwest parsing each URL string). The xtask
//! rewrites the generated calls.
//!
//! progenitor's set leaves `\` alone, which URL parsers read as `/` in `http(s)` URLs: an id
//! `a\b` would reach `/devices/a/b`. This set is progenitor's plus `\`, `^`, `|`, `[` and `]`.
//! Three values no encoding can carry are refused: the empty string (`/devices/` is another
//! resource), and `.` and `..`, which URL parsers resolve as dot segments (even as `%2E%2E`):
//! `get_device("..")` would request the API's root.

use std::sync::OnceLock;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::Url;

use crate::Client;

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

/// The URL `full` (the client's base URL followed by an operation's path, as the generated
/// code formats it), parsed.
///
/// Parsing a whole URL is most of the cost of building a request (the host goes through IDNA
/// processing each time), so where it gives the same URL, this sets the path of the client's
/// base URL, parsed once, instead.
pub(crate) fn url(client: &Client, full: &str) -> Result<Url, String> {
    if let Some(base) = client.inner.parsed_base().get(&client.baseurl)
        && let Some(path) = full.strip_prefix(client.baseurl.as_str())
        // Where both parsers agree: a path of visible ASCII (no query, no fragment).
        && (path.is_empty() || path.starts_with('/'))
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
    {
        let mut url = base.url.clone();
        url.set_path(&[base.path.as_str(), path].concat());
        return Ok(url);
    }
    Url::parse(full).map_err(|e| format!("cannot build the request URL: {e}"))
}

/// A client's base URL, parsed on first use, for [`url`]; empty if it cannot serve as one.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParsedBase(OnceLock<Option<Base>>);

#[derive(Clone, Debug)]
struct Base {
    /// The base URL as the client holds it.
    text: String,
    url: Url,
    /// The path that `text` ends with: what an operation's path is appended to.
    path: String,
}

impl ParsedBase {
    /// The parsed base URL, if it is `text` (a `Hooks` value may move to another client) and
    /// appending a path to `text` only appends to its path.
    fn get(&self, text: &str) -> Option<&Base> {
        let base = self.0.get_or_init(|| Base::parse(text)).as_ref()?;
        (base.text == text).then_some(base)
    }
}

impl Base {
    fn parse(text: &str) -> Option<Self> {
        let url = Url::parse(text).ok()?;
        // The schemes reqwest sends (others it refuses, after parsing the whole URL).
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return None;
        }
        // The URL must read back as `text` (nothing normalised away), but for the `/` of an
        // empty path, which the parser adds.
        let path = if url.as_str() == text {
            url.path().to_owned()
        } else if url.path() == "/" && url.as_str().strip_suffix('/') == Some(text) {
            String::new()
        } else {
            return None;
        };
        Some(Self {
            text: text.to_owned(),
            url,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{ParsedBase, Url, encode_segment, segment, url};
    use crate::{Client, Hooks};

    /// Base URLs that are parsed once: appending a path to their text appends to their path.
    const PARSED_ONCE: &[&str] = &[
        "http://127.0.0.1:8080/v1",
        "https://api.leapcraft.com/v1",
        "https://api.leapcraft.com",
        "https://api.leapcraft.com/",
        "https://h.example/a/b/",
        "http://[::1]:9/v1",
        "http://h",
    ];

    /// Base URLs parsed with each request's path: they parse to something else than their
    /// text, are not http(s), or are no URL at all.
    const PARSED_EACH_TIME: &[&str] = &[
        "HTTPS://API.Leapcraft.com/V1",
        "https://h.example:443/v1",
        "https://bücher.example/v1",
        "https://h.example/v1?x=1",
        "https://h.example/v1#f",
        "https://h.example/%7e/./v1",
        "https://h.example/a b",
        "mailto:someone",
        "file:///tmp",
        "not a url",
        "",
    ];

    fn client(base: &str) -> Client {
        // One HTTP client for all: building one loads the TLS roots.
        static HTTP: std::sync::LazyLock<reqwest::Client> =
            std::sync::LazyLock::new(reqwest::Client::new);
        Client::new_with_client(base, HTTP.clone(), Hooks::default())
    }

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

    #[test]
    fn usual_base_urls_are_parsed_once() {
        for base in PARSED_ONCE {
            assert!(ParsedBase::default().get(base).is_some(), "{base}");
        }
        for base in PARSED_EACH_TIME {
            assert!(ParsedBase::default().get(base).is_none(), "{base}");
        }
        // A `Hooks` value moved to a client with another base URL does not reuse the first.
        let hooks = Hooks::default();
        assert!(hooks.parsed_base().get("http://a.example/v1").is_some());
        assert!(hooks.parsed_base().get("http://b.example/v1").is_none());
    }

    proptest! {
        /// The URL built from the parsed base is the URL the whole string parses to.
        #[test]
        fn urls_are_what_parsing_the_whole_string_gives(
            base in proptest::sample::select([PARSED_ONCE, PARSED_EACH_TIME].concat()),
            path in prop_oneof![
                "(/[a-zA-Z0-9._~%:@!$&'()*+,;=-]{0,12}){0,4}",
                "[ -~\\t\\né%]{0,24}",
                any::<String>(),
            ],
            id in any::<String>(),
        ) {
            let client = client(base);
            for path in [path.clone(), format!("/devices/{}", encode_segment(&id))] {
                let full = format!("{base}{path}");
                let expected = Url::parse(&full);
                // Twice: the first call parses the base URL, the second reuses it.
                for _ in 0..2 {
                    match (&expected, url(&client, &full)) {
                        (Ok(expected), Ok(built)) => {
                            prop_assert_eq!(built.as_str(), expected.as_str())
                        }
                        (Err(_), Err(_)) => {}
                        (expected, built) => {
                            prop_assert!(false, "{full:?}: parsed {expected:?}, built {built:?}")
                        }
                    }
                }
            }
        }
    }
}
