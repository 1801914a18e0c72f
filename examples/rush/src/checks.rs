//! Correctness, read back from the store and the payment sandbox after a run, never from the
//! simulator's own bookkeeping.
//!
//! What is read: the session's stock snapshot, its queue figures, its whole audit trail
//! (every queue ticket and hold change, in the store's order), every hold named in that
//! trail (as stored now), and every payment intent and refund of the sandbox.
//!
//! # The counters (each must be 0)
//! * **oversold units**: per grade, units sold beyond capacity.
//! * **unconserved grades**: grades where `available + held + sold != capacity`.
//! * **ledger mismatch**: units of CONFIRMED holds against the snapshot's `sold`, plus units
//!   of HELD and PAYING holds against its `held` (absolute differences).
//! * **FIFO inversions**: admissions of a ticket while a ticket that joined earlier was still
//!   waiting. Walking the session's audit trail in the store's order, each FIFO join
//!   (`∅ → WAITING`) enters the line; leaving the line (`WAITING → anything`) removes it;
//!   an admission (`WAITING → ACTIVE`) of a ticket that is not the earliest joiner still in
//!   line is one inversion. The trail's order is the store's own serialisation order of
//!   queue changes (appended in the same atomic step: under the session mutex in memory,
//!   by the script on Redis, under the queue row lock on PostgreSQL, whose identity column
//!   orders the rows), which timestamps cannot give: with a simulated clock every
//!   admission of a round shares one millisecond. Join order is line order because the
//!   simulated users join after the open (no pre-queue draw).
//! * **FIFO unverifiable**: admissions whose join is not in the trail (a trimmed trail or
//!   a pre-queue ticket): the FIFO check could not judge them, so they count as failures.
//! * **double charges**: per hold (a re-booked hold stands for the hold it replaced), more
//!   than one succeeded intent whose money was not refunded in full.
//! * **paid but neither confirmed nor refunded**: succeeded intents, not refunded in full,
//!   whose hold is not CONFIRMED (money kept for nothing).
//! * **confirmed without payment**: CONFIRMED holds whose payment is not a succeeded,
//!   unrefunded intent of the sandbox.
//! * **stranded units**: units on sale at the end while the store's queue still has users
//!   waiting or admitted (units nobody was let to buy).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use ticket_core::gateway::{IntentStatus, PaymentIntent};
use ticket_core::model::audit::{AuditRecord, AuditScope, Subject};
use ticket_core::model::hold::{Hold, HoldState};
use ticket_core::model::page::{AuditQuery, PageOrder};
use ticket_core::{HoldId, SessionId, Stores, TicketId, Timestamp};

use crate::error::RushError;

/// The payment provider's books, as read after the run.
#[derive(Debug, Clone, Default)]
pub struct Money {
    /// Every payment intent.
    pub intents: Vec<PaymentIntent>,
    /// How many refunds were made.
    pub refunds: u64,
}

/// The correctness counters; see the module docs for each definition. All must be 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    /// Units sold beyond capacity, summed over grades.
    pub oversold_units: u64,
    /// Grades whose counters do not add up to their capacity.
    pub unconserved_grades: u64,
    /// Units on which the holds and the stock counters disagree.
    pub ledger_mismatch_units: u64,
    /// Admissions that passed an earlier joiner still waiting.
    pub fifo_inversions: u64,
    /// Admissions the FIFO check could not judge.
    pub fifo_unverifiable: u64,
    /// Extra succeeded, unrefunded payments for one hold.
    pub double_charges: u64,
    /// Succeeded, unrefunded payments whose hold is not CONFIRMED.
    pub paid_not_confirmed_nor_refunded: u64,
    /// CONFIRMED holds without a succeeded, unrefunded payment.
    pub confirmed_without_payment: u64,
    /// Units on sale at the end while users still waited in the store's queue.
    pub stranded_units: u64,
}

