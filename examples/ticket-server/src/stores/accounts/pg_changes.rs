//! The PostgreSQL backend's admin changes (role, tiers, blocked) with their audit records,
//! and the logout-everywhere step they share with logout and the admin bootstrap.

use ticket_core::Timestamp;

use super::pg::{PgAccounts, USER_COLUMNS, UserRow, db, parse_id, user_from_row};
use super::{AccountAuditRecord, AccountChange, AccountError, Result, Role, User, UserId};

/// `seq, at, actor::text, target::text, change, from_value, to_value` of `account_audit`.
pub(super) type AuditRow = (i64, i64, String, String, String, String, String);

pub(super) const AUDIT_COLUMNS: &str =
    "seq, at, actor::text, target::text, change, from_value, to_value";

pub(super) fn audit_from_row(
    (seq, at, actor, target, change, from, to): AuditRow,
) -> Result<AccountAuditRecord> {
    Ok(AccountAuditRecord {
        seq: u64::try_from(seq).map_err(|_| AccountError::Corrupt(format!("audit seq {seq}")))?,
        at: Timestamp::from_millis(at),
        actor: parse_id(&actor, "audit actor")?,
        target: parse_id(&target, "audit target")?,
        change: AccountChange::parse(&change)?,
        from,
        to,
    })
}

/// Revokes every family of `user` and bumps their token version, in the caller's
/// transaction (families locked in id order, so two of these never deadlock).
pub(super) async fn log_out_everywhere(conn: &mut sqlx::PgConnection, user: &str) -> Result<()> {
    sqlx::query(
        "WITH revoked AS ( \
           UPDATE refresh_families SET revoked = true WHERE id IN ( \
             SELECT id FROM refresh_families \
             WHERE user_id = $1::uuid AND NOT revoked \
             ORDER BY id FOR UPDATE)) \
         UPDATE users SET token_version = token_version + 1 WHERE id = $1::uuid",
    )
    .bind(user)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The write an admin change makes to the target's row.
pub(super) enum Update {
    Role(Role),
    Tiers(Vec<String>),
    Blocked(bool),
}

impl PgAccounts {
    /// One admin change in one transaction: takes the accounts' change lock (so the "last
    /// admin" count and the audit order cannot race), locks the target's row, lets `decide`
    /// refuse or pick `(from, to, update)` (`None`: nothing to change), then writes the
    /// update, its side effects (token version, logout) and the audit record.
    pub(super) async fn change<F>(
        &self,
        actor: UserId,
        target: UserId,
        change: AccountChange,
        now: Timestamp,
        decide: F,
    ) -> Result<Option<AccountAuditRecord>>
    where
        F: FnOnce(&User) -> Result<Option<(String, String, Update)>> + Send,
    {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.account_changes'))",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1::uuid FOR UPDATE");
        let row = sqlx::query_as::<_, UserRow>(&sql)
            .bind(target.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or(AccountError::NotFound)?;
        let user = user_from_row(row)?;
        let Some((from, to, update)) = decide(&user)? else {
            return Ok(None);
        };
        let id = target.to_string();
        match update {
            Update::Role(role) => {
                if user.role == Role::Admin {
                    let admins: i64 =
                        sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'ADMIN'")
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db)?;
                    if admins <= 1 {
                        return Err(AccountError::LastAdmin);
                    }
                }
                sqlx::query(
                    "UPDATE users SET role = $2, token_version = token_version + 1 \
                     WHERE id = $1::uuid",
                )
                .bind(&id)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            Update::Tiers(tiers) => {
                sqlx::query("UPDATE users SET tiers = $2 WHERE id = $1::uuid")
                    .bind(&id)
                    .bind(&tiers)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            Update::Blocked(blocked) => {
                sqlx::query("UPDATE users SET blocked = $2 WHERE id = $1::uuid")
                    .bind(&id)
                    .bind(blocked)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if blocked {
                    log_out_everywhere(&mut tx, &id).await?;
                }
            }
        }
        let sql = format!(
            "INSERT INTO account_audit (at, actor, target, change, from_value, to_value) \
             VALUES ($1, $2::uuid, $3::uuid, $4, $5, $6) RETURNING {AUDIT_COLUMNS}"
        );
        let row = sqlx::query_as::<_, AuditRow>(&sql)
            .bind(now.as_millis())
            .bind(actor.to_string())
            .bind(&id)
            .bind(change.as_str())
            .bind(&from)
            .bind(&to)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        audit_from_row(row).map(Some)
    }
}
