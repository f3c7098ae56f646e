-- Every secret superseded by rotate_secret signs for 24 h after its rotation, so two
-- rotations within a day leave two: a JSON list ([{"secret", "expires_at"}], newest
-- first) replaces the one previous secret and its expiry.
ALTER TABLE webhook_endpoints ADD COLUMN previous_secrets TEXT NOT NULL DEFAULT '[]';
UPDATE webhook_endpoints
SET previous_secrets = json_build_array(json_build_object('secret', previous_secret, 'expires_at', previous_secret_expires_at))::text
WHERE previous_secret IS NOT NULL AND previous_secret_expires_at IS NOT NULL;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret, DROP COLUMN previous_secret_expires_at;
