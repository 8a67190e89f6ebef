//! The token cache: one bearer token per client (shared by its clones), exchanged for the API
//! key lazily, refreshed once for all callers when it stops working.
//!
//! The API gives tokens no lifetime, so a token is used until a call is answered `401`; the
//! first caller to see that invalidates it (only if it is still the current one) and the next
//! caller to need a token exchanges the key again while the others wait for its result. An
//! optional maximum age triggers a refresh earlier; if that refresh fails, the old token is
//! kept.
//!
//! A token remembers whether it ever worked (`proven`): the transport refreshes again when a
//! token that worked is refused later in the same call (it expired during the call's retries),
//! but a fresh token refused at once is an authentication error, not a reason to loop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::call::CallRecord;
use crate::error::{AuthError, AuthErrorKind, Error};

/// A bearer token, with what the cache needs to know about it.
pub(crate) struct Token {
    /// Tells tokens apart without comparing secrets.
    pub id: u64,
    pub secret: Arc<SecretString>,
    /// `Bearer <token>`, ready to send (marked sensitive).
    pub header: HeaderValue,
    /// After this instant a call should try to refresh the token first (maximum age).
    refresh_at: Option<Instant>,
    /// Some call got an answer other than 401 with it: a later 401 means it expired.
    pub proven: AtomicBool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// See the module docs.
pub(crate) struct TokenCache {
    api_key: Arc<SecretString>,
    max_age: Option<Duration>,
    current: Mutex<Option<Arc<Token>>>,
    /// Held while exchanging: one exchange at a time, for all clones.
    refresh: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("api_key", &"[redacted]")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(api_key: SecretString, max_age: Option<Duration>) -> Self {
        Self {
            api_key: Arc::new(api_key),
            max_age,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn api_key(&self) -> &Arc<SecretString> {
        &self.api_key
    }

    fn current(&self) -> Option<Arc<Token>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_current(&self, token: Option<Arc<Token>>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }

    fn is_fresh(token: &Token) -> bool {
        token.refresh_at.is_none_or(|at| Instant::now() < at)
    }

    /// The current token, unless there is none or it is due for a refresh.
    pub fn cached(&self) -> Option<Arc<Token>> {
        self.current().filter(|t| Self::is_fresh(t))
    }

    /// A token to call with: the cached one, or a new one from an exchange.
    pub async fn token(&self, client: &leapcraft_api::Client) -> Result<Arc<Token>, Error> {
        match self.cached() {
            Some(token) => Ok(token),
            // Boxed: the exchange's future is large, and every call's future would carry it.
            None => Box::pin(self.refresh(client)).await,
        }
    }

    /// The slow path of [`token`](Self::token): waits for an exchange in progress, or makes one.
    async fn refresh(&self, client: &leapcraft_api::Client) -> Result<Arc<Token>, Error> {
        let _exchanging = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        let stale = match self.current() {
            Some(token) if Self::is_fresh(&token) => return Ok(token),
            other => other,
        };
        match self.exchange(client).await {
            Ok(token) => {
                if stale.is_some() {
                    tracing::info!(
                        token_id = token.id,
                        "token refreshed: it reached its maximum age"
                    );
                }
                self.set_current(Some(token.clone()));
                Ok(token)
            }
            Err(err) => match stale {
                // A failed refresh never throws away a token that works: keep it, and try
                // again after a while rather than on every call.
                Some(old) => {
                    tracing::warn!(error = %err, "token refresh failed; keeping the current token");
                    let kept = Arc::new(Token {
                        id: old.id,
                        secret: old.secret.clone(),
                        header: old.header.clone(),
                        refresh_at: self
                            .max_age
                            .map(|age| Instant::now() + (age / 10).max(Duration::from_secs(1))),
                        proven: AtomicBool::new(old.proven.load(Ordering::Relaxed)),
                    });
                    self.set_current(Some(kept.clone()));
                    Ok(kept)
                }
                None => Err(err),
            },
        }
    }

    /// Forgets `failed` if it is still the current token (a newer one is kept).
    pub fn invalidate(&self, failed: &Token) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|t| t.id == failed.id) {
            tracing::debug!(token_id = failed.id, "token invalidated after 401");
            *current = None;
        }
    }

    /// Exchanges the API key for a token, through the client's own transport (so transient
    /// failures are retried), in a call record of its own.
    async fn exchange(&self, client: &leapcraft_api::Client) -> Result<Arc<Token>, Error> {
        const OPERATION: &str = crate::transport::TOKEN_EXCHANGE;
        // The exchange is part of the call that needs the token: it shares its deadline.
        let deadline = CallRecord::current_deadline();
        let record = CallRecord::new(OPERATION, deadline, &self.api_key);
        let body = leapcraft_api::types::TokenRequest {
            api_key: self.api_key.expose_secret().to_owned(),
        };
        tracing::debug!("exchanging the API key for a token");
        let (result, mut record) = record
            .run(client.get_access_token().body(body).send())
            .await;
        match result {
            Ok(response) => {
                let token = response.into_inner().token;
                let header = HeaderValue::try_from(format!("Bearer {token}"))
                    .ok()
                    .filter(|_| !token.is_empty());
                let Some(mut header) = header else {
                    return Err(Error::invalid_exchange(
                        "the token exchange returned an empty token, or one that cannot be sent in a header",
                    ));
                };
                header.set_sensitive(true);
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    token_id = id,
                    attempts = record.progress.attempts,
                    "token exchanged"
                );
                Ok(Arc::new(Token {
                    id,
                    secret: Arc::new(SecretString::from(token)),
                    header,
                    refresh_at: self.max_age.map(|age| Instant::now() + age),
                    proven: AtomicBool::new(false),
                }))
            }
            Err(err) => {
                let status = err.status().or(record.status);
                if matches!(status.map(|s| s.as_u16()), Some(401 | 403)) {
                    record.key_rejected = true;
                    let message = record.body_message().map(|m| record.redact(&m));
                    return Err(Error::Auth(Box::new(AuthError {
                        kind: AuthErrorKind::KeyRejected,
                        operation: OPERATION,
                        status,
                        message,
                    })));
                }
                Err(Error::from_generated(err, &record, |_| None))
            }
        }
    }
}

impl Error {
    fn invalid_exchange(reason: &str) -> Self {
        Error::Decode(Box::new(crate::error::DecodeError {
            operation: crate::transport::TOKEN_EXCHANGE,
            path: "token".to_owned(),
            reason: reason.to_owned(),
            body: String::new(),
        }))
    }
}
