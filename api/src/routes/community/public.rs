//! The public pages: anyone, without credentials, reads a tenant's categories, posts and
//! comments, once an admin turned them on (`PUT /api/v1/community/settings`). They show what
//! any member who is not the author sees: never removed or hidden writing. Requests without
//! credentials are limited per client address (`rate_limit.anonymous_per_minute`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use domain::identity::TenantId;
use projections::community::{self as model, Reader};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::categories::{categories_of, CategoryPage, ListCategories};
use super::comments::{threads_of, ListComments, ThreadPage};
use super::reading::{post_of, posts_of, ListPosts, Order, PostDto, PostPage};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{QueryParams, TenantPath};
use crate::http::limits::ClientIp;
use crate::http::respond::not_found;
use crate::routes::AppState;

/// The tenant whose public pages are read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PublicTenant {
    /// The tenant's id: 1 to 128 letters, digits, `-` or `_`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,128}$", max_length = 128)]
    pub tenant: String,
}

/// Paging parameters of the public lists (no consistency token: anonymous readers issue no
/// commands).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicPage {
    /// Return items after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Paging parameters of a category's public posts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicPosts {
    /// `newest` (default) or `active`; pinned posts come first in either.
    #[param(inline)]
    pub order: Option<Order>,
    /// Return posts after this cursor (the previous page's `next_cursor`, same `order`).
    #[param(
        max_length = 55,
        pattern = "^[01]_[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// An anonymous reader: sees no removed or hidden writing, and has no reactions of its own.
const ANONYMOUS: Reader = Reader {
    account: Uuid::nil(),
    sees_removed: false,
};

/// Who asks: the client's address and the request's headers (credentials are never checked
/// here, so whatever a request carries, it counts as one without credentials).
type Asker = (Option<Extension<ClientIp>>, HeaderMap);

/// The tenant, when its public pages are on; `404` otherwise (as for a tenant that does not
/// exist: an outsider learns nothing from the difference).
async fn open(state: &AppState, tenant: &TenantId, asker: &Asker) -> Result<(), ApiError> {
    if let (Some(limits), (Some(Extension(ClientIp(client))), headers)) = (&state.limits, asker) {
        limits.anonymous_route(*client, headers)?;
    }
    // A suspended tenant, or one whose settings close its public pages, has none, whatever its
    // admins switched; read from the event store, so it holds at once.
    let standing = state.write.tenants.load(tenant).await?;
    let closed = standing.state().suspension().is_some()
        || standing.state().settings().public_community_pages == Some(false);
    if !closed
        && model::settings(&state.read_pool, tenant.as_str())
            .await?
            .public_pages
    {
        Ok(())
    } else {
        Err(not_found(
            "public_pages_not_found",
            "public community",
            tenant,
        ))
    }
}

/// A tenant's categories, for anyone (when its public pages are on).
#[utoipa::path(
    get, path = "/api/v1/public/{tenant}/categories", tag = "public",
    params(PublicTenant, PublicPage),
    responses(
        (status = 200, description = "A page of categories", body = CategoryPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No public community of this tenant", body = Problem),
    )
)]
pub async fn categories(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    path: TenantPath,
    QueryParams(params): QueryParams<PublicPage>,
) -> Result<Json<CategoryPage>, ApiError> {
    open(&state, &path.tenant, &(client, headers)).await?;
    let params = ListCategories {
        after: params.after,
        limit: params.limit,
        consistency_token: None,
    };
    categories_of(&state, &path.tenant, &params).await.map(Json)
}

/// A category's posts, for anyone (when its tenant's public pages are on).
#[utoipa::path(
    get, path = "/api/v1/public/{tenant}/categories/{id}/posts", tag = "public",
    params(PublicTenant, ("id" = Uuid, Path, description = "Category id"), PublicPosts),
    responses(
        (status = 200, description = "A page of posts", body = PostPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No public community of this tenant, or no such category",
         body = Problem),
    )
)]
pub async fn posts(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    path: TenantPath,
    QueryParams(params): QueryParams<PublicPosts>,
) -> Result<Json<PostPage>, ApiError> {
    open(&state, &path.tenant, &(client, headers)).await?;
    let params = ListPosts {
        order: params.order,
        after: params.after,
        limit: params.limit,
        consistency_token: None,
    };
    posts_of(&state, &path.tenant, path.id()?, ANONYMOUS, &params)
        .await
        .map(Json)
}

/// One post, for anyone (when its tenant's public pages are on).
#[utoipa::path(
    get, path = "/api/v1/public/{tenant}/posts/{id}", tag = "public",
    params(PublicTenant, ("id" = Uuid, Path, description = "Post id")),
    responses(
        (status = 200, description = "The post", body = PostDto),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No public community of this tenant, or no such post",
         body = Problem),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    path: TenantPath,
) -> Result<Json<PostDto>, ApiError> {
    open(&state, &path.tenant, &(client, headers)).await?;
    post_of(&state, &path.tenant, path.id()?, ANONYMOUS)
        .await
        .map(Json)
}

/// A post's threads, for anyone (when its tenant's public pages are on).
#[utoipa::path(
    get, path = "/api/v1/public/{tenant}/posts/{id}/comments", tag = "public",
    params(PublicTenant, ("id" = Uuid, Path, description = "Post id"), PublicPage),
    responses(
        (status = 200, description = "A page of threads", body = ThreadPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No public community of this tenant, or no such post",
         body = Problem),
    )
)]
pub async fn comments(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    path: TenantPath,
    QueryParams(params): QueryParams<PublicPage>,
) -> Result<Json<ThreadPage>, ApiError> {
    open(&state, &path.tenant, &(client, headers)).await?;
    let params = ListComments {
        after: params.after,
        limit: params.limit,
        consistency_token: None,
    };
    threads_of(&state, &path.tenant, path.id()?, ANONYMOUS, &params)
        .await
        .map(Json)
}
