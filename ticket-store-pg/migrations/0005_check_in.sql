-- Check-in at the gate: a ticket of a CONFIRMED hold is marked used once, at its own
-- session, and a hold one of whose tickets was checked in is never cancelled (the holder went
-- in: no refund, no resale). `tr_check_in` and `tr_transition` both lock the hold row
-- (`FOR UPDATE`, lock order step 3) before they read anything, so a scan and a cancellation
-- of one hold run one after the other and each sees what the other did.

-- One row per ticket checked in: written once, never changed (triggers refuse UPDATE, DELETE
-- and TRUNCATE). Ticket n of a hold is its n-th unit or seat, n from 1.
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

-- Checks ticket `p_ticket` of hold `p_hold` in at the gate of session `p_session`, by gate
-- `p_gate`, at `p_now`: the rules of ticket_core::model::check_in::decide_check_in, in its
-- order (another session, a number out of range, a hold not in `p_allowed` = CONFIRMED),
-- then the mark and its audit record (`p_from` → `p_to`), or the first mark unchanged.
-- Commits synchronously: a mark acknowledged at the gate survives a crash.
CREATE OR REPLACE FUNCTION tr_check_in(p_hold uuid, p_session uuid, p_ticket integer,
                                       p_allowed text, p_gate text, p_actor jsonb,
                                       p_reason text, p_corr text, p_from text, p_to text,
                                       p_now bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    h     holds;
    first ticket_uses;
BEGIN
    PERFORM set_config('synchronous_commit', 'on', true);
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    IF h.session_id <> p_session THEN
        RETURN jsonb_build_object('err', 'wrong_session', 'session', h.session_id);
    END IF;
    IF p_ticket < 1 OR p_ticket > h.units THEN
        RETURN jsonb_build_object('err', 'ticket_out_of_range', 'ticket', p_ticket,
                                  'tickets', h.units);
    END IF;
    IF h.state <> p_allowed THEN
        RETURN jsonb_build_object('err', 'not_confirmed', 'state', h.state);
    END IF;
    SELECT * INTO first FROM ticket_uses WHERE hold_id = p_hold AND ticket = p_ticket;
    IF FOUND THEN
        RETURN jsonb_build_object('used', first.at, 'gate', first.gate);
    END IF;
    INSERT INTO ticket_uses (hold_id, ticket, at, gate) VALUES (p_hold, p_ticket, p_now, p_gate);
    PERFORM tr_audit(p_now, h.session_id, 'hold', h.id, h.user_id, p_actor, p_from, p_to,
                     p_reason, p_corr);
    RETURN jsonb_build_object('first', p_now);
END $$;

-- tr_transition of 0002, plus the check-in guard: CONFIRMED → CANCELLED is refused
-- (`ticket_used`, with the first check-in's time) once a ticket of the hold was checked in
-- (ticket_core::model::check_in::blocked_by_check_in, repeated here because the check and
-- the move must be one step; written out rather than passed in, so a server of the
-- previous release calling this function during a rolling upgrade is held to it too).
CREATE OR REPLACE FUNCTION tr_transition(p_hold uuid, p_to text, p_table jsonb, p_now bigint,
                                         p_actor jsonb, p_reason text, p_corr text,
                                         p_payref text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    h          holds;
    code       text;
    first_used bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'on', true);
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    code := substr(p_table->>h.state,
                   1 + CASE WHEN p_now >= h.expires_at THEN 2 ELSE 0 END
                     + CASE WHEN h.rebooked_as IS NOT NULL THEN 1 ELSE 0 END, 1);
    IF code = 'A' THEN
        RETURN jsonb_build_object('changed', false, 'hold', to_jsonb(h));
    ELSIF code = 'D' THEN
        RETURN jsonb_build_object('err', 'not_due', 'at', h.expires_at);
    ELSIF code = 'X' THEN
        h := tr_apply(h, 'EXPIRED', 'V', NULL, p_now, p_actor, 'used after its TTL', p_corr);
        RETURN jsonb_build_object('err', 'hold_expired', 'at', h.expires_at);
    ELSIF code IN ('0', 'S', 'V', 'C') THEN
        IF h.state = 'CONFIRMED' AND p_to = 'CANCELLED' THEN
            SELECT min(at) INTO first_used FROM ticket_uses WHERE hold_id = h.id;
            IF first_used IS NOT NULL THEN
                RETURN jsonb_build_object('err', 'ticket_used', 'at', first_used);
            END IF;
        END IF;
        h := tr_apply(h, p_to, code, p_payref, p_now, p_actor, p_reason, p_corr);
        RETURN jsonb_build_object('changed', true, 'hold', to_jsonb(h));
    END IF;
    RETURN jsonb_build_object('err', 'illegal', 'from', h.state);
END $$;
