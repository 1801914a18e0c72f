-- The read side (issue 17): counts kept with every change, a per-session change feed, keyset
-- indexes for a user's holds and the audit trail, notification deliveries, dispatcher
-- checkpoints and leases. Schema only, as 0001: the functions that write these tables are in
-- sql/ (lib/record.sql writes the counters, audit records and changes of every operation).

-- Units in PAYING holds, per grade: part of `held`, moved with it in the same UPDATE.
ALTER TABLE stock ADD COLUMN paying integer NOT NULL DEFAULT 0;
ALTER TABLE stock ADD CONSTRAINT stock_paying_in_held CHECK (paying >= 0 AND paying <= held);

-- One row per session, updated in the same transaction as every audit record of the session
-- (sql/lib/record.sql, tr_record), once per call however many records the call writes:
--
-- * `audited`: audit records written so far; the n-th record's id is AuditId::sequenced(at, n)
--   (tr_audit_id), so a session's records sort by (at, id) in write order within a
--   millisecond.
-- * `head`: the last change's sequence number. The change feed is numbered from this column,
--   not from a SEQUENCE: a sequence hands out numbers at call time, so a rolled-back
--   transaction leaves a gap and two concurrent transactions can commit in the other order
--   (7 visible before 6), and a reader resuming after 7 would miss 6 for ever. The row lock
--   taken by the UPDATE is held until commit, so the next writer of the session numbers after
--   this one's changes and can only commit after it: numbers are dense and become visible in
--   order.
-- * `sold_out`: SoldOut was announced and no unit came back since.
-- * holds by state (Inventory::counts).
-- * `watched_until`: whether writers notify (see the column).
--
-- The row is the session's serialisation point for every change (holds, transitions, joins,
-- admissions): functions take it last, after every other row lock of the session (see the lock
-- order in sql/lib/base.sql), and bump it once per call. Low fillfactor: it is updated in place
-- (HOT) many times a second on a hot session.
CREATE TABLE session_log (
    session_id     uuid    PRIMARY KEY REFERENCES sessions (id),
    audited        bigint  NOT NULL DEFAULT 0 CHECK (audited >= 0),
    head           bigint  NOT NULL DEFAULT 0 CHECK (head >= 0),
    sold_out       boolean NOT NULL DEFAULT false,
    held           bigint  NOT NULL DEFAULT 0 CHECK (held >= 0),
    paying         bigint  NOT NULL DEFAULT 0 CHECK (paying >= 0),
    confirmed      bigint  NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    expired        bigint  NOT NULL DEFAULT 0 CHECK (expired >= 0),
    released       bigint  NOT NULL DEFAULT 0 CHECK (released >= 0),
    payment_failed bigint  NOT NULL DEFAULT 0 CHECK (payment_failed >= 0),
    cancelled      bigint  NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
    refunded       bigint  NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    -- the latest record's instant (ms): a record whose caller's clock is behind it takes it,
    -- so a session's trail never goes back in time and (at, id) is write order; `last_at_before`
    -- is its value before the last call moved it (read back by that call's UPDATE)
    last_at        bigint  NOT NULL DEFAULT 0,
    last_at_before bigint  NOT NULL DEFAULT 0,
    -- someone waits for this session's changes until then (tr_watch): writers notify only
    -- while it lies ahead, because a transaction that sent NOTIFY holds a database-wide lock
    -- from before its commit until after it (PostgreSQL serialises the notification queue
    -- that way), which would serialise the commits of every writing transaction
    watched_until  timestamptz
) WITH (fillfactor = 50);

-- Sessions created before this migration: their counts from their holds and stock.
UPDATE stock s SET paying = p.n
  FROM (SELECT h.session_id, g.grade, sum(g.n)::integer AS n
          FROM holds h, unnest(h.grades, h.counts) AS g(grade, n)
         WHERE h.state = 'PAYING' GROUP BY 1, 2) p
 WHERE s.session_id = p.session_id AND s.grade = p.grade;
INSERT INTO session_log (session_id, audited, sold_out, held, paying, confirmed, expired,
                         released, payment_failed, cancelled, refunded, last_at)
SELECT s.id,
       (SELECT count(*) FROM audit a WHERE a.session_id = s.id),
       coalesce((SELECT sum(available) = 0 FROM stock k WHERE k.session_id = s.id), false),
       count(h.id) FILTER (WHERE h.state = 'HELD'),
       count(h.id) FILTER (WHERE h.state = 'PAYING'),
       count(h.id) FILTER (WHERE h.state = 'CONFIRMED'),
       count(h.id) FILTER (WHERE h.state = 'EXPIRED'),
       count(h.id) FILTER (WHERE h.state = 'RELEASED'),
       count(h.id) FILTER (WHERE h.state = 'PAYMENT_FAILED'),
       count(h.id) FILTER (WHERE h.state = 'CANCELLED'),
       count(h.id) FILTER (WHERE h.state = 'REFUNDED'),
       (SELECT coalesce(max(a.at), 0) FROM audit a WHERE a.session_id = s.id)
  FROM sessions s LEFT JOIN holds h ON h.session_id = s.id
 GROUP BY s.id;

-- The change feed: one row per change, numbered per session from session_log.head in the
-- same transaction as the change. `kind` is ChangeKind::as_str. Retention deletes the oldest
-- rows of a session (tr_prune_changes); a reader after a pruned cursor finds the row after its
-- cursor missing and is refused with ChangesPruned.
CREATE TABLE changes (
    session_id   uuid   NOT NULL REFERENCES sessions (id),
    seq          bigint NOT NULL CHECK (seq >= 1),
    at           bigint NOT NULL,
    kind         text   NOT NULL,
    subject_kind text   CHECK (subject_kind IN ('hold', 'ticket')),
    subject_id   uuid,
    owner        text,
    line         bigint,
    PRIMARY KEY (session_id, seq)
);

-- A user's holds across sessions, newest first (Reservations::holds_of_user, keyset on
-- (created_at, id)).
CREATE INDEX holds_of_user ON holds (user_id, created_at DESC, id DESC);

