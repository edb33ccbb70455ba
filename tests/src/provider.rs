//! A stand-in for the market-data provider (a TwelveData-style `GET /time_series`), which the
//! tests cannot reach: it serves the bars a test gives it, in pages, and can be made slow,
//! failing or inconsistent (a test replaces a bar's values between two imports).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::json;

/// One bar's values as the provider writes them: open, high, low, close, volume.
pub type Values = [String; 5];

/// Bars by (symbol, interval), by start.
type Series = BTreeMap<(String, String), BTreeMap<DateTime<Utc>, Values>>;

#[derive(Debug, Default)]
struct Shared {
    api_key: String,
    series: Mutex<Series>,
    /// Requests still to be answered with 503.
    failures: AtomicU32,
    /// How long each answer waits, in milliseconds.
    delay_ms: AtomicU64,
    /// Requests received.
    requests: AtomicU64,
}

/// The running stand-in.
#[derive(Debug)]
pub struct StandInProvider {
    /// Its base URL.
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandInProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug, Deserialize)]
struct Asked {
    symbol: String,
    interval: String,
    start_date: String,
    end_date: String,
    outputsize: usize,
    apikey: String,
    order: Option<String>,
}

fn problem(status: StatusCode, message: &str) -> Response {
    let body = json!({"code": status.as_u16(), "message": message, "status": "error"});
    (status, Json(body)).into_response()
}

async fn time_series(State(shared): State<Arc<Shared>>, Query(asked): Query<Asked>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let failing = shared
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if failing {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "upstream overloaded");
    }
    if asked.apikey != shared.api_key {
        return problem(StatusCode::UNAUTHORIZED, "invalid api key");
    }
    let time =
        |raw: &str| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S").map(|t| t.and_utc());
    let (Ok(start), Ok(end)) = (time(&asked.start_date), time(&asked.end_date)) else {
        return problem(StatusCode::BAD_REQUEST, "invalid start_date or end_date");
    };
    let series = shared.series.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(bars) = series.get(&(asked.symbol.clone(), asked.interval.clone())) else {
        return problem(StatusCode::NOT_FOUND, "symbol not found");
    };
    let format = if asked.interval == "1day" {
        "%Y-%m-%d"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let mut values: Vec<_> = bars
        .range(start..=end)
        .map(|(time, [open, high, low, close, volume])| {
            json!({"datetime": time.format(format).to_string(), "open": open, "high": high,
                   "low": low, "close": close, "volume": volume})
        })
        .collect();
    // The provider's default order is newest first.
    if asked.order.as_deref() != Some("asc") {
        values.reverse();
    }
    values.truncate(asked.outputsize);
    Json(
        json!({"meta": {"symbol": asked.symbol, "interval": asked.interval}, "values": values,
                "status": "ok"}),
    )
    .into_response()
}

impl StandInProvider {
    /// Starts one on a free local port, accepting `api_key`.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start(api_key: &str) -> Self {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            ..Shared::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let app = Router::new()
            .route("/time_series", get(time_series))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// Serves `bars` (each replacing the one of its start) for `symbol` at `interval`.
    pub fn put(
        &self,
        symbol: &str,
        interval: &str,
        bars: impl IntoIterator<Item = (DateTime<Utc>, Values)>,
    ) {
        let mut series = self
            .shared
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        series
            .entry((symbol.to_owned(), interval.to_owned()))
            .or_default()
            .extend(bars);
    }

    /// Answers the next `count` requests with 503.
    pub fn fail_next(&self, count: u32) {
        self.shared.failures.store(count, Ordering::SeqCst);
    }

    /// Makes every answer wait `delay`.
    pub fn delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// How many requests it received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}
