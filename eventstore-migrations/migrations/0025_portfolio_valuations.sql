-- Portfolios' daily valuations as a read model, and the marks that say which must be valued
-- again. The prices projection writes a mark in the same transaction as each input it applies:
-- a trade marks its portfolio from the trade's day, daily bars (new or corrected) mark their
-- asset from the first bar's day. The valuer (one at work at a time) turns asset marks into
-- marks of the portfolios that traded the asset, values each marked portfolio again from its
-- earliest marked day, and deletes exactly the marks it took: a mark written meanwhile stays
-- for the next round. Queries read the stored days unless a mark for the portfolio or one of
-- its assets is pending for a day of their range; then they compute the days from the trades
-- and bars as they stand. Marks are only ever inserted and deleted, so the projection's
-- partitions never wait on each other or on the valuer for them.

CREATE TABLE read_models.portfolio_valuations
(
    tenant_id    text        NOT NULL,
    portfolio_id uuid        NOT NULL,
    -- A UTC midnight: the valuation at the end of that day.
    day          timestamptz NOT NULL,
    value        numeric     NOT NULL,
    flow         numeric     NOT NULL,
    PRIMARY KEY (tenant_id, portfolio_id, day)
);

CREATE TABLE read_models.valuation_marks
(
    mark         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text        NOT NULL,
    portfolio_id uuid,
    asset_id     uuid,
    -- The first day whose valuation may have changed.
    from_day     timestamptz NOT NULL,
    -- Left by the valuer for a portfolio whose value on a day from `from_day` on is beyond 28
    -- digits (nothing is stored from then on): skipped by the valuer, it keeps queries of those
    -- days computing (and answering the error), until a round that values the portfolio from
    -- that day succeeds (after a correction of the close that made it too large).
    unvaluable   boolean     NOT NULL DEFAULT false,
    CHECK ((portfolio_id IS NULL) <> (asset_id IS NULL))
);

CREATE INDEX valuation_marks_by_portfolio ON read_models.valuation_marks (tenant_id, portfolio_id)
    WHERE portfolio_id IS NOT NULL;
CREATE INDEX valuation_marks_by_asset ON read_models.valuation_marks (tenant_id, asset_id)
    WHERE asset_id IS NOT NULL;

-- The portfolios that traded an asset, for spreading an asset's mark.
CREATE INDEX portfolio_trades_by_asset ON read_models.portfolio_trades (tenant_id, asset_id, portfolio_id);

-- Portfolios opened before this migration have no stored days yet: value each from its start
-- (no trade is older than the API's earliest time, 1900).
INSERT INTO read_models.valuation_marks (tenant_id, portfolio_id, from_day)
SELECT tenant_id, portfolio_id, '1900-01-01T00:00:00Z' FROM read_models.portfolios;
