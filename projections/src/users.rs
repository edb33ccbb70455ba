//! The users read model: one row per user, and the queries over it.

use chrono::{DateTime, Utc};
use domain::event::RecordedEvent;
use domain::identity::{Roles, StreamId};
use domain::users::{UserEvent, UserStatus};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::engine::{ApplyError, Projection};

/// Builds `read_models.users`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersProjection;

impl UsersProjection {
    /// The projection's stable name.
    pub const NAME: &'static str = "users";
}

impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["User"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users"]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let stream: StreamId = event
            .aggregate_id
            .parse()
            .map_err(|_| ApplyError::Inconsistent(format!("stream id {:?}", event.aggregate_id)))?;
        let user_id = stream.id;
        let payload: UserEvent = ApplyError::decode(event)?;
        let at = payload.at();
        let (display_name, status, roles) = match payload {
            UserEvent::UserRegistered {
                email,
                display_name,
                roles,
                at,
            } => {
                sqlx::query(
                    "INSERT INTO users
                        (tenant_id, user_id, email, display_name, status, roles, version,
                         registered_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(&event.tenant_id)
                .bind(user_id)
                .bind(email.as_str())
                .bind(display_name.as_str())
                .bind(UserStatus::Active.as_str())
                .bind(role_names(&roles))
                .bind(event.sequence)
                .bind(at)
                .execute(connection)
                .await?;
                return Ok(());
            }
            UserEvent::DisplayNameChanged { display_name, .. } => (Some(display_name), None, None),
            UserEvent::RolesChanged { roles, .. } => (None, None, Some(role_names(&roles))),
            UserEvent::UserDeactivated { .. } => (None, Some(UserStatus::Deactivated), None),
            UserEvent::UserReactivated { .. } => (None, Some(UserStatus::Active), None),
        };
        let updated = sqlx::query(
            "UPDATE users
                SET display_name = coalesce($3, display_name),
                    status = coalesce($4, status),
                    roles = coalesce($7, roles),
                    version = $5,
                    updated_at = $6
              WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(&event.tenant_id)
        .bind(user_id)
        .bind(display_name.as_ref().map(|name| name.as_str()))
        .bind(status.map(UserStatus::as_str))
        .bind(event.sequence)
        .bind(at)
        .bind(roles)
        .execute(connection)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(ApplyError::Inconsistent(format!(
                "{} for unknown user {user_id}",
                event.event_type
            )));
        }
        Ok(())
    }
}

fn role_names(roles: &Roles) -> Vec<&'static str> {
    roles.iter().map(|role| role.as_str()).collect()
}

/// One user as dashboards see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UserView {
    /// The user's id.
    pub user_id: Uuid,
    /// Normalised email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `active` or `deactivated`.
    pub status: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The stream version this row reflects.
    pub version: i64,
    /// When the user registered.
    pub registered_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

const SELECT_USER: &str =
    "SELECT user_id, email, display_name, status, roles, version, registered_at,
                                  updated_at
                             FROM read_models.users";

/// One user of a tenant.
///
/// # Errors
/// When the database fails.
pub async fn get(
    pool: &PgPool,
    tenant_id: &str,
    user_id: Uuid,
) -> Result<Option<UserView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_USER} WHERE tenant_id = $1 AND user_id = $2"
    ))
    .bind(tenant_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// A page of a tenant's users in id order (ids are time-ordered UUIDv7, so this is roughly
/// registration order), starting after `after`.
///
/// # Errors
/// When the database fails.
pub async fn list(
    pool: &PgPool,
    tenant_id: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_USER} WHERE tenant_id = $1 AND user_id > coalesce($2, $4)
          ORDER BY user_id LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(limit)
    // The first page starts after the nil id: one range condition keeps the plan an index range
    // scan even when Postgres settles on a generic plan for the prepared statement.
    .bind(Uuid::nil())
    .fetch_all(pool)
    .await
}
