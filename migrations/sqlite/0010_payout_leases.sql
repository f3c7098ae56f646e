-- SQLite flavour of migrations/postgres/0010_payout_leases.sql.
-- Payouts are leased like webhook deliveries (see src/store/payouts.rs): an engine step
-- leases due payouts in one short transaction, calls the rail outside any transaction,
-- and records the answers in a second one only if its lease token is still the payout's.
-- Fencing token: raised by every lease, checked by every write of an answer.
ALTER TABLE payouts ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
-- Until when the step that leased the payout holds it; NULL once settled or given back.
ALTER TABLE payouts ADD COLUMN leased_until INTEGER;
