//! How a coalesced call's outcome reaches the callers whose requests it carried; shared by
//! the hold batches ([`crate::hold_batch`]) and the queue batches ([`crate::queue_batch`]).

use ticket_core::{Error, Result};
use tokio::sync::oneshot;

/// Where one request's answer goes.
pub(crate) type Waiter = oneshot::Sender<Result<serde_json::Value>>;

/// The whole call failed: every request in it gets this (the outcome is unknown, since the
/// commit may or may not have happened).
#[derive(Debug, thiserror::Error)]
#[error("batched {what} call failed: {message}")]
struct BatchFailed {
    what: &'static str,
    message: String,
}

fn failed(what: &'static str, message: String) -> Error {
    Error::Unavailable(Box::new(BatchFailed { what, message }))
}

/// Hands each waiter its answer, in order. A call that answered a different number of
/// requests is `Corrupt` for all; a failed call gives every waiter the same error (a
/// `Corrupt` one as it is, any other as `Unavailable` naming the `what` call and the cause).
pub(crate) fn reply(
    what: &'static str,
    waiters: Vec<Waiter>,
    outcome: Result<Vec<serde_json::Value>>,
) {
    match outcome {
        Ok(answers) if answers.len() == waiters.len() => {
            for (w, a) in waiters.into_iter().zip(answers) {
                let _ = w.send(Ok(a));
            }
        }
        Ok(answers) => {
            let msg = format!("{} answers for {} requests", answers.len(), waiters.len());
            for w in waiters {
                let _ = w.send(Err(Error::Corrupt(msg.clone())));
            }
        }
        Err(e) => {
            let msg = match &e {
                Error::Unavailable(s) => format!("{e}: {s}"),
                _ => e.to_string(),
            };
            for w in waiters {
                let err = match &e {
                    Error::Corrupt(m) => Error::Corrupt(m.clone()),
                    _ => failed(what, msg.clone()),
                };
                let _ = w.send(Err(err));
            }
        }
    }
}

/// The answer a waiter was sent; a batch task that ended without answering (it panicked or
/// the runtime stopped) is `Unavailable`.
pub(crate) async fn answer(
    what: &'static str,
    rx: oneshot::Receiver<Result<serde_json::Value>>,
) -> Result<serde_json::Value> {
    rx.await
        .map_err(|_| failed(what, "the batch was dropped".into()))?
}
