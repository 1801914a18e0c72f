-- Recording a change (every operation that writes an audit record): the audit records, the
-- change feed, the counts of holds by state and the SoldOut announcement of a session, all
-- written by one call of tr_record at the end of the operation, in its transaction.
--
-- Why at the end, once: the session's session_log row is the serialisation point of every
-- change of the session (it numbers the audit ids and the feed). Its lock is held until commit,
-- so it is taken last (lock order step 6, sql/lib/base.sql), after every other row lock of the
-- session; an operation that recorded mid-way and then locked a ticket or a stock row could
-- deadlock with one holding that row and waiting for the log row. So operations collect their
-- records as jsonb (tr_rec) and hand them over once: a hold batch of 64 holds bumps the row
-- once per session, not 64 times.

-- The audit id of the `p_n`-th record of session `p_session`, written at `p_at`: ticket-core's
-- AuditId::sequenced, `tttttttt-tttt-7hhh-LLLL-LLLLssssssss` (t: `p_at` in ms, 48 bits; hhh:
-- `(p_n >> 30) & 0xFFF`; LLLLLLLL: 0x80000000 + (p_n mod 2^30), the variant bits and the low 30
-- bits of `p_n`; ssssssss: the session id's last 32 bits, so two sessions' ids never tie).
-- Inlined where it is used.
CREATE OR REPLACE FUNCTION tr_audit_id(p_at bigint, p_n bigint, p_session uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(greatest(p_at, 0) & 281474976710655), 12, '0') || '7'
            || lpad(to_hex((p_n >> 30) & 4095), 3, '0')
            || to_hex(2147483648 + (p_n & 1073741823)) || right(p_session::text, 8))::uuid
$$;

