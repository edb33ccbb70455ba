-- Auditors page one tenant's history in feed order and follow a correlation id across
-- aggregates (commands::feed::history); without these each page would scan every tenant's events.
CREATE INDEX events_tenant_feed_idx ON events (tenant_id, transaction_id, global_position);
CREATE INDEX events_tenant_correlation_idx ON events (tenant_id, (metadata ->> 'correlation_id'));
