-- Creates holds: a batch of requests in one transaction (group commit), each applied as
-- hold.sql applies it alone: all of it or none of it. The caller is src/hold_batch.rs.

-- Adds `p_taken[i]` units of grade `p_grades[i]` to the held units of a session.
CREATE OR REPLACE FUNCTION tr_take_stock(p_session uuid, p_grades text[], p_taken integer[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. cardinality(p_grades) LOOP
        IF p_taken[i] > 0 THEN
            UPDATE stock SET available = available - p_taken[i], held = held + p_taken[i]
             WHERE session_id = p_session AND grade = p_grades[i];
        END IF;
    END LOOP;
END $$;

-- Writes the holds accepted for one general-admission session of a batch at once
-- (`p_accepted`: [{"i", "req", "ticket"}] in order): one INSERT for the hold rows, one UPDATE
-- for the used tickets, one INSERT for their audit records. Returns the `i` of the requests
-- whose hold id already existed: nothing was written for them.
CREATE OR REPLACE FUNCTION tr_hold_flush(p_accepted jsonb) RETURNS integer[] LANGUAGE plpgsql AS $$
DECLARE
    v_inserted uuid[];
BEGIN
    WITH a AS (SELECT x.value AS r, x.value->'req' AS req FROM jsonb_array_elements(p_accepted) x),
    ins AS (
        INSERT INTO holds (id, session_id, user_id, state, seated, grades, counts, units, items,
                           amount, currency, created_at, expires_at, updated_at, admission)
        SELECT (req->>'id')::uuid, (req->>'session')::uuid, req->>'user', 'HELD', false,
               ARRAY[req->'grades'->>0], ARRAY[(req->'counts'->>0)::integer],
               (req->>'units')::integer, req->'items', (req->>'amount')::bigint,
               req->>'currency', (req->>'now')::bigint, (req->>'expires_at')::bigint,
               (req->>'now')::bigint, (r->>'ticket')::uuid
          FROM a
        ON CONFLICT (id) DO NOTHING
        RETURNING id)
    SELECT array_agg(id) INTO v_inserted FROM ins;
    v_inserted := coalesce(v_inserted, '{}');
    UPDATE queue_tickets SET state = 'USED'
     WHERE id IN (SELECT (x.value->>'ticket')::uuid FROM jsonb_array_elements(p_accepted) x
                   WHERE (x.value->'req'->>'id')::uuid = ANY (v_inserted)
                     AND x.value->>'ticket' IS NOT NULL);
    INSERT INTO audit (id, at, session_id, subject_kind, subject_id, owner, actor, from_state,
                       to_state, reason, correlation_id)
    SELECT tr_uuid7(w.at),
           w.at, w.session, w.kind, w.subject, w.owner, w.actor, w.from_state, w.to_state,
           w.reason, w.corr
      FROM (SELECT (x.value->'req'->>'now')::bigint AS at,
                   (x.value->'req'->>'session')::uuid AS session, k.kind,
                   CASE k.kind WHEN 'ticket' THEN (x.value->>'ticket')::uuid
                               ELSE (x.value->'req'->>'id')::uuid END AS subject,
                   x.value->'req'->>'user' AS owner, x.value->'req'->'actor' AS actor,
                   CASE k.kind WHEN 'ticket' THEN 'ACTIVE' END AS from_state,
                   CASE k.kind WHEN 'ticket' THEN 'USED' ELSE 'HELD' END AS to_state,
                   CASE k.kind WHEN 'ticket' THEN 'hold made' ELSE 'hold created' END AS reason,
                   x.value->'req'->>'corr' AS corr, x.ordinality AS o, k.n
              FROM jsonb_array_elements(p_accepted) WITH ORDINALITY x,
                   (VALUES ('ticket', 1), ('hold', 2)) AS k(kind, n)
             WHERE (x.value->'req'->>'id')::uuid = ANY (v_inserted)
               AND (k.kind = 'hold' OR x.value->>'ticket' IS NOT NULL)) AS w
     ORDER BY w.o, w.n;
    RETURN ARRAY(SELECT (x.value->>'i')::integer FROM jsonb_array_elements(p_accepted) x
                  WHERE NOT (x.value->'req'->>'id')::uuid = ANY (v_inserted));
END $$;

-- Many hold requests in one transaction (group commit). Each is applied as if alone: all of
-- it or none of it. The sessions' advisory locks are taken first, in ascending order; then
-- the requests run grouped by session (ascending), within a session by grade (so stock rows
-- are locked in order), then in arrival order. A general-admission session with several
-- requests in the batch has its stock rows locked and read once; the requests are decided
-- against those counters (and the units each user was given earlier in the batch) in order;
-- then the accepted holds, their tickets and audit records are written by tr_hold_flush and
-- the units taken with one UPDATE per grade, instead of a few statements per request.
-- Returns one answer per request, in order.
CREATE OR REPLACE FUNCTION tr_hold_batch(reqs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r         record;
    prev      uuid;
    lock_all  uuid[];
    grouped   uuid[];
    in_memory boolean := false;
    g_names   text[];
    g_avail   integer[];
    g_taken   integer[];
    v_err     jsonb;
    v_ticket  uuid;
    v_grade   text;
    v_gi      integer;
    v_qty     integer;
    v_dup     integer;
    accepted  jsonb := '[]';
    pending   jsonb := '{}';
    out       jsonb[] := '{}';
BEGIN
    IF jsonb_array_length(reqs) = 1 THEN
        PERFORM tr_lock_session((reqs->0->>'session')::uuid);
        RETURN jsonb_build_array(tr_hold_one(reqs->0));
    END IF;
    -- tr_lock_session for each session, ascending
    PERFORM pg_advisory_xact_lock(hashtextextended(k.s::text, 7472))
       FROM (SELECT DISTINCT (e->>'session')::uuid AS s FROM jsonb_array_elements(reqs) e
              ORDER BY 1) AS k;
    -- sessions where a request takes several grades: their stock rows are all locked, in
    -- order, before the session's first request
    lock_all := ARRAY(SELECT DISTINCT (e->>'session')::uuid FROM jsonb_array_elements(reqs) e
                       WHERE jsonb_array_length(e->'grades') > 1);
    -- general-admission sessions with several requests: decided in memory
    grouped := ARRAY(SELECT (e->>'session')::uuid FROM jsonb_array_elements(reqs) e
                      WHERE NOT (e->>'seated')::boolean GROUP BY 1 HAVING count(*) > 1);
    FOR r IN SELECT e.value AS req, e.ordinality AS i, (e.value->>'session')::uuid AS session
               FROM jsonb_array_elements(reqs) WITH ORDINALITY e
              ORDER BY 3, (e.value->'grades'->>0) COLLATE "C", 2 LOOP
        IF r.session IS DISTINCT FROM prev THEN
            IF in_memory THEN
                FOREACH v_dup IN ARRAY tr_hold_flush(accepted) LOOP
                    out[v_dup] := '{"err":"dup_id"}';
                    v_gi := array_position(g_names, reqs->(v_dup - 1)->'grades'->>0);
                    g_taken[v_gi] := g_taken[v_gi] - (reqs->(v_dup - 1)->'counts'->>0)::integer;
                END LOOP;
                PERFORM tr_take_stock(prev, g_names, g_taken);
                accepted := '[]';
                pending := '{}';
            END IF;
            prev := r.session;
            in_memory := r.session = ANY (grouped);
            IF in_memory THEN
                SELECT array_agg(x.grade ORDER BY x.grade), array_agg(x.available ORDER BY x.grade)
                  INTO g_names, g_avail
                  FROM (SELECT grade, available FROM stock WHERE session_id = r.session
                         ORDER BY grade FOR UPDATE) AS x;
                g_taken := array_fill(0, ARRAY[cardinality(g_names)]);
            ELSIF r.session = ANY (lock_all) THEN
                PERFORM 1 FROM stock WHERE session_id = r.session ORDER BY grade FOR UPDATE;
            END IF;
        END IF;
        IF NOT in_memory THEN
            out[r.i] := tr_hold_one(r.req);
            CONTINUE;
        END IF;
        SELECT c.err, c.ticket INTO v_err, v_ticket
          FROM tr_hold_checks(r.req, coalesce((pending->>(r.req->>'user'))::integer, 0)) AS c;
        IF v_err IS NOT NULL THEN
            out[r.i] := v_err;
            CONTINUE;
        END IF;
        -- not written yet, so not visible to the checks: an admission already used, or a hold
        -- id already given, earlier in this group
        IF v_ticket IS NOT NULL
           AND accepted @> jsonb_build_array(jsonb_build_object('ticket', v_ticket)) THEN
            out[r.i] := '{"err":"not_admitted"}';
            CONTINUE;
        END IF;
        IF accepted @> jsonb_build_array(jsonb_build_object('req',
                                         jsonb_build_object('id', r.req->'id'))) THEN
            out[r.i] := '{"err":"dup_id"}';
            CONTINUE;
        END IF;
        v_grade := r.req->'grades'->>0;
        v_qty := (r.req->'counts'->>0)::integer;
        v_gi := array_position(g_names, v_grade);
        IF v_gi IS NULL OR g_avail[v_gi] < v_qty THEN
            out[r.i] := jsonb_build_object('err', 'sold_out', 'grade', v_grade, 'requested', v_qty,
                                           'available', coalesce(g_avail[v_gi], 0));
            CONTINUE;
        END IF;
        -- written with the rest of the session's group (tr_hold_flush)
        accepted := accepted || jsonb_build_array(
            jsonb_build_object('i', r.i, 'req', r.req, 'ticket', v_ticket));
        pending := pending || jsonb_build_object(r.req->>'user',
            coalesce((pending->>(r.req->>'user'))::integer, 0) + (r.req->>'units')::integer);
        g_avail[v_gi] := g_avail[v_gi] - v_qty;
        g_taken[v_gi] := g_taken[v_gi] + v_qty;
        out[r.i] := jsonb_build_object('ok', true, 'ticket', v_ticket);
    END LOOP;
    IF in_memory THEN
        FOREACH v_dup IN ARRAY tr_hold_flush(accepted) LOOP
            out[v_dup] := '{"err":"dup_id"}';
            v_gi := array_position(g_names, reqs->(v_dup - 1)->'grades'->>0);
            g_taken[v_gi] := g_taken[v_gi] - (reqs->(v_dup - 1)->'counts'->>0)::integer;
        END LOOP;
        PERFORM tr_take_stock(prev, g_names, g_taken);
    END IF;
    RETURN to_jsonb(out);
END $$;
