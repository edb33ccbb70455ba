//! Projection health for probes and scrapes, computed from counters that already exist: what
//! each partition's durable JetStream consumer still has to deliver or to see acknowledged, the
//! parked streams, and the lanes' progress. Nothing here reads the event store, so a probe or a
//! scrape costs the same whatever the store's size. (The exact, store-backed comparison is
//! [`crate::status`], for the admin overview and the completeness check.)

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::engine::{consumer_name, BoxError};

/// The health of one projection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectionHealth {
    /// The projection.
    pub name: String,
    /// Messages not acknowledged yet: the largest backlog of its partitions' consumers (each
    /// consumer is offered every message of the projection's streams and keeps its partition's).
    pub pending_messages: u64,
    /// The same per partition; absent for a partition whose consumer was never created.
    pub partitions: Vec<PartitionHealth>,
    /// Streams parked by a poison event (system-wide count; no ids).
    pub parked_streams: i64,
    /// Events applied since it started (rebuilds start again).
    pub events_applied: i64,
    /// When it last committed a batch.
    pub updated_at: Option<DateTime<Utc>>,
}

/// One partition's consumer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionHealth {
    /// The partition.
    pub partition: u32,
    /// Messages not yet delivered plus delivered but not yet acknowledged.
    pub pending_messages: u64,
}

impl ProjectionHealth {
    /// Whether anything needs attention: a parked stream, or more than `max_pending` messages
    /// waiting.
    pub fn problems(&self, max_pending: u64) -> Vec<String> {
        let mut problems = Vec::new();
        if self.parked_streams > 0 {
            problems.push(format!("{} parked streams", self.parked_streams));
        }
        if self.pending_messages > max_pending {
            problems.push(format!("{} messages pending", self.pending_messages));
        }
        problems
    }
}

/// The health of each of `projections` (name, partitions), consuming `stream`.
///
/// # Errors
/// When Postgres or JetStream cannot be asked.
pub async fn health(
    pool: &PgPool,
    stream: &Stream,
    projections: &[&str],
    partitions: u32,
) -> Result<Vec<ProjectionHealth>, BoxError> {
    let counters: Vec<(String, i64, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT p.name,
                (SELECT count(*) FROM (SELECT DISTINCT aggregate_type, aggregate_id
                                         FROM projection.parked WHERE projection = p.name) s),
                (SELECT coalesce(sum(events_applied), 0)::bigint
                   FROM projection.progress WHERE projection = p.name),
                (SELECT max(updated_at) FROM projection.progress WHERE projection = p.name)
           FROM unnest($1::text[]) AS p(name)",
    )
    .bind(projections)
    .fetch_all(pool)
    .await?;
    let mut health = Vec::with_capacity(counters.len());
    for (name, parked_streams, events_applied, updated_at) in counters {
        let mut partition_health = Vec::new();
        for partition in 0..partitions.max(1) {
            match stream
                .consumer_info(consumer_name(&name, partition, partitions))
                .await
            {
                Ok(info) => partition_health.push(PartitionHealth {
                    partition,
                    pending_messages: info.num_pending + info.num_ack_pending as u64,
                }),
                Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
        health.push(ProjectionHealth {
            pending_messages: partition_health
                .iter()
                .map(|p| p.pending_messages)
                .max()
                .unwrap_or(0),
            partitions: partition_health,
            name,
            parked_streams,
            events_applied,
            updated_at,
        });
    }
    Ok(health)
}
