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

/// A series made up when asked: `count` bars, one every `step` from `first`, whose values follow
/// from each bar's index (so a million bars cost no memory).
#[derive(Debug, Clone, Copy)]
struct Generated {
    first: DateTime<Utc>,
    step: chrono::Duration,
    count: i64,
}

impl Generated {
    /// The bars starting in `[start, end]`, earliest first, at most `limit` of them from the
    /// earliest (`earliest`) or the latest end.
    fn bars(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
        earliest: bool,
    ) -> Vec<(DateTime<Utc>, Values)> {
        let step = self.step.num_seconds().max(1);
        let index = |time: DateTime<Utc>| (time - self.first).num_seconds();
        let from = index(start).max(0);
        let low = from / step + i64::from(from % step != 0);
        let high = index(end).div_euclid(step).min(self.count - 1);
        if high < low {
            return Vec::new();
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (low, high) = if earliest {
            (low, high.min(low.saturating_add(limit - 1)))
        } else {
            (low.max(high.saturating_sub(limit - 1)), high)
        };
        (low..=high)
            .map(|n| {
                (
                    self.first + chrono::Duration::seconds(n * step),
                    Self::values(n),
                )
            })
            .collect()
    }

    /// Bar `n`'s values: prices around 100 in cents, low <= open, close <= high.
    fn values(n: i64) -> Values {
        let cents = 10_000 + (n * 37) % 2_000;
        let price = |c: i64| format!("{}.{:02}", c / 100, c % 100);
        [
            price(cents),
            price(cents + 60),
            price(cents - 40),
            price(cents + 25),
            (1_000 + n % 97).to_string(),
        ]
    }
}

#[derive(Debug, Default)]
struct Shared {
    api_key: String,
    series: Mutex<Series>,
    generated: Mutex<BTreeMap<(String, String), Generated>>,
    /// When set, any other symbol is served made-up bars from this time until now.
    any_from: Mutex<Option<DateTime<Utc>>>,
    /// Requests still to be answered with 503.
    failures: AtomicU32,
    /// How long each answer waits, in milliseconds.
    delay_ms: AtomicU64,
    /// Requests received.
    requests: AtomicU64,
    /// When each request came.
    arrivals: Mutex<Vec<std::time::Instant>>,
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
    shared
        .arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(std::time::Instant::now());
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
    let key = (asked.symbol.clone(), asked.interval.clone());
    // The provider's default order is newest first.
    let ascending = asked.order.as_deref() == Some("asc");
    let mut bars: Vec<(DateTime<Utc>, Values)> = {
        let series = shared.series.lock().unwrap_or_else(PoisonError::into_inner);
        let generated = shared
            .generated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(bars) = series.get(&key) {
            bars.range(start..=end)
                .map(|(time, values)| (*time, values.clone()))
                .collect()
        } else if let Some(generated) = generated.get(&key) {
            generated.bars(start, end, asked.outputsize, ascending)
        } else if let Some(any) = made_up(&shared, &asked.interval) {
            any.bars(start, end, asked.outputsize, ascending)
        } else {
            return problem(StatusCode::NOT_FOUND, "symbol not found");
        }
    };
    if !ascending {
        bars.reverse();
    }
    bars.truncate(asked.outputsize);
    let format = if asked.interval == "1day" {
        "%Y-%m-%d"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let values: Vec<_> = bars
        .iter()
        .map(|(time, [open, high, low, close, volume])| {
            json!({"datetime": time.format(format).to_string(), "open": open, "high": high,
                   "low": low, "close": close, "volume": volume})
        })
        .collect();
    Json(
        json!({"meta": {"symbol": asked.symbol, "interval": asked.interval}, "values": values,
                "status": "ok"}),
    )
    .into_response()
}

/// The made-up series of any symbol at `interval`, when the stand-in serves any: every
/// completed bar from its start until now.
fn made_up(shared: &Shared, interval: &str) -> Option<Generated> {
    let first = (*shared
        .any_from
        .lock()
        .unwrap_or_else(PoisonError::into_inner))?;
    let step = domain::prices::Interval::by_name(interval)?.seconds();
    Some(Generated {
        first,
        step: chrono::Duration::seconds(step),
        count: (Utc::now() - first).num_seconds().max(0) / step,
    })
}

impl StandInProvider {
    /// Starts one on a free local port, accepting `api_key`.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start(api_key: &str) -> Self {
        Self::start_on("127.0.0.1:0", api_key).await
    }

    /// Starts one on `address`, accepting `api_key`.
    ///
    /// # Panics
    /// When `address` cannot be bound.
    pub async fn start_on(address: &str, api_key: &str) -> Self {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            ..Shared::default()
        });
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
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

    /// Serves `count` made-up bars for `symbol` at `interval`, one every `step` from `first`
    /// (values follow from each bar's index; none is held in memory).
    pub fn generate(
        &self,
        symbol: &str,
        interval: &str,
        first: DateTime<Utc>,
        step: Duration,
        count: i64,
    ) {
        let step = chrono::Duration::from_std(step).expect("a step of sensible length");
        self.shared
            .generated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (symbol.to_owned(), interval.to_owned()),
                Generated { first, step, count },
            );
    }

    /// Serves every other symbol made-up bars from `first` until now, at whatever interval is
    /// asked for.
    pub fn serve_any_from(&self, first: DateTime<Utc>) {
        *self
            .shared
            .any_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(first);
    }

    /// Waits until the server stops (it does not, unless its task fails).
    pub async fn serve_forever(mut self) {
        let _ = (&mut self.server).await;
    }

    /// Stops serving the bars of `symbol` at `interval` that start in `range` (as a provider
    /// that lost some of its history would).
    pub fn remove(&self, symbol: &str, interval: &str, range: std::ops::Range<DateTime<Utc>>) {
        let mut series = self
            .shared
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(bars) = series.get_mut(&(symbol.to_owned(), interval.to_owned())) {
            bars.retain(|time, _| !range.contains(time));
        }
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

    /// When each request it received came, in order.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.shared
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests it received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}
