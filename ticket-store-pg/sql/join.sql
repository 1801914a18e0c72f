-- Joins the queue: a session's joins sent together (`tr_join_batch`, one or many), each
-- applied in order as if alone by `tr_join`.

-- Joins the queue; `answer` is {"ticket":…}, {"err":"queue_full"}, {"need_draw":true} or
-- {"nf":true}. The records it makes are appended to `recs`, for the caller's tr_record.
CREATE OR REPLACE FUNCTION tr_join(p_session uuid, p_user text, p_now bigint, p_pre boolean,
                                   p_max integer, p_ticket uuid, p_actor jsonb,
                                   INOUT recs jsonb, OUT answer jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    q   queues;
    t   queue_tickets;
    pre boolean;
BEGIN
    SELECT * INTO q FROM queues WHERE session_id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        answer := '{"nf":true}';
        RETURN;
    END IF;
    recs := recs || tr_settle(p_session, p_now, p_actor);
    SELECT * INTO t FROM queue_tickets
     WHERE session_id = p_session AND user_id = p_user AND state IN ('WAITING', 'ACTIVE');
    IF FOUND THEN
        answer := jsonb_build_object('ticket', to_jsonb(t));
        RETURN;
    END IF;
    IF p_max IS NOT NULL AND q.waiting >= p_max THEN
        answer := jsonb_build_object('err', 'queue_full', 'cap', p_max);
        RETURN;
    END IF;
    pre := p_pre AND q.draw IS NULL;
    IF NOT pre AND q.draw IS NULL THEN
        answer := '{"need_draw":true}';
        RETURN;
    END IF;
    INSERT INTO queue_tickets (id, session_id, user_id, state, pre_queue, seq, joined_at)
    VALUES (p_ticket, p_session, p_user, 'WAITING', pre,
            CASE WHEN pre THEN NULL ELSE q.next_seq END, p_now)
    RETURNING * INTO t;
    UPDATE queues
       SET next_seq = next_seq + CASE WHEN pre THEN 0 ELSE 1 END,
           waiting = waiting + 1,
           pre_queue = pre_queue + CASE WHEN pre THEN 1 ELSE 0 END
     WHERE session_id = p_session;
    recs := recs || tr_rec(p_now, 'ticket', t.id, p_user, p_actor, NULL, 'WAITING',
                           CASE WHEN pre THEN 'joined pre-queue' ELSE 'joined' END, NULL, t.seq);
    answer := jsonb_build_object('ticket', to_jsonb(t));
END $$;

-- Joins of one session sent together (group commit, see src/queue_batch.rs): one transaction,
-- one lock of the session's queue row and one commit for many joins, each applied in order
-- exactly as `tr_join` applies a join alone (it answers per request; a refusal or a
-- "draw first" changes nothing). Joins lock only the queue row and insert their own new
-- tickets, so a batch takes no lock a single join would not take: no new lock order. The
-- records of the whole batch are written by one tr_record at the end (the log row last).
CREATE OR REPLACE FUNCTION tr_join_batch(p_session uuid, p_reqs jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r       jsonb;
    v_recs  jsonb := '[]';
    v_ans   jsonb;
    answers jsonb[] := '{}';
BEGIN
    FOR r IN SELECT value FROM jsonb_array_elements(p_reqs) LOOP
        SELECT j.recs, j.answer INTO v_recs, v_ans
          FROM tr_join(p_session, r->>'user', (r->>'now')::bigint, (r->>'pre')::boolean,
                       (r->>'max')::integer, (r->>'id')::uuid, r->'actor', v_recs) AS j;
        answers := answers || v_ans;
    END LOOP;
    PERFORM tr_record(p_session, v_recs);
    RETURN to_jsonb(answers);
END $$;
