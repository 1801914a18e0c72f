-- Creates one hold (`tr_hold_one`): the sale switch, admission, the per-user limit, seats and
-- stock are all checked before the first write, so a refusal changes nothing. Called by tr_hold_batch
-- (hold_batch.sql) under the session's advisory lock; tr_hold_checks is shared with it.

-- Admission and per-user limit of one hold request, checked before anything is written
-- (`p_pending`: the user's units accepted earlier in the batch but not written yet):
-- `err` is the refusal, or NULL with `ticket` the user's ACTIVE ticket to use up (NULL when
-- none is required; it stays locked until the transaction ends).
CREATE OR REPLACE FUNCTION tr_hold_checks(r jsonb, p_pending integer,
                                          OUT err jsonb, OUT ticket uuid)
LANGUAGE plpgsql AS $$
DECLARE
    v_session uuid   := (r->>'session')::uuid;
    v_user    text   := r->>'user';
    v_now     bigint := (r->>'now')::bigint;
    v_texp    bigint;
    v_current bigint;
BEGIN
    IF (r->>'admission')::boolean THEN
        -- only an ACTIVE ticket is locked: waiting tickets belong to admission rounds
        SELECT id, expires_at INTO ticket, v_texp FROM queue_tickets
         WHERE session_id = v_session AND user_id = v_user AND state = 'ACTIVE'
           FOR UPDATE;
        IF NOT FOUND THEN
            err := '{"err":"not_admitted"}';
            RETURN;
        END IF;
        IF v_texp <= v_now THEN
            err := jsonb_build_object('err', 'admission_expired', 'at', v_texp);
            RETURN;
        END IF;
    END IF;
    IF r->>'limit' IS NOT NULL THEN
        -- tr_units_counted, inlined on the hot path
        SELECT coalesce(sum(units), 0) INTO v_current FROM holds
         WHERE session_id = v_session AND user_id = v_user
           AND (state = 'CONFIRMED' OR (state IN ('HELD', 'PAYING') AND expires_at > v_now));
        v_current := v_current + p_pending;
        IF v_current + (r->>'units')::bigint > (r->>'limit')::bigint THEN
            err := jsonb_build_object('err', 'limit', 'limit', (r->>'limit')::bigint,
                                      'current', v_current, 'requested', (r->>'units')::bigint);
        END IF;
    END IF;
END $$;

