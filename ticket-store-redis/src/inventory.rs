//! Events, sessions and stock.

use async_trait::async_trait;
use redis::Value;
use ticket_core::ids::{EventId, SessionId};
use ticket_core::model::counts::{GradeStateCounts, HoldStateCounts, SessionCounts};
use ticket_core::model::hold::HoldState;
use ticket_core::model::inventory::{
    GradeCounts, InventoryPlan, InventorySnapshot, SeatState, SeatStatus,
};
use ticket_core::model::session::{Event, Session};
use ticket_core::store::Inventory;
use ticket_core::{Error, InvalidInput, Result};

use crate::reply::{array, at, int, json, opt_text, text, to_json, unavailable};
use crate::store::RedisStore;

impl RedisStore {
    /// Creates one session's keys; `Ok(true)` when created, `Ok(false)` when an identical
    /// definition of the same event was there, `Err` on a conflicting one.
    async fn create_session(&self, event: EventId, s: &Session) -> Result<bool> {
        let def = to_json(s)?;
        let mut inv = self.session_call(&self.inner.scripts.create_session, s.id);
        inv.arg(event.to_string()).arg(def);
        match &s.inventory {
            InventoryPlan::General { grades } => {
                inv.arg(grades.len());
                for g in grades {
                    inv.arg(g.grade.as_str()).arg(g.capacity);
                }
            }
            InventoryPlan::Seated { seats } => {
                let grades = s.inventory.grades();
                inv.arg(grades.len());
                for g in &grades {
                    let n = seats.iter().filter(|seat| &seat.grade == g).count();
                    inv.arg(g.as_str()).arg(n);
                }
                for seat in seats {
                    inv.arg(seat.id.as_str());
                }
            }
        }
        match text(&self.run(&inv).await?, "create_session")? {
            "created" => Ok(true),
            "same" => Ok(false),
            _ => Err(InvalidInput::Definition(format!(
                "session {} exists with another definition",
                s.id
            ))
            .into()),
        }
    }

    /// Adds every complete stored event to the event index that [`Inventory::events`]
    /// pages through, and returns how many were added: for data written before the index
    /// existed (`create_event` maintains it). Idempotent and safe while the store is in use.
    ///
    /// `SCAN`s the event keys; an event counts as complete when all its sessions are in the
    /// session set, which `create_event` writes after the sessions (an interrupted call is
    /// left out until it is repeated).
    pub async fn index_events(&self) -> Result<u64> {
        let mut conn = self.conn();
        let pattern = self.inner.keys.event_pattern();
        let mut cursor: u64 = 0;
        let mut added = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            for key in keys {
                let doc: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let Some(doc) = doc else { continue };
                let event: Event = json(&doc, "event")?;
                let mut check = redis::pipe();
                for s in &event.sessions {
                    check
                        .cmd("SISMEMBER")
                        .arg(self.inner.keys.sessions())
                        .arg(s.id.to_string());
                }
                let members: Vec<bool> = check.query_async(&mut conn).await.map_err(unavailable)?;
                if !members.iter().all(|m| *m) {
                    continue;
                }
                let n: u64 = redis::cmd("ZADD")
                    .arg(self.inner.keys.events())
                    .arg(0)
                    .arg(event.id.to_string())
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                added += n;
            }
            if next == 0 {
                return Ok(added);
            }
            cursor = next;
        }
    }

    /// Replaces each session's plan by its current one (the `def` hash's `plan`, written by
    /// capacity changes), read in one pipeline; the event keys keep the definitions as
    /// created, which `create_event` compares.
    async fn with_current_plans(&self, events: &mut [Event]) -> Result<()> {
        let mut pipe = redis::pipe();
        let mut n = 0usize;
        for s in events.iter().flat_map(|e| &e.sessions) {
            pipe.cmd("HGET")
                .arg(self.inner.keys.session_key(s.id, "def"))
                .arg("plan");
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        let plans: Vec<Option<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        for (s, plan) in events.iter_mut().flat_map(|e| &mut e.sessions).zip(plans) {
            if let Some(doc) = plan {
                s.inventory = json(&doc, "plan")?;
            }
        }
        Ok(())
    }

    async fn drop_session(&self, event: EventId, id: SessionId) -> Result<()> {
        let mut inv = self.session_call(&self.inner.scripts.drop_session, id);
        inv.arg(event.to_string());
        self.run(&inv).await.map(drop)
    }
}

