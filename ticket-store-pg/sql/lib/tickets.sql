-- Queue tickets: settling expired admissions, and the counters view and stats report.

-- ACTIVE tickets past their admission TTL become EXPIRED (each audited once).
CREATE OR REPLACE FUNCTION tr_settle(p_session uuid, p_now bigint, p_actor jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    FOR t IN UPDATE queue_tickets SET state = 'EXPIRED'
              WHERE session_id = p_session AND state = 'ACTIVE' AND expires_at <= p_now
             RETURNING id, user_id LOOP
        PERFORM tr_audit(p_now, p_session, 'ticket', t.id, t.user_id, p_actor, 'ACTIVE', 'EXPIRED',
                         'admission TTL elapsed', NULL);
    END LOOP;
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
