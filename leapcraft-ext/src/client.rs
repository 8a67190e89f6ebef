//! [`Client`], the entry point, and [`ClientBuilder`], which configures it.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use leapcraft_api::ResponseValue;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::auth::TokenCache;
use crate::error::Error;
use crate::exchange::KeyExchange;
use crate::options::CallOptions;
use crate::pipeline::{Pipeline, Timeouts};
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::retry::RetryPolicy;
use crate::retry_budget::RetryBudget;
use crate::sleep::{Sleep, TokioSleep};
use crate::stats::{ClientStats, Counters};
use crate::transport::{Credential, GeneratedError, Route};

/// The API's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.leapcraft.com/v1";

/// The environment variable [`ClientBuilder::from_env`] reads the API key from.
pub const API_KEY_ENV: &str = "LEAPCRAFT_API_KEY";

/// The environment variable [`ClientBuilder::from_env`] reads the base URL from.
pub const BASE_URL_ENV: &str = "LEAPCRAFT_BASE_URL";

/// A client of the Leapcraft API.
///
/// Cheap to clone: clones share the bearer token, the connection pool, the rate limiter, the
/// retry budget and the configuration. The API key is exchanged for a token on first use; the
/// token is refreshed when the API stops accepting it; idempotent calls are retried with
/// backoff; requests are paced to what the API accepts. See [`ClientBuilder`] for the
/// settings.
///
/// ```no_run
/// # async fn run() -> Result<(), leapcraft_ext::Error> {
/// let client = leapcraft_ext::Client::builder().api_key("YOUR_API_KEY").build()?;
/// let device = client.device("D2:C1:AA:FF:3E:09").await?;
/// println!("{:?}", device.serial);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    /// The authenticated route every call of the methods takes.
    route: Arc<Route>,
    /// The generated client of [`api`](Self::api), on the same route.
    api: leapcraft_api::Client,
    /// Options of this client's calls ([`customize`](Self::customize)).
    options: Arc<CallOptions>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url())
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with the defaults: see [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `LEAPCRAFT_API_KEY` and (optionally) `LEAPCRAFT_BASE_URL`.
    ///
    /// ```no_run
    /// let client = leapcraft_ext::Client::from_env()?;
    /// # Ok::<(), leapcraft_ext::Error>(())
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env().build()
    }

    /// The base URL calls go to, such as `https://api.leapcraft.com/v1`.
    pub fn base_url(&self) -> &str {
        &self.route.base_url
    }

    /// What this client and its clones have done so far: requests by operation and status,
    /// retries, token exchanges, and the pace: the rate in force and how many attempts
    /// waited for their turn.
    pub fn stats(&self) -> ClientStats {
        let pipeline = &self.route.pipeline;
        ClientStats {
            token_exchanges: match &self.route.credential {
                Credential::Bearer(tokens) => tokens.exchanges(),
                Credential::Unauthenticated => 0,
            },
            request_rate: pipeline.limiter.rate(),
            rate_limited: pipeline.limiter.delayed(),
            ..pipeline.counters.snapshot()
        }
    }

    /// A client whose calls take `options` (timeouts, attempts, idempotence, where to leave
    /// the final response's metadata), sharing everything else with this one: the token, the
    /// rate limiter, the retry budget, the connection pool and the statistics. Options not
    /// set are this client's. [`api`](Self::api) is not customized.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use leapcraft_ext::CallOptions;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let impatient = client.customize(CallOptions::new().timeout(Duration::from_secs(3)).max_attempts(1));
    /// let reading = impatient.latest("D2:C1:AA:FF:3E:09").await?;
    /// # Ok(()) }
    /// ```
    pub fn customize(&self, options: CallOptions) -> Client {
        Client {
            options: Arc::new(options),
            ..self.clone()
        }
    }

    /// The generated client, with this client's authentication, retries, pacing and
    /// timeouts applied: for anything this crate does not wrap.
    ///
    /// Its requests take the same path as this client's own calls (token, retries, timeouts,
    /// body limits). Its errors are the generated client's own: an error response is the
    /// server's, and a call that got no response (a timeout, a connection failure, a token
    /// that could not be had, a body over the limit) comes back as a stand-in response, with
    /// status 504, 503, 401 or 502 and a JSON `message` saying what happened. Beware that a
    /// token exchange made through it directly
    /// ([`get_access_token`](leapcraft_api::Client::get_access_token)) that fails to decode
    /// reports the response body, which holds the token.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let things = client.api().list_things().limit(-1).send().await?.into_inner();
    /// println!("{} things", things.len());
    /// # Ok(()) }
    /// ```
    pub fn api(&self) -> &leapcraft_api::Client {
        &self.api
    }

    /// Runs one call of the generated client on this client's route: the common path of
    /// every method.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        send: impl AsyncFnOnce(&leapcraft_api::Client) -> Result<ResponseValue<T>, GeneratedError>,
    ) -> Result<T, Error> {
        self.route.call(operation, None, &self.options, send).await
    }

    /// As [`call`](Self::call), for a request whose answer can be at most `items` items
    /// long: a body larger than such an answer could need is refused as it arrives.
    pub(crate) async fn call_for_items<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        items: u64,
        send: impl AsyncFnOnce(&leapcraft_api::Client) -> Result<ResponseValue<T>, GeneratedError>,
    ) -> Result<T, Error> {
        let limit = crate::response::limit_for_items(items);
        self.route
            .call(operation, Some(limit), &self.options, send)
            .await
    }

    /// As [`call_for_items`](Self::call_for_items), for a list: a record that cannot be read
    /// is skipped (with a warning), the others are kept.
    pub(crate) async fn list<I: DeserializeOwned>(
        &self,
        operation: &'static str,
        items: u64,
        send: impl AsyncFnOnce(&leapcraft_api::Client) -> Result<ResponseValue<Vec<I>>, GeneratedError>,
    ) -> Result<Vec<I>, Error> {
        let limit = crate::response::limit_for_items(items);
        self.route
            .call_list(operation, Some(limit), &self.options, send)
            .await
    }
}

