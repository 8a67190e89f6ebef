//! What a response says, read defensively: its body read up to a limit, and the facts the
//! retry decision and the errors need (status class, `Retry-After`, request id).

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, RETRY_AFTER};
use reqwest::{ResponseBuilderExt, StatusCode};

/// Of an error response, only this many bytes are read: enough for any message, small enough
/// that a hostile server cannot make an error expensive.
pub(crate) const MAX_ERROR_BODY: usize = 32 * 1024;

/// What one item of a list may take on the wire, for the body limit of a request that asks
/// for a number of items: a response far larger than its request could need is refused as
/// it arrives, instead of being decoded into hundreds of megabytes.
pub(crate) const BYTES_PER_ITEM: usize = 8 * 1024;
/// What a response may take beyond its items.
const BYTES_BESIDES_ITEMS: usize = 64 * 1024;

/// The body limit of a request for `items` items (see [`BYTES_PER_ITEM`]).
pub(crate) fn limit_for_items(items: u64) -> usize {
    usize::try_from(items)
        .unwrap_or(usize::MAX)
        .saturating_mul(BYTES_PER_ITEM)
        .saturating_add(BYTES_BESIDES_ITEMS)
}

/// Response headers that carry a request id, in order of preference.
const REQUEST_ID_HEADERS: [&str; 5] = [
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "x-amzn-requestid",
    "x-amz-request-id",
];

/// A response read to its end (a successful one) or to [`MAX_ERROR_BODY`] (an error).
#[derive(Debug)]
pub(crate) struct Buffered {
    pub url: reqwest::Url,
    pub status: StatusCode,
    pub version: reqwest::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// A successful response's body is larger than the limit (by its `Content-Length`, or
    /// once that many bytes arrived).
    TooLarge,
    /// The connection failed, or the body was cut short.
    Failed(reqwest::Error),
}

impl Buffered {
    /// Reads `response`: a successful body up to `limit` bytes (beyond it, an error), an error
    /// body up to [`MAX_ERROR_BODY`] (the rest is dropped unread). Memory stays near the
    /// limit whatever the server announces or sends.
    pub async fn read(mut response: reqwest::Response, limit: usize) -> Result<Self, ReadError> {
        let status = response.status();
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let (limit, truncate) = if status.is_success() {
            (limit, false)
        } else {
            (MAX_ERROR_BODY, true)
        };
        if !truncate && announced.is_some_and(|n| n > limit as u64) {
            return Err(ReadError::TooLarge);
        }
        let expected = announced.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut body = BytesMut::with_capacity(expected.min(limit).min(1 << 20));
        while let Some(chunk) = response.chunk().await.map_err(ReadError::Failed)? {
            let room = limit - body.len();
            if chunk.len() > room {
                if !truncate {
                    return Err(ReadError::TooLarge);
                }
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Self {
            url: response.url().clone(),
            status,
            version: response.version(),
            headers: std::mem::take(response.headers_mut()),
            body: body.freeze(),
        })
    }

    /// The response again, its body in memory: what the generated client decodes.
    pub fn into_response(self) -> reqwest::Response {
        let mut response = http::Response::builder()
            .status(self.status)
            .version(self.version)
            .url(self.url)
            .body(self.body)
            .unwrap_or_default();
        *response.headers_mut() = self.headers;
        reqwest::Response::from(response)
    }
}

/// Whether a response with this status is worth trying again: 408, 429, 500, 502, 503, 504.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The `Retry-After` of a response, in either form (delay-seconds, or an HTTP date, counted
/// from `now`).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The request id of a response, when a header carries one (at most 128 characters).
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(|id| id.chars().take(128).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let later = now + Duration::from_secs(120);
        headers.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
        for code in [200, 301, 400, 401, 403, 404, 409, 422, 501, 505] {
            assert!(!is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
    }
}
