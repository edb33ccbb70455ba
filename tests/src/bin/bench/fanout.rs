//! Live feeds at scale: 1,000 SSE clients following the tenant's jobs while jobs are submitted
//! at a steady 200 per second. Delivery latency is the time from the event's own timestamp
//! (taken by the backend when the command was decided) until a client has read it; the row
//! also shows the backend's peak RSS and how many JetStream consumers the stream had meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::task::JoinSet;

use crate::load::{Row, Target};
use crate::system::peak_rss_mib;

/// Live clients.
pub const CLIENTS: usize = 1_000;
/// Jobs submitted per second while they listen.
const RATE: u64 = 200;
/// How long jobs are submitted.
const RUN: Duration = Duration::from_secs(10);

/// The `at` of a `job` event's data, found without decoding the whole update.
fn event_time(data: &str) -> Option<DateTime<Utc>> {
    let start = data.find("\"at\":\"")? + 6;
    let end = start + data[start..].find('"')?;
    data[start..end].parse().ok()
}

/// Reads one client's stream until `stop`, returning the delivery latency of every update.
async fn listen(response: reqwest::Response, stop: Instant) -> Vec<Duration> {
    let mut response = response;
    let mut latencies = Vec::new();
    let mut buffer = String::new();
    while Instant::now() < stop {
        let chunk = match tokio::time::timeout_at(stop.into(), response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => break,
        };
        let received = Utc::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data = frame.lines().find_map(|line| line.strip_prefix("data:"));
            if let Some(at) = data.and_then(event_time) {
                latencies.push((received - at).to_std().unwrap_or_default());
            }
        }
    }
    latencies
}

/// Runs the scenario against `target` (whose live-stream caps allow [`CLIENTS`] streams),
/// submitting jobs on `document`; `consumers` reads the event stream's consumer count.
pub async fn sse_fanout<F, Fut>(target: &Arc<Target>, document: &str, consumers: F) -> Row
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let before = consumers().await;
    let mut open = Vec::new();
    let mut refused = 0u64;
    for _ in 0..CLIENTS {
        match target.get("/api/v1/jobs/live").send().await {
            Ok(response) if response.status().is_success() => open.push(response),
            _ => refused += 1,
        }
    }
    let during = consumers().await;
    // Every client reads until the last submit's updates have had 5 s to arrive.
    let stop = Instant::now() + RUN + Duration::from_secs(5);
    let mut clients = JoinSet::new();
    for response in open {
        clients.spawn(listen(response, stop));
    }
    let cpu = target.meter.read();
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut submits = JoinSet::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE as f64));
    while started.elapsed() < RUN {
        ticks.tick().await;
        let (target, document, sent) = (target.clone(), document.to_owned(), sent.clone());
        submits.spawn(async move {
            let body = json!({
                "kind": "translation", "source_language": "en", "target_language": "de",
                "document_id": document, "priority": 1,
            });
            if Target::ok(target.post("/api/v1/jobs", &body)).await {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while submits.join_next().await.is_some() {}
    let mut latencies = Vec::new();
    while let Some(client) = clients.join_next().await {
        latencies.extend(client.unwrap_or_default());
    }
    let delivered = latencies.len() as u64;
    // Each accepted submit records at least one event every client should have read.
    let expected = sent.load(Ordering::Relaxed) * (CLIENTS as u64 - refused);
    let mut row = Row::new(
        format!("live job updates: {CLIENTS} SSE clients, {RATE} jobs/s submitted"),
        CLIENTS,
        latencies,
        refused + expected.saturating_sub(delivered),
        started.elapsed(),
    );
    row.operations = delivered;
    row.cpu = Some(target.meter.since(&cpu));
    row.peak_rss_mib = Some(peak_rss_mib(target.pid));
    row.baseline = Some(format!(
        "JetStream consumers: {before} before the clients, {during} with {} of them open",
        CLIENTS as u64 - refused
    ));
    row
}
