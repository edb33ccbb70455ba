//! Long streams: a command on streams of 10, 1,000 and 10,000 events, one client, each length
//! against the 10-event stream.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use crate::load::{Row, Target};
use crate::{store, wait_projected, TENANT};

/// How long each stream length runs.
const RUN: Duration = Duration::from_secs(5);
/// Stream lengths.
const LENGTHS: [i64; 3] = [10, 1_000, 10_000];

/// Renames users whose streams were written in bulk to each length; `mode` says how the
/// backend under test loads them (e.g. "no snapshots").
pub async fn long_streams(target: &Arc<Target>, live: &PgPool, mode: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for length in LENGTHS {
        let streams = store::bulk_users(live, TENANT, 2, length).await.unwrap();
        wait_projected(live, &streams, length).await;
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
