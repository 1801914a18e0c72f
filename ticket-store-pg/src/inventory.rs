//! Events, sessions and their stock: created in one transaction, read in one statement.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ticket_core::ids::{EventId, SessionId};
use ticket_core::model::counts::{GradeStateCounts, HoldStateCounts, SessionCounts};
use ticket_core::model::inventory::{
    GradeCounts, InventoryPlan, InventorySnapshot, SeatState, SeatStatus,
};
use ticket_core::model::session::{Event, Session};
use ticket_core::store::Inventory;
use ticket_core::{Error, InvalidInput, Result};

use crate::rows::{count, text};
use crate::store::{PgStore, db_error, decode};

impl PgStore {
    /// The session as last read by this store (cached: the hold path prices with it), or
    /// `NotFound`. Its plan may be older than a capacity change made through another store:
    /// prices of seats never change, a withdrawn seat is refused by the functions, and a
    /// seat added elsewhere is found by [`PgStore::current_session`] (see `Reservations::hold`).
    pub(crate) async fn session_def(&self, id: SessionId) -> Result<Arc<Session>> {
        if let Some(s) = self.inner.sessions.get(&id) {
            return Ok(s.clone());
        }
        Ok(self.current_session(id).await?.0)
    }

    /// The session with its current plan (capacity changes applied) and the plan's version,
    /// read from the database in one statement; refreshes the cache.
    pub(crate) async fn current_session(&self, id: SessionId) -> Result<(Arc<Session>, i64)> {
        let row: Option<(serde_json::Value, Option<serde_json::Value>, i64)> =
            sqlx::query_as("SELECT definition, plan, plan_version FROM sessions WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_error)?;
        let (definition, plan, version) = row.ok_or_else(|| Error::not_found("session", id))?;
        let mut session: Session = decode(definition, "stored session")?;
        if let Some(plan) = plan {
            session.inventory = decode(plan, "stored plan")?;
        }
        let session = Arc::new(session);
        self.inner.sessions.insert(id, session.clone());
        Ok((session, version))
    }

    /// `event` with each session's current plan: `plans` maps session ids to the plans of
    /// sessions whose capacity changed (the stored definition stays as created, for
    /// `create_event`'s comparison).
    fn with_current_plans(
        event: serde_json::Value,
        plans: Option<serde_json::Value>,
    ) -> Result<Event> {
        let mut event: Event = decode(event, "stored event")?;
        let plans: HashMap<uuid::Uuid, InventoryPlan> = match plans {
            Some(p) => decode(p, "stored plans")?,
            None => HashMap::new(),
        };
        for s in &mut event.sessions {
            if let Some(plan) = plans.get(&s.id.as_uuid()) {
                s.inventory = plan.clone();
            }
        }
        Ok(event)
    }
}

/// The plans of an event's sessions whose capacity changed, as a `jsonb` object by session id
/// (NULL when none did), for a query on `events e`.
const CURRENT_PLANS: &str = "(SELECT jsonb_object_agg(s.id, s.plan) FROM sessions s
                               WHERE s.event_id = e.id AND s.plan IS NOT NULL)";

/// Capacity per grade, in plan order.
fn grade_capacities(plan: &InventoryPlan) -> (Vec<String>, Vec<i32>) {
    let grades = plan.grades();
    let caps = grades
        .iter()
        .map(|g| match plan {
            InventoryPlan::General { grades } => grades
                .iter()
                .filter(|s| &s.grade == g)
                .map(|s| i64::from(s.capacity))
                .sum::<i64>(),
            InventoryPlan::Seated { seats } => {
                seats.iter().filter(|s| &s.grade == g).count() as i64
            }
        })
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
        .collect();
    (grades.into_iter().map(String::from).collect(), caps)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::Corrupt(format!("not serialisable: {e}")))
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

