//! The market-data provider over HTTP (a TwelveData-style `time_series` endpoint), and the
//! circuit breaker that keeps the importer from hammering a provider that is down.
//!
//! One request asks for an asset's bars of one interval from a start time, oldest first, at
//! most a page of them; the importer pages through a range. Every request has a timeout. What
//! the provider answers is checked as the API checks what clients send: exact decimals, bars
//! whose low and high bound their open and close, times that start an interval.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::prices::{parse_decimal, Bar, Interval, Reported};
use serde::Deserialize;
use tokio::time::Instant;

/// Where the provider is and how to ask it.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The provider's name, recorded as the source of every bar it reports.
    pub name: String,
    /// Its base URL; requests go to `{base_url}/time_series`.
    pub base_url: String,
    /// The API key sent as `apikey`.
    pub api_key: String,
    /// The longest a request may take, connecting included.
    pub timeout: Duration,
    /// The most bars one request asks for (`outputsize`).
    pub page_size: u32,
}

/// Why a request for bars failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider did not answer in time, could not be reached, or failed (5xx).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider is limiting our requests (429).
    #[error("provider rate limit: {0}")]
    RateLimited(String),
    /// The provider refused the request (a bad key, an unknown symbol).
    #[error("provider refused the request: {0}")]
    Refused(String),
    /// The provider answered something that is not a valid series.
    #[error("provider answered an invalid series: {0}")]
    Malformed(String),
}

impl ProviderError {
    /// Whether the failure says the provider is unwell (it counts toward opening the breaker);
    /// a refusal or an invalid answer is about the request or the data.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::RateLimited(_))
    }
}

/// A page of bars: those the provider reported from the start asked for, oldest first, and
/// whether it may hold more (the page was full).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The bars, oldest first, each starting before the end asked for.
    pub bars: Vec<Reported>,
    /// Whether the page was full: more bars may follow the last one.
    pub full: bool,
}

