//! Authentication: the token cache, and [`TokenCache::authenticated`], the one step that sends
//! a request with a bearer token and owns what a `401` means.
//!
//! One bearer token per client (shared by its clones), obtained from an [`Exchange`] of the
//! API key, lazily, and again when the token stops working. One exchange runs at a time; the
//! callers that need a token meanwhile wait for it and share its outcome, a failure as much
//! as a token: N concurrent callers and a rejected key make one exchange and get N errors.
//! The exchange is a shared future that every waiter polls, so it goes on as long as anyone
//! waits, whichever of them is polled: a caller left unpolled cannot stall the others. An
//! optional maximum age triggers a refresh earlier; if that refresh fails, the old token is
//! kept for a while.
//!
//! The API gives tokens no lifetime, so a token is used until a request with it is answered
//! `401`. [`TokenCache::authenticated`] then drops the token (only if it is still the current
//! one), gets a fresh one and resends: a refresh, which is not a retry and spends nothing of
//! the call's attempts. It gives up, handing back the `401`, only when refreshing makes no
//! progress: a fresh token refused before anything else used it, twice with no token proven
//! in between (the API refuses the tokens it gives), [`MAX_IDLE_REFRESHES`] refreshes in a
//! row with no request of the client accepted meanwhile, or [`MAX_REFRESHES`] in all. The
//! call's deadline bounds it too (the pipeline's).
//!
//! The cache knows nothing of HTTP: it is handed the exchange, and a function that sends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::error::Error;

/// Refreshes of one call in a row during which no request of the client was accepted: past
/// this, the `401` is the call's outcome.
pub(crate) const MAX_IDLE_REFRESHES: u32 = 4;
/// Refreshes of one call in all, whatever else happens: a bound against a server that
/// accepts and refuses tokens at random.
pub(crate) const MAX_REFRESHES: u32 = 64;

/// Exchanges the API key for a bearer token.
pub(crate) trait Exchange: Send + Sync + 'static {
    /// A new token, or why none could be had.
    fn exchange(&self) -> BoxFuture<'static, Result<SecretString, Error>>;
}

/// How the API took the token of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It answered with something other than `401`: the token works.
    Accepted,
    /// It answered `401`.
    Refused,
    /// No answer (a timeout, a broken connection): nothing learned.
    Unknown,
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
    /// Whether only one request used the token and no answer proved it ever worked, for a
    /// request with it that was answered `401`; `first_send` is whether that request was
    /// the token's first.
    fn refused_alone(&self, first_send: bool) -> bool {
        first_send
            && self.sends.load(Ordering::Relaxed) == 1
            && !self.proven.load(Ordering::Relaxed)
    }

    fn is_fresh(&self) -> bool {
        self.refresh_at.is_none_or(|at| Instant::now() < at)
    }
}

/// An exchange under way, shared by everyone who waits for it.
type Pending = Shared<BoxFuture<'static, Result<Arc<Token>, Error>>>;

/// What the cache holds between calls.
#[derive(Default)]
struct State {
    current: Option<Arc<Token>>,
    /// The exchange under way, if any.
    pending: Option<Pending>,
}

/// What the cache and the exchanges it starts share.
#[derive(Default)]
struct Shelf {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Requests accepted with any token so far.
    accepted: AtomicU64,
}