-- Writes a checked hold whose stock is taken: the hold row, its seats and the used ticket.
-- Returns its records (tr_rec: the ticket's, then the hold's), for the caller's tr_record, or
-- NULL, having written nothing, when the hold id exists.
CREATE OR REPLACE FUNCTION tr_hold_write(r jsonb, p_ticket uuid, p_grades text[],
                                         p_counts integer[], p_seats text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id      uuid   := (r->>'id')::uuid;
    v_session uuid   := (r->>'session')::uuid;
    v_user    text   := r->>'user';
    v_now     bigint := (r->>'now')::bigint;
    v_line    bigint;
    v_recs    jsonb  := '[]';
BEGIN
    INSERT INTO holds (id, session_id, user_id, state, seated, grades, counts, units, items,
                       amount, currency, created_at, expires_at, updated_at, admission)
    VALUES (v_id, v_session, v_user, 'HELD', (r->>'seated')::boolean, p_grades, p_counts,
            (r->>'units')::integer, r->'items', (r->>'amount')::bigint, r->>'currency', v_now,
            (r->>'expires_at')::bigint, v_now, p_ticket)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF cardinality(p_seats) > 0 THEN
        INSERT INTO hold_seats (hold_id, session_id, seat_id, state)
        SELECT v_id, v_session, s, 'HELD' FROM unnest(p_seats) AS s;
    END IF;
    IF p_ticket IS NOT NULL THEN
        UPDATE queue_tickets SET state = 'USED' WHERE id = p_ticket RETURNING seq INTO v_line;
        v_recs := jsonb_build_array(tr_rec(v_now, 'ticket', p_ticket, v_user, r->'actor',
                                           'ACTIVE', 'USED', 'hold made', r->>'corr', v_line));
    END IF;
    RETURN v_recs || tr_rec(v_now, 'hold', v_id, v_user, r->'actor', NULL, 'HELD',
                            'hold created', r->>'corr', NULL);
END $$;

-- One hold request on its own (see tr_hold_batch): checks everything before its first write,
-- so a refusal changes nothing. `answer` is {"ok":true,"ticket":…} or {"err":…}; `recs` the
-- records to hand to tr_record (empty on a refusal), which the caller writes once it took
-- every other lock of the session.
CREATE OR REPLACE FUNCTION tr_hold_one(r jsonb, OUT answer jsonb, OUT recs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_session uuid    := (r->>'session')::uuid;
    v_seated  boolean := (r->>'seated')::boolean;
    v_grades  text[];
    v_counts  integer[];
    v_seats   text[]  := '{}';
    v_err     jsonb;
    v_ticket  uuid;
    v_avail   integer;
    v_taken   text[];
    i         integer;
BEGIN
    recs := '[]';
    answer := tr_sale_refusal(v_session);
    IF answer IS NOT NULL THEN
        RETURN;
    END IF;
    IF v_seated THEN
        v_grades := ARRAY(SELECT jsonb_array_elements_text(r->'grades'));
        v_counts := ARRAY(SELECT jsonb_array_elements_text(r->'counts')::integer);
        v_seats := ARRAY(SELECT jsonb_array_elements_text(r->'seats'));
    ELSE
        v_grades := ARRAY[r->'grades'->>0];
        v_counts := ARRAY[(r->'counts'->>0)::integer];
    END IF;
    SELECT c.err, c.ticket INTO v_err, v_ticket FROM tr_hold_checks(r, 0) AS c;
    IF v_err IS NOT NULL THEN
        answer := v_err;
        RETURN;
    END IF;
    IF v_seated THEN
        v_taken := tr_seats_off_plan(v_session, r->'items'->'seats');
        IF v_taken IS NOT NULL THEN
            answer := jsonb_build_object('err', 'unknown_seat', 'seat', v_taken[1]);
            RETURN;
        END IF;
        v_taken := tr_seats_taken(v_session, v_seats);
        IF v_taken IS NOT NULL THEN
            answer := jsonb_build_object('err', 'seats', 'seats', to_jsonb(v_taken));
            RETURN;
        END IF;
    END IF;
    FOR i IN 1 .. cardinality(v_grades) LOOP
        UPDATE stock SET available = available - v_counts[i], held = held + v_counts[i]
         WHERE session_id = v_session AND grade = v_grades[i] AND available >= v_counts[i];
        IF NOT FOUND THEN
            IF v_seated OR i > 1 THEN
                RAISE EXCEPTION 'stock of session % disagrees with its seats', v_session
                    USING ERRCODE = 'data_corrupted';
            END IF;
            SELECT available INTO v_avail FROM stock
             WHERE session_id = v_session AND grade = v_grades[i];
            answer := jsonb_build_object('err', 'sold_out', 'grade', v_grades[i],
                                         'requested', v_counts[i], 'available', coalesce(v_avail, 0));
            RETURN;
        END IF;
    END LOOP;
    recs := tr_hold_write(r, v_ticket, v_grades, v_counts, v_seats);
    IF recs IS NULL THEN
        recs := '[]';
        -- the id is taken: give the units back
        FOR i IN 1 .. cardinality(v_grades) LOOP
            UPDATE stock SET available = available + v_counts[i], held = held - v_counts[i]
             WHERE session_id = v_session AND grade = v_grades[i];
        END LOOP;
        answer := '{"err":"dup_id"}';
        RETURN;
    END IF;
    answer := jsonb_build_object('ok', true, 'ticket', v_ticket);
END $$;
