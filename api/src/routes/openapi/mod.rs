//! The OpenAPI 3.1 document, generated from the handlers' annotations and completed here with
//! what every route shares, and the interactive docs UI (Swagger UI, vendored into the binary
//! so it works offline).
//!
//! A handler documents what is its own: its body, its success answers and the errors of its
//! rules. [`complete`] adds, once for every operation, the answers the shared layers give:
//! credentials refused (401), the policy refusing (403), limits (429), unreadable input (400,
//! 413, 415, 422), and failures (500, 503), all as `application/problem+json`.

mod bounds;

use axum::Router;
use domain::event::ConsistencyToken;
use domain::identity::Role;
use domain::policy::Action;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

pub use bounds::Limits;

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

/// The ways to authenticate, one scheme per kind of credential, so that each operation can say
/// which credentials it takes (see [`schemes_for`]). Both API-key schemes are the same header:
/// they differ in the roles the key must hold.
struct SecuritySchemes;

/// An API key (`X-API-Key`) of a tenant's admin.
pub const ADMIN_KEY: &str = "admin_key";
/// An API key with the worker role.
pub const WORKER_KEY: &str = "worker_key";
/// A user's JWT.
pub const USER_TOKEN: &str = "user_token";
/// An operator key (created only from the command line).
pub const OPERATOR_KEY: &str = "operator_key";

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            USER_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's JWT (`Authorization: Bearer`), HS256 or RS256 as configured, \
                         validated as RFC8725 recommends: the algorithm is taken from the \
                         configured keys, never from the token; `iss`, `aud`, `exp` and `sub` \
                         are required and `nbf` is honoured.",
                    ))
                    .build(),
            ),
        );
        let key = |description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                description,
            )))
        };
        components.add_security_scheme(
            ADMIN_KEY,
            key("An API key with the admin role (also accepted as `Authorization: ApiKey`)."),
        );
        components.add_security_scheme(WORKER_KEY, key("An API key with the worker role."));
        components.add_security_scheme(
            OPERATOR_KEY,
            key("An operator key, created only by `backend create-operator-key`."),
        );
    }
}

/// The security schemes whose credentials may call `action`, most capable first: an admin key
/// where admins may, a worker key for workers, a user's token where users (or the subject
/// itself) may, and an operator key for operators.
fn schemes_for(action: Action) -> Vec<&'static str> {
    let rule = action.rule();
    let roles = rule.allowed_roles();
    let mut schemes = Vec::new();
    for (role, scheme) in [
        (Role::Admin, ADMIN_KEY),
        (Role::Worker, WORKER_KEY),
        (Role::User, USER_TOKEN),
        (Role::Operator, OPERATOR_KEY),
    ] {
        if roles.contains(&role) {
            schemes.push(scheme);
        }
    }
    // Users hold human roles too: a user's token serves wherever one of them, or the subject
    // itself, may act.
    let human = [Role::Admin, Role::Moderator, Role::Auditor, Role::User];
    let humans_may = rule.allows_subject() || human.iter().any(|role| roles.contains(role));
    if humans_may && !schemes.contains(&USER_TOKEN) {
        schemes.push(USER_TOKEN);
    }
    schemes
}

/// The document as served: every operation completed with the answers the shared layers give
/// and every error body `application/problem+json`, then, as JSON, the bounds every schema
/// keeps ([`bounds::bound`]; as JSON because utoipa's types do not read every schema back).
pub fn complete(mut document: utoipa::openapi::OpenApi, limits: Limits) -> serde_json::Value {
    complete_operations(&mut document);
    let components = document.components.get_or_insert_with(Default::default);
    components
        .schemas
        .extend(crate::http::schema::text_schemas(limits.text));
    let mut value = serde_json::to_value(&document)
        .unwrap_or_else(|error| unreachable!("an OpenAPI document serializes: {error}"));
    bounds::bound(&mut value, limits);
    value
}

fn complete_operations(document: &mut utoipa::openapi::OpenApi) {
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
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.put, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
        ];
        for (operation, command) in operations {
            if let Some(operation) = operation {
                complete_operation(operation, command);
            }
        }
    }
}

fn complete_operation(operation: &mut Operation, command: bool) {
    let action = operation.extensions.as_ref().and_then(action_of);
    let protected = action.is_some();
    // Anonymous reads are limited too: per client address.
    let limited = protected || operation.extensions.as_ref().is_some_and(anonymous);
    if let Some(action) = action {
        operation.security = Some(
            schemes_for(action)
                .into_iter()
                .map(|scheme| SecurityRequirement::new(scheme, Vec::<String>::new()))
                .collect(),
        );
    }
    for parameter in operation.parameters.iter_mut().flatten() {
        shared_parameter(parameter);
    }
    let has_body = operation.request_body.is_some();
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_parameters = !parameters.is_empty();
    let has_path = parameters
        .iter()
        .any(|parameter| parameter.parameter_in == ParameterIn::Path);
    let waits_for_token = parameters
        .iter()
        .any(|parameter| parameter.name.eq_ignore_ascii_case("x-consistency-token"));
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
        "The policy does not allow this caller the action (`forbidden`), or the caller's \
         tenant is suspended (`tenant_suspended`)",
        protected,
    );
    add(
        "404",
        "No such resource (or, with a consistency token, no such write of this collection in \
         your tenant: `consistency_token_not_found`)",
        has_path || waits_for_token,
    );
    add(
        "409",
        "Conflicts with the resource's current state, or with a concurrent command \
         (`concurrent_modification`: reload and retry)",
        protected && command,
    );
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
        limited,
    );
    add("500", "An unexpected failure, logged with its cause", true);
    add(
        "503",
        "Temporarily unavailable (a dependency, a timeout, a projection behind); retry after \
         `Retry-After` seconds",
        true,
    );
    for (status, response) in &mut operation.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        if status.starts_with('4') || status.starts_with('5') {
            as_problem_json(response);
        }
        if limited && (status.starts_with('2') || status.starts_with('4')) {
            with_rate_limit_headers(response);
        }
        if status == "201" {
            response
                .headers
                .entry("Location".to_owned())
                .or_insert_with(|| {
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .format(Some(SchemaFormat::Custom("uri-reference".to_owned())))
                                .max_length(Some(256)),
                        )
                        .description(Some("The created resource (sent with every 201)"))
                        .build()
                });
        }
        if command && status.starts_with('2') {
            response
                .headers
                .entry("Idempotent-Replayed".to_owned())
                .or_insert_with(|| {
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .enum_values(Some(["true"])),
                        )
                        .description(Some(
                            "Present when this is the stored answer to an earlier request with \
                             the same `Idempotency-Key`",
                        ))
                        .build()
                });
        }
        if matches!(status.as_str(), "429" | "503") {
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(retry_after);
        }
        response
            .headers
            .entry("Access-Control-Allow-Origin".to_owned())
            .or_insert_with(|| {
                HeaderBuilder::new()
                    .schema(<String as PartialSchema>::schema())
                    .description(Some(
                        "The request's `Origin`, when it is one of `http.cors_allowed_origins`; \
                         absent otherwise (never `*`)",
                    ))
                    .build()
            });
    }
}

