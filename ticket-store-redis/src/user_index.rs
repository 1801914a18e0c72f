//! Each user's index across sessions: one sorted set per user, `P:{u:<user>}`, score 0,
//! written by the session scripts in the same atomic step as the hold or record it lists
//! (the one key they write outside the session's slot; see `lua/lib/base.lua`):
//!
//! * `h:<created-at key>:<hold id>:<session>` per hold: `ZREVRANGEBYLEX` pages the user's
//!   holds newest first by `(created_at, id)`;
//! * `a:<record id>:<session>` per audit record: pages the user's trail by `(at, id)`.
//!
//! A page is one range read, then one pipeline that reads its holds or records from their
//! sessions (one `HMGET` per session of the page): two round trips, whatever the page size.

use std::collections::HashMap;

use redis::Value;
use ticket_core::ids::{HoldId, SessionId, UserId};
use ticket_core::model::audit::AuditRecord;
use ticket_core::model::page::{AuditQuery, HoldCursor, HoldPage, PageOrder};
use ticket_core::{Error, Result, Timestamp};

use crate::audit::cursor_id;
use crate::codec::{audit_record, hold};
use crate::reply::{opt_text, unavailable};
use crate::store::RedisStore;

/// A timestamp as a fixed-width key whose byte order is time order (16 hex digits of the
/// milliseconds with the sign bit flipped, so times before 1970 sort first too).
pub(crate) fn time_key(at: Timestamp) -> String {
    // Flipping the sign bit maps i64 order onto u64 order.
    format!("{:016x}", (at.as_millis() as u64) ^ (1 << 63))
}

/// `<id>:<session>` of an index member (after its `h:<key>:` or `a:` prefix).
fn id_and_session(rest: &str, member: &str) -> Result<(String, SessionId)> {
    let (id, session) = rest
        .rsplit_once(':')
        .ok_or_else(|| Error::Corrupt(format!("user index member {member:?}")))?;
    let session = session
        .parse()
        .map_err(|_| Error::Corrupt(format!("user index member {member:?}")))?;
    Ok((id.to_owned(), session))
}

impl RedisStore {
    /// One page of the user's holds, newest first (see the module docs).
    pub(crate) async fn user_holds(
        &self,
        user: &UserId,
        after: Option<HoldCursor>,
        limit: usize,
    ) -> Result<HoldPage> {
        let max = after.map_or_else(
            || "(h;".to_owned(),
            |c| format!("(h:{}:{}", time_key(c.at), c.id),
        );
        let members: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
            .arg(self.inner.keys.user(user))
            .arg(max)
            .arg("[h:")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut wanted = Vec::with_capacity(members.len());
        for m in &members {
            // h:<16 hex digits>:<hold id>:<session>
            let rest = m
                .get(19..)
                .ok_or_else(|| Error::Corrupt(format!("user index member {m:?}")))?;
            let (id, session) = id_and_session(rest, m)?;
            let id: HoldId = id
                .parse()
                .map_err(|_| Error::Corrupt(format!("user index member {m:?}")))?;
            wanted.push((session, id));
        }
        let values = self
            .read_grouped(&wanted, |s| self.inner.keys.session_key(s, "holds"))
            .await?;
        let holds = wanted
            .iter()
            .zip(values.iter())
            .map(|((session, id), v)| hold(*session, *id, v))
            .collect::<Result<Vec<_>>>()?;
        Ok(HoldPage::of(holds, limit, HoldCursor::of))
    }

    /// One page of the user's audit trail across sessions (see the module docs).
    pub(crate) async fn user_audit(
        &self,
        user: &UserId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>> {
        let after = query.after.as_ref().map(cursor_id);
        let mut cmd = match query.order {
            PageOrder::OldestFirst => {
                let mut c = redis::cmd("ZRANGEBYLEX");
                c.arg(self.inner.keys.user(user))
                    .arg(after.map_or_else(|| "[a:".to_owned(), |id| format!("[a:{id};")))
                    .arg("(a;");
                c
            }
            PageOrder::NewestFirst => {
                let mut c = redis::cmd("ZREVRANGEBYLEX");
                c.arg(self.inner.keys.user(user))
                    .arg(after.map_or_else(|| "(a;".to_owned(), |id| format!("(a:{id}")))
                    .arg("[a:");
                c
            }
        };
        cmd.arg("LIMIT").arg(0).arg(query.limit);
        let members: Vec<String> = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let wanted = members
            .iter()
            .map(|m| {
                let rest = m
                    .get(2..)
                    .ok_or_else(|| Error::Corrupt(format!("user index member {m:?}")))?;
                id_and_session(rest, m).map(|(id, s)| (s, id))
            })
            .collect::<Result<Vec<_>>>()?;
        let values = self
            .read_grouped(&wanted, |s| self.inner.keys.session_key(s, "arec"))
            .await?;
        wanted
            .iter()
            .zip(values.iter())
            .map(|((session, id), v)| match opt_text(v, "audit record")? {
                Some(packed) => audit_record(*session, packed),
                None => Err(Error::Corrupt(format!(
                    "session {session}: indexed audit record {id} is missing"
                ))),
            })
            .collect()
    }

    /// Reads field `f` of hash `key(s)` for every `(s, f)` in one pipeline, one `HMGET` per
    /// session, and returns the values in the order asked.
    async fn read_grouped<F: ToString>(
        &self,
        wanted: &[(SessionId, F)],
        key: impl Fn(SessionId) -> String,
    ) -> Result<Vec<Value>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: Vec<(SessionId, Vec<usize>)> = Vec::new();
        let mut group_of: HashMap<SessionId, usize> = HashMap::new();
        for (i, (s, _)) in wanted.iter().enumerate() {
            let g = *group_of.entry(*s).or_insert_with(|| {
                groups.push((*s, Vec::new()));
                groups.len() - 1
            });
            if let Some((_, members)) = groups.get_mut(g) {
                members.push(i);
            }
        }
        let mut pipe = redis::pipe();
        for (s, members) in &groups {
            let cmd = pipe.cmd("HMGET").arg(key(*s));
            for &i in members {
                if let Some((_, f)) = wanted.get(i) {
                    cmd.arg(f.to_string());
                }
            }
        }
        let replies: Vec<Vec<Value>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut out = vec![Value::Nil; wanted.len()];
        for ((_, members), values) in groups.iter().zip(replies) {
            for (&i, v) in members.iter().zip(values) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = v;
                }
            }
        }
        Ok(out)
    }
}
