//! Refresh schedule routes: admins have an asset's bars of one interval imported again at a
//! rhythm, or stop it; readers see an asset's schedules.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::PriceAction;
use domain::prices::{RefreshScheduleCommand, Rhythm};
use projections::prices::{self as model, ScheduleView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{body_interval, caught_up, known_asset};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{Caller, Consistency, IdPath, JsonBody};
use crate::http::respond::{changed, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

/// Refresh an asset's bars of one interval at a rhythm.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"interval": "1h", "every_minutes": 60, "lookback_bars": 48})))]
pub struct ScheduleRefresh {
    /// The bars' interval.
    #[schema(value_type = schema::prices::Interval)]
    pub interval: String,
    /// Minutes between refreshes: at least one interval (a refresh within one bar would ask for
    /// the same import).
    #[serde(deserialize_with = "schema::whole_number::u64")]
    #[schema(minimum = 1, maximum = 10080)]
    pub every_minutes: u64,
    /// Completed bars each refresh imports again (corrections of recent bars arrive this way):
    /// covering at least `every_minutes`, so no bar is skipped.
    #[serde(deserialize_with = "schema::whole_number::u64")]
    #[schema(minimum = 1, maximum = 5000)]
    pub lookback_bars: u64,
}

/// Stop refreshing an asset's bars of one interval.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"interval": "1h"})))]
pub struct UnscheduleRefresh {
    /// The bars' interval.
    #[schema(value_type = schema::prices::Interval)]
    pub interval: String,
}

/// A series' refresh schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleDto {
    /// The bars' interval.
    #[schema(value_type = schema::prices::Interval)]
    pub interval: String,
    /// Minutes between refreshes.
    pub every_minutes: i32,
    /// Completed bars each refresh imports again.
    pub lookback_bars: i32,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduleView> for ScheduleDto {
    fn from(view: ScheduleView) -> Self {
        Self {
            interval: view.interval,
            every_minutes: view.every_minutes,
            lookback_bars: view.lookback_bars,
            updated_at: view.updated_at,
        }
    }
}

/// An asset's refresh schedules.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    /// One per scheduled interval, by interval name.
    #[schema(max_items = 6)]
    pub items: Vec<ScheduleDto>,
}

/// A rhythm, or `422` naming each field out of its bounds.
fn rhythm(every_minutes: u64, lookback_bars: u64) -> Result<Rhythm, ApiError> {
    let within = |value: u64, max: u32| (1..=u64::from(max)).contains(&value);
    let mut errors = Vec::new();
    for (field, value, max) in [
        ("every_minutes", every_minutes, Rhythm::MAX_EVERY_MINUTES),
        ("lookback_bars", lookback_bars, Rhythm::MAX_LOOKBACK_BARS),
    ] {
        if !within(value, max) {
            errors.push(FieldError {
                field: field.to_owned(),
                code: "invalid_rhythm".to_owned(),
                message: format!("{field} must be 1 to {max}"),
            });
        }
    }
    let (Ok(every), Ok(lookback)) = (u32::try_from(every_minutes), u32::try_from(lookback_bars))
    else {
        return Err(ApiError::validation(errors));
    };
    Rhythm::new(every, lookback).map_err(|_| ApiError::validation(errors))
}

/// `rhythm` for bars of `interval`, or `422` saying why it does not suit them.
fn suited(rhythm: Rhythm, interval: domain::prices::Interval) -> Result<Rhythm, ApiError> {
    if rhythm.fits(interval) {
        return Ok(rhythm);
    }
    Err(ApiError::validation(vec![FieldError {
        field: "every_minutes".to_owned(),
        code: "invalid_rhythm".to_owned(),
        message: format!(
            "every_minutes must be at least one {interval} bar, and lookback_bars × {interval} \
             at least every_minutes",
            interval = interval.as_str()
        ),
    }]))
}

/// Refresh an asset's bars of one interval by imports at a rhythm (admins): every
/// `every_minutes`, the last `lookback_bars` completed bars are imported from the provider.
#[utoipa::path(
    post, path = "/api/v1/assets/{id}/schedule", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = ScheduleRefresh,
    responses(
        (status = 200, description = "Scheduled", body = CommandAccepted),
        (status = 404, description = "No such asset", body = Problem),
        (status = 409, description = "Delisted, or scheduled at this rhythm already", body = Problem),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn schedule_refresh(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<ScheduleRefresh>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::ScheduleRefresh, None, &body)?;
    let interval = body_interval(&body.interval)?;
    let rhythm = suited(rhythm(body.every_minutes, body.lookback_bars)?, interval)?;
    let command = RefreshScheduleCommand::Schedule {
        asset,
        interval,
        rhythm,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .prices
        .schedule(&context, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Stop refreshing an asset's bars of one interval (admins).
#[utoipa::path(
    post, path = "/api/v1/assets/{id}/unschedule", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = UnscheduleRefresh,
    responses(
        (status = 200, description = "Unscheduled", body = CommandAccepted),
        (status = 404, description = "No such asset, or no schedule of this asset and \
            interval", body = Problem),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn unschedule_refresh(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<UnscheduleRefresh>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::ScheduleRefresh, None, &body)?;
    let interval = body_interval(&body.interval)?;
    let command = RefreshScheduleCommand::Unschedule {
        asset,
        interval,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .prices
        .schedule(&context, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// An asset's refresh schedules.
#[utoipa::path(
    get, path = "/api/v1/assets/{id}/schedules", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The asset's schedules", body = ScheduleList),
        (status = 404, description = "No such asset", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_schedules(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Json<ScheduleList>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    caught_up(&state, tenant, token).await?;
    known_asset(&state, tenant, asset).await?;
    let schedules = model::schedules(&state.read_pool, tenant.as_str(), asset).await?;
    Ok(Json(ScheduleList {
        items: schedules.into_iter().map(ScheduleDto::from).collect(),
    }))
}
