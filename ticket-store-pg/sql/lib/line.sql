-- Positions in line from the block counters of migrations/0004_line_counts.sql.

-- The 1-based position of the WAITING ticket with sequence number `p_seq` in the line of
-- `p_session`: the WAITING tickets with a sequence number up to `p_seq`. One statement (one
-- snapshot): the index entries of `p_seq`'s own level-1 block up to it (at most 64), the
-- level-k blocks before its level-k block within its level-(k+1) block (at most 63 counters
-- each, k = 1..3), and the level-4 blocks before its own (one per 16 777 216 sequence
-- numbers). O(log n) rows read, whatever the position.
CREATE OR REPLACE FUNCTION tr_line_position(p_session uuid, p_seq bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    pos bigint;
BEGIN
    SELECT (SELECT count(*) FROM queue_tickets
             WHERE session_id = p_session AND state = 'WAITING'
               AND seq >= (p_seq >> 6) << 6 AND seq <= p_seq)
         + coalesce((SELECT sum(c.n) FROM queue_line_counts c
                      WHERE c.session_id = p_session AND c.level = 1
                        AND c.bucket >= (p_seq >> 12) << 6 AND c.bucket < p_seq >> 6), 0)
         + coalesce((SELECT sum(c.n) FROM queue_line_counts c
                      WHERE c.session_id = p_session AND c.level = 2
                        AND c.bucket >= (p_seq >> 18) << 6 AND c.bucket < p_seq >> 12), 0)
         + coalesce((SELECT sum(c.n) FROM queue_line_counts c
                      WHERE c.session_id = p_session AND c.level = 3
                        AND c.bucket >= (p_seq >> 24) << 6 AND c.bucket < p_seq >> 18), 0)
         + coalesce((SELECT sum(c.n) FROM queue_line_counts c
                      WHERE c.session_id = p_session AND c.level = 4
                        AND c.bucket < p_seq >> 24), 0)
      INTO pos;
    RETURN pos;
END $$;
