-- Notification deliveries (DeliveryLog): claiming one. Finishing, reading, checkpoints and
-- leases are single statements in src/deliveries.rs.

-- Claims delivery (`p_session`, `p_seq`, `p_recipient`) for `p_holder` until `p_until`:
-- {"claimed":true} when the delivery is new, its claim ran out by `p_now`, or it is already
-- `p_holder`'s; {"busy":true} while another holder's claim lasts; {"done":record} once it
-- finished. Racing claims of one key are serialised by the row (INSERT … ON CONFLICT locks
-- it), so exactly one of them gets a live claim.
CREATE OR REPLACE FUNCTION tr_claim_delivery(p_session uuid, p_seq bigint, p_recipient text,
                                             p_holder text, p_now bigint, p_until bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    d deliveries;
BEGIN
    INSERT INTO deliveries AS x (session_id, seq, recipient, holder, lease_until)
    VALUES (p_session, p_seq, p_recipient, p_holder, p_until)
    ON CONFLICT (session_id, seq, recipient) DO UPDATE
       SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until
     WHERE x.status IS NULL AND (x.holder = EXCLUDED.holder OR x.lease_until <= p_now);
    IF FOUND THEN
        RETURN '{"claimed":true}';
    END IF;
    -- ON CONFLICT locked the row: this read sees its latest version
    SELECT * INTO d FROM deliveries
     WHERE session_id = p_session AND seq = p_seq AND recipient = p_recipient;
    IF d.status IS NULL THEN
        RETURN '{"busy":true}';
    END IF;
    RETURN jsonb_build_object('done', jsonb_build_object(
        'status', d.status, 'attempts', d.attempts, 'last_error', d.last_error, 'at', d.at,
        'by', d.finished_by));
END $$;
