//! The config file and its profiles: named sets of connection settings, so that
//! `--profile staging` stands for a base URL, a key and a pace; and how a run's settings are
//! chosen among its flags, its environment, its profile and the defaults ([`resolve`]).
//!
//! The file is TOML, `config.toml` in the platform's config directory (on Linux
//! `$XDG_CONFIG_HOME/leapcraft/` or `~/.config/leapcraft/`, on macOS
//! `~/Library/Application Support/leapcraft/`, on Windows `%APPDATA%\leapcraft\`), or the file
//! `LEAPCRAFT_CONFIG` names:
//!
//! ```toml
//! [profile.default]
//! api-key-file = "~/.config/leapcraft/key"
//!
//! [profile.staging]
//! api-key = "..."          # the file must then be chmod 600
//! base-url = "https://staging.example/v1"
//! max-rps = 20
//! ```
//!
//! A file that holds a key is refused when others than its owner can read it, as ssh refuses
//! such a private key; a key never appears in a message, even when the file cannot be read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use crate::args::ConnectionArgs;
use crate::error::Failure;
use crate::{secrets, values};

/// The environment variable that names the config file, in place of the platform's.
pub const CONFIG_ENV: &str = "LEAPCRAFT_CONFIG";

/// The profile taken when none is named, if the file has it.
pub const DEFAULT_PROFILE: &str = "default";

/// Attempts per call when nothing sets them.
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The longest retry wait honoured when nothing sets it.
const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The longest config file read: far more than any set of profiles.
const MAX_CONFIG: u64 = 1 << 20;

/// The config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// The profiles, by name.
    #[serde(default)]
    profile: BTreeMap<String, Profile>,
}

/// A profile: the settings a run takes when no flag or environment variable gives them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// The API key (redacted in `Debug`).
    #[serde(default, deserialize_with = "secret")]
    pub api_key: Option<SecretString>,
    /// A file holding the API key; `~/` is the home directory, a relative path is taken from
    /// the config file's directory.
    pub api_key_file: Option<PathBuf>,
    /// Base URL of the API.
    pub base_url: Option<String>,
    /// Attempts per API call, 1 to 100.
    pub max_attempts: Option<u32>,
    /// The longest retry wait honoured: seconds, or text such as `"30s"`.
    #[serde(default, deserialize_with = "duration")]
    pub max_retry_wait: Option<Duration>,
    /// At most this many requests a second.
    pub max_rps: Option<f64>,
    /// Allow plain `http://` to a host other than loopback.
    pub allow_insecure_http: Option<bool>,
}

/// A profile as chosen for a run: its name and the file it is in.
#[derive(Debug)]
pub struct Chosen {
    /// Its name.
    pub name: String,
    /// The config file.
    pub file: PathBuf,
    /// Its settings.
    pub profile: Profile,
}

/// Where the API key of a run comes from.
#[derive(Debug)]
pub enum Key {
    /// Given as is (a flag, the environment, a profile).
    Given(SecretString),
    /// In a file, to read with [`secrets::read_key_file`].
    File {
        /// The file.
        path: PathBuf,
        /// What named it, for messages.
        named_by: String,
    },
}

/// The connection settings of a run, each from the first that sets it: its flag, its
/// environment variable, the profile, its default.
#[derive(Debug)]
pub struct Settings {
    /// The API key, if any source gives one.
    pub key: Option<Key>,
    /// The base URL, if any source gives one (else the SDK's default).
    pub base_url: Option<String>,
    /// Attempts per call.
    pub max_attempts: u32,
    /// The longest retry wait honoured.
    pub max_retry_wait: Duration,
    /// A fixed rate of requests a second, if any.
    pub max_rps: Option<f64>,
    /// Whether plain `http://` to another host than loopback is allowed.
    pub allow_insecure_http: bool,
}

