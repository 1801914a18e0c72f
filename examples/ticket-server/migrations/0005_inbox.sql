-- The in-app inbox (src/stores/inbox/pg.rs). One row per notification: a change of the
-- session's feed told to its owner, once (unique per user, session and sequence); `n`
-- numbers them in arrival order (the API's id and paging cursor).
CREATE TABLE inbox (
    n          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text   NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    session_id uuid   NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    at_ms      bigint NOT NULL,
    kind       text   NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    hold_id    uuid,
    ticket_id  uuid,
    read_at_ms bigint,
    UNIQUE (user_id, session_id, seq)
);
CREATE INDEX inbox_by_user ON inbox (user_id, n DESC);
CREATE INDEX inbox_unread ON inbox (user_id) WHERE read_at_ms IS NULL;
