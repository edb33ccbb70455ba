//! The OpenAPI 3.1 document, generated from the handlers' annotations and completed here with
//! what every route shares, and the interactive docs UI (Swagger UI, vendored into the binary
//! so it works offline).
//!
//! A handler documents what is its own: its body, its success answers and the errors of its
//! rules. [`complete`] adds, once for every operation, the answers the shared layers give:
//! credentials refused (401), the policy refusing (403), limits (429), unreadable input (400,
//! 413, 415, 422), and failures (500, 503), all as `application/problem+json`.

use axum::Router;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;
use crate::http::error::{FieldError, Problem};

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

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

/// Adds to every operation of `document` the answers the shared layers give, and makes every
/// error body `application/problem+json`.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    for (name, schema) in [
        (Problem::name(), Problem::schema()),
        (FieldError::name(), FieldError::schema()),
    ] {
        components
            .schemas
            .entry(name.into_owned())
            .or_insert(schema);
    }
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation);
        }
    }
}

fn complete_operation(operation: &mut Operation) {
    let protected = operation.extensions.as_ref().is_some_and(has_action);
    let has_body = operation.request_body.is_some();
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_parameters = !parameters.is_empty();
    let has_path = parameters
        .iter()
        .any(|parameter| parameter.parameter_in == ParameterIn::Path);
    let mut add = |status: &str, description: &str, wanted: bool| {
        if wanted {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| problem(status, description));
        }
    };
    add(
        "400",
        "A parameter, header or the body cannot be read (`invalid_query`, `invalid_id`, \
         `malformed_json`, ...)",
        has_body || has_parameters || protected,
    );
    add(
        "401",
        "No credentials, or credentials that are invalid, expired or revoked",
        protected,
    );
    add(
        "403",
        "The policy does not allow this caller the action",
        protected,
    );
    add("404", "No such resource", has_path);
    add("413", "The body is larger than allowed", has_body);
    add("415", "The body is not of an accepted media type", has_body);
    add(
        "422",
        "The body is readable but breaks the rules (`errors` names each field)",
        has_body,
    );
    add(
        "429",
        "A rate limit is exhausted; retry after `Retry-After` seconds",
        protected,
    );
    add("500", "An unexpected failure, logged with its cause", true);
    add(
        "503",
        "Temporarily unavailable (a dependency, a timeout, a projection behind); retry after \
         `Retry-After` seconds",
        protected,
    );
    for (status, response) in &mut operation.responses.responses {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response) {
            as_problem_json(response);
        }
    }
}

fn has_action(extensions: &Extensions) -> bool {
    serde_json::to_value(extensions)
        .ok()
        .and_then(|value| value.get("x-action").cloned())
        .is_some()
}

/// Error bodies are `application/problem+json` (utoipa writes `application/json` for any
/// body).
fn as_problem_json(response: &mut Response) {
    let content = std::mem::take(&mut response.content);
    response.content = content
        .into_iter()
        .map(|(media_type, content)| {
            let is_problem = content.schema.as_ref().is_some_and(
                |schema| matches!(schema, RefOr::Ref(r) if r.ref_location.ends_with("/Problem")),
            );
            if media_type == "application/json" && is_problem {
                (PROBLEM_JSON.to_owned(), content)
            } else {
                (media_type, content)
            }
        })
        .collect();
}

fn problem(status: &str, description: &str) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if matches!(status, "429" | "503") {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(<u64 as PartialSchema>::schema())
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    if status == "401" {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(<String as PartialSchema>::schema())
                .description(Some("The accepted schemes: `Bearer, ApiKey`"))
                .build(),
        );
    }
    response.build().into()
}

/// Serves `document` at `/api/v1/openapi.json` and the UI at `/docs`.
pub fn router(document: utoipa::openapi::OpenApi) -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", document))
}
