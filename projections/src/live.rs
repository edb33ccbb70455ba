//! One JetStream subscription per process for every live client of some aggregate types.
//!
//! A [`LiveHub`] reads the events of some aggregate types (every tenant) through a single
//! ordered consumer, decodes and [`Prepare`]s each message once (e.g. renders the update a client
//! is sent), and fans it out in memory to its subscribers, which only filter what they follow. A
//! client that resumes after an id first reads what it missed through a short-lived consumer of
//! its own ([`resume`]), then switches to the hub: it
//! subscribes *before* reading the backlog, so everything stored after the backlog's last read
//! is in its subscription, and ids at or below what it already sent are skipped. Nothing is
//! skipped, nothing repeated.
//!
//! A subscriber that falls more than the hub's capacity behind is ended rather than silently
//! skipped ahead: a client reconnects with its last id and reads the gap from the stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use domain::event::RecordedEvent;
use domain::identity::TenantId;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Serialize;
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

/// What a hub makes of each message, once for all of its subscribers. A resuming client runs
/// its own copy over the messages it missed, so both reach it in the same form.
pub trait Prepare: Clone + Send + Sync + 'static {
    /// What subscribers receive.
    type Item: LiveItem + Send + Sync + 'static;

    /// What `delivered` becomes for subscribers.
    fn prepare(&mut self, delivered: Delivered) -> BoxFuture<'_, Prepared<Self::Item>>;
}

/// What a hub sends: each item knows its id (the sequence of the message it was made of) and
/// its JSON, rendered once for every client.
pub trait LiveItem {
    /// The message's sequence in the stream (the id a client resumes after).
    fn id(&self) -> u64;
    /// The item as JSON, as a client is sent it.
    fn json(&self) -> &str;
}

/// An item as every live client is sent it, with what it is filtered by: made once per process,
/// not once per client.
#[derive(Debug, Clone)]
pub struct LiveMessage<T> {
    /// Its id: the message's sequence in the stream.
    pub id: u64,
    /// The tenant whose event it was made of.
    pub tenant: TenantId,
    /// The item.
    pub item: T,
    /// The item as JSON.
    pub json: String,
}

impl<T: Serialize> LiveMessage<T> {
    /// `item` of `tenant`, made of message `id`, ready to send (or [`Prepared::Failed`] when it
    /// does not serialize).
    pub fn prepared(id: u64, tenant: TenantId, item: T) -> Prepared<Self> {
        match serde_json::to_string(&item) {
            Ok(json) => Prepared::Item(Self {
                id,
                tenant,
                item,
                json,
            }),
            Err(_) => Prepared::Failed,
        }
    }
}

impl<T> LiveItem for LiveMessage<T> {
    fn id(&self) -> u64 {
        self.id
    }

    fn json(&self) -> &str {
        &self.json
    }
}

/// What [`Prepare::prepare`] made of a message.
#[derive(Debug)]
pub enum Prepared<T> {
    /// Send this.
    Item(T),
    /// Nothing subscribers are sent (not their kind of event).
    Skip,
    /// It could not be made ready now (e.g. a lookup failed): followers must not go on past it,
    /// so their streams end and they resume from their last id.
    Failed,
}

/// What subscribers receive: an item, or `None` once the subscription ended.
type Item<P> = Option<Arc<<P as Prepare>::Item>>;

type Running<P> = Arc<Mutex<Option<(broadcast::Sender<Item<P>>, JoinHandle<()>)>>>;

/// The process's subscription to some aggregate types' events, shared by every live client.
pub struct LiveHub<P: Prepare> {
    jetstream: jetstream::Context,
    stream: String,
    subjects: Vec<String>,
    capacity: usize,
    preparer: P,
    running: Running<P>,
}

impl<P: Prepare> std::fmt::Debug for LiveHub<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("stream", &self.stream)
            .field("subjects", &self.subjects)
            .finish_non_exhaustive()
    }
}

impl<P: Prepare> LiveHub<P> {
    /// A hub for the messages of `stream` matching any of `subjects`, each made ready by
    /// `preparer`; each subscriber may fall up to `capacity` messages behind. Nothing is read
    /// until the first subscriber comes.
    pub fn new(
        jetstream: jetstream::Context,
        stream: &str,
        subjects: Vec<String>,
        capacity: usize,
        preparer: P,
    ) -> Self {
        Self {
            jetstream,
            stream: stream.to_owned(),
            subjects,
            capacity,
            preparer,
            running: Arc::default(),
        }
    }

