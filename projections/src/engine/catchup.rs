//! Catching a partition up from the event store when JetStream forgot messages it never read.
//!
//! Gap filling ([`super::gaps`]) starts only when a later message of a stream arrives and finds
//! its predecessor missing. But a partition whose durable consumer fell behind the bus's
//! retention (the projection was stopped for longer than `max_age`, or the stream was purged)
//! also loses messages whose streams never get a later event: JetStream simply continues at its
//! first retained message, and nothing would ever show that those streams' last events were not
//! applied. So a partition watches the retention itself. It keeps a floor: a stream sequence up
//! to which it has certainly processed every message it was meant to. Whenever the stream's
//! first retained sequence moves past `floor + 1`, messages it never processed may have expired,
//! and it catches up from the store: every stream of the partition whose stored head is above
//! what its guard applied, and that is not parked, is filled through [`fill_from_store`], exactly
//! like a gap.
//!
//! Where the floor comes from when a consumer (re)starts. The consumer's own ack floor is not
//! enough: a purge moves a durable consumer's floors up to the purge point, hiding everything it
//! never read. Postgres keeps a second account, written in the same transactions as the read
//! model: the furthest bus position the partition applied (its progress row) and the position
//! the projection's first build covered (the checkpoint's consumer start). Each account can
//! overstate in its own way (the consumer's after a purge, the progress row's when the number of
//! partitions changed), so the floor is the lower of the two. A consumer created just now has
//! no history: its floor is just before the position it was created at. While consuming, the
//! floor is the highest position seen, held down by any message held back for redelivery: a
//! held-back message that expires is lost as surely as one never delivered.
//!
//! A catch-up notes the bus's last sequence before it reads the store and afterwards takes it as
//! the floor (in memory and in the progress row): every message up to it carries an event the
//! relay had read from the gap-free feed, so one that had committed and that the catch-up saw
//! (the argument of a first build, see [`super::startup`]). So a partition catches up at most
//! once per retention window, and one caught up needlessly (an understated floor) costs a query,
//! never correctness.

use std::collections::BTreeSet;

use async_nats::jetstream::consumer;
use sqlx::PgPool;
use tracing::error;

use super::gaps::fill_from_store;
use super::source::error_chain;
use super::{partition_of, ApplyError, EventSource, LaneProgress, Projection};
use crate::status;

/// How far along the bus one partition has certainly read.
#[derive(Debug, Clone, Default)]
pub(super) struct Floor {
    /// Every message up to this stream sequence was processed, or is held back below.
    through: u64,
    /// Stream sequences of messages delivered and held back for redelivery.
    held: BTreeSet<u64>,
}

impl Floor {
    /// The floor of a consumer (re)starting: `existing` is its info if it existed before,
    /// `start` the stream sequence it is (or was) created to start at.
    ///
    /// # Errors
    /// When the database fails.
    pub(super) async fn starting(
        pool: &PgPool,
        projection: &str,
        partition: u32,
        existing: Option<&consumer::Info>,
        start: u64,
    ) -> Result<Self, sqlx::Error> {
        let created_at = start.saturating_sub(1);
        let through = match existing {
            None => created_at,
            Some(info) => {
                let applied: Option<i64> = sqlx::query_scalar(
                    "SELECT last_stream_sequence FROM projection.progress
                      WHERE projection = $1 AND lane = $2",
                )
                .bind(projection)
                .bind(partition as i32)
                .fetch_optional(pool)
                .await?;
                let recorded = created_at.max(applied.unwrap_or(0).max(0) as u64);
                info.ack_floor.stream_sequence.min(recorded)
            }
        };
        Ok(Self {
            through,
            held: BTreeSet::new(),
        })
    }

    /// The message at `sequence` was processed (applied, dropped, parked, or not this
    /// partition's).
    pub(super) fn released(&mut self, sequence: u64) {
        self.through = self.through.max(sequence);
        self.held.remove(&sequence);
    }

    /// The message at `sequence` was held back for redelivery.
    pub(super) fn held(&mut self, sequence: u64) {
        self.through = self.through.max(sequence);
        if sequence > 0 {
            self.held.insert(sequence);
        }
    }

