//! Reading the audit trail back from a session's stream.

use ticket_core::ids::SessionId;
use ticket_core::model::audit::AuditRecord;
use ticket_core::{Result, Timestamp};

use crate::codec::{audit_entry, audit_record};
use crate::reply::{array, text};
use crate::store::RedisStore;

impl RedisStore {
    /// Records of one session: `scope` is `session`, `hold` (subject: a hold id) or `user`
    /// (subject: a user), as `lua/audit_read.lua` takes them.
    pub(crate) async fn audit_of(
        &self,
        session: SessionId,
        scope: &str,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        let mut inv = self.session_call(
            &self.inner.scripts.audit_read,
            session,
            Timestamp::from_millis(0),
        );
        inv.arg(scope).arg(subject).arg(limit);
        let reply = self.run(&inv).await?;
        let items = array(&reply, "audit")?;
        if scope == "session" {
            let mut out = Vec::new();
            for entry in items {
                out.extend(audit_entry(session, entry)?);
            }
            out.truncate(limit);
            Ok(out)
        } else {
            items
                .iter()
                .map(|r| audit_record(session, text(r, "audit record")?))
                .collect()
        }
    }
}
