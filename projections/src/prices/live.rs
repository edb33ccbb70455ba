//! New and corrected bars as they are recorded: what `GET /api/v1/assets/{id}/bars/live`
//! streams, one notice per stored event of a series (a recording's new bars, or its corrections
//! with the values they replaced; a recording that does both, or spans several series, makes
//! one notice of each).
//!
//! Only a series' first event names its asset and interval; the process's hub
//! ([`crate::live::LiveHub`]) remembers the series it has seen start and reads the others' first
//! event from the event store (by primary key; never waiting for a projection, which may lag:
//! one slow lookup would hold every follower of the hub).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::event::Subjects;
use domain::identity::{StreamId, TenantId};
use domain::prices::{Bar, Interval, PriceSeries, PriceSeriesEvent};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::engine::BoxError;
use crate::live::{self as hub, Bus, BusUnavailable, Delivered, LiveFeed, LiveMessage, Prepare, Prepared};

/// A bar's values as exact decimal text, without trailing zeros (as the bar queries answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveBarValues {
    /// The first price.
    pub open: String,
    /// The highest price.
    pub high: String,
    /// The lowest price.
    pub low: String,
    /// The last price.
    pub close: String,
    /// The volume traded.
    pub volume: String,
}

impl From<&Bar> for LiveBarValues {
    fn from(bar: &Bar) -> Self {
        Self {
            open: bar.open.normalize().to_string(),
            high: bar.high.normalize().to_string(),
            low: bar.low.normalize().to_string(),
            close: bar.close.normalize().to_string(),
            volume: bar.volume.normalize().to_string(),
        }
    }
}

/// One bar of a notice: when it starts, its values now, and for a correction the values it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveBar {
    /// When it starts.
    pub time: DateTime<Utc>,
    /// Its values now.
    #[serde(flatten)]
    pub values: LiveBarValues,
    /// For a correction, the values it replaced; absent for a new bar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<LiveBarValues>,
}

/// What a recording did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BarsChange {
    /// Bars never seen before.
    Recorded,
    /// Bars reported again with other values.
    Corrected,
}

/// One recording of an asset's bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BarsNotice {
    /// The asset.
    pub asset_id: Uuid,
    /// The bars' interval (`1min` … `1day`).
    pub interval: String,
    /// New bars or corrections.
    pub change: BarsChange,
    /// The bars, earliest first.
    pub bars: Vec<LiveBar>,
    /// Who reported them: a provider's name, or `api` for bars recorded over HTTP.
    pub provider: String,
    /// The import run (or recording request) that reported them.
    pub import_id: Uuid,
    /// When they were recorded.
    pub at: DateTime<Utc>,
}

/// A notice as every live client is sent it.
pub type PreparedBars = LiveMessage<BarsNotice>;

/// Which series a stream holds: its asset and interval.
type SeriesOf = (Uuid, Interval);

/// Series remembered before the memory starts over.
const SERIES_REMEMBERED: usize = 100_000;

/// Makes [`PreparedBars`] of series events, remembering which asset and interval each series
/// holds.
#[derive(Debug, Clone)]
pub struct BarUpdates {
    store: PgPool,
    series: HashMap<Uuid, SeriesOf>,
}

impl BarUpdates {
    /// Updates whose series' first events are read, when needed, from the event store through
    /// `store` (the primary: an event relayed is committed there).
    pub fn new(store: PgPool) -> Self {
        Self {
            store,
            series: HashMap::new(),
        }
    }

    /// The asset and interval of the series in `stream`, from its first event.
    async fn series_of(&mut self, stream: &StreamId) -> Result<Option<SeriesOf>, BoxError> {
        if let Some(known) = self.series.get(&stream.id) {
            return Ok(Some(*known));
        }
        let first: Option<Json<PriceSeriesEvent>> = sqlx::query_scalar(
            "SELECT payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1",
        )
        .bind(PriceSeries::TYPE)
        .bind(stream.to_string())
        .fetch_optional(&self.store)
        .await?;
        let Some(Json(PriceSeriesEvent::SeriesStarted { key, .. })) = first else {
            return Ok(None);
        };
        self.remember(stream.id, (key.asset, key.interval));
        Ok(Some((key.asset, key.interval)))
    }

