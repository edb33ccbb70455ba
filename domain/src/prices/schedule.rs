//! The `RefreshSchedule` aggregate: an asset's bars of one interval kept fresh by imports at a
//! fixed rhythm. One stream per asset and interval; the importer asks, every `every_minutes`,
//! for the import of the last `lookback_bars` completed bars (a refresh within the same bar is
//! the same import, so it changes nothing).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Interval;
use crate::aggregate::Decider;
use crate::error::{DomainError, ErrorKind};

/// How often and how far back a series is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rhythm {
    /// Minutes between refreshes (1 to 10080, a week).
    pub every_minutes: u32,
    /// Completed bars each refresh imports again (1 to 5000).
    pub lookback_bars: u32,
}

impl Rhythm {
    /// Whether the rhythm suits bars of `interval`: refreshes no more often than a bar
    /// completes (a refresh within one bar asks for the same import), and looking back at least
    /// as far as the time between refreshes (no completed bar is skipped).
    pub fn fits(self, interval: Interval) -> bool {
        let every = i64::from(self.every_minutes) * 60;
        every >= interval.seconds() && i64::from(self.lookback_bars) * interval.seconds() >= every
    }

    /// The longest time between refreshes, in minutes.
    pub const MAX_EVERY_MINUTES: u32 = 10_080;
    /// The most bars one refresh imports.
    pub const MAX_LOOKBACK_BARS: u32 = 5_000;

    /// A rhythm, checked.
    ///
    /// # Errors
    /// [`RefreshScheduleError::InvalidRhythm`].
    pub fn new(every_minutes: u32, lookback_bars: u32) -> Result<Self, RefreshScheduleError> {
        let valid = (1..=Self::MAX_EVERY_MINUTES).contains(&every_minutes)
            && (1..=Self::MAX_LOOKBACK_BARS).contains(&lookback_bars);
        valid
            .then_some(Self {
                every_minutes,
                lookback_bars,
            })
            .ok_or(RefreshScheduleError::InvalidRhythm)
    }
}

/// A schedule's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefreshSchedule {
    /// The rhythm, while scheduled.
    pub rhythm: Option<Rhythm>,
}

/// The namespace of [`RefreshSchedule::stream_id`]'s name-based ids. Never change it.
const SCHEDULE_NAMESPACE: Uuid = Uuid::from_u128(0x71c4_0b9e_3d52_4f8a_b6e1_0a47_c2d9_58f3);

impl RefreshSchedule {
    /// The stream of `asset`'s refresh schedule at `interval`.
    pub fn stream_id(asset: Uuid, interval: Interval) -> Uuid {
        Uuid::new_v5(
            &SCHEDULE_NAMESPACE,
            format!("{asset}/{interval}").as_bytes(),
        )
    }
}

/// What can be asked of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshScheduleCommand {
    /// Refresh the series at `rhythm` (replacing any other rhythm).
    Schedule {
        /// The asset.
        asset: Uuid,
        /// The interval.
        interval: Interval,
        /// How often and how far back.
        rhythm: Rhythm,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop refreshing it.
    Unschedule {
        /// The asset.
        asset: Uuid,
        /// The interval.
        interval: Interval,
        /// When.
        at: DateTime<Utc>,
    },
}

impl RefreshScheduleCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Schedule { .. } => "ScheduleRefresh",
            Self::Unschedule { .. } => "UnscheduleRefresh",
        }
    }
}

/// What happened to a schedule. Stored forever; the serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RefreshScheduleEvent {
    /// The series is refreshed at this rhythm from now on.
    RefreshScheduled {
        /// The asset.
        asset: Uuid,
        /// The interval.
        interval: Interval,
        /// How often and how far back.
        rhythm: Rhythm,
        /// When.
        at: DateTime<Utc>,
    },
    /// The series is no longer refreshed.
    RefreshUnscheduled {
        /// The asset.
        asset: Uuid,
        /// The interval.
        interval: Interval,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for RefreshScheduleEvent {
    fn event_type(&self) -> String {
        match self {
            Self::RefreshScheduled { .. } => "RefreshScheduled",
            Self::RefreshUnscheduled { .. } => "RefreshUnscheduled",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a schedule command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshScheduleError {
    /// Out of bounds, or not suited to the interval.
    #[error(
        "every_minutes must be 1 to 10080, at least one interval, and lookback_bars 1 to 5000, \
         covering at least every_minutes"
    )]
    InvalidRhythm,
    /// Scheduled already at this rhythm.
    #[error("the series is refreshed at this rhythm already")]
    Unchanged,
    /// Not scheduled.
    #[error("the series has no refresh schedule")]
    NotScheduled,
}

impl DomainError for RefreshScheduleError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidRhythm => ErrorKind::Invalid,
            Self::Unchanged => ErrorKind::Rejected,
            Self::NotScheduled => ErrorKind::NotFound,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRhythm => "invalid_rhythm",
            Self::Unchanged => "schedule_unchanged",
            Self::NotScheduled => "schedule_not_found",
        }
    }
}

