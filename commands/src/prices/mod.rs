//! Asset-price commands: listing, renaming and delisting assets, and recording reported bars,
//! each into the series stream of its period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection};
use domain::identity::{StreamId, TenantId};
use domain::prices::{
    Asset, AssetCommand, AssetError, ImportKey, ImportSource, Interval, Portfolio,
    PortfolioCommand, PortfolioError, PriceImport, PriceImportCommand, PriceImportError,
    PriceSeries, PriceSeriesCommand, PriceSeriesError, RefreshSchedule, RefreshScheduleCommand,
    RefreshScheduleError, Reported, SeriesKey, Trade,
};
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::metadata::CommandContext;

/// Why bars were not (all) recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The asset is unknown or delisted, or could not be read.
    #[error(transparent)]
    Asset(CommandError<AssetError>),
    /// A bar is misplaced or contradictory (nothing recorded), or the store failed or another
    /// import appended first part-way: recording the same report again completes it.
    #[error(transparent)]
    Series(CommandError<PriceSeriesError>),
}

pub mod importer;
pub mod provider;

/// Why an import was not requested.
#[derive(Debug, thiserror::Error)]
pub enum ImportRequestError {
    /// The asset is unknown or delisted, or could not be read.
    #[error(transparent)]
    Asset(CommandError<AssetError>),
    /// The range is invalid, or the store failed.
    #[error(transparent)]
    Import(CommandError<PriceImportError>),
}

/// Why a refresh schedule was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The asset is unknown or delisted, or could not be read.
    #[error(transparent)]
    Asset(CommandError<AssetError>),
    /// Unchanged or not scheduled, or the store failed.
    #[error(transparent)]
    Schedule(CommandError<RefreshScheduleError>),
}

/// Why a trade was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum TradeError {
    /// The asset is unknown, or could not be read.
    #[error(transparent)]
    Asset(CommandError<AssetError>),
    /// The portfolio refused it (unknown, recorded already, oversold), or the store failed.
    #[error(transparent)]
    Portfolio(CommandError<PortfolioError>),
    /// The asset is priced in another currency than the portfolio's.
    #[error("the asset is priced in {asset}, the portfolio in {portfolio}")]
    CurrencyMismatch {
        /// The asset's currency.
        asset: String,
        /// The portfolio's.
        portfolio: String,
    },
}

/// Issues asset-price commands.
#[derive(Debug)]
pub struct PriceCommands {
    assets: CommandBus<Asset>,
    series: CommandBus<PriceSeries>,
    imports: CommandBus<PriceImport>,
    schedules: CommandBus<RefreshSchedule>,
    portfolios: CommandBus<Portfolio>,
}

impl PriceCommands {
    /// Price commands over `assets`, `series`, `imports`, refresh `schedules` and
    /// `portfolios`.
    pub fn new(
        assets: CommandBus<Asset>,
        series: CommandBus<PriceSeries>,
        imports: CommandBus<PriceImport>,
        schedules: CommandBus<RefreshSchedule>,
        portfolios: CommandBus<Portfolio>,
    ) -> Self {
        Self {
            assets,
            series,
            imports,
            schedules,
            portfolios,
        }
    }

    /// Runs `command` on portfolio `portfolio` of the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn portfolio(
        &self,
        context: &CommandContext,
        portfolio: Uuid,
        command: PortfolioCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<PortfolioError>> {
        let name = command.name();
        let stream = StreamId::new(context.tenant.clone(), portfolio);
        self.portfolios
            .execute(context, &stream, Guarded::new(command), name, now)
            .await
    }

