-- One admission round under the queue row's lock: FIFO by sequence, paced by the active cap,
-- the sliding-minute rate and the units on sale. Its records (settled and admitted tickets) are
-- written by one tr_record at the end.
CREATE OR REPLACE FUNCTION tr_admit(p_session uuid, p_now bigint, p_max_active bigint,
                                    p_per_minute bigint, p_ttl bigint, p_units_per_user bigint,
                                    p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    q         queues;
    t         queue_tickets;
    v_active  bigint;
    v_rate    bigint;
    v_avail   bigint;
    v_waiting bigint;
    n         bigint;
    lim       text := 'empty';
    v_count   bigint := 0;
    admitted  jsonb := '[]';
    v_recs    jsonb;
BEGIN
    SELECT * INTO q FROM queues WHERE session_id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    IF q.draw IS NULL THEN
        RETURN '{"need_draw":true}';
    END IF;
    v_recs := tr_settle(p_session, p_now, p_actor);
    DELETE FROM admissions WHERE session_id = p_session AND at <= p_now - 60000;
    SELECT count(*) INTO v_active FROM queue_tickets
     WHERE session_id = p_session AND state = 'ACTIVE' AND expires_at > p_now;
    SELECT count(*) INTO v_rate FROM admissions WHERE session_id = p_session;
    SELECT coalesce(sum(available), 0) INTO v_avail FROM stock WHERE session_id = p_session;
    v_waiting := q.waiting - q.pre_queue;
    n := v_waiting;
    IF greatest(p_max_active - v_active, 0) < n THEN
        n := greatest(p_max_active - v_active, 0); lim := 'active_cap';
    END IF;
    IF greatest(p_per_minute - v_rate, 0) < n THEN
        n := greatest(p_per_minute - v_rate, 0); lim := 'rate';
    END IF;
    IF greatest(v_avail / greatest(p_units_per_user, 1) - v_active, 0) < n THEN
        n := greatest(v_avail / greatest(p_units_per_user, 1) - v_active, 0); lim := 'stock';
    END IF;
    IF n = v_waiting AND n > 0 THEN
        lim := 'empty';
    END IF;
    IF n > 0 THEN
        -- FIFO: the first n of the line, waiting for (never skipping) a locked ticket, since
        -- skipping one would admit someone behind it; rounds are serialised by the queue row
        FOR t IN SELECT * FROM queue_tickets
                  WHERE session_id = p_session AND state = 'WAITING' AND seq IS NOT NULL
                  ORDER BY seq LIMIT n FOR UPDATE LOOP
            UPDATE queue_tickets SET state = 'ACTIVE', admitted_at = p_now, expires_at = p_now + p_ttl
             WHERE id = t.id RETURNING * INTO t;
            INSERT INTO admissions (session_id, at, ticket_id) VALUES (p_session, p_now, t.id);
            v_recs := v_recs || tr_rec(p_now, 'ticket', t.id, t.user_id, p_actor, 'WAITING',
                                       'ACTIVE', 'admitted', NULL, t.seq);
            admitted := admitted || jsonb_build_array(to_jsonb(t));
            v_count := v_count + 1;
        END LOOP;
        UPDATE queues SET waiting = waiting - v_count WHERE session_id = p_session;
    END IF;
    PERFORM tr_record(p_session, v_recs);
    RETURN jsonb_build_object('admitted', admitted, 'limit', lim);
END $$;
