-- Moves one hold to another state (`tr_transition`), following the decision table computed
-- in Rust by ticket_core::model::hold::decide_parts (src/reservations.rs), and refusing to
-- cancel a hold with a checked-in ticket.

-- Moves stock for a hold's units: 'S' held → sold, 'V' held → available, 'C' sold → available;
-- `p_paying` (+1, -1 or 0) moves the units into or out of `paying` (a part of `held`) in the
-- same UPDATE.
CREATE OR REPLACE FUNCTION tr_move_stock(h holds, p_effect text, p_paying integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    IF p_effect NOT IN ('S', 'V', 'C') AND p_paying = 0 THEN
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(h.grades) LOOP
        UPDATE stock
           SET available = available + CASE WHEN p_effect IN ('V', 'C') THEN h.counts[i] ELSE 0 END,
               held = held - CASE WHEN p_effect IN ('S', 'V') THEN h.counts[i] ELSE 0 END,
               sold = sold + CASE p_effect WHEN 'S' THEN h.counts[i]
                                           WHEN 'C' THEN -h.counts[i] ELSE 0 END,
               paying = paying + p_paying * h.counts[i]
         WHERE session_id = h.session_id AND grade = h.grades[i];
    END LOOP;
END $$;

-- Applies a decided transition to a locked hold: state, stock (and PAYING units), seats, then
-- its record (tr_audit → tr_record: audit, change, counts; the log row last).
CREATE OR REPLACE FUNCTION tr_apply(h holds, p_to text, p_effect text, p_payref text, p_now bigint,
                                    p_actor jsonb, p_reason text, p_corr text) RETURNS holds
LANGUAGE plpgsql AS $$
DECLARE
    v_from text := h.state;
BEGIN
    UPDATE holds SET state = p_to, updated_at = p_now, payment_ref = coalesce(p_payref, payment_ref)
     WHERE id = h.id RETURNING * INTO h;
    PERFORM tr_move_stock(h, p_effect,
                          (p_to = 'PAYING')::int - (v_from = 'PAYING')::int);
    IF h.seated THEN
        UPDATE hold_seats SET state = p_to WHERE hold_id = h.id;
    END IF;
    PERFORM tr_audit(p_now, h.session_id, 'hold', h.id, h.user_id, p_actor, v_from, p_to,
                     p_reason, p_corr);
    RETURN h;
END $$;

-- A state change. `p_table` maps each current state to four decision codes computed by
-- ticket-core's state machine, for (not due, not re-booked), (not due, re-booked),
-- (due, not re-booked), (due, re-booked): A already there, X expire instead, D not due,
-- I illegal, 0/S/V/C apply with that stock effect. Confirmations commit synchronously.
--
-- The check-in guard: CONFIRMED → CANCELLED is refused (`ticket_used`, with the first
-- check-in's time) once a ticket of the hold was checked in
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
