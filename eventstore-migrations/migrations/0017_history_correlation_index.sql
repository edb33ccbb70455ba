-- no-transaction
-- Auditors follow a correlation id across aggregates (commands::feed::history). Built
-- CONCURRENTLY like 0016, with the same advice if the build is interrupted.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_tenant_correlation_idx
    ON events (tenant_id, (metadata ->> 'correlation_id'));
