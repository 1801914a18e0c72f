-- The organiser's controls (SaleControl): moving the sale switch and changing capacity, each
-- one transaction under the session's advisory lock (which holds and re-bookings take before
-- they read the switch and take stock: see sql/lib/base.sql), then the session's row
-- (FOR NO KEY UPDATE, lock order step 1b), stock rows ascending, and the log row last
-- (tr_record).

-- Moves the switch of `p_session` to `p_to`. `p_decisions` maps each current state to
-- 'same' (a repeat: nothing is written), 'move' or 'illegal', as
-- ticket_core::model::sale::decide_sale_transition decides (the state machine stays in
-- ticket-core). A move writes one audit record (subject 'session', owner `p_owner`) and its
-- change through tr_record; the switch's `since` is the record's instant (raised to the
-- session's latest, as every record's is). Answers {"changed", "state", "since", "reason"},
-- {"err":"illegal_sale","from"} or {"nf":true}.
CREATE OR REPLACE FUNCTION tr_set_sale_state(p_session uuid, p_to text, p_decisions jsonb,
                                             p_owner text, p_actor jsonb, p_reason text,
                                             p_now bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_state  text;
    v_since  bigint;
    v_reason text;
BEGIN
    PERFORM tr_lock_session(p_session);
    SELECT sale_state, sale_since, sale_reason INTO v_state, v_since, v_reason
      FROM sessions WHERE id = p_session FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    CASE p_decisions->>v_state
        WHEN 'same' THEN
            RETURN jsonb_build_object('changed', false, 'state', v_state, 'since', v_since,
                                      'reason', v_reason);
        WHEN 'move' THEN
            NULL;
        ELSE
            RETURN jsonb_build_object('err', 'illegal_sale', 'from', v_state);
    END CASE;
    PERFORM tr_record(p_session, jsonb_build_array(
        tr_rec(p_now, 'session', p_session, p_owner, p_actor, v_state, p_to, p_reason, NULL,
               NULL)));
    -- the record's instant: the log row (locked by tr_record) holds it as `last_at`
    SELECT last_at INTO v_since FROM session_log WHERE session_id = p_session;
    UPDATE sessions SET sale_state = p_to, sale_since = v_since, sale_reason = p_reason
     WHERE id = p_session;
    RETURN jsonb_build_object('changed', true, 'state', p_to, 'since', v_since,
                              'reason', p_reason);
END $$;

-- Applies a capacity change to `p_session`: `p_delta` is the CapacityDelta as ticket-core
-- serialises it, `p_plan` the plan it makes (CapacityDelta::apply_to, computed by the caller
-- from the plan of version `p_version`). Refused, changing nothing: {"err":"stale"} when the
-- plan changed since the caller read it (it computes again), {"err":"session_cancelled"},
-- {"err":"capacity_in_use"} (units that go must be available), {"err":"seats"} (seats that go
-- must be free), {"err":"seats_exist"}. Else moves `capacity` and `available` of the touched
-- grades by the same amount, adds or withdraws seats, stores the plan, writes the audit
-- record (to 'CAPACITY_CHANGED'), its change and SoldOut when nothing is left (tr_record),
-- and answers {"grades": the touched grades' counters, in stock order}.
CREATE OR REPLACE FUNCTION tr_change_capacity(p_session uuid, p_version bigint, p_delta jsonb,
                                              p_plan jsonb, p_owner text, p_actor jsonb,
                                              p_reason text, p_now bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_state   text;
    v_since   bigint;
    v_version bigint;
    v_kind    text := p_delta->>'kind';
    v_grade   text := p_delta->>'grade';
    v_units   integer := (p_delta->>'units')::integer;
    v_avail   integer;
    v_ids     text[];
    v_bad     text[];
    v_grades  text[];
BEGIN
    PERFORM tr_lock_session(p_session);
    SELECT sale_state, sale_since, plan_version INTO v_state, v_since, v_version
      FROM sessions WHERE id = p_session FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    IF v_state = 'CANCELLED' THEN
        RETURN jsonb_build_object('err', 'session_cancelled', 'at', coalesce(v_since, 0));
    END IF;
    IF v_version <> p_version THEN
        RETURN '{"err":"stale"}';
    END IF;
    IF v_kind IN ('add_units', 'remove_units') THEN
        v_grades := ARRAY[v_grade];
        SELECT available INTO v_avail FROM stock
         WHERE session_id = p_session AND grade = v_grade FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'session % has no stock row for grade % of its plan', p_session,
                v_grade USING ERRCODE = 'data_corrupted';
        END IF;
        IF v_kind = 'remove_units' AND v_avail < v_units THEN
            RETURN jsonb_build_object('err', 'capacity_in_use', 'grade', v_grade,
                                      'requested', v_units, 'removable', v_avail);
        END IF;
        IF v_kind = 'remove_units' THEN
            v_units := -v_units;
        END IF;
        UPDATE stock SET capacity = capacity + v_units, available = available + v_units
         WHERE session_id = p_session AND grade = v_grade;
    ELSIF v_kind = 'add_seats' THEN
        v_grades := ARRAY(SELECT DISTINCT s->>'grade' COLLATE "C"
                            FROM jsonb_array_elements(p_delta->'seats') AS s ORDER BY 1);
        PERFORM 1 FROM stock WHERE session_id = p_session AND grade = ANY (v_grades)
         ORDER BY grade FOR UPDATE;
        v_bad := ARRAY(SELECT s->>'id' FROM jsonb_array_elements(p_delta->'seats')
                                            WITH ORDINALITY AS u(s, o)
                        WHERE EXISTS (SELECT 1 FROM seats st
                                       WHERE st.session_id = p_session
                                         AND st.seat_id = s->>'id' AND NOT st.withdrawn)
                        ORDER BY o);
        IF cardinality(v_bad) > 0 THEN
            RETURN jsonb_build_object('err', 'seats_exist', 'seats', to_jsonb(v_bad));
        END IF;
        -- a withdrawn seat's row comes back (hold_seats of past holds refer to it)
        INSERT INTO seats (session_id, seat_id, ord, grade)
        SELECT p_session, u.s->>'id',
               (SELECT coalesce(max(ord), 0) FROM seats WHERE session_id = p_session) + u.o,
               u.s->>'grade'
          FROM jsonb_array_elements(p_delta->'seats') WITH ORDINALITY AS u(s, o)
        ON CONFLICT (session_id, seat_id) DO UPDATE
           SET withdrawn = false, grade = EXCLUDED.grade, ord = EXCLUDED.ord
         WHERE seats.withdrawn;
        UPDATE stock k SET capacity = k.capacity + n.n, available = k.available + n.n
          FROM (SELECT s->>'grade' AS grade, count(*)::integer AS n
                  FROM jsonb_array_elements(p_delta->'seats') AS s GROUP BY 1) n
         WHERE k.session_id = p_session AND k.grade = n.grade;
    ELSIF v_kind = 'remove_seats' THEN
        v_ids := ARRAY(SELECT jsonb_array_elements_text(p_delta->'seats'));
        v_grades := ARRAY(SELECT DISTINCT grade FROM seats
                           WHERE session_id = p_session AND seat_id = ANY (v_ids)
                             AND NOT withdrawn ORDER BY 1);
        PERFORM 1 FROM stock WHERE session_id = p_session AND grade = ANY (v_grades)
         ORDER BY grade FOR UPDATE;
        v_bad := tr_seats_taken(p_session, v_ids);
        IF v_bad IS NOT NULL THEN
            RETURN jsonb_build_object('err', 'seats', 'seats', to_jsonb(v_bad));
        END IF;
        IF (SELECT count(*) FROM seats WHERE session_id = p_session AND seat_id = ANY (v_ids)
                                         AND NOT withdrawn) <> cardinality(v_ids) THEN
            RAISE EXCEPTION 'seats of session % disagree with its plan', p_session
                USING ERRCODE = 'data_corrupted';
        END IF;
        UPDATE stock k SET capacity = k.capacity - n.n, available = k.available - n.n
          FROM (SELECT grade, count(*)::integer AS n FROM seats
                 WHERE session_id = p_session AND seat_id = ANY (v_ids) GROUP BY 1) n
         WHERE k.session_id = p_session AND k.grade = n.grade;
        UPDATE seats SET withdrawn = true WHERE session_id = p_session AND seat_id = ANY (v_ids);
    ELSE
        RAISE EXCEPTION 'unknown capacity change %', v_kind USING ERRCODE = 'data_corrupted';
    END IF;
    UPDATE sessions SET plan = p_plan, plan_version = plan_version + 1 WHERE id = p_session;
    PERFORM tr_record(p_session, jsonb_build_array(
        tr_rec(p_now, 'session', p_session, p_owner, p_actor, NULL, 'CAPACITY_CHANGED', p_reason,
               NULL, NULL)));
    RETURN jsonb_build_object('grades',
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'grade', grade, 'capacity', capacity, 'available', available,
                    'held', held, 'paying', paying, 'sold', sold) ORDER BY ord), '[]')
           FROM stock WHERE session_id = p_session AND grade = ANY (v_grades)));
END $$;
