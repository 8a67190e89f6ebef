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

/// A boxed future returned by [`Transport::execute`].
pub type TransportFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>>;

/// Executes the requests of a [`Client`]: the place for authentication, retries and
/// timeouts.
///
/// `client` is the client that built the request.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` for the operation `info` and returns its response.
    fn execute<'a>(
        &'a self,
        client: &'a Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> TransportFuture<'a>;
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
}

impl Hooks {
    /// Hooks that execute every request through `transport`.
    pub fn with_transport(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport: Some(transport),
        }
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
        match &self.inner().transport {
            Some(transport) => transport.execute(self, request, info).await,
            None => self.client().execute(request).await,
        }
    }
}
