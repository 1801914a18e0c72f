//! Hold requests sent in batches (coalesced per session by
//! [`ticket_core::backend::coalesce`]): one pipeline per batch claims the ids in the global
//! hold index and runs the `hold` script, then settles what the claims revealed.

use redis::Value;
use ticket_core::backend::coalesce::BatchKind;
use ticket_core::ids::{HoldId, SessionId};
use ticket_core::model::audit::Actor;
use ticket_core::model::hold::{HoldState, TransitionRequest};
use ticket_core::{Error, Result, Timestamp};

use crate::reply::{array, int, tagged, unavailable};
use crate::scripts::{Call, function_missing};
use crate::store::{RedisStore, batch_session};

/// One hold request, as the `hold` script reads it (14 arguments, see `lua/hold.lua`).
pub(crate) struct HoldArgs {
    /// The request's instant (also `args[2]`).
    pub(crate) now: Timestamp,
    pub(crate) args: [String; 14],
}

impl HoldArgs {
    fn id(&self) -> &str {
        &self.args[0]
    }
}

impl BatchKind for HoldArgs {
    type Key = SessionId;
    type Request = Self;
    type Answer = Value;
    type Context = RedisStore;

    /// One pipeline, one round trip: the `claim_ids` script (`HSETNX` of every hold id in the
    /// global index), then the `hold` script for the whole batch. A request whose id was already
    /// taken in another session is compensated (its new hold released at once) and answered
    /// `dup`; refused requests give their index entry back.
    async fn run(
        store: &RedisStore,
        sessions: &[SessionId],
        reqs: Vec<Self>,
    ) -> Result<Vec<Value>> {
        let session = batch_session(sessions)?;
        let reqs = reqs.as_slice();
        let now = reqs.first().map_or(Timestamp::from_millis(0), |r| r.now);
        let keys = &store.inner.keys;
        let scripts = &store.inner.scripts;
        let index = keys.hold_index();
        // The id claims, then the batch, both by FCALL, sent as one pipeline.
        let commands = || {
            let mut claim = Call::new(&scripts.claim_ids, &index);
            claim.arg(session.to_string());
            let mut batch = store.session_call(&scripts.hold, session);
            batch.arg(reqs.len());
            for r in reqs {
                claim.arg(r.id());
                batch.arg(&r.args[..]);
            }
            (claim, batch)
        };
        let (claim, batch) = commands();
        let mut pipe = redis::pipe();
        pipe.add_command(claim.into_cmd())
            .add_command(batch.into_cmd());
        let mut conn = store.conn();
        let (claimed, replies) = match pipe.query_async::<(Value, Value)>(&mut conn).await {
            Ok((claimed, replies)) => {
                let claimed = array(&claimed, "claim_ids")?
                    .iter()
                    .map(|v| Ok(int(v, "claim")? == 1))
                    .collect::<Result<Vec<bool>>>()?;
                (claimed, replies)
            }
            Err(e) if function_missing(&e) => {
                // A restarted or flushed server: load the library and run both again, then
                // read back which claims are ours (the first claim may have run already).
                store.reload_library(&mut conn).await?;
                let (claim, batch) = commands();
                let _: Value = claim
                    .cmd()
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let replies: Value = batch
                    .cmd()
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let owners: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(&index)
                    .arg(reqs.iter().map(HoldArgs::id).collect::<Vec<_>>())
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let mine = session.to_string();
                let claimed = owners.iter().map(|o| o.as_deref() == Some(&mine)).collect();
                (claimed, replies)
            }
            Err(e) => return Err(unavailable(e)),
        };
        let Value::Array(mut replies) = replies else {
            return Err(Error::Corrupt(format!("hold batch reply: {replies:?}")));
        };
        let mut give_back = Vec::new();
        for ((req, claimed), reply) in reqs.iter().zip(claimed).zip(replies.iter_mut()) {
            let tag = tagged(reply, "hold")?.0.to_owned();
            match (tag.as_str(), claimed) {
                ("ok", false) => {
                    store.release_duplicate(session, req, now).await?;
                    *reply = Value::Array(vec![Value::SimpleString("dup".into())]);
                }
                ("err", true) => give_back.push(req.id().to_owned()),
                _ => {}
            }
        }
        if !give_back.is_empty() {
            // Best effort, off the callers' path: an index entry without a hold reads as
            // NotFound anyway.
            let mut conn = store.conn();
            tokio::spawn(async move {
                if let Err(e) = redis::cmd("HDEL")
                    .arg(index)
                    .arg(give_back)
                    .exec_async(&mut conn)
                    .await
                {
                    tracing::debug!(error = %e, "could not drop index entries of refused holds");
                }
            });
        }
        Ok(replies)
    }
}

impl RedisStore {
    /// A hold was created under an id that another session already uses: release it at once
    /// (units back on sale, audited) so nothing is kept under an id that leads elsewhere.
    async fn release_duplicate(
        &self,
        session: SessionId,
        req: &HoldArgs,
        now: Timestamp,
    ) -> Result<()> {
        let id: HoldId = req
            .id()
            .parse()
            .map_err(|_| Error::Corrupt(format!("hold id {:?}", req.id())))?;
        self.transition_in(
            session,
            TransitionRequest {
                hold: id,
                to: HoldState::Released,
                now,
                actor: Actor::system("hold"),
                reason: "hold id already used in another session".into(),
                correlation_id: None,
                payment_ref: None,
            },
        )
        .await
        .map(drop)
    }
}
