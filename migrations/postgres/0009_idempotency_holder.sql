-- The process holding an in-flight key (see src/store/holder.rs): a key whose holder
-- is gone (the process crashed) is taken over at once, not when its lock runs out.
ALTER TABLE idempotency_keys ADD COLUMN holder BIGINT;