-- The change a record of `p_kind` ('hold', 'ticket' or 'session') reaching `p_to` makes
-- (ChangeKind::of_transition, its snake_case name), or NULL (a gate scan, VALID → USED).
CREATE OR REPLACE FUNCTION tr_change_kind(p_kind text, p_to text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_kind
        WHEN 'hold' THEN CASE p_to
            WHEN 'HELD' THEN 'hold_created' WHEN 'PAYING' THEN 'hold_paying'
            WHEN 'CONFIRMED' THEN 'hold_confirmed' WHEN 'EXPIRED' THEN 'hold_expired'
            WHEN 'RELEASED' THEN 'hold_released' WHEN 'PAYMENT_FAILED' THEN 'hold_payment_failed'
            WHEN 'CANCELLED' THEN 'hold_cancelled' WHEN 'REFUNDED' THEN 'hold_refunded' END
        WHEN 'ticket' THEN CASE p_to
            WHEN 'WAITING' THEN 'joined' WHEN 'ACTIVE' THEN 'admitted'
            WHEN 'EXPIRED' THEN 'admission_expired' WHEN 'USED' THEN 'admission_used'
            WHEN 'LEFT' THEN 'left' END
        WHEN 'session' THEN CASE p_to
            WHEN 'PAUSED' THEN 'sale_paused' WHEN 'OPEN' THEN 'sale_resumed'
            WHEN 'CLOSED' THEN 'sale_closed' WHEN 'CANCELLED' THEN 'sale_cancelled'
            WHEN 'CAPACITY_CHANGED' THEN 'capacity_changed' END
    END
$$;

-- One record to hand to tr_record: an audit record of subject `p_kind`/`p_subject`, and for a
-- queue ticket its place in line `p_line` (the change's `line`).
CREATE OR REPLACE FUNCTION tr_rec(p_at bigint, p_kind text, p_subject uuid, p_owner text,
                                  p_actor jsonb, p_from text, p_to text, p_reason text,
                                  p_corr text, p_line bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('at', p_at, 'kind', p_kind, 'subject', p_subject, 'owner', p_owner,
                              'actor', p_actor, 'from', p_from, 'to', p_to, 'reason', p_reason,
                              'corr', p_corr, 'line', p_line)
$$;

-- Writes the records `p_recs` (tr_rec objects, in the order they happened) of session
-- `p_session`: one UPDATE of its session_log row (audit numbers, feed head, holds by state,
-- the latest instant: a record whose `at` is behind the session's latest takes the latest,
-- so the trail never goes back in time and (at, id) is write order),
-- the audit rows (ids AuditId::sequenced, tr_audit_id), one change per record that makes one
-- (tr_change_kind), and SoldOut when a hold or session change (a capacity change, a switch
-- move: as the memory backend's note_stock) leaves the session with nothing available and it
-- was not announced since units last came back (the flag is cleared when such a change
-- leaves units available). `p_available`: the session's available units after the operation
-- when the caller holds every stock row of the session (else read here, after the log row's
-- lock: every stock change of the session is recorded under that lock, so the sum read is the
-- state after this operation and every one recorded before it). Notifies the schema's channel
-- with `<session>:<head>`, delivered at commit (src/feed.rs listens), while someone watches
-- the session (`watched_until`, read from the same UPDATE: a watch taken before this UPDATE is
-- seen; a reader who takes one after it reads this change itself).
CREATE OR REPLACE FUNCTION tr_record(p_session uuid, p_recs jsonb, p_available bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_n       integer := jsonb_array_length(p_recs);
    v_changes integer;
    v_stock   boolean;
    d         bigint[];
    v_base_n  bigint;
    v_base    bigint;
    v_flag    boolean;
    v_avail   bigint;
    v_sold    integer := 0;
    v_watched timestamptz;
    v_max_at  bigint;
    v_last    bigint;
BEGIN
    IF v_n = 0 THEN
        RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE x.kind IS NOT NULL),
           coalesce(bool_or(x.hs OR (x.sk = 'session' AND x.kind IS NOT NULL)), false),
           max(x.at),
           ARRAY[sum(x.hs::int * ((x.t = 'HELD')::int - (x.f IS NOT DISTINCT FROM 'HELD')::int)),
                 sum(x.hs::int * ((x.t = 'PAYING')::int - (x.f IS NOT DISTINCT FROM 'PAYING')::int)),
                 sum(x.hs::int * ((x.t = 'CONFIRMED')::int - (x.f IS NOT DISTINCT FROM 'CONFIRMED')::int)),
                 sum(x.hs::int * ((x.t = 'EXPIRED')::int - (x.f IS NOT DISTINCT FROM 'EXPIRED')::int)),
                 sum(x.hs::int * ((x.t = 'RELEASED')::int - (x.f IS NOT DISTINCT FROM 'RELEASED')::int)),
                 sum(x.hs::int * ((x.t = 'PAYMENT_FAILED')::int - (x.f IS NOT DISTINCT FROM 'PAYMENT_FAILED')::int)),
                 sum(x.hs::int * ((x.t = 'CANCELLED')::int - (x.f IS NOT DISTINCT FROM 'CANCELLED')::int)),
                 sum(x.hs::int * ((x.t = 'REFUNDED')::int - (x.f IS NOT DISTINCT FROM 'REFUNDED')::int))]
      INTO v_changes, v_stock, v_max_at, d
      FROM (SELECT tr_change_kind(r->>'kind', r->>'to') AS kind, (r->>'at')::bigint AS at,
                   r->>'kind' = 'hold' AND tr_change_kind('hold', r->>'to') IS NOT NULL AS hs,
                   r->>'from' AS f, r->>'to' AS t, r->>'kind' AS sk
              FROM jsonb_array_elements(p_recs) r) x;
    UPDATE session_log
       SET audited = audited + v_n, head = head + v_changes,
           held = held + d[1], paying = paying + d[2], confirmed = confirmed + d[3],
           expired = expired + d[4], released = released + d[5],
           payment_failed = payment_failed + d[6], cancelled = cancelled + d[7],
           refunded = refunded + d[8],
           last_at = greatest(last_at, v_max_at), last_at_before = last_at
     WHERE session_id = p_session
    RETURNING audited - v_n, head - v_changes, sold_out, watched_until, last_at_before
         INTO v_base_n, v_base, v_flag, v_watched, v_last;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session % has no session_log row', p_session
            USING ERRCODE = 'data_corrupted';
    END IF;
    IF v_stock THEN
        v_avail := coalesce(p_available,
                            (SELECT sum(available) FROM stock WHERE session_id = p_session), 0);
        IF v_avail = 0 AND NOT v_flag THEN
            v_sold := 1;
            UPDATE session_log SET head = head + 1, sold_out = true WHERE session_id = p_session;
        ELSIF v_avail > 0 AND v_flag THEN
            UPDATE session_log SET sold_out = false WHERE session_id = p_session;
        END IF;
    END IF;
    INSERT INTO audit (id, at, session_id, subject_kind, subject_id, owner, actor, from_state,
                       to_state, reason, correlation_id)
    SELECT tr_audit_id(x.at, v_base_n + x.o, p_session), x.at, p_session,
           x.r->>'kind', (x.r->>'subject')::uuid, x.r->>'owner', x.r->'actor', x.r->>'from',
           x.r->>'to', x.r->>'reason', x.r->>'corr'
      FROM (SELECT r, o, greatest(v_last, max((r->>'at')::bigint) OVER (ORDER BY o)) AS at
              FROM jsonb_array_elements(p_recs) WITH ORDINALITY AS e(r, o)) x
     ORDER BY x.o;
    IF v_changes + v_sold = 0 THEN
        RETURN;
    END IF;
    INSERT INTO changes (session_id, seq, at, kind, subject_kind, subject_id, owner, line)
    SELECT p_session, v_base + row_number() OVER (ORDER BY c.o), c.at, c.kind, c.sk, c.sid,
           c.owner, c.line
      FROM (SELECT x.o, greatest(v_last, max((x.r->>'at')::bigint) OVER (ORDER BY x.o)) AS at,
                   tr_change_kind(x.r->>'kind', x.r->>'to') AS kind,
                   x.r->>'kind' AS sk, (x.r->>'subject')::uuid AS sid, x.r->>'owner' AS owner,
                   CASE WHEN x.r->>'kind' = 'ticket' THEN (x.r->>'line')::bigint END AS line
              FROM jsonb_array_elements(p_recs) WITH ORDINALITY AS x(r, o)) c
     WHERE c.kind IS NOT NULL;
    IF v_sold = 1 THEN
        INSERT INTO changes (session_id, seq, at, kind)
        VALUES (p_session, v_base + v_changes + 1, greatest(v_last, v_max_at), 'sold_out');
    END IF;
    IF v_watched > now() THEN
        PERFORM pg_notify(current_schema(), p_session::text || ':' || (v_base + v_changes + v_sold));
    END IF;
END $$;

-- Appends a session-wide change that has no audit record of its own (`queue_drawn`), under
-- the session_log row's lock as tr_record does, and notifies (when watched).
CREATE OR REPLACE FUNCTION tr_emit(p_session uuid, p_at bigint, p_kind text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_seq     bigint;
    v_watched timestamptz;
BEGIN
    UPDATE session_log SET head = head + 1 WHERE session_id = p_session
    RETURNING head, watched_until INTO v_seq, v_watched;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session % has no session_log row', p_session
            USING ERRCODE = 'data_corrupted';
    END IF;
    INSERT INTO changes (session_id, seq, at, kind) VALUES (p_session, v_seq, p_at, p_kind);
    IF v_watched > now() THEN
        PERFORM pg_notify(current_schema(), p_session::text || ':' || v_seq);
    END IF;
    RETURN v_seq;
END $$;

-- A reader waits for changes of `p_session` for up to `p_secs` seconds: writers notify until
-- then (the lease only grows). Returns the seconds the lease still lasts by the server's
-- clock, or NULL for an unknown session. Called by wait_for_change before it reads the head,
-- at most once per lease per store (src/feed.rs); it takes the log row's lock for a moment.
CREATE OR REPLACE FUNCTION tr_watch(p_session uuid, p_secs double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_left double precision;
BEGIN
    UPDATE session_log
       SET watched_until = greatest(watched_until, now() + make_interval(secs => p_secs))
     WHERE session_id = p_session
    RETURNING extract(epoch FROM watched_until - now()) INTO v_left;
    RETURN v_left;
END $$;

-- Retention: for every session whose feed is longer than `p_keep` + `p_slack`, deletes its
-- oldest changes so that the newest `p_keep` remain, at most `p_limit` rows per session and
-- call. Takes no lock a writer waits for (the log row is read, not locked: its head only
-- grows). Returns the rows deleted. Called by the sweeper (Reservations::expire_due) and by
-- PgStore::prune_changes.
CREATE OR REPLACE FUNCTION tr_prune_changes(p_keep bigint, p_slack bigint, p_limit bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    s       record;
    v_first bigint;
    v_cut   bigint;
    v_n     bigint;
    v_total bigint := 0;
BEGIN
    FOR s IN SELECT session_id, head FROM session_log WHERE head > p_keep + p_slack LOOP
        SELECT seq INTO v_first FROM changes WHERE session_id = s.session_id ORDER BY seq LIMIT 1;
        IF v_first IS NULL OR v_first > s.head - p_keep - p_slack THEN
            CONTINUE;
        END IF;
        v_cut := least(s.head - p_keep, v_first + p_limit - 1);
        DELETE FROM changes WHERE session_id = s.session_id AND seq >= v_first AND seq <= v_cut;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_total := v_total + v_n;
    END LOOP;
    RETURN v_total;
END $$;
