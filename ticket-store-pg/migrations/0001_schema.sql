-- ticketrush on PostgreSQL: tables and the constraints that make overselling impossible even
-- if application code is wrong. Instants are bigint milliseconds since the Unix epoch: the
-- library's injected clock decides expiry, never the server's clock.
--
-- Migrations hold the schema only: tables, indexes, types, and the triggers (with their
-- trigger functions) that are constraints. The operations are PL/pgSQL functions in sql/,
-- one file per operation, installed after the migrations by src/functions.rs; no table,
-- default or trigger may depend on a function of sql/ (they are dropped and re-created when
-- their file changes).

CREATE TABLE events (
    id         uuid PRIMARY KEY,
    definition jsonb NOT NULL
);

CREATE TABLE sessions (
    id         uuid PRIMARY KEY,
    event_id   uuid NOT NULL REFERENCES events (id),
    definition jsonb NOT NULL,
    -- the SalesPolicy; NULL means the default policy
    policy     jsonb
);

-- General-admission counters per grade (for seated sessions: per seat grade).
CREATE TABLE stock (
    session_id uuid    NOT NULL REFERENCES sessions (id),
    -- byte order, as Rust sorts grades: stock rows are locked in this order
    grade      text    COLLATE "C" NOT NULL,
    ord        integer NOT NULL,
    capacity   integer NOT NULL CHECK (capacity > 0),
    available  integer NOT NULL,
    held       integer NOT NULL CHECK (held >= 0),
    sold       integer NOT NULL CHECK (sold >= 0),
    PRIMARY KEY (session_id, grade),
    CONSTRAINT stock_available_in_range CHECK (available >= 0 AND available <= capacity),
    CONSTRAINT stock_conserved CHECK (available + held + sold = capacity)
);

CREATE TABLE seats (
    session_id uuid    NOT NULL,
    seat_id    text    NOT NULL,
    ord        integer NOT NULL,
    grade      text    COLLATE "C" NOT NULL,
    PRIMARY KEY (session_id, seat_id),
    FOREIGN KEY (session_id, grade) REFERENCES stock (session_id, grade)
);

CREATE TABLE holds (
    id            uuid    PRIMARY KEY,
    session_id    uuid    NOT NULL REFERENCES sessions (id),
    user_id       text    NOT NULL,
    state         text    NOT NULL CHECK (state IN ('HELD', 'PAYING', 'CONFIRMED', 'EXPIRED',
                                                    'RELEASED', 'PAYMENT_FAILED', 'CANCELLED',
                                                    'REFUNDED')),
    seated        boolean NOT NULL,
    -- units per grade, parallel arrays sorted by grade (the order stock rows are locked in)
    grades        text[]  COLLATE "C" NOT NULL,
    counts        integer[] NOT NULL,
    units         integer NOT NULL CHECK (units > 0),
    -- the priced HoldItems, as ticket-core serialises them
    items         jsonb   NOT NULL,
    amount        bigint  NOT NULL CHECK (amount >= 0),
    currency      text    NOT NULL,
    created_at    bigint  NOT NULL,
    expires_at    bigint  NOT NULL,
    updated_at    bigint  NOT NULL,
    payment_ref   text,
    admission     uuid,
    rebooked_from uuid REFERENCES holds (id),
    rebooked_as   uuid REFERENCES holds (id),
    ord           bigint GENERATED ALWAYS AS IDENTITY,
    CHECK (cardinality(grades) = cardinality(counts))
);
CREATE INDEX holds_by_user ON holds (session_id, user_id, ord);
-- a hold is re-booked at most once, and replaced by at most one; partial, so the common
-- hold (never re-booked) costs no entry
CREATE UNIQUE INDEX holds_rebooked_once ON holds (rebooked_from) WHERE rebooked_from IS NOT NULL;
CREATE UNIQUE INDEX holds_replaced_once ON holds (rebooked_as) WHERE rebooked_as IS NOT NULL;
-- the sweeper's index: only live holds are in it
CREATE INDEX holds_due ON holds (expires_at) WHERE state IN ('HELD', 'PAYING');

-- Seats of seated holds. The unique partial index makes it impossible for two live or sold
-- holds to cover one seat; `state` mirrors the hold's state in the same transaction.
CREATE TABLE hold_seats (
    hold_id    uuid NOT NULL REFERENCES holds (id),
    session_id uuid NOT NULL,
    seat_id    text NOT NULL,
    state      text NOT NULL,
    PRIMARY KEY (hold_id, seat_id),
    FOREIGN KEY (session_id, seat_id) REFERENCES seats (session_id, seat_id)
);
CREATE UNIQUE INDEX hold_seats_one_live_hold_per_seat ON hold_seats (session_id, seat_id)
    WHERE state IN ('HELD', 'PAYING', 'CONFIRMED');

-- One row per session's queue: the sequence, the counters that enforce the length cap, and
-- the recorded pre-queue draw. Joins and admissions lock this row.
CREATE TABLE queues (
    session_id uuid   PRIMARY KEY REFERENCES sessions (id),
    next_seq   bigint NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    -- WAITING tickets, drawn or not
    waiting    bigint NOT NULL DEFAULT 0 CHECK (waiting >= 0),
    -- WAITING tickets still in the undrawn pre-queue
    pre_queue  bigint NOT NULL DEFAULT 0 CHECK (pre_queue >= 0 AND pre_queue <= waiting),
    draw       jsonb
);

