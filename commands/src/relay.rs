//! The relay: publishes the global feed to JetStream, exactly as stored, never skipping.
//!
//! One step ([`Relay::relay_once`]) reads a batch after the checkpoint, publishes every event
//! with a deterministic `Nats-Msg-Id`, awaits every acknowledgement, and only then moves the
//! checkpoint. A crash at any point re-publishes from the old checkpoint: JetStream's duplicate
//! window drops the repeats, and the projections' per-stream guard drops anything older.
//!
//! [`Relay::run`] wraps the step in a loop with leader election (a Postgres advisory lock held on
//! a dedicated connection: when the process or its connection dies, the lock is released and a
//! standby takes over), wake-ups on commit, a polling fallback, and backoff on failure.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use domain::event::RecordedEvent;
use futures::future::try_join_all;
use sqlx::{Acquire, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::feed::{self, FeedCursor, FeedError};
use crate::jetstream::StreamSettings;

/// Tuning of the relay loop.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Events read and published per step.
    pub batch_size: i64,
    /// Fallback wake-up when no commit pokes the relay (other processes write too).
    pub poll_interval: Duration,
    /// Wait before retrying while the transaction horizon holds committed events back.
    pub horizon_retry: Duration,
    /// Longest wait between retries after failures.
    pub max_backoff: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(250),
            horizon_retry: Duration::from_millis(5),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A failure injected on purpose, to prove the relay survives crashes at the worst moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFault {
    /// Stop after every publish was acknowledged, before the checkpoint moves.
    AfterPublishBeforeCheckpoint,
}

/// What one relay step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayOutcome {
    /// Events published (including ones JetStream reported as duplicates).
    pub published: usize,
    /// Of those, the ones JetStream had already stored.
    pub duplicates: usize,
    /// Committed events waiting behind an older open transaction (counted only when idle).
    pub held_by_horizon: i64,
    /// Whether more is probably waiting: the batch was full, or events settled after a read
    /// that returned none.
    pub more: bool,
}