/// Documents the `RateLimit-*` headers every limited response carries (when limits are on).
fn with_rate_limit_headers(response: &mut Response) {
    for (name, description) in [
        ("RateLimit-Limit", "The caller's budget of requests"),
        ("RateLimit-Remaining", "Requests left in it now"),
        ("RateLimit-Reset", "Seconds until it is full again"),
    ] {
        response.headers.entry(name.to_owned()).or_insert_with(|| {
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(0))
                        .maximum(Some(i64::MAX)),
                )
                .description(Some(description))
                .build()
        });
    }
}

/// Whether an operation is one anyone may call without credentials ([`super::Routes::anonymous`]).
fn anonymous(extensions: &Extensions) -> bool {
    serde_json::to_value(extensions)
        .ok()
        .and_then(|value| value.get("x-anonymous")?.as_bool())
        .unwrap_or(false)
}

fn action_of(extensions: &Extensions) -> Option<Action> {
    let value = serde_json::to_value(extensions).ok()?;
    Action::by_name(value.get("x-action")?.as_str()?)
}

/// The parameters the shared extractors read, with exactly what they accept: optional, never
/// null, and as strict as the server.
fn shared_parameter(parameter: &mut Parameter) {
    let text = |min: usize, max: usize, pattern: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(min))
            .max_length(Some(max))
            .pattern(Some(pattern))
    };
    let schema = match (parameter.parameter_in.clone(), parameter.name.as_str()) {
        (ParameterIn::Header, "Idempotency-Key") => text(1, 255, "^[!-~]+$"),
        (ParameterIn::Header, "If-Match") => text(1, 23, "^(W/)?(\"[0-9]{1,19}\"|[0-9]{1,19})$"),
        (ParameterIn::Header, "X-Consistency-Token")
        | (ParameterIn::Query, "consistency_token") => text(42, 250, ConsistencyToken::PATTERN),
        (ParameterIn::Header, "Last-Event-ID") => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0))
            .maximum(Some(i64::MAX)),
        _ => return,
    };
    parameter.schema = Some(RefOr::T(Schema::Object(schema.build())));
    parameter.required = Required::False;
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
        response = response.header("Retry-After", retry_after());
    }
    if status == "401" {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["Bearer, ApiKey"])),
                )
                .description(Some("The accepted schemes"))
                .build(),
        );
    }
    response.build().into()
}

fn retry_after() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(i64::MAX)),
        )
        .description(Some("Seconds to wait before retrying"))
        .build()
}

/// Serves `document` at `/api/v1/openapi.json` and the UI at `/docs`.
pub fn router(document: serde_json::Value) -> Router<AppState> {
    Router::new()
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/api/v1/openapi.json", document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{contexts, document, Sides};

    #[test]
    fn the_whole_document_is_bounded() {
        let limits = Limits {
            max_page_size: 100,
            upload_max_bytes: 1024,
            text: domain::community::TextLimits {
                title_max_chars: 80,
                body_max_chars: 5_000,
            },
        };
        let sides = Sides {
            commands: true,
            queries: true,
        };
        let mut value = document(contexts(), sides, limits);
        let bounded = value.clone();
        bounds::bound(&mut value, limits);
        assert_eq!(value, bounded, "complete() applied every bound");
        let upload = &value["paths"]["/api/v1/documents"]["post"]["requestBody"]["content"]
            ["application/octet-stream"]["schema"];
        assert_eq!(upload["maxLength"], 1024, "{upload}");
        assert_eq!(upload["minLength"], 1, "{upload}");
        let schemas = &value["components"]["schemas"];
        assert_eq!(schemas["Title"]["maxLength"], 80, "{}", schemas["Title"]);
        assert!(schemas["Title"]["pattern"]
            .as_str()
            .unwrap()
            .contains("{0,78}"));
        assert_eq!(schemas["Body"]["maxLength"], 5_000, "{}", schemas["Body"]);
        let data = &schemas["WritingEvents"]["oneOf"][0]["properties"]["data"];
        assert_eq!(
            data["contentSchema"]["$ref"],
            "#/components/schemas/WritingNotice"
        );
        assert!(!value.to_string().contains("x-content-schema"));
    }
}