/// Configures a [`Client`].
///
/// | setting | default |
/// |---|---|
/// | [`api_key`](Self::api_key) | required |
/// | [`base_url`](Self::base_url) | `https://api.leapcraft.com/v1` |
/// | [`app_name`](Self::app_name) | none: user agent `leapcraft-rs/<version>` |
/// | [`connect_timeout`](Self::connect_timeout) | 10 s |
/// | [`attempt_timeout`](Self::attempt_timeout) | 30 s per attempt, body included |
/// | [`overall_timeout`](Self::overall_timeout) | 120 s per call, retries included |
/// | [`retry_policy`](Self::retry_policy) | [`RetryPolicy::default`] |
/// | [`rate_limit`](Self::rate_limit) | [`RateLimit::Adaptive`]: learned from the API's `429`s |
/// | [`max_response_bytes`](Self::max_response_bytes) | 64 MiB ([`DEFAULT_MAX_RESPONSE_BYTES`]) |
/// | [`max_token_age`](Self::max_token_age) | none: a token is used until refused |
/// | [`http_client`](Self::http_client) | a new `reqwest::Client` |
/// | [`allow_insecure_http`](Self::allow_insecure_http) | off: `http://` only to loopback |
///
/// ```
/// use std::time::Duration;
/// use leapcraft_ext::{Client, RetryPolicy};
///
/// let client = Client::builder()
///     .api_key("YOUR_API_KEY")
///     .base_url("http://127.0.0.1:8080/v1")
///     .app_name("dashboard/2.1")
///     .attempt_timeout(Duration::from_secs(10))
///     .retry_policy(RetryPolicy::default().with_max_attempts(6))
///     .build()?;
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080/v1");
/// # Ok::<(), leapcraft_ext::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    app_name: Option<String>,
    http: Option<reqwest::Client>,
    connect_timeout: Duration,
    timeouts: Timeouts,
    retry: RetryPolicy,
    rate_limit: RateLimit,
    max_response_bytes: usize,
    max_token_age: Option<Duration>,
    allow_insecure_http: bool,
    sleep: Arc<dyn Sleep>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_name: None,
            http: None,
            connect_timeout: Duration::from_secs(10),
            timeouts: Timeouts {
                attempt: Some(Duration::from_secs(30)),
                overall: Some(Duration::from_secs(120)),
            },
            retry: RetryPolicy::default(),
            rate_limit: RateLimit::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_token_age: None,
            allow_insecure_http: false,
            sleep: Arc::new(TokioSleep),
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("app_name", &self.app_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_token_age", &self.max_token_age)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder preset from the environment: the API key from `LEAPCRAFT_API_KEY` and the
    /// base URL from `LEAPCRAFT_BASE_URL`, where set. Settings made afterwards win.
    pub fn from_env() -> Self {
        let mut builder = Self::default();
        if let Ok(key) = std::env::var(API_KEY_ENV) {
            builder = builder.api_key(key);
        }
        if let Ok(url) = std::env::var(BASE_URL_ENV)
            && !url.trim().is_empty()
        {
            builder = builder.base_url(url.trim());
        }
        builder
    }

    /// The API key issued to your account. Held as a secret: never printed or logged.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The base URL, such as `https://api.leapcraft.com/v1` (the default).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Your application's name and version, appended to the user agent
    /// (`leapcraft-rs/0.1.0 dashboard/2.1`).
    pub fn app_name(mut self, app: impl Into<String>) -> Self {
        self.app_name = Some(app.into());
        self
    }

    /// A `reqwest::Client` of your own (proxies, TLS roots, pool settings), used as it is: its
    /// connect timeout applies instead of [`connect_timeout`](Self::connect_timeout), and its
    /// redirect policy instead of ours, which follows redirects only within the base URL's
    /// origin (`reqwest::redirect::Policy::default()` follows them anywhere, stripping
    /// `Authorization` but resending a `307`/`308` body, such as the token exchange's API key:
    /// set a policy of your own).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How long to wait for a connection to be established.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take, reading the body included; `None` for no limit.
    pub fn attempt_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.attempt = timeout.into();
        self
    }

    /// How long one call may take, retries and waits included; `None` for no limit.
    pub fn overall_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.overall = timeout.into();
        self
    }

    /// How failed calls are retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How requests are paced: see [`RateLimit`]. By default the client learns the API's
    /// pace from its `429` responses.
    ///
    /// ```
    /// use leapcraft_ext::{Client, RateLimit};
    ///
    /// let unpaced = Client::builder().api_key("KEY").rate_limit(RateLimit::Off).build()?;
    /// assert_eq!(unpaced.stats().request_rate, None);
    /// # Ok::<(), leapcraft_ext::Error>(())
    /// ```
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// At most `per_second` requests a second, one at a time: short for
    /// `rate_limit(RateLimit::Fixed { per_second, burst: 1 })` (a fixed pace, whatever the
    /// API answers). [`build`](Self::build) refuses a rate that is not positive and finite.
    ///
    /// ```
    /// let client = leapcraft_ext::Client::builder()
    ///     .api_key("KEY")
    ///     .max_requests_per_second(2.5)
    ///     .build()?;
    /// assert_eq!(client.stats().request_rate, Some(2.5));
    /// # Ok::<(), leapcraft_ext::Error>(())
    /// ```
    pub fn max_requests_per_second(self, per_second: f64) -> Self {
        self.rate_limit(RateLimit::Fixed {
            per_second,
            burst: 1,
        })
    }

    /// The most bytes read of one successful response's body; a larger one fails the call
    /// with [`Error::ResponseTooLarge`] without reading the rest (memory stays near the limit,
    /// whatever the server announces or sends). The default, 64 MiB, holds a `limit=-1`
    /// device list of about 100,000 devices. Error bodies are read up to 32 KiB only.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Refresh the token before using it once it is this old, rather than waiting for the
    /// API to refuse it. If that refresh fails, the old token is used meanwhile.
    pub fn max_token_age(mut self, age: impl Into<Option<Duration>>) -> Self {
        self.max_token_age = age.into();
        self
    }

    /// Allow an `http://` base URL on a host other than loopback. Off by default: the API key
    /// and the token would cross the network in clear text.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How to wait between attempts and for a turn under the rate limit (tokio's timer by
    /// default).
    pub fn sleep(mut self, sleep: impl Sleep) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// Checks the settings and builds the client. Sends nothing.
    ///
    /// Fails with [`Error::InvalidInput`] without an API key, on a base URL that is not an
    /// absolute `https://` URL (or `http://` to loopback, unless allowed), on a fixed rate
    /// limit that is not a positive, finite number, or if the HTTP client cannot be built.
    pub fn build(self) -> Result<Client, Error> {
        let api_key = self
            .api_key
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "no API key: call ClientBuilder::api_key or set {API_KEY_ENV}"
                ))
            })?;
        let base_url = check_base_url(&self.base_url, self.allow_insecure_http)?;
        let limiter = RateLimiter::new(&self.rate_limit).map_err(Error::invalid)?;
        let budget = RetryBudget::new(self.retry.retry_budget());
        let user_agent = match &self.app_name {
            Some(app) => format!("leapcraft-rs/{} {app}", env!("CARGO_PKG_VERSION")),
            None => format!("leapcraft-rs/{}", env!("CARGO_PKG_VERSION")),
        };
        let user_agent = HeaderValue::try_from(user_agent)
            .map_err(|_| Error::invalid("the app name must be visible ASCII"))?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                // `Duration::MAX` (or any timeout too long to schedule) means none.
                .connect_timeout(self.connect_timeout.min(Duration::from_secs(365 * 86_400)))
                .redirect(same_origin_redirects())
                // The retries are this client's own. reqwest's layer would copy every request
                // in case it must resend it after an HTTP/2 refusal, which an HTTP/1.1 client
                // never gets.
                .retry(reqwest::retry::never().max_retries_per_request(0))
                .build()
                .map_err(|e| Error::invalid(format!("cannot build the HTTP client: {e}")))?,
        };
        let api_key = Arc::new(api_key);
        let pipeline = Arc::new(Pipeline {
            http,
            user_agent,
            policy: self.retry,
            timeouts: self.timeouts,
            max_body: self.max_response_bytes,
            sleep: self.sleep,
            counters: Counters::default(),
            limiter,
            budget,
            breaker: Default::default(),
            api_key: api_key.clone(),
        });
        let exchange = KeyExchange {
            route: Arc::new(Route {
                pipeline: pipeline.clone(),
                credential: Credential::Unauthenticated,
                base_url: base_url.clone(),
            }),
            api_key,
        };
        let tokens = Arc::new(TokenCache::new(exchange, self.max_token_age));
        let route = Arc::new(Route {
            pipeline,
            credential: Credential::Bearer(tokens),
            base_url,
        });
        Ok(Client {
            options: Arc::default(),
            api: route.generated_client(),
            route,
        })
    }
}

