-- Leaves of one session sent together (group commit, see src/queue_batch.rs): one
-- transaction, one lock of the session's queue row and one commit for many leaves, each
-- applied in order exactly as `tr_leave` applies a leave alone.
--
-- A batch locks several users' tickets, and so does a hold batch (each request's ACTIVE
-- ticket), in no common order. Taking the session's advisory lock first, as a hold batch
-- does, serialises the two instead of letting them deadlock; the global lock order
-- (advisory lock, queue row, tickets) is kept.
CREATE FUNCTION tr_leave_batch(p_session uuid, p_reqs jsonb) RETURNS jsonb
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
