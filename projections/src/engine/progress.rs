//! Progress counters, one row per lane (a live partition, or a lane of a rebuild): events
//! applied, duplicates dropped, and the furthest positions reached. A projection's progress is
//! the sum (counters) or the greatest (positions) over its lanes; lanes never share a row, so
//! they never wait on each other's commits.

use sqlx::PgConnection;

/// What one transaction applied, added to the progress row of its lane.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LaneProgress {
    pub last_stream_sequence: i64,
    pub last_global_position: i64,
    pub applied: i64,
    pub duplicates: i64,
}

impl LaneProgress {
    /// Adds this progress to `lane`'s row of `projection`. Each live partition and each rebuild
    /// lane writes a row of its own, so lanes never wait on each other here.
    pub(crate) async fn record(
        self,
        connection: &mut PgConnection,
        projection: &str,
        lane: u32,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO projection.progress AS p
                    (projection, lane, last_stream_sequence, last_global_position,
                     events_applied, duplicates_skipped)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (projection, lane) DO UPDATE SET
                 last_stream_sequence = greatest(p.last_stream_sequence, EXCLUDED.last_stream_sequence),
                 last_global_position = greatest(p.last_global_position, EXCLUDED.last_global_position),
                 events_applied = p.events_applied + EXCLUDED.events_applied,
                 duplicates_skipped = p.duplicates_skipped + EXCLUDED.duplicates_skipped,
                 updated_at = clock_timestamp()",
        )
        .bind(projection)
        .bind(lane as i32)
        .bind(self.last_stream_sequence)
        .bind(self.last_global_position)
        .bind(self.applied)
        .bind(self.duplicates)
        .execute(connection)
        .await?;
        Ok(())
    }
}
