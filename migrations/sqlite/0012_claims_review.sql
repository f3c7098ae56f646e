-- SQLite flavour of migrations/postgres/0012_claims_review.sql.
-- Claims review for people (SPEC section 4): named operators, the claim's `review`
-- object, the operators' queue and the audit trail, and the console's sessions.

-- The provider's claims staff. Disabled operators' keys and sessions stop working.
CREATE TABLE operators (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    email        TEXT,
    created      INTEGER NOT NULL,
    disabled_at  INTEGER
);
-- An operator key speaks for one operator.
ALTER TABLE api_keys ADD COLUMN operator_id TEXT REFERENCES operators (id);
CREATE INDEX api_keys_operator_idx ON api_keys (operator_id);
-- Operator keys made before: all speak for one operator named `operator`, the one
-- `casapay operator-keys create` adds its keys to.
INSERT INTO operators (id, name, email, created)
    SELECT 'op_operator', 'operator', NULL, MIN(created) FROM api_keys WHERE kind = 'operator' HAVING COUNT(*) > 0;
UPDATE api_keys SET operator_id = 'op_operator' WHERE kind = 'operator';

-- Who decided (`automation`, an `op_` id, `test_helper`), the rule checks as JSON,
-- the review deadline, the recorded approvals (JSON), the open evidence request.
ALTER TABLE claims ADD COLUMN decided_by TEXT;
ALTER TABLE claims ADD COLUMN review_checks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE claims ADD COLUMN review_due_by INTEGER;
ALTER TABLE claims ADD COLUMN review_approvals TEXT NOT NULL DEFAULT '[]';
ALTER TABLE claims ADD COLUMN evidence_requested TEXT;
-- What the claim waits for while a person must act (`operator`, `second_approval`,
-- `evidence`); NULL when it waits for no one (automation, or decided).
ALTER TABLE claims ADD COLUMN review_awaiting TEXT;
-- The deadline of claims filed before: submitted_at plus 5 business days, which is 7
-- calendar days from a weekday, 6 from a Saturday, 5 from a Sunday (1970-01-01 was a
-- Thursday: day % 7 = 2 is a Saturday, 3 a Sunday). As domain::review::due_by.
UPDATE claims SET review_due_by = submitted_at + 86400 * (CASE (submitted_at / 86400) % 7
    WHEN 2 THEN 6 WHEN 3 THEN 5 ELSE 7 END) WHERE submitted_at IS NOT NULL;
UPDATE claims SET review_awaiting = 'operator' WHERE status = 'under_review' AND awaiting_operator = 1;
-- The operators' queue: claims a person must act on, oldest deadline first.
CREATE INDEX claims_people_queue_idx ON claims (review_due_by, id) WHERE review_awaiting IS NOT NULL;

-- The audit trail of each claim's review (`claim_action`, `act_`), oldest first.
-- Internal notes are actions of type `note_added`: operators read them, platforms never.
CREATE TABLE claim_actions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    livemode     INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    claim_id     TEXT NOT NULL REFERENCES claims (id),
    type         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    message      TEXT,
    amount       INTEGER
);
CREATE INDEX claim_actions_claim_idx ON claim_actions (claim_id, seq);

-- The review console's sign-ins: the SHA-256 of the session cookie, never the cookie.
CREATE TABLE console_sessions (
    token_hash   TEXT NOT NULL UNIQUE,
    operator_id  TEXT NOT NULL REFERENCES operators (id),
    csrf_token   TEXT NOT NULL,
    created      INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
