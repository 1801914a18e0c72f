//! Queue joins, views and leaves sent in batches (coalesced per session by
//! [`ticket_core::backend::coalesce`]): one `join`, `view` or `leave` script call answers
//! every request of a session that arrived while earlier calls were in flight.
//!
//! Joins are applied one after another in arrival order, each all-or-nothing, as a lone
//! join would be. A view is a read (plus the settling every queue call does: admissions
//! older than a minute forgotten, ACTIVE tickets past their TTL expired), so a batch of
//! views answers each as of its own instant. Leaves are applied one after another, each
//! all-or-nothing, and written with one commit; a user named twice in a batch leaves once and
//! both get the LEFT ticket.

use redis::Value;
use ticket_core::backend::coalesce::BatchKind;
use ticket_core::ids::{SessionId, UserId};
use ticket_core::model::audit::Actor;
use ticket_core::{Error, Result, Timestamp};

use crate::reply::to_json;
use crate::store::{RedisStore, batch_session};

/// One join request, as the `join` script reads it (6 arguments, see `lua/join.lua`).
pub(crate) struct JoinArgs {
    pub(crate) args: [String; 6],
}

/// One view request (2 arguments, see `lua/view.lua`).
pub(crate) struct ViewArgs {
    pub(crate) now: Timestamp,
    pub(crate) user: String,
}

/// One leave request (3 arguments, see `lua/leave.lua`).
pub(crate) struct LeaveArgs {
    pub(crate) now: Timestamp,
    pub(crate) actor: String,
    pub(crate) user: String,
}

impl LeaveArgs {
    pub(crate) fn new(user: &UserId, now: Timestamp) -> Result<Self> {
        Ok(Self {
            now,
            actor: to_json(&Actor::User(user.clone()))?,
            user: user.as_str().to_owned(),
        })
    }
}

fn replies(reply: Value, what: &str) -> Result<Vec<Value>> {
    match reply {
        Value::Array(replies) => Ok(replies),
        other => Err(Error::Corrupt(format!("{what} batch reply: {other:?}"))),
    }
}

impl BatchKind for JoinArgs {
    type Key = SessionId;
    type Request = Self;
    type Answer = Value;
    type Context = RedisStore;

    async fn run(
        store: &RedisStore,
        sessions: &[SessionId],
        reqs: Vec<Self>,
    ) -> Result<Vec<Value>> {
        let session = batch_session(sessions)?;
        let mut inv = store.session_call(&store.inner.scripts.join, session);
        inv.arg(reqs.len());
        for r in &reqs {
            inv.arg(&r.args[..]);
        }
        replies(store.run(&inv).await?, "join")
    }
}

impl BatchKind for ViewArgs {
    type Key = SessionId;
    type Request = Self;
    type Answer = Value;
    type Context = RedisStore;

    async fn run(
        store: &RedisStore,
        sessions: &[SessionId],
        reqs: Vec<Self>,
    ) -> Result<Vec<Value>> {
        let session = batch_session(sessions)?;
        let mut inv = store.session_call(&store.inner.scripts.view, session);
        inv.arg(&store.inner.queue_actor).arg(reqs.len());
        for r in &reqs {
            inv.arg(r.now.as_millis()).arg(&r.user);
        }
        replies(store.run(&inv).await?, "view")
    }
}

impl BatchKind for LeaveArgs {
    type Key = SessionId;
    type Request = Self;
    type Answer = Value;
    type Context = RedisStore;

    async fn run(
        store: &RedisStore,
        sessions: &[SessionId],
        reqs: Vec<Self>,
    ) -> Result<Vec<Value>> {
        let session = batch_session(sessions)?;
        let mut inv = store.session_call(&store.inner.scripts.leave, session);
        inv.arg(reqs.len());
        for r in &reqs {
            inv.arg(r.now.as_millis()).arg(&r.actor).arg(&r.user);
        }
        replies(store.run(&inv).await?, "leave")
    }
}
