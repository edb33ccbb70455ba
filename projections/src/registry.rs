//! Every projection this build runs, by name: what start-up, the admin API and the CLI iterate.
//!
//! The list is kept once, in the crate root's `read_models!`: adding a projection is one line
//! there (a variant name and the projection's value, under its context's module). The enum, [`ALL`]
//! (its length counted by the compiler) and every dispatch derive from that line. Dispatch goes
//! through one object-safe view of [`Projection`], so the methods
//! below are written once, not once per projection.
//!
//! [`ALL`]: Registered::ALL

use std::sync::Arc;

use async_nats::jetstream;
use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::engine::checkpoint::Checkpoint;
use crate::engine::{
    retry_parked_from_store, ApplyError, EventSource, Projection, ProjectionRunner, RetryOutcome,
    RunnerSettings,
};
use crate::rebuild::{rebuild, Progress, RebuildError, Rebuilt};

/// Declares [`Registered`] from the crate root's list of read models (`read_models!`).
macro_rules! registry {
    ($($module:ident: [$($(#[doc = $doc:literal])* $variant:ident => $projection:ident),+ $(,)?]),+ $(,)?) => {
        /// A registered projection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Registered {
            $($($(#[doc = $doc])* $variant,)+)+
        }

        impl Registered {
            /// All of them, in registration order.
            pub const ALL: [Registered; [$($(Registered::$variant),+),+].len()] =
                [$($(Registered::$variant),+),+];

            /// The projection behind this name, seen through the object-safe [`Dispatch`].
            fn projection(self) -> &'static dyn Dispatch {
                match self {
                    $($(Self::$variant => &crate::$module::$projection,)+)+
                }
            }
        }
    };
}

read_models!(registry);

impl Registered {
    /// Looks one up by its stable name.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|projection| projection.name() == name)
    }

    /// Its stable name.
    pub fn name(self) -> &'static str {
        self.projection().name()
    }

    /// Its declared version.
    pub fn version(self) -> u32 {
        self.projection().version()
    }

    /// The aggregate types it reads.
    pub fn aggregate_types(self) -> &'static [&'static str] {
        self.projection().aggregate_types()
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
        self.projection()
            .rebuild(pool, source, batch, progress)
            .await
    }

    /// The version whose tables are live (0 when never recorded), if the projection was ever
    /// built.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn live_version(self, pool: &PgPool) -> Result<Option<u32>, sqlx::Error> {
        Ok(Checkpoint::load(pool, self.name())
            .await?
            .map(|checkpoint| checkpoint.version))
    }

    /// Runs the projection's builder until `shutdown`: built from `source` first if it never
    /// was, then fed from JetStream (and from `source` for gaps JetStream cannot fill).
    pub fn run(
        self,
        pool: PgPool,
        settings: RunnerSettings,
        source: Arc<dyn EventSource>,
        jetstream: jetstream::Context,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        self.projection()
            .run(pool, settings, source, jetstream, shutdown)
    }

    /// Retries one parked stream with the projection's current code, reading the store first
    /// (a stream parked for a gap applies what has reached the store since).
    ///
    /// # Errors
    /// On transient failures.
    pub async fn retry(
        self,
        pool: &PgPool,
        source: &dyn EventSource,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<RetryOutcome, ApplyError> {
        self.projection()
            .retry(pool, source, aggregate_type, aggregate_id)
            .await
    }
}

/// [`Projection`] made object-safe: its futures boxed, its generic engine entry points bound.
/// Implemented for every projection that can be copied out of the registry.
trait Dispatch: Send + Sync {
    fn name(&self) -> &'static str;

    fn version(&self) -> u32;

    fn aggregate_types(&self) -> &'static [&'static str];

    fn rebuild<'a>(
        &'a self,
        pool: &'a PgPool,
        source: &'a dyn EventSource,
        batch: i64,
        progress: &'a mut (dyn FnMut(Progress) + Send),
    ) -> BoxFuture<'a, Result<Rebuilt, RebuildError>>;

    fn run(
        &self,
        pool: PgPool,
        settings: RunnerSettings,
        source: Arc<dyn EventSource>,
        jetstream: jetstream::Context,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()>;

    fn retry<'a>(
        &'a self,
        pool: &'a PgPool,
        source: &'a dyn EventSource,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, ApplyError>>;
}

impl<P: Projection + Copy> Dispatch for P {
    fn name(&self) -> &'static str {
        Projection::name(self)
    }

    fn version(&self) -> u32 {
        Projection::version(self)
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        Projection::aggregate_types(self)
    }

    fn rebuild<'a>(
        &'a self,
        pool: &'a PgPool,
        source: &'a dyn EventSource,
        batch: i64,
        progress: &'a mut (dyn FnMut(Progress) + Send),
    ) -> BoxFuture<'a, Result<Rebuilt, RebuildError>> {
        Box::pin(rebuild(self, pool, source, batch, progress))
    }

    fn run(
        &self,
        pool: PgPool,
        settings: RunnerSettings,
        source: Arc<dyn EventSource>,
        jetstream: jetstream::Context,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        let runner = ProjectionRunner::new(*self, pool, settings, source);
        Box::pin(runner.run(jetstream, shutdown))
    }

    fn retry<'a>(
        &'a self,
        pool: &'a PgPool,
        source: &'a dyn EventSource,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, ApplyError>> {
        Box::pin(retry_parked_from_store(
            self,
            pool,
            source,
            aggregate_type,
            aggregate_id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Registered;

    #[test]
    fn every_registered_projection_is_found_by_its_own_unique_name() {
        for projection in Registered::ALL {
            assert_eq!(Registered::by_name(projection.name()), Some(projection));
        }
        let mut names: Vec<&str> = Registered::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Registered::ALL.len(), "names are unique");
        assert_eq!(Registered::by_name("no such projection"), None);
    }
}