    fn remember(&mut self, series: Uuid, of: SeriesOf) {
        if self.series.len() >= SERIES_REMEMBERED {
            self.series.clear();
        }
        self.series.insert(series, of);
    }
}

impl Prepare for BarUpdates {
    type Item = PreparedBars;

    fn prepare(&mut self, delivered: Delivered) -> BoxFuture<'_, Prepared<PreparedBars>> {
        Box::pin(async move {
            let event = &delivered.event;
            if event.aggregate_type != PriceSeries::TYPE {
                return Prepared::Skip;
            }
            let Ok(stream) = event.aggregate_id.parse::<StreamId>() else {
                return Prepared::Skip;
            };
            let Ok(payload) = serde_json::from_value::<PriceSeriesEvent>(event.payload.clone())
            else {
                return Prepared::Skip;
            };
            if let PriceSeriesEvent::SeriesStarted { key, .. } = &payload {
                self.remember(stream.id, (key.asset, key.interval));
                return Prepared::Skip;
            }
            // Without its asset a notice cannot be filtered: followers stop before it rather
            // than skip it.
            let Ok(Some(series)) = self.series_of(&stream).await else {
                return Prepared::Failed;
            };
            match notice_of(series, payload) {
                Some(notice) => LiveMessage::prepared(delivered.sequence, stream.tenant, notice),
                None => Prepared::Skip,
            }
        })
    }
}

/// The notice a series event makes, for the series of `(asset, interval)`.
fn notice_of((asset, interval): SeriesOf, payload: PriceSeriesEvent) -> Option<BarsNotice> {
    let (change, bars, source, at) = match payload {
        PriceSeriesEvent::SeriesStarted { .. } => return None,
        PriceSeriesEvent::BarsRecorded { bars, source, at } => {
            let bars = bars
                .iter()
                .map(|reported| LiveBar {
                    time: reported.time,
                    values: (&reported.bar).into(),
                    previous: None,
                })
                .collect();
            (BarsChange::Recorded, bars, source, at)
        }
        PriceSeriesEvent::BarsCorrected {
            corrections,
            source,
            at,
        } => {
            let bars = corrections
                .iter()
                .map(|correction| LiveBar {
                    time: correction.time,
                    values: (&correction.bar).into(),
                    previous: Some((&correction.previous).into()),
                })
                .collect();
            (BarsChange::Corrected, bars, source, at)
        }
    };
    Some(BarsNotice {
        asset_id: asset,
        interval: interval.as_str().to_owned(),
        change,
        bars,
        provider: source.provider,
        import_id: source.import_id,
        at,
    })
}

/// What the process's hub for bars follows: every tenant's series events.
pub fn hub_subjects(subject_prefix: &str) -> Vec<String> {
    vec![Subjects::new(subject_prefix).for_aggregate_type(PriceSeries::TYPE)]
}

/// What a live feed of bars follows: one asset's bars, of one interval or of every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// The asset.
    pub asset: Uuid,
    /// Only bars of this interval, when given.
    pub interval: Option<Interval>,
}

/// Follows `watch` within `tenant`, after notice `resume_after` (or from now). The caller has
/// authorized the watch and checked that the asset exists.
///
/// # Errors
/// [`BusUnavailable`] when the stream cannot be read.
pub async fn follow(
    bus: Bus<'_, BarUpdates>,
    subject_prefix: &str,
    tenant: TenantId,
    watch: Watch,
    resume_after: Option<u64>,
) -> Result<LiveFeed<PreparedBars>, BusUnavailable> {
    let filters =
        vec![Subjects::new(subject_prefix).for_tenant_type(tenant.as_str(), PriceSeries::TYPE)];
    hub::follow(bus, filters, resume_after, move |prepared| {
        watches(&tenant, watch, prepared)
    })
    .await
}

