-- A page, newest first: at most $2 rows with a sequence number below $1 (by the primary key).
SELECT seq, at_ms, actor, reason, client_ip, route, detail
FROM security_audit
WHERE seq < $1
ORDER BY seq DESC
LIMIT $2
