-- The security audit (src/stores/security_audit/pg.rs). One row per refusal for abuse;
-- `seq` orders them (newest = largest) and is the second half of the API's cursor.
CREATE TABLE security_audit (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms     bigint NOT NULL,
    actor     text   CHECK (octet_length(actor) BETWEEN 1 AND 64),
    reason    text   NOT NULL CHECK (reason ~ '^[A-Z_]{1,40}$'),
    client_ip text   CHECK (octet_length(client_ip) BETWEEN 1 AND 64),
    route     text   NOT NULL CHECK (octet_length(route) <= 200),
    detail    text   NOT NULL CHECK (octet_length(detail) <= 200)
);
