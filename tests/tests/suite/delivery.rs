//! Partition-only delivery: a projection partition's consumer receives its own streams' messages
//! and no others, and a message published before subjects had buckets still reaches the
//! partition that owns its stream (every partition receives it and the others skip it).

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use commands::feed::FeedCursor;
use domain::event::{RecordedEvent, Subjects};
use futures::StreamExt;
use projections::engine::{consumer_name, partition_of};

use crate::helpers::{spawn_app_with, spawn_with_settings, test_settings, wait_until, TestApp};
use crate::projections::{user_commands, write_users};

/// Users written; half are published as the relay does, half as it did before buckets.
const USERS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_partition_receives_only_its_streams_and_messages_from_before_buckets_still_arrive() {
    let partitions = 4;
    let app = spawn_app_with(|settings| {
        settings.relay.enabled = false;
        settings.projections.partitions = partitions;
    })
    .await;
    write_users(&user_commands(&app), "delivery", USERS, 0).await;
    // Settled: an open transaction elsewhere (a sealing batch) can hold the newest back.
    let events = settled_users(&app, USERS).await;
    let users: Vec<&RecordedEvent> = events.iter().collect();
    let subjects = Subjects::new(app.settings.nats.subject_prefix.clone());
    let (bucketed, before_buckets) = users.split_at(USERS / 2);
    for (event, subject) in bucketed
        .iter()
        .map(|event| (event, subjects.for_event(event)))
        .chain(before_buckets.iter().map(|event| {
            let subject = format!(
                "{}.{}.{}.{}",
                app.settings.nats.subject_prefix,
                event.tenant_id,
                event.aggregate_type,
                event.aggregate_id
            );
            (event, subject)
        }))
    {
        app.jetstream
            .publish(subject, serde_json::to_vec(event).unwrap().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    app.assert_users_read_model_is_a_replay().await;

    let stream = app
        .jetstream
        .get_stream(&app.settings.nats.stream)
        .await
        .unwrap();
    let mut delivered = 0;
    for partition in 0..partitions {
        let name = consumer_name("users", partition, partitions);
        let info = stream.consumer_info(&name).await.unwrap();
        assert_eq!(info.num_pending, 0, "{name}");
        delivered += info.delivered.consumer_sequence;
    }
    // Each bucketed message once, each older one to every partition. (Delivering every message
    // to every partition would be USERS x partitions.) A redelivery after a slow acknowledgement
    // may add a few.
    let exact = (USERS / 2) as u64 + (USERS / 2) as u64 * u64::from(partitions);
    assert!(
        (exact..exact + (USERS / 2) as u64).contains(&delivered),
        "{delivered} deliveries, {exact} expected"
    );
}

/// The settled user events, once there are `count` of them, in feed order.
async fn settled_users(app: &TestApp, count: usize) -> Vec<RecordedEvent> {
    let read = || async {
        commands::feed::read(&app.pool, FeedCursor::default(), 1_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.aggregate_type == "User")
            .collect::<Vec<_>>()
    };
    wait_until(
        "the user events are settled",
        Duration::from_secs(30),
        || async { read().await.len() == count },
    )
    .await;
    read().await
}

/// Publishes `event` on `subject` (as the relay does, or did before buckets).
async fn publish(app: &TestApp, subject: String, event: &RecordedEvent) {
    app.jetstream
        .publish(subject, serde_json::to_vec(event).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_that_passed_bucketed_messages_under_old_filters_catches_up_from_the_store() {
    let mut settings = test_settings().await;
    settings.projections.partitions = 4;
    settings.relay.enabled = false;
    // A first start builds the projection and its consumers.
    let first = spawn_with_settings(settings.clone()).await;
    let name = consumer_name("users", 1, 4);
    wait_until(
        "the partition consumes",
        Duration::from_secs(30),
        || async {
            let built: Option<i64> = sqlx::query_scalar(
                "SELECT version::bigint FROM projection.checkpoints WHERE projection = 'users'",
            )
            .fetch_optional(&first.pool)
            .await
            .unwrap();
            let consumer = match first
                .jetstream
                .get_stream(&first.settings.nats.stream)
                .await
            {
                Ok(stream) => stream.consumer_info(&name).await.is_ok(),
                Err(_) => false,
            };
            built.is_some() && consumer
        },
    )
    .await;
    first.stop().await;

    // Partition 1's consumer as a release before buckets left it.
    let app = spawn_with_settings({
        let mut paused = settings.clone();
        paused.projections.enabled = false;
        paused
    })
    .await;
    let stream = app
        .jetstream
        .get_stream(&app.settings.nats.stream)
        .await
        .unwrap();
    let before = format!("{}.*.User.*", settings.nats.subject_prefix);
    stream.delete_consumer(&name).await.unwrap();
    let old: PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: before.clone(),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    // A newer relay publishes bucketed subjects, which the old filter passes over; one message
    // in the old form after them moves the old consumer past them once it is acknowledged.
    let users = user_commands(&app);
    let mut stored = Vec::new();
    let mut prefix = 0;
    while stored
        .iter()
        .filter(|event: &&RecordedEvent| partition_of(&event.aggregate_id, 4) == 1)
        .count()
        < 2
    {
        write_users(&users, &format!("skipped{prefix}-"), 4, 0).await;
        prefix += 1;
        stored = settled_users(&app, prefix * 4).await;
    }
    let subjects = Subjects::new(app.settings.nats.subject_prefix.clone());
    for event in &stored {
        publish(&app, subjects.for_event(event), event).await;
    }
    write_users(&users, "last", 1, 0).await;
    let last = settled_users(&app, prefix * 4 + 1).await.pop().unwrap();
    let legacy = format!(
        "{}.{}.User.{}",
        app.settings.nats.subject_prefix, last.tenant_id, last.aggregate_id
    );
    publish(&app, legacy.clone(), &last).await;
    let mut batch = old.fetch().max_messages(10).messages().await.unwrap();
    let message = batch.next().await.unwrap().unwrap();
    assert_eq!(message.subject.as_str(), legacy);
    message.ack().await.unwrap();
    app.stop().await;

    // The new release brings the consumer to its partition's filters and, since it may have
    // passed messages it did not match, reads the partition's streams from the store.
    let app = spawn_with_settings(settings).await;
    app.assert_users_read_model_is_a_replay().await;
    let info = app
        .jetstream
        .get_stream(&app.settings.nats.stream)
        .await
        .unwrap()
        .consumer_info(&name)
        .await
        .unwrap()
        .clone();
    let filters = if info.config.filter_subject.is_empty() {
        info.config.filter_subjects.clone()
    } else {
        vec![info.config.filter_subject.clone()]
    };
    assert_eq!(filters, subjects.for_partition("User", 1, 4));
    assert!(filters.contains(&before), "older messages still reach it");
}
