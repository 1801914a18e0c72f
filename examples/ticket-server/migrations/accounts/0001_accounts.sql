-- ticket-server accounts: users and refresh tokens, in the schema the connections'
-- search_path names. Instants are bigint milliseconds since the Unix epoch from the server's
-- injected clock.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- normalised (trimmed, lower-case) by the application
    email         text   NOT NULL CHECK (email <> ''),
    -- a PHC string, opaque to the database
    password_hash text   NOT NULL CHECK (password_hash <> ''),
    role          text   NOT NULL CHECK (role IN ('USER', 'ADMIN')),
    created_at    bigint NOT NULL
);

-- one account per email: racing signups meet here
CREATE UNIQUE INDEX users_email ON users (email);

-- every refresh token obtained from one login by rotation
CREATE TABLE refresh_families (
    id      uuid    PRIMARY KEY,
    user_id uuid    NOT NULL REFERENCES users (id),
    revoked boolean NOT NULL DEFAULT false
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
