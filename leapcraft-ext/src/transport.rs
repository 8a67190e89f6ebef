//! How the generated client's requests reach the [`Pipeline`]: [`Route`], the pipeline with
//! a way of authenticating, and the typed outcome of one call of the generated client.
//!
//! The generated client hands every request to a [`leapcraft_api::Transport`] and decodes
//! whatever response comes back, losing most of what went wrong on the way (an HTML `503`
//! becomes a bare decode error, a timeout has no response at all). So each call of a `Client`
//! method runs on a generated client of its own, whose transport keeps the call's
//! [`CallFailure`] for it; calls through [`Client::api`](crate::Client::api) share one whose
//! failures become responses: the final one, or a stand-in that says what happened.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use leapcraft_api::{Hooks, OperationInfo, ResponseValue, Transport, TransportFuture};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::TokenCache;
use crate::error::{Error, Redact, decode_path};
use crate::options::CallOptions;
use crate::pipeline::{Call, CallFailure, Pipeline};

/// The generated client's error type.
pub(crate) type GeneratedError = leapcraft_api::Error<leapcraft_api::types::Error>;

/// How requests on a route are authenticated.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// A bearer token from the cache; only `GET` and `HEAD` are retried.
    Bearer(Arc<TokenCache>),
    /// No token: the route of the token exchange, whose `POST` has no side effect (retried),
    /// and whose successful bodies are secrets (never quoted in errors).
    Unauthenticated,
}

/// The pipeline, a way of authenticating, and where the API is: what a generated client
/// needs to send through the pipeline.
#[derive(Debug)]
pub(crate) struct Route {
    pub pipeline: Arc<Pipeline>,
    pub credential: Credential,
    pub base_url: String,
}

impl Route {
    /// A generated client on this route whose failures reach its caller as responses: the
    /// final response, or a stand-in (see [`stand_in`]).
    pub fn generated_client(self: &Arc<Self>) -> leapcraft_api::Client {
        self.client_with(Arc::new(PipelineTransport {
            route: self.clone(),
            failure: None,
            max_body: None,
            options: Arc::default(),
        }))
    }

    fn client_with(&self, transport: Arc<PipelineTransport>) -> leapcraft_api::Client {
        leapcraft_api::Client::new_with_client(
            &self.base_url,
            self.pipeline.http.clone(),
            Hooks::with_transport(transport),
        )
    }

    /// Runs one call of the generated client (`send`, given a client on this route) and
    /// returns its value, or what went wrong as our [`Error`]. `max_body` lowers the body
    /// limit for this call.
    pub async fn call<T: DeserializeOwned>(
        self: &Arc<Self>,
        operation: &'static str,
        max_body: Option<usize>,
        options: &Arc<CallOptions>,
        send: impl AsyncFnOnce(&leapcraft_api::Client) -> Result<ResponseValue<T>, GeneratedError>,
    ) -> Result<T, Error> {
        self.call_or_recover(operation, max_body, options, send, |_| None)
            .await
    }

    /// As [`call`](Self::call), for a list: if the list does not decode as a whole, the
    /// items that do are kept and the others skipped, each with a warning.
    pub async fn call_list<I: DeserializeOwned>(
        self: &Arc<Self>,
        operation: &'static str,
        max_body: Option<usize>,
        options: &Arc<CallOptions>,
        send: impl AsyncFnOnce(&leapcraft_api::Client) -> Result<ResponseValue<Vec<I>>, GeneratedError>,
    ) -> Result<Vec<I>, Error> {
        self.call_or_recover(operation, max_body, options, send, |body| {
            crate::lenient::decode_items(operation, body)
        })
        .await
    }

