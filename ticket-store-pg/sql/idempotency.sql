-- Idempotency records: claiming a key. Completing and releasing a claim are plain
-- statements in src/idempotency.rs.

-- Claims a key: {"started":true}, or the record found ({"fingerprint","outcome"}).
CREATE OR REPLACE FUNCTION tr_idem_claim(p_scope text, p_key text, p_fp bytea, p_now bigint,
                                         p_until bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    rec idempotency;
BEGIN
    INSERT INTO idempotency AS i (scope, key, fingerprint, outcome, expires_at)
    VALUES (p_scope, p_key, p_fp, NULL, p_until)
    ON CONFLICT (scope, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, outcome = NULL, expires_at = EXCLUDED.expires_at
     WHERE i.expires_at <= p_now;
    IF FOUND THEN
        RETURN '{"started":true}';
    END IF;
    -- ON CONFLICT locked the live record: this read sees its latest version
    SELECT * INTO rec FROM idempotency WHERE scope = p_scope AND key = p_key;
    RETURN jsonb_build_object('same', rec.fingerprint = p_fp, 'outcome', rec.outcome);
END $$;
