-- The user's latest ticket with its position (tr_line_position: O(log n) block counters) and
-- counters.
CREATE OR REPLACE FUNCTION tr_view(p_session uuid, p_user text, p_now bigint, p_actor jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t   queue_tickets;
    pos bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM queues WHERE session_id = p_session) THEN
        RETURN '{"nf":"session"}';
    END IF;
    PERFORM tr_record(p_session, tr_settle(p_session, p_now, p_actor));
    SELECT * INTO t FROM queue_tickets WHERE session_id = p_session AND user_id = p_user
     ORDER BY ord DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN '{"nf":"ticket"}';
    END IF;
    IF t.state = 'WAITING' AND t.seq IS NOT NULL THEN
        pos := tr_line_position(p_session, t.seq);
    END IF;
    RETURN tr_queue_counts(p_session, p_now)
           || jsonb_build_object('ticket', to_jsonb(t), 'position', pos);
END $$;
