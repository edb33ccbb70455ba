//! Caps on long-lived responses (Server-Sent Events): each open stream holds a permit, a
//! principal holds at most a few, a process serves at most a configured number, and every stream
//! ends when the process shuts down, so a drain never waits on a client that never leaves.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use commands::tenants::TenantCommands;
use domain::identity::{Principal, TenantId};
use futures::{Stream, StreamExt};
use projections::live::{LiveFeed, LiveItem};
use tokio_util::sync::CancellationToken;

use crate::http::error::ApiError;

/// How often an open stream checks that its tenant is not suspended.
const STANDING_EVERY: Duration = Duration::from_secs(5);

/// The open live streams of one process.
#[derive(Debug)]
pub struct LiveStreams {
    per_principal: usize,
    per_process: usize,
    open: Mutex<Open>,
    shutdown: CancellationToken,
    tenants: Option<Arc<TenantCommands>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_principal: HashMap<String, usize>,
}

impl LiveStreams {
    /// Caps of `per_principal` and `per_process` streams; every stream ends on `shutdown`.
    pub fn new(per_principal: usize, per_process: usize, shutdown: CancellationToken) -> Self {
        Self {
            per_principal,
            per_process,
            open: Mutex::new(Open::default()),
            shutdown,
            tenants: None,
        }
    }

    /// Ends a stream within [`STANDING_EVERY`] of its tenant's suspension (checked in the event
    /// store, so a suspension made by any process counts).
    #[must_use]
    pub fn ending_on_suspension(mut self, tenants: Arc<TenantCommands>) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// A permit for one more stream of `principal`.
    ///
    /// # Errors
    /// 429 when the principal or the process is at its cap, 503 while shutting down.
    pub fn open(self: &Arc<Self>, principal: &Principal) -> Result<LivePermit, ApiError> {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::Unavailable("the server is shutting down".into()));
        }
        let key = format!("{}/{}", principal.tenant, principal.id);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.by_principal.get(&key).copied().unwrap_or(0);
        if mine >= self.per_principal {
            return Err(ApiError::TooManyStreams(format!(
                "this principal already holds {mine} live streams, the most allowed; close one \
                 before opening another"
            )));
        }
        if open.total >= self.per_process {
            return Err(ApiError::TooManyStreams(
                "this server holds as many live streams as it serves; retry later or elsewhere"
                    .to_owned(),
            ));
        }
        open.total += 1;
        *open.by_principal.entry(key.clone()).or_default() += 1;
        Ok(LivePermit {
            streams: Arc::clone(self),
            key,
            tenant: principal.tenant.clone(),
        })
    }

    /// `stream`, holding `permit` for as long as it runs, ended at shutdown and when its
    /// tenant is suspended.
    pub fn serve<S: Stream + Send + 'static>(
        &self,
        permit: LivePermit,
        stream: S,
    ) -> impl Stream<Item = S::Item> + Send + 'static {
        let suspended = self.tenants.clone().map(|tenants| {
            let tenant = permit.tenant.clone();
            Box::pin(async move { suspension(&tenants, &tenant).await })
        });
        let ended = futures::future::select(
            Box::pin(self.shutdown.clone().cancelled_owned()),
            suspended.map_or_else(
                || futures::future::Either::Left(futures::future::pending::<()>()),
                futures::future::Either::Right,
            ),
        );
        stream.take_until(ended).map(move |item| {
            let _held = &permit;
            item
        })
    }
}

/// The id a reconnecting client resumes after (`Last-Event-ID`), when it sent one.
///
/// # Errors
/// 400 `invalid_last_event_id` when it is not an id a live stream sends (0 to 2^63 - 1).
pub fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|id| id.parse::<u64>().ok())
                // As documented: an int64 (no stream holds more messages).
                .filter(|id| i64::try_from(*id).is_ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be the id of an event this stream sent (an integer)",
                    )
                })
        })
        .transpose()
}

impl LiveStreams {
    /// `feed` as Server-Sent Events, holding `permit`: `event: resync` first (with `reread` as
    /// its data) when what the client asked to resume after is no longer retained, then each
    /// item as `event: {name}` with its id, kept alive by comments every 15 seconds.
    pub fn events<T: LiveItem + Send + Sync + 'static>(
        &self,
        permit: LivePermit,
        feed: LiveFeed<T>,
        name: &'static str,
        reread: &'static str,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
        let resync = feed
            .resync
            .then(|| Ok(Event::default().event("resync").data(reread)));
        let items = feed.items.map(move |item| {
            Ok(Event::default()
                .event(name)
                .id(item.id().to_string())
                .data(item.json()))
        });
        let events = futures::stream::iter(resync).chain(items);
        Sse::new(self.serve(permit, events))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }
}

/// Returns once `tenant` is seen suspended (a store that cannot be read is asked again).
async fn suspension(tenants: &TenantCommands, tenant: &TenantId) {
    let mut every = tokio::time::interval(STANDING_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        if let Ok(standing) = tenants.load(tenant).await {
            if standing.state().suspension().is_some() {
                return;
            }
        }
    }
}

/// One open stream; dropping it frees its place.
#[derive(Debug)]
pub struct LivePermit {
    streams: Arc<LiveStreams>,
    key: String,
    tenant: TenantId,
}

impl Drop for LivePermit {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_principal.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.by_principal.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::identity::Role;
    use uuid::Uuid;

    use super::*;

    fn principal() -> Principal {
        Principal::api_key(
            TenantId::parse("acme").unwrap(),
            Uuid::new_v4(),
            [Role::Admin].into(),
        )
    }

    #[test]
    fn a_principal_and_a_process_meet_their_caps_and_closing_frees_a_place() {
        let streams = Arc::new(LiveStreams::new(2, 3, CancellationToken::new()));
        let (one, two) = (principal(), principal());
        let first = streams.open(&one).unwrap();
        let _second = streams.open(&one).unwrap();
        assert!(matches!(
            streams.open(&one),
            Err(ApiError::TooManyStreams(_))
        ));
        let _third = streams.open(&two).unwrap();
        assert!(matches!(
            streams.open(&two),
            Err(ApiError::TooManyStreams(_))
        ));
        drop(first);
        assert!(streams.open(&two).is_ok());
    }

    #[tokio::test]
    async fn streams_end_at_shutdown() {
        let shutdown = CancellationToken::new();
        let streams = Arc::new(LiveStreams::new(1, 1, shutdown.clone()));
        let permit = streams.open(&principal()).unwrap();
        let endless = streams.serve(permit, futures::stream::pending::<()>());
        shutdown.cancel();
        assert_eq!(endless.collect::<Vec<_>>().await, Vec::<()>::new());
        assert!(matches!(
            streams.open(&principal()),
            Err(ApiError::Unavailable(_))
        ));
    }
}
