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
--   2. queue rows (join, admit, leave, draw)
--   3. hold rows (transition, check-in, re-book, sweeper with SKIP LOCKED)
--   4. stock rows, ascending (session id, grade)
--   5. queue ticket rows
-- Taking stock always goes through the session's advisory lock, which is what makes the
-- per-user limit and the seat check race-free.
--
-- Helpers are PL/pgSQL, not LANGUAGE sql: PL/pgSQL caches each statement's plan for the
-- connection, while a non-inlined SQL function called from PL/pgSQL is planned on every call
-- (measured: +35 % holds/s).

-- A UUIDv7 for the instant `ms`: the millisecond timestamp laid over a random v4 UUID. A
-- one-expression SQL function, so the planner inlines it where it is used.
CREATE OR REPLACE FUNCTION tr_uuid7(ms bigint) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send(ms) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

-- Serialises stock-taking in one session until the end of the transaction.
CREATE OR REPLACE FUNCTION tr_lock_session(p_session uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_session::text, 7472));
END $$;

-- Appends one audit record; its id is a UUIDv7 for `p_at`.
CREATE OR REPLACE FUNCTION tr_audit(p_at bigint, p_session uuid, p_kind text, p_subject uuid,
                                    p_owner text, p_actor jsonb, p_from text, p_to text,
                                    p_reason text, p_corr text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (id, at, session_id, subject_kind, subject_id, owner, actor, from_state,
                       to_state, reason, correlation_id)
    VALUES (tr_uuid7(p_at),
            p_at, p_session, p_kind, p_subject, p_owner, p_actor, p_from, p_to, p_reason, p_corr);
END $$;
