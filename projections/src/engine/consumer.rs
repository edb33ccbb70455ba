//! A partition's durable JetStream consumer, created with the partition's filters or brought to
//! them.

use async_nats::jetstream::consumer::pull::Config;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream;

use super::runner::ACK_WAIT;
use super::BoxError;

/// The consumer, what it was before this start (if it existed), and whether its filters
/// changed (it may then have passed messages it did not match).
pub(super) struct Durable {
    pub(super) consumer: PullConsumer,
    pub(super) existing: Option<consumer::Info>,
    pub(super) refiltered: bool,
}

/// The durable consumer `name` of `stream`, filtering on `filters`; created at
/// `deliver_policy` when it does not exist yet.
///
/// Messages delivered to a previous owner that died unacknowledged come back once their ack
/// wait has passed: a short one bounds how long acknowledged writes stay unreadable after a
/// crash. A consumer created with an older, longer wait, or with other filters (before buckets,
/// or under another partition count), is brought to the current ones and keeps its position.
pub(super) async fn durable(
    stream: &Stream,
    name: &str,
    filters: Vec<String>,
    deliver_policy: DeliverPolicy,
) -> Result<Durable, BoxError> {
    let existing = match stream.consumer_info(name).await {
        Ok(info) => Some(info),
        Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    let mut refiltered = false;
    if let Some(info) = &existing {
        // The server keeps a single filter as `filter_subject`.
        let current = if info.config.filter_subject.is_empty() {
            info.config.filter_subjects.clone()
        } else {
            vec![info.config.filter_subject.clone()]
        };
        refiltered = current != filters;
        if refiltered || info.config.ack_wait != ACK_WAIT {
            let mut config = info.config.clone();
            config.ack_wait = ACK_WAIT;
            config.filter_subject = String::new();
            config.filter_subjects = filters.clone();
            stream.update_consumer(config).await?;
        }
    }
    let config = Config {
        durable_name: Some(name.to_owned()),
        filter_subjects: filters,
        ack_policy: AckPolicy::Explicit,
        deliver_policy,
        ack_wait: ACK_WAIT,
        max_ack_pending: 10_000,
        ..Default::default()
    };
    let consumer: PullConsumer = stream.get_or_create_consumer(name, config).await?;
    Ok(Durable {
        consumer,
        existing,
        refiltered,
    })
}
