-- Core schema. Times are Unix seconds (BIGINT); JSON documents are TEXT so that
-- the SQLite schema can mirror this one column for column.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created     BIGINT NOT NULL
);

-- Secret keys (sk_test_/sk_live_, bound to an account) and operator keys (opk_,
-- account_id NULL). Only the SHA-256 of a key is stored.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT REFERENCES accounts (id),
    kind        TEXT NOT NULL CHECK (kind IN ('secret', 'operator')),
    livemode    BOOLEAN NOT NULL,
    key_hash    TEXT NOT NULL,
    last4       TEXT NOT NULL,
    created     BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);

CREATE TABLE customers (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    livemode    BOOLEAN NOT NULL,
    created     BIGINT NOT NULL,
    name        TEXT,
    email       TEXT,
    score       BIGINT,
    metadata    TEXT NOT NULL
);
CREATE INDEX customers_list_idx ON customers (account_id, livemode, created DESC, seq DESC);

CREATE TABLE guarantee_policies (
    seq                     BIGINT GENERATED ALWAYS AS IDENTITY,
    id                      TEXT PRIMARY KEY,
    account_id              TEXT NOT NULL REFERENCES accounts (id),
    livemode                BOOLEAN NOT NULL,
    created                 BIGINT NOT NULL,
    name                    TEXT NOT NULL,
    coverage_percentage     BIGINT NOT NULL,
    max_coverage_months     BIGINT NOT NULL,
    waiting_period_days     BIGINT NOT NULL,
    eligible_score_minimum  BIGINT NOT NULL,
    deductible_amount       BIGINT NOT NULL,
    active                  BOOLEAN NOT NULL,
    metadata                TEXT NOT NULL
);
CREATE INDEX guarantee_policies_list_idx ON guarantee_policies (account_id, livemode, created DESC, seq DESC);

CREATE TABLE guarantees (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    livemode         BOOLEAN NOT NULL,
    created          BIGINT NOT NULL,
    status           TEXT NOT NULL,
    policy_id        TEXT NOT NULL REFERENCES guarantee_policies (id),
    tenant_id        TEXT NOT NULL REFERENCES customers (id),
    coverage_amount  BIGINT NOT NULL,
    total_coverage   BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    start_date       BIGINT NOT NULL,
    end_date         BIGINT NOT NULL,
    claims_filed     BIGINT NOT NULL DEFAULT 0,
    claims_paid      BIGINT NOT NULL DEFAULT 0,
    -- Approved and not yet paid: held back from the remaining coverage.
    claims_reserved  BIGINT NOT NULL DEFAULT 0,
    cancelled_at     BIGINT,
    metadata         TEXT NOT NULL,
    -- The money invariant, enforced by the database as a last line of defence.
    CONSTRAINT guarantees_coverage_not_exceeded CHECK (
        claims_paid >= 0 AND claims_reserved >= 0 AND claims_paid + claims_reserved <= total_coverage
    )
);
CREATE INDEX guarantees_list_idx ON guarantees (account_id, livemode, created DESC, seq DESC);
CREATE INDEX guarantees_status_idx ON guarantees (status, start_date, end_date);

CREATE TABLE claims (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY,
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    livemode          BOOLEAN NOT NULL,
    created           BIGINT NOT NULL,
    guarantee_id      TEXT NOT NULL REFERENCES guarantees (id),
    amount            BIGINT NOT NULL,
    amount_approved   BIGINT,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    reason            TEXT NOT NULL,
    invoice_id        TEXT NOT NULL,
    due_date          BIGINT NOT NULL,
    description       TEXT,
    payout_id         TEXT,
    denial_reason     TEXT,
    reviewed_at       BIGINT,
    submitted_at      BIGINT,
    under_review_at   BIGINT,
    approved_at       BIGINT,
    denied_at         BIGINT,
    paid_at           BIGINT,
    -- Automated review found nothing to deny but the reason needs a person.
    awaiting_operator BOOLEAN NOT NULL DEFAULT FALSE,
    metadata          TEXT NOT NULL
);
CREATE INDEX claims_list_idx ON claims (account_id, livemode, created DESC, seq DESC);
CREATE INDEX claims_guarantee_idx ON claims (guarantee_id);
-- The automated review queue.
CREATE INDEX claims_review_queue_idx ON claims (status, awaiting_operator, seq);
-- One live claim per invoice and guarantee: a denied claim may be filed again.
CREATE UNIQUE INDEX claims_guarantee_invoice_key ON claims (guarantee_id, invoice_id) WHERE status <> 'denied';

-- One payout per approved claim; the unique claim_id means a claim is never paid twice.
CREATE TABLE payouts (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    livemode     BOOLEAN NOT NULL,
    created      BIGINT NOT NULL,
    claim_id     TEXT NOT NULL REFERENCES claims (id),
    guarantee_id TEXT NOT NULL REFERENCES guarantees (id),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    arrival_date BIGINT,
    CONSTRAINT payouts_claim_id_key UNIQUE (claim_id)
);
CREATE INDEX payouts_list_idx ON payouts (account_id, livemode, created DESC, seq DESC);
CREATE INDEX payouts_status_idx ON payouts (status, seq);

CREATE TABLE events (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY,
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    livemode             BOOLEAN NOT NULL,
    created              BIGINT NOT NULL,
    type                 TEXT NOT NULL,
    object               TEXT NOT NULL,
    previous_attributes  TEXT,
    request_id           TEXT,
    idempotency_key      TEXT,
    pending_webhooks     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX events_list_idx ON events (account_id, livemode, created DESC, seq DESC);
CREATE INDEX events_created_idx ON events (created);
