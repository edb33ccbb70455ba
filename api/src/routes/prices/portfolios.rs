//! Portfolio routes: admins and users open portfolios and record trades; readers see holdings
//! with realised and unrealised gain as of a time, and daily valuations with the time-weighted
//! return over a range, computed from the price history as it stands (corrections included).

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Datelike, Utc};
use domain::identity::TenantId;
use domain::policy::PriceAction;
use domain::prices::{
    parse_decimal, time_weighted_return, AssetName, Currency, Decimal, Interval, PortfolioCommand,
    Side, Trade,
};
use projections::prices::{self as model, HoldingView, PortfolioView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{query_of, Caller, Consistency, IdPath, JsonBody};
use crate::http::respond::{changed, created, field, not_found, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/portfolios";
/// The longest valuation range, in days.
const MAX_VALUATION_DAYS: i64 = 366;

/// Open a portfolio.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Retirement", "currency": "USD"})))]
pub struct OpenPortfolio {
    /// Its name.
    #[schema(value_type = schema::prices::AssetName)]
    pub name: String,
    /// The currency of its trades and values: its assets' currency.
    #[schema(value_type = schema::prices::Currency)]
    pub currency: String,
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SideName {
    /// Quantity comes in.
    Buy,
    /// Quantity goes out.
    Sell,
}

/// Record a trade.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"asset_id": "8081a3c4-0000-5000-8000-000000000000", "side": "buy", "quantity": "10", "price": "187.15", "time": "2026-03-02T15:30:00Z"})))]
pub struct RecordTrade {
    /// The trade's id, so that recording it again is refused (`409`); a new one if absent.
    pub trade_id: Option<Uuid>,
    /// The asset traded (in the portfolio's currency).
    pub asset_id: Uuid,
    /// Buy or sell.
    pub side: SideName,
    /// How much: positive.
    #[schema(value_type = schema::prices::Decimal)]
    pub quantity: String,
    /// The price per unit, in the portfolio's currency.
    #[schema(value_type = schema::prices::Decimal)]
    pub price: String,
    /// When it was executed.
    pub time: DateTime<Utc>,
}

/// One holding as of a time; decimals as strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldingDto {
    /// The asset.
    pub asset_id: Uuid,
    /// The quantity held.
    pub quantity: String,
    /// What it cost, at the average cost of its buys.
    pub cost: String,
    /// Gains (or losses) taken by selling.
    pub realised_gain: String,
    /// The asset's last daily close at or before the time; absent without one.
    pub price: Option<String>,
    /// The holding at that price.
    pub value: Option<String>,
    /// The gain not taken yet at that price.
    pub unrealised_gain: Option<String>,
}

/// A decimal as the API writes it: exact, without trailing zeros.
fn text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A time within what the read models hold (the years 1900 to 2199).
fn within_years(time: DateTime<Utc>) -> bool {
    (1900..2200).contains(&time.year())
}

impl From<HoldingView> for HoldingDto {
    fn from(view: HoldingView) -> Self {
        Self {
            asset_id: view.asset_id,
            quantity: text(view.quantity),
            cost: text(view.cost),
            realised_gain: text(view.realised),
            price: view.price.map(text),
            value: view.value.map(text),
            unrealised_gain: view.unrealised.map(text),
        }
    }
}

/// A portfolio with its holdings as of a time.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioDto {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its currency.
    pub currency: String,
    /// Trades recorded.
    pub trades: i32,
    /// The holdings as of `as_of`, by asset (sold-out ones with their realised gain); a
    /// portfolio trades at most 1000 assets.
    #[schema(max_items = 1000)]
    pub holdings: Vec<HoldingDto>,
    /// The time the holdings are as of.
    pub as_of: DateTime<Utc>,
    /// The stream's version: the trades recorded so far.
    pub version: i64,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
}

/// As of when.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOf {
    /// Holdings of trades before this time, valued at the daily closes by then (years 1900 to
    /// 2199); now if absent.
    pub as_of: Option<DateTime<Utc>>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Which days.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ValuationRange {
    /// The first day (a UTC midnight, years 1900 to 2199).
    pub from: DateTime<Utc>,
    /// The day after the last (a UTC midnight), at most 366 days after `from`.
    pub to: DateTime<Utc>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// One day's valuation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayValue {
    /// The day (its start, UTC).
    pub day: DateTime<Utc>,
    /// The holdings at the day's closes.
    pub value: String,
    /// Money the day's trades put in (buys) less what they took out (sells).
    pub flow: String,
}

/// Daily valuations and the time-weighted return over them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioValuation {
    /// The day before `from` (the base), then each day of the range.
    #[schema(max_items = 367)]
    pub days: Vec<DayValue>,
    /// The time-weighted return over the range (`0.21` is 21 %), unaffected by when and how
    /// much money was put in; absent while nothing was held.
    pub time_weighted_return: Option<String>,
}

/// Open a portfolio (admins and users).
#[utoipa::path(
    post, path = "/api/v1/portfolios", tag = "prices",
    request_body = OpenPortfolio,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Opened", body = CommandAccepted),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn open_portfolio(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<OpenPortfolio>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::ManagePortfolio, None, &body)?;
    let mut errors = Vec::new();
    let name = field("name", AssetName::parse(&body.name), &mut errors);
    let currency = field("currency", Currency::parse(&body.currency), &mut errors);
    let (Some(name), Some(currency)) = (name, currency) else {
        return Err(ApiError::validation(errors));
    };
    let command = PortfolioCommand::Open {
        name,
        currency,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .prices
        .portfolio(&context, Uuid::now_v7(), command, Utc::now())
        .await?;
    Ok(created(COLLECTION, outcome, None))
}

