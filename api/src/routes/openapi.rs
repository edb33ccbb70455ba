//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive
//! docs UI (Swagger UI, vendored into the binary so it works offline).

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

/// The API's OpenAPI description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "CQRS backend API", description = "Commands validated by aggregates, an event \
          store you can trust, read models that are never silently wrong."),
    paths(
        super::commands::register_user,
        super::commands::change_display_name,
        super::commands::change_user_roles,
        super::commands::deactivate_user,
        super::commands::reactivate_user,
        super::commands::issue_api_key,
        super::commands::revoke_api_key,
        super::queries::get_user,
        super::jobs::submit_job,
        super::jobs::cancel_job,
        super::jobs::resubmit_job,
        super::jobs::claim_job,
        super::jobs::heartbeat,
        super::jobs::report_progress,
        super::jobs::complete_job,
        super::jobs::fail_job,
        super::job_queries::get_job,
        super::job_queries::list_jobs,
        super::job_queries::job_stats,
        super::job_queries::user_usage,
        super::job_queries::live_jobs,
        super::documents::upload_document,
        super::documents::download_document,
        super::queries::list_users,
        super::admin::list_projections,
        super::admin::list_parked,
        super::admin::retry_parked,
        super::admin::rebuild_projection,
        super::health::live,
        super::health::ready,
        super::metrics::metrics,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "users", description = "Users: register, rename, roles, deactivate, reactivate"),
        (name = "api-keys", description = "API keys: issue (shown once), revoke"),
        (name = "jobs", description = "Translation jobs: submit, cancel, resubmit, detail, lists, statistics, usage, live updates"),
        (name = "worker", description = "The worker protocol: claim, heartbeat, progress, complete, fail"),
        (name = "documents", description = "Documents: upload (type recognised by content), download"),
        (name = "admin", description = "Operations: projection lag, parked streams, retries"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Serves the document at `/api/v1/openapi.json` and the UI at `/docs`.
pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", ApiDoc::openapi()))
}
