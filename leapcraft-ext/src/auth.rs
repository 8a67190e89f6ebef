//! The token cache: one bearer token per client (shared by its clones), obtained from an
//! [`Exchange`] of the API key, lazily, and again when the token stops working.
//!
//! The API gives tokens no lifetime, so a token is used until a request with it is answered
//! `401`; that caller invalidates it (only if it is still the current one) and the next caller
//! to need a token runs the exchange while every other caller waits for its result. Callers
//! that waited share the outcome, a failure as much as a token: N concurrent callers and a
//! rejected key make one exchange and get N errors. An optional maximum age triggers a refresh
//! earlier; if that refresh fails, the old token is kept for a while.
//!
//! The cache knows nothing of HTTP: it is handed the exchange, and only counts how each token
//! is used ([`Token::first_send`], [`Token::prove`]) so that a `401` can be told apart: a token
//! that other requests used, or that worked, has expired; a fresh one refused at once means
//! the API refuses the tokens it gives.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::error::Error;
use crate::retry::TokenUse;

/// Exchanges the API key for a bearer token.
pub(crate) trait Exchange: Send + Sync + 'static {
    /// A new token, or why none could be had.
    fn exchange(&self) -> BoxFuture<'_, Result<SecretString, Error>>;
}

/// A bearer token, with what the cache knows about it.
pub(crate) struct Token {
    /// Tells tokens apart without comparing secrets.
    pub id: u64,
    pub secret: SecretString,
    /// `Bearer <token>`, ready to send (marked sensitive).
    pub header: HeaderValue,
    /// After this instant a caller refreshes the token first (maximum age).
    refresh_at: Option<Instant>,
    /// Requests sent with it so far.
    sends: AtomicU64,
    /// Some request with it got an answer other than `401`.
    proven: AtomicBool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Notes a request sent with this token; whether it was the first.
    pub fn first_send(&self) -> bool {
        self.sends.fetch_add(1, Ordering::Relaxed) == 0
    }

    /// Notes that a request with this token was answered with something else than `401`.
    pub fn prove(&self) {
        self.proven.store(true, Ordering::Relaxed);
    }

    /// How the token had been used, for a request with it that was answered `401`;
    /// `first_send` is what [`first_send`](Self::first_send) said for that request.
    pub fn use_when_refused(&self, first_send: bool) -> TokenUse {
        let alone = first_send && self.sends.load(Ordering::Relaxed) == 1;
        if alone && !self.proven.load(Ordering::Relaxed) {
            TokenUse::Fresh
        } else {
            TokenUse::Shared
        }
    }

    fn is_fresh(&self) -> bool {
        self.refresh_at.is_none_or(|at| Instant::now() < at)
    }
}

/// What the cache holds between calls.
#[derive(Default)]
struct State {
    current: Option<Arc<Token>>,
    /// Exchanges completed so far: a caller that waited for the lock compares it with the
    /// value it saw before, to use the outcome of an exchange it waited for.
    exchanges: u64,
    /// The last exchange's failure, for the callers that waited for it.
    failure: Option<Error>,
}

/// See the module docs.
pub(crate) struct TokenCache {
    exchange: Box<dyn Exchange>,
    max_age: Option<Duration>,
    state: Mutex<State>,
    /// Held while exchanging: one exchange at a time, for all clones.
    exchanging: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(exchange: impl Exchange, max_age: Option<Duration>) -> Self {
        Self {
            exchange: Box::new(exchange),
            max_age,
            state: Mutex::default(),
            exchanging: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Successful exchanges so far.
    pub fn exchanges(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed) - 1
    }

    /// A token to send: the cached one, or the outcome of an exchange (this caller's, or the
    /// one it waited for).
    pub async fn token(&self) -> Result<Arc<Token>, Error> {
        let seen = {
            let state = self.state();
            if let Some(token) = state.current.as_ref().filter(|t| t.is_fresh()) {
                return Ok(token.clone());
            }
            state.exchanges
        };
        let _exchanging = self.exchanging.lock().await;
        let stale = {
            let state = self.state();
            if state.exchanges != seen {
                // An exchange ended while this caller waited: its outcome is this caller's.
                match (&state.current, &state.failure) {
                    (Some(token), _) if token.is_fresh() => return Ok(token.clone()),
                    (_, Some(failure)) => return Err(failure.clone()),
                    _ => {}
                }
            }
            state.current.clone()
        };
        let outcome = self
            .exchange
            .exchange()
            .await
            .and_then(|secret| self.new_token(secret));
        let mut state = self.state();
        state.exchanges += 1;
        match outcome {
            Ok(token) => {
                state.failure = None;
                tracing::info!(token_id = token.id, "token exchanged");
                state.current = Some(token.clone());
                Ok(token)
            }
            Err(err) => {
                state.failure = Some(err.clone());
                match stale {
                    // A failed refresh never throws away a token that may still work (it was
                    // due by age, not refused): keep it, and try again in a while.
                    Some(old) if old.refresh_at.is_some() => {
                        tracing::warn!(error = %err, "token refresh failed; keeping the current token");
                        let kept = Arc::new(Token {
                            id: old.id,
                            secret: old.secret.clone(),
                            header: old.header.clone(),
                            refresh_at: self.max_age.and_then(|age| {
                                Instant::now().checked_add((age / 10).max(Duration::from_secs(1)))
                            }),
                            sends: AtomicU64::new(old.sends.load(Ordering::Relaxed)),
                            proven: AtomicBool::new(old.proven.load(Ordering::Relaxed)),
                        });
                        state.current = Some(kept.clone());
                        Ok(kept)
                    }
                    _ => Err(err),
                }
            }
        }
    }

    fn new_token(&self, secret: SecretString) -> Result<Arc<Token>, Error> {
        let header = HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
            .ok()
            .filter(|_| !secret.expose_secret().is_empty());
        let Some(mut header) = header else {
            return Err(Error::Decode(Box::new(crate::error::DecodeError {
                operation: "get_access_token",
                path: "token".to_owned(),
                reason: "an empty token, or one that cannot be sent in a header".to_owned(),
                body: String::new(),
            })));
        };
        header.set_sensitive(true);
        Ok(Arc::new(Token {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            secret,
            header,
            refresh_at: self.max_age.and_then(|age| Instant::now().checked_add(age)),
            sends: AtomicU64::new(0),
            proven: AtomicBool::new(false),
        }))
    }

    /// The current token, due for a refresh or not.
    pub fn current(&self) -> Option<Arc<Token>> {
        self.state().current.clone()
    }

    /// Forgets `refused` if it is still the current token (a newer one is kept).
    pub fn invalidate(&self, refused: &Token) {
        let mut state = self.state();
        if state.current.as_ref().is_some_and(|t| t.id == refused.id) {
            tracing::debug!(token_id = refused.id, "token invalidated after 401");
            state.current = None;
        }
    }
}