    /// Records `trade` in portfolio `portfolio`: its asset must be listed (a delisted one was
    /// traded before its delisting) and priced in the portfolio's currency.
    ///
    /// # Errors
    /// [`TradeError`].
    pub async fn trade(
        &self,
        context: &CommandContext,
        portfolio: Uuid,
        trade: Trade,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, TradeError> {
        // The portfolio first: the path names it, the body only the asset.
        let stream = StreamId::new(context.tenant.clone(), portfolio);
        let held = self
            .portfolios
            .load(&stream)
            .await
            .map_err(TradeError::Portfolio)?;
        let Portfolio::Open { currency, .. } = held.state() else {
            return Err(TradeError::Portfolio(CommandError::Rejected(
                Rejection::Domain(PortfolioError::NotFound),
            )));
        };
        let asset = self
            .assets
            .load(&StreamId::new(context.tenant.clone(), trade.asset))
            .await
            .map_err(TradeError::Asset)?;
        let Asset::Listed {
            currency: asset_currency,
            ..
        } = asset.state()
        else {
            return Err(TradeError::Asset(CommandError::Rejected(
                Rejection::Domain(AssetError::NotFound),
            )));
        };
        if currency != asset_currency {
            return Err(TradeError::CurrencyMismatch {
                asset: asset_currency.as_str().to_owned(),
                portfolio: currency.as_str().to_owned(),
            });
        }
        let command = PortfolioCommand::RecordTrade { trade, at: now };
        self.portfolio(context, portfolio, command, now)
            .await
            .map_err(TradeError::Portfolio)
    }

    /// Schedules or unschedules the refresh of an asset's bars of one interval; scheduling
    /// needs a listed asset.
    ///
    /// # Errors
    /// [`ScheduleError`].
    pub async fn schedule(
        &self,
        context: &CommandContext,
        command: RefreshScheduleCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, ScheduleError> {
        let (asset, interval) = match &command {
            RefreshScheduleCommand::Schedule {
                asset, interval, ..
            }
            | RefreshScheduleCommand::Unschedule {
                asset, interval, ..
            } => (*asset, *interval),
        };
        let asset_stream = StreamId::new(context.tenant.clone(), asset);
        match &command {
            RefreshScheduleCommand::Schedule { .. } => {
                self.listed(&asset_stream)
                    .await
                    .map_err(ScheduleError::Asset)?;
            }
            // A delisted asset's schedule can still be stopped; an unknown asset has none.
            RefreshScheduleCommand::Unschedule { .. } => match self.listed(&asset_stream).await {
                Err(CommandError::Rejected(Rejection::Domain(AssetError::Delisted))) => {}
                other => other.map_err(ScheduleError::Asset)?,
            },
        }
        let name = command.name();
        let stream = StreamId::new(
            context.tenant.clone(),
            RefreshSchedule::stream_id(asset, interval),
        );
        self.schedules
            .execute(context, &stream, Guarded::new(command), name, now)
            .await
            .map_err(ScheduleError::Schedule)
    }

    /// Asks for the import of `key` from `provider`: the same asset, interval and range is
    /// always the same import, so asking again changes nothing (unless it was abandoned).
    ///
    /// # Errors
    /// [`ImportRequestError::Asset`] for an unknown or delisted asset,
    /// [`ImportRequestError::Import`] when the range is invalid or the store fails.
    pub async fn request_import(
        &self,
        context: &CommandContext,
        key: ImportKey,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, ImportRequestError> {
        self.listed(&StreamId::new(context.tenant.clone(), key.asset))
            .await
            .map_err(ImportRequestError::Asset)?;
        let command = PriceImportCommand::Request {
            key,
            provider: provider.to_owned(),
            at: now,
        };
        self.import(context, PriceImport::stream_id(&key), None, command, now)
            .await
            .map_err(ImportRequestError::Import)
    }

    /// Runs `command` on import `import` of the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn import(
        &self,
        context: &CommandContext,
        import: Uuid,
        expected_version: Option<u64>,
        command: PriceImportCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<PriceImportError>> {
        let name = command.name();
        let stream = StreamId::new(context.tenant.clone(), import);
        self.imports
            .execute(
                context,
                &stream,
                Guarded::expecting(expected_version, command),
                name,
                now,
            )
            .await
    }

    /// The current state of import `import` of `tenant`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn import_state(
        &self,
        tenant: &TenantId,
        import: Uuid,
    ) -> Result<PriceImport, CommandError<PriceImportError>> {
        let state = self
            .imports
            .load(&StreamId::new(tenant.clone(), import))
            .await?;
        Ok(state.state().clone())
    }

    /// The asset of `stream` when it is listed and not delisted.
    async fn listed(&self, stream: &StreamId) -> Result<(), CommandError<AssetError>> {
        let listed = self.assets.load(stream).await?;
        match listed.state() {
            Asset::Unlisted => Err(CommandError::Rejected(Rejection::Domain(
                AssetError::NotFound,
            ))),
            Asset::Listed { delisted: true, .. } => Err(CommandError::Rejected(Rejection::Domain(
                AssetError::Delisted,
            ))),
            Asset::Listed { .. } => Ok(()),
        }
    }

    /// Lists, renames or delists asset `asset` of the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn asset(
        &self,
        context: &CommandContext,
        asset: Uuid,
        expected_version: Option<u64>,
        command: AssetCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<AssetError>> {
        let name = command.name();
        let stream = StreamId::new(context.tenant.clone(), asset);
        self.assets
            .execute(
                context,
                &stream,
                Guarded::expecting(expected_version, command),
                name,
                now,
            )
            .await
    }

    /// Records `bars` of `asset` at `interval` reported by `source`: checked as a whole first
    /// (every bar starts an interval; a time reported twice carries the same values), then
    /// grouped by period, each group appended to its series stream in batches, earliest first.
    /// Returns the outcome of each batch, in that order (an unchanged one keeps its version).
    ///
    /// Recording is idempotent by nature: a report recorded again changes nothing, so a report
    /// cut short (a crash, a concurrent import of the same period) is completed by recording it
    /// again. The context's idempotency key, if any, is not used: one key cannot stand for
    /// several appends.
    ///
    /// # Errors
    /// [`RecordError`]: an unknown or delisted asset, or a misplaced or contradictory bar,
    /// before anything is recorded; a store failure or a concurrent append part-way.
    pub async fn record(
        &self,
        context: &CommandContext,
        asset: Uuid,
        interval: Interval,
        bars: Vec<Reported>,
        source: &ImportSource,
        now: DateTime<Utc>,
    ) -> Result<Vec<CommandOutcome>, RecordError> {
        let context = CommandContext {
            idempotency: None,
            ..context.clone()
        };
        self.listed(&StreamId::new(context.tenant.clone(), asset))
            .await
            .map_err(RecordError::Asset)?;
        let mut periods: BTreeMap<DateTime<Utc>, BTreeMap<DateTime<Utc>, Reported>> =
            BTreeMap::new();
        for reported in bars {
            let time = reported.time;
            if !interval.aligned(time) {
                return Err(invalid(PriceSeriesError::Misplaced { time, interval }));
            }
            let period = periods.entry(interval.period_of(time)).or_default();
            if period
                .insert(time, reported)
                .is_some_and(|other| other.bar != reported.bar)
            {
                return Err(invalid(PriceSeriesError::Contradictory { time }));
            }
        }
        let mut outcomes = Vec::new();
        for (period, bars) in periods {
            let key = SeriesKey {
                asset,
                interval,
                period,
            };
            let stream = StreamId::new(
                context.tenant.clone(),
                PriceSeries::stream_id(asset, interval, period),
            );
            let bars: Vec<Reported> = bars.into_values().collect();
            for chunk in bars.chunks(PriceSeries::MAX_BATCH) {
                let command = PriceSeriesCommand::Record {
                    key,
                    bars: chunk.to_vec(),
                    source: source.clone(),
                    at: now,
                };
                let name = command.name();
                let outcome = self
                    .series
                    .append(&context, &stream, Guarded::new(command), name, now)
                    .await
                    .map_err(RecordError::Series)?;
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    }
}

fn invalid(error: PriceSeriesError) -> RecordError {
    RecordError::Series(CommandError::Rejected(Rejection::Domain(error)))
}