    /// A preparer for a client's own backlog.
    pub fn preparer(&self) -> P {
        self.preparer.clone()
    }

    /// Every message stored from now on, prepared, in order; starts the process's subscription
    /// when none is running.
    ///
    /// # Errors
    /// When the subscription cannot be started.
    pub async fn subscribe(&self) -> Result<BoxStream<'static, Arc<P::Item>>, BoxError> {
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
                // do a message that could not be prepared and the end of the process's
                // subscription.
                let item = receiver.recv().await.ok().flatten()?;
                Some((item, receiver))
            })
            .boxed(),
        )
    }

    async fn start(&self) -> Result<(broadcast::Sender<Item<P>>, JoinHandle<()>), BoxError> {
        // From the stream's current end. The consumer is told so explicitly, and the pump also
        // drops anything at or below what it passed: an ordered consumer that is recreated
        // before its first message starts over from the stream's beginning.
        let stream = self.jetstream.get_stream(&self.stream).await?;
        let mut passed = stream.cached_info().state.last_sequence;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subjects: self.subjects.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: passed + 1,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let (sender, _) = broadcast::channel(self.capacity);
        let mut preparer = self.preparer.clone();
        let running = self.running.clone();
        let pump = tokio::spawn({
            let sender = sender.clone();
            async move {
                while let Some(message) = messages.next().await {
                    // A consumer error ends nothing: the ordered consumer recovers by itself.
                    let Ok(message) = message else { continue };
                    let Some(delivered) = decode(&message) else {
                        continue;
                    };
                    if delivered.sequence <= passed {
                        continue;
                    }
                    passed = delivered.sequence;
                    // No subscriber right now is not an error.
                    match preparer.prepare(delivered).await {
                        Prepared::Item(item) => {
                            let _ = sender.send(Some(Arc::new(item)));
                        }
                        Prepared::Skip => {}
                        Prepared::Failed => {
                            let _ = sender.send(None);
                        }
                    }
                }
                // Forget this subscription before telling its subscribers, so that none
                // subscribes to it after the news.
                let mut running = running.lock().await;
                if running
                    .as_ref()
                    .is_some_and(|(current, _)| current.same_channel(&sender))
                {
                    *running = None;
                }
                let _ = sender.send(None);
            }
        });
        Ok((sender, pump))
    }
}

/// A message's sequence and event, when it holds one.
fn decode(message: &jetstream::Message) -> Option<Delivered> {
    let sequence = message.info().ok()?.stream_sequence;
    let event = serde_json::from_slice(&message.payload).ok()?;
    Some(Delivered { sequence, event })
}

/// The messages of `stream` matching any of `filters` after sequence `after`, up to the stream's end
/// when read, through an ephemeral consumer of this caller's own, batch by batch. An error
/// item means the rest could not be read: the caller must stop there (going on with live
/// messages would skip what was not read).
///
/// # Errors
/// When the stream cannot be read at all.
pub async fn resume(
    jetstream: &jetstream::Context,
    stream: &str,
    filters: Vec<String>,
    after: u64,
) -> Result<BoxStream<'static, Result<Delivered, BoxError>>, BoxError> {
    let consumer = jetstream
        .get_stream(stream)
        .await?
        .create_consumer(pull::Config {
            filter_subjects: filters,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after.saturating_add(1),
            },
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let batches = futures::stream::unfold(Some(consumer), |consumer| async move {
        let consumer = consumer?;
        match fetch(&consumer).await {
            // Caught up with what the stream held.
            Ok((0, _)) => None,
            Ok((_, batch)) => Some((
                futures::stream::iter(batch.into_iter().map(Ok)).boxed(),
                Some(consumer),
            )),
            Err(error) => Some((futures::stream::iter([Err(error)]).boxed(), None)),
        }
    });
    Ok(batches.flatten().boxed())
}

/// Longest a backlog batch may take (the server answers at once; a reply lost in a reconnect
/// must not hold a client forever).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The next batch the consumer has, without waiting for more: how many messages it held, and
/// those that carry an event (the others hold nothing to show).
async fn fetch(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<(usize, Vec<Delivered>), BoxError> {
    let read = async {
        let mut messages = consumer.fetch().max_messages(500).messages().await?;
        let (mut held, mut batch) = (0, Vec::new());
        while let Some(message) = messages.next().await {
            held += 1;
            batch.extend(decode(&message?));
        }
        Ok::<_, BoxError>((held, batch))
    };
    tokio::time::timeout(FETCH_TIMEOUT, read)
        .await
        .map_err(|_| "reading the backlog timed out")?
}

/// Where a live feed reads: the event stream in JetStream and the process's hub.
#[derive(Debug)]
pub struct Bus<'a, P: Prepare> {
    /// The JetStream context.
    pub jetstream: &'a jetstream::Context,
    /// The stream the relay publishes to.
    pub stream: &'a str,
    /// The process's subscription to the followed aggregate types.
    pub hub: &'a LiveHub<P>,
}

