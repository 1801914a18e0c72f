-- Marks user $1's notification $2 read at $3 (the first mark stays); answers the row.
UPDATE inbox
SET read_at_ms = COALESCE(read_at_ms, $3)
WHERE user_id = $1 AND n = $2
RETURNING n, session_id::text, seq, at_ms, kind, hold_id::text, ticket_id::text, read_at_ms IS NOT NULL
