//! NATS as a three-node JetStream cluster (stream and consumers replicated three times): the
//! node leading the events stream is killed with `SIGKILL` under write load and started again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::config::Secret;
use reqwest::StatusCode;

use crate::helpers::{spawn_with_settings, test_settings, wait_until, TestApp};
use crate::nats::PrivateCluster;

/// Commands go on being accepted, the relay and the projections carry on through the surviving
/// two nodes, and in the end the stream holds every stored event exactly once and the read model
/// applied each exactly once (it equals a replay).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_node_killed_and_restarted_under_load_loses_and_duplicates_nothing() {
    let mut cluster = PrivateCluster::start().await;
    let mut settings = test_settings().await;
    settings.nats.url = Secret::new(cluster.urls());
    settings.nats.replicas = 3;
    settings.projections.partitions = 2;
    let app = Arc::new(spawn_with_settings(settings).await);
    let info = app.stream().await.info().await.unwrap().clone();
    assert_eq!(info.config.num_replicas, 3, "the stream is replicated");

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (app, stop, accepted) = (app.clone(), stop.clone(), accepted.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let response = app
                        .post("/api/v1/users")
                        .json(&serde_json::json!({
                            "email": format!("cluster{writer}-{n}@example.org"),
                            "display_name": "Cluster",
                        }))
                        .send()
                        .await
                        .unwrap();
                    // Commands never wait for the bus: a lost node changes nothing for them.
                    assert_eq!(response.status(), StatusCode::CREATED);
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let accepted_at_least = |count: usize| {
        let accepted = accepted.clone();
        async move {
            wait_until(
                &format!("{count} commands are accepted"),
                Duration::from_secs(60),
                || async { accepted.load(Ordering::Relaxed) >= count },
            )
            .await;
        }
    };

    accepted_at_least(50).await;
    let leader = stream_leader(&app)
        .await
        .expect("a clustered stream has a leader");
    cluster.kill(&leader).await;
    wait_until(
        "another node leads the stream",
        Duration::from_secs(60),
        || async { stream_leader(&app).await.is_some_and(|now| now != leader) },
    )
    .await;
    let during = accepted.load(Ordering::Relaxed);
    accepted_at_least(during + 50).await;
    let before_outage = app.user_events().await;
    wait_until(
        "the projection applies events through the surviving nodes",
        Duration::from_secs(60),
        || async { app.projection_counts("users").await.0 >= before_outage },
    )
    .await;
    cluster.restart(&leader).await;
    let after = accepted.load(Ordering::Relaxed);
    accepted_at_least(after + 50).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    let stored = app.user_events().await;
    wait_until(
        "every stored event is applied",
        Duration::from_secs(120),
        || async { app.projection_counts("users").await.0 >= stored },
    )
    .await;
    app.assert_users_read_model_is_a_replay().await;
    assert_eq!(
        app.projection_counts("users").await.0,
        stored,
        "each event applied once"
    );
    let all = app.all_events().await;
    let in_stream = || async { app.stream().await.info().await.unwrap().state.messages };
    wait_until(
        "the relay publishes every event",
        Duration::from_secs(60),
        || async { in_stream().await >= all as u64 },
    )
    .await;
    assert_eq!(
        in_stream().await,
        all as u64,
        "each event is in the stream once"
    );
}

/// The name of the server leading the events stream's RAFT group, if it has one and answers.
async fn stream_leader(app: &TestApp) -> Option<String> {
    let mut stream = app
        .jetstream
        .get_stream(&app.settings.nats.stream)
        .await
        .ok()?;
    let info = stream.info().await.ok()?;
    info.cluster.as_ref()?.leader.clone()
}
