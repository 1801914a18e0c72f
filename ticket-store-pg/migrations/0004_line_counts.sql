-- Positions in line in O(log n) (issue 20): counters of WAITING tickets per block of sequence
-- numbers, at four levels of blocks of 64^level sequence numbers (level 1: 64, level 2: 4 096,
-- level 3: 262 144, level 4: 16 777 216). A ticket with sequence `s` is counted at each level
-- in the block `s >> (6 * level)`. A position is the sum of at most 63 counters per level
-- below the top, the top level's counters before the ticket's block (one per 16.7 million
-- sequence numbers) and at most 64 index entries of the ticket's own level-1 block
-- (tr_line_position in sql/lib/line.sql), instead of a count of every waiting ticket ahead.
--
-- The counters are kept by statement-level triggers on queue_tickets, in the transaction of
-- the statement that changes the line (a join's INSERT, a leave's or an admission's UPDATE,
-- the draw's UPDATE of sequence numbers, any DELETE): one `INSERT … ON CONFLICT DO UPDATE SET
-- n = n + delta` per statement over the rows it changed (transition tables), so a bulk change
-- writes each block once. Increments are row-locked and applied to the latest row version,
-- so they stay exact under concurrent transactions; blocks are written in key order. A row
-- whose counter reaches 0 is kept (rewritten when a ticket of its block waits again).
CREATE TABLE queue_line_counts (
    session_id uuid     NOT NULL REFERENCES queues (session_id),
    level      smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    bucket     bigint   NOT NULL CHECK (bucket >= 0),
    -- WAITING tickets with a sequence number whose `seq >> (6 * level)` is `bucket`
    n          bigint   NOT NULL,
    PRIMARY KEY (session_id, level, bucket)
);

CREATE FUNCTION tr_line_counts_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_line_counts AS c (session_id, level, bucket, n)
    SELECT t.session_id, l.level, t.seq >> (6 * l.level), count(*)
      FROM new_rows t, (VALUES (1), (2), (3), (4)) AS l(level)
     WHERE t.state = 'WAITING' AND t.seq IS NOT NULL
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (session_id, level, bucket) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION tr_line_counts_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_line_counts AS c (session_id, level, bucket, n)
    SELECT d.session_id, l.level, d.seq >> (6 * l.level), sum(d.delta)
      FROM (SELECT session_id, seq, 1 AS delta FROM new_rows
             WHERE state = 'WAITING' AND seq IS NOT NULL
            UNION ALL
            SELECT session_id, seq, -1 FROM old_rows
             WHERE state = 'WAITING' AND seq IS NOT NULL) AS d,
           (VALUES (1), (2), (3), (4)) AS l(level)
     GROUP BY 1, 2, 3
    HAVING sum(d.delta) <> 0
     ORDER BY 1, 2, 3
    ON CONFLICT (session_id, level, bucket) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION tr_line_counts_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_line_counts AS c (session_id, level, bucket, n)
    SELECT t.session_id, l.level, t.seq >> (6 * l.level), -count(*)
      FROM old_rows t, (VALUES (1), (2), (3), (4)) AS l(level)
     WHERE t.state = 'WAITING' AND t.seq IS NOT NULL
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (session_id, level, bucket) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

-- No writer may change the line between the backfill and the triggers.
LOCK TABLE queue_tickets IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER queue_line_counts_ins AFTER INSERT ON queue_tickets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tr_line_counts_ins();
CREATE TRIGGER queue_line_counts_upd AFTER UPDATE ON queue_tickets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tr_line_counts_upd();
CREATE TRIGGER queue_line_counts_del AFTER DELETE ON queue_tickets
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tr_line_counts_del();

-- Backfill: the counters of the line as it is.
INSERT INTO queue_line_counts (session_id, level, bucket, n)
SELECT t.session_id, l.level, t.seq >> (6 * l.level), count(*)
  FROM queue_tickets t, (VALUES (1), (2), (3), (4)) AS l(level)
 WHERE t.state = 'WAITING' AND t.seq IS NOT NULL
 GROUP BY 1, 2, 3;
