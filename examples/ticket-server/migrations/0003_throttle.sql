-- Throttle state (src/stores/throttle/pg.rs). UNLOGGED: rate-limit state is rebuilt by
-- traffic, so a crash of PostgreSQL resetting the limits is accepted for writes without WAL.

-- GCRA: one row per key, its theoretical arrival time (epoch ms). A row whose TAT has passed
-- is a full bucket; the sweeper deletes those. `allowed` carries the last step's verdict to
-- RETURNING. No index besides the key, so updates stay HOT.
CREATE UNLOGGED TABLE throttle_rates (
    key     text    PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 200),
    tat_ms  bigint  NOT NULL,
    allowed boolean NOT NULL
);

-- Login failures per account key: attempts counted, the lock's end, the last counted
-- attempt, and how long after the later of those two the row may be forgotten.
CREATE UNLOGGED TABLE throttle_failures (
    key             text    PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 200),
    count           bigint  NOT NULL CHECK (count >= 1),
    locked_until_ms bigint  NOT NULL,
    last_ms         bigint  NOT NULL,
    forget_ms       bigint  NOT NULL CHECK (forget_ms >= 0),
    allowed         boolean NOT NULL
);