/// The provider's client.
#[derive(Debug, Clone)]
pub struct Provider {
    settings: ProviderSettings,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: Option<String>,
    code: Option<u16>,
    message: Option<String>,
    #[serde(default)]
    values: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Value {
    datetime: String,
    open: String,
    high: String,
    low: String,
    close: String,
    volume: Option<String>,
}

impl Provider {
    /// A client for the provider `settings` describe.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(settings: ProviderSettings) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|error| ProviderError::Unavailable(error.to_string()))?;
        Ok(Self { settings, client })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Bars of `symbol` on `exchange` at `interval` starting in `[from, to)`, oldest first, at
    /// most a page of them.
    ///
    /// # Errors
    /// [`ProviderError`].
    pub async fn page(
        &self,
        symbol: &str,
        exchange: &str,
        interval: Interval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Page, ProviderError> {
        let url = format!(
            "{}/time_series",
            self.settings.base_url.trim_end_matches('/')
        );
        let last = to - chrono::Duration::seconds(1);
        let response = self
            .client
            .get(url)
            .query(&[
                ("symbol", symbol),
                ("mic_code", exchange),
                ("interval", interval.as_str()),
                ("start_date", &from.format("%Y-%m-%d %H:%M:%S").to_string()),
                ("end_date", &last.format("%Y-%m-%d %H:%M:%S").to_string()),
                ("timezone", "UTC"),
                ("order", "asc"),
                ("outputsize", &self.settings.page_size.to_string()),
                ("apikey", &self.settings.api_key),
            ])
            .send()
            .await
            .map_err(|error| ProviderError::Unavailable(describe(&error)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::Unavailable(describe(&error)))?;
        let answer: Option<Answer> = serde_json::from_slice(&body).ok();
        let refusal = answer
            .as_ref()
            .filter(|answer| answer.status.as_deref() == Some("error"))
            .map(|answer| {
                let code = answer.code.unwrap_or(status.as_u16());
                let message = answer.message.clone().unwrap_or_default();
                (code, format!("{code} {message}"))
            });
        // A range without bars (a holiday, before the listing) is an answer, not a failure.
        let no_data = refusal.as_ref().is_some_and(|(code, message)| {
            let message = message.to_ascii_lowercase();
            *code == 400 && message.trim_start_matches("400 ").starts_with("no data")
        });
        if no_data {
            return Ok(Page {
                bars: Vec::new(),
                full: false,
            });
        }
        let failure = match (status.as_u16(), refusal) {
            (_, Some((429, message))) | (429, Some((_, message))) => {
                Some(ProviderError::RateLimited(message))
            }
            (429, None) => Some(ProviderError::RateLimited(status.to_string())),
            (_, Some((code, message))) if code >= 500 => Some(ProviderError::Unavailable(message)),
            (_, Some((_, message))) => Some(ProviderError::Refused(message)),
            (code, None) if code >= 500 => Some(ProviderError::Unavailable(status.to_string())),
            (code, None) if code >= 400 => Some(ProviderError::Refused(status.to_string())),
            _ => None,
        };
        if let Some(failure) = failure {
            return Err(failure);
        }
        let answer =
            answer.ok_or_else(|| ProviderError::Malformed("not a time series".to_owned()))?;
        let full = answer.values.len() >= self.settings.page_size as usize;
        let mut bars = Vec::with_capacity(answer.values.len());
        for value in answer.values {
            let reported = reported(&value, interval)?;
            if reported.time >= from && reported.time < to {
                bars.push(reported);
            }
        }
        bars.sort_by_key(|reported| reported.time);
        if full && bars.is_empty() {
            // Paging on would ask the same again: the provider ignores the range asked for.
            return Err(ProviderError::Malformed(
                "a full page without a bar in the range asked for".to_owned(),
            ));
        }
        Ok(Page { bars, full })
    }
}

/// An error of the HTTP client, with its cause (a timeout says so).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.to_string()
    }
}

/// One reported value as a bar, checked.
fn reported(value: &Value, interval: Interval) -> Result<Reported, ProviderError> {
    let malformed = |what: String| ProviderError::Malformed(format!("{}: {what}", value.datetime));
    let time = NaiveDateTime::parse_from_str(&value.datetime, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| {
            NaiveDate::parse_from_str(&value.datetime, "%Y-%m-%d")
                .map(|date| date.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| malformed("not a date or time".to_owned()))?
        .and_utc();
    if !interval.aligned(time) {
        return Err(malformed(format!("does not start a {interval} bar")));
    }
    let decimal = |raw: &str| parse_decimal(raw).map_err(|error| malformed(error.to_string()));
    let bar = Bar::new(
        decimal(&value.open)?,
        decimal(&value.high)?,
        decimal(&value.low)?,
        decimal(&value.close)?,
        decimal(value.volume.as_deref().unwrap_or("0"))?,
    )
    .map_err(|error| malformed(error.to_string()))?;
    Ok(Reported { time, bar })
}

/// A circuit breaker for one provider: closed, it lets requests through and counts outages in a
/// row; after `threshold` of them it opens for `cooldown`, letting nothing through; then one
/// probe goes through (half-open): success closes it, another outage opens it again.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through; `failures` outages in a row so far.
    Closed {
        /// Outages in a row.
        failures: u32,
    },
    /// Nothing goes through until `until`.
    Open {
        /// When a probe may go through.
        until: Instant,
    },
    /// One probe is through; its outcome decides.
    HalfOpen,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` outages in a row, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    /// Where it stands now.
    pub fn state(&self) -> BreakerState {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a request may go through now; an open breaker whose cooldown has passed lets
    /// one probe through and is half-open until its outcome is known.
    pub fn admit(&self) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until } if Instant::now() >= until => {
                *state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => false,
        }
    }

    /// Gives back a half-open breaker's probe that made no request: the next request probes.
    pub fn release(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *state == BreakerState::HalfOpen {
            *state = BreakerState::Open {
                until: Instant::now(),
            };
        }
    }

    /// Records the outcome of a request that went through.
    pub fn record(&self, outcome: Result<(), &ProviderError>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outage = matches!(outcome, Err(error) if error.is_outage());
        *state = match (*state, outage) {
            (_, false) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, true) if failures + 1 < self.threshold => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            (_, true) => BreakerState::Open {
                until: Instant::now() + self.cooldown,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_outages_in_a_row_and_probes_once_after_its_cooldown() {
        let breaker = Breaker::new(3, Duration::from_secs(30));
        let outage = ProviderError::Unavailable("503".to_owned());
        let refusal = ProviderError::Refused("unknown symbol".to_owned());
        breaker.record(Err(&outage));
        breaker.record(Err(&outage));
        breaker.record(Err(&refusal));
        assert_eq!(
            breaker.state(),
            BreakerState::Closed { failures: 0 },
            "a refusal is no outage"
        );
        for _ in 0..3 {
            assert!(breaker.admit());
            breaker.record(Err(&outage));
        }
        assert!(!breaker.admit(), "open");
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(!breaker.admit(), "still open");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(breaker.admit(), "one probe");
        assert!(!breaker.admit(), "only one");
        breaker.record(Err(&outage));
        assert!(!breaker.admit(), "the failed probe opens it again");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(breaker.admit());
        breaker.record(Ok(()));
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
        assert!(breaker.admit());
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_made_no_request_is_given_back() {
        let breaker = Breaker::new(1, Duration::from_secs(30));
        breaker.record(Err(&ProviderError::Unavailable("503".to_owned())));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(breaker.admit(), "the probe");
        breaker.release();
        assert!(breaker.admit(), "given back: the next attempt probes");
        breaker.record(Ok(()));
        breaker.release();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed { failures: 0 },
            "a no-op once decided"
        );
    }

    #[test]
    fn reported_values_are_checked_like_requests() {
        let value = |datetime: &str, high: &str| Value {
            datetime: datetime.to_owned(),
            open: "187.15000".to_owned(),
            high: high.to_owned(),
            low: "186.2".to_owned(),
            close: "188.31".to_owned(),
            volume: None,
        };
        let bar = reported(&value("2026-03-02", "189"), Interval::Day).unwrap();
        assert_eq!(bar.time.to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(bar.bar.open.to_string(), "187.15");
        assert_eq!(bar.bar.volume.to_string(), "0");
        let hourly = reported(&value("2026-03-02 09:00:00", "189"), Interval::Hour).unwrap();
        assert_eq!(hourly.time.to_rfc3339(), "2026-03-02T09:00:00+00:00");
        for (datetime, high, interval) in [
            ("2026-03-02 09:30:00", "189", Interval::Hour),
            ("2026-03-02", "188", Interval::Day),
            ("2026-03-02", "1e3", Interval::Day),
            ("yesterday", "189", Interval::Day),
        ] {
            let error = reported(&value(datetime, high), interval).unwrap_err();
            assert!(
                matches!(error, ProviderError::Malformed(_)),
                "{datetime} {high}"
            );
        }
    }
}
