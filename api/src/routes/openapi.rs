//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

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

/// Serves the document.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
