//! Asset-price commands: listing, renaming and delisting assets, and recording reported bars,
//! each into the series stream of its period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection};
use domain::identity::StreamId;
use domain::prices::{
    Asset, AssetCommand, AssetError, ImportSource, Interval, PriceSeries, PriceSeriesCommand,
    PriceSeriesError, Reported, SeriesKey,
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
    /// A series refused its bars, or the store failed. Series of earlier periods are recorded;
    /// recording the same report again completes it (unchanged bars change nothing).
    #[error(transparent)]
    Series(CommandError<PriceSeriesError>),
}

/// Issues asset-price commands.
#[derive(Debug)]
pub struct PriceCommands {
    assets: CommandBus<Asset>,
    series: CommandBus<PriceSeries>,
}

impl PriceCommands {
    /// Price commands over `assets` and `series`.
    pub fn new(assets: CommandBus<Asset>, series: CommandBus<PriceSeries>) -> Self {
        Self { assets, series }
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

    /// Records `bars` of `asset` at `interval` reported by `source`: grouped by period, each
    /// group one command on its series stream, earliest period first. Returns the outcome of
    /// each series, in that order (an unchanged series keeps its version).
    ///
    /// Recording is idempotent by nature: a report recorded again changes nothing, so a retry
    /// (or a resumed import) needs no idempotency key.
    ///
    /// # Errors
    /// [`RecordError`]: an unknown or delisted asset before anything is recorded.
    pub async fn record(
        &self,
        context: &CommandContext,
        asset: Uuid,
        interval: Interval,
        bars: Vec<Reported>,
        source: &ImportSource,
        now: DateTime<Utc>,
    ) -> Result<Vec<CommandOutcome>, RecordError> {
        let listed = self
            .assets
            .load(&StreamId::new(context.tenant.clone(), asset))
            .await
            .map_err(RecordError::Asset)?;
        match listed.state() {
            Asset::Unlisted => return Err(refused(AssetError::NotFound)),
            Asset::Listed { delisted: true, .. } => return Err(refused(AssetError::Delisted)),
            Asset::Listed { .. } => {}
        }
        let mut periods: BTreeMap<DateTime<Utc>, Vec<Reported>> = BTreeMap::new();
        for reported in bars {
            periods
                .entry(interval.period_of(reported.time))
                .or_default()
                .push(reported);
        }
        let mut outcomes = Vec::with_capacity(periods.len());
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
                    .append(context, &stream, Guarded::new(command), name, now)
                    .await
                    .map_err(RecordError::Series)?;
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    }
}

fn refused(error: AssetError) -> RecordError {
    RecordError::Asset(CommandError::Rejected(Rejection::Domain(error)))
}
