-- Appends one record and drops the rows that fall out of the retention, in one statement.
-- $1 at_ms, $2 actor, $3 reason, $4 client_ip, $5 route, $6 detail, $7 retain.
-- The delete cannot see the new row (same snapshot) and only removes rows at least `retain`
-- sequence numbers older; racing appends each trim behind their own row, so the table holds
-- at most `retain` rows plus the appends in flight (fewer when sequence numbers were skipped
-- by failed inserts).
WITH added AS (
    INSERT INTO security_audit (at_ms, actor, reason, client_ip, route, detail)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING seq
)
DELETE FROM security_audit
WHERE seq <= (SELECT seq FROM added) - $7
