//! The per-projection row of `projection.checkpoints`: which version of the projection's code
//! built the live tables, and where its consumers start on the bus.
//!
//! The row's existence is meaningful. No row means the projection has never been built: its
//! runner builds it from the event store before consuming anything (see
//! [`super::startup`]). The row is written only by the transaction that swaps freshly built
//! tables in, so a row always describes tables that are complete up to the moment of the swap.

use sqlx::{PgConnection, PgExecutor};

/// A projection's checkpoint row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The version of the projection whose tables are live (0 when never recorded).
    pub version: u32,
    /// The JetStream stream sequence its consumers start at when they are created; `None` when
    /// unknown (they then start at the stream's beginning).
    pub consumer_start: Option<u64>,
}

impl Checkpoint {
    /// The checkpoint of `projection`, if it was ever built.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn load<'e>(
        executor: impl PgExecutor<'e>,
        projection: &str,
    ) -> Result<Option<Self>, sqlx::Error> {
        let row: Option<(i32, Option<i64>)> = sqlx::query_as(
            "SELECT version, consumer_start_sequence FROM projection.checkpoints
              WHERE projection = $1",
        )
        .bind(projection)
        .fetch_optional(executor)
        .await?;
        Ok(row.map(|(version, start)| Self {
            version: version.max(0) as u32,
            consumer_start: start.map(|start| start.max(1) as u64),
        }))
    }

    /// Records, inside the swap's transaction, that `version` of `projection` is live. The
    /// consumer start is written only with the row's first version: a later rebuild's tables
    /// cover at least what the first build's did, so the start stays valid.
    pub(crate) async fn record_live(
        connection: &mut PgConnection,
        projection: &str,
        version: u32,
        consumer_start: Option<u64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO projection.checkpoints
                    (projection, version, rebuilt_at, consumer_start_sequence)
             VALUES ($1, $2, clock_timestamp(), $3)
             ON CONFLICT (projection) DO UPDATE
                SET version = EXCLUDED.version, rebuilt_at = EXCLUDED.rebuilt_at",
        )
        .bind(projection)
        .bind(version as i32)
        .bind(consumer_start.map(|start| start as i64))
        .execute(connection)
        .await?;
        Ok(())
    }
}
