//! Every projection this build runs, by name: what start-up, the admin API and the CLI iterate.

use sqlx::PgPool;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::engine::{
    retry_parked, ApplyError, Projection, ProjectionRunner, RetryOutcome, RunnerSettings,
};
use crate::jobs::JobsProjection;
use crate::rebuild::{rebuild, EventSource, Progress, RebuildError, Rebuilt};
use crate::users::UsersProjection;

/// Runs `$body` with `$p` bound to the projection behind a [`Registered`] value: the one place
/// that maps names to types.
macro_rules! with_projection {
    ($registered:expr, $p:ident => $body:expr) => {
        match $registered {
            Registered::Users => {
                let $p = UsersProjection;
                $body
            }
            Registered::Jobs => {
                let $p = JobsProjection;
                $body
            }
        }
    };
}

/// A registered projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// `read_models.users`.
    Users,
    /// `read_models.jobs` and the tables around it.
    Jobs,
}

impl Registered {
    /// All of them.
    pub const ALL: [Registered; 2] = [Self::Users, Self::Jobs];

    /// Looks one up by its stable name.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|projection| projection.name() == name)
    }

    /// Its stable name.
    pub fn name(self) -> &'static str {
        with_projection!(self, p => p.name())
    }

    /// Its declared version.
    pub fn version(self) -> u32 {
        with_projection!(self, p => p.version())
    }

    /// Rebuilds it from `source` without downtime (see [`crate::rebuild`]).
    ///
    /// # Errors
    /// [`RebuildError`].
    pub async fn rebuild(
        self,
        pool: &PgPool,
        source: &dyn EventSource,
        batch: i64,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Rebuilt, RebuildError> {
        with_projection!(self, p => rebuild(&p, pool, source, batch, progress).await)
    }

    /// The version whose tables are live (0 when never recorded), if the projection ever ran.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn live_version(self, pool: &PgPool) -> Result<Option<u32>, sqlx::Error> {
        let version: Option<i32> =
            sqlx::query_scalar("SELECT version FROM projection.checkpoints WHERE projection = $1")
                .bind(self.name())
                .fetch_optional(pool)
                .await?;
        Ok(version.map(|v| v.max(0) as u32))
    }

    /// The aggregate types it reads.
    pub fn aggregate_types(self) -> &'static [&'static str] {
        with_projection!(self, p => p.aggregate_types())
    }

    /// Runs the projection's builder from JetStream until `shutdown`.
    pub async fn run(
        self,
        pool: PgPool,
        settings: RunnerSettings,
        jetstream: jetstream::Context,
        shutdown: CancellationToken,
    ) {
        with_projection!(self, p => {
            ProjectionRunner::new(p, pool, settings)
                .run(jetstream, shutdown)
                .await
        })
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
        with_projection!(self, p => {
            retry_parked(&p, pool, aggregate_type, aggregate_id).await
        })
    }
}