/// Whether `watch` in `tenant` follows the notice.
fn watches(tenant: &TenantId, watch: Watch, prepared: &PreparedBars) -> bool {
    let notice = &prepared.item;
    prepared.tenant == *tenant
        && notice.asset_id == watch.asset
        && watch
            .interval
            .is_none_or(|interval| notice.interval == interval.as_str())
}

#[cfg(test)]
mod tests {
    use domain::prices::{parse_decimal, Correction, ImportSource, Reported};

    use super::*;

    fn bar(close: &str) -> Bar {
        let price = parse_decimal(close).unwrap();
        Bar {
            open: price,
            high: price,
            low: price,
            close: price,
            volume: parse_decimal("1.5").unwrap(),
        }
    }

    #[test]
    fn recordings_and_corrections_make_notices_and_a_start_makes_none() {
        let (asset, import) = (Uuid::new_v4(), Uuid::new_v4());
        let source = ImportSource {
            provider: "api".to_owned(),
            import_id: import,
        };
        let time = DateTime::<Utc>::from_timestamp(86_400, 0).unwrap();
        let series = (asset, Interval::Day);
        let recorded = PriceSeriesEvent::BarsRecorded {
            bars: vec![Reported { time, bar: bar("10") }],
            source: source.clone(),
            at: time,
        };
        let notice = notice_of(series, recorded).unwrap();
        assert_eq!(
            (notice.asset_id, notice.interval.as_str(), notice.change),
            (asset, "1day", BarsChange::Recorded)
        );
        assert_eq!(notice.bars[0].values.close, "10");
        assert_eq!(notice.bars[0].values.volume, "1.5");
        let rendered = serde_json::to_value(&notice).unwrap();
        assert_eq!(rendered["bars"][0]["close"], "10");
        assert!(rendered["bars"][0].get("previous").is_none(), "{rendered}");

        let corrected = PriceSeriesEvent::BarsCorrected {
            corrections: vec![Correction {
                time,
                previous: bar("10"),
                bar: bar("11"),
            }],
            source,
            at: time,
        };
        let notice = notice_of(series, corrected).unwrap();
        assert_eq!(notice.change, BarsChange::Corrected);
        assert_eq!(notice.bars[0].values.close, "11");
        assert_eq!(notice.bars[0].previous.as_ref().unwrap().close, "10");

        let key = domain::prices::SeriesKey {
            asset,
            interval: Interval::Day,
            period: time,
        };
        let started = PriceSeriesEvent::SeriesStarted { key, at: time };
        assert_eq!(notice_of(series, started), None);
    }

    #[test]
    fn a_watch_follows_its_own_tenant_asset_and_interval() {
        let asset = Uuid::new_v4();
        let acme = TenantId::parse("acme").unwrap();
        let prepared = |tenant: &str, asset_id, interval: Interval| PreparedBars {
            id: 1,
            tenant: TenantId::parse(tenant).unwrap(),
            item: BarsNotice {
                asset_id,
                interval: interval.as_str().to_owned(),
                change: BarsChange::Recorded,
                bars: Vec::new(),
                provider: "api".to_owned(),
                import_id: Uuid::new_v4(),
                at: Utc::now(),
            },
            json: String::new(),
        };
        let daily = prepared("acme", asset, Interval::Day);
        let hourly = prepared("acme", asset, Interval::Hour);
        let elsewhere = prepared("globex", asset, Interval::Day);
        let other_asset = prepared("acme", Uuid::new_v4(), Interval::Day);

        let every = Watch {
            asset,
            interval: None,
        };
        assert!(watches(&acme, every, &daily) && watches(&acme, every, &hourly));
        assert!(!watches(&acme, every, &elsewhere));
        assert!(!watches(&acme, every, &other_asset));
        let days = Watch {
            asset,
            interval: Some(Interval::Day),
        };
        assert!(watches(&acme, days, &daily));
        assert!(!watches(&acme, days, &hourly));
    }
}
