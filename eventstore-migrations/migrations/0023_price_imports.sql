-- Import runs of asset prices: one row per import (an asset's bars of one interval and range
-- fetched from a provider), with where it stands, its attempts, progress and last error. The
-- importer finds due work here (queued, retry due, or a running attempt whose lease ended); the
-- PriceImport stream decides, so a stale row only costs a refused command.

CREATE TABLE read_models.price_imports
(
    tenant_id       text        NOT NULL,
    import_id       uuid        NOT NULL,
    asset_id        uuid        NOT NULL,
    interval        text        NOT NULL,
    range_from      timestamptz NOT NULL,
    range_to        timestamptz NOT NULL,
    provider        text        NOT NULL,
    status          text        NOT NULL,
    attempts        integer     NOT NULL,
    fetched         bigint      NOT NULL,
    recorded_until  timestamptz,
    last_error      text,
    next_attempt_at timestamptz,
    lease_until     timestamptz,
    version         bigint      NOT NULL,
    requested_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    PRIMARY KEY (tenant_id, import_id)
);

CREATE INDEX price_imports_by_asset ON read_models.price_imports (tenant_id, asset_id, requested_at);
-- The importer's question: what is due, across tenants.
CREATE INDEX price_imports_due ON read_models.price_imports (status, next_attempt_at)
    WHERE status IN ('queued', 'waiting', 'running');

-- Refresh schedules: an asset's bars of one interval imported again at a rhythm (from the
-- RefreshSchedule streams).
CREATE TABLE read_models.price_refresh_schedules
(
    tenant_id     text        NOT NULL,
    asset_id      uuid        NOT NULL,
    interval      text        NOT NULL,
    every_minutes integer     NOT NULL,
    lookback_bars integer     NOT NULL,
    version       bigint      NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, asset_id, interval)
);

-- When each schedule last asked for a refresh: the importer's own bookkeeping, not a read model
-- (a rebuild of the prices projection leaves it alone). A schedule is due `every_minutes` after
-- it (so a changed rhythm applies at once); one without a row here is due now.
CREATE TABLE scheduler.price_refreshes
(
    tenant_id    text        NOT NULL,
    asset_id     uuid        NOT NULL,
    interval     text        NOT NULL,
    requested_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, asset_id, interval)
);
