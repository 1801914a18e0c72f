-- Leaves the queue: a session's leaves sent together (`tr_leave_batch`, one or many), each
-- applied in order as if alone by `tr_leave`.

-- Leaves the queue: WAITING or ACTIVE → LEFT; LEFT again is returned unchanged. The records
-- it makes are appended to `recs`, for the caller's tr_record.
CREATE OR REPLACE FUNCTION tr_leave(p_session uuid, p_user text, p_now bigint, p_actor jsonb,
                                    INOUT recs jsonb, OUT answer jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t      queue_tickets;
    v_from text;
BEGIN
    PERFORM 1 FROM queues WHERE session_id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        answer := '{"nf":"session"}';
        RETURN;
    END IF;
    recs := recs || tr_settle(p_session, p_now, p_actor);
    SELECT * INTO t FROM queue_tickets WHERE session_id = p_session AND user_id = p_user
     ORDER BY ord DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        answer := '{"nf":"ticket"}';
        RETURN;
    END IF;
    v_from := t.state;
    IF v_from = 'LEFT' THEN
        answer := jsonb_build_object('ticket', to_jsonb(t));
        RETURN;
    ELSIF v_from NOT IN ('WAITING', 'ACTIVE') THEN
        answer := '{"err":"not_in_queue"}';
        RETURN;
    END IF;
    IF v_from = 'WAITING' THEN
        UPDATE queues
           SET waiting = waiting - 1,
               pre_queue = pre_queue - CASE WHEN t.seq IS NULL THEN 1 ELSE 0 END
         WHERE session_id = p_session;
    END IF;
    UPDATE queue_tickets SET state = 'LEFT' WHERE id = t.id RETURNING * INTO t;
    recs := recs || tr_rec(p_now, 'ticket', t.id, p_user, p_actor, v_from, 'LEFT',
                           'left the queue', NULL, t.seq);
    answer := jsonb_build_object('ticket', to_jsonb(t));
END $$;

-- Leaves of one session sent together (group commit, see src/queue_batch.rs): one
-- transaction, one lock of the session's queue row and one commit for many leaves, each
-- applied in order exactly as `tr_leave` applies a leave alone; their records are written by
-- one tr_record at the end.
--
-- A batch locks several users' tickets, and so does a hold batch (each request's ACTIVE
-- ticket), in no common order. Taking the session's advisory lock first, as a hold batch
-- does, serialises the two instead of letting them deadlock; the global lock order
-- (advisory lock, queue row, tickets, log row) is kept.
CREATE OR REPLACE FUNCTION tr_leave_batch(p_session uuid, p_reqs jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r       jsonb;
    v_recs  jsonb := '[]';
    v_ans   jsonb;
    answers jsonb[] := '{}';
BEGIN
    PERFORM tr_lock_session(p_session);
    FOR r IN SELECT value FROM jsonb_array_elements(p_reqs) LOOP
        SELECT l.recs, l.answer INTO v_recs, v_ans
          FROM tr_leave(p_session, r->>'user', (r->>'now')::bigint, r->'actor', v_recs) AS l;
        answers := answers || v_ans;
    END LOOP;
    PERFORM tr_record(p_session, v_recs);
    RETURN to_jsonb(answers);
END $$;
