-- The asset-prices read models: assets, every bar's current values, and every correction with
-- the values it replaced. Bars are keyed and indexed by (tenant, asset, interval, time) and
-- partitioned by time (a year per partition, 2000 to 2040, and a default partition for bars
-- outside), so a range query reads the partitions of its range only and a year of history can
-- be detached or archived as one table.

CREATE TABLE read_models.price_assets
(
    tenant_id  text        NOT NULL,
    asset_id   uuid        NOT NULL,
    symbol     text        NOT NULL,
    exchange   text        NOT NULL,
    currency   text        NOT NULL,
    kind       text        NOT NULL,
    name       text        NOT NULL,
    delisted   boolean     NOT NULL,
    version    bigint      NOT NULL,
    listed_at  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, asset_id)
);

CREATE INDEX price_assets_by_symbol ON read_models.price_assets (tenant_id, symbol, exchange);

-- Which asset, interval and period each price-series stream holds (from its first event).
CREATE TABLE read_models.price_series
(
    tenant_id text        NOT NULL,
    series_id uuid        NOT NULL,
    asset_id  uuid        NOT NULL,
    interval  text        NOT NULL,
    period    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, series_id)
);

CREATE TABLE read_models.price_bars
(
    tenant_id   text        NOT NULL,
    asset_id    uuid        NOT NULL,
    interval    text        NOT NULL,
    time        timestamptz NOT NULL,
    open        numeric     NOT NULL,
    high        numeric     NOT NULL,
    low         numeric     NOT NULL,
    close       numeric     NOT NULL,
    volume      numeric     NOT NULL,
    corrections integer     NOT NULL,
    recorded_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, asset_id, interval, time)
) PARTITION BY RANGE (time);

CREATE TABLE read_models.price_bars_2000 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2001-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2001 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2001-01-01 00:00:00+00') TO ('2002-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2002 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2002-01-01 00:00:00+00') TO ('2003-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2003 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2003-01-01 00:00:00+00') TO ('2004-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2004 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2004-01-01 00:00:00+00') TO ('2005-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2005 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2005-01-01 00:00:00+00') TO ('2006-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2006 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2006-01-01 00:00:00+00') TO ('2007-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2007 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2007-01-01 00:00:00+00') TO ('2008-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2008 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2008-01-01 00:00:00+00') TO ('2009-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2009 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2009-01-01 00:00:00+00') TO ('2010-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2010 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2010-01-01 00:00:00+00') TO ('2011-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2011 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2011-01-01 00:00:00+00') TO ('2012-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2012 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2012-01-01 00:00:00+00') TO ('2013-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2013 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2013-01-01 00:00:00+00') TO ('2014-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2014 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2014-01-01 00:00:00+00') TO ('2015-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2015 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2015-01-01 00:00:00+00') TO ('2016-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2016 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2016-01-01 00:00:00+00') TO ('2017-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2017 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2017-01-01 00:00:00+00') TO ('2018-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2018 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2018-01-01 00:00:00+00') TO ('2019-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2019 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2019-01-01 00:00:00+00') TO ('2020-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2020 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2021-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2021 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2021-01-01 00:00:00+00') TO ('2022-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2022 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2023-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2023 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2023-01-01 00:00:00+00') TO ('2024-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2024 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2025 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2026 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2027 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2028-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2028 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2028-01-01 00:00:00+00') TO ('2029-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2029 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2029-01-01 00:00:00+00') TO ('2030-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2030 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2030-01-01 00:00:00+00') TO ('2031-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2031 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2031-01-01 00:00:00+00') TO ('2032-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2032 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2032-01-01 00:00:00+00') TO ('2033-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2033 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2033-01-01 00:00:00+00') TO ('2034-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2034 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2034-01-01 00:00:00+00') TO ('2035-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2035 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2035-01-01 00:00:00+00') TO ('2036-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2036 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2036-01-01 00:00:00+00') TO ('2037-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2037 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2037-01-01 00:00:00+00') TO ('2038-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2038 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2038-01-01 00:00:00+00') TO ('2039-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2039 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2039-01-01 00:00:00+00') TO ('2040-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_2040 PARTITION OF read_models.price_bars
    FOR VALUES FROM ('2040-01-01 00:00:00+00') TO ('2041-01-01 00:00:00+00');
CREATE TABLE read_models.price_bars_other PARTITION OF read_models.price_bars DEFAULT;

-- Every correction, with the values it replaced and its source: a bar's correction history.
CREATE TABLE read_models.price_corrections
(
    tenant_id      text        NOT NULL,
    asset_id       uuid        NOT NULL,
    interval       text        NOT NULL,
    time           timestamptz NOT NULL,
    corrected_at   timestamptz NOT NULL,
    event_sequence bigint      NOT NULL,
    previous       jsonb       NOT NULL,
    bar            jsonb       NOT NULL,
    provider       text        NOT NULL,
    import_id      uuid        NOT NULL,
    PRIMARY KEY (tenant_id, asset_id, interval, time, event_sequence)
);
