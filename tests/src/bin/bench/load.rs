//! The load generator: closed loops of HTTP requests against the backend, and what they
//! measured.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::system::{peak_rss_mib, CpuMeter, CpuSplit};

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub clients: usize,
    pub operations: u64,
    pub errors: u64,
    pub per_second: f64,
    /// Latency percentiles of single operations; `None` for rows that measure a rate only.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Peak RSS of the process doing the work (the backend, or the bench itself for
    /// in-process scenarios); `None` when the work is done by Postgres alone.
    pub peak_rss_mib: Option<f64>,
    /// CPU used while the scenario ran, per process group.
    pub cpu: Option<CpuSplit>,
    pub baseline: Option<String>,
    pub ratio_to_baseline: Option<f64>,
}

impl Row {
    /// A row from the latencies of successful operations.
    pub fn new(
        scenario: impl Into<String>,
        clients: usize,
        mut latencies: Vec<Duration>,
        errors: u64,
        elapsed: Duration,
    ) -> Self {
        latencies.sort();
        let percentile = |q: f64| {
            let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies.get(index).map(|l| l.as_secs_f64() * 1000.0)
        };
        Self {
            scenario: scenario.into(),
            clients,
            operations: latencies.len() as u64,
            errors,
            per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: percentile(0.50),
            p95_ms: percentile(0.95),
            p99_ms: percentile(0.99),
            peak_rss_mib: None,
            cpu: None,
            baseline: None,
            ratio_to_baseline: None,
        }
    }

    /// A row that measures a rate only: `operations` done in `elapsed`.
    pub fn rate(scenario: impl Into<String>, operations: u64, elapsed: Duration) -> Self {
        let mut row = Self::new(scenario, 1, Vec::new(), 0, elapsed);
        row.operations = operations;
        row.per_second = operations as f64 / elapsed.as_secs_f64().max(1e-9);
        row
    }

    /// Compares this row's throughput with `baseline`'s.
    pub fn against_throughput(mut self, baseline: &Row) -> Self {
        self.ratio_to_baseline = Some(self.per_second / baseline.per_second.max(1e-9));
        self.baseline = Some(format!(
            "{} {:.0}/s",
            baseline.scenario, baseline.per_second
        ));
        self
    }

    /// Compares this row's throughput with the framework baseline's (the ratio kept) and
    /// with pgbench's.
    pub fn against_both(self, framework: &Row, pgbench: &Row) -> Self {
        let mut row = self.against_throughput(framework);
        row.baseline = Some(format!(
            "{} {:.0}/s; {:.2}x {} {:.0}/s",
            framework.scenario,
            framework.per_second,
            row.per_second / pgbench.per_second.max(1e-9),
            pgbench.scenario,
            pgbench.per_second
        ));
        row
    }

    /// Compares this row's median latency with `baseline`'s (above 1 is slower).
    pub fn against_latency(mut self, baseline: &Row) -> Self {
        let (Some(mine), Some(theirs)) = (self.p50_ms, baseline.p50_ms) else {
            return self;
        };
        self.ratio_to_baseline = Some(mine / theirs.max(1e-9));
        self.baseline = Some(format!("p50 vs {} ({theirs:.2} ms)", baseline.scenario));
        self
    }
}

/// The backend under test, as a client sees it.
pub struct Target {
    pub base: String,
    pub key: String,
    pub client: reqwest::Client,
    pub pid: u32,
    pub meter: CpuMeter,
}

impl Target {
    /// A command: authenticated, with a fresh idempotency key.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(body)
    }

    /// A query.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
    }

    /// Sends a request; whether it succeeded.
    pub async fn ok(request: reqwest::RequestBuilder) -> bool {
        request
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }

    /// Runs `clients` closed loops of `operation` for `duration` and reports them as
    /// `scenario`, with the CPU each process group used meanwhile.
    pub async fn run<F, Fut>(
        &self,
        scenario: &str,
        clients: usize,
        duration: Duration,
        operation: F,
    ) -> Row
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send,
    {
        let cpu = self.meter.read();
        let (latencies, errors, elapsed) = closed_loops(clients, duration, operation).await;
        let mut row = Row::new(scenario, clients, latencies, errors, elapsed);
        row.cpu = Some(self.meter.since(&cpu));
        row.peak_rss_mib = Some(peak_rss_mib(self.pid));
        row
    }
}

/// `clients` loops, each issuing `operation(n)` back to back until `duration` has passed;
/// returns the latencies of successes, the number of failures and the time taken.
async fn closed_loops<F, Fut>(
    clients: usize,
    duration: Duration,
    operation: F,
) -> (Vec<Duration>, u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let operation = Arc::new(operation);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (operation, counter, errors) = (operation.clone(), counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let began = Instant::now();
                if operation(n).await {
                    latencies.push(began.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load loop panicked"));
    }
    (all, errors.load(Ordering::Relaxed), started.elapsed())
}
