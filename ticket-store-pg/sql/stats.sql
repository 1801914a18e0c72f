-- Aggregate queue figures of a session, after settling expired admissions.
CREATE OR REPLACE FUNCTION tr_stats(p_session uuid, p_now bigint, p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM queues WHERE session_id = p_session) THEN
        RETURN '{"nf":"session"}';
    END IF;
    PERFORM tr_record(p_session, tr_settle(p_session, p_now, p_actor));
    RETURN tr_queue_counts(p_session, p_now);
END $$;
