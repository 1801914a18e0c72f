-- ticket-server social login: links between accounts and identities at external providers
-- (OAuth 2.0 / OpenID Connect), and one-time records (pending authorisations, one-time login
-- codes) taken exactly once by `DELETE … RETURNING`. Instants are bigint milliseconds.

CREATE TABLE user_identities (
    -- the configured provider's name (`kakao`, `naver`, `oidc`, …)
    provider   text   NOT NULL CHECK (provider <> ''),
    -- the provider's stable user id (`sub`, Naver's `id`)
    subject    text   NOT NULL CHECK (subject <> ''),
    user_id    uuid   NOT NULL REFERENCES users (id),
    created_at bigint NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX user_identities_user ON user_identities (user_id);

CREATE TABLE one_time_records (
    -- SHA-256 (hex) of the secret the record is found by; the secret is never stored
    key_hash   text   PRIMARY KEY,
    value      text   NOT NULL,
    expires_at bigint NOT NULL
);

CREATE INDEX one_time_records_expiry ON one_time_records (expires_at);
