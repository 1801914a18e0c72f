-- Stores one notification unless its change is stored for this user already; answers its
-- number either way. $1 user, $2 session, $3 seq, $4 at_ms, $5 kind, $6 hold, $7 ticket.
WITH added AS (
    INSERT INTO inbox (user_id, session_id, seq, at_ms, kind, hold_id, ticket_id)
    VALUES ($1, $2::uuid, $3, $4, $5, $6::uuid, $7::uuid)
    ON CONFLICT (user_id, session_id, seq) DO NOTHING
    RETURNING n
)
SELECT n FROM added
UNION ALL
SELECT n FROM inbox WHERE user_id = $1 AND session_id = $2::uuid AND seq = $3
LIMIT 1
