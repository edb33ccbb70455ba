//! Recovery after `kill -9`: two backend processes share one store, the one that relays and owns
//! every projection partition is killed in the middle of a write burst, and the survivor takes
//! over. Measured: the time from the kill until every event stored before it is applied to the
//! users read model (readable). Used by a test (with a generous deadline) and by `just bench`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;

use crate::process::{BackendProcess, Launch};

/// The partitions of every projection in the scenario.
const PARTITIONS: i32 = 4;

/// The size of the write burst.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// Concurrent clients.
    pub writers: usize,
    /// Users each client registers.
    pub writes_each: usize,
    /// The kill comes once the read model has applied this many events.
    pub kill_after_applied: i64,
}

/// What the scenario measured, and the process that survived it (still running).
#[derive(Debug)]
pub struct Recovery {
    /// From the kill until every event stored before it was applied.
    pub readable_after: Duration,
    /// Commands answered 201 (before and after the kill).
    pub accepted: u64,
    /// The surviving process.
    pub survivor: BackendProcess,
}

/// Runs the scenario against the store behind `pool` (migrated, empty of users), with `key` an
/// admin key of that store. Fails when recovery takes longer than `deadline`.
///
/// # Panics
/// When a command is refused, a process does not start, or the deadline passes.
pub async fn kill_during_burst(
    launch: &Launch,
    pool: &PgPool,
    key: &str,
    burst: Burst,
    deadline: Duration,
) -> Recovery {
    let launch = launch
        .clone()
        .env("APP_PROJECTIONS__PARTITIONS", &PARTITIONS.to_string());
    let mut first = launch.start().await;
    wait_for(
        "the first process owns every partition",
        deadline * 3,
        || async {
            let owned: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM projection.partition_owners
              WHERE projection = 'users' AND partitions = $1",
            )
            .bind(PARTITIONS)
            .fetch_one(pool)
            .await
            .expect("read partition owners");
            owned == i64::from(PARTITIONS)
        },
    )
    .await;
    let survivor = launch.start().await;

    let accepted = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let targets = Arc::new([first.base.clone(), survivor.base.clone()]);
    let writers: Vec<_> = (0..burst.writers)
        .map(|writer| {
            let (client, targets, accepted) = (client.clone(), targets.clone(), accepted.clone());
            let key = key.to_owned();
            tokio::spawn(async move {
                for n in 0..burst.writes_each {
                    let body = json!({
                        "email": format!("burst{writer}-{n}@example.org"),
                        "display_name": "Burst",
                    });
                    // Alternate between the processes; a write the killed one never answered
                    // goes to the survivor (under the same idempotency key) until it is answered.
                    let idempotency_key = format!("burst-{writer}-{n}");
                    let mut target = &targets[n % 2];
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        let sent = client
                            .post(format!("{target}/api/v1/users"))
                            .header("x-api-key", &key)
                            .header("idempotency-key", &idempotency_key)
                            .json(&body)
                            .send()
                            .await;
                        match sent {
                            Ok(response) => {
                                let status = response.status();
                                assert!(
                                    status == reqwest::StatusCode::CREATED,
                                    "a burst command answered {status}: {}",
                                    response.text().await.unwrap_or_default()
                                );
                                accepted.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Err(error) => {
                                assert!(attempts < 10, "a burst command failed 10 times: {error}");
                                target = &targets[1];
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();

    wait_for(
        "the first process applies part of the burst",
        deadline * 6,
        || async { applied(pool).await >= burst.kill_after_applied },
    )
    .await;
    first.kill().await;
    let killed = Instant::now();
    // Every write acknowledged by now is stored at or below this position.
    let stored: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await
        .expect("read the store's last position");
    wait_for(
        "every event stored before the kill is applied",
        deadline,
        || async { unapplied_up_to(pool, stored).await == 0 },
    )
    .await;
    let readable_after = killed.elapsed();
    for writer in writers {
        writer.await.expect("a writer finished");
    }
    Recovery {
        readable_after,
        accepted: accepted.load(Ordering::Relaxed),
        survivor,
    }
}

/// Events the users projection has applied.
pub async fn applied(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(events_applied), 0)::bigint FROM projection.progress
          WHERE projection = 'users'",
    )
    .fetch_one(pool)
    .await
    .expect("read projection progress")
}

/// User events at or below `position` that the users projection has not applied.
async fn unapplied_up_to(pool: &PgPool, position: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events e
           LEFT JOIN projection.stream_positions p
                  ON p.projection = 'users' AND p.aggregate_type = e.aggregate_type
                 AND p.aggregate_id = e.aggregate_id
          WHERE e.aggregate_type = 'User' AND e.global_position <= $1
            AND coalesce(p.last_sequence, 0) < e.sequence",
    )
    .bind(position)
    .fetch_one(pool)
    .await
    .expect("count unapplied events")
}

async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