/// The settings of a run from its flags and environment (as clap gives both in `given`:
/// a flag over its variable) and the chosen profile, if any.
pub fn resolve(given: &ConnectionArgs, chosen: Option<&Chosen>) -> Settings {
    let profile = chosen.map(|c| &c.profile);
    let from_profile = |field: fn(&Profile) -> Option<Key>| profile.and_then(field);
    let key = match (&given.api_key_file, &given.api_key) {
        (Some(path), _) => Some(Key::File {
            path: path.clone(),
            named_by: "--api-key-file".to_owned(),
        }),
        (None, Some(key)) => Some(Key::Given(key.clone())),
        (None, None) => from_profile(|p| p.api_key.clone().map(Key::Given)).or_else(|| {
            let chosen = chosen?;
            let path = chosen.profile.api_key_file.as_ref()?;
            Some(Key::File {
                path: beside(&chosen.file, path),
                named_by: format!("profile `{}`: api-key-file", chosen.name),
            })
        }),
    };
    Settings {
        key,
        base_url: given
            .base_url
            .clone()
            .or_else(|| profile.and_then(|p| p.base_url.clone())),
        max_attempts: given
            .max_attempts
            .or_else(|| profile.and_then(|p| p.max_attempts))
            .unwrap_or(DEFAULT_MAX_ATTEMPTS),
        max_retry_wait: given
            .max_retry_wait
            .or_else(|| profile.and_then(|p| p.max_retry_wait))
            .unwrap_or(DEFAULT_MAX_RETRY_WAIT),
        max_rps: given.max_rps.or_else(|| profile.and_then(|p| p.max_rps)),
        allow_insecure_http: given.allow_insecure_http
            || profile.is_some_and(|p| p.allow_insecure_http == Some(true)),
    }
}

/// `path` as named in the config file `config`: `~/` is the home directory, a relative path
/// starts in the config file's directory.
fn beside(config: &Path, path: &Path) -> PathBuf {
    if let Ok(in_home) = path.strip_prefix("~")
        && let Some(home) = directories::BaseDirs::new()
    {
        return home.home_dir().join(in_home);
    }
    match config.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

/// Where the config file is, and whether `LEAPCRAFT_CONFIG` named it.
fn location() -> Option<(PathBuf, bool)> {
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => Some((PathBuf::from(path), true)),
        _ => directories::BaseDirs::new().map(|dirs| {
            (
                dirs.config_dir().join("leapcraft").join("config.toml"),
                false,
            )
        }),
    }
}

/// The profile a run takes: the one `name`d (`--profile`, `LEAPCRAFT_PROFILE`), or else
/// `default` if the config file has it; none when there is no config file and no name.
pub fn choose(name: Option<&str>) -> Result<Option<Chosen>, Failure> {
    let Some((file, named)) = location() else {
        return match name {
            None => Ok(None),
            Some(name) => Err(Failure::Usage(format!(
                "--profile {name}: no config directory (no home directory); set {CONFIG_ENV}"
            ))),
        };
    };
    let shown = file.display();
    let fail = |why: String| Failure::Usage(format!("config file {shown}: {why}"));
    if !named && !file.exists() {
        return match name {
            None => Ok(None),
            Some(name) => Err(fail(format!(
                "there is none, so no profile `{name}` (write one, or set {CONFIG_ENV})"
            ))),
        };
    }
    let read = secrets::read_text(&file, MAX_CONFIG).map_err(fail)?;
    let mut config: ConfigFile =
        toml::from_str(&read.text).map_err(|e| fail(toml_error(&read.text, &e)))?;
    for (profile_name, profile) in &config.profile {
        profile
            .check()
            .map_err(|why| fail(format!("profile `{profile_name}`: {why}")))?;
    }
    if config.profile.values().any(|p| p.api_key.is_some()) {
        read.private
            .map_err(|why| fail(format!("it holds an API key, and {why}")))?;
    }
    let wanted = name.unwrap_or(DEFAULT_PROFILE);
    match config.profile.remove(wanted) {
        Some(profile) => {
            tracing::debug!(profile = wanted, file = %shown, "settings from the profile");
            Ok(Some(Chosen {
                name: wanted.to_owned(),
                file: file.clone(),
                profile,
            }))
        }
        None if name.is_none() => Ok(None),
        None => {
            let known: Vec<String> = config.profile.keys().map(|k| format!("`{k}`")).collect();
            Err(fail(format!(
                "no profile `{wanted}`; {}",
                if known.is_empty() {
                    "it has no profile ([profile.NAME] tables)".to_owned()
                } else {
                    format!("its profiles: {}", known.join(", "))
                }
            )))
        }
    }
}

