//! History written straight into the store in one statement, for tests and the bench that need
//! more of it than commands would write in reasonable time.

use sqlx::PgPool;

/// Writes `users` user streams of `events_each` events (a registration, then renames) straight
/// into the store, in `tenant`, in one statement; returns their aggregate ids in order.
///
/// The rows are what the backend itself would store (same payloads, metadata, triggers), so the
/// aggregate loads them and projections apply them; only HTTP and the aggregate are skipped.
pub async fn users(
    pool: &PgPool,
    tenant: &str,
    users: i64,
    events_each: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "WITH streams AS (
             SELECT n, $1 || ':' || gen_random_uuid() AS id FROM generate_series(1, $2) n
         ),
         inserted AS (
             INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             SELECT 'User', s.id, e,
                    CASE WHEN e = 1 THEN 'UserRegistered' ELSE 'DisplayNameChanged' END, '1',
                    CASE WHEN e = 1
                         THEN json_build_object('UserRegistered', json_build_object(
                                  'at', now(), 'email', split_part(s.id, ':', 2) || '@bulk.example',
                                  'roles', json_build_array('user'), 'display_name', 'Bulk'))
                         ELSE json_build_object('DisplayNameChanged', json_build_object(
                                  'at', now(), 'display_name', 'Bulk ' || e))
                    END,
                    json_build_object('request_id', s.id, 'correlation_id', s.id,
                                      'causation_id', s.id, 'actor', 'system:bench',
                                      'tenant_id', $1, 'command', 'BulkLoad',
                                      'recorded_at', now())
               FROM streams s, generate_series(1, $3) e
              ORDER BY s.n, e
         )
         SELECT id FROM streams ORDER BY n",
    )
    .bind(tenant)
    .bind(users)
    .bind(events_each)
    .fetch_all(pool)
    .await?;
    Ok(ids)
}
