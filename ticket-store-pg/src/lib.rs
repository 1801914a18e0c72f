//! PostgreSQL backend for ticketrush: every `ticket-core` storage trait on sqlx, for teams
//! who want one database and no Redis, and the system of record for confirmed tickets.
//!
//! ```no_run
//! # async fn run() -> ticket_core::Result<()> {
//! use ticket_store_pg::{PgConfig, PgStore};
//!
//! let store = PgStore::connect(PgConfig::new("postgres://postgres@127.0.0.1:5432/test")).await?;
//! store.migrate().await?; // creates the schema `ticketrush` and applies the migrations
//! let stores = store.stores(); // hand these to `ticket_core::TicketRush::new`
//! # let _ = stores; Ok(()) }
//! ```
//!
//! # Schema
//! Everything lives in one schema ([`PgConfig::schema`], put first on every connection's
//! `search_path`), created by [`PgStore::migrate`] from SQL embedded in the binary (nothing
//! needs a live database at build time): first the schema migrations (`migrations/`: tables,
//! indexes, types and the triggers that are constraints, applied with `sqlx::migrate!`), then
//! the operations' functions (`sql/`, below). The constraints make overselling impossible
//! even if code is wrong:
//!
//! | guarantee | constraint |
//! |---|---|
//! | counters stay in range | `stock`: `CHECK (available >= 0 AND available <= capacity)`, `capacity >= 0`, `held >= 0`, `sold >= 0` |
//! | units are conserved | `stock`: `CHECK (available + held + sold = capacity)` |
//! | a seat is in at most one live or sold hold | `hold_seats`: unique partial index on `(session_id, seat_id) WHERE state IN ('HELD','PAYING','CONFIRMED')` |
//! | one live queue ticket per user and session | `queue_tickets`: unique partial index on `(session_id, user_id) WHERE state IN ('WAITING','ACTIVE')` |
//! | one idempotency record per key and scope | `idempotency`: primary key `(scope, key)` |
//! | nothing dangles | foreign keys from stock, seats, holds, hold seats, queue rows, tickets and audit to their session; re-booking links between holds |
//! | the audit trail is append-only | triggers refuse `UPDATE`, `DELETE` and `TRUNCATE` on `audit` |
//! | a ticket is checked in once; its mark never changes | `ticket_uses`: primary key `(hold_id, ticket)`; triggers refuse `UPDATE`, `DELETE` and `TRUNCATE` |
//! | a hold with a checked-in ticket is never cancelled | trigger on `holds` refusing CONFIRMED → CANCELLED while a `ticket_uses` row exists |
//!
//! # Operations: one SQL file each
//! Each atomic operation is one call of a PL/pgSQL function, kept in a file of `sql/` named
//! after the operation, as ticket-store-redis names its `lua/` scripts; helpers shared by
//! several operations are in `sql/lib/`:
//!
//! | file | function called | by |
//! |---|---|---|
//! | `sql/hold.sql` | `tr_hold_one` (one request) | `tr_hold_batch` |
//! | `sql/hold_batch.sql` | `tr_hold_batch` | `Reservations::hold` (coalesced) |
//! | `sql/transition.sql` | `tr_transition` | `Reservations::transition` |
//! | `sql/rebook.sql` | `tr_rebook` | `Reservations::rebook` |
//! | `sql/check_in.sql` | `tr_check_in` | `Reservations::check_in` |
//! | `sql/expire.sql` | `tr_expire_due` | `Reservations::expire_due` |
//! | `sql/join.sql` | `tr_join`, `tr_join_batch` | `WaitingQueue::join` (coalesced) |
//! | `sql/leave.sql` | `tr_leave`, `tr_leave_batch` | `WaitingQueue::leave` (coalesced) |
//! | `sql/admit.sql` | `tr_admit` | `WaitingQueue::admit` |
//! | `sql/view.sql` | `tr_view` | `WaitingQueue::view` |
//! | `sql/stats.sql` | `tr_stats` | `WaitingQueue::stats` |
//! | `sql/sale_control.sql` | `tr_set_sale_state`, `tr_change_capacity` | `SaleControl::set_sale_state`, `SaleControl::change_capacity` |
//! | `sql/idempotency.sql` | `tr_idem_claim` | `IdempotencyStore::claim` |
//! | `sql/deliveries.sql` | `tr_claim_delivery` | `DeliveryLog::claim_delivery` |
//! | `sql/lib/base.sql` | `tr_lock_session`, `tr_audit`, `tr_sale_refusal` (and the lock order) | all |
//! | `sql/lib/record.sql` | `tr_record`, `tr_rec`, `tr_audit_id`, `tr_change_kind`, `tr_emit`, `tr_prune_changes` | every writing operation, the draw, retention |
//! | `sql/lib/holds.sql` | `tr_units_counted`, `tr_seats_taken`, `tr_seats_off_plan` | hold, rebook, capacity changes |
//! | `sql/lib/tickets.sql` | `tr_settle`, `tr_queue_counts` | join, leave, admit, view, stats |
//!
//! Reads and the draw are plain statements in the Rust modules. [`PgStore::migrate`] applies
//! a file with `CREATE OR REPLACE` when its SHA-256 differs from the one recorded in the
//! schema's `_ticketrush_functions` table, all changed files in one transaction under an
//! advisory lock; functions of a file a new build no longer has are dropped. Schema changes
//! are numbered migrations and never carry a copy of a function. `MIGRATING.md` says how to
//! change either, and that schemas made by pre-release builds must be recreated.
//!
//! # Atomicity and round trips
//! Each atomic operation is one function call: one round trip, one transaction. Functions take stock with a conditional
//! `UPDATE stock … WHERE available >= $n`, never read a row to write it back from the
//! client, and never rely on `SERIALIZABLE` retries. A hold checks admission, the per-user
//! limit, seats and stock before its first write, so a refusal changes nothing; a multi-seat
//! hold takes every seat or none. Taking stock in a session is serialised by a per-session
//! advisory lock, which is what makes the per-user limit and the seat check race-free. The
//! functions take their locks in one global order (advisory locks, queue rows, hold rows,
//! stock rows by session and grade, ticket rows), so they cannot deadlock with each other.
//!
//! The state machine stays in `ticket-core`: a transition sends the decision table that
//! [`ticket_core::backend::encoding::decision_codes`] computes, and the function looks its answer
//! up for the hold's current state, expiry and re-booking. A check-in at the gate
//! (`tr_check_in`, `sql/check_in.sql`) and a transition both lock the hold row
//! first, so a scan and a cancellation of one hold exclude each other: the scan marks a
//! ticket only while the hold is CONFIRMED, the cancellation is refused once a mark exists.
//!
//! # Throughput: coalescing
//! Holds that arrive while hold batches are in flight go together as one `tr_hold_batch`
//! call (coalesced by [`ticket_core::backend::coalesce`]): one transaction, one commit flush and one stock-row lock for many holds
//! ([`PgConfig::max_batch`], [`PgConfig::max_in_flight`]). On a hot session this is what
//! keeps the rate from collapsing on the row lock as buyers pile up. Each request in a batch
//! is still all-or-nothing on its own. Joins of one session that arrive while a join batch
//! of that session is in flight go together as one `tr_join_batch` call (one transaction,
//! one lock of the queue row, one commit), applied in arrival order, each as a lone join
//! would be; leaves likewise as one `tr_leave_batch` call, which first takes the session's
//! advisory lock as a hold batch does. One join batch and one leave batch per session are in
//! flight at a time. `max_batch = 1` turns all three off. Views and admission rounds are one
//! call each. A failed batch call gives each of its requests an error of the same kind
//! (`Unavailable` with the cause, or `Corrupt`).
//!
//! # Read side: counts, the change feed, keyset pages
//! Every operation that writes audit records collects them (`tr_rec`) and hands them at its
//! end to one `tr_record` call (`sql/lib/record.sql`), in its transaction: one UPDATE of the
//! session's `session_log` row numbers the audit ids (`AuditId::sequenced`, built in SQL by
//! `tr_audit_id`) and the change feed (`head`: dense, in commit order, because the row's lock is
//! held to commit; a SEQUENCE would leave gaps and commit-order holes), counts holds by state
//! and announces `SoldOut`; then the audit rows and the `changes` rows are inserted and, while a
//! reader watches the session (`session_log.watched_until`), `pg_notify(<schema>,
//! '<session>:<head>')` is queued (delivered at commit; not sent otherwise, because a notifying
//! transaction holds a database-wide lock across its commit). The row is
//! taken last, after every other lock of the session (lock order step 6), and once per call:
//! a hold batch bumps it once per session, not once per hold. Units of PAYING holds are kept in
//! `stock.paying`, moved with `held` in the same UPDATE. So [`Inventory::counts`](ticket_core::store::Inventory::counts)
//! reads the stock rows and the log row in one statement.
//!
//! Waiting for a change ([`ChangeFeed::wait_for_change`](ticket_core::store::ChangeFeed::wait_for_change))
//! wakes on the commit: one `PgListener` task per store (its own connection) fans the
//! notifications out to a `tokio::sync::watch` per session; while it reconnects, waiters poll
//! and re-read when it is back (see `src/feed.rs`). Retention ([`PgConfig::feed_retention`])
//! deletes a session's oldest changes after a sweep and on [`PgStore::prune_changes`]; a
//! reader behind it is refused with `ChangesPruned`.
//!
//! A user's holds are read through `holds_of_user (user_id, created_at DESC, id DESC)`, audit
//! pages through `(session_id | subject_id | owner, at, id)`, the waiting line through the line
//! index: one keyset range scan each, no N+1. Deliveries, checkpoints and leases are single
//! `INSERT … ON CONFLICT` statements (`src/deliveries.rs`), a claim one function call.
//!
//! # The organiser's controls
//! The sale switch is stored on the session's row (`sessions.sale_state`, `sale_since`,
//! `sale_reason`). A hold (`tr_hold_one`, each session group of `tr_hold_batch`) and a
//! re-booking read it with one primary-key read after taking the session's advisory lock, in
//! their transaction; `tr_set_sale_state` takes that lock too before it moves the switch. So
//! a move waits for the holds in flight, and a hold that starts after it sees it: once
//! `set_sale_state` to PAUSED returned, no hold is made (`SalesPaused`, `SalesClosed`,
//! `SessionCancelled`, changing nothing), and in the feed no `HoldCreated` follows the
//! `SalePaused`. The switch is decided with a table computed from
//! `decide_sale_transition`, like a hold transition's.
//!
//! A capacity change applies `CapacityDelta::apply_to` to the current plan here, then one
//! `tr_change_capacity` call (advisory lock, the session row, the touched stock rows in order)
//! checks that the plan is still the one read (`plan_version`; else it is computed again),
//! that units that go are available and seats that go are free, moves `capacity` and
//! `available` together, adds seats or marks them withdrawn, stores the plan
//! (`sessions.plan`, which `Inventory::session`, `event`, `events` and `snapshot` answer) and
//! records it (`CAPACITY_CHANGED`, `SoldOut` when nothing is left). Holds price with a cached
//! plan: a seat the cache does not know, or one the function finds withdrawn or regraded,
//! makes the hold read the plan again once.
//!
//! # Expiry
//! Every function compares expiry with the instant the caller passes (the services'
//! injected clock), so a hold past its TTL cannot be paid even before a sweeper runs. The
//! sweeper (`tr_expire_due`) claims due holds in batches with `FOR UPDATE SKIP LOCKED`
//! through a partial index on live holds: sweepers on many app servers never wait for each
//! other and never expire one hold twice.
//!
//! # Queue
//! One `queues` row per session holds the sequence, the waiting and pre-queue counters (the
//! length cap is checked against them) and the recorded draw; joins and admission rounds
//! lock it, so FIFO order is the order joins reached the database, whatever the app
//! servers' clocks. A position is read in `O(log n)` from `queue_line_counts`: counters of
//! waiting tickets per block of sequence numbers at four levels (64, 4 096, 262 144 and
//! 16 777 216 numbers a block), kept by statement-level triggers on `queue_tickets` in the
//! transaction of every change of the line, so they are exact under concurrent joins,
//! leaves, admissions and draws. A read sums at most 63 counters per level and counts at most
//! 64 index entries of the ticket's own block (`tr_line_position`, one statement).
//!
//! Admission rounds take the queue row's lock and then lock the first `n` waiting tickets in
//! sequence order with a plain `FOR UPDATE`, not `SKIP LOCKED`: skipping a locked waiting
//! ticket would admit someone behind it, a FIFO inversion. `SKIP LOCKED` is used where
//! skipping is harmless, in the sweeper. Rounds on many servers therefore run one after the
//! other per session; a round is a few index reads and one update per admitted ticket.
//!
//! # Durability
//! A confirmed ticket survives a crash: every state change (`tr_transition`, `tr_rebook`)
//! sets `synchronous_commit = on` for its own transaction, so its commit returns only once
//! the WAL is flushed, even on a server or role configured with `synchronous_commit = off`.
//! Holds and joins follow the server's setting: with `off`, a crash can forget the last
//! few hundred milliseconds of holds (their units simply go back on sale) but never a
//! confirmation. With synchronous replication configured, `on` also waits for the standby.
//!
//! # Failures
//! A lost connection, a timeout or a server error is `Error::Unavailable`: the transaction
//! either committed or rolled back as a whole, and the caller retries with the same
//! idempotency key. A constraint violation (which the functions never cause) is
//! `Error::Corrupt`.

mod answers;
mod check_in;
mod config;
mod deliveries;
mod feed;
mod functions;
mod hold_batch;
mod idempotency;
mod inventory;
mod policy;
mod queue;
mod queue_batch;
mod reservations;
mod rows;
mod sale_control;
mod store;

pub use config::PgConfig;
pub use store::PgStore;

/// The crate's README, compiled as a doctest (its quickstart must build; it needs a server
/// to run).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