impl Shelf {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// See the module docs.
pub(crate) struct TokenCache {
    exchange: Arc<dyn Exchange>,
    max_age: Option<Duration>,
    shelf: Arc<Shelf>,
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
            exchange: Arc::new(exchange),
            max_age,
            shelf: Arc::new(Shelf {
                next_id: AtomicU64::new(1),
                ..Shelf::default()
            }),
        }
    }

    /// Successful exchanges so far.
    pub fn exchanges(&self) -> u64 {
        self.shelf.next_id.load(Ordering::Relaxed) - 1
    }

    /// Sends with a token, through `send`, and refreshes the token and sends again while the
    /// API refuses tokens that had worked (see the module docs). The outcome of the last
    /// send, with the token it carried; an error only when no token could be had.
    pub async fn authenticated<R, Sent>(
        &self,
        mut send: impl FnMut(Arc<Token>) -> Sent,
    ) -> Result<(R, Arc<Token>), Error>
    where
        Sent: Future<Output = (R, Verdict)>,
    {
        let mut refreshes = 0;
        let mut idle_refreshes = 0;
        let mut accepted_at_refusal = None;
        let mut accepted_at_fresh_refusal = None;
        loop {
            let token = self.token().await?;
            let first_send = token.sends.fetch_add(1, Ordering::Relaxed) == 0;
            let (outcome, verdict) = send(token.clone()).await;
            match verdict {
                Verdict::Accepted => {
                    token.proven.store(true, Ordering::Relaxed);
                    self.shelf.accepted.fetch_add(1, Ordering::Relaxed);
                    return Ok((outcome, token));
                }
                Verdict::Unknown => return Ok((outcome, token)),
                Verdict::Refused => {}
            }
            self.invalidate(&token);
            let accepted = self.shelf.accepted.load(Ordering::Relaxed);
            if token.refused_alone(first_send) {
                if accepted_at_fresh_refusal == Some(accepted) {
                    tracing::debug!(
                        token_id = token.id,
                        "401 to a fresh token again, none accepted in between: the API refuses its tokens"
                    );
                    return Ok((outcome, token));
                }
                accepted_at_fresh_refusal = Some(accepted);
            }
            if accepted_at_refusal == Some(accepted) {
                idle_refreshes += 1;
            } else {
                idle_refreshes = 0;
            }
            accepted_at_refusal = Some(accepted);
            refreshes += 1;
            if idle_refreshes >= MAX_IDLE_REFRESHES || refreshes >= MAX_REFRESHES {
                tracing::debug!(
                    token_id = token.id,
                    refreshes,
                    "401 after {refreshes} token refreshes: giving up"
                );
                return Ok((outcome, token));
            }
            tracing::debug!(
                token_id = token.id,
                "401: the token expired; refreshing the token and resending"
            );
        }
    }

    /// A token to send: the cached one, or the outcome of an exchange (one this caller
    /// starts, or the one under way).
    pub async fn token(&self) -> Result<Arc<Token>, Error> {
        let pending = {
            let mut state = self.shelf.state();
            if let Some(token) = state.current.as_ref().filter(|t| t.is_fresh()) {
                return Ok(token.clone());
            }
            match &state.pending {
                Some(pending) => pending.clone(),
                None => {
                    let pending = self.start_exchange(state.current.clone());
                    state.pending = Some(pending.clone());
                    pending
                }
            }
        };
        pending.await
    }

    /// An exchange that, when it ends, leaves its outcome in the cache: the new token, or
    /// (for a refresh due by age) the old one kept a while longer.
    fn start_exchange(&self, stale: Option<Arc<Token>>) -> Pending {
        let exchange = self.exchange.exchange();
        let shelf = self.shelf.clone();
        let max_age = self.max_age;
        async move {
            let outcome = exchange
                .await
                .and_then(|secret| new_token(&shelf, secret, max_age));
            let mut state = shelf.state();
            state.pending = None;
            match outcome {
                Ok(token) => {
                    tracing::info!(token_id = token.id, "token exchanged");
                    state.current = Some(token.clone());
                    Ok(token)
                }
                // A failed refresh never throws away a token that may still work (it was
                // due by age, not refused): keep it, and try again in a while.
                Err(err) => match stale {
                    Some(old) if old.refresh_at.is_some() => {
                        tracing::warn!(error = %err, "token refresh failed; keeping the current token");
                        let kept = Arc::new(Token {
                            id: old.id,
                            secret: old.secret.clone(),
                            header: old.header.clone(),
                            refresh_at: max_age.and_then(|age| {
                                Instant::now().checked_add((age / 10).max(Duration::from_secs(1)))
                            }),
                            sends: AtomicU64::new(old.sends.load(Ordering::Relaxed)),
                            proven: AtomicBool::new(old.proven.load(Ordering::Relaxed)),
                        });
                        state.current = Some(kept.clone());
                        Ok(kept)
                    }
                    _ => Err(err),
                },
            }
        }
        .boxed()
        .shared()
    }

    /// The current token, due for a refresh or not.
    pub fn current(&self) -> Option<Arc<Token>> {
        self.shelf.state().current.clone()
    }

    /// Forgets `refused` if it is still the current token (a newer one is kept).
    fn invalidate(&self, refused: &Token) {
        let mut state = self.shelf.state();
        if state.current.as_ref().is_some_and(|t| t.id == refused.id) {
            tracing::debug!(token_id = refused.id, "token invalidated after 401");
            state.current = None;
        }
    }
}

/// A token made of `secret`, ready to send, with the next id.
fn new_token(
    shelf: &Shelf,
    secret: SecretString,
    max_age: Option<Duration>,
) -> Result<Arc<Token>, Error> {
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
        id: shelf.next_id.fetch_add(1, Ordering::Relaxed),
        secret,
        header,
        refresh_at: max_age.and_then(|age| Instant::now().checked_add(age)),
        sends: AtomicU64::new(0),
        proven: AtomicBool::new(false),
    }))
}