-- The audit trail by (at, id) per scope, both directions (Reservations::audit_page); they
-- replace the `ord` indexes of 0001, so a record still costs four index entries.
DROP INDEX audit_by_session;
DROP INDEX audit_by_subject;
DROP INDEX audit_by_owner;
CREATE INDEX audit_by_session ON audit (session_id, at, id);
CREATE INDEX audit_by_subject ON audit (subject_id, at, id);
CREATE INDEX audit_by_owner ON audit (owner, at, id);
COMMENT ON COLUMN audit.id IS
    'AuditId::sequenced(at, n, session), n counted per session in session_log.audited (earlier rows: random UUIDv7)';

-- Notification deliveries (DeliveryLog): a live claim (`holder` until `lease_until`) until
-- the delivery finishes, then its record (`status` set), written once.
CREATE TABLE deliveries (
    session_id  uuid    NOT NULL,
    seq         bigint  NOT NULL,
    recipient   text    NOT NULL,
    holder      text,
    lease_until bigint,
    status      text    CHECK (status IN ('SENT', 'GAVE_UP')),
    attempts    integer CHECK (attempts >= 0),
    last_error  text,
    at          bigint,
    finished_by text,
    PRIMARY KEY (session_id, seq, recipient),
    CHECK (status IS NULL OR (attempts IS NOT NULL AND at IS NOT NULL AND finished_by IS NOT NULL))
);

-- Dispatcher checkpoints: the last sequence of a session a consumer processed; only moves
-- forward.
CREATE TABLE checkpoints (
    consumer   text   NOT NULL,
    session_id uuid   NOT NULL,
    seq        bigint NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (consumer, session_id)
);

-- Named leases (Leases::try_lease).
CREATE TABLE leases (
    name   text   PRIMARY KEY,
    holder text   NOT NULL,
    until  bigint NOT NULL
);
