-- no-transaction
-- Auditors page one tenant's history in feed order (commands::feed::history); without this each
-- page would scan every tenant's events. Built CONCURRENTLY so that a large store keeps taking
-- commands while it builds (one statement per file: CONCURRENTLY cannot run in a transaction).
-- If the build is interrupted, Postgres leaves an INVALID index behind: drop it
-- (DROP INDEX CONCURRENTLY events_tenant_feed_idx) and start the backend again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_tenant_feed_idx
    ON events (tenant_id, transaction_id, global_position);
