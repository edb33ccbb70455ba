//! Liveness, readiness, and projection health. None of them is rate limited, and none reads the
//! event store: a probe costs the same whatever the history's size.

use async_nats::jetstream;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use commands::jobs::parked;
use projections::health::{self, ProjectionHealth};
use projections::registry::Registered;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::routes::AppState;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Each dependency checked: `ok` or what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

/// Readiness checks: what this instance needs to serve.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// Postgres answers (and the read replica, where one is configured).
    pub postgres: String,
    /// The NATS connection is up.
    pub nats: String,
    /// Every embedded migration is applied.
    pub migrations: String,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn live() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: None,
    })
}

/// This instance can serve: Postgres and NATS reachable, migrations applied. Projection trouble
/// does not make an instance unready (another instance would not serve better); it is reported
/// by `/health/projections`, `/metrics` and the admin overview.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Ready", body = Health),
              (status = 503, description = "Not ready; `checks` says why", body = Health)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ok = || "ok".to_owned();
    // Acquiring a connection pings it; a query-side process also needs its replica.
    let postgres = match (state.pool.acquire().await, state.read_pool.acquire().await) {
        (Ok(_), Ok(_)) => ok(),
        (Err(_), _) => "unreachable".to_owned(),
        (_, Err(_)) => "read replica unreachable".to_owned(),
    };
    let nats = match state.nats.connection_state() {
        async_nats::connection::State::Connected => ok(),
        other => format!("{other:?}").to_lowercase(),
    };
    let migrations = match eventstore_migrations::pending(&state.pool).await {
        Ok(0) => ok(),
        Ok(pending) => format!("{pending} pending"),
        Err(_) => "unknown".to_owned(),
    };
    let ready = [&postgres, &nats, &migrations].iter().all(|c| *c == "ok");
    let health = Health {
        status: if ready { "ok" } else { "unavailable" },
        checks: Some(Checks {
            postgres,
            nats,
            migrations,
        }),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

/// Projection health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionsHealth {
    /// `ok`; `degraded` when a projection has parked streams or more pending messages than
    /// `projections.max_lag_events`, or the job scheduler has parked jobs; `unknown` when that
    /// cannot be read.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Each projection's problems, and the job scheduler's (empty when none).
    pub problems: Vec<String>,
    /// Each projection: pending messages per partition, parked streams (counts only).
    #[schema(value_type = Vec<Object>)]
    pub projections: Vec<ProjectionHealth>,
    /// Job streams the job scheduler parked (system-wide count; `backend scheduler parked`
    /// lists them).
    pub parked_jobs: i64,
}

/// Whether every projection keeps up: no parked streams, backlogs within
/// `projections.max_lag_events`. Counts only, never stream ids (those are in the admin API).
#[utoipa::path(get, path = "/health/projections", tag = "health",
    responses((status = 200, description = "Every projection keeps up", body = ProjectionsHealth),
              (status = 503, description = "A projection has parked streams or is behind; \
                `problems` says which", body = ProjectionsHealth)))]
pub async fn projections(State(state): State<AppState>) -> (StatusCode, Json<ProjectionsHealth>) {
    let read = async {
        let projections = projection_health(&state).await?;
        let parked_jobs = parked::count(&state.pool).await.map_err(ApiError::failed)?;
        Ok::<_, ApiError>((projections, parked_jobs))
    };
    let (projections, parked_jobs) = match read.await {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(error = %error, "projection health could not be read");
            let health = ProjectionsHealth {
                status: "unknown",
                problems: vec!["projection health could not be read (Postgres or NATS)".to_owned()],
                projections: Vec::new(),
                parked_jobs: 0,
            };
            return (StatusCode::SERVICE_UNAVAILABLE, Json(health));
        }
    };
    let max_pending = u64::try_from(state.settings.projections.max_lag_events).unwrap_or(0);
    let mut problems: Vec<String> = projections
        .iter()
        .flat_map(|health| {
            health
                .problems(max_pending)
                .into_iter()
                .map(|problem| format!("{}: {problem}", health.name))
        })
        .collect();
    if parked_jobs > 0 {
        problems.push(format!("job-scheduler: {parked_jobs} parked jobs"));
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let health = ProjectionsHealth {
        status: if problems.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        problems,
        projections,
        parked_jobs,
    };
    (status, Json(health))
}

/// Every registered projection's health.
pub async fn projection_health(state: &AppState) -> Result<Vec<ProjectionHealth>, ApiError> {
    let names: Vec<&str> = Registered::ALL.iter().map(|p| p.name()).collect();
    let stream = jetstream::new(state.nats.clone())
        .get_stream(&state.settings.nats.stream)
        .await
        .map_err(ApiError::failed)?;
    health::health(
        &state.pool,
        &stream,
        &names,
        state.settings.projections.partitions,
    )
    .await
    .map_err(ApiError::failed)
}
