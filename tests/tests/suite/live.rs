//! Live job updates over Server-Sent Events: resumption after `Last-Event-ID`, and one
//! JetStream subscription per process shared by every live client.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with};
use crate::workers::{submit, submitter};

/// One server-sent event.
#[derive(Debug, Default)]
pub(crate) struct SseEvent {
    pub(crate) event: String,
    pub(crate) id: String,
    pub(crate) data: String,
}

/// Reads server-sent events off a streaming response, one at a time.
pub(crate) struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event (keep-alive comments skipped), within a generous deadline.
    pub(crate) async fn next(&mut self) -> SseEvent {
        let read = async {
            loop {
                if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                    let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                    let mut event = SseEvent::default();
                    for line in String::from_utf8(frame).unwrap().lines() {
                        let field = |name: &str| line.strip_prefix(name).map(str::trim_start);
                        if let Some(value) = field("event:") {
                            event.event = value.to_owned();
                        } else if let Some(value) = field("id:") {
                            event.id = value.to_owned();
                        } else if let Some(value) = field("data:") {
                            event.data.push_str(value);
                        }
                    }
                    if !event.event.is_empty() {
                        return event;
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap();
                self.buffer
                    .extend_from_slice(&chunk.expect("the event stream ended"));
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("a server-sent event within 30 s")
    }

    /// The next `job` event, as (id, update).
    async fn next_job(&mut self) -> (u64, Value) {
        let event = self.next().await;
        assert_eq!(event.event, "job", "{event:?}");
        (
            event.id.parse().unwrap(),
            serde_json::from_str(&event.data).unwrap(),
        )
    }
}

/// The live job feed: ids are positions, and a client that reconnects with `Last-Event-ID`
/// gets exactly what it missed, in order, then live updates; a bad id is a clear 400.
#[tokio::test]
async fn live_updates_resume_from_the_last_event_id() {
    let app = spawn_app_with(|_| {}).await;
    let (key, document) = submitter(&app).await;
    let open = |last_event_id: Option<u64>| {
        let request = app.request(Method::GET, "/api/v1/jobs/live");
        match last_event_id {
            Some(id) => request.header("last-event-id", id.to_string()),
            None => request,
        }
        .send()
    };
    let mut live = EventStream::new(open(None).await.unwrap());
    let first = submit(&app, &key, &document).await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut last, update) = live.next_job().await;
    assert_eq!(update["job_id"], first);
    assert_eq!(update["event_type"], "JobSubmitted");
    assert_eq!(update["status"], "queued");
    // Whatever else the submit recorded arrives too; the client disconnects after that.
    while let Ok((id, _)) = tokio::time::timeout(Duration::from_secs(1), live.next_job()).await {
        last = id;
    }
    drop(live);

    // While nobody listens: a second job, and the first one cancelled.
    let second = submit(&app, &key, &document).await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = app
        .anonymous(Method::POST, &format!("/api/v1/jobs/{first}/cancel"))
        .header("x-api-key", &key)
        .json(&json!({ "reason": "changed my mind" }))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);

    let mut resumed = EventStream::new(open(Some(last)).await.unwrap());
    let mut previous = last;
    let mut replayed = Vec::new();
    while !replayed
        .iter()
        .any(|update: &Value| update["job_id"] == first && update["status"] == "cancelled")
    {
        let (id, update) = resumed.next_job().await;
        assert!(id > previous, "ids increase: {id} after {previous}");
        previous = id;
        replayed.push(update);
    }
    assert_eq!(
        replayed[0]["job_id"], second,
        "nothing before the missed events"
    );
    assert_eq!(replayed[0]["event_type"], "JobSubmitted");
    assert!(
        !replayed
            .iter()
            .any(|update| update["job_id"] == first && update["event_type"] == "JobSubmitted"),
        "nothing the client had already seen"
    );

    let bad = app
        .request(Method::GET, "/api/v1/jobs/live")
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid_last_event_id").await;
}

/// Every live client of a process shares its one subscription: with twenty clients open the
/// stream has one ephemeral consumer (not twenty), and each client receives the update.
#[tokio::test]
async fn live_clients_share_one_subscription() {
    let app = spawn_app_with(|settings| settings.http.live_streams_per_principal = 32).await;
    let (key, document) = submitter(&app).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let response = app
            .request(Method::GET, "/api/v1/jobs/live")
            .send()
            .await
            .unwrap();
        clients.push(EventStream::new(response));
    }
    let job = submit(&app, &key, &document).await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for client in &mut clients {
        let (_, update) = client.next_job().await;
        assert_eq!(update["job_id"], job);
        assert_eq!(update["event_type"], "JobSubmitted");
    }
    // Durable consumers are the projections'; ephemeral ones are live feeds.
    let stream = app.stream().await;
    let consumers: Vec<_> = stream.consumers().collect().await;
    let ephemeral = consumers
        .into_iter()
        .map(Result::unwrap)
        .filter(|info| info.config.durable_name.is_none())
        .count();
    assert_eq!(ephemeral, 1, "one subscription for twenty live clients");
}
