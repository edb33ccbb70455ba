//! The job process manager: turns job events into durable timers, and due timers into commands.
//!
//! Two halves, each restartable at any point:
//! - [`JobScheduler::track`] derives a job's one timer (lease expiry while claimed or running,
//!   the retry while a retry is scheduled, none otherwise) from the job's stream in the event
//!   store and upserts it into `scheduler.job_timers`, keyed by the stream version so an older
//!   derivation never overwrites a newer one. It is driven by a durable JetStream consumer, but
//!   a message is only a "this job changed" signal: the timer comes from the stored history,
//!   so redelivered, reordered or missed-then-redelivered messages all converge.
//! - [`JobScheduler::fire_due`] takes due timers (moving them briefly into the future in one
//!   statement, so several processes share the work and no lock is held while commands run),
//!   issues `ExpireLease` or `Requeue` with the triggering event as causation, and clears the
//!   timer. A stale timer (the worker sent a heartbeat after all) is
//!   refused by the aggregate, which decides with the same clock rule the timer was set by.
//!
//! A job whose stored history does not decode, or whose timer's command fails for good, is
//! parked ([`super::parked`]): its messages are acknowledged and the other jobs' timers go on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use chrono::{DateTime, Utc};
use domain::aggregate::{replay, Decider};
use domain::event::{RecordedEvent, Subjects};
use domain::identity::StreamId;
use domain::jobs::{JobCommand, JobEvent, JobStatus, TranslationJob};
use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::bus::CommandError;
use crate::feed::{self, FeedError};
use crate::jobs::{parked, JobCommands};
use crate::metadata::CommandContext;
use crate::relay::{sleep_or_cancel, Backoff};

/// Tuning of the process manager.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// The JetStream stream of events.
    pub stream: String,
    /// How its subjects are named.
    pub subjects: Subjects,
    /// How often due timers are looked for.
    pub tick: Duration,
    /// Timers fired per look.
    pub batch: i64,
}

