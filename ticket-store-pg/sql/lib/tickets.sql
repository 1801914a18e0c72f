-- Queue tickets: settling expired admissions, and the counters view and stats report.

-- ACTIVE tickets past their admission TTL become EXPIRED. Returns their records (tr_rec), for
-- the caller to hand to tr_record with the rest of its records (each audited once).
CREATE OR REPLACE FUNCTION tr_settle(p_session uuid, p_now bigint, p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_recs jsonb;
BEGIN
    WITH settled AS (
        UPDATE queue_tickets SET state = 'EXPIRED'
         WHERE session_id = p_session AND state = 'ACTIVE' AND expires_at <= p_now
        RETURNING id, user_id, seq, ord)
    SELECT coalesce(jsonb_agg(tr_rec(p_now, 'ticket', id, user_id, p_actor, 'ACTIVE', 'EXPIRED',
                                     'admission TTL elapsed', NULL, seq) ORDER BY ord), '[]')
      INTO v_recs FROM settled;
    RETURN v_recs;
END $$;

-- Counters shared by view and stats, read after settling.
CREATE OR REPLACE FUNCTION tr_queue_counts(p_session uuid, p_now bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'waiting', q.waiting,
        'pre_queue', q.pre_queue,
        'drawn', q.draw IS NOT NULL,
        'active', (SELECT count(*) FROM queue_tickets
                    WHERE session_id = p_session AND state = 'ACTIVE' AND expires_at > p_now),
        'admitted_last_minute', (SELECT count(*) FROM admissions
                                  WHERE session_id = p_session AND at > p_now - 60000),
        'available', (SELECT coalesce(sum(available), 0) FROM stock WHERE session_id = p_session),
        'held', (SELECT coalesce(sum(held), 0) FROM stock WHERE session_id = p_session))
      FROM queues q WHERE q.session_id = p_session
$$;
