-- SQLite flavour of migrations/postgres/0002_webhooks.sql.
-- Webhook endpoints, the delivery outbox (one row per event and endpoint, written in
-- the event's transaction), and the log of delivery attempts.

CREATE TABLE webhook_endpoints (
    seq                         INTEGER PRIMARY KEY AUTOINCREMENT,
    id                          TEXT NOT NULL UNIQUE,
    account_id                  TEXT NOT NULL REFERENCES accounts (id),
    livemode                    INTEGER NOT NULL,
    created                     INTEGER NOT NULL,
    url                         TEXT NOT NULL,
    description                 TEXT,
    enabled_events              TEXT NOT NULL,
    status                      TEXT NOT NULL,
    -- Kept in clear: signing needs it. The previous secret signs too until it expires.
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    -- Start of the current run of failed attempts; NULL after a success.
    failing_since               INTEGER,
    metadata                    TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_list_idx ON webhook_endpoints (account_id, livemode, created DESC, seq DESC);

CREATE TABLE webhook_deliveries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    livemode         INTEGER NOT NULL,
    created          INTEGER NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    -- Fencing token: raised by every lease, checked by every write of a result.
    lease_token      INTEGER NOT NULL DEFAULT 0,
    leased_until     INTEGER
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, status);

CREATE TABLE webhook_attempts (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    endpoint_id    TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id       TEXT NOT NULL,
    delivery_id    TEXT NOT NULL,
    status_code    INTEGER,
    latency_ms     INTEGER NOT NULL,
    error          TEXT,
    response_body  TEXT
);
CREATE INDEX webhook_attempts_list_idx ON webhook_attempts (account_id, livemode, endpoint_id, created DESC, seq DESC);
