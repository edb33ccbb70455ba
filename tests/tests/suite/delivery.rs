//! Partition-only delivery: a projection partition's consumer receives its own streams' messages
//! and no others, and a message published before subjects had buckets still reaches the
//! partition that owns its stream (every partition receives it and the others skip it).

use async_nats::jetstream::consumer::{pull, AckPolicy};
use domain::event::Subjects;
use projections::engine::consumer_name;

use crate::helpers::{spawn_app_with, spawn_with_settings, test_settings};
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
    let events = commands::feed::read(&app.pool, commands::feed::FeedCursor::default(), 1_000)
        .await
        .unwrap();
    let users: Vec<_> = events
        .iter()
        .filter(|event| event.aggregate_type == "User")
        .collect();
    assert_eq!(users.len(), USERS);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_created_before_buckets_is_brought_to_its_partition_filters() {
    let mut settings = test_settings().await;
    settings.projections.partitions = 4;
    // The stream and one partition's consumer as a release before buckets left them.
    let nats = commands::jetstream::connect(settings.nats.url.expose())
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(nats);
    let stream =
        commands::jetstream::ensure_stream(&jetstream, &api::startup::stream_settings(&settings))
            .await
            .unwrap();
    let name = consumer_name("users", 1, 4);
    let before = format!("{}.*.User.*", settings.nats.subject_prefix);
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: before.clone(),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();

    let app = spawn_with_settings(settings).await;
    write_users(&user_commands(&app), "upgrade", 8, 1).await;
    app.assert_users_read_model_is_a_replay().await;
    let stream = app
        .jetstream
        .get_stream(&app.settings.nats.stream)
        .await
        .unwrap();
    let info = stream.consumer_info(&name).await.unwrap();
    let subjects = Subjects::new(app.settings.nats.subject_prefix.clone());
    let filters = if info.config.filter_subject.is_empty() {
        info.config.filter_subjects.clone()
    } else {
        vec![info.config.filter_subject.clone()]
    };
    assert_eq!(filters, subjects.for_partition("User", 1, 4));
    assert!(filters.contains(&before), "older messages still reach it");
}
