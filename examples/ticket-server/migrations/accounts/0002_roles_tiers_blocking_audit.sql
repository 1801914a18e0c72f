-- Roles (GATE), tiers set by admins, blocking, per-user access-token versions, the
-- absolute end of refresh families, and the account audit trail.

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('USER', 'ADMIN', 'GATE'));

ALTER TABLE users
    -- an access token is accepted only while its `ver` claim equals this
    ADD COLUMN token_version bigint  NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    ADD COLUMN blocked       boolean NOT NULL DEFAULT false,
    -- set only by admins; names checked by the application
    ADD COLUMN tiers         text[]  NOT NULL DEFAULT '{}';

-- "the last admin" counts these
CREATE INDEX users_admins ON users (id) WHERE role = 'ADMIN';

-- a login's absolute end: rotation never extends a token past it (NULL: families stored
-- before absolute lifetimes)
ALTER TABLE refresh_families ADD COLUMN ends_at bigint;

-- every admin change of an account; `seq` is the paging cursor. Changes are serialised by
-- an advisory lock, so `seq` order is commit order and paging never skips a record.
CREATE TABLE account_audit (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         bigint NOT NULL,
    actor      uuid   NOT NULL,
    target     uuid   NOT NULL REFERENCES users (id),
    change     text   NOT NULL CHECK (change IN ('ROLE', 'TIERS', 'BLOCKED')),
    from_value text   NOT NULL,
    to_value   text   NOT NULL
);
