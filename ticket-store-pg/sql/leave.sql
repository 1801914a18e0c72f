-- Leaves the queue: one leave (`tr_leave`) or a session's leaves sent together
-- (`tr_leave_batch`), each applied in order as if alone.

-- Leaves the queue: WAITING or ACTIVE → LEFT; LEFT again is returned unchanged.
CREATE OR REPLACE FUNCTION tr_leave(p_session uuid, p_user text, p_now bigint, p_actor jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t      queue_tickets;
    v_from text;
BEGIN
    PERFORM 1 FROM queues WHERE session_id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":"session"}';
    END IF;
    PERFORM tr_settle(p_session, p_now, p_actor);
    SELECT * INTO t FROM queue_tickets WHERE session_id = p_session AND user_id = p_user
     ORDER BY ord DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":"ticket"}';
    END IF;
    v_from := t.state;
    IF v_from = 'LEFT' THEN
        RETURN jsonb_build_object('ticket', to_jsonb(t));
    ELSIF v_from NOT IN ('WAITING', 'ACTIVE') THEN
        RETURN '{"err":"not_in_queue"}';
    END IF;
    IF v_from = 'WAITING' THEN
        UPDATE queues
           SET waiting = waiting - 1,
               pre_queue = pre_queue - CASE WHEN t.seq IS NULL THEN 1 ELSE 0 END
         WHERE session_id = p_session;
    END IF;
    UPDATE queue_tickets SET state = 'LEFT' WHERE id = t.id RETURNING * INTO t;
    PERFORM tr_audit(p_now, p_session, 'ticket', t.id, p_user, p_actor, v_from, 'LEFT',
                     'left the queue', NULL);
    RETURN jsonb_build_object('ticket', to_jsonb(t));
END $$;

-- Leaves of one session sent together (group commit, see src/queue_batch.rs): one
-- transaction, one lock of the session's queue row and one commit for many leaves, each
-- applied in order exactly as `tr_leave` applies a leave alone.
--
-- A batch locks several users' tickets, and so does a hold batch (each request's ACTIVE
-- ticket), in no common order. Taking the session's advisory lock first, as a hold batch
-- does, serialises the two instead of letting them deadlock; the global lock order
-- (advisory lock, queue row, tickets) is kept.
CREATE OR REPLACE FUNCTION tr_leave_batch(p_session uuid, p_reqs jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r       jsonb;
    answers jsonb[] := '{}';
BEGIN
    PERFORM tr_lock_session(p_session);
    FOR r IN SELECT value FROM jsonb_array_elements(p_reqs) LOOP
        answers := answers || tr_leave(p_session, r->>'user', (r->>'now')::bigint, r->'actor');
    END LOOP;
    RETURN to_jsonb(answers);
END $$;
