-- Portfolios and their trades (from the Portfolio streams). Holdings, gains and valuations are
-- computed from these and the price bars when asked, so a corrected bar changes every valuation
-- that uses it as soon as the correction is projected.

CREATE TABLE read_models.portfolios
(
    tenant_id    text        NOT NULL,
    portfolio_id uuid        NOT NULL,
    name         text        NOT NULL,
    currency     text        NOT NULL,
    trades       integer     NOT NULL,
    version      bigint      NOT NULL,
    opened_at    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, portfolio_id)
);

CREATE TABLE read_models.portfolio_trades
(
    tenant_id    text        NOT NULL,
    portfolio_id uuid        NOT NULL,
    trade_id     uuid        NOT NULL,
    asset_id     uuid        NOT NULL,
    side         text        NOT NULL,
    quantity     numeric     NOT NULL,
    price        numeric     NOT NULL,
    time         timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, portfolio_id, trade_id)
);

CREATE INDEX portfolio_trades_by_time ON read_models.portfolio_trades (tenant_id, portfolio_id, time);
