//! Long streams: a command on streams of 10, 1,000 and 10,000 events, one client, each length
//! against the 10-event stream.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use tests::process::BackendProcess;

use crate::load::{Row, Target};
use crate::setup::start_backend;
use crate::{store, wait_caught_up, wait_projected, SNAPSHOT_EVERY, TENANT};

/// How long each stream length runs.
const RUN: Duration = Duration::from_secs(5);
/// Stream lengths.
const LENGTHS: [i64; 3] = [10, 1_000, 10_000];

/// The long streams against `server` (snapshots on, as configured by default), then against a
/// backend started with snapshots off; both are stopped when done.
#[allow(clippy::too_many_arguments)]
pub async fn both_ways(
    mut server: BackendProcess,
    target: &Arc<Target>,
    live: &PgPool,
    backend: &std::path::Path,
    live_url: &str,
    nats_url: &str,
    run: &str,
    rows: &mut Vec<Row>,
) {
    eprintln!("bench: long streams, snapshots every {SNAPSHOT_EVERY} events...");
    wait_caught_up(live).await;
    rows.extend(long_streams(target, live, &format!("snapshots every {SNAPSHOT_EVERY}")).await);
    server.kill().await;
    eprintln!("bench: long streams, no snapshots...");
    let (mut server, target) = start_backend(
        backend,
        live_url,
        nats_url,
        run,
        &[("APP_COMMANDS__SNAPSHOT_EVERY_EVENTS", "0")],
    )
    .await;
    wait_caught_up(live).await;
    rows.extend(long_streams(&Arc::new(target), live, "no snapshots").await);
    server.kill().await;
}

/// Renames users whose streams were written in bulk to each length; `mode` says how the
/// backend under test loads them (e.g. "no snapshots").
pub async fn long_streams(target: &Arc<Target>, live: &PgPool, mode: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for length in LENGTHS {
        let streams = store::bulk_users(live, TENANT, 2, length).await.unwrap();
        wait_projected(live, &streams, length).await;
        // The bulk write would otherwise start autovacuum on the events table in the middle of
        // the measurement (on two cores, it takes one of them for seconds).
        sqlx::query("VACUUM ANALYZE events")
            .execute(live)
            .await
            .unwrap();
        let t = target.clone();
        let streams: Arc<Vec<String>> = Arc::new(
            streams
                .iter()
                .map(|id| id.split_once(':').unwrap().1.to_owned())
                .collect(),
        );
        let row = target
            .run(
                &format!("update command, stream of {length} events ({mode})"),
                1,
                RUN,
                move |n| {
                    let id = &streams[n as usize % streams.len()];
                    let body = json!({ "display_name": format!("Long {n}") });
                    Target::ok(t.post(&format!("/api/v1/users/{id}/display-name"), &body))
                },
            )
            .await;
        match rows.first() {
            None => rows.push(row),
            Some(short) => {
                let row = row.against_latency(short);
                rows.push(row);
            }
        }
    }
    rows
}
