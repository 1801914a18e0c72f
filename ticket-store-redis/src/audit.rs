//! Reading the audit trail: pages of a session's or a hold's records (`lua/audit_page.lua`),
//! and every record of a scope for [`Reservations::audit`](ticket_core::store::Reservations).
//!
//! Records live in the session's slot: `arec` (hash, record id → packed record) and `alog`
//! (sorted set, score 0, member the record id). Record ids are
//! [`AuditId::sequenced`](ticket_core::ids::AuditId::sequenced)`(at, n, session)` with a per-session
//! counter `n`, so their byte order is `(at, id)` order and a page is one `ZRANGEBYLEX`.
//! Nothing is trimmed: the trail is complete.

use ticket_core::ids::{HoldId, SessionId};
use ticket_core::model::audit::{AuditRecord, AuditScope};
use ticket_core::model::page::{AuditCursor, AuditQuery, MAX_PAGE_LIMIT, PageOrder};
use ticket_core::{Error, Result};

use crate::codec::audit_record;
use crate::reply::{array, opt_text};
use crate::store::RedisStore;

/// The record id of a cursor as the indexes store it (32 lower-case hex digits).
pub(crate) fn cursor_id(c: &AuditCursor) -> String {
    c.id.as_uuid().simple().to_string()
}

impl RedisStore {
    /// One page of the session's records (`hold: None`) or of one of its holds'.
    pub(crate) async fn audit_page_in(
        &self,
        session: SessionId,
        hold: Option<HoldId>,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>> {
        let mut inv = self.session_call(&self.inner.scripts.audit_page, session);
        inv.arg(if hold.is_some() { "hold" } else { "session" })
            .arg(hold.map(|h| h.to_string()).unwrap_or_default())
            .arg(match query.order {
                PageOrder::OldestFirst => "asc",
                PageOrder::NewestFirst => "desc",
            })
            .arg(query.after.as_ref().map(cursor_id).unwrap_or_default())
            .arg(query.limit);
        let reply = self.run(&inv).await?;
        array(&reply, "audit page")?
            .iter()
            .map(|v| match opt_text(v, "audit record")? {
                Some(packed) => audit_record(session, packed),
                None => Err(Error::Corrupt(format!(
                    "session {session}: an indexed audit record is missing"
                ))),
            })
            .collect()
    }

    /// Up to `limit` records of `scope`, oldest first, a page at a time.
    pub(crate) async fn audit_all(
        &self,
        scope: &AuditScope,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        use ticket_core::store::Reservations;
        let mut out: Vec<AuditRecord> = Vec::new();
        let mut query = AuditQuery {
            scope: scope.clone(),
            order: PageOrder::OldestFirst,
            after: None,
            limit: MAX_PAGE_LIMIT,
        };
        while out.len() < limit {
            query.limit = (limit - out.len()).min(MAX_PAGE_LIMIT);
            let page = self.audit_page(&query).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        Ok(out)
    }
}
