//! Response decoding for the generated code, in place of progenitor's
//! `ResponseValue::from_response` (the xtask rewrites the calls): the same, but the response's
//! headers are moved into the `ResponseValue` instead of copied.

use progenitor_client::{Error, ResponseValue};
use serde::de::DeserializeOwned;

/// The response's JSON body decoded as `T`, with its status and headers.
pub(crate) async fn from_response<T: DeserializeOwned, E>(
    mut response: reqwest::Response,
) -> Result<ResponseValue<T>, Error<E>> {
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let full = response.bytes().await.map_err(Error::ResponseBodyError)?;
    let inner =
        serde_json::from_slice(&full).map_err(|e| Error::InvalidResponsePayload(full, e))?;
    Ok(ResponseValue::new(inner, status, headers))
}
