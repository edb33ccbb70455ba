//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive
//! docs UI (Swagger UI, vendored into the binary so it works offline).

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

/// The document's frame: title and the ways to authenticate. Paths, schemas and tags come from
/// the routes as they are registered (see [`super::CONTEXTS`]).
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "CQRS backend API", description = "Commands validated by aggregates, an event \
          store you can trust, read models that are never silently wrong."),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// The document before any route is registered.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

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

/// Serves `document` at `/api/v1/openapi.json` and the UI at `/docs`.
pub fn router(document: utoipa::openapi::OpenApi) -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", document))
}
