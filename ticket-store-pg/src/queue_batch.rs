//! Queue joins and leaves sent in batches per session: joins (leaves) of a session that
//! arrive while a join (leave) batch of that session is in flight wait, then go together as
//! one `tr_join_batch` (`tr_leave_batch`) call, one transaction and one commit (coalesced by
//! [`ticket_core::backend::coalesce`] with one batch per session in flight).
//!
//! Every join and leave locks its session's queue row until its commit is flushed, so one
//! per transaction queues a burst of users behind one WAL flush each. A batch takes the row
//! once and commits once for many requests, applying them in arrival order, each exactly as
//! `tr_join` or `tr_leave` applies one alone. One batch per session and kind is in flight at
//! a time (a second one would only wait for the row lock), so joins (leaves) of a session
//! reach the database in arrival order; sessions do not wait for each other. A leave batch
//! takes the session's advisory lock first, as a hold batch does (see `sql/leave.sql`).

use ticket_core::backend::coalesce::BatchKind;
use ticket_core::ids::SessionId;
use ticket_core::{Error, Result};

use crate::store::{PgStore, db_error};

/// Joins, each request `{user, now, pre, max, id, actor}` (`tr_join_batch`).
pub(crate) struct JoinBatch;

/// Leaves, each request `{user, now, actor}` (`tr_leave_batch`).
pub(crate) struct LeaveBatch;

impl BatchKind for JoinBatch {
    type Key = SessionId;
    type Request = serde_json::Value;
    type Answer = serde_json::Value;
    type Context = PgStore;

    async fn run(
        store: &PgStore,
        sessions: &[SessionId],
        reqs: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>> {
        run_queue(store, "SELECT tr_join_batch($1, $2)", sessions, reqs).await
    }
}

impl BatchKind for LeaveBatch {
    type Key = SessionId;
    type Request = serde_json::Value;
    type Answer = serde_json::Value;
    type Context = PgStore;

    async fn run(
        store: &PgStore,
        sessions: &[SessionId],
        reqs: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>> {
        run_queue(store, "SELECT tr_leave_batch($1, $2)", sessions, reqs).await
    }
}

/// One batch call (`call` binds the session and the requests): one answer per request, in
/// order.
async fn run_queue(
    store: &PgStore,
    call: &'static str,
    sessions: &[SessionId],
    reqs: Vec<serde_json::Value>,
) -> Result<Vec<serde_json::Value>> {
    let session = sessions
        .first()
        .ok_or_else(|| Error::Corrupt("a queue batch without a session".into()))?;
    let answer: serde_json::Value = sqlx::query_scalar(call)
        .bind(session.as_uuid())
        .bind(serde_json::Value::Array(reqs))
        .fetch_one(&store.inner.pool)
        .await
        .map_err(db_error)?;
    match answer {
        serde_json::Value::Array(answers) => Ok(answers),
        other => Err(Error::Corrupt(format!("{call} answered {other}"))),
    }
}
