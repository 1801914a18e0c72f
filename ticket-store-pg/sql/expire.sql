-- The sweeper: claims up to `p_limit` due live holds with FOR UPDATE SKIP LOCKED (so racing
-- sweepers never wait for each other nor claim one hold twice), returns their units and
-- expires them. Returns the expired holds.
--
-- Session by session (ascending): its stock rows (ascending grade), then its records in one
-- tr_record (the log row last, as in every operation; see the lock order in lib/base.sql).
CREATE OR REPLACE FUNCTION tr_expire_due(p_now bigint, p_limit integer, p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    r     record;
    s     uuid;
    h     holds;
    out   jsonb := '[]';
BEGIN
    SELECT array_agg(id) INTO v_ids FROM (
        SELECT id FROM holds
         WHERE state IN ('HELD', 'PAYING') AND expires_at <= p_now
         ORDER BY expires_at LIMIT p_limit
           FOR UPDATE SKIP LOCKED) AS due;
    IF v_ids IS NULL THEN
        RETURN out;
    END IF;
    UPDATE hold_seats SET state = 'EXPIRED' WHERE hold_id = ANY (v_ids);
    FOR s IN SELECT DISTINCT session_id FROM holds WHERE id = ANY (v_ids) ORDER BY 1 LOOP
        FOR r IN SELECT g.grade, sum(g.n)::integer AS n,
                        (sum(g.n) FILTER (WHERE d.state = 'PAYING'))::integer AS paying
                   FROM holds d, unnest(d.grades, d.counts) AS g(grade, n)
                  WHERE d.id = ANY (v_ids) AND d.session_id = s
                  GROUP BY 1 ORDER BY g.grade COLLATE "C" LOOP
            UPDATE stock SET available = available + r.n, held = held - r.n,
                             paying = paying - coalesce(r.paying, 0)
             WHERE session_id = s AND grade = r.grade;
        END LOOP;
        PERFORM tr_record(s, (
            SELECT jsonb_agg(tr_rec(p_now, 'hold', d.id, d.user_id, p_actor, d.state, 'EXPIRED',
                                    'TTL elapsed', NULL, NULL) ORDER BY d.expires_at, d.ord)
              FROM holds d WHERE d.id = ANY (v_ids) AND d.session_id = s));
    END LOOP;
    FOR h IN UPDATE holds SET state = 'EXPIRED', updated_at = p_now WHERE id = ANY (v_ids)
             RETURNING * LOOP
        out := out || jsonb_build_array(to_jsonb(h));
    END LOOP;
    RETURN out;
END $$;
