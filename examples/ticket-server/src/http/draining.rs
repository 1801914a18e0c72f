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

/// An event stream as an SSE response that ends when the server starts to stop (the client
/// resumes on another server with `Last-Event-ID`), with a `: keep-alive` comment every 15 s.
pub fn event_stream<S>(
    stream: S,
    draining: Option<axum::Extension<Draining>>,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
>
where
    S: futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>
        + Send
        + 'static,
{
    use futures_util::StreamExt;
    let stopping = async move {
        match draining {
            Some(axum::Extension(draining)) => draining.started().await,
            None => std::future::pending().await,
        }
    };
    axum::response::sse::Sse::new(stream.take_until(stopping)).keep_alive(
        axum::response::sse::KeepAlive::new()
            .interval(std::time::Duration::from_secs(15))
            .text("keep-alive"),
    )
}
