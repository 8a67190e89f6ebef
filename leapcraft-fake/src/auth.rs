//! Authentication: API keys, the bearer tokens exchanged for them, and their expiry.
//!
//! A token expires after a configurable number of uses and/or a configurable lifetime, both
//! unlimited by default. Lifetimes are measured on an adjustable clock (real elapsed time plus
//! an offset that [`crate::FakeServer::advance_clock`] moves forward), so tests can expire
//! tokens without sleeping; [`crate::FakeServer::expire_tokens`] expires every token at once.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::rng::mix;

/// The API key accepted when none is configured.
pub const DEMO_KEY: &str = "demo-key";

/// A clock for token lifetimes: real elapsed time plus an offset tests can advance.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    offset_ms: AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            start: Instant::now(),
            offset_ms: AtomicU64::new(0),
        }
    }

    /// Time since the clock started, offset included.
    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(
            by.as_millis().min(u128::from(u64::MAX / 2)) as u64,
            Ordering::Relaxed,
        );
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Missing,
    Malformed,
    Unknown,
    Expired,
}

impl Rejection {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Rejection::Missing => "Missing Authorization header",
            Rejection::Malformed => "Malformed Authorization header: expected `Bearer <token>`",
            Rejection::Unknown => "Invalid token",
            Rejection::Expired => "Token expired",
        }
    }
}

#[derive(Debug)]
struct TokenState {
    uses: u64,
    issued_at: Duration,
    expired: bool,
}

/// Why an API key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRefusal {
    Unknown,
    Revoked,
}

impl KeyRefusal {
    pub(crate) fn message(self) -> &'static str {
        match self {
            KeyRefusal::Unknown => "Invalid API key",
            KeyRefusal::Revoked => "API key revoked",
        }
    }
}

/// Keys, issued tokens and the expiry policy.
#[derive(Debug)]
pub(crate) struct TokenStore {
    keys: Vec<String>,
    /// Exchanges allowed before the keys are revoked (`u64::MAX`: never).
    exchanges_allowed: AtomicU64,
    max_uses: Option<u64>,
    ttl: Option<Duration>,
    clock: Clock,
    tokens: Mutex<HashMap<String, TokenState>>,
    random: RandomState,
    issued: AtomicU64,
}

impl TokenStore {
    pub(crate) fn new(keys: Vec<String>, max_uses: Option<u64>, ttl: Option<Duration>) -> Self {
        TokenStore {
            keys,
            exchanges_allowed: AtomicU64::new(u64::MAX),
            max_uses,
            ttl,
            clock: Clock::new(),
            tokens: Mutex::new(HashMap::new()),
            random: RandomState::new(),
            issued: AtomicU64::new(0),
        }
    }

    pub(crate) fn first_key(&self) -> &str {
        self.keys.first().map_or(DEMO_KEY, String::as_str)
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Revokes the keys once this many tokens were issued in all (at once if as many were).
    pub(crate) fn revoke_after(&self, exchanges: u64) {
        self.exchanges_allowed.store(exchanges, Ordering::Relaxed);
    }

    /// Revokes the keys now: tokens issued so far keep working until they expire.
    pub(crate) fn revoke_now(&self) {
        self.revoke_after(self.issued.load(Ordering::Relaxed));
    }

    /// Exchanges a key for a fresh token.
    pub(crate) fn exchange(&self, key: &str) -> Result<String, KeyRefusal> {
        if !self.keys.iter().any(|k| k == key) {
            return Err(KeyRefusal::Unknown);
        }
        let allowed = self.exchanges_allowed.load(Ordering::Relaxed);
        let n = self
            .issued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < allowed).then_some(n + 1)
            })
            .map_err(|_| KeyRefusal::Revoked)?;
        // Randomly keyed per process (RandomState), unique per exchange (the counter).
        let a = self.random.hash_one(n);
        let b = mix(a ^ n);
        let c = self.random.hash_one((n, b));
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let tail: String = (0..10)
            .map(|k| ALNUM[((c >> (k * 6)) % 62) as usize] as char)
            .collect();
        let token = format!("{a:016x}{b:016x}{tail}");
        let state = TokenState {
            uses: 0,
            issued_at: self.clock.now(),
            expired: false,
        };
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), state);
        Ok(token)
    }

    /// Checks an `Authorization` header value and counts one use of its token.
    pub(crate) fn authorize(&self, header: Option<&[u8]>) -> Result<(), Rejection> {
        let header = header.ok_or(Rejection::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| Rejection::Malformed)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(Rejection::Malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(Rejection::Malformed);
        }
        let now = self.clock.now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let state = tokens.get_mut(token).ok_or(Rejection::Unknown)?;
        let too_old = self
            .ttl
            .is_some_and(|ttl| now.saturating_sub(state.issued_at) >= ttl);
        let used_up = self.max_uses.is_some_and(|max| state.uses >= max);
        if state.expired || too_old || used_up {
            state.expired = true;
            return Err(Rejection::Expired);
        }
        state.uses += 1;
        Ok(())
    }

    /// Expires every token issued so far.
    pub(crate) fn expire_all(&self) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        for state in tokens.values_mut() {
            state.expired = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_and_ttl_expire_tokens() {
        let store = TokenStore::new(vec!["k".into()], Some(2), Some(Duration::from_secs(10)));
        assert_eq!(store.exchange("nope"), Err(KeyRefusal::Unknown));
        let t = store.exchange("k").unwrap();
        let h = format!("Bearer {t}");
        assert!(store.authorize(Some(h.as_bytes())).is_ok());
        assert!(store.authorize(Some(h.as_bytes())).is_ok());
        assert_eq!(store.authorize(Some(h.as_bytes())), Err(Rejection::Expired));
        let t2 = store.exchange("k").unwrap();
        assert_ne!(t, t2);
        let h2 = format!("bearer {t2}");
        assert!(store.authorize(Some(h2.as_bytes())).is_ok());
        store.clock().advance(Duration::from_secs(10));
        assert_eq!(
            store.authorize(Some(h2.as_bytes())),
            Err(Rejection::Expired)
        );
        store.revoke_after(3);
        assert!(store.exchange("k").is_ok());
        assert_eq!(store.exchange("k"), Err(KeyRefusal::Revoked));
        assert_eq!(store.authorize(None), Err(Rejection::Missing));
        assert_eq!(
            store.authorize(Some(b"Basic abc")),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            store.authorize(Some(b"Bearer nope")),
            Err(Rejection::Unknown)
        );
    }
}
