-- The wallet (src/stores/wallet/pg.rs): a balance row per user and an append-only ledger,
-- and the top-ups that credit it (src/stores/wallet/topup_pg.rs).

CREATE TABLE wallet_accounts (
    user_id       text PRIMARY KEY CHECK (octet_length(user_id) BETWEEN 1 AND 256),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance_minor bigint NOT NULL CHECK (balance_minor >= 0),
    UNIQUE (user_id, currency)
);

CREATE TABLE wallet_ledger (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid NOT NULL UNIQUE,
    user_id         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT', 'REFUND')),
    amount_minor    bigint NOT NULL CHECK (
        (kind = 'PAYMENT' AND amount_minor < 0) OR (kind <> 'PAYMENT' AND amount_minor > 0)),
    currency        text NOT NULL,
    reference       text NOT NULL,
    -- only server-made keys (src/stores/wallet/ledger_key.rs) name entries
    idempotency_key text NOT NULL CHECK (octet_length(idempotency_key) BETWEEN 1 AND 256)
                         CONSTRAINT wallet_ledger_server_keys CHECK (idempotency_key LIKE 'sys:%'),
    fingerprint     text NOT NULL,
    at_ms           bigint NOT NULL,
    UNIQUE (user_id, idempotency_key),
    FOREIGN KEY (user_id, currency) REFERENCES wallet_accounts (user_id, currency)
);

CREATE INDEX wallet_ledger_user_seq ON wallet_ledger (user_id, seq DESC);

-- the ledger is append-only: every UPDATE, DELETE or TRUNCATE is refused
CREATE FUNCTION wallet_ledger_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wallet_ledger is append-only: % refused', TG_OP;
END
$$;

CREATE TRIGGER wallet_ledger_no_update_or_delete BEFORE UPDATE OR DELETE
    ON wallet_ledger FOR EACH ROW EXECUTE FUNCTION wallet_ledger_append_only();
CREATE TRIGGER wallet_ledger_no_truncate BEFORE TRUNCATE
    ON wallet_ledger FOR EACH STATEMENT EXECUTE FUNCTION wallet_ledger_append_only();

-- top-ups: each one a document (`doc`) with the columns the rules need; one per client key,
-- the pending ones found by a partial index, `version` the compare-and-set token
CREATE TABLE wallet_topups (
    id         uuid PRIMARY KEY,
    user_id    text NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 256),
    client_key text NOT NULL,
    status     text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    version    bigint NOT NULL,
    created_ms bigint NOT NULL,
    doc        jsonb NOT NULL,
    UNIQUE (user_id, client_key)
);

CREATE INDEX wallet_topups_pending ON wallet_topups (created_ms, id)
    WHERE status = 'PENDING';
