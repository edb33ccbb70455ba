//! The `PriceImport` aggregate: one run that fetches an asset's bars of one interval and time
//! range from a market-data provider. Its stream follows from the asset, interval and range, so
//! the same import asked twice is the same run. Requested, it waits for the backend's importer;
//! each attempt is started with a lease (a crashed importer's attempt is taken over once the lease
//! ends), reports progress, and completes or fails; a failed attempt waits for its retry time,
//! and after the last attempt the run is abandoned until someone asks for it again.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Interval;
use crate::aggregate::Decider;
use crate::error::{DomainError, ErrorKind};

/// Which bars an import fetches: an asset's bars of one interval starting in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportKey {
    /// The asset.
    pub asset: Uuid,
    /// The bars' interval.
    pub interval: Interval,
    /// The first bar start included.
    pub from: DateTime<Utc>,
    /// The first bar start excluded.
    pub to: DateTime<Utc>,
}

/// The error of an attempt whose importer stopped reporting before its lease ended.
const LEASE_ENDED: &str = "the attempt's lease ended without a report (its importer stopped)";

/// The namespace of [`PriceImport::stream_id`]'s name-based ids. Never change it.
const IMPORT_NAMESPACE: Uuid = Uuid::from_u128(0x2d6f_93a1_54c8_4e0b_a7f2_6b19_e3c0_d845);

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportStatus {
    /// Waiting for the importer.
    Queued,
    /// An attempt runs until its lease ends (or is taken over after it).
    Running {
        /// The attempt's number, from 1.
        attempt: u32,
        /// When the attempt's lease ends.
        lease_until: DateTime<Utc>,
    },
    /// The last attempt failed; the next one is due at `retry_at`.
    Waiting {
        /// When the next attempt is due.
        retry_at: DateTime<Utc>,
    },
    /// Every bar of the range was fetched and recorded.
    Completed,
    /// The last attempt failed too; asking again starts over.
    Abandoned,
}

/// An import's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum PriceImport {
    /// Never asked for.
    #[default]
    Unrequested,
    /// Asked for.
    Requested {
        /// Which bars.
        key: ImportKey,
        /// From which provider.
        provider: String,
        /// Where it stands.
        status: ImportStatus,
        /// Attempts started so far (since it was last asked for).
        attempts: u32,
        /// Bars reported by the provider so far (since it was last asked for).
        fetched: u64,
        /// Every bar before this time is recorded: a taken-over attempt resumes here.
        recorded_until: Option<DateTime<Utc>>,
    },
}

