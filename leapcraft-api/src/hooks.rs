//! The hook point through which every request of the generated [`Client`] is executed.
//!
//! progenitor's `ClientHooks` impl must live in this crate (the orphan rule), so it is a thin
//! delegation: [`Hooks`], the client's inner value, holds an optional [`Transport`], and a
//! transport supplied by another crate (leapcraft-ext's adds auth, retries and timeouts)
//! executes each request. Without one, requests go straight to `reqwest`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

use crate::Client;
use crate::path::ParsedBase;

/// A boxed future returned by [`Transport::execute`].
pub type TransportFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>>;

/// Executes the requests of a [`Client`]: the place for authentication, retries and
/// timeouts.
///
/// Each request first goes to [`prepare`](Self::prepare). If the transport has everything it
/// needs at hand it readies the request there, the client sends it, and the outcome goes to
/// [`finish`](Self::finish): no boxed future on the way. Otherwise the request goes to
/// [`execute`](Self::execute), which does the whole job.
///
/// `client` is the client that built the request; a transport may use it to send requests of
/// its own (a token exchange, say), which go through the transport again.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` for the operation `info` and returns its response.
    fn execute<'a>(
        &'a self,
        client: &'a Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> TransportFuture<'a>;

    /// Readies `request` to be sent once, as it is, and returns `true`; or returns `false`
    /// (the default) to have it go through [`execute`](Self::execute).
    fn prepare(&self, request: &mut reqwest::Request, info: &OperationInfo) -> bool {
        let _ = (request, info);
        false
    }

    /// Sees the outcome of a request readied by [`prepare`](Self::prepare) before the
    /// generated code does. The default hands it over as it is.
    fn finish<'a>(
        &'a self,
        outcome: reqwest::Result<reqwest::Response>,
        info: &'a OperationInfo,
    ) -> Finish<'a> {
        let _ = info;
        Finish::Now(outcome)
    }
}

/// What [`Transport::finish`] makes of an outcome.
#[non_exhaustive]
pub enum Finish<'a> {
    /// This is the outcome, at once.
    Now(reqwest::Result<reqwest::Response>),
    /// The outcome needs more work (reading a body, say): await this.
    Later(TransportFuture<'a>),
}

impl fmt::Debug for Finish<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finish::Now(outcome) => f.debug_tuple("Now").field(outcome).finish(),
            Finish::Later(_) => f.write_str("Later(..)"),
        }
    }
}

impl Finish<'_> {
    /// The outcome, once any work left is done.
    pub async fn outcome(self) -> reqwest::Result<reqwest::Response> {
        match self {
            Finish::Now(outcome) => outcome,
            Finish::Later(rest) => rest.await,
        }
    }
}

/// The inner value of every generated [`Client`]: which [`Transport`] executes its requests.
///
/// The default sends each request once, as built, with the client's `reqwest::Client`.
///
/// ```
/// let client = leapcraft_api::Client::new_with_client(
///     "http://127.0.0.1:8080",
///     reqwest::Client::new(),
///     leapcraft_api::Hooks::default(),
/// );
/// use leapcraft_api::ClientInfo;
/// assert_eq!(client.baseurl(), "http://127.0.0.1:8080");
/// ```
#[derive(Clone, Default)]
pub struct Hooks {
    transport: Option<Arc<dyn Transport>>,
    base: ParsedBase,
}

impl Hooks {
    /// Hooks that execute every request through `transport`.
    pub fn with_transport(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport: Some(transport),
            ..Self::default()
        }
    }

    /// The client's base URL, parsed once.
    pub(crate) fn parsed_base(&self) -> &ParsedBase {
        &self.base
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("transport", &self.transport.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl ClientHooks<Hooks> for Client {
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let Some(transport) = &self.inner().transport else {
            return self.client().execute(request).await;
        };
        let mut request = request;
        if !transport.prepare(&mut request, info) {
            return transport.execute(self, request, info).await;
        }
        let outcome = self.client().execute(request).await;
        match transport.finish(outcome, info) {
            Finish::Now(outcome) => outcome,
            Finish::Later(rest) => rest.await,
        }
    }
}
