//! Redis backend for ticketrush: every `ticket-core` storage trait on Redis, so that many
//! app servers can sell one session together.
//!
//! ```no_run
//! # async fn demo() -> ticket_core::Result<()> {
//! use ticket_store_redis::{RedisConfig, RedisStore};
//! let store = RedisStore::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! let rush = ticket_core::TicketRush::new(
//!     store.stores(),
//!     std::sync::Arc::new(ticket_core::SystemClock),
//!     ticket_core::TimeLimits::default(),
//! )?;
//! # let _ = rush; Ok(()) }
//! ```
//!
//! # Atomicity
//! Every operation that must be atomic is one Lua function of this crate's function
//! library (`lua/`), loaded once per library version (`FUNCTION LOAD`, the library named by
//! a hash of its source) and called by `FCALL`; a server that lost it ("Function not
//! found") gets it loaded again and the call retried once. Requires Redis 7.0 or later.
//! There is no client-side read-modify-write and no lock: a
//! function runs alone on the server, so a hold checks the admission, the per-user limit and
//! the stock and takes it all-or-nothing in one step. State-machine rules stay in
//! `ticket-core`: the transition script is handed the decision for every state, computed by
//! [`ticket_core::backend::encoding::decision_codes`]. A check-in at the gate (`lua/check_in.lua`)
//! marks a ticket only while its hold is CONFIRMED, and the transition script refuses
//! CONFIRMED → CANCELLED once a mark exists: each runs alone, so a scan and a cancellation of
//! one hold exclude each other.
//!
//! The organiser's sale switch is read by the hold and re-booking scripts from the `stock`
//! hash they load anyway, so no hold is made once a pause, close or cancellation returned;
//! a capacity change is one script with the stock, the plan and its audit record (see the
//! `sale_control` module).
//!
//! # Throughput
//! One multiplexed connection ([`redis::aio::ConnectionManager`]) carries every call and
//! pipelines concurrent ones. Holds, joins, queue views and leaves for one session that
//! arrive while calls of their kind for that session are in flight are coalesced into one
//! script call by [`ticket_core::backend::coalesce`]
//! ([`RedisConfig::max_batch`], up to [`RedisConfig::max_in_flight`] calls per session at
//! once), each request still checked and applied on its own. Requests in different batches
//! are concurrent, so their relative order is not promised; a failed call gives each of its
//! requests an error of the same kind (`Unavailable` with the cause, or `Corrupt`). Inside a script, reads go
//! through caches and all writes are issued once at the end (one `HSET` for every hold the
//! call touched, one `HSET` and one `ZADD` for all its audit records, one `XADD` for all its
//! changes, one `HSET` of the counters, one `ZADD` per sorted set), so a batch costs a
//! handful of Redis commands rather than a handful per request.
//!
//! # Reads designed with the writes
//! Every read of issue 17 comes from an index or counter written by the same script as the
//! change it reflects, and is paged by cursor:
//! * [`Inventory::counts`](ticket_core::store::Inventory::counts): one `HGETALL` of the
//!   session's `stock` hash, whose counters (units by state, PAYING units, holds per state)
//!   every script keeps.
//! * [`ChangeFeed`](ticket_core::store::ChangeFeed): the session's `feed` stream, one entry
//!   per script call, ids derived from sequence numbers; `wait_for_change` callers share one
//!   dedicated connection blocked in `XREAD` (see the `feed` and `feed_listener` modules).
//! * [`Reservations::audit_page`](ticket_core::store::Reservations::audit_page): the complete
//!   trail (nothing is trimmed), in `(at, id)` order by construction of the ids.
//! * [`Reservations::holds_of_user`](ticket_core::store::Reservations::holds_of_user) and the
//!   user scope of the audit trail: each user's index, two round trips per page.
//! * [`WaitingQueue::waiting_line`](ticket_core::store::WaitingQueue::waiting_line): a range
//!   of the `line` sorted set.
//!
//! # Keys and Redis Cluster
//! Keys start with [`RedisConfig::prefix`]. Everything about one session carries the hash
//! tag `{s:<session id>}`, so it sits in one cluster slot and one script can touch it all:
//!
//! | key | type | content |
//! |---|---|---|
//! | `P:{s:ID}:def` | hash | session definition as created (JSON) and its event id; `plan` the current plan (JSON, written by capacity changes; absent: as created) and `pv` its version; `swr` the sale switch's reason |
//! | `P:{s:ID}:stock` | hash | `a:`/`s:`/`c:<grade>`: available, sold, capacity (held is the rest); `p:<grade>` units in PAYING holds; `n:<STATE>` holds per state; `fseq` the feed's head; `aseq` audit records written; `lat` the latest record's instant (a record never goes back in time); `so` SoldOut announced; `sw`, `swat` the organiser's sale switch (state index, since; absent: OPEN), read by the hold and re-booking scripts |
//! | `P:{s:ID}:seats` | hash | seat id → `A`/`H`/`S` |
//! | `P:{s:ID}:policy` | string | sales policy (JSON) |
//! | `P:{s:ID}:holds` | hash | hold id → the hold, packed (state, times, references, its audit record ids, immutable JSON) |
//! | `P:{s:ID}:used:<hold>` | hash | ticket number → `<at>U+001F<gate>`: the hold's check-ins at the gate, written once (`lua/check_in.lua`) |
//! | `P:{s:ID}:uh` | hash | user → the user's hold ids, in creation order |
//! | `P:{s:ID}:expb`, `exp:<second>` | zset, lists | the expiry index (sweeper, checkouts to poll): seconds with expiring holds; the holds expiring in each |
//! | `P:{s:ID}:seq`, `line` | counter, zset | queue sequence; waiting users scored by it |
//! | `P:{s:ID}:pq`, `pqv`, `draw` | list, counter, string | pre-queue, its version, the draw |
//! | `P:{s:ID}:tickets` | hash | user → latest queue ticket, packed |
//! | `P:{s:ID}:act`, `adm` | zset, zset | ACTIVE users by admission expiry; admissions by time |
//! | `P:{s:ID}:arec`, `alog` | hash, zset | the complete audit trail: record id → packed record; every record id (score 0, `(at, id)` order) |
//! | `P:{s:ID}:feed` | stream | the change feed: entry `0-<last seq>` per script call, fields `<seq>` → packed change; trimmed to `feed_retention` |
//! | `P:{s:ID}:dlv`, `ckpt` | hash, hash | notification deliveries (`<seq>:<recipient>` → claim or record); dispatcher checkpoints |
//! | `P:{u:USER}` | zset | the user's index across sessions (score 0): `h:<time key>:<hold>:<session>` per hold, `a:<record id>:<session>` per audit record. Written by the session scripts: their one cross-slot write (single Redis only; issue 21 makes the Cluster version) |
//! | `P:lease:<name>` | string | a lease: holder and end |
//! | `P:ev:<event>` | string | event definition (JSON) |
//! | `P:events` | zset | every complete event id, score 0, paged by `ZRANGEBYLEX` (id order) |
//! | `P:sessions` | set | every session id |
//! | `P:hs` | hash | hold id → session (ids are claimed here with `HSETNX`) |
//! | `P:idem:<scope>:<key>` | hash | idempotency record, with a TTL |
//!
//! Packed values join their fields with U+001F, which JSON, ids and timestamps never contain;
//! free text that would land in one (reasons, correlation ids, payment references) is refused
//! if it contains that character.
//!
//! Scripts receive the session's key base (`P:{s:ID}:`) as `KEYS[1]` and build the other
//! names from it, so the cluster client routes them by that slot, with one exception: the
//! user's index `P:{u:USER}`, written by the hold and audit steps of the session scripts
//! (built from ARGV\[2\], the prefix), is in another slot. That is fine on the single Redis
//! this crate connects to, and is what issue 21 changes for Cluster. Other keys outside a
//! session (event, hold index, idempotency) are written by separate commands; the hold index is one
//! hash, so on a cluster every hold batch also writes that key's slot (one small script call
//! per batch). This crate connects to a single Redis endpoint (`ConnectionManager`); the key
//! layout is what lets the same scripts run under a cluster client.
//!
//! # Limits
//! * The audit trail is complete, so it grows with every change (about 0.5 KB per record,
//!   in the record hash and its index) until the session's keys are deleted; finished
//!   deliveries are kept likewise. The change feed is the only trimmed structure.
//! * `wait_for_change` wakes within one round trip of the write while the listener's
//!   connection is up; if it drops, waiters wake at their timeout at the latest (callers
//!   read [`ChangeFeed::changes`](ticket_core::store::ChangeFeed::changes) next anyway).
//! * Audit records of data written before this layout (the capped `audit` stream) are not
//!   read by the new pages.
//!
//! # Durability
//! Redis keeps this state in memory. What survives a restart depends on its persistence:
//! * **AOF with `appendfsync everysec`**: everything but up to about one second of writes.
//!   A hold, payment confirmation or join acknowledged in that last second can be lost;
//!   stock counters and holds are written by the same script, so what is replayed is
//!   consistent (no unit is both sold and available).
//! * **Persistence off** (as on the test machines): everything is lost.
//!
//! Either way a confirmed sale must not depend on Redis alone: record confirmations in a
//! durable store (the PostgreSQL backend is the system of record) and, after a Redis loss,
//! recreate the session and re-apply the confirmed reservations from there before selling
//! again. Holds and queue positions are short-lived by design and are not reconciled.
//!
//! # Failures
//! A Redis error or timeout is `Error::Unavailable`: the outcome is unknown (a script that
//! reached the server ran whole or not at all) and the caller retries with the same
//! idempotency key. The connection reconnects by itself.

mod audit;
mod check_in;
mod codec;
mod config;
mod deliveries;
mod expiry_index;
mod feed;
mod feed_listener;
mod hold_batch;
mod hold_index;
mod idempotency;
mod inventory;
mod keys;
mod paying;
mod policy;
mod queue;
mod queue_batch;
mod reply;
mod reservations;
mod sale_control;
mod scripts;
mod store;
mod transitions;
mod user_index;

pub use config::RedisConfig;
pub use store::RedisStore;

/// The crate's README, compiled as a doctest (its quickstart must build; it needs a server
/// to run).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
