//! Queue reads and leaves sent in batches, as joins are (see [`crate::batch`]): one `view`
//! or `leave` script call answers every request of a session that arrived while earlier
//! calls were in flight.
//!
//! A view is a read (plus the settling every queue call does: admissions older than a minute
//! forgotten, ACTIVE tickets past their TTL expired), so a batch of views answers each as of
//! its own instant. Leaves are applied one after another, each all-or-nothing, and written
//! with one commit; a user named twice in a batch leaves once and both get the LEFT ticket.

use std::sync::Arc;

use dashmap::DashMap;
use redis::Value;
use ticket_core::ids::{SessionId, UserId};
use ticket_core::model::audit::Actor;
use ticket_core::{Error, Result, Timestamp};

use crate::batch::{Batch, Batched};
use crate::reply::to_json;
use crate::store::RedisStore;

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

impl Batched for ViewArgs {
    async fn run(store: &RedisStore, session: SessionId, reqs: &[Self]) -> Result<Vec<Value>> {
        let now = reqs.first().map_or(Timestamp::from_millis(0), |r| r.now);
        let mut inv = store.session_call(&store.inner.scripts.view, session, now);
        inv.arg(&store.inner.queue_actor).arg(reqs.len());
        for r in reqs {
            inv.arg(r.now.as_millis()).arg(&r.user);
        }
        replies(store.run(&inv).await?, "view")
    }

    fn batchers(store: &RedisStore) -> &DashMap<SessionId, Arc<Batch<Self>>> {
        &store.inner.batchers.views
    }
}

impl Batched for LeaveArgs {
    async fn run(store: &RedisStore, session: SessionId, reqs: &[Self]) -> Result<Vec<Value>> {
        let now = reqs.first().map_or(Timestamp::from_millis(0), |r| r.now);
        let mut inv = store.session_call(&store.inner.scripts.leave, session, now);
        inv.arg(reqs.len());
        for r in reqs {
            inv.arg(r.now.as_millis()).arg(&r.actor).arg(&r.user);
        }
        replies(store.run(&inv).await?, "leave")
    }

    fn batchers(store: &RedisStore) -> &DashMap<SessionId, Arc<Batch<Self>>> {
        &store.inner.batchers.leaves
    }
}
