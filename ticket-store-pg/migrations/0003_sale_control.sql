-- The organiser's controls (ticket_core::store::SaleControl): the sale switch per session,
-- capacity changed while selling, and session records in the trail and the feed. Schema only,
-- as 0001 and 0002: the functions that write these columns are in sql/ (sale_control.sql; the
-- hold, hold batch and re-booking functions read the switch).

-- The sale switch: OPEN until the organiser moves it. `sale_since` is the instant of the audit
-- record that moved it last (NULL: never moved), `sale_reason` its reason. Holds and
-- re-bookings read it under the session's advisory lock, which set_sale_state also takes
-- (see sql/sale_control.sql), so a move and a hold of the session never interleave.
ALTER TABLE sessions
    ADD COLUMN sale_state  text NOT NULL DEFAULT 'OPEN'
        CONSTRAINT sessions_sale_state_check
        CHECK (sale_state IN ('OPEN', 'PAUSED', 'CLOSED', 'CANCELLED')),
    ADD COLUMN sale_since  bigint,
    ADD COLUMN sale_reason text,
    -- the session's current InventoryPlan after capacity changes (NULL: the plan of
    -- `definition`, as created; `definition` itself never changes, so create_event keeps
    -- comparing a repeat with the definition as created)
    ADD COLUMN plan         jsonb,
    -- bumped by every capacity change: the plan a change was computed from must still be
    -- the current one when it is applied
    ADD COLUMN plan_version bigint NOT NULL DEFAULT 0 CHECK (plan_version >= 0);

-- A grade may be brought down to zero units by capacity changes.
ALTER TABLE stock DROP CONSTRAINT stock_capacity_check;
ALTER TABLE stock ADD CONSTRAINT stock_capacity_check CHECK (capacity >= 0);

-- Seats removed by a capacity change are withdrawn, not deleted (hold_seats of past holds
-- refer to them): a withdrawn seat is not in the plan, is not counted in its grade's stock and
-- cannot be held. Adding a seat with a withdrawn seat's id brings the row back.
ALTER TABLE seats ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;

-- Records and changes about the session itself (Subject::Session: the sale switch and
-- capacity changes; subject_id is the session id, owner the actor's id).
ALTER TABLE audit DROP CONSTRAINT audit_subject_kind_check;
ALTER TABLE audit ADD CONSTRAINT audit_subject_kind_check
    CHECK (subject_kind IN ('hold', 'ticket', 'session'));
ALTER TABLE changes DROP CONSTRAINT changes_subject_kind_check;
ALTER TABLE changes ADD CONSTRAINT changes_subject_kind_check
    CHECK (subject_kind IN ('hold', 'ticket', 'session'));
