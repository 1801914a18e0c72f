//! Events, sessions and stock.

use async_trait::async_trait;
use redis::Value;
use ticket_core::ids::{EventId, SessionId};
use ticket_core::model::inventory::{
    GradeCounts, InventoryPlan, InventorySnapshot, SeatState, SeatStatus,
};
use ticket_core::model::session::{Event, Session};
use ticket_core::store::Inventory;
use ticket_core::{Error, InvalidInput, Result, Timestamp};

use crate::reply::{array, at, int, json, opt_text, text, to_json, unavailable};
use crate::store::RedisStore;

impl RedisStore {
    /// Creates one session's keys; `Ok(true)` when created, `Ok(false)` when an identical
    /// definition of the same event was there, `Err` on a conflicting one.
    async fn create_session(&self, event: EventId, s: &Session) -> Result<bool> {
        let def = to_json(s)?;
        let mut inv = self.session_call(
            &self.inner.scripts.create_session,
            s.id,
            Timestamp::from_millis(0),
        );
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

    async fn drop_session(&self, event: EventId, id: SessionId) -> Result<()> {
        let mut inv = self.session_call(
            &self.inner.scripts.drop_session,
            id,
            Timestamp::from_millis(0),
        );
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
        let ids: Vec<String> = event.sessions.iter().map(|s| s.id.to_string()).collect();
        redis::cmd("SADD")
            .arg(self.inner.keys.sessions())
            .arg(ids)
            .exec_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn event(&self, id: EventId) -> Result<Event> {
        let raw: Value = redis::cmd("GET")
            .arg(self.inner.keys.event(id))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match opt_text(&raw, "event")? {
            Some(doc) => json(doc, "event"),
            None => Err(Error::not_found("event", id)),
        }
    }

    async fn session(&self, id: SessionId) -> Result<Session> {
        self.session_def(id).await.map(|s| (*s).clone())
    }

    /// Counters and seat states are read by one script, so at one instant.
    async fn snapshot(&self, id: SessionId) -> Result<InventorySnapshot> {
        let session = self.session_def(id).await?;
        let inv = self.session_call(&self.inner.scripts.snapshot, id, Timestamp::from_millis(0));
        let reply = self.run(&inv).await?;
        let parts = array(&reply, "snapshot")?;
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
                // Held is not stored: it is what is neither available nor sold.
                let held = capacity
                    .checked_sub(available)
                    .and_then(|rest| rest.checked_sub(sold))
                    .ok_or_else(|| {
                        Error::Corrupt(format!(
                            "grade {g}: {available} available + {sold} sold > {capacity}"
                        ))
                    })?;
                Ok(GradeCounts {
                    capacity,
                    available,
                    held,
                    sold,
                    grade: g,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let seats = match &session.inventory {
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
