//! What the waiters of a batch get: their answers, or one error of the batch's kind each.

use std::sync::Arc;

use super::Waiter;
use crate::error::{Error, Result};

/// The cause of a batch's failure, as every waiter of the batch sees it: the source of the
/// [`Error::Unavailable`] each of them gets. The cause is shared by all waiters and is also
/// this error's [`source`](std::error::Error::source), so it can be downcast to the driver's
/// error type.
#[derive(Debug, Clone)]
pub struct BatchFailed {
    requests: usize,
    cause: Arc<dyn std::error::Error + Send + Sync + 'static>,
}

impl BatchFailed {
    /// How many requests the failed batch carried.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Why the batch failed: the source of the `Unavailable` error its call returned.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.cause
    }
}

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a batch of {} request(s) failed: {}",
            self.requests, self.cause
        )
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// The batch carrying a request was dropped before it answered: its call panicked, or the
/// task running it was stopped (a runtime shutting down). The source of the
/// [`Error::Unavailable`] the request's caller gets; the outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch carrying this request was dropped before it answered")]
pub struct BatchDropped;

/// Hands each waiter its answer, or the batch's failure (see the module docs).
pub(super) fn deliver<A>(waiters: Vec<Waiter<A>>, outcome: Option<Result<Vec<A>>>) {
    let error = match outcome {
        Some(Ok(answers)) if answers.len() == waiters.len() => {
            for (w, a) in waiters.into_iter().zip(answers) {
                // A waiter that gave up no longer listens; nothing to do.
                let _ = w.send(Ok(a));
            }
            return;
        }
        Some(Ok(answers)) => Error::Corrupt(format!(
            "a batch of {} requests got {} answers",
            waiters.len(),
            answers.len()
        )),
        Some(Err(e)) => e,
        None => {
            for w in waiters {
                let _ = w.send(Err(Error::Unavailable(Box::new(BatchDropped))));
            }
            return;
        }
    };
    let failure = Failure::new(error, waiters.len());
    for w in waiters {
        let _ = w.send(Err(failure.error()));
    }
}

/// A batch's error, kept so that every waiter gets one of the same kind.
enum Failure {
    /// [`Error::Unavailable`]: its cause, shared by every waiter's [`BatchFailed`].
    Unavailable(BatchFailed),
    /// Any other kind, copied for each waiter.
    Other(Error),
}

impl Failure {
    fn new(error: Error, requests: usize) -> Self {
        match error {
            Error::Unavailable(cause) => Self::Unavailable(BatchFailed {
                requests,
                cause: Arc::from(cause),
            }),
            other => Self::Other(other),
        }
    }

    fn error(&self) -> Error {
        match self {
            Self::Unavailable(failed) => Error::Unavailable(Box::new(failed.clone())),
            Self::Other(e) => copy_of(e),
        }
    }
}

/// An error of the same kind and content as `e`. Every kind but `Unavailable` is plain data;
/// an `Unavailable` (which [`Failure`] never copies) keeps its message.
fn copy_of(e: &Error) -> Error {
    match e {
        Error::Invalid(i) => Error::Invalid(i.clone()),
        Error::Refused(r) => Error::Refused(r.clone()),
        Error::NotFound { kind, id } => Error::NotFound {
            kind,
            id: id.clone(),
        },
        Error::KeyReused => Error::KeyReused,
        Error::InFlight => Error::InFlight,
        Error::Corrupt(m) => Error::Corrupt(m.clone()),
        Error::Payment(p) => Error::Payment(p.clone()),
        Error::Unavailable(source) => Error::Unavailable(source.to_string().into()),
    }
}