impl Checks {
    /// Every counter with its name, in report order.
    pub fn counters(&self) -> [(&'static str, u64); 9] {
        [
            ("oversold_units", self.oversold_units),
            ("unconserved_grades", self.unconserved_grades),
            ("ledger_mismatch_units", self.ledger_mismatch_units),
            ("fifo_inversions", self.fifo_inversions),
            ("fifo_unverifiable", self.fifo_unverifiable),
            ("double_charges", self.double_charges),
            (
                "paid_not_confirmed_nor_refunded",
                self.paid_not_confirmed_nor_refunded,
            ),
            ("confirmed_without_payment", self.confirmed_without_payment),
            ("stranded_units", self.stranded_units),
        ]
    }

    /// The sum of every counter: 0 when the run was correct.
    pub fn violations(&self) -> u64 {
        self.counters().iter().map(|(_, n)| n).sum()
    }
}

/// What the checks read, so a reader can tell they looked at something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Audit records of the session.
    pub audit_records: u64,
    /// FIFO joins in the trail.
    pub joins: u64,
    /// Admissions in the trail (each judged by the FIFO check).
    pub admissions: u64,
    /// Holds named in the trail.
    pub holds: u64,
    /// Payment intents at the sandbox.
    pub intents: u64,
    /// Of which succeeded.
    pub succeeded_intents: u64,
    /// Refunds at the sandbox.
    pub refunds: u64,
}

/// Units by the cause that put them back on sale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    /// Holds that expired unpaid (the sweeper, or a checkout that came too late).
    pub expired: u64,
    /// Purchases cancelled (resale).
    pub cancelled: u64,
    /// Holds whose payment failed.
    pub payment_failed: u64,
    /// Holds released by their buyer.
    pub released: u64,
}

impl Returned {
    /// All causes together.
    pub fn total(&self) -> u64 {
        self.expired + self.cancelled + self.payment_failed + self.released
    }

    fn add(&mut self, to: HoldState, units: u64) {
        match to {
            HoldState::Expired => self.expired += units,
            HoldState::Cancelled => self.cancelled += units,
            HoldState::PaymentFailed => self.payment_failed += units,
            HoldState::Released => self.released += units,
            _ => {}
        }
    }
}

/// Units sold against capacity, and why any were not sold, from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Units {
    /// Units in the plan.
    pub capacity: u64,
    /// Units sold (snapshot).
    pub sold: u64,
    /// Units in live holds (snapshot).
    pub held: u64,
    /// Units on sale (snapshot).
    pub available: u64,
    /// `capacity - sold`.
    pub remainder: u64,
    /// Units of HELD or PAYING holds at the end (abandoned holds not expired yet).
    pub in_live_holds: u64,
    /// Units put back on sale after the last hold was made (by creation order in the
    /// trail), by cause: nobody bought them afterwards.
    pub returned_after_last_sale: Returned,
    /// Units already on sale when the last hold was made:
    /// `available - returned_after_last_sale.total()`.
    pub on_sale_at_last_sale: i64,
    /// WAITING tickets in the store's queue at the end.
    pub queue_waiting_at_end: u64,
    /// ACTIVE tickets in the store's queue at the end.
    pub queue_active_at_end: u64,
}

impl Units {
    /// Whether the remainder is accounted for: the counters add up, every unit not sold is
    /// in a live hold or on sale, and nobody was left in the queue who could have bought
    /// the units on sale.
    pub fn remainder_explained(&self) -> bool {
        self.remainder == self.held + self.available
            && self.in_live_holds == self.held
            && self.on_sale_at_last_sale >= 0
            && (self.available == 0 || self.queue_waiting_at_end + self.queue_active_at_end == 0)
    }

