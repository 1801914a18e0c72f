//! Top-ups in Redis, next to the ledger they credit.
//!
//! Each user's top-ups live in `<prefix>:wallet:{<tag>}:topups`, a hash in the same hash
//! slot as the user's account and ledger: `c:<client key>` → top-up id, `t:<id>` → the
//! top-up (JSON), `v:<id>` → its version. `lua/topup_open.lua` opens one per client key;
//! `lua/topup_replace.lua` swaps a version for the next and, for a credit, runs the ledger's
//! `ledger_post` in the same script, so a top-up is `succeeded` exactly when its credit is in
//! the ledger. The pending index, a sorted set by creation time, is written before a top-up
//! opens and trimmed after it settles; readers re-check each top-up, so a stale member only
//! costs a lookup.

use async_trait::async_trait;
use ticket_core::Timestamp;
use uuid::Uuid;

use super::redis::{corrupt, ledger_reply, stored_json, unavailable};
use super::{
    EntryKind, LedgerKey, MAX_BALANCE_MINOR, RedisWallet, Replaced, Request, Result, TopUp,
    TopUpStatus, TopUpStore, WalletError, check_user,
};

/// How old a pending-index member without its top-up must be to be dropped (an open that
/// indexed and then crashed).
const ORPHAN_AFTER_MS: f64 = 3_600_000.0;

fn parse_topup(text: &str) -> Result<TopUp> {
    serde_json::from_str(text).map_err(|e| corrupt(&format!("top-up: {e}")))
}

fn encode(t: &TopUp) -> Result<String> {
    serde_json::to_string(t).map_err(|e| WalletError::Unavailable(format!("encoding: {e}")))
}

impl RedisWallet {
    fn topups_key(&self, user: &str) -> String {
        format!("{}:topups", self.user_base(user))
    }

    fn pending_member(t: &TopUp) -> Result<String> {
        serde_json::to_string(&(&t.user, t.id))
            .map_err(|e| WalletError::Unavailable(format!("encoding: {e}")))
    }
}

#[async_trait]
impl TopUpStore for RedisWallet {
    async fn open_topup(&self, new: &TopUp) -> Result<(TopUp, bool)> {
        check_user(&new.user)?;
        let mut conn = self.conn.clone();
        // Indexed first: a crash between the two leaves a member the reconciler drops.
        let _: i64 = redis::cmd("ZADD")
            .arg(self.pending_key())
            .arg("NX")
            .arg(new.created_at.as_millis())
            .arg(Self::pending_member(new)?)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let reply: Vec<String> = self
            .topup_open
            .key(self.topups_key(&new.user))
            .arg(format!("c:{}", new.client_key))
            .arg(new.id.to_string())
            .arg(encode(new)?)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("ok"), _) => Ok((new.clone(), true)),
            (Some("dup"), Some(text)) => {
                let _: i64 = redis::cmd("ZREM")
                    .arg(self.pending_key())
                    .arg(Self::pending_member(new)?)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok((parse_topup(text)?, false))
            }
            _ => Err(corrupt("top-up open reply")),
        }
    }

    async fn topup(&self, user: &str, id: Uuid) -> Result<Option<TopUp>> {
        check_user(user)?;
        let text: Option<String> = redis::cmd("HGET")
            .arg(self.topups_key(user))
            .arg(format!("t:{id}"))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        text.map(|t| parse_topup(&t)).transpose()
    }

    async fn replace_topup(
        &self,
        expected: &TopUp,
        next: &TopUp,
        credit: Option<&LedgerKey>,
    ) -> Result<Replaced> {
        let user = expected.user.as_str();
        check_user(user)?;
        let (acct, ledger) = self.keys(user);
        let reference = next.id.to_string();
        let mut invocation = self.topup_replace.key(self.topups_key(user));
        invocation
            .key(&acct)
            .key(&ledger)
            .arg(expected.id.to_string())
            .arg(expected.version)
            .arg(encode(next)?)
            .arg(next.version);
        let mut written = None;
        let req;
        if let Some(key) = credit {
            req = Request::new(EntryKind::Charge, user, key, next.amount, &reference)?;
            let (entry, json) = stored_json(&req, next.updated_at)?;
            invocation
                .arg("1")
                .arg(format!("k:{key}"))
                .arg(next.amount.currency.as_str())
                .arg(req.delta())
                .arg(json)
                .arg(MAX_BALANCE_MINOR)
                .arg(user);
            written = Some((entry, &req));
        } else {
            invocation.arg("0");
        }
        let mut conn = self.conn.clone();
        let reply: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let status = reply.first().map(String::as_str);
        let entry = match (status, reply.get(1), reply.get(2), written) {
            (Some("missing"), ..) => {
                return Err(WalletError::InvalidRequest("no such top-up".into()));
            }
            (Some("changed"), Some(text), ..) => {
                return Ok(Replaced::Changed(parse_topup(text)?));
            }
            (Some("done"), Some(_), _, None) => None,
            (Some("done"), Some(credit), Some(value), Some((entry, req))) => {
                Some(ledger_reply(credit, value, req, entry)?)
            }
            (Some(refusal), Some(value), _, Some((entry, req))) => {
                // A refused credit: the script changed nothing.
                return Err(ledger_reply(refusal, value, req, entry)
                    .err()
                    .unwrap_or_else(|| corrupt("top-up credit reply")));
            }
            _ => return Err(corrupt("top-up replace reply")),
        };
        if next.status != TopUpStatus::Pending {
            let _: i64 = redis::cmd("ZREM")
                .arg(self.pending_key())
                .arg(Self::pending_member(next)?)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(Replaced::Done(next.clone(), entry))
    }

    async fn pending_topups(&self, limit: usize, now: Timestamp) -> Result<Vec<TopUp>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let stop = i64::try_from(limit).unwrap_or(i64::MAX).saturating_sub(1);
        let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(self.pending_key())
            .arg(0)
            .arg(stop)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut pending = Vec::new();
        for (member, opened_ms) in members {
            let (user, id): (String, Uuid) =
                serde_json::from_str(&member).map_err(|_| corrupt("pending member"))?;
            match self.topup(&user, id).await? {
                Some(t) if t.status == TopUpStatus::Pending => pending.push(t),
                // Not stored yet: maybe a top-up opening right now; dropped once old.
                None if (now.as_millis() as f64) - opened_ms < ORPHAN_AFTER_MS => {}
                _ => {
                    let _: i64 = redis::cmd("ZREM")
                        .arg(self.pending_key())
                        .arg(&member)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        Ok(pending)
    }
}