impl Decider for RefreshSchedule {
    const TYPE: &'static str = "RefreshSchedule";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = RefreshScheduleCommand;
    type Event = RefreshScheduleEvent;
    type Error = RefreshScheduleError;

    fn decide(
        &self,
        command: RefreshScheduleCommand,
    ) -> Result<Vec<RefreshScheduleEvent>, RefreshScheduleError> {
        match command {
            RefreshScheduleCommand::Schedule { rhythm, .. } if self.rhythm == Some(rhythm) => {
                Err(RefreshScheduleError::Unchanged)
            }
            RefreshScheduleCommand::Schedule {
                interval, rhythm, ..
            } if !rhythm.fits(interval) => Err(RefreshScheduleError::InvalidRhythm),
            RefreshScheduleCommand::Schedule {
                asset,
                interval,
                rhythm,
                at,
            } => Ok(vec![RefreshScheduleEvent::RefreshScheduled {
                asset,
                interval,
                rhythm,
                at,
            }]),
            RefreshScheduleCommand::Unschedule { .. } if self.rhythm.is_none() => {
                Err(RefreshScheduleError::NotScheduled)
            }
            RefreshScheduleCommand::Unschedule {
                asset,
                interval,
                at,
            } => Ok(vec![RefreshScheduleEvent::RefreshUnscheduled {
                asset,
                interval,
                at,
            }]),
        }
    }

    fn evolve(&mut self, event: &RefreshScheduleEvent) {
        self.rhythm = match event {
            RefreshScheduleEvent::RefreshScheduled { rhythm, .. } => Some(*rhythm),
            RefreshScheduleEvent::RefreshUnscheduled { .. } => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::aggregate::{Guarded, Rejection, Versioned};

    type Given = TestFramework<Versioned<RefreshSchedule>>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
    }

    fn schedule(every_minutes: u32) -> Guarded<RefreshScheduleCommand> {
        Guarded::new(RefreshScheduleCommand::Schedule {
            asset: Uuid::from_u128(7),
            interval: Interval::Day,
            rhythm: Rhythm::new(every_minutes, 5).unwrap(),
            at: at(),
        })
    }

    fn scheduled(every_minutes: u32) -> RefreshScheduleEvent {
        RefreshScheduleEvent::RefreshScheduled {
            asset: Uuid::from_u128(7),
            interval: Interval::Day,
            rhythm: Rhythm::new(every_minutes, 5).unwrap(),
            at: at(),
        }
    }

    #[test]
    fn a_series_is_scheduled_rescheduled_and_unscheduled() {
        Given::with(())
            .given_no_previous_events()
            .when(schedule(1440))
            .then_expect_events(vec![scheduled(1440)]);
        Given::with(())
            .given(vec![scheduled(1440)])
            .when(schedule(2880))
            .then_expect_events(vec![scheduled(2880)]);
        Given::with(())
            .given(vec![scheduled(1440)])
            .when(schedule(1440))
            .then_expect_error(Rejection::Domain(RefreshScheduleError::Unchanged));
        Given::with(())
            .given(vec![scheduled(1440)])
            .when(Guarded::new(RefreshScheduleCommand::Unschedule {
                asset: Uuid::from_u128(7),
                interval: Interval::Day,
                at: at(),
            }))
            .then_expect_events(vec![RefreshScheduleEvent::RefreshUnscheduled {
                asset: Uuid::from_u128(7),
                interval: Interval::Day,
                at: at(),
            }]);
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(RefreshScheduleCommand::Unschedule {
                asset: Uuid::from_u128(7),
                interval: Interval::Day,
                at: at(),
            }))
            .then_expect_error(Rejection::Domain(RefreshScheduleError::NotScheduled));
    }

    #[test]
    fn a_rhythm_must_suit_its_interval() {
        let rhythm = |every, lookback| Rhythm::new(every, lookback).unwrap();
        assert!(rhythm(60, 48).fits(Interval::Hour));
        assert!(
            !rhythm(30, 48).fits(Interval::Hour),
            "more often than a bar completes"
        );
        assert!(
            !rhythm(60, 30).fits(Interval::Minute),
            "bars skipped between refreshes"
        );
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(RefreshScheduleCommand::Schedule {
                asset: Uuid::from_u128(7),
                interval: Interval::Hour,
                rhythm: rhythm(30, 48),
                at: at(),
            }))
            .then_expect_error(Rejection::Domain(RefreshScheduleError::InvalidRhythm));
    }

    #[test]
    fn a_rhythm_is_bounded() {
        assert!(Rhythm::new(1, 1).is_ok());
        assert!(Rhythm::new(Rhythm::MAX_EVERY_MINUTES, Rhythm::MAX_LOOKBACK_BARS).is_ok());
        for (every, lookback) in [(0, 5), (10_081, 5), (60, 0), (60, 5_001)] {
            assert_eq!(
                Rhythm::new(every, lookback),
                Err(RefreshScheduleError::InvalidRhythm)
            );
        }
    }
}