    /// One line saying why `capacity - sold` units were not sold.
    pub fn explanation(&self) -> String {
        if self.remainder == 0 {
            return "sold out: every unit sold".to_owned();
        }
        let r = &self.returned_after_last_sale;
        let mut parts = Vec::new();
        if self.in_live_holds > 0 {
            parts.push(format!(
                "{} in live holds (abandoned, not expired when the run ended)",
                self.in_live_holds
            ));
        }
        if r.total() > 0 {
            parts.push(format!(
                "{} put back on sale after the last hold was made (cancelled {}, expired {}, \
                 payment failed {}, released {})",
                r.total(),
                r.cancelled,
                r.expired,
                r.payment_failed,
                r.released
            ));
        }
        if self.on_sale_at_last_sale > 0 {
            parts.push(format!(
                "{} still on sale when the last hold was made",
                self.on_sale_at_last_sale
            ));
        }
        let queue = if self.queue_waiting_at_end + self.queue_active_at_end == 0 {
            "nobody was left in the queue to buy them".to_owned()
        } else {
            format!(
                "yet {} users still waited and {} were admitted",
                self.queue_waiting_at_end, self.queue_active_at_end
            )
        };
        format!("{} unsold: {}; {queue}", self.remainder, parts.join("; "))
    }
}

/// Everything the checks found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// The correctness counters.
    pub checks: Checks,
    /// Units sold and the remainder's causes.
    pub units: Units,
    /// What was read.
    pub evidence: Evidence,
}

/// Most audit records read (far above any run's trail).
const AUDIT_LIMIT: usize = 1_000_000_000;

/// Reads the store and the sandbox and computes the [`Findings`] of session `session` at
/// `now`. `parallel` hold reads run at once (for network backends). With `audit_page`,
/// the trail is read and checked that many records at a time (a million-user trail in
/// memory is over a gigabyte as records); without, in one read.
pub async fn check(
    stores: &Stores,
    session: SessionId,
    money: &Money,
    now: Timestamp,
    parallel: usize,
    audit_page: Option<usize>,
) -> Result<Findings, RushError> {
    let snapshot = stores
        .inventory
        .snapshot(session)
        .await
        .map_err(RushError::library("reading the stock snapshot"))?;
    let queue = stores
        .queue
        .stats(session, now)
        .await
        .map_err(RushError::library("reading the queue figures"))?;
    let trail = read_trail(stores, session, audit_page).await?;
    let Trail {
        records,
        hold_ids,
        last_sale,
        returns,
        line,
        ..
    } = trail;

    let mut checks = Checks::default();
    let mut evidence = Evidence {
        audit_records: records,
        ..Evidence::default()
    };

    // Stock counters.
    let mut units = Units::default();
    for g in &snapshot.grades {
        checks.oversold_units += u64::from(g.sold.saturating_sub(g.capacity));
        if !g.is_conserved() {
            checks.unconserved_grades += 1;
        }
    }
    let totals = snapshot.totals();
    units.capacity = totals.capacity;
    units.sold = totals.sold;
    units.held = totals.held;
    units.available = totals.available;
    units.remainder = totals.capacity.saturating_sub(totals.sold);
    units.queue_waiting_at_end = queue.waiting;
    units.queue_active_at_end = queue.active;

    // The holds as stored now.
    let holds = read_holds(stores, hold_ids, parallel).await?;
    evidence.holds = holds.len() as u64;
    let mut confirmed_units = 0u64;
    for h in holds.values() {
        let n = u64::from(h.units());
        match h.state {
            HoldState::Confirmed => confirmed_units += n,
            HoldState::Held | HoldState::Paying => units.in_live_holds += n,
            _ => {}
        }
    }
    checks.ledger_mismatch_units =
        confirmed_units.abs_diff(units.sold) + units.in_live_holds.abs_diff(units.held);
    for (pos, h, to) in returns {
        if last_sale.is_some_and(|l| pos > l)
            && let Some(hold) = holds.get(&h)
        {
            units
                .returned_after_last_sale
                .add(to, u64::from(hold.units()));
        }
    }
    units.on_sale_at_last_sale = i64::try_from(units.available).unwrap_or(i64::MAX)
        - i64::try_from(units.returned_after_last_sale.total()).unwrap_or(i64::MAX);
    if units.available > 0 && queue.waiting + queue.active > 0 {
        checks.stranded_units = units.available;
    }

    checks.fifo_inversions = line.inversions;
    checks.fifo_unverifiable = line.unverifiable;
    evidence.joins = line.joined.len() as u64;
    evidence.admissions = line.admissions;

    // Money.
    let intents = &money.intents;
    evidence.intents = intents.len() as u64;
    evidence.refunds = money.refunds;
    evidence.succeeded_intents = intents
        .iter()
        .filter(|i| i.status == IntentStatus::Succeeded)
        .count() as u64;
    let money = payments(intents, &holds);
    checks.double_charges = money.double_charges;
    checks.paid_not_confirmed_nor_refunded = money.paid_not_confirmed;
    checks.confirmed_without_payment = money.confirmed_without_payment;

    Ok(Findings {
        checks,
        units,
        evidence,
    })
}

