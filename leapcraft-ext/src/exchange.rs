//! [`KeyExchange`]: the API key exchanged for a bearer token (`POST /auth/client/token`),
//! through the pipeline on a route that sends no token, never through the authenticated one.

use std::sync::Arc;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::Exchange;
use crate::error::{AuthError, AuthErrorKind, Error};
use crate::transport::Route;

const OPERATION: &str = "get_access_token";

/// See the module docs.
pub(crate) struct KeyExchange {
    /// A route with [`Credential::Unauthenticated`](crate::transport::Credential::Unauthenticated).
    pub route: Arc<Route>,
    pub api_key: Arc<SecretString>,
}

impl Exchange for KeyExchange {
    fn exchange(&self) -> BoxFuture<'static, Result<SecretString, Error>> {
        let (route, api_key) = (self.route.clone(), self.api_key.clone());
        Box::pin(async move {
            tracing::debug!("exchanging the API key for a token");
            let body = leapcraft_api::types::TokenRequest {
                api_key: api_key.expose_secret().to_owned(),
            };
            let result = route
                .call(
                    OPERATION,
                    Some(crate::response::limit_for_items(1)),
                    &Default::default(),
                    async |api| api.get_access_token().body(body).send().await,
                )
                .await;
            match result {
                Ok(response) => Ok(SecretString::from(response.token)),
                Err(error) => Err(match error.status().map(|s| s.as_u16()) {
                    Some(401 | 403) => Error::Auth(Box::new(AuthError {
                        kind: AuthErrorKind::KeyRejected,
                        operation: OPERATION,
                        status: error.status(),
                        message: match &error {
                            Error::Api(e) => e.message.clone(),
                            Error::Auth(e) => e.message.clone(),
                            _ => None,
                        },
                    })),
                    _ => error,
                }),
            }
        })
    }
}