/// A live feed: items with their ids (stream sequences), in order, endlessly.
pub struct LiveFeed<T> {
    /// Whether messages after the requested id are no longer retained (or the id is past the
    /// stream's end, as after the stream was recreated): the caller should re-read what it
    /// follows, then follow the items.
    pub resync: bool,
    /// Items with ids up to this one were stored before the feed was asked for (a resumed
    /// client's backlog); 0 when the feed starts from now.
    pub replayed_until: u64,
    /// The items, each as every client following it is sent it.
    pub items: BoxStream<'static, Arc<T>>,
}

impl<T> std::fmt::Debug for LiveFeed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("resync", &self.resync)
            .field("replayed_until", &self.replayed_until)
            .finish_non_exhaustive()
    }
}

/// The bus could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the event bus is unavailable")]
pub struct BusUnavailable(#[source] pub BoxError);

/// The items `follows` keeps, after id `resume_after` (or from now): first what the stream
/// holds after it among the messages matching `filters` (each a subject the hub's own cover),
/// then the hub's live items; each id once, in order. The caller has authorized what it
/// follows.
///
/// # Errors
/// [`BusUnavailable`] when the stream cannot be read.
pub async fn follow<P: Prepare>(
    bus: Bus<'_, P>,
    filters: Vec<String>,
    resume_after: Option<u64>,
    follows: impl Fn(&P::Item) -> bool + Send + 'static,
) -> Result<LiveFeed<P::Item>, BusUnavailable> {
    let unavailable = |error: BoxError| BusUnavailable(error);
    // Subscribe first: every message stored from here on is in the subscription, so the
    // backlog read next and the subscription leave no gap between them.
    let live = bus.hub.subscribe().await.map_err(unavailable)?;
    let stream = bus
        .jetstream
        .get_stream(bus.stream)
        .await
        .map_err(|error| unavailable(error.into()))?;
    // Looking the stream up fetched its state: no second request for it.
    let state = &stream.cached_info().state;
    let (first_retained, last_stored) = (state.first_sequence, state.last_sequence);
    let beyond = resume_after.is_some_and(|last| last > last_stored);
    let resync = beyond || resume_after.is_some_and(|last| last.saturating_add(1) < first_retained);
    let resume_after = resume_after.map(|last| last.min(last_stored));
    let replayed_until = match resume_after {
        Some(after) if after < last_stored => last_stored,
        _ => 0,
    };
    let backlog = match resume_after {
        Some(after) if after < last_stored => resume(bus.jetstream, bus.stream, filters, after)
            .await
            .map_err(unavailable)?,
        _ => futures::stream::empty().boxed(),
    };
    // A backlog that cannot be read (or prepared) to its end ends the feed (the client resumes
    // again): going on with live items would skip the rest.
    let failed = Arc::new(AtomicBool::new(false));
    let state = (backlog, bus.hub.preparer(), failed.clone());
    let backlog =
        futures::stream::unfold(state, |(mut backlog, mut preparer, failed)| async move {
            loop {
                let Ok(delivered) = backlog.next().await? else {
                    failed.store(true, Ordering::SeqCst);
                    return None;
                };
                match preparer.prepare(delivered).await {
                    Prepared::Item(prepared) => {
                        return Some((Arc::new(prepared), (backlog, preparer, failed)));
                    }
                    Prepared::Skip => {}
                    Prepared::Failed => {
                        failed.store(true, Ordering::SeqCst);
                        return None;
                    }
                }
            }
        });
    let live = live.take_while(move |_| std::future::ready(!failed.load(Ordering::SeqCst)));
    let mut sent = resume_after.unwrap_or(0);
    let items = backlog.chain(live).filter(move |item| {
        // Each id once, in order: the subscription repeats what the backlog already had.
        let followed = item.id() > sent && follows(item);
        if followed {
            sent = item.id();
        }
        std::future::ready(followed)
    });
    Ok(LiveFeed {
        resync,
        replayed_until,
        items: items.boxed(),
    })
}
