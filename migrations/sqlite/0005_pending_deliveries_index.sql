-- The dispatcher leases pending deliveries in (next_attempt_at, seq) order. The index on
-- (status, next_attempt_at) also held every finished delivery, and PostgreSQL plans made
-- while the table was nearly empty used it to record a result (status = 'pending',
-- filtered by id): a walk of every pending delivery per attempt. A partial index holds
-- only what is still pending, in lease order, and is no candidate for lookups by id.
DROP INDEX webhook_deliveries_due_idx;
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (next_attempt_at, seq) WHERE status = 'pending';
