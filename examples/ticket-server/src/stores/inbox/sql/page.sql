-- A page, newest first: at most $3 of user $1's notifications numbered below $2.
SELECT n, session_id::text, seq, at_ms, kind, hold_id::text, ticket_id::text, read_at_ms IS NOT NULL
FROM inbox
WHERE user_id = $1 AND n < $2
ORDER BY n DESC
LIMIT $3