/// Record a trade (admins and users): refused when it would leave the holding negative at any
/// time (trades may be recorded late and out of order), or when the asset's currency is not
/// the portfolio's.
#[utoipa::path(
    post, path = "/api/v1/portfolios/{id}/trades", tag = "prices",
    params(("id" = Uuid, Path, description = "Portfolio id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = RecordTrade,
    responses(
        (status = 200, description = "Recorded", body = CommandAccepted),
        (status = 404, description = "No such portfolio or asset", body = Problem),
        (status = 409, description = "Recorded already, the holding would go negative, or a 1001st asset", body = Problem),
        (status = 422, description = "Invalid fields, each named; a trade worth more than 10^20; an asset in another currency", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn record_trade(
    State(state): State<AppState>,
    IdPath(portfolio): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<RecordTrade>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::ManagePortfolio, None, &body)?;
    let mut errors = Vec::new();
    let quantity = field("quantity", parse_decimal(&body.quantity), &mut errors)
        .filter(|quantity| !quantity.is_zero());
    if quantity.is_none() && errors.is_empty() {
        errors.push(FieldError {
            field: "quantity".to_owned(),
            code: "invalid_trade".to_owned(),
            message: "the quantity must be positive".to_owned(),
        });
    }
    let price = field("price", parse_decimal(&body.price), &mut errors);
    let (Some(quantity), Some(price)) = (quantity, price) else {
        return Err(ApiError::validation(errors));
    };
    let trade = Trade {
        id: body.trade_id.unwrap_or_else(Uuid::now_v7),
        asset: body.asset_id,
        side: match body.side {
            SideName::Buy => Side::Buy,
            SideName::Sell => Side::Sell,
        },
        quantity,
        price,
        time: body.time,
    };
    let outcome = state
        .write
        .prices
        .trade(&context, portfolio, trade, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// A portfolio with its holdings, realised and unrealised gain as of a time.
/// The tenant's portfolio `id`, once the read side has caught up with `token`; its 404
/// otherwise.
async fn known_portfolio(
    state: &AppState,
    tenant: &TenantId,
    token: Consistency,
    id: Uuid,
) -> Result<PortfolioView, ApiError> {
    caught_up(state, tenant, token).await?;
    model::get_portfolio(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("portfolio_not_found", "portfolio", id))
}

#[utoipa::path(
    get, path = "/api/v1/portfolios/{id}", tag = "prices",
    params(("id" = Uuid, Path, description = "Portfolio id"), AsOf,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "The portfolio", body = PortfolioDto),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such portfolio", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_portfolio(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<PortfolioDto>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    let portfolio = known_portfolio(&state, tenant, token, id).await?;
    let params: AsOf = query_of(&uri)?;
    let as_of = params.as_of.unwrap_or_else(Utc::now);
    if !within_years(as_of) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "as_of: a time in the years 1900 to 2199",
        ));
    }
    let holdings = model::holdings(&state.read_pool, tenant.as_str(), id, as_of).await?;
    Ok(Json(PortfolioDto {
        id,
        name: portfolio.name,
        currency: portfolio.currency,
        trades: portfolio.trades,
        holdings: holdings.into_iter().map(HoldingDto::from).collect(),
        as_of,
        version: portfolio.version,
        opened_at: portfolio.opened_at,
    }))
}

/// A portfolio's value at the end of each day of a range (its holdings at each asset's last
/// daily close), and its time-weighted return over the range.
#[utoipa::path(
    get, path = "/api/v1/portfolios/{id}/valuation", tag = "prices",
    params(("id" = Uuid, Path, description = "Portfolio id"), ValuationRange,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "The valuations", body = PortfolioValuation),
        (status = 400, description = "Invalid parameters: days not on UTC midnights, `to` not after `from`, or more than 366 days", body = Problem),
        (status = 404, description = "No such portfolio", body = Problem),
        (status = 422, description = "`value_out_of_range`: the portfolio's value on a day of the range is beyond 28 significant digits", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn portfolio_valuation(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<PortfolioValuation>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    known_portfolio(&state, tenant, token, id).await?;
    let range: ValuationRange = query_of(&uri)?;
    let midnight = |time: DateTime<Utc>| Interval::Day.aligned(time) && within_years(time);
    let days = (range.to - range.from).num_days();
    if !midnight(range.from) || !midnight(range.to) || !(1..=MAX_VALUATION_DAYS).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from and to: UTC midnights of the years 1900 to 2199, to 1 to 366 days after from",
        ));
    }
    let (_, series) =
        model::daily_valuations(&state.read_pool, tenant.as_str(), id, range.from, range.to)
            .await?;
    let valuations: Vec<_> = series.iter().map(|(_, valuation)| *valuation).collect();
    Ok(Json(PortfolioValuation {
        time_weighted_return: time_weighted_return(&valuations).map(text),
        days: series
            .into_iter()
            .map(|(day, valuation)| DayValue {
                day,
                value: text(valuation.value),
                flow: text(valuation.flow),
            })
            .collect(),
    }))
}
