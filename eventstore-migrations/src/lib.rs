//! Every SQL migration of the system, and nothing else.
//!
//! The schema in `migrations/` owns: the postgres-es `events` and `snapshots` tables with the
//! columns the global feed needs (`global_position`, `transaction_id`, `recorded_at`, `event_id`,
//! `tenant_id`), the append-only triggers, the email-uniqueness claims written in the append
//! transaction, the relay and projection bookkeeping (schema `projection`), and the read models
//! (schema `read_models`). Migrations are embedded at compile time, so the binary that runs them
//! is always the binary whose code expects them.

/// The embedded migrations, in order.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many of the embedded migrations the database behind `pool` has not applied (yet).
///
/// # Errors
/// When Postgres is unreachable or the migrations table is missing.
pub async fn pending(pool: &sqlx::PgPool) -> Result<usize, sqlx::Error> {
    let applied: std::collections::BTreeSet<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    Ok(MIGRATOR
        .iter()
        .filter(|migration| !applied.contains(&migration.version))
        .count())
}
