//! When a long-running command (`serve`, `mqtt`) is asked to stop: SIGTERM (what systemd and
//! container runtimes send) or Ctrl-C.

use tokio_util::sync::CancellationToken;

/// Resolves on SIGTERM or Ctrl-C.
pub async fn requested() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Cancels `cancel` when a stop is requested; returns at once when something else cancels it
/// first (an output that failed for good).
pub async fn cancel_on_request(cancel: &CancellationToken) {
    tokio::select! {
        _ = requested() => cancel.cancel(),
        _ = cancel.cancelled() => {}
    }
}
