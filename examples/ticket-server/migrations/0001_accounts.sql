-- ticket-server accounts: users, refresh tokens and the account audit trail, in the app's
-- schema (the one the connections' search_path names). Instants are bigint milliseconds
-- since the Unix epoch from the server's injected clock.

CREATE TABLE users (
    id            uuid    PRIMARY KEY,
    -- normalised (trimmed, lower-case) by the application
    email         text    NOT NULL CHECK (email <> ''),
    -- a PHC string, opaque to the database
    password_hash text    NOT NULL CHECK (password_hash <> ''),
    role          text    NOT NULL CONSTRAINT users_role_check
                          CHECK (role IN ('USER', 'ADMIN', 'GATE')),
    created_at    bigint  NOT NULL,
    -- an access token is accepted only while its `ver` claim equals this
    token_version bigint  NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    blocked       boolean NOT NULL DEFAULT false,
    -- set only by admins; names checked by the application
    tiers         text[]  NOT NULL DEFAULT '{}'
);

-- one account per email: racing signups meet here
CREATE UNIQUE INDEX users_email ON users (email);
-- "the last admin" counts these
CREATE INDEX users_admins ON users (id) WHERE role = 'ADMIN';

-- every refresh token obtained from one login by rotation
CREATE TABLE refresh_families (
    id      uuid    PRIMARY KEY,
    user_id uuid    NOT NULL REFERENCES users (id),
    revoked boolean NOT NULL DEFAULT false,
    -- the login's absolute end: rotation never extends a token past it
    ends_at bigint
);

CREATE INDEX refresh_families_user ON refresh_families (user_id);

-- refresh tokens by SHA-256, never the token itself
CREATE TABLE refresh_tokens (
    hash       bytea   PRIMARY KEY CHECK (octet_length(hash) = 32),
    family     uuid    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    user_id    uuid    NOT NULL REFERENCES users (id),
    expires_at bigint  NOT NULL,
    used       boolean NOT NULL DEFAULT false
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

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
