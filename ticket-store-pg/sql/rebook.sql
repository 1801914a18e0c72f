-- Late payment: takes an ended hold's units again as a new CONFIRMED hold, while the sale
-- switch is OPEN.
CREATE OR REPLACE FUNCTION tr_rebook(p_old uuid, p_new uuid, p_payref text, p_limit integer,
                                     p_allowed text, p_actor jsonb, p_now bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    h         holds;
    n         holds;
    v_session uuid;
    v_current bigint;
    v_avail   integer;
    v_taken   text[];
    v_seats   text[];
    i         integer;
    v_refusal jsonb;
    v_gone    text[];
BEGIN
    PERFORM set_config('synchronous_commit', 'on', true);
    SELECT session_id INTO v_session FROM holds WHERE id = p_old;
    IF NOT FOUND THEN
        RETURN '{"nf":true}';
    END IF;
    PERFORM tr_lock_session(v_session);
    SELECT * INTO h FROM holds WHERE id = p_old FOR UPDATE;
    IF position(',' || h.state || ',' IN p_allowed) = 0 THEN
        RETURN jsonb_build_object('err', 'illegal', 'from', h.state);
    END IF;
    IF h.rebooked_as IS NOT NULL THEN
        SELECT * INTO n FROM holds WHERE id = h.rebooked_as;
        RETURN jsonb_build_object('hold', to_jsonb(n));
    END IF;
    IF EXISTS (SELECT 1 FROM holds WHERE id = p_new) THEN
        RETURN '{"err":"dup_id"}';
    END IF;
    -- the sale switch, under the session's advisory lock (sql/lib/base.sql)
    v_refusal := tr_sale_refusal(v_session);
    IF v_refusal IS NOT NULL THEN
        RETURN v_refusal;
    END IF;
    IF p_limit IS NOT NULL THEN
        v_current := tr_units_counted(v_session, h.user_id, p_now);
        IF v_current + h.units > p_limit THEN
            RETURN jsonb_build_object('err', 'limit', 'limit', p_limit, 'current', v_current,
                                      'requested', h.units);
        END IF;
    END IF;
    IF h.seated THEN
        v_seats := ARRAY(SELECT s->>'id' FROM jsonb_array_elements(h.items->'seats') AS s);
        -- seats withdrawn by a capacity change are not for sale, as taken ones are not
        v_gone := tr_seats_off_plan(v_session, h.items->'seats');
        v_taken := tr_seats_taken(v_session, v_seats);
        IF v_gone IS NOT NULL OR v_taken IS NOT NULL THEN
            v_taken := ARRAY(SELECT u.s FROM unnest(v_seats) WITH ORDINALITY AS u(s, o)
                              WHERE u.s = ANY (coalesce(v_gone, '{}') || coalesce(v_taken, '{}'))
                              ORDER BY u.o);
            RETURN jsonb_build_object('err', 'seats', 'seats', to_jsonb(v_taken));
        END IF;
        IF cardinality(h.grades) > 1 THEN
            PERFORM 1 FROM stock WHERE session_id = v_session ORDER BY grade FOR UPDATE;
        END IF;
    END IF;
    FOR i IN 1 .. cardinality(h.grades) LOOP
        UPDATE stock SET available = available - h.counts[i], sold = sold + h.counts[i]
         WHERE session_id = v_session AND grade = h.grades[i] AND available >= h.counts[i];
        IF NOT FOUND THEN
            IF h.seated OR i > 1 THEN
                RAISE EXCEPTION 'stock of session % disagrees with its seats', v_session
                    USING ERRCODE = 'data_corrupted';
            END IF;
            SELECT available INTO v_avail FROM stock
             WHERE session_id = v_session AND grade = h.grades[i];
            RETURN jsonb_build_object('err', 'sold_out', 'grade', h.grades[i],
                                      'requested', h.counts[i], 'available', coalesce(v_avail, 0));
        END IF;
    END LOOP;
    INSERT INTO holds (id, session_id, user_id, state, seated, grades, counts, units, items,
                       amount, currency, created_at, expires_at, updated_at, payment_ref,
                       rebooked_from)
    VALUES (p_new, v_session, h.user_id, 'CONFIRMED', h.seated, h.grades, h.counts, h.units,
            h.items, h.amount, h.currency, p_now, p_now, p_now, p_payref, h.id)
    RETURNING * INTO n;
    IF h.seated THEN
        INSERT INTO hold_seats (hold_id, session_id, seat_id, state)
        SELECT p_new, v_session, s, 'CONFIRMED' FROM unnest(v_seats) AS s;
    END IF;
    UPDATE holds SET rebooked_as = p_new, updated_at = p_now WHERE id = h.id;
    PERFORM tr_audit(p_now, v_session, 'hold', p_new, h.user_id, p_actor, NULL, 'CONFIRMED',
                     'late payment for ' || h.id || ' re-booked', p_payref);
    RETURN jsonb_build_object('hold', to_jsonb(n));
END $$;
