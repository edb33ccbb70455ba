//! The `PriceSeries` aggregate: the bars of one asset, one interval and one period. A batch of
//! reported bars records the new ones, records each changed one as a correction that keeps its
//! previous values, and ignores the ones reported again unchanged. Nothing is ever removed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Bar, ImportSource, Interval};
use crate::aggregate::Decider;
use crate::error::{DomainError, ErrorKind};

/// One bar as reported: when it starts, and its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    /// The bar's start (aligned to its interval, UTC).
    pub time: DateTime<Utc>,
    /// Its values.
    pub bar: Bar,
}

/// A bar reported with values other than those recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The bar's start.
    pub time: DateTime<Utc>,
    /// The values it had.
    pub previous: Bar,
    /// The values it has now.
    pub bar: Bar,
}

/// Which series a stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The asset.
    pub asset: Uuid,
    /// The bars' interval.
    pub interval: Interval,
    /// The start of the period (see [`Interval::period_of`]).
    pub period: DateTime<Utc>,
}

/// A series' state: which series, and each bar's current values by start time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceSeries {
    /// Which series, once a bar was recorded.
    pub key: Option<SeriesKey>,
    /// The current values of every bar ever recorded.
    pub bars: BTreeMap<DateTime<Utc>, Bar>,
}

/// The namespace of [`PriceSeries::stream_id`]'s name-based ids. Never change it.
const SERIES_NAMESPACE: Uuid = Uuid::from_u128(0x5c1f_0e7a_b3d2_4a96_8e41_27f0_9d6b_c358);

impl PriceSeries {
    /// The most bars one command may report: a batch of corrections (each with its old and new
    /// values) stays well below NATS's default 1 MiB message limit (about 220 KB at 1,000).
    pub const MAX_BATCH: usize = 1_000;

    /// The stream of `asset`'s `interval` bars in the period starting at `period`.
    pub fn stream_id(asset: Uuid, interval: Interval, period: DateTime<Utc>) -> Uuid {
        let name = format!("{asset}/{interval}/{}", period.timestamp());
        Uuid::new_v5(&SERIES_NAMESPACE, name.as_bytes())
    }
}

/// What can be asked of a series.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceSeriesCommand {
    /// Record bars reported by a source: new ones are recorded, changed ones corrected,
    /// unchanged ones ignored.
    Record {
        /// Which series (every bar must fall in its period).
        key: SeriesKey,
        /// The bars, in any order; a time reported twice must carry the same values.
        bars: Vec<Reported>,
        /// Where they came from.
        source: ImportSource,
        /// When.
        at: DateTime<Utc>,
    },
}

impl PriceSeriesCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Record { .. } => "RecordBars",
        }
    }
}

/// What happened to a series. Stored forever; the serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PriceSeriesEvent {
    /// The series received its first bars.
    SeriesStarted {
        /// Which series.
        key: SeriesKey,
        /// When.
        at: DateTime<Utc>,
    },
    /// Bars never seen before were recorded, in time order.
    BarsRecorded {
        /// The bars.
        bars: Vec<Reported>,
        /// Where they came from.
        source: ImportSource,
        /// When.
        at: DateTime<Utc>,
    },
    /// Bars were reported with other values: each keeps the values it had, in time order.
    BarsCorrected {
        /// The corrections.
        corrections: Vec<Correction>,
        /// Where the new values came from.
        source: ImportSource,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PriceSeriesEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SeriesStarted { .. } => "SeriesStarted",
            Self::BarsRecorded { .. } => "BarsRecorded",
            Self::BarsCorrected { .. } => "BarsCorrected",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why bars were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceSeriesError {
    /// The command names another series than the stream holds.
    #[error("these bars belong to another series")]
    WrongSeries,
    /// A bar's time is not the start of an interval, or lies outside the period.
    #[error("the bar at {time} does not start a {interval} bar of this period")]
    Misplaced {
        /// The bar's time.
        time: DateTime<Utc>,
        /// The interval.
        interval: Interval,
    },
    /// One time reported twice with different values.
    #[error("the bar at {time} is reported twice with different values")]
    Contradictory {
        /// The bar's time.
        time: DateTime<Utc>,
    },
    /// Too many bars in one command.
    #[error("at most 1000 bars per batch")]
    TooMany,
}

impl DomainError for PriceSeriesError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::WrongSeries => ErrorKind::Conflict,
            Self::Misplaced { .. } | Self::Contradictory { .. } | Self::TooMany => {
                ErrorKind::Invalid
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::WrongSeries => "wrong_series",
            Self::Misplaced { .. } => "bar_misplaced",
            Self::Contradictory { .. } => "bars_contradictory",
            Self::TooMany => "too_many_bars",
        }
    }
}

impl Decider for PriceSeries {
    const TYPE: &'static str = "PriceSeries";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = PriceSeriesCommand;
    type Event = PriceSeriesEvent;
    type Error = PriceSeriesError;

    fn decide(
        &self,
        command: PriceSeriesCommand,
    ) -> Result<Vec<PriceSeriesEvent>, PriceSeriesError> {
        let PriceSeriesCommand::Record {
            key,
            bars,
            source,
            at,
        } = command;
        if self.key.is_some_and(|current| current != key) {
            return Err(PriceSeriesError::WrongSeries);
        }
        if bars.len() > Self::MAX_BATCH {
            return Err(PriceSeriesError::TooMany);
        }
        let mut reported: BTreeMap<DateTime<Utc>, Bar> = BTreeMap::new();
        for Reported { time, bar } in bars {
            if !key.interval.aligned(time) || key.interval.period_of(time) != key.period {
                return Err(PriceSeriesError::Misplaced {
                    time,
                    interval: key.interval,
                });
            }
            if reported.insert(time, bar).is_some_and(|other| other != bar) {
                return Err(PriceSeriesError::Contradictory { time });
            }
        }
        let mut new = Vec::new();
        let mut corrections = Vec::new();
        for (time, bar) in reported {
            match self.bars.get(&time) {
                None => new.push(Reported { time, bar }),
                Some(previous) if *previous != bar => corrections.push(Correction {
                    time,
                    previous: *previous,
                    bar,
                }),
                Some(_) => {}
            }
        }
        let mut events = Vec::new();
        if self.key.is_none() && !new.is_empty() {
            events.push(PriceSeriesEvent::SeriesStarted { key, at });
        }
        if !new.is_empty() {
            events.push(PriceSeriesEvent::BarsRecorded {
                bars: new,
                source: source.clone(),
                at,
            });
        }
        if !corrections.is_empty() {
            events.push(PriceSeriesEvent::BarsCorrected {
                corrections,
                source,
                at,
            });
        }
        Ok(events)
    }

    fn evolve(&mut self, event: &PriceSeriesEvent) {
        match event {
            PriceSeriesEvent::SeriesStarted { key, .. } => self.key = Some(*key),
            PriceSeriesEvent::BarsRecorded { bars, .. } => {
                for Reported { time, bar } in bars {
                    self.bars.insert(*time, *bar);
                }
            }
            PriceSeriesEvent::BarsCorrected { corrections, .. } => {
                for Correction { time, bar, .. } in corrections {
                    self.bars.insert(*time, *bar);
                }
            }
        }
    }
}