fn state(name: &str) -> Option<HoldState> {
    HoldState::ALL.into_iter().find(|s| s.as_str() == name)
}

/// What one pass over a session's trail, in the store's order, collects.
#[derive(Debug, Default)]
struct Trail {
    /// Records read.
    records: u64,
    /// The holds named, in first-mention order.
    hold_ids: Vec<HoldId>,
    seen: HashSet<HoldId>,
    /// Position of the last record that took stock (a creation).
    last_sale: Option<usize>,
    /// Units put back: position, hold, state it went to.
    returns: Vec<(usize, HoldId, HoldState)>,
    /// The FIFO replay.
    line: Line,
}

impl Trail {
    /// Takes the next record of the trail.
    fn read(&mut self, r: &AuditRecord) {
        let pos = usize::try_from(self.records).unwrap_or(usize::MAX);
        self.records += 1;
        let h = match r.subject {
            Subject::Hold(h) => h,
            Subject::Ticket(_) => {
                self.line.read(r);
                return;
            }
            Subject::Session(_) => return,
        };
        if self.seen.insert(h) {
            self.hold_ids.push(h);
        }
        let to = state(&r.to);
        match (r.from.as_deref().map(state), to) {
            // A creation takes stock: a new hold, or a re-booking's confirmed one.
            (None, _) => self.last_sale = Some(pos),
            (
                Some(Some(HoldState::Held | HoldState::Paying)),
                Some(s @ (HoldState::Expired | HoldState::Released | HoldState::PaymentFailed)),
            )
            | (Some(Some(HoldState::Confirmed)), Some(s @ HoldState::Cancelled)) => {
                self.returns.push((pos, h, s));
            }
            _ => {}
        }
    }
}

/// Reads the session's whole trail in the store's order: in pages of `page` records, or
/// in one read.
async fn read_trail(
    stores: &Stores,
    session: SessionId,
    page: Option<usize>,
) -> Result<Trail, RushError> {
    let mut trail = Trail::default();
    let Some(limit) = page else {
        let records = stores
            .reservations
            .audit(&AuditScope::Session(session), AUDIT_LIMIT)
            .await
            .map_err(RushError::library("reading the audit trail"))?;
        trail.line = Line::with_capacity(records.len());
        for r in &records {
            trail.read(r);
        }
        // Freeing millions of records takes a while and nobody waits for it.
        std::thread::spawn(move || drop(records));
        return Ok(trail);
    };
    let mut after = None;
    loop {
        let page = stores
            .reservations
            .audit_page(&AuditQuery {
                scope: AuditScope::Session(session),
                order: PageOrder::OldestFirst,
                after,
                limit,
            })
            .await
            .map_err(RushError::library("reading the audit trail"))?;
        for r in &page.items {
            trail.read(r);
        }
        match page.next {
            Some(c) => after = Some(c),
            None => return Ok(trail),
        }
    }
}

/// Hashes ticket ids (UUIDv7: 74 random bits) by folding their bytes, FxHash style: a
/// million lookups cost a tenth of what SipHash costs, and the ids come from the store.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The FIFO line replayed from the trail.
#[derive(Debug, Default)]
struct Line {
    /// Join order of each FIFO ticket.
    joined: IdMap<TicketId, usize>,
    /// Whether the ticket at each join position is still in line.
    waiting: Vec<bool>,
    /// No ticket before this join position is still in line.
    head: usize,
    admissions: u64,
    inversions: u64,
    unverifiable: u64,
}

