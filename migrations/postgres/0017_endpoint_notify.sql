-- Every change to webhook endpoints that matters to the outbox (which endpoints of a
-- scope are enabled, and for which events) is announced on this channel, so that each
-- replica's endpoint cache forgets what it kept (store::endpoint_cache). NOTIFY is sent
-- when the transaction commits, and not at all if it rolls back.
CREATE FUNCTION casapay_webhook_endpoints_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('casapay_webhook_endpoints', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER webhook_endpoints_changed_on_insert_or_delete
    AFTER INSERT OR DELETE ON webhook_endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION casapay_webhook_endpoints_changed();

CREATE TRIGGER webhook_endpoints_changed_on_update
    AFTER UPDATE ON webhook_endpoints
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.enabled_events IS DISTINCT FROM NEW.enabled_events)
    EXECUTE FUNCTION casapay_webhook_endpoints_changed();
