//! Category routes: admins create, rename, describe and archive; members read.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::community::{Body, CategoryCommand, TextLimits, Title};
use domain::identity::TenantId;
use domain::policy::CommunityAction;
use projections::community::{self as model, CategoryView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, ExpectedVersion, IdPath, JsonBody, QueryParams};
use crate::http::respond::{
    changed, created, field, not_found, one_field, page_limit, paged, read_ahead, with_etag,
    CommandAccepted,
};
use crate::http::schema;
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/community/categories";

/// Create a category.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Legal translation", "description": "Terms, sources, *style*."})))]
pub struct CreateCategory {
    /// Its name.
    #[schema(value_type = schema::Title)]
    pub name: String,
    /// What belongs in it (markdown).
    #[schema(value_type = Option<schema::Body>)]
    pub description: Option<String>,
}

/// Rename a category.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Legal and financial translation"})))]
pub struct RenameCategory {
    /// The new name.
    #[schema(value_type = schema::Title)]
    pub name: String,
}

/// Replace or clear a category's description.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"description": "Contracts, statutes and filings."})))]
pub struct DescribeCategory {
    /// The new description (markdown); `null` clears it.
    #[schema(value_type = Option<schema::Body>)]
    pub description: Option<String>,
}

/// A category as the community projection shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryDto {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What belongs in it (markdown, as written), if said.
    pub description: Option<String>,
    /// Whether it takes no new posts (its posts stay readable).
    pub archived: bool,
    /// Posts in it that readers see (removed ones are not counted).
    pub posts: i64,
    /// Comments readers see, on all its posts.
    pub comments: i64,
    /// The latest post or comment written (or post edited) in it, or its creation.
    pub last_activity_at: DateTime<Utc>,
    /// The stream version this reflects (use as `If-Match` for commands).
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<CategoryView> for CategoryDto {
    fn from(view: CategoryView) -> Self {
        Self {
            id: view.category_id,
            name: view.name,
            description: view.description,
            archived: view.archived,
            posts: view.posts,
            comments: view.comments,
            last_activity_at: view.last_activity_at,
            version: view.version,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

/// A page of categories.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryPage {
    /// The categories of this page, oldest first.
    pub items: Vec<CategoryDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCategories {
    /// Return categories after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Runs a command on an existing category for an authorized caller.
async fn category_command(
    state: &AppState,
    caller: &Caller,
    action: CommunityAction,
    (category, expected): (Uuid, ExpectedVersion),
    body: &impl Serialize,
    command: impl FnOnce() -> Result<CategoryCommand, ApiError>,
) -> Result<Response, ApiError> {
    let context = caller.may(action, None, body)?;
    let outcome = state
        .write
        .community
        .category(&context, category, expected.0, command()?, Utc::now())
        .await?;
    Ok(changed(outcome))
}

fn description(raw: Option<&str>, limits: TextLimits) -> Result<Option<Body>, ApiError> {
    raw.map(|raw| one_field("description", Body::parse_within(raw, limits)))
        .transpose()
}

/// Create a category (admins).
#[utoipa::path(
    post, path = "/api/v1/community/categories", tag = "community",
    request_body = CreateCategory,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Created", body = CommandAccepted),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create_category(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateCategory>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::CreateCategory, None, &body)?;
    let mut errors = Vec::new();
    let limits = state.settings.community.text_limits();
    let name = field("name", Title::parse_within(&body.name, limits), &mut errors);
    let description = match body.description.as_deref() {
        Some(raw) => field("description", Body::parse_within(raw, limits), &mut errors).map(Some),
        None => Some(None),
    };
    let (Some(name), Some(description)) = (name, description) else {
        return Err(ApiError::validation(errors));
    };
    let command = CategoryCommand::Create {
        name,
        description,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .community
        .category(&context, Uuid::now_v7(), None, command, Utc::now())
        .await?;
    Ok(created(COLLECTION, outcome, None))
}

/// Rename a category (admins).
#[utoipa::path(
    post, path = "/api/v1/community/categories/{id}/name", tag = "community",
    params(("id" = Uuid, Path, description = "Category id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = RenameCategory,
    responses(
        (status = 200, description = "Renamed", body = CommandAccepted),
        (status = 404, description = "No such category", body = Problem),
        (status = 409, description = "Archived, unchanged, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn rename_category(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<RenameCategory>,
) -> Result<Response, ApiError> {
    let command = || {
        Ok(CategoryCommand::Rename {
            name: one_field(
                "name",
                Title::parse_within(&body.name, state.settings.community.text_limits()),
            )?,
            at: Utc::now(),
        })
    };
    let action = CommunityAction::ChangeCategory;
    category_command(&state, &caller, action, (id, expected), &body, command).await
}

/// Replace or clear a category's description (admins).
#[utoipa::path(
    post, path = "/api/v1/community/categories/{id}/description", tag = "community",
    params(("id" = Uuid, Path, description = "Category id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = DescribeCategory,
    responses(
        (status = 200, description = "Described", body = CommandAccepted),
        (status = 404, description = "No such category", body = Problem),
        (status = 409, description = "Archived, unchanged, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn describe_category(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<DescribeCategory>,
) -> Result<Response, ApiError> {
    let command = || {
        Ok(CategoryCommand::Describe {
            description: description(
                body.description.as_deref(),
                state.settings.community.text_limits(),
            )?,
            at: Utc::now(),
        })
    };
    let action = CommunityAction::ChangeCategory;
    category_command(&state, &caller, action, (id, expected), &body, command).await
}

/// Archive a category (admins): it takes no new posts; its posts stay readable.
#[utoipa::path(
    post, path = "/api/v1/community/categories/{id}/archive", tag = "community",
    params(("id" = Uuid, Path, description = "Category id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Archived", body = CommandAccepted),
        (status = 404, description = "No such category", body = Problem),
        (status = 409, description = "Already archived, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn archive_category(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = || Ok(CategoryCommand::Archive { at: Utc::now() });
    let action = CommunityAction::ArchiveCategory;
    category_command(&state, &caller, action, (id, expected), &(), command).await
}

/// One category, with its post count and last activity.
#[utoipa::path(
    get, path = "/api/v1/community/categories/{id}", tag = "community",
    params(("id" = Uuid, Path, description = "Category id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The category", body = CategoryDto),
        (status = 404, description = "No such category", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_category(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    caught_up(&state, tenant, token).await?;
    let category = model::get_category(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("category_not_found", "category", id))?;
    let version = category.version;
    Ok(with_etag(CategoryDto::from(category), version))
}

/// A page of the tenant's categories, oldest first.
#[utoipa::path(
    get, path = "/api/v1/community/categories", tag = "community",
    params(ListCategories,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of categories", body = CategoryPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_categories(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListCategories>,
    token: Consistency,
) -> Result<Json<CategoryPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunity, None)?;
    caught_up(&state, tenant, token).await?;
    categories_of(&state, tenant, &params).await.map(Json)
}

/// A page of `tenant`'s categories.
///
/// # Errors
/// `400` for bad paging parameters, or a database failure.
pub(super) async fn categories_of(
    state: &AppState,
    tenant: &TenantId,
    params: &ListCategories,
) -> Result<CategoryPage, ApiError> {
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let categories = model::list_categories(
        &state.read_pool,
        tenant.as_str(),
        params.after,
        read_ahead(limit),
    )
    .await?;
    let (categories, next_cursor) = paged(categories, limit, |last| last.category_id);
    Ok(CategoryPage {
        items: categories.into_iter().map(CategoryDto::from).collect(),
        next_cursor,
    })
}