impl Line {
    /// Takes the next record of a session's trail (queue records move the line).
    fn read(&mut self, r: &AuditRecord) {
        if let Subject::Ticket(t) = r.subject {
            match (r.from.as_deref(), r.to.as_str()) {
                (None, "WAITING") if !r.reason.contains("pre-queue") => self.join(t),
                (Some("WAITING"), "ACTIVE") => self.admit(t),
                (Some("WAITING"), _) => self.leave(t),
                _ => {}
            }
        }
    }

    fn with_capacity(n: usize) -> Self {
        Self {
            joined: IdMap::with_capacity_and_hasher(n, Default::default()),
            waiting: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    fn join(&mut self, t: TicketId) {
        self.joined.insert(t, self.waiting.len());
        self.waiting.push(true);
    }

    fn leave(&mut self, t: TicketId) {
        if let Some(w) = self.joined.get(&t).and_then(|&i| self.waiting.get_mut(i)) {
            *w = false;
        }
    }

    fn admit(&mut self, t: TicketId) {
        self.admissions += 1;
        let Some(&i) = self.joined.get(&t) else {
            self.unverifiable += 1;
            return;
        };
        while self.waiting.get(self.head) == Some(&false) {
            self.head += 1;
        }
        if self.head != i {
            self.inversions += 1;
        }
        if let Some(w) = self.waiting.get_mut(i) {
            *w = false;
        }
    }
}

/// Reads every hold, `parallel` at a time.
async fn read_holds(
    stores: &Stores,
    ids: Vec<HoldId>,
    parallel: usize,
) -> Result<HashMap<HoldId, Hold>, RushError> {
    let chunk = ids.len().div_ceil(parallel.max(1)).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for part in ids.chunks(chunk) {
        let part = part.to_vec();
        let reservations = stores.reservations.clone();
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(part.len());
            for id in part {
                out.push(reservations.get(id).await?);
            }
            Ok::<_, ticket_core::Error>(out)
        });
    }
    let mut holds = HashMap::new();
    while let Some(part) = tasks.join_next().await {
        for h in part?.map_err(RushError::library("reading the holds"))? {
            holds.insert(h.id, h);
        }
    }
    Ok(holds)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct MoneyFindings {
    double_charges: u64,
    paid_not_confirmed: u64,
    confirmed_without_payment: u64,
}

/// Matches the sandbox's ledger against the holds.
fn payments(intents: &[PaymentIntent], holds: &HashMap<HoldId, Hold>) -> MoneyFindings {
    let kept = |i: &PaymentIntent| i.status == IntentStatus::Succeeded && !i.fully_refunded();
    // A re-booked hold is paid by the payment of the hold it replaced.
    let effective = |mut id: HoldId| {
        for _ in 0..8 {
            match holds.get(&id).and_then(|h| h.rebooked_as) {
                Some(next) => id = next,
                None => break,
            }
        }
        id
    };
    let mut money = MoneyFindings::default();
    let mut per_hold: HashMap<HoldId, u64> = HashMap::new();
    for intent in intents.iter().filter(|i| kept(i)) {
        let Some(hold) = intent.hold().map(effective) else {
            money.paid_not_confirmed += 1;
            continue;
        };
        *per_hold.entry(hold).or_default() += 1;
        if holds.get(&hold).map(|h| h.state) != Some(HoldState::Confirmed) {
            money.paid_not_confirmed += 1;
        }
    }
    money.double_charges = per_hold.values().map(|n| n.saturating_sub(1)).sum();
    let by_id: HashMap<&str, &PaymentIntent> = intents.iter().map(|i| (i.id.as_str(), i)).collect();
    money.confirmed_without_payment = holds
        .values()
        .filter(|h| h.state == HoldState::Confirmed)
        .filter(|h| {
            !h.payment_ref
                .as_deref()
                .and_then(|r| by_id.get(r))
                .is_some_and(|i| kept(i))
        })
        .count() as u64;
    money
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use ticket_core::Timestamp;
    use ticket_core::gateway::{HOLD_METADATA_KEY, IntentId};
    use ticket_core::model::hold::HoldItems;
    use ticket_core::model::inventory::Grade;
    use ticket_core::model::money::{Currency, Money};
    use ticket_core::{SessionId, UserId};

    fn krw(n: i64) -> Money {
        Money::new(n, Currency::new("KRW").expect("currency")).expect("money")
    }

    fn hold(i: i64, state: HoldState, payment: Option<&str>) -> Hold {
        let at = Timestamp::from_millis(i);
        Hold {
            id: HoldId::new_at(at),
            session: SessionId::new_at(at),
            user: UserId::new("u").expect("user"),
            items: HoldItems::Units {
                grade: Grade::new("GA").expect("grade"),
                quantity: 1,
                unit_price: krw(100),
            },
            amount: krw(100),
            state,
            created_at: at,
            expires_at: at,
            updated_at: at,
            payment_ref: payment.map(str::to_owned),
            admission: None,
            rebooked_from: None,
            rebooked_as: None,
        }
    }

    fn intent(id: &str, hold: &Hold, status: IntentStatus, refunded: i64) -> PaymentIntent {
        PaymentIntent {
            id: IntentId::new(id).expect("id"),
            amount: krw(100),
            status,
            capture_method: Default::default(),
            amount_capturable: 0,
            amount_received: if status == IntentStatus::Succeeded {
                100
            } else {
                0
            },
            amount_refunded: refunded,
            failure: None,
            metadata: BTreeMap::from([(HOLD_METADATA_KEY.to_owned(), hold.id.to_string())]),
            created_at: hold.created_at,
            authorization_expires_at: None,
            checkout_session: None,
        }
    }

    #[test]
    fn the_money_counters_catch_what_they_name() {
        let paid = hold(1, HoldState::Confirmed, Some("pi_1"));
        let twice = hold(2, HoldState::Confirmed, Some("pi_2"));
        let cancelled_refunded = hold(3, HoldState::Refunded, Some("pi_4"));
        let cancelled_kept = hold(4, HoldState::Cancelled, Some("pi_5"));
        let free_ride = hold(5, HoldState::Confirmed, Some("pi_missing"));
        let failed = hold(6, HoldState::PaymentFailed, Some("pi_6"));
        let intents = vec![
            intent("pi_1", &paid, IntentStatus::Succeeded, 0),
            intent("pi_2", &twice, IntentStatus::Succeeded, 0),
            intent("pi_3", &twice, IntentStatus::Succeeded, 0),
            intent("pi_4", &cancelled_refunded, IntentStatus::Succeeded, 100),
            intent("pi_5", &cancelled_kept, IntentStatus::Succeeded, 0),
            intent("pi_6", &failed, IntentStatus::Failed, 0),
        ];
        let holds: HashMap<HoldId, Hold> = [
            paid,
            twice,
            cancelled_refunded,
            cancelled_kept,
            free_ride,
            failed,
        ]
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
        assert_eq!(
            payments(&intents, &holds),
            MoneyFindings {
                double_charges: 1,
                paid_not_confirmed: 1,
                confirmed_without_payment: 1,
            }
        );
    }

    fn ticket(i: i64) -> TicketId {
        TicketId::new_at(Timestamp::from_millis(i))
    }

    #[test]
    fn the_line_counts_admissions_that_pass_an_earlier_joiner() {
        let mut line = Line::default();
        let t: Vec<_> = (0..5).map(ticket).collect();
        for x in &t {
            line.join(*x);
        }
        line.admit(t[0]);
        line.leave(t[1]);
        line.admit(t[2]); // t[1] left: fine
        line.admit(t[4]); // t[3] still waits: an inversion
        line.admit(t[3]); // fine: nobody earlier waits
        line.admit(ticket(99)); // never joined
        assert_eq!(
            (line.admissions, line.inversions, line.unverifiable),
            (5, 1, 1)
        );
    }
}