/// Why a scheduler step failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The database failed.
    #[error("scheduler database failure")]
    Database(#[from] sqlx::Error),
    /// The job's stream could not be read.
    #[error("reading a job stream failed")]
    Feed(#[from] FeedError),
    /// A stored job event does not decode.
    #[error("job event {event_id} does not decode: {reason}")]
    Decode {
        /// The stored event.
        event_id: Uuid,
        /// The decoder's message.
        reason: String,
    },
}

impl SchedulerError {
    /// Whether retrying cannot help until the code or the data changes: the job is parked.
    pub fn parks(&self) -> bool {
        matches!(
            self,
            Self::Decode { .. } | Self::Feed(FeedError::Corrupt { .. })
        )
    }

    /// The stored event at fault, when one is.
    pub fn event_id(&self) -> Option<Uuid> {
        match self {
            Self::Decode { event_id, .. } => Some(*event_id),
            _ => None,
        }
    }

    /// The error and its causes, one line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// One timer as derived from a job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Timer {
    kind: &'static str,
    due_at: DateTime<Utc>,
    lease_id: Option<Uuid>,
    cause: Uuid,
    correlation_id: String,
}

/// A due timer as stored.
#[derive(Debug, sqlx::FromRow)]
struct DueTimer {
    aggregate_id: String,
    version: i64,
    kind: String,
    lease_id: Option<Uuid>,
    cause_event_id: Uuid,
    correlation_id: Option<String>,
}

/// The actor recorded on the commands the process manager issues.
pub const ACTOR: &str = "system:job-scheduler";

/// The job process manager.
#[derive(Debug, Clone)]
pub struct JobScheduler {
    pool: PgPool,
    jobs: Arc<JobCommands>,
    settings: SchedulerSettings,
}

impl JobScheduler {
    /// A scheduler issuing commands through `jobs`.
    pub fn new(pool: PgPool, jobs: Arc<JobCommands>, settings: SchedulerSettings) -> Self {
        Self {
            pool,
            jobs,
            settings,
        }
    }

    /// Re-derives the timer of the job stream `aggregate_id` from its stored history, parking
    /// the job when that history cannot be read.
    ///
    /// # Errors
    /// [`SchedulerError`] when retrying may help; nothing is changed then.
    pub async fn track(&self, aggregate_id: &str) -> Result<(), SchedulerError> {
        match derive_timer(&self.pool, aggregate_id).await {
            Err(error) if error.parks() => {
                parked::park(&self.pool, aggregate_id, error.event_id(), &error.chain()).await?;
                Ok(())
            }
            other => other,
        }
    }

    /// Fires every timer due at `now` (up to the batch size): issues the command and clears
    /// the timer. Returns how many fired.
    ///
    /// Timers are taken by moving them [`TAKEN_FOR`] into the future in one statement, so no
    /// lock is held (and no transaction stays open for the relay's horizon to wait on) while the
    /// commands run. Several processes take different timers; a process that dies after taking
    /// some leaves them due again once that time has passed, and firing one twice is harmless
    /// (the aggregate refuses the stale command).
    ///
    /// # Errors
    /// When the database fails; timers not cleared fire again.
    pub async fn fire_due(&self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let due: Vec<DueTimer> = sqlx::query_as(
            "UPDATE scheduler.job_timers t SET due_at = $1::timestamptz + $3::interval
               FROM (SELECT aggregate_id FROM scheduler.job_timers
                      WHERE due_at <= $1
                      ORDER BY due_at
                      LIMIT $2
                      FOR UPDATE SKIP LOCKED) due
              WHERE t.aggregate_id = due.aggregate_id
             RETURNING t.aggregate_id, t.version, t.kind, t.lease_id, t.cause_event_id,
                       t.correlation_id",
        )
        .bind(now)
        .bind(self.settings.batch)
        .bind(TAKEN_FOR)
        .fetch_all(&self.pool)
        .await?;
        let mut fired = 0;
        for timer in due {
            let (aggregate_id, version) = (timer.aggregate_id.clone(), timer.version);
            match self.fire(timer, now).await {
                Fired::Done => {
                    fired += 1;
                    clear(&self.pool, &aggregate_id, version).await?;
                }
                Fired::Stale => clear(&self.pool, &aggregate_id, version).await?,
                // Due again at once: the next tick tries it again.
                Fired::Again => due_again(&self.pool, &aggregate_id, version, now).await?,
                // A failure retrying will not cure: parked, its timer held, the others go on.
                Fired::Parked(error) => {
                    parked::park_held(&self.pool, &aggregate_id, version, &error).await?;
                }
            }
        }
        Ok(fired)
    }

    async fn fire(&self, timer: DueTimer, now: DateTime<Utc>) -> Fired {
        let DueTimer {
            aggregate_id,
            kind,
            lease_id,
            cause_event_id: cause,
            correlation_id,
            ..
        } = timer;
        let Ok(stream) = aggregate_id.parse::<StreamId>() else {
            warn!(job.stream = %aggregate_id, "timer for a malformed stream id; dropping it");
            return Fired::Stale;
        };
        let command = match (kind.as_str(), lease_id) {
            ("lease_expiry", Some(lease_id)) => JobCommand::ExpireLease { lease_id, at: now },
            _ => JobCommand::Requeue { at: now },
        };
        let context = CommandContext {
            request_id: Uuid::now_v7().to_string(),
            correlation_id: correlation_id.unwrap_or_else(|| cause.to_string()),
            causation_id: cause.to_string(),
            actor: ACTOR.to_owned(),
            tenant: stream.tenant.clone(),
            idempotency: None,
        };
        match self
            .jobs
            .execute(&context, stream.id, None, command, now)
            .await
        {
            Ok(_) => Fired::Done,
            // Stale: the job moved on (a heartbeat, a cancel); its next event re-derives.
            Err(CommandError::Rejected(_)) => Fired::Stale,
            // A concurrent command on the job: its event re-derives the timer, or we retry.
            Err(CommandError::Conflict) => Fired::Again,
            Err(error) if crate::failure::is_transient(&error) => {
                warn!(job.stream = %aggregate_id, error = %error, "firing a job timer failed; it stays due");
                Fired::Again
            }
            Err(error) => Fired::Parked(format!("firing its {kind} timer failed: {error}")),
        }
    }

    /// Runs both halves until `shutdown`: the consumer of job events, and the timer loop.
    pub async fn run(self, jetstream: jetstream::Context, shutdown: CancellationToken) {
        let consumer = {
            let this = self.clone();
            let shutdown = shutdown.clone();
            async move {
                let mut backoff = Backoff::new(Duration::from_secs(5));
                while !shutdown.is_cancelled() {
                    match this.consume(&jetstream, &shutdown).await {
                        Ok(()) => return,
                        Err(error) => {
                            warn!(error = %error, "job scheduler consumer failed; restarting");
                            sleep_or_cancel(backoff.next_wait(), &shutdown).await;
                        }
                    }
                }
            }
        };
        let timers = async {
            while !shutdown.is_cancelled() {
                if let Err(error) = self.fire_due(Utc::now()).await {
                    warn!(error = %error, "firing job timers failed; retrying");
                }
                sleep_or_cancel(self.settings.tick, &shutdown).await;
            }
        };
        tokio::join!(consumer, timers);
    }

    async fn consume(
        &self,
        jetstream: &jetstream::Context,
        shutdown: &CancellationToken,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let name = "job-scheduler";
        let stream = jetstream.get_stream(&self.settings.stream).await?;
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: self
                .settings
                .subjects
                .for_aggregate_type(TranslationJob::TYPE),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            ..Default::default()
        };
        let wanted = config.filter_subject.clone();
        let mut consumer: PullConsumer =
            stream.get_or_create_consumer(name, config.clone()).await?;
        // A consumer created before subjects had buckets filters on the old pattern: it matches
        // none of today's messages and may already have moved past some. It is replaced by one
        // that reads every job event JetStream still holds (deriving a timer again is
        // idempotent), so none it passed is missed.
        if consumer.cached_info().config.filter_subject != wanted {
            warn!("the job scheduler's consumer filtered on other subjects; reading the retained job events again");
            stream.delete_consumer(name).await?;
            consumer = stream.get_or_create_consumer(name, config).await?;
        }
        let mut batches = consumer.messages().await?.ready_chunks(256);
        info!("job scheduler consuming job events");
        loop {
            let batch = tokio::select! {
                batch = batches.next() => batch,
                () = shutdown.cancelled() => return Ok(()),
            };
            let Some(batch) = batch else {
                return Err("consumer message stream ended".into());
            };
            // Each message with the job stream it signals (a message that does not decode names
            // none: the store, not the bus, is the history, so it is acknowledged).
            let messages: Vec<_> = batch
                .into_iter()
                .filter_map(Result::ok)
                .map(|message| {
                    let stream = serde_json::from_slice::<RecordedEvent>(&message.payload)
                        .ok()
                        .map(|event| event.aggregate_id);
                    (message, stream)
                })
                .collect();
            // Many events of one job in a batch need one derivation; a job that failed for a
            // reason retrying may cure is redelivered alone.
            let streams: BTreeSet<&String> = messages
                .iter()
                .filter_map(|(_, stream)| stream.as_ref())
                .collect();
            // After a failure the rest of the batch is redelivered untried: the failure is likely
            // the database's, and each try would wait for it.
            let mut failed = BTreeSet::new();
            for stream in streams {
                if !failed.is_empty() {
                    failed.insert(stream.clone());
                } else if let Err(error) = self.track(stream).await {
                    warn!(job.stream = %stream, error = %error, "deriving a job timer failed; redelivering the rest of the batch");
                    failed.insert(stream.clone());
                }
            }
            for (message, stream) in &messages {
                let kind = if stream
                    .as_ref()
                    .is_some_and(|stream| failed.contains(stream))
                {
                    AckKind::Nak(Some(Duration::from_secs(1)))
                } else {
                    AckKind::Ack
                };
                if let Err(error) = message.ack_with(kind).await {
                    warn!(error = %error, "acknowledging a job event failed; it will be redelivered");
                }
            }
        }
    }
}

