-- Joins the queue: one join (`tr_join`) or a session's joins sent together
-- (`tr_join_batch`), each applied in order as if alone.

-- Joins the queue; {"ticket":…}, {"err":"queue_full"}, {"need_draw":true} or {"nf":true}.
CREATE OR REPLACE FUNCTION tr_join(p_session uuid, p_user text, p_now bigint, p_pre boolean,
                                   p_max integer, p_ticket uuid, p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    q   queues;
    t   queue_tickets;
    pre boolean;
BEGIN
    SELECT * INTO q FROM queues WHERE session_id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    PERFORM tr_settle(p_session, p_now, p_actor);
    SELECT * INTO t FROM queue_tickets
     WHERE session_id = p_session AND user_id = p_user AND state IN ('WAITING', 'ACTIVE');
    IF FOUND THEN
        RETURN jsonb_build_object('ticket', to_jsonb(t));
    END IF;
    IF p_max IS NOT NULL AND q.waiting >= p_max THEN
        RETURN jsonb_build_object('err', 'queue_full', 'cap', p_max);
    END IF;
    pre := p_pre AND q.draw IS NULL;
    IF NOT pre AND q.draw IS NULL THEN
        RETURN '{"need_draw":true}';
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
    PERFORM tr_audit(p_now, p_session, 'ticket', t.id, p_user, p_actor, NULL, 'WAITING',
                     CASE WHEN pre THEN 'joined pre-queue' ELSE 'joined' END, NULL);
    RETURN jsonb_build_object('ticket', to_jsonb(t));
END $$;

-- Joins of one session sent together (group commit, see src/queue_batch.rs): one transaction,
-- one lock of the session's queue row and one commit for many joins, each applied in order
-- exactly as `tr_join` applies a join alone (it answers per request; a refusal or a
-- "draw first" changes nothing). Joins lock only the queue row and insert their own new
-- tickets, so a batch takes no lock a single join would not take: no new lock order.
CREATE OR REPLACE FUNCTION tr_join_batch(p_session uuid, p_reqs jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r       jsonb;
    answers jsonb[] := '{}';
BEGIN
    FOR r IN SELECT value FROM jsonb_array_elements(p_reqs) LOOP
        answers := answers || tr_join(p_session, r->>'user', (r->>'now')::bigint,
                                      (r->>'pre')::boolean, (r->>'max')::integer,
                                      (r->>'id')::uuid, r->'actor');
    END LOOP;
    RETURN to_jsonb(answers);
END $$;
