-- Check-in at the gate: a ticket of a CONFIRMED hold is marked used once, at its own
-- session, and a hold one of whose tickets was checked in is never cancelled (the holder went
-- in: no refund, no resale; see tr_transition in transition.sql). `tr_check_in` and
-- `tr_transition` both lock the hold row (`FOR UPDATE`, lock order step 3) before they read
-- anything, so a scan and a cancellation of one hold run one after the other and each sees
-- what the other did. The marks (`ticket_uses`) and the triggers that keep them final are
-- schema: migrations/0001_schema.sql.

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