CREATE TABLE queue_tickets (
    id          uuid    PRIMARY KEY,
    session_id  uuid    NOT NULL REFERENCES queues (session_id),
    user_id     text    NOT NULL,
    state       text    NOT NULL CHECK (state IN ('WAITING', 'ACTIVE', 'USED', 'EXPIRED', 'LEFT')),
    pre_queue   boolean NOT NULL,
    seq         bigint,
    joined_at   bigint  NOT NULL,
    admitted_at bigint,
    expires_at  bigint,
    ord         bigint GENERATED ALWAYS AS IDENTITY,
    CHECK (state <> 'ACTIVE' OR expires_at IS NOT NULL)
);
-- one live ticket per (user, session)
CREATE UNIQUE INDEX queue_tickets_one_live_per_user ON queue_tickets (session_id, user_id)
    WHERE state IN ('WAITING', 'ACTIVE');
-- the line: positions are counted through this index
CREATE UNIQUE INDEX queue_tickets_line ON queue_tickets (session_id, seq) WHERE state = 'WAITING';
CREATE INDEX queue_tickets_pre_queue ON queue_tickets (session_id, ord)
    WHERE state = 'WAITING' AND seq IS NULL;
CREATE INDEX queue_tickets_active ON queue_tickets (session_id, expires_at) WHERE state = 'ACTIVE';
CREATE INDEX queue_tickets_by_user ON queue_tickets (session_id, user_id, ord);

-- Admission instants of the last minute (the rate limit's sliding window); older rows are
-- pruned by the next admission round.
CREATE TABLE admissions (
    session_id uuid   NOT NULL REFERENCES queues (session_id),
    at         bigint NOT NULL,
    ticket_id  uuid   NOT NULL,
    PRIMARY KEY (session_id, at, ticket_id)
);

-- The audit trail: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE).
CREATE TABLE audit (
    ord            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- UUIDv7 (74 random bits per millisecond); rows are ordered by `ord`
    id             uuid   NOT NULL,
    at             bigint NOT NULL,
    session_id     uuid   NOT NULL REFERENCES sessions (id),
    subject_kind   text   NOT NULL CHECK (subject_kind IN ('hold', 'ticket')),
    subject_id     uuid   NOT NULL,
    owner          text   NOT NULL,
    actor          jsonb  NOT NULL,
    from_state     text,
    to_state       text   NOT NULL,
    reason         text   NOT NULL,
    correlation_id text
);
CREATE INDEX audit_by_session ON audit (session_id, ord);
CREATE INDEX audit_by_subject ON audit (subject_id, ord);
CREATE INDEX audit_by_owner ON audit (owner, ord);

CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();

-- Idempotency records: in flight while `outcome` is NULL (until `expires_at`), then the
-- stored outcome until `expires_at`.
CREATE TABLE idempotency (
    scope       text   NOT NULL,
    key         text   NOT NULL,
    fingerprint bytea  NOT NULL,
    outcome     jsonb,
    expires_at  bigint NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at);

-- Check-in at the gate (sql/check_in.sql): one row per ticket checked in, written once, never
-- changed (triggers refuse UPDATE, DELETE and TRUNCATE). Ticket n of a hold is its n-th unit
-- or seat, n from 1.
CREATE TABLE ticket_uses (
    hold_id uuid    NOT NULL REFERENCES holds (id),
    ticket  integer NOT NULL CHECK (ticket >= 1),
    at      bigint  NOT NULL,
    gate    text    NOT NULL CHECK (gate <> ''),
    PRIMARY KEY (hold_id, ticket)
);

CREATE FUNCTION ticket_uses_are_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'check-in marks are written once (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ticket_uses_no_update_or_delete BEFORE UPDATE OR DELETE ON ticket_uses
    FOR EACH ROW EXECUTE FUNCTION ticket_uses_are_final();
CREATE TRIGGER ticket_uses_no_truncate BEFORE TRUNCATE ON ticket_uses
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_uses_are_final();

-- The schema itself refuses to cancel a hold with a checked-in ticket, whatever code runs
-- (the functions refuse it first, with a typed answer).
CREATE FUNCTION holds_checked_in_stay_sold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ticket_uses WHERE hold_id = NEW.id) THEN
        RAISE EXCEPTION 'hold % has a ticket checked in: it cannot be cancelled', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER holds_no_cancel_after_check_in BEFORE UPDATE OF state ON holds
    FOR EACH ROW WHEN (OLD.state = 'CONFIRMED' AND NEW.state = 'CANCELLED')
    EXECUTE FUNCTION holds_checked_in_stay_sold();

-- The functions of sql/ installed in this schema: one row per file, with the SHA-256 of the
-- text applied and the functions it created (src/functions.rs). A file is applied again only
-- when its checksum changes.
CREATE TABLE _ticketrush_functions (
    file       text        PRIMARY KEY,
    checksum   bytea       NOT NULL CHECK (length(checksum) = 32),
    functions  text[]      NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
