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
-- for the used tickets. `dups`: the `i` of the requests whose hold id already existed (nothing
-- was written for them); `recs`: the records of the others (tr_rec, in order: each request's
-- ticket, then its hold), for the caller's tr_record.
CREATE OR REPLACE FUNCTION tr_hold_flush(p_accepted jsonb, OUT dups integer[], OUT recs jsonb)
LANGUAGE plpgsql AS $$
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
    WITH used AS (
        UPDATE queue_tickets SET state = 'USED'
         WHERE id IN (SELECT (x.value->>'ticket')::uuid FROM jsonb_array_elements(p_accepted) x
                       WHERE (x.value->'req'->>'id')::uuid = ANY (v_inserted)
                         AND x.value->>'ticket' IS NOT NULL)
        RETURNING id, seq)
    SELECT coalesce(jsonb_agg(CASE w.kind
               WHEN 'ticket' THEN tr_rec(w.at, 'ticket', w.ticket, w.owner, w.actor, 'ACTIVE',
                                         'USED', 'hold made', w.corr,
                                         (SELECT u.seq FROM used u WHERE u.id = w.ticket))
               ELSE tr_rec(w.at, 'hold', w.hold, w.owner, w.actor, NULL, 'HELD', 'hold created',
                           w.corr, NULL) END ORDER BY w.o, w.n), '[]')
      INTO recs
      FROM (SELECT (x.value->'req'->>'now')::bigint AS at, k.kind,
                   (x.value->>'ticket')::uuid AS ticket, (x.value->'req'->>'id')::uuid AS hold,
                   x.value->'req'->>'user' AS owner, x.value->'req'->'actor' AS actor,
                   x.value->'req'->>'corr' AS corr, x.ordinality AS o, k.n
              FROM jsonb_array_elements(p_accepted) WITH ORDINALITY x,
                   (VALUES ('ticket', 1), ('hold', 2)) AS k(kind, n)
             WHERE (x.value->'req'->>'id')::uuid = ANY (v_inserted)
               AND (k.kind = 'hold' OR x.value->>'ticket' IS NOT NULL)) AS w;
    dups := ARRAY(SELECT (x.value->>'i')::integer FROM jsonb_array_elements(p_accepted) x
                   WHERE NOT (x.value->'req'->>'id')::uuid = ANY (v_inserted));
END $$;

-- Ends a session's group of a hold batch decided in memory: writes the accepted holds
-- (tr_hold_flush), answers `dup_id` for those whose id existed and gives their units back,
-- takes the units with one UPDATE per grade, then writes every record of the group with one
-- tr_record (the log row last), passing the units left (every stock row of the session is
-- locked by the batch).
CREATE OR REPLACE FUNCTION tr_hold_group_end(p_session uuid, p_reqs jsonb, p_accepted jsonb,
                                             p_names text[], p_avail integer[],
                                             p_taken integer[], INOUT answers jsonb[])
LANGUAGE plpgsql AS $$
DECLARE
    v_dups integer[];
    v_recs jsonb;
    v_dup  integer;
    v_gi   integer;
    v_qty  integer;
BEGIN
    SELECT f.dups, f.recs INTO v_dups, v_recs FROM tr_hold_flush(p_accepted) AS f;
    FOREACH v_dup IN ARRAY v_dups LOOP
        answers[v_dup] := '{"err":"dup_id"}';
        v_gi := array_position(p_names, p_reqs->(v_dup - 1)->'grades'->>0);
        v_qty := (p_reqs->(v_dup - 1)->'counts'->>0)::integer;
        p_taken[v_gi] := p_taken[v_gi] - v_qty;
        p_avail[v_gi] := p_avail[v_gi] + v_qty;
    END LOOP;
    PERFORM tr_take_stock(p_session, p_names, p_taken);
    PERFORM tr_record(p_session, v_recs, (SELECT sum(a) FROM unnest(p_avail) AS a));
END $$;

-- Many hold requests in one transaction (group commit). Each is applied as if alone: all of
-- it or none of it. The sessions' advisory locks are taken first, in ascending order; then
-- the requests run grouped by session (ascending), within a session by grade (so stock rows
-- are locked in order), then in arrival order; each request meets the session's sale
-- switch first (tr_sale_refusal, read under the advisory lock: see sql/lib/base.sql). A general-admission session with several
-- requests in the batch has its stock rows locked and read once; the requests are decided
-- against those counters (and the units each user was given earlier in the batch) in order;
-- then the accepted holds and their tickets are written by tr_hold_flush and the units taken
-- with one UPDATE per grade, instead of a few statements per request. Each session's records
-- (audit, changes, counts) are written by one tr_record once the session's requests are done
-- (its log row locked last), whichever way they were decided.
-- Returns one answer per request, in order.
CREATE OR REPLACE FUNCTION tr_hold_batch(reqs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r         record;
    prev      uuid;
    lock_all  uuid[];
    grouped   uuid[];
    in_memory boolean := false;
    g_refusal jsonb;
    g_names   text[];
    g_avail   integer[];
    g_taken   integer[];
    v_err     jsonb;
    v_ticket  uuid;
    v_grade   text;
    v_gi      integer;
    v_qty     integer;
    v_ans     jsonb;
    v_recs    jsonb := '[]';
    v_one     jsonb;
    accepted  jsonb := '[]';
    pending   jsonb := '{}';
    out       jsonb[] := '{}';
BEGIN
    IF jsonb_array_length(reqs) = 1 THEN
        PERFORM tr_lock_session((reqs->0->>'session')::uuid);
        SELECT o.answer, o.recs INTO v_ans, v_one FROM tr_hold_one(reqs->0) AS o;
        PERFORM tr_record((reqs->0->>'session')::uuid, v_one);
        RETURN jsonb_build_array(v_ans);
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
                out := tr_hold_group_end(prev, reqs, accepted, g_names, g_avail, g_taken, out);
                accepted := '[]';
                pending := '{}';
            ELSIF prev IS NOT NULL THEN
                PERFORM tr_record(prev, v_recs);
                v_recs := '[]';
            END IF;
            prev := r.session;
            in_memory := r.session = ANY (grouped);
            IF in_memory THEN
                -- the switch, read once for the group under the session's advisory lock
                g_refusal := tr_sale_refusal(r.session);
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
            SELECT o.answer, o.recs INTO v_ans, v_one FROM tr_hold_one(r.req) AS o;
            out[r.i] := v_ans;
            v_recs := v_recs || v_one;
            CONTINUE;
        END IF;
        IF g_refusal IS NOT NULL THEN
            out[r.i] := g_refusal;
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
        out := tr_hold_group_end(prev, reqs, accepted, g_names, g_avail, g_taken, out);
    ELSE
        PERFORM tr_record(prev, v_recs);
    END IF;
    RETURN to_jsonb(out);
END $$;