#[async_trait]
impl Inventory for RedisStore {
    /// Writes the event (`SET NX`), then each session with its stock in one script per
    /// session (sessions live in different cluster slots). A conflicting session rolls back
    /// what this call created. A call interrupted half-way is completed by repeating it.
    async fn create_event(&self, event: &Event) -> Result<()> {
        event.validate()?;
        let doc = to_json(event)?;
        let key = self.inner.keys.event(event.id);
        let mut conn = self.conn();
        let created: bool = redis::cmd("SET")
            .arg(&key)
            .arg(&doc)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(unavailable)?
            .is_some();
        if !created {
            let existing: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if existing.as_deref() != Some(doc.as_str()) {
                return Err(InvalidInput::Definition(format!(
                    "event {} exists with another definition",
                    event.id
                ))
                .into());
            }
        }
        let mut made = Vec::new();
        for s in &event.sessions {
            match self.create_session(event.id, s).await {
                Ok(true) => made.push(s.id),
                Ok(false) => {}
                Err(e) => {
                    if created {
                        for id in made {
                            self.drop_session(event.id, id).await?;
                        }
                        redis::cmd("DEL")
                            .arg(&key)
                            .exec_async(&mut conn)
                            .await
                            .map_err(unavailable)?;
                    }
                    return Err(e);
                }
            }
        }
        // The session set, then the event index, last: a listed event is complete. Two
        // commands, not `MULTI`: the keys may sit in different cluster slots, and the order
        // is enough. Both adds are idempotent, so repeating `create_event` completes an
        // interrupted call and indexes an event stored before the index existed.
        let ids: Vec<String> = event.sessions.iter().map(|s| s.id.to_string()).collect();
        redis::cmd("SADD")
            .arg(self.inner.keys.sessions())
            .arg(ids)
            .exec_async(&mut conn)
            .await
            .map_err(unavailable)?;
        redis::cmd("ZADD")
            .arg(self.inner.keys.events())
            .arg(0)
            .arg(event.id.to_string())
            .exec_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Pages through the event index (`ZRANGEBYLEX` from `(after`), then reads the
    /// definitions of one page in one pipeline, and their sessions' current plans in
    /// another. The index is written by `create_event` once
    /// the event is complete; events stored before it existed are listed after
    /// [`RedisStore::index_events`] or after being created again.
    async fn events(&self, after: Option<EventId>, limit: usize) -> Result<Vec<Event>> {
        let mut out: Vec<Event> = Vec::new();
        let mut from = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut conn = self.conn();
        while out.len() < limit {
            let want = limit - out.len();
            let ids: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(self.inner.keys.events())
                .arg(&from)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some(last) = ids.last() else { break };
            from = format!("({last}");
            let mut pipe = redis::pipe();
            for id in &ids {
                let id: EventId = id
                    .parse()
                    .map_err(|_| Error::Corrupt(format!("bad event id {id:?} in the index")))?;
                pipe.cmd("GET").arg(self.inner.keys.event(id));
            }
            let docs: Vec<Option<String>> =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            // A definition missing under an indexed id can only be a create_event rolled
            // back by a concurrent call: not an event.
            let mut page = docs
                .iter()
                .flatten()
                .map(|doc| json(doc, "event"))
                .collect::<Result<Vec<Event>>>()?;
            self.with_current_plans(&mut page).await?;
            out.extend(page);
            if ids.len() < want {
                break;
            }
        }
        Ok(out)
    }

    /// The definition, each session with its current plan (see `RedisStore::with_current_plans`).
    async fn event(&self, id: EventId) -> Result<Event> {
        let raw: Value = redis::cmd("GET")
            .arg(self.inner.keys.event(id))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match opt_text(&raw, "event")? {
            Some(doc) => {
                let mut events = vec![json(doc, "event")?];
                self.with_current_plans(&mut events).await?;
                events
                    .pop()
                    .ok_or_else(|| Error::Corrupt(format!("event {id} vanished")))
            }
            None => Err(Error::not_found("event", id)),
        }
    }

    /// Read from Redis every time (the definition as created is cached; its plan is
    /// replaced by capacity changes), so a caller refreshing its copy sees them.
    async fn session(&self, id: SessionId) -> Result<Session> {
        let created = self.session_def(id).await?;
        let plan = self.fresh_plan(id).await?;
        let mut session = (*created).clone();
        session.inventory = (*plan).clone();
        Ok(session)
    }

    /// Counters, seat states and the current plan are read by one script, so at one instant.
    /// Grades in the order of the plan as created (a grade whose seats were all removed is
    /// kept, at capacity 0), seats in the current plan's order.
    async fn snapshot(&self, id: SessionId) -> Result<InventorySnapshot> {
        let session = self.session_def(id).await?;
        let inv = self.session_call(&self.inner.scripts.snapshot, id);
        let reply = self.run(&inv).await?;
        let parts = array(&reply, "snapshot")?;
        let plan =
            self.remember_plan(id, &session, opt_text(at(parts, 2, "snapshot")?, "plan")?)?;
        let stock = pairs(at(parts, 0, "snapshot")?)?;
        let seats: std::collections::HashMap<&str, &Value> =
            pairs(at(parts, 1, "snapshot")?)?.into_iter().collect();
        let counter = |prefix: &str, grade: &str| -> Result<u32> {
            let v = stock
                .iter()
                .find(|(k, _)| k.strip_prefix(prefix) == Some(grade))
                .map(|(_, v)| *v)
                .ok_or_else(|| Error::Corrupt(format!("no {prefix}{grade} counter")))?;
            let n = int(v, "stock counter")?;
            u32::try_from(n).map_err(|_| Error::Corrupt(format!("counter {prefix}{grade} = {n}")))
        };
        let grades = session
            .inventory
            .grades()
            .into_iter()
            .map(|g| {
                let capacity = counter("c:", g.as_str())?;
                let available = counter("a:", g.as_str())?;
                let sold = counter("s:", g.as_str())?;
                let held = held_units(&g, capacity, available, sold)?;
                Ok(GradeCounts {
                    capacity,
                    available,
                    held,
                    sold,
                    grade: g,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let seats = match &*plan {
            InventoryPlan::General { .. } => Vec::new(),
            InventoryPlan::Seated { seats: plan } => plan
                .iter()
                .map(|seat| {
                    let state = seats
                        .get(seat.id.as_str())
                        .map(|v| text(v, "seat state"))
                        .transpose()?;
                    let state = match state {
                        Some("A") => SeatState::Available,
                        Some("H") => SeatState::Held,
                        Some("S") => SeatState::Sold,
                        other => {
                            return Err(Error::Corrupt(format!(
                                "seat {} in state {other:?}",
                                seat.id
                            )));
                        }
                    };
                    Ok(SeatStatus {
                        seat: seat.clone(),
                        state,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(InventorySnapshot { grades, seats })
    }

    /// One `HGETALL` of the session's `stock` hash, whose counters every script keeps in
    /// the same step as each change (`lua/lib/stock.lua`): O(grades), whatever the number of
    /// holds. Grades in the order of the plan as created, capacities from the stock hash
    /// (capacity changes move them).
    async fn counts(&self, id: SessionId) -> Result<SessionCounts> {
        let session = self.session_def(id).await?;
        let raw: Vec<(String, i64)> = redis::cmd("HGETALL")
            .arg(self.inner.keys.session_key(id, "stock"))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let stock: StockHash = raw.into_iter().collect();
        let get = |f: &str| stock.get(f).copied().unwrap_or(0);
        let grades = session
            .inventory
            .grades()
            .into_iter()
            .map(|g| grade_state_counts(id, g, &stock))
            .collect::<Result<Vec<_>>>()?;
        let mut holds = HoldStateCounts::default();
        for state in HoldState::ALL {
            let n = get(&format!("n:{}", state.as_str()));
            *holds.get_mut(state) = u64::try_from(n)
                .map_err(|_| Error::Corrupt(format!("session {id}: {n} holds {state:?}")))?;
        }
        Ok(SessionCounts {
            session: id,
            grades,
            holds,
        })
    }
}

/// The `stock` hash's counters by field (every field is an integer).
pub(crate) type StockHash = std::collections::HashMap<String, i64>;

/// The counts of grade `g` from the session's `stock` hash.
pub(crate) fn grade_state_counts(
    id: SessionId,
    g: ticket_core::model::inventory::Grade,
    stock: &StockHash,
) -> Result<GradeStateCounts> {
    let unit = |f: String| -> Result<u32> {
        let n = stock.get(&f).copied().unwrap_or(0);
        u32::try_from(n).map_err(|_| Error::Corrupt(format!("session {id}: {f} = {n}")))
    };
    let capacity = unit(format!("c:{g}"))?;
    let available = unit(format!("a:{g}"))?;
    let sold = unit(format!("s:{g}"))?;
    let held = held_units(&g, capacity, available, sold)?;
    Ok(GradeStateCounts {
        paying: unit(format!("p:{g}"))?,
        capacity,
        available,
        held,
        sold,
        grade: g,
    })
}

/// A flat `HGETALL` reply as (field, value) pairs.
fn pairs(v: &Value) -> Result<Vec<(&str, &Value)>> {
    array(v, "hash")?
        .chunks(2)
        .map(|kv| match kv {
            [k, v] => Ok((text(k, "hash field")?, v)),
            _ => Err(Error::Corrupt("odd-length hash reply".into())),
        })
        .collect()
}

/// Held units of grade `g`: not stored, they are what is neither available nor sold;
/// `Corrupt` when the stored counters exceed the capacity.
fn held_units(
    g: &ticket_core::model::inventory::Grade,
    capacity: u32,
    available: u32,
    sold: u32,
) -> Result<u32> {
    capacity
        .checked_sub(available)
        .and_then(|rest| rest.checked_sub(sold))
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "grade {g}: {available} available + {sold} sold > {capacity}"
            ))
        })
}