/// The default of [`ClientBuilder::max_response_bytes`]: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Follows a redirect only to the origin (scheme, host and port) of the first request, at
/// most 10 times: credentials (the bearer token, the API key in the token exchange's body)
/// never reach another origin, nor plain `http` after `https`. A redirect not followed is the
/// call's response.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= 10 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The base URL without a trailing slash, if it is one we may send secrets to.
fn check_base_url(raw: &str, allow_insecure_http: bool) -> Result<String, Error> {
    let url = url::Url::parse(raw)
        .map_err(|e| Error::invalid(format!("base URL {raw:?} is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::invalid(format!(
            "base URL {raw:?} must not have a query, a fragment or credentials"
        )));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback || allow_insecure_http => {}
        "http" => {
            return Err(Error::invalid(format!(
                "base URL {raw:?} is plain http to a host that is not loopback: \
                 use https, or ClientBuilder::allow_insecure_http(true)"
            )));
        }
        other => {
            return Err(Error::invalid(format!(
                "base URL {raw:?} has scheme {other:?}: use https"
            )));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base_url("https://api.leapcraft.com/v1/", false).unwrap(),
            "https://api.leapcraft.com/v1"
        );
        for ok in [
            "http://127.0.0.1:8080/v1",
            "http://localhost/v1",
            "http://[::1]:9/v1",
            "http://127.8.0.1",
        ] {
            assert!(check_base_url(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.leapcraft.com/v1",
            "http://10.0.0.1/v1",
            "ftp://api.leapcraft.com",
            "api.leapcraft.com/v1",
            "https://user:pw@api.leapcraft.com/v1",
            "https://api.leapcraft.com/v1?x=1",
        ] {
            assert!(
                matches!(check_base_url(bad, false), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
        assert!(check_base_url("http://api.leapcraft.com/v1", true).is_ok());
    }

    #[test]
    fn a_fixed_rate_must_be_a_positive_number() {
        for rate in [0.0, -2.0, f64::NAN, f64::INFINITY] {
            let built = Client::builder()
                .api_key("k")
                .max_requests_per_second(rate)
                .build();
            assert!(matches!(built, Err(Error::InvalidInput(_))), "{rate}");
        }
        let tiny = Client::builder()
            .api_key("k")
            .rate_limit(RateLimit::Fixed {
                per_second: f64::MIN_POSITIVE,
                burst: 0,
            })
            .build()
            .unwrap();
        assert_eq!(tiny.stats().request_rate, Some(f64::MIN_POSITIVE));
    }

    #[test]
    fn build_requires_a_key() {
        let err = Client::builder().build().unwrap_err();
        assert!(err.to_string().contains("no API key"), "{err}");
        assert!(Client::builder().api_key("  ").build().is_err());
    }
}