    /// The stream sequence up to which nothing can be lost.
    pub(super) fn position(&self) -> u64 {
        match self.held.first() {
            Some(held) => self.through.min(held - 1),
            None => self.through,
        }
    }

    /// Whether JetStream, now retaining from `first_sequence` on, dropped messages this
    /// partition may never have processed.
    pub(super) fn behind(&self, first_sequence: u64) -> bool {
        first_sequence > self.position() + 1
    }

    /// After a catch-up that noted the bus at `last_sequence` before reading the store, and
    /// found it retaining from `first_sequence` on: held-back messages that expired are covered.
    pub(super) fn caught_up(&mut self, last_sequence: u64, first_sequence: u64) {
        self.through = self.through.max(last_sequence);
        self.held = self.held.split_off(&first_sequence);
    }
}

/// Catches `partition` (of `partitions`) up from the store: fills every stream of it whose
/// stored head is above what the guard applied, unless it is parked (its retry reads the store).
/// `noted` is the bus's last sequence, noted before this read of the store; the partition's
/// progress row records it as read. Returns the streams filled.
///
/// A stream the store cannot be read for, for good (a row this build cannot decode), has no
/// event at hand to park: it is reported as an error and stays visible as behind in the
/// projection's status and `projections verify`.
///
/// # Errors
/// On transient failures; the catch-up is then tried again.
pub(super) async fn catch_up<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    partition: u32,
    partitions: u32,
    noted: u64,
) -> Result<usize, ApplyError> {
    let name = projection.name();
    let behind = status::verify(pool, name, projection.aggregate_types()).await?;
    let mut filled = 0;
    for stream in behind.iter().filter(|stream| {
        stream.stored > stream.applied
            && !stream.parked
            && partition_of(&stream.aggregate_id, partitions) == partition
    }) {
        let key = (stream.aggregate_type.as_str(), stream.aggregate_id.as_str());
        match fill_from_store(projection, pool, source, partition, key, &[]).await {
            Ok(_) => filled += 1,
            Err(failure) if failure.is_transient() => return Err(failure),
            Err(failure) => {
                error!(projection = name, stream = %stream.aggregate_id,
                    missing = ?stream.missing(), error = error_chain(&failure),
                    "a stream JetStream no longer holds cannot be read from the event store \
                     either; it stays behind");
            }
        }
    }
    let mut connection = pool.acquire().await?;
    LaneProgress {
        last_stream_sequence: noted as i64,
        ..LaneProgress::default()
    }
    .record(&mut connection, name, partition)
    .await?;
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::Floor;

    fn floor(through: u64) -> Floor {
        Floor {
            through,
            ..Floor::default()
        }
    }

    #[test]
    fn a_partition_is_behind_only_when_retention_passed_what_it_processed() {
        let mut floor = floor(10);
        assert!(!floor.behind(0), "an empty stream drops nothing");
        assert!(!floor.behind(11), "everything before 11 was processed");
        assert!(floor.behind(12), "message 11 expired unread");
        floor.released(20);
        assert!(!floor.behind(21));
    }

    #[test]
    fn a_held_back_message_that_expires_puts_the_partition_behind() {
        let mut floor = floor(10);
        floor.held(12);
        floor.released(13);
        assert_eq!(floor.position(), 11);
        assert!(!floor.behind(12), "message 12 is still retained");
        assert!(floor.behind(13), "message 12 expired before its redelivery");
        floor.released(12);
        assert!(!floor.behind(14), "redelivered and processed");
    }

    #[test]
    fn a_catch_up_covers_what_the_bus_held_when_it_read_the_store() {
        let mut floor = floor(10);
        floor.held(12);
        floor.held(30);
        floor.caught_up(40, 20);
        assert_eq!(
            floor.position(),
            29,
            "message 30 is retained and still held"
        );
        floor.released(30);
        assert_eq!(floor.position(), 40);
        assert!(!floor.behind(41));
        assert!(floor.behind(42));
    }
}
