-- One login attempt under a failure backoff (the rule of `attempt_step` in
-- src/throttle/policy.rs) in one statement; the upsert locks the key's row.
-- $1 key, $2 now (epoch ms), $3 threshold, $4 first lock (ms), $5 longest lock (ms),
-- $6 forget after (ms).
-- Every right-hand side below reads the row as it was (`r`). In words:
--   locked  = now < r.locked_until_ms            -> refused, nothing changes
--   expired = max(r.locked_until_ms, r.last_ms) + $6 <= now  -> counting starts again
--   else the count grows by one, and from the threshold on the key is locked for
--   min(first * 2^(count - threshold), longest).
INSERT INTO throttle_failures AS r (key, count, locked_until_ms, last_ms, forget_ms, allowed)
VALUES ($1, 1, CASE WHEN 1 >= $3 THEN $2 + LEAST($4, $5) ELSE 0 END, $2, $6, true)
ON CONFLICT (key) DO UPDATE SET
    allowed = NOT ($2 < r.locked_until_ms),
    count = CASE
        WHEN $2 < r.locked_until_ms THEN r.count
        WHEN GREATEST(r.locked_until_ms, r.last_ms) + $6 <= $2 THEN 1
        ELSE r.count + 1 END,
    locked_until_ms = CASE
        WHEN $2 < r.locked_until_ms THEN r.locked_until_ms
        WHEN GREATEST(r.locked_until_ms, r.last_ms) + $6 <= $2 THEN excluded.locked_until_ms
        WHEN r.count + 1 >= $3
            THEN $2 + LEAST($5, $4 * power(2, LEAST(r.count + 1 - $3, 40))::bigint)
        ELSE 0 END,
    last_ms = CASE WHEN $2 < r.locked_until_ms THEN r.last_ms ELSE $2 END,
    forget_ms = $6
RETURNING allowed, locked_until_ms
