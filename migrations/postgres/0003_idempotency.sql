-- Idempotency keys: the first request's response, kept 24 hours per account and mode.
-- A row is 'in_flight' (locked until locked_until by the request holding `token`)
-- until the request's own transaction stores its response and marks it 'done'.
CREATE TABLE idempotency_keys (
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    livemode         BOOLEAN NOT NULL,
    key              TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    state            TEXT NOT NULL,
    token            BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL,
    response_status  BIGINT,
    response_body    TEXT,
    created          BIGINT NOT NULL,
    PRIMARY KEY (account_id, livemode, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created);
