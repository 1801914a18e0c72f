-- The sweeper: claims up to `p_limit` due live holds with FOR UPDATE SKIP LOCKED (so racing
-- sweepers never wait for each other nor claim one hold twice), returns their units and
-- expires them. Returns the expired holds.
CREATE OR REPLACE FUNCTION tr_expire_due(p_now bigint, p_limit integer, p_actor jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    r     record;
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
    FOR r IN SELECT d.session_id, g.grade, sum(g.n)::integer AS n
               FROM holds d, unnest(d.grades, d.counts) AS g(grade, n)
              WHERE d.id = ANY (v_ids)
              GROUP BY 1, 2 ORDER BY d.session_id, g.grade COLLATE "C" LOOP
        UPDATE stock SET available = available + r.n, held = held - r.n
         WHERE session_id = r.session_id AND grade = r.grade;
    END LOOP;
    UPDATE hold_seats SET state = 'EXPIRED' WHERE hold_id = ANY (v_ids);
    FOR h IN SELECT * FROM holds WHERE id = ANY (v_ids) ORDER BY expires_at, ord LOOP
        PERFORM tr_audit(p_now, h.session_id, 'hold', h.id, h.user_id, p_actor, h.state,
                         'EXPIRED', 'TTL elapsed', NULL);
    END LOOP;
    FOR h IN UPDATE holds SET state = 'EXPIRED', updated_at = p_now WHERE id = ANY (v_ids)
             RETURNING * LOOP
        out := out || jsonb_build_array(to_jsonb(h));
    END LOOP;
    RETURN out;
END $$;