/// Why a relay step failed. Every failure leaves the checkpoint where it was.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading the feed or writing the checkpoint failed.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// Writing the checkpoint failed.
    #[error("relay checkpoint failed")]
    Checkpoint(#[from] sqlx::Error),
    /// A publish was not acknowledged.
    #[error("publishing to JetStream failed")]
    Publish(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An event could not be serialized.
    #[error("event cannot be serialized")]
    Serialize(#[from] serde_json::Error),
    /// A fault injected by a test.
    #[error("injected fault: {0:?}")]
    Injected(RelayFault),
}

/// Publishes the event store's feed to one JetStream stream.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    settings: RelaySettings,
}

impl Relay {
    /// A relay from the store behind `pool` to `stream`.
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        stream: StreamSettings,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pool,
            jetstream,
            stream,
            settings,
        }
    }

    /// One step: read a batch after the checkpoint, publish it, await the acks, checkpoint.
    ///
    /// # Errors
    /// [`RelayError`]; the checkpoint has not moved and the next step re-publishes.
    pub async fn relay_once(&self, fault: Option<RelayFault>) -> Result<RelayOutcome, RelayError> {
        let cursor = self.checkpoint().await?;
        self.step(cursor, fault).await.map(|(outcome, _)| outcome)
    }

    /// [`Relay::relay_once`] from a known checkpoint; returns the checkpoint after the step.
    async fn step(
        &self,
        cursor: FeedCursor,
        fault: Option<RelayFault>,
    ) -> Result<(RelayOutcome, FeedCursor), RelayError> {
        let events = feed::read(&self.pool, cursor, self.settings.batch_size).await?;
        let Some(last) = events.last() else {
            // Events that settled between the read and this count are held by nothing, but
            // unread: the wake-up their commit sent was spent on this step, so the relay reads
            // again at once instead of sleeping on them.
            let (held_by_horizon, after) = feed::after_cursor(&self.pool, cursor).await?;
            let outcome = RelayOutcome {
                held_by_horizon,
                more: after > held_by_horizon,
                ..RelayOutcome::default()
            };
            return Ok((outcome, cursor));
        };
        let next = FeedCursor::after(last);
        let duplicates = self.publish(&events).await?;
        if fault == Some(RelayFault::AfterPublishBeforeCheckpoint) {
            return Err(RelayError::Injected(
                RelayFault::AfterPublishBeforeCheckpoint,
            ));
        }
        self.save_checkpoint(next, events.len()).await?;
        debug!(
            relay.published = events.len(),
            relay.duplicates = duplicates,
            "relayed batch"
        );
        let outcome = RelayOutcome {
            published: events.len(),
            duplicates,
            held_by_horizon: 0,
            more: events.len() as i64 >= self.settings.batch_size,
        };
        Ok((outcome, next))
    }

    /// Publishes every event (pipelined) and waits for every acknowledgement.
    async fn publish(&self, events: &[RecordedEvent]) -> Result<usize, RelayError> {
        let publish_error = |e: Box<dyn std::error::Error + Send + Sync>| RelayError::Publish(e);
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            let ack = self
                .jetstream
                .publish_with_headers(
                    self.stream.subjects.for_event(event),
                    headers(event),
                    serde_json::to_vec(event)?.into(),
                )
                .await
                .map_err(|e| publish_error(Box::new(e)))?;
            pending.push(ack.into_future());
        }
        let acks = try_join_all(pending)
            .await
            .map_err(|e| publish_error(Box::new(e)))?;
        Ok(acks.iter().filter(|ack| ack.duplicate).count())
    }

    /// Where the relay is (the start of the feed if it never ran).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn checkpoint(&self) -> Result<FeedCursor, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position
               FROM projection.relay_checkpoints WHERE stream = $1",
        )
        .bind(&self.stream.name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .and_then(|(transaction_id, global_position)| {
                Some(FeedCursor {
                    transaction_id: transaction_id.parse().ok()?,
                    global_position,
                })
            })
            .unwrap_or_default())
    }

    async fn save_checkpoint(&self, cursor: FeedCursor, relayed: usize) -> Result<(), sqlx::Error> {
        // Never move backwards: a relay that lost its lock without noticing may still finish a
        // step after its successor went further.
        sqlx::query(
            "INSERT INTO projection.relay_checkpoints AS c
                    (stream, transaction_id, global_position, events_relayed)
             VALUES ($1, $2::text::xid8, $3, $4)
             ON CONFLICT (stream) DO UPDATE
                SET transaction_id = EXCLUDED.transaction_id,
                    global_position = EXCLUDED.global_position,
                    events_relayed = c.events_relayed + EXCLUDED.events_relayed,
                    updated_at = clock_timestamp()
              WHERE (c.transaction_id, c.global_position)
                  < (EXCLUDED.transaction_id, EXCLUDED.global_position)",
        )
        .bind(&self.stream.name)
        .bind(cursor.transaction_id.to_string())
        .bind(cursor.global_position)
        .bind(relayed as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs until `shutdown`: waits to be elected, then relays, woken by `wakeup` or by the
    /// poll interval.
    pub async fn run(self, wakeup: Arc<Notify>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.settings.max_backoff);
        while !shutdown.is_cancelled() {
            let mut leadership = match self.elect().await {
                Ok(Some(connection)) => connection,
                Ok(None) => {
                    sleep_or_cancel(self.settings.poll_interval * 4, &shutdown).await;
                    continue;
                }
                Err(error) => {
                    warn!(error = %error, "relay election failed");
                    sleep_or_cancel(backoff.next_wait(), &shutdown).await;
                    continue;
                }
            };
            info!(stream = %self.stream.name, "relay elected leader");
            self.lead(&mut leadership, &wakeup, &shutdown, &mut backoff)
                .await;
        }
    }

    async fn lead(
        &self,
        leadership: &mut PgConnection,
        wakeup: &Notify,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) {
        let mut since_lock_check = tokio::time::Instant::now();
        // The leader is the only writer of the checkpoint, so it reads it once and then keeps
        // it in memory; after a failure it reads it again.
        let mut checkpoint = None;
        while !shutdown.is_cancelled() {
            if since_lock_check.elapsed() > Duration::from_secs(5) {
                // The lock lives as long as this connection; if it died, so did leadership.
                if let Err(error) = sqlx::query("SELECT 1").execute(&mut *leadership).await {
                    warn!(error = %error, "relay lost its leadership connection");
                    return;
                }
                since_lock_check = tokio::time::Instant::now();
            }
            let step = async {
                let cursor = match checkpoint {
                    Some(cursor) => cursor,
                    None => self.checkpoint().await?,
                };
                self.step(cursor, None).await
            };
            match step.await {
                Ok((outcome, next)) => {
                    checkpoint = Some(next);
                    backoff.reset();
                    if outcome.more {
                        continue;
                    }
                    let wait = if outcome.held_by_horizon > 0 {
                        self.settings.horizon_retry
                    } else {
                        self.settings.poll_interval
                    };
                    tokio::select! {
                        () = wakeup.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                Err(error) => {
                    checkpoint = None;
                    warn!(error = %error, source = ?std::error::Error::source(&error), "relay step failed; retrying");
                    sleep_or_cancel(backoff.next_wait(), shutdown).await;
                }
            }
        }
    }

    /// Tries to become the one active relay for this stream. The returned connection holds the
    /// advisory lock; dropping it releases leadership.
    async fn elect(&self) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut connection = self.pool.acquire().await?.detach();
        let elected: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("relay:{}", self.stream.name))
                .fetch_one(connection.acquire().await?)
                .await?;
        Ok(elected.then_some(connection))
    }
}

fn headers(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.message_id().as_str());
    headers.insert("Event-Type", event.event_type.as_str());
    headers.insert("Tenant-Id", event.tenant_id.as_str());
    headers.insert("Request-Id", event.metadata.request_id.as_str());
    headers.insert("Correlation-Id", event.metadata.correlation_id.as_str());
    headers.insert("Causation-Id", event.metadata.causation_id.as_str());
    headers
}

pub(crate) async fn sleep_or_cancel(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}

/// Exponential backoff from 50 ms up to a ceiling.
#[derive(Debug)]
pub struct Backoff {
    current: Duration,
    max: Duration,
}

impl Backoff {
    const START: Duration = Duration::from_millis(50);

    /// A backoff that never waits longer than `max`.
    pub fn new(max: Duration) -> Self {
        Self {
            current: Self::START,
            max,
        }
    }

    /// The next wait; doubles each time.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.current;
        self.current = (self.current * 2).min(self.max);
        wait
    }

    /// Back to the shortest wait after a success.
    pub fn reset(&mut self) {
        self.current = Self::START;
    }
}