#[async_trait]
impl Inventory for PgStore {
    /// One transaction: the event, its sessions, their stock rows, seats and queue rows. A
    /// repeat with the same definition is `Ok`; another definition under a used event or
    /// session id is `Invalid(Definition)` and the transaction is rolled back.
    async fn create_event(&self, event: &Event) -> Result<()> {
        event.validate()?;
        let mut tx = self.inner.pool.begin().await.map_err(db_error)?;
        let inserted = sqlx::query(
            "INSERT INTO events (id, definition) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id.as_uuid())
        .bind(to_json(event)?)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 0 {
            let stored: serde_json::Value =
                sqlx::query_scalar("SELECT definition FROM events WHERE id = $1")
                    .bind(event.id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
            let stored: Event = decode(stored, "stored event")?;
            return if stored == *event {
                Ok(())
            } else {
                Err(InvalidInput::Definition(format!(
                    "event {} exists with another definition",
                    event.id
                ))
                .into())
            };
        }
        for s in &event.sessions {
            let created =
                sqlx::query("INSERT INTO sessions (id, event_id, definition) VALUES ($1, $2, $3)")
                    .bind(s.id.as_uuid())
                    .bind(event.id.as_uuid())
                    .bind(to_json(s)?)
                    .execute(&mut *tx)
                    .await;
            match created {
                Err(e) if unique_violation(&e) => {
                    return Err(InvalidInput::Definition(format!(
                        "session {} already exists",
                        s.id
                    ))
                    .into());
                }
                other => other.map_err(db_error)?,
            };
            let (grades, caps) = grade_capacities(&s.inventory);
            sqlx::query(
                "INSERT INTO stock (session_id, grade, ord, capacity, available, held, sold)
                 SELECT $1, g, o, c, c, 0, 0 FROM unnest($2::text[], $3::int[])
                        WITH ORDINALITY AS u(g, c, o)",
            )
            .bind(s.id.as_uuid())
            .bind(&grades)
            .bind(&caps)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if let InventoryPlan::Seated { seats } = &s.inventory {
                let ids: Vec<&str> = seats.iter().map(|x| x.id.as_str()).collect();
                let grades: Vec<&str> = seats.iter().map(|x| x.grade.as_str()).collect();
                sqlx::query(
                    "INSERT INTO seats (session_id, seat_id, ord, grade)
                     SELECT $1, id, o, g FROM unnest($2::text[], $3::text[])
                            WITH ORDINALITY AS u(id, g, o)",
                )
                .bind(s.id.as_uuid())
                .bind(&ids)
                .bind(&grades)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            sqlx::query("INSERT INTO queues (session_id) VALUES ($1)")
                .bind(s.id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            sqlx::query("INSERT INTO session_log (session_id) VALUES ($1)")
                .bind(s.id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// The event with each session's current plan, in one statement.
    async fn event(&self, id: EventId) -> Result<Event> {
        let row: Option<(serde_json::Value, Option<serde_json::Value>)> = sqlx::query_as(&format!(
            "SELECT e.definition, {CURRENT_PLANS} FROM events e WHERE e.id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let (event, plans) = row.ok_or_else(|| Error::not_found("event", id))?;
        Self::with_current_plans(event, plans)
    }

    /// One statement on the primary key (`id > $1 ORDER BY id LIMIT $2`): one MVCC snapshot,
    /// and events appear only once their creating transaction committed. Each session with its
    /// current plan. PostgreSQL orders
    /// `uuid` by its bytes, as [`EventId`] does.
    async fn events(&self, after: Option<EventId>, limit: usize) -> Result<Vec<Event>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(serde_json::Value, Option<serde_json::Value>)> = sqlx::query_as(&format!(
            "SELECT e.definition, {CURRENT_PLANS} FROM events e
                  WHERE $1::uuid IS NULL OR e.id > $1
                  ORDER BY e.id
                  LIMIT $2"
        ))
        .bind(after.map(|id| id.as_uuid()))
        .bind(limit)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|(event, plans)| Self::with_current_plans(event, plans))
            .collect()
    }

    /// One statement (one snapshot): the grade rows of `stock` (with their `paying` column) and
    /// the session's `session_log` row (holds by state), both kept by every operation in its
    /// own transaction; no scan of holds or audit records.
    async fn counts(&self, id: SessionId) -> Result<SessionCounts> {
        let row: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT jsonb_build_object(
                 'grades', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                'grade', grade, 'capacity', capacity, 'available', available,
                                'held', held, 'paying', paying, 'sold', sold) ORDER BY ord), '[]')
                              FROM stock WHERE session_id = $1),
                 'holds', to_jsonb(l))
               FROM session_log l WHERE l.session_id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let row = row.ok_or_else(|| Error::not_found("session", id))?;
        let grades = row
            .get("grades")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| Error::Corrupt(format!("counts {row}")))?
            .iter()
            .map(|g| {
                let n = |f: &str| -> Result<u32> {
                    u32::try_from(count(g, f)?)
                        .map_err(|_| Error::Corrupt(format!("{f} out of range")))
                };
                Ok(GradeStateCounts {
                    grade: ticket_core::model::inventory::Grade::new(text(g, "grade")?)
                        .map_err(|e| Error::Corrupt(format!("stored grade: {e}")))?,
                    capacity: n("capacity")?,
                    available: n("available")?,
                    held: n("held")?,
                    paying: n("paying")?,
                    sold: n("sold")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let h = row.get("holds").cloned().unwrap_or_default();
        let holds = HoldStateCounts {
            held: count(&h, "held")?,
            paying: count(&h, "paying")?,
            confirmed: count(&h, "confirmed")?,
            expired: count(&h, "expired")?,
            released: count(&h, "released")?,
            payment_failed: count(&h, "payment_failed")?,
            cancelled: count(&h, "cancelled")?,
            refunded: count(&h, "refunded")?,
        };
        Ok(SessionCounts {
            session: id,
            grades,
            holds,
        })
    }

    /// Read from the database (not the cache): the plan is the current one.
    async fn session(&self, id: SessionId) -> Result<Session> {
        Ok(self.current_session(id).await?.0.as_ref().clone())
    }

    /// Counters, the current plan and seat states come from one statement, so from one MVCC
    /// snapshot.
    async fn snapshot(&self, id: SessionId) -> Result<InventorySnapshot> {
        let snap: serde_json::Value = sqlx::query_scalar(
            "SELECT jsonb_build_object(
                 'plan', (SELECT coalesce(plan, definition->'inventory') FROM sessions
                           WHERE id = $1),
                 'grades', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                'grade', grade, 'capacity', capacity, 'available', available,
                                'held', held, 'sold', sold) ORDER BY ord), '[]')
                              FROM stock WHERE session_id = $1),
                 'seats', (SELECT coalesce(jsonb_object_agg(seat_id, state), '{}')
                             FROM hold_seats
                            WHERE session_id = $1 AND state IN ('HELD', 'PAYING', 'CONFIRMED')))",
        )
        .bind(id.as_uuid())
        .fetch_one(&self.inner.pool)
        .await
        .map_err(db_error)?;
        let grades = snap
            .get("grades")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| Error::Corrupt(format!("snapshot {snap}")))?
            .iter()
            .map(|g| {
                let n = |f: &str| -> Result<u32> {
                    u32::try_from(count(g, f)?)
                        .map_err(|_| Error::Corrupt(format!("{f} out of range")))
                };
                Ok(GradeCounts {
                    grade: ticket_core::model::inventory::Grade::new(text(g, "grade")?)
                        .map_err(|e| Error::Corrupt(format!("stored grade: {e}")))?,
                    capacity: n("capacity")?,
                    available: n("available")?,
                    held: n("held")?,
                    sold: n("sold")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let taken: HashMap<String, String> = snap
            .get("seats")
            .cloned()
            .map(|s| decode(s, "seat states"))
            .transpose()?
            .unwrap_or_default();
        let plan: InventoryPlan = match snap.get("plan") {
            None | Some(serde_json::Value::Null) => return Err(Error::not_found("session", id)),
            Some(p) => decode(p.clone(), "stored plan")?,
        };
        let seats = match &plan {
            InventoryPlan::General { .. } => Vec::new(),
            InventoryPlan::Seated { seats } => seats
                .iter()
                .map(|seat| SeatStatus {
                    seat: seat.clone(),
                    state: match taken.get(seat.id.as_str()).map(String::as_str) {
                        Some("CONFIRMED") => SeatState::Sold,
                        Some(_) => SeatState::Held,
                        None => SeatState::Available,
                    },
                })
                .collect(),
        };
        Ok(InventorySnapshot { grades, seats })
    }
}
