-- One GCRA step (the rule of `gcra_step` in src/throttle/policy.rs) in one statement: the
-- key's row is locked by the upsert, so racing steps on any process are serialised.
-- $1 key, $2 now (epoch ms), $3 interval (ms), $4 tolerance (ms).
-- Allowed: the TAT moves to max(TAT, now) + interval. Refused: the row keeps its TAT, and the
-- caller waits TAT - tolerance - now.
INSERT INTO throttle_rates AS r (key, tat_ms, allowed)
VALUES ($1, $2 + $3, true)
ON CONFLICT (key) DO UPDATE SET
    allowed = GREATEST(r.tat_ms, $2) - $4 <= $2,
    tat_ms  = CASE WHEN GREATEST(r.tat_ms, $2) - $4 <= $2
                   THEN GREATEST(r.tat_ms, $2) + $3
                   ELSE r.tat_ms END
RETURNING allowed, tat_ms
