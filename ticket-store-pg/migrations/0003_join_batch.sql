-- Joins of one session sent together (group commit, see src/join_batch.rs): one transaction,
-- one lock of the session's queue row and one commit for many joins, each applied in order
-- exactly as `tr_join` applies a join alone (it answers per request; a refusal or a
-- "draw first" changes nothing). Joins lock only the queue row and insert their own new
-- tickets, so a batch takes no lock a single join would not take: no new lock order.
CREATE FUNCTION tr_join_batch(p_session uuid, p_reqs jsonb) RETURNS jsonb
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
