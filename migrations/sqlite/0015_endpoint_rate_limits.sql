-- An endpoint's rate_limit (deliveries per second, NULL: none) and the window that
-- counts them: the second (unix time) it counts, and how many deliveries it has let
-- through. One row per endpoint, updated atomically, so every dispatcher shares it.
ALTER TABLE webhook_endpoints ADD COLUMN rate_limit INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN rate_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN rate_window_count INTEGER NOT NULL DEFAULT 0;
