//! Telling long-lived responses (the queue's event streams) that the server is stopping, so
//! a graceful stop does not wait for clients that never hang up.

use tokio::sync::watch;

/// Tells long-lived responses that the server is stopping.
/// [`crate::runtime::serve::serve`] hands one to every request as an axum
/// [`Extension`](axum::Extension); a router served some other way has none, and its streams
/// run until the client leaves.
#[derive(Debug, Clone)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    /// Follows `stopping`, which turns `true` once when the server starts to stop.
    pub fn new(stopping: watch::Receiver<bool>) -> Self {
        Self(stopping)
    }

    /// Completes once the server has started to stop (at once if it already has).
    pub async fn started(mut self) {
        // An error means the sender is gone: the server is gone too.
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}
