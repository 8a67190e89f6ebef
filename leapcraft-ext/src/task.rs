//! Calls that run as tokio tasks of their own, so that they make progress whether or not
//! whoever waits for them is polling: a page fetched ahead, or one call of many, never waits
//! for the stream it belongs to be polled, and holds nothing others wait for meanwhile.

use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::Error;
use crate::error::TransportError;

/// `call` as a task of its own, in the current span (as if it ran there), aborted if the
/// returned future is dropped first; `operation` names it if the runtime cancels it. A panic
/// in `call` resumes here.
pub(crate) fn spawned<T: Send + 'static>(
    operation: &'static str,
    call: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> impl Future<Output = Result<T, Error>> {
    let task = AbortOnDropHandle::new(tokio::spawn(call.in_current_span()));
    async move {
        match task.await {
            Ok(result) => result,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Only the runtime shutting down cancels the task.
                Err(_) => Err(Error::Transport(Box::new(TransportError {
                    operation,
                    message: "the call's task was cancelled: the runtime is shutting down"
                        .to_owned(),
                    attempts: 0,
                    source: None,
                }))),
            },
        }
    }
}
