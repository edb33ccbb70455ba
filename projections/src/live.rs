//! One JetStream subscription per process for every live client of an aggregate type.
//!
//! A [`LiveHub`] reads the events of one aggregate type (every tenant) through a single ordered
//! consumer, decodes each message once, and fans it out in memory to its subscribers, which
//! filter what they follow. A client that resumes after an id first reads what it missed
//! through a short-lived consumer of its own ([`resume`]), then switches to the hub: it
//! subscribes *before* reading the backlog, so everything stored after the backlog's last read
//! is in its subscription, and ids at or below what it already sent are skipped. Nothing is
//! skipped, nothing repeated.
//!
//! A subscriber that falls more than the hub's capacity behind is ended rather than silently
//! skipped ahead: a client reconnects with its last id and reads the gap from the stream.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use domain::event::RecordedEvent;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::{broadcast, Mutex};
use tokio::task::JoinHandle;

use crate::engine::BoxError;

/// One message of the event stream: its sequence (a live client's event id) and its event.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message's sequence in the stream.
    pub sequence: u64,
    /// The event it carries.
    pub event: RecordedEvent,
}

/// What subscribers receive: a message, or `None` once the subscription ended.
type Item = Option<Arc<Delivered>>;

/// The process's subscription to one aggregate type's events, shared by every live client.
pub struct LiveHub {
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
    capacity: usize,
    running: Mutex<Option<(broadcast::Sender<Item>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("stream", &self.stream)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// A hub for the messages of `stream` matching `subject`; each subscriber may fall up to
    /// `capacity` messages behind. Nothing is read until the first subscriber comes.
    pub fn new(
        jetstream: jetstream::Context,
        stream: &str,
        subject: String,
        capacity: usize,
    ) -> Self {
        Self {
            jetstream,
            stream: stream.to_owned(),
            subject,
            capacity,
            running: Mutex::new(None),
        }
    }

    /// Every message stored from now on, in order; starts the process's subscription when none
    /// is running.
    ///
    /// # Errors
    /// When the subscription cannot be started.
    pub async fn subscribe(&self) -> Result<BoxStream<'static, Arc<Delivered>>, BoxError> {
        let mut running = self.running.lock().await;
        let sender = match running.as_ref() {
            Some((sender, pump)) if !pump.is_finished() => sender.clone(),
            _ => {
                let (sender, pump) = self.start().await?;
                *running = Some((sender.clone(), pump));
                sender
            }
        };
        let receiver = sender.subscribe();
        drop(running);
        Ok(
            futures::stream::unfold(receiver, |mut receiver| async move {
                // Lagging behind ends the subscription (the client resumes from its last id), as
                // does the end of the process's subscription.
                let item = receiver.recv().await.ok().flatten()?;
                Some((item, receiver))
            })
            .boxed(),
        )
    }

    async fn start(&self) -> Result<(broadcast::Sender<Item>, JoinHandle<()>), BoxError> {
        let consumer = self
            .jetstream
            .get_stream(&self.stream)
            .await?
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let (sender, _) = broadcast::channel(self.capacity);
        let pump = tokio::spawn({
            let sender = sender.clone();
            async move {
                while let Some(message) = messages.next().await {
                    // A consumer error ends nothing: the ordered consumer recovers by itself.
                    let Ok(message) = message else { continue };
                    let Ok(info) = message.info() else { continue };
                    let sequence = info.stream_sequence;
                    let Ok(event) = serde_json::from_slice::<RecordedEvent>(&message.payload)
                    else {
                        continue;
                    };
                    // No subscriber right now is not an error.
                    let _ = sender.send(Some(Arc::new(Delivered { sequence, event })));
                }
                let _ = sender.send(None);
            }
        });
        Ok((sender, pump))
    }
}

/// The messages of `stream` matching `subject` after sequence `after`, up to the stream's end
/// when read, through an ephemeral consumer of this caller's own, batch by batch. An error
/// item means the rest could not be read: the caller must stop there (going on with live
/// messages would skip what was not read).
///
/// # Errors
/// When the stream cannot be read at all.
pub async fn resume(
    jetstream: &jetstream::Context,
    stream: &str,
    subject: String,
    after: u64,
) -> Result<BoxStream<'static, Result<Delivered, BoxError>>, BoxError> {
    let consumer = jetstream
        .get_stream(stream)
        .await?
        .create_consumer(pull::Config {
            filter_subject: subject,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let batches = futures::stream::unfold(Some(consumer), |consumer| async move {
        let consumer = consumer?;
        let batch = fetch(&consumer).await;
        match batch {
            // Caught up with what the stream held.
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => Some((
                futures::stream::iter(batch.into_iter().map(Ok)).boxed(),
                Some(consumer),
            )),
            Err(error) => Some((futures::stream::iter([Err(error)]).boxed(), None)),
        }
    });
    Ok(batches.flatten().boxed())
}

/// The next batch the consumer has, without waiting for more; messages that do not decode are
/// left out (they hold no event to show).
async fn fetch(consumer: &jetstream::consumer::PullConsumer) -> Result<Vec<Delivered>, BoxError> {
    let mut messages = consumer.fetch().max_messages(500).messages().await?;
    let mut batch = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message?;
        let sequence = message.info()?.stream_sequence;
        if let Ok(event) = serde_json::from_slice(&message.payload) {
            batch.push(Delivered { sequence, event });
        }
    }
    Ok(batch)
}
