-- SQLite flavour of migrations/postgres/0016_recoveries.sql.
-- Recoveries (SPEC section 6): what the tenant owes the provider once a claim is paid,
-- opened in the transaction that marks the claim paid (one per claim), with its plan
-- (JSON: installments and schedule) and the trail of who planned, paid, wrote off.
CREATE TABLE recoveries (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    livemode            INTEGER NOT NULL,
    created             INTEGER NOT NULL,
    claim_id            TEXT NOT NULL REFERENCES claims (id),
    guarantee_id        TEXT NOT NULL REFERENCES guarantees (id),
    tenant_id           TEXT NOT NULL REFERENCES customers (id),
    currency            TEXT NOT NULL,
    amount              INTEGER NOT NULL,
    amount_recovered    INTEGER NOT NULL DEFAULT 0,
    status              TEXT NOT NULL,
    plan_json           TEXT,
    written_off_reason  TEXT,
    metadata            TEXT NOT NULL,
    -- The earliest due date of an installment still pending (NULL outside a plan):
    -- the engine marks it missed once the time is past it.
    next_due_date       INTEGER,
    -- The tenant's clock, copied from the guarantee, so the engine's queries need no join.
    test_clock_id       TEXT REFERENCES test_clocks (id),
    CONSTRAINT recoveries_claim_id_key UNIQUE (claim_id),
    -- The money invariant, enforced by the database as a last line of defence.
    CONSTRAINT recoveries_amount_recovered_check CHECK (
        amount > 0 AND amount_recovered >= 0 AND amount_recovered <= amount
    )
);
CREATE INDEX recoveries_list_idx ON recoveries (account_id, livemode, created DESC, seq DESC);
CREATE INDEX recoveries_guarantee_idx ON recoveries (guarantee_id);
CREATE INDEX recoveries_due_idx ON recoveries (next_due_date) WHERE next_due_date IS NOT NULL AND test_clock_id IS NULL;
CREATE INDEX recoveries_clock_due_idx ON recoveries (test_clock_id, next_due_date)
    WHERE next_due_date IS NOT NULL AND test_clock_id IS NOT NULL;

-- Who did what to a recovery: `platform`, `automation` or an operator's `op_` id.
CREATE TABLE recovery_actions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    livemode     INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    recovery_id  TEXT NOT NULL REFERENCES recoveries (id),
    type         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    amount       INTEGER,
    happened_at  INTEGER,
    message      TEXT
);
CREATE INDEX recovery_actions_recovery_idx ON recovery_actions (recovery_id, seq);

-- What was recovered on the guarantee's claims (coverage is not restored by it).
ALTER TABLE guarantees ADD COLUMN claims_recovered INTEGER NOT NULL DEFAULT 0;
