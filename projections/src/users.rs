//! The users read model: one row per user, and the queries over it.

use std::collections::BTreeMap;

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

    /// The batch folded per user: a stream registered in it is inserted as it ends, the others
    /// updated once each, in two statements.
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let mut folded: BTreeMap<(&str, Uuid), Folded> = BTreeMap::new();
        for &event in events {
            let stream: StreamId = event.aggregate_id.parse().map_err(|_| {
                ApplyError::Inconsistent(format!("stream id {:?}", event.aggregate_id))
            })?;
            let payload: UserEvent = ApplyError::decode(event)?;
            let row = folded.entry((event.tenant_id.as_str(), stream.id)).or_default();
            row.version = event.sequence;
            row.updated_at = Some(payload.at());
            match payload {
                UserEvent::UserRegistered {
                    email,
                    display_name,
                    roles,
                    at,
                } => {
                    row.registered = Some((email.as_str().to_owned(), at));
                    row.display_name = Some(display_name.as_str().to_owned());
                    row.status = Some(UserStatus::Active);
                    row.roles = Some(role_list(&roles));
                }
                UserEvent::DisplayNameChanged { display_name, .. } => {
                    row.display_name = Some(display_name.as_str().to_owned());
                }
                UserEvent::RolesChanged { roles, .. } => row.roles = Some(role_list(&roles)),
                UserEvent::UserDeactivated { .. } => row.status = Some(UserStatus::Deactivated),
                UserEvent::UserReactivated { .. } => row.status = Some(UserStatus::Active),
            }
        }
        let (new, changed): (Vec<_>, Vec<_>) = folded
            .iter()
            .partition(|(_, row)| row.registered.is_some());
        if !new.is_empty() {
            let columns = Columns::of(&new);
            let registered: Vec<&str> = new
                .iter()
                .map(|(_, row)| row.registered.as_ref().map_or("", |(email, _)| email.as_str()))
                .collect();
            let registered_at: Vec<DateTime<Utc>> = new
                .iter()
                .filter_map(|(_, row)| row.registered.as_ref().map(|(_, at)| *at))
                .collect();
            sqlx::query(
                "INSERT INTO users
                    (tenant_id, user_id, email, display_name, status, roles, version,
                     registered_at, updated_at)
                 SELECT tenant_id, user_id, email, display_name, status,
                        string_to_array(roles, ','), version, registered_at, updated_at
                   FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                               $6::text[], $7::bigint[], $8::timestamptz[], $9::timestamptz[])
                        AS r(tenant_id, user_id, email, display_name, status, roles, version,
                             registered_at, updated_at)",
            )
            .bind(&columns.tenants)
            .bind(&columns.users)
            .bind(&registered)
            .bind(&columns.display_names)
            .bind(&columns.statuses)
            .bind(&columns.roles)
            .bind(&columns.versions)
            .bind(&registered_at)
            .bind(&columns.updated_at)
            .execute(&mut *connection)
            .await?;
        }
        if !changed.is_empty() {
            let columns = Columns::of(&changed);
            let updated = sqlx::query(
                "UPDATE users u
                    SET display_name = coalesce(c.display_name, u.display_name),
                        status = coalesce(c.status, u.status),
                        roles = coalesce(string_to_array(c.roles, ','), u.roles),
                        version = c.version,
                        updated_at = c.updated_at
                   FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                               $6::bigint[], $7::timestamptz[])
                        AS c(tenant_id, user_id, display_name, status, roles, version, updated_at)
                  WHERE u.tenant_id = c.tenant_id AND u.user_id = c.user_id",
            )
            .bind(&columns.tenants)
            .bind(&columns.users)
            .bind(&columns.display_names)
            .bind(&columns.statuses)
            .bind(&columns.roles)
            .bind(&columns.versions)
            .bind(&columns.updated_at)
            .execute(&mut *connection)
            .await?;
            if updated.rows_affected() != changed.len() as u64 {
                return Err(ApplyError::Inconsistent(format!(
                    "{} of {} updated users are unknown",
                    changed.len() as u64 - updated.rows_affected(),
                    changed.len()
                )));
            }
        }
        Ok(())
    }
}

fn role_names(roles: &Roles) -> Vec<&'static str> {
    roles.iter().map(|role| role.as_str()).collect()
}

/// Role names as one comma-separated text (an array column of a batch cannot hold arrays).
fn role_list(roles: &Roles) -> String {
    role_names(roles).join(",")
}

/// One user's row as a batch leaves it: what the batch set, and `None` for what it left alone.
#[derive(Debug, Default)]
struct Folded {
    /// Email and time, when the batch registered the user.
    registered: Option<(String, DateTime<Utc>)>,
    display_name: Option<String>,
    status: Option<UserStatus>,
    roles: Option<String>,
    version: i64,
    updated_at: Option<DateTime<Utc>>,
}

/// The columns shared by a batch's inserts and updates, one array each.
struct Columns<'a> {
    tenants: Vec<&'a str>,
    users: Vec<Uuid>,
    display_names: Vec<Option<&'a str>>,
    statuses: Vec<Option<&'static str>>,
    roles: Vec<Option<&'a str>>,
    versions: Vec<i64>,
    updated_at: Vec<Option<DateTime<Utc>>>,
}

impl<'a> Columns<'a> {
    fn of(rows: &[(&(&'a str, Uuid), &'a Folded)]) -> Self {
        Self {
            tenants: rows.iter().map(|((tenant, _), _)| *tenant).collect(),
            users: rows.iter().map(|((_, user), _)| *user).collect(),
            display_names: rows.iter().map(|(_, row)| row.display_name.as_deref()).collect(),
            statuses: rows
                .iter()
                .map(|(_, row)| row.status.map(UserStatus::as_str))
                .collect(),
            roles: rows.iter().map(|(_, row)| row.roles.as_deref()).collect(),
            versions: rows.iter().map(|(_, row)| row.version).collect(),
            updated_at: rows.iter().map(|(_, row)| row.updated_at).collect(),
        }
    }
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
