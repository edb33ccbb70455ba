//! Recording reported bars (admins and workers): checked whole, then appended series by series.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::PriceAction;
use domain::prices::{parse_decimal, Bar, Decimal, ImportSource, Reported};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{Caller, IdPath, JsonBody};
use crate::http::schema;
use crate::routes::AppState;

/// The most bars one request records: what fits the default request body limit (64 KiB) with
/// every value at its longest. Imports by the backend's own worker are not bound by it.
const MAX_BARS_PER_REQUEST: usize = 200;
/// What recorded bars name as their provider.
const RECORDED_OVER_HTTP: &str = "api";

/// One reported bar.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BarInput {
    /// When it starts: a multiple of its interval since the Unix epoch, UTC.
    pub time: DateTime<Utc>,
    /// The first price.
    #[schema(value_type = schema::prices::Decimal)]
    pub open: String,
    /// The highest price: at least `open`, `close` and `low`.
    #[schema(value_type = schema::prices::Decimal)]
    pub high: String,
    /// The lowest price: at most `open` and `close`.
    #[schema(value_type = schema::prices::Decimal)]
    pub low: String,
    /// The last price.
    #[schema(value_type = schema::prices::Decimal)]
    pub close: String,
    /// The volume traded.
    #[schema(value_type = schema::prices::Decimal)]
    pub volume: String,
}

/// Record reported bars of one interval.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"interval": "1day", "bars": [{"time": "2026-03-02T00:00:00Z", "open": "187.15", "high": "189.00", "low": "186.20", "close": "188.31", "volume": "51234000"}]})))]
pub struct RecordBars {
    /// The bars' interval.
    #[schema(value_type = schema::prices::Interval)]
    pub interval: String,
    /// The bars, in any order. A bar recorded before with the same values changes nothing;
    /// with other values it is corrected (the old values are kept in its correction history).
    #[schema(min_items = 1, max_items = 200)]
    pub bars: Vec<BarInput>,
}

/// One series stream a recording appended to (or found unchanged).
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesRecorded {
    /// The series stream (the asset's bars of one interval and period).
    pub series_id: Uuid,
    /// Its version after the recording.
    pub version: u64,
    /// Give this to a query to read this series' bars as recorded.
    pub consistency_token: String,
}

/// What a recording appended, series by series, earliest period first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarsRecorded {
    /// Each series the bars fell into.
    pub series: Vec<SeriesRecorded>,
}

/// The reported bars, or every error, each named by its place in the request.
fn reported(bars: &[BarInput]) -> Result<Vec<Reported>, ApiError> {
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(bars.len());
    for (index, input) in bars.iter().enumerate() {
        let mut values = [Decimal::ZERO; 5];
        let raw = [
            ("open", &input.open),
            ("high", &input.high),
            ("low", &input.low),
            ("close", &input.close),
            ("volume", &input.volume),
        ];
        let mut valid = true;
        for (slot, (name, raw)) in values.iter_mut().zip(raw) {
            match parse_decimal(raw) {
                Ok(value) => *slot = value,
                Err(error) => {
                    valid = false;
                    errors.push(FieldError {
                        field: format!("bars[{index}].{name}"),
                        code: "invalid_decimal".to_owned(),
                        message: error.rule.to_owned(),
                    });
                }
            }
        }
        if !valid {
            continue;
        }
        let [open, high, low, close, volume] = values;
        match Bar::new(open, high, low, close, volume) {
            Ok(bar) => parsed.push(Reported {
                time: input.time,
                bar,
            }),
            Err(error) => errors.push(FieldError {
                field: format!("bars[{index}]"),
                code: domain::error::DomainError::code(&error).to_owned(),
                message: error.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Record reported bars of an asset (admins and workers): new bars are recorded, changed ones
/// corrected with their previous values kept, unchanged ones ignored; nothing is removed.
/// Recording the same bars again changes nothing, so a retry is always safe.
#[utoipa::path(
    post, path = "/api/v1/assets/{id}/bars", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Accepted; recording is idempotent by nature")),
    request_body = RecordBars,
    responses(
        (status = 200, description = "Recorded, series by series", body = BarsRecorded),
        (status = 404, description = "No such asset", body = Problem),
        (status = 409, description = "The asset is delisted, or another recording appended first part-way (record again to complete)", body = Problem),
        (status = 422, description = "Invalid fields, each named; a bar not at the start of an interval; one time with two different bars", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn record_bars(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<RecordBars>,
) -> Result<Json<BarsRecorded>, ApiError> {
    let context = caller.may(PriceAction::RecordBars, None, &body)?;
    let interval = super::body_interval(&body.interval)?;
    if body.bars.is_empty() || body.bars.len() > MAX_BARS_PER_REQUEST {
        return Err(ApiError::validation(vec![FieldError {
            field: "bars".to_owned(),
            code: "invalid_bars".to_owned(),
            message: format!("1 to {MAX_BARS_PER_REQUEST} bars"),
        }]));
    }
    let bars = reported(&body.bars)?;
    let source = ImportSource {
        provider: RECORDED_OVER_HTTP.to_owned(),
        import_id: Uuid::now_v7(),
    };
    let outcomes = state
        .write
        .prices
        .record(&context, asset, interval, bars, &source, Utc::now())
        .await?;
    Ok(Json(BarsRecorded {
        series: outcomes
            .into_iter()
            .map(|outcome| SeriesRecorded {
                series_id: outcome.stream.id,
                version: outcome.version,
                consistency_token: outcome.token.to_string(),
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::{RecordBars, MAX_BARS_PER_REQUEST};
    use crate::http::schema;

    #[test]
    fn the_documented_bar_count_is_the_enforced_one() {
        let bars = schema::property::<RecordBars>("bars");
        assert_eq!(bars["maxItems"], MAX_BARS_PER_REQUEST);
        assert_eq!(bars["minItems"], 1);
    }
}