impl Profile {
    /// Whether the settings hold together and are in range.
    fn check(&self) -> Result<(), String> {
        if self.api_key.is_some() && self.api_key_file.is_some() {
            return Err("it sets both api-key and api-key-file: keep one".to_owned());
        }
        if let Some(n) = self.max_attempts
            && !(1..=100).contains(&n)
        {
            return Err(format!("max-attempts = {n}: not from 1 to 100"));
        }
        if let Some(rate) = self.max_rps {
            values::positive_rate(&rate.to_string()).map_err(|e| format!("max-rps: {e}"))?;
        }
        Ok(())
    }
}

/// A TOML error as one line: where, and what, without the file's text (which may hold a
/// key) that the error's own `Display` quotes.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end_matches('.');
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

/// A key: text only, and never shown in an error (serde's would quote a number or a table).
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    match Text::deserialize(d)? {
        Text::Text(key) => Ok(Some(SecretString::from(key))),
        Text::Other(_) => Err(serde::de::Error::custom(
            "api-key must be text, in quotes (its value is not shown)",
        )),
    }
}

/// A span of time: a number of seconds, or text as the flags take it (`"30s"`, `"2m"`).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Span {
        Seconds(f64),
        Text(String),
    }
    let text = match Span::deserialize(d).map_err(|_| {
        serde::de::Error::custom("max-retry-wait must be a number of seconds, or text like \"30s\"")
    })? {
        Span::Seconds(seconds) => seconds.to_string(),
        Span::Text(text) => text,
    };
    values::duration(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("max-retry-wait: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn given(args: &[(&str, &str)]) -> ConnectionArgs {
        let mut given = ConnectionArgs::default();
        for (name, value) in args {
            match *name {
                "api-key" => given.api_key = Some(SecretString::from(value.to_string())),
                "api-key-file" => given.api_key_file = Some(value.into()),
                "base-url" => given.base_url = Some(value.to_string()),
                "max-attempts" => given.max_attempts = Some(value.parse().unwrap()),
                "max-retry-wait" => given.max_retry_wait = Some(values::duration(value).unwrap()),
                "max-rps" => given.max_rps = Some(value.parse().unwrap()),
                "allow-insecure-http" => given.allow_insecure_http = true,
                other => panic!("no flag {other}"),
            }
        }
        given
    }

    fn profile(toml_text: &str) -> Chosen {
        Chosen {
            name: "p".to_owned(),
            file: PathBuf::from("/etc/leapcraft/config.toml"),
            profile: toml::from_str(toml_text).unwrap(),
        }
    }

    /// The key as a test can compare it: `key:TEXT` or `file:PATH (named by)`.
    fn key(settings: &Settings) -> String {
        match &settings.key {
            None => "none".to_owned(),
            Some(Key::Given(k)) => format!("key:{}", k.expose_secret()),
            Some(Key::File { path, named_by }) => {
                format!("file:{} ({named_by})", path.display())
            }
        }
    }

    /// Flags and environment as `(flag, value)`, a profile's TOML, the settings resolved.
    type Row = (
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
        &'static str,
    );

    #[test]
    fn a_flag_or_variable_beats_the_profile_which_beats_the_default() {
        let table: [Row; 12] = [
            (&[], None, "none https? 5 30s None false"),
            (&[], Some(""), "none https? 5 30s None false"),
            (
                &[],
                Some(
                    "api-key = \"P\"\nbase-url = \"https://p/v1\"\nmax-attempts = 2\nmax-retry-wait = \"1m\"\nmax-rps = 3.5\nallow-insecure-http = true",
                ),
                "key:P https://p/v1 2 1m Some(3.5) true",
            ),
            (
                &[
                    ("api-key", "F"),
                    ("base-url", "https://f/v1"),
                    ("max-attempts", "9"),
                    ("max-retry-wait", "2s"),
                    ("max-rps", "7"),
                ],
                Some(
                    "api-key = \"P\"\nbase-url = \"https://p/v1\"\nmax-attempts = 2\nmax-retry-wait = 60\nmax-rps = 3.5",
                ),
                "key:F https://f/v1 9 2s Some(7.0) false",
            ),
            (
                &[("api-key", "F")],
                Some("api-key-file = \"key\""),
                "key:F https? 5 30s None false",
            ),
            (
                &[("api-key-file", "/k")],
                Some("api-key = \"P\""),
                "file:/k (--api-key-file) https? 5 30s None false",
            ),
            (
                &[("api-key", "F"), ("api-key-file", "/k")],
                None,
                "file:/k (--api-key-file) https? 5 30s None false",
            ),
            (
                &[],
                Some("api-key-file = \"keys/prod\""),
                "file:/etc/leapcraft/keys/prod (profile `p`: api-key-file) https? 5 30s None false",
            ),
            (
                &[],
                Some("api-key-file = \"/secure/key\""),
                "file:/secure/key (profile `p`: api-key-file) https? 5 30s None false",
            ),
            (
                &[("base-url", "https://f/v1")],
                Some("max-rps = 1"),
                "none https://f/v1 5 30s Some(1.0) false",
            ),
            (
                &[("allow-insecure-http", "")],
                Some("allow-insecure-http = false"),
                "none https? 5 30s None true",
            ),
            (
                &[("max-attempts", "1")],
                Some("max-attempts = 100"),
                "none https? 1 30s None false",
            ),
        ];
        for (flags, profile_text, expected) in table {
            let chosen = profile_text.map(profile);
            let settings = resolve(&given(flags), chosen.as_ref());
            let resolved = format!(
                "{} {} {} {} {:?} {}",
                key(&settings),
                settings.base_url.as_deref().unwrap_or("https?"),
                settings.max_attempts,
                humantime::format_duration(settings.max_retry_wait),
                settings.max_rps,
                settings.allow_insecure_http,
            );
            assert_eq!(
                resolved, expected,
                "flags {flags:?}, profile {profile_text:?}"
            );
        }
    }

    #[test]
    fn a_key_never_shows_in_debug_or_in_errors() {
        let chosen = profile("api-key = \"sekrit-123\"");
        assert!(!format!("{chosen:?}").contains("sekrit"), "{chosen:?}");
        let settings = resolve(&ConnectionArgs::default(), Some(&chosen));
        assert!(!format!("{settings:?}").contains("sekrit"), "{settings:?}");

        for text in [
            "[profile.a]\napi-key = 98765432\n",
            "[profile.a]\napi-key = [\"sekrit-123\"]\n",
            "[profile.a]\napi-key = \"sekrit-123\n",
            "[profile.a]\napi-key = 'sekrit-123\nbase-url = 1\n",
            "[profile.a]\napi-key = \"sekrit-123\"\napi-key = \"sekrit-456\"\n",
        ] {
            let e = toml::from_str::<ConfigFile>(text).unwrap_err();
            let shown = toml_error(text, &e);
            assert!(
                !shown.contains("sekrit") && !shown.contains("98765432"),
                "{text:?}: {shown}"
            );
            assert!(shown.starts_with("line "), "{shown}");
        }
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = "[profile.a]\nbase-url = \"https://x/v1\"\nmax-rsp = 3\n";
        let e = toml::from_str::<ConfigFile>(text).unwrap_err();
        let shown = toml_error(text, &e);
        assert!(
            shown.starts_with("line 3:") && shown.contains("unknown field `max-rsp`"),
            "{shown}"
        );
    }
}
