-- Holds as the per-user limit and the seat check see them (hold, rebook).

-- Units of a user in a session that count toward the per-user limit at `p_now`.
CREATE OR REPLACE FUNCTION tr_units_counted(p_session uuid, p_user text, p_now bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(units), 0)::bigint FROM holds
             WHERE session_id = p_session AND user_id = p_user
               AND (state = 'CONFIRMED' OR (state IN ('HELD', 'PAYING') AND expires_at > p_now)));
END $$;

-- The seats among `p_seats` that a live or sold hold covers, in the order asked.
CREATE OR REPLACE FUNCTION tr_seats_taken(p_session uuid, p_seats text[]) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT array_agg(u.s ORDER BY u.o) FROM unnest(p_seats) WITH ORDINALITY AS u(s, o)
             WHERE EXISTS (SELECT 1 FROM hold_seats hs
                            WHERE hs.session_id = p_session AND hs.seat_id = u.s
                              AND hs.state IN ('HELD', 'PAYING', 'CONFIRMED')));
END $$;

-- The seats among `p_seats` (HeldSeat objects: id, grade) that the session does not sell
-- as priced: withdrawn by a capacity change, unknown, or of another grade (the caller priced
-- them from a plan older than a capacity change), in the order asked.
CREATE OR REPLACE FUNCTION tr_seats_off_plan(p_session uuid, p_seats jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT array_agg(u.s->>'id' ORDER BY u.o)
              FROM jsonb_array_elements(p_seats) WITH ORDINALITY AS u(s, o)
             WHERE NOT EXISTS (SELECT 1 FROM seats st
                                WHERE st.session_id = p_session AND st.seat_id = u.s->>'id'
                                  AND st.grade = u.s->>'grade' AND NOT st.withdrawn));
END $$;
