//! Every projection this build runs, by name: what start-up, the admin API and the CLI iterate.

use sqlx::PgPool;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::engine::{
    retry_parked, ApplyError, Projection, ProjectionRunner, RetryOutcome, RunnerSettings,
};
use crate::users::UsersProjection;

/// A registered projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// `read_models.users`.
    Users,
}

impl Registered {
    /// All of them.
    pub const ALL: [Registered; 1] = [Self::Users];

    /// Looks one up by its stable name.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|projection| projection.name() == name)
    }

    /// Its stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => UsersProjection.name(),
        }
    }

    /// The aggregate types it reads.
    pub fn aggregate_types(self) -> &'static [&'static str] {
        match self {
            Self::Users => UsersProjection.aggregate_types(),
        }
    }

    /// Runs the projection's builder from JetStream until `shutdown`.
    pub async fn run(
        self,
        pool: PgPool,
        settings: RunnerSettings,
        jetstream: jetstream::Context,
        shutdown: CancellationToken,
    ) {
        match self {
            Self::Users => {
                ProjectionRunner::new(UsersProjection, pool, settings)
                    .run(jetstream, shutdown)
                    .await
            }
        }
    }

    /// Retries one parked stream with the projection's current code.
    ///
    /// # Errors
    /// On transient failures.
    pub async fn retry(
        self,
        pool: &PgPool,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<RetryOutcome, ApplyError> {
        match self {
            Self::Users => retry_parked(&UsersProjection, pool, aggregate_type, aggregate_id).await,
        }
    }
}
