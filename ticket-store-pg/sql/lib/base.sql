-- Shared helpers of every operation in sql/ (the first file applied; see src/functions.rs).
--
-- ticketrush on PostgreSQL: every operation that must be atomic is one function call, so it
-- runs in one implicit transaction and one round trip. No function reads a row and writes it
-- back from the client: each either writes with a condition (`UPDATE … WHERE available >= n`)
-- or locks first (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED`, a per-session advisory lock).
--
-- Lock order, followed by every function so that no two of them can deadlock:
--   1. per-session advisory locks (hold, re-book and leave batches), all taken first,
--      ascending session id
--   1b. the session's `sessions` row, FOR NO KEY UPDATE (set_sale_state, change_capacity,
--      after the session's advisory lock; FOR NO KEY UPDATE, not FOR UPDATE, because every
--      insert into audit, changes or holds takes FOR KEY SHARE on it through its foreign
--      key, and tr_record inserts audit rows while holding the session_log row)
--   2. queue rows (join, admit, leave, draw)
--   3. hold rows (transition, check-in, re-book, sweeper with SKIP LOCKED)
--   4. stock rows, ascending (session id, grade)
--   5. queue ticket rows
--   6. the session's session_log row (lib/record.sql, tr_record / tr_emit), last, once per
--      call and session (sessions ascending in a multi-session call: hold batches, the
--      sweeper); nothing but another session's locks is taken after it
-- Taking stock always goes through the session's advisory lock, which is what makes the
-- per-user limit and the seat check race-free. Moving the sale switch and changing capacity
-- take it too (sql/sale_control.sql), so holds and re-bookings, which read the switch and the
-- seats after taking it, see every move committed before them, and a move waits for the
-- holds in flight: once set_sale_state returned, no hold of the session is made.

-- The refusal a new hold or re-booking of `p_session` meets from the sale switch
-- (SaleState::refusal), or NULL while it is OPEN. One primary-key read; the caller holds
-- the session's advisory lock (see above).
CREATE OR REPLACE FUNCTION tr_sale_refusal(p_session uuid) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_since bigint;
BEGIN
    SELECT sale_state, sale_since INTO v_state, v_since FROM sessions WHERE id = p_session;
    RETURN CASE v_state
        WHEN 'PAUSED' THEN '{"err":"sales_paused"}'::jsonb
        WHEN 'CLOSED' THEN jsonb_build_object('err', 'sales_closed', 'at', coalesce(v_since, 0))
        WHEN 'CANCELLED' THEN jsonb_build_object('err', 'session_cancelled',
                                                 'at', coalesce(v_since, 0))
    END;
END $$;
--
-- Helpers are PL/pgSQL, not LANGUAGE sql: PL/pgSQL caches each statement's plan for the
-- connection, while a non-inlined SQL function called from PL/pgSQL is planned on every call
-- (measured: +35 % holds/s).

-- Serialises stock-taking in one session until the end of the transaction.
CREATE OR REPLACE FUNCTION tr_lock_session(p_session uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_session::text, 7472));
END $$;

-- Appends one audit record (and its change, counts, SoldOut) through tr_record
-- (lib/record.sql): for operations that write a single record, as their last step.
CREATE OR REPLACE FUNCTION tr_audit(p_at bigint, p_session uuid, p_kind text, p_subject uuid,
                                    p_owner text, p_actor jsonb, p_from text, p_to text,
                                    p_reason text, p_corr text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tr_record(p_session, jsonb_build_array(
        tr_rec(p_at, p_kind, p_subject, p_owner, p_actor, p_from, p_to, p_reason, p_corr, NULL)));
END $$;