/// Derives the timer of the job stream `aggregate_id` from its stored history and stores it,
/// unless a newer derivation is stored; a stored newer derivation frees a parked job.
///
/// # Errors
/// [`SchedulerError`]; nothing is changed then.
pub(super) async fn derive_timer(pool: &PgPool, aggregate_id: &str) -> Result<(), SchedulerError> {
    let stored = feed::read_stream(pool, TranslationJob::TYPE, aggregate_id).await?;
    let Some(last) = stored.last() else {
        return Ok(());
    };
    let events = stored
        .iter()
        .map(|event| {
            serde_json::from_value::<JobEvent>(event.payload.clone()).map_err(|error| {
                SchedulerError::Decode {
                    event_id: event.event_id,
                    reason: error.to_string(),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state = replay::<TranslationJob>(&events);
    let timer = state
        .state()
        .job()
        .and_then(|job| timer_of(job.status, job.lease.as_ref(), &stored, &events));
    sqlx::query(
        "WITH derived AS (
            INSERT INTO scheduler.job_timers
                (aggregate_id, tenant_id, version, kind, due_at, lease_id, cause_event_id,
                 correlation_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (aggregate_id) DO UPDATE
               SET version = excluded.version, kind = excluded.kind, due_at = excluded.due_at,
                   lease_id = excluded.lease_id, cause_event_id = excluded.cause_event_id,
                   correlation_id = excluded.correlation_id
             WHERE job_timers.version < excluded.version
            RETURNING aggregate_id)
         DELETE FROM scheduler.parked WHERE aggregate_id IN (SELECT aggregate_id FROM derived)",
    )
    .bind(aggregate_id)
    .bind(&last.tenant_id)
    .bind(last.sequence)
    .bind(timer.as_ref().map(|timer| timer.kind))
    .bind(timer.as_ref().map(|timer| timer.due_at))
    .bind(timer.as_ref().and_then(|timer| timer.lease_id))
    .bind(timer.as_ref().map(|timer| timer.cause))
    .bind(timer.as_ref().map(|timer| timer.correlation_id.clone()))
    .execute(pool)
    .await?;
    Ok(())
}

/// The timer a job in `status` needs, with the event that set it.
fn timer_of(
    status: JobStatus,
    lease: Option<&domain::jobs::Lease>,
    stored: &[RecordedEvent],
    events: &[JobEvent],
) -> Option<Timer> {
    let cause_of = |wanted: fn(&JobEvent) -> bool| {
        stored
            .iter()
            .zip(events)
            .rev()
            .find(|(_, event)| wanted(event))
            .map(|(stored, _)| stored)
    };
    let (kind, due_at, lease_id, cause) = match (status, lease) {
        (JobStatus::Claimed | JobStatus::Running, Some(lease)) => (
            "lease_expiry",
            lease.expires_at,
            Some(lease.lease_id),
            cause_of(|event| {
                matches!(
                    event,
                    JobEvent::JobClaimed { .. } | JobEvent::LeaseExtended { .. }
                )
            })?,
        ),
        (JobStatus::RetryScheduled { due_at }, _) => (
            "retry",
            due_at,
            None,
            cause_of(|event| matches!(event, JobEvent::RetryScheduled { .. }))?,
        ),
        _ => return None,
    };
    Some(Timer {
        kind,
        due_at,
        lease_id,
        cause: cause.event_id,
        correlation_id: cause.metadata.correlation_id.clone(),
    })
}

/// How long a taken timer stays out of other processes' reach while its command runs.
const TAKEN_FOR: Duration = Duration::from_secs(30);

/// What firing one timer came to.
enum Fired {
    /// The command was accepted.
    Done,
    /// The job moved on (or the timer is unusable): nothing to fire.
    Stale,
    /// It could not be decided now: due again at once.
    Again,
    /// It failed in a way retrying soon will not cure (an event that does not decode): the job
    /// is parked with this reason and its timer held for a while.
    Parked(String),
}

/// Clears the timer of version `version` (a newer derivation is left alone).
async fn clear(pool: &PgPool, aggregate_id: &str, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler.job_timers SET kind = NULL, due_at = NULL
          WHERE aggregate_id = $1 AND version = $2",
    )
    .bind(aggregate_id)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes a taken timer of version `version` due at `now` again.
async fn due_again(
    pool: &PgPool,
    aggregate_id: &str,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler.job_timers SET due_at = $3
          WHERE aggregate_id = $1 AND version = $2 AND kind IS NOT NULL",
    )
    .bind(aggregate_id)
    .bind(version)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