/// What can be asked of an import.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceImportCommand {
    /// Ask for the import. Asking for one that is queued, running, waiting or completed
    /// changes nothing; an abandoned one starts over.
    Request {
        /// Which bars.
        key: ImportKey,
        /// From which provider.
        provider: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Start an attempt: the import is queued, its retry is due, or its running attempt's lease
    /// has ended (the importer running it is presumed gone). An attempt whose lease ended counts
    /// as failed: when it was the last one, the import is abandoned instead.
    Start {
        /// The attempt's lease.
        lease_until: DateTime<Utc>,
        /// How many attempts an import gets.
        max_attempts: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Report progress of the running attempt, and extend its lease.
    Progress {
        /// The attempt reporting (a taken-over attempt's reports are refused).
        attempt: u32,
        /// Bars the provider reported so far (since the import was last asked for, across
        /// attempts).
        fetched: u64,
        /// Every bar before this time is recorded.
        recorded_until: DateTime<Utc>,
        /// The attempt's lease from now on.
        lease_until: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Finish the running attempt successfully.
    Complete {
        /// The attempt finishing.
        attempt: u32,
        /// Bars the provider reported for the range (since the import was last asked for).
        fetched: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// Fail the running attempt: retried at `retry_at` unless it was the last attempt.
    Fail {
        /// The attempt failing.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// When to try again.
        retry_at: DateTime<Utc>,
        /// How many attempts an import gets.
        max_attempts: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl PriceImportCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Request { .. } => "RequestPriceImport",
            Self::Start { .. } => "StartPriceImport",
            Self::Progress { .. } => "ReportPriceImportProgress",
            Self::Complete { .. } => "CompletePriceImport",
            Self::Fail { .. } => "FailPriceImport",
        }
    }
}

/// What happened to an import. Stored forever; the serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PriceImportEvent {
    /// Asked for (again, after it was abandoned).
    ImportRequested {
        /// Which bars.
        key: ImportKey,
        /// From which provider.
        provider: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// An attempt started.
    ImportStarted {
        /// Its number, from 1.
        attempt: u32,
        /// When its lease ends.
        lease_until: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The running attempt made progress; its lease is extended.
    ImportProgressed {
        /// Bars the provider reported so far (since the import was last asked for, across
        /// attempts).
        fetched: u64,
        /// Every bar before this time is recorded.
        recorded_until: DateTime<Utc>,
        /// The attempt's lease from now on.
        lease_until: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every bar of the range was fetched and recorded.
    ImportCompleted {
        /// Bars the provider reported for the range (since the import was last asked for).
        fetched: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The running attempt failed; the next one is due at `retry_at`.
    ImportFailed {
        /// The attempt that failed.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// When the next attempt is due.
        retry_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The last attempt failed: no more attempts until it is asked for again.
    ImportAbandoned {
        /// The attempt that failed.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PriceImportEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ImportRequested { .. } => "ImportRequested",
            Self::ImportStarted { .. } => "ImportStarted",
            Self::ImportProgressed { .. } => "ImportProgressed",
            Self::ImportCompleted { .. } => "ImportCompleted",
            Self::ImportFailed { .. } => "ImportFailed",
            Self::ImportAbandoned { .. } => "ImportAbandoned",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why an import command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceImportError {
    /// No such import.
    #[error("no such import")]
    NotFound,
    /// The range is empty or not aligned to the interval.
    #[error("the range must start and end on bar starts, the start before the end")]
    InvalidRange,
    /// The import holds another range than the command names.
    #[error("this import fetches another range")]
    WrongKey,
    /// Nothing to start: the import is finished, or its attempt's retry or lease is not due.
    #[error("the import is not due for an attempt")]
    NotDue,
    /// No attempt is running, or another one than the command names (taken over).
    #[error("this attempt of the import is not running")]
    NotRunning,
}

impl DomainError for PriceImportError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::InvalidRange => ErrorKind::Invalid,
            Self::WrongKey | Self::NotDue | Self::NotRunning => ErrorKind::Conflict,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "import_not_found",
            Self::InvalidRange => "invalid_range",
            Self::WrongKey => "wrong_import",
            Self::NotDue => "import_not_due",
            Self::NotRunning => "import_not_running",
        }
    }
}

impl PriceImport {
    /// The stream of the import of `key`: the same asset, interval and range is the same run.
    pub fn stream_id(key: &ImportKey) -> Uuid {
        let name = format!(
            "{}/{}/{}/{}",
            key.asset,
            key.interval,
            key.from.timestamp(),
            key.to.timestamp()
        );
        Uuid::new_v5(&IMPORT_NAMESPACE, name.as_bytes())
    }
}

impl Decider for PriceImport {
    const TYPE: &'static str = "PriceImport";
    // 2: fetched and recorded_until kept in the state.
    const SNAPSHOT_SCHEMA: u32 = 2;
    type Command = PriceImportCommand;
    type Event = PriceImportEvent;
    type Error = PriceImportError;

    fn decide(
        &self,
        command: PriceImportCommand,
    ) -> Result<Vec<PriceImportEvent>, PriceImportError> {
        use PriceImportCommand as C;
        use PriceImportEvent as E;
        let Self::Requested {
            key: current,
            status,
            attempts,
            ..
        } = self
        else {
            return match command {
                C::Request { key, provider, at } => {
                    let valid = key.from < key.to
                        && key.interval.aligned(key.from)
                        && key.interval.aligned(key.to);
                    if !valid {
                        return Err(PriceImportError::InvalidRange);
                    }
                    Ok(vec![E::ImportRequested { key, provider, at }])
                }
                _ => Err(PriceImportError::NotFound),
            };
        };
        let event = match (command, *status) {
            (C::Request { key, .. }, _) if key != *current => {
                return Err(PriceImportError::WrongKey)
            }
            (C::Request { key, provider, at }, ImportStatus::Abandoned) => {
                E::ImportRequested { key, provider, at }
            }
            (C::Request { .. }, _) => return Ok(Vec::new()),
            (
                C::Start {
                    lease_until,
                    max_attempts,
                    at,
                },
                status,
            ) => {
                if let ImportStatus::Running {
                    attempt,
                    lease_until: ended,
                } = status
                {
                    if ended <= at && attempt >= max_attempts {
                        return Ok(vec![E::ImportAbandoned {
                            attempt,
                            error: LEASE_ENDED.to_owned(),
                            at,
                        }]);
                    }
                }
                let due = match status {
                    ImportStatus::Queued => true,
                    ImportStatus::Waiting { retry_at } => retry_at <= at,
                    ImportStatus::Running { lease_until, .. } => lease_until <= at,
                    ImportStatus::Completed | ImportStatus::Abandoned => false,
                };
                if !due {
                    return Err(PriceImportError::NotDue);
                }
                E::ImportStarted {
                    attempt: attempts + 1,
                    lease_until,
                    at,
                }
            }
            (
                C::Progress {
                    attempt,
                    fetched,
                    recorded_until,
                    lease_until,
                    at,
                },
                ImportStatus::Running {
                    attempt: running, ..
                },
            ) if attempt == running => E::ImportProgressed {
                fetched,
                recorded_until,
                lease_until,
                at,
            },
            (
                C::Complete {
                    attempt,
                    fetched,
                    at,
                },
                ImportStatus::Running {
                    attempt: running, ..
                },
            ) if attempt == running => E::ImportCompleted { fetched, at },
            (
                C::Fail {
                    attempt,
                    error,
                    retry_at,
                    max_attempts,
                    at,
                },
                ImportStatus::Running {
                    attempt: running, ..
                },
            ) if attempt == running => {
                if attempt >= max_attempts {
                    E::ImportAbandoned { attempt, error, at }
                } else {
                    E::ImportFailed {
                        attempt,
                        error,
                        retry_at,
                        at,
                    }
                }
            }
            (C::Progress { .. } | C::Complete { .. } | C::Fail { .. }, _) => {
                return Err(PriceImportError::NotRunning)
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &PriceImportEvent) {
        use PriceImportEvent as E;
        if let E::ImportRequested { key, provider, .. } = event {
            *self = Self::Requested {
                key: *key,
                provider: provider.clone(),
                status: ImportStatus::Queued,
                attempts: 0,
                fetched: 0,
                recorded_until: None,
            };
            return;
        }
        let Self::Requested {
            status,
            attempts,
            fetched: total,
            recorded_until: recorded,
            ..
        } = self
        else {
            return;
        };
        match event {
            E::ImportRequested { .. } => {}
            E::ImportProgressed {
                fetched,
                recorded_until,
                lease_until,
                ..
            } => {
                *total = *fetched;
                *recorded = Some(*recorded_until);
                if let ImportStatus::Running { attempt, .. } = *status {
                    *status = ImportStatus::Running {
                        attempt,
                        lease_until: *lease_until,
                    };
                }
            }
            E::ImportStarted {
                attempt,
                lease_until,
                ..
            } => {
                *attempts = *attempt;
                *status = ImportStatus::Running {
                    attempt: *attempt,
                    lease_until: *lease_until,
                };
            }
            E::ImportCompleted { fetched, .. } => {
                *total = *fetched;
                *status = ImportStatus::Completed;
            }
            E::ImportFailed { retry_at, .. } => {
                *status = ImportStatus::Waiting {
                    retry_at: *retry_at,
                }
            }
            E::ImportAbandoned { .. } => *status = ImportStatus::Abandoned,
        }
    }
}
