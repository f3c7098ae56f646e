-- Test clocks (SPEC section 5): simulated time for the objects of test-mode customers.
-- A clock is `ready` at `frozen_time`, or `advancing` towards `advance_to` while the
-- engine applies what falls due on the way; one engine step at a time holds it, under a
-- lease with a fencing token, as payouts are held.
CREATE TABLE test_clocks (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    livemode      BOOLEAN NOT NULL,
    created       BIGINT NOT NULL,
    frozen_time   BIGINT NOT NULL,
    status        TEXT NOT NULL,
    name          TEXT,
    deletes_after BIGINT NOT NULL,
    advance_to    BIGINT,
    lease_token   BIGINT NOT NULL DEFAULT 0,
    leased_until  BIGINT
);
CREATE INDEX test_clocks_list_idx ON test_clocks (account_id, livemode, created DESC, seq DESC);
CREATE INDEX test_clocks_status_idx ON test_clocks (status, seq);

-- The clock a customer lives on, and (copied from the customer when the guarantee is
-- made, so the engine's queries need no join) the clock of each guarantee.
ALTER TABLE customers ADD COLUMN test_clock_id TEXT REFERENCES test_clocks (id);
ALTER TABLE guarantees ADD COLUMN test_clock_id TEXT REFERENCES test_clocks (id);
CREATE INDEX customers_test_clock_idx ON customers (test_clock_id) WHERE test_clock_id IS NOT NULL;

-- The wall-clock engine only looks at guarantees on no clock; a clock's advance at its
-- own, in date order.
DROP INDEX guarantees_starting_idx;
DROP INDEX guarantees_ending_idx;
CREATE INDEX guarantees_starting_idx ON guarantees (status, start_date) WHERE test_clock_id IS NULL;
CREATE INDEX guarantees_ending_idx ON guarantees (status, end_date) WHERE test_clock_id IS NULL;
CREATE INDEX guarantees_clock_starting_idx ON guarantees (test_clock_id, status, start_date)
    WHERE test_clock_id IS NOT NULL;
CREATE INDEX guarantees_clock_ending_idx ON guarantees (test_clock_id, status, end_date)
    WHERE test_clock_id IS NOT NULL;
