//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive
//! docs UI (Swagger UI, vendored into the binary so it works offline).

use axum::Router;
use utoipa::OpenApi;
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
        super::commands::deactivate_user,
        super::commands::reactivate_user,
        super::queries::get_user,
        super::queries::list_users,
        super::health::live,
        super::health::ready,
    ),
    tags(
        (name = "users", description = "Users: register, rename, deactivate, reactivate"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Serves the document at `/api/v1/openapi.json` and the UI at `/docs`.
pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", ApiDoc::openapi()))
}