    /// [`call`](Self::call), with `recover` given a successful body that did not decode.
    async fn call_or_recover<T: DeserializeOwned>(
        self: &Arc<Self>,
        operation: &'static str,
        max_body: Option<usize>,
        options: &Arc<CallOptions>,
        send: impl AsyncFnOnce(&leapcraft_api::Client) -> Result<ResponseValue<T>, GeneratedError>,
        recover: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Result<T, Error> {
        let transport = Arc::new(PipelineTransport {
            route: self.clone(),
            failure: Some(Mutex::default()),
            max_body,
            options: options.clone(),
        });
        let client = self.client_with(transport.clone());
        let error = match send(&client).await {
            Ok(value) => return Ok(value.into_inner()),
            Err(error) => error,
        };
        if let Some(failure) = transport.take_failure() {
            return Err(failure);
        }
        if let leapcraft_api::Error::InvalidResponsePayload(body, _) = &error
            && let Some(value) = recover(body)
        {
            return Ok(value);
        }
        Err(self.translate::<T>(operation, error))
    }

    /// Our error for a failure of the generated client that the pipeline did not see: a
    /// request it refused to build, or a successful body that did not decode.
    fn translate<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        error: GeneratedError,
    ) -> Error {
        use leapcraft_api::Error as G;
        // The token the call used is, but for a refresh since, the current one.
        let token = match &self.credential {
            Credential::Bearer(tokens) => tokens.current(),
            Credential::Unauthenticated => None,
        };
        let redact = Redact {
            secrets: [
                Some(&self.pipeline.api_key),
                token.as_ref().map(|t| &t.secret),
            ],
        };
        match error {
            G::InvalidRequest(message) => Error::InvalidInput(format!("{operation}: {message}")),
            G::InvalidResponsePayload(body, json) => match self.credential {
                // A decoder's message may quote the value (the token): say less.
                Credential::Unauthenticated => Error::decode(
                    operation,
                    ".".to_owned(),
                    &format!("{:?} error", json.classify()),
                    None,
                    &redact,
                ),
                Credential::Bearer(_) => {
                    let (path, reason) = decode_path::<T>(&body)
                        .unwrap_or_else(|| (".".to_owned(), json.to_string()));
                    Error::decode(operation, path, &reason, Some(&body), &redact)
                }
            },
            G::CommunicationError(e) | G::ResponseBodyError(e) | G::InvalidUpgrade(e) => {
                Error::from_reqwest(operation, 1, e)
            }
            other => Error::Transport(Box::new(crate::TransportError {
                operation,
                message: redact.text(&crate::error::cut(&other.to_string())),
                attempts: 1,
                source: None,
            })),
        }
    }
}

/// Sends a generated client's requests through the pipeline.
struct PipelineTransport {
    route: Arc<Route>,
    /// Where the failure of a call is kept for the `Client` method that made it; `None` for
    /// the shared client of [`Client::api`](crate::Client::api).
    failure: Option<Mutex<Option<Error>>>,
    /// The body limit of the call, if lower than the client's.
    max_body: Option<usize>,
    /// The call's own options.
    options: Arc<CallOptions>,
}

impl PipelineTransport {
    fn take_failure(&self) -> Option<Error> {
        let slot = self.failure.as_ref()?;
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Transport for PipelineTransport {
    fn execute<'a>(
        &'a self,
        _client: &'a leapcraft_api::Client,
        request: reqwest::Request,
        info: &'a OperationInfo,
    ) -> TransportFuture<'a> {
        Box::pin(async move {
            let (tokens, idempotent) = match &self.route.credential {
                Credential::Bearer(tokens) => (
                    Some(&**tokens),
                    matches!(*request.method(), Method::GET | Method::HEAD),
                ),
                Credential::Unauthenticated => (None, true),
            };
            let call = Call {
                operation: info.operation_id,
                request,
                tokens,
                idempotent: self.options.idempotent.unwrap_or(idempotent),
                max_body: self.max_body,
                options: &self.options,
            };
            match self.route.pipeline.invoke(call).await {
                Ok(response) => Ok(response.into_response()),
                Err(CallFailure { error, response }) => {
                    let response = match response {
                        Some(response) => response.into_response(),
                        None => stand_in(&error),
                    };
                    if let Some(slot) = &self.failure {
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                    }
                    Ok(response)
                }
            }
        })
    }
}

/// A response standing in for a call that got none (it timed out, could not connect, could
/// not get a token, or its body was too large), for callers of the generated client: the
/// status says what kind of failure, and the JSON `message` what happened.
fn stand_in(error: &Error) -> reqwest::Response {
    let status = match error {
        Error::Auth(_) => StatusCode::UNAUTHORIZED,
        Error::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        Error::ResponseTooLarge { .. } | Error::Decode(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({ "message": error.to_string() }).to_string();
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reqwest::Response::from(response)
}
