//! Building and running the whole backend: the seam `main` and the tests both use.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use commands::audit::sealer::Sealer;
use commands::documents::{StoreLocation, StoreSettings};
use commands::jetstream::{BusError, StreamSettings};
use commands::jobs::scheduler::{JobScheduler, SchedulerSettings};
use commands::relay::{Relay, RelaySettings};
use commands::{wakeup, WriteSettings, WriteSide};
use domain::documents::ContentType;
use domain::event::Subjects;
use projections::community::live as community_live;
use projections::engine::RunnerSettings;
use projections::jobs::live;
use projections::live::LiveHub;
use projections::prices::live as prices_live;
use projections::registry::Registered;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{DatabaseSettings, DocumentStoreKind, Settings};
use crate::http::auth::Authenticator;
use crate::http::limits::{RateLimits, WriteLimits};
use crate::http::streams::LiveStreams;
use crate::routes::{self, AppState, Routes, Sides};

/// How far a live client may fall behind the process's subscription before its stream ends
/// (it reconnects with its last id and reads the gap from the stream).
const LIVE_LAG_LIMIT: usize = 4096;

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database URL is malformed or Postgres is unreachable.
    #[error("cannot connect to Postgres (database.url)")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The document store could not be opened.
    #[error("cannot open the document store (documents.*)")]
    Documents(#[source] object_store::Error),
    /// The listener could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Connects the primary's pool with the timeouts that keep the feed's horizon moving.
///
/// # Errors
/// When the URL is malformed or Postgres is unreachable.
pub async fn connect_database(settings: &Settings) -> Result<PgPool, StartupError> {
    connect(&settings.database, settings.database.url.expose()).await
}

/// Connects the pool queries read from: the replica when `database.read_url` is set, else the
/// primary (then `primary` itself is returned).
///
/// # Errors
/// When the URL is malformed or Postgres is unreachable.
pub async fn connect_read_database(
    settings: &Settings,
    primary: &PgPool,
) -> Result<PgPool, StartupError> {
    match settings.database.replica_url() {
        Some(url) => connect(&settings.database, url.expose()).await,
        None => Ok(primary.clone()),
    }
}

/// How long a pooled connection may sit unused before it is pinged when handed out again.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

async fn connect(database: &DatabaseSettings, url: &str) -> Result<PgPool, StartupError> {
    let options: PgConnectOptions = url.parse().map_err(StartupError::Database)?;
    // A write transaction left open holds every later event back from the relay, so bound it.
    let options = options.options([
        (
            "statement_timeout",
            format!("{}ms", database.statement_timeout_ms),
        ),
        (
            "idle_in_transaction_session_timeout",
            format!("{}ms", database.idle_in_transaction_timeout_ms),
        ),
    ]);
    PgPoolOptions::new()
        .max_connections(database.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // A connection in use a moment ago is alive; pinging it before every statement would
        // add a round trip to each one. One that sat idle is checked before it is handed out.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(StartupError::Database)
}

/// Applies every pending migration.
///
/// # Errors
/// When a migration fails.
pub async fn migrate(pool: &PgPool) -> Result<(), StartupError> {
    eventstore_migrations::MIGRATOR.run(pool).await?;
    Ok(())
}

/// The events stream as configured.
pub fn stream_settings(settings: &Settings) -> StreamSettings {
    StreamSettings {
        name: settings.nats.stream.clone(),
        subjects: Subjects::new(settings.nats.subject_prefix.clone()),
        duplicate_window: Duration::from_secs(settings.nats.duplicate_window_secs),
        max_age: Duration::from_secs(settings.nats.max_age_secs),
        replicas: settings.nats.replicas,
    }
}

/// The write side's settings: idempotency and where documents go.
pub fn write_settings(settings: &Settings) -> WriteSettings {
    let documents = &settings.documents;
    let location = match documents.store {
        DocumentStoreKind::Local => StoreLocation::Local {
            path: documents.local_path.clone(),
        },
        DocumentStoreKind::S3 => StoreLocation::S3 {
            bucket: documents.s3_bucket.clone(),
            endpoint: documents.s3_endpoint.clone(),
            region: documents.s3_region.clone(),
            credentials: (!documents.s3_access_key_id.is_empty()).then(|| {
                (
                    documents.s3_access_key_id.expose().to_owned(),
                    documents.s3_secret_access_key.expose().to_owned(),
                )
            }),
            allow_http: documents.s3_allow_http,
        },
    };
    WriteSettings {
        idempotency_ttl: Duration::from_secs(settings.auth.idempotency_ttl_secs),
        snapshot_every: settings.commands.snapshot_every_events,
        documents: StoreSettings {
            location,
            max_bytes: documents.max_bytes,
            allowed: documents
                .allowed_types
                .iter()
                .filter_map(|name| ContentType::by_name(name))
                .collect(),
        },
    }
}

/// A built backend: listener bound, stores connected, workers ready to start.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    contexts: Vec<Routes>,
    jetstream: jetstream::Context,
    relay: Relay,
    relay_wakeup: Arc<Notify>,
    /// Cancelled at shutdown: stops the background workers and ends live streams.
    stop: CancellationToken,
}

impl Application {
    /// Connects to Postgres and NATS, migrates (unless disabled), declares the stream and binds
    /// the listener, with every registered context's routes.
    ///
    /// # Errors
    /// [`StartupError`] naming what failed.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, routes::contexts()).await
    }

    /// [`Application::build`] with the routes of `contexts` instead of the registered ones.
    ///
    /// # Errors
    /// [`StartupError`] naming what failed.
    pub async fn build_with(
        settings: Settings,
        contexts: Vec<Routes>,
    ) -> Result<Self, StartupError> {
        let pool = connect_database(&settings).await?;
        if settings.database.migrate_on_start {
            migrate(&pool).await?;
        }
        let read_pool = connect_read_database(&settings, &pool).await?;
        let nats = commands::jetstream::connect(settings.nats.url.expose()).await?;
        let jetstream = jetstream::new(nats.clone());
        let stream = stream_settings(&settings);
        commands::jetstream::ensure_stream(&jetstream, &stream).await?;

        let relay_wakeup = Arc::new(Notify::new());
        let relay = Relay::new(
            pool.clone(),
            jetstream.clone(),
            stream,
            RelaySettings {
                batch_size: settings.relay.batch_size as i64,
                poll_interval: Duration::from_millis(settings.relay.poll_interval_ms),
                ..RelaySettings::default()
            },
        );
        let write = WriteSide::build(&pool, &relay_wakeup, write_settings(&settings))
            .map_err(StartupError::Documents)?;
        let tenants = write.tenants.clone();
        let auth = Arc::new(Authenticator::new(
            &settings.auth,
            write.users.clone(),
            write.api_keys.clone(),
            write.tenants.clone(),
        ));

        let address = SocketAddr::new(settings.http.host, settings.http.port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        let stop = CancellationToken::new();
        let live_jobs = Arc::new(LiveHub::new(
            jetstream.clone(),
            &settings.nats.stream,
            live::hub_subjects(&settings.nats.subject_prefix),
            LIVE_LAG_LIMIT,
            live::JobUpdates::new(read_pool.clone()),
        ));
        let live_community = Arc::new(LiveHub::new(
            jetstream.clone(),
            &settings.nats.stream,
            community_live::hub_subjects(&settings.nats.subject_prefix),
            LIVE_LAG_LIMIT,
            community_live::NewWriting,
        ));
        let live_prices = Arc::new(LiveHub::new(
            jetstream.clone(),
            &settings.nats.stream,
            prices_live::hub_subjects(&settings.nats.subject_prefix),
            LIVE_LAG_LIMIT,
            prices_live::BarUpdates::new(pool.clone()),
        ));
        let state = AppState {
            write,
            pool,
            read_pool,
            auth,
            relay: relay.clone(),
            nats,
            limits: RateLimits::new(&settings.rate_limit),
            write_limits: WriteLimits::new(&settings.rate_limit, &settings.community),
            live_streams: Arc::new(
                LiveStreams::new(
                    settings.http.live_streams_per_principal,
                    settings.http.live_streams_per_process,
                    stop.clone(),
                )
                .ending_on_suspension(tenants),
            ),
            live_jobs,
            live_community,
            live_prices,
            price_breaker: None,
            settings: Arc::new(settings),
        };
        Ok(Self {
            listener,
            state,
            contexts,
            jetstream,
            relay,
            relay_wakeup,
            stop,
        })
    }

    /// The bound port (useful when configured as 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// The relay, for driving it step by step.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Serves HTTP and runs the enabled workers until `shutdown` completes, then drains
    /// in-flight requests and stops the workers.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut state = self.state;
        let settings = state.settings.clone();
        let stop = self.stop.clone();
        let mut workers = JoinSet::new();
        let pool = state.pool.clone();
        if settings.runs_relay() {
            workers.spawn(
                self.relay
                    .clone()
                    .run(self.relay_wakeup.clone(), stop.child_token()),
            );
            // Commands appended by other processes wake it through Postgres.
            let wakeup = self.relay_wakeup.clone();
            workers.spawn(wakeup::listen(pool, wakeup, stop.child_token()));
        } else {
            // This process's appends wake the relay of another.
            let wakeup = self.relay_wakeup.clone();
            workers.spawn(wakeup::forward(pool, wakeup, stop.child_token()));
        }
        let worker_id = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        if settings.runs_projections() {
            if let Err(error) = crate::rebuild::rebuild_outdated(&state.pool).await {
                tracing::error!(error = %error, "checking projection versions failed");
            }
            for projection in Registered::ALL {
                let runner = RunnerSettings {
                    stream: settings.nats.stream.clone(),
                    subjects: Subjects::new(settings.nats.subject_prefix.clone()),
                    batch_size: settings.projections.batch_size,
                    gap_retry: Duration::from_millis(100),
                    failure_retry: Duration::from_secs(1),
                    partitions: settings.projections.partitions,
                    worker_id: worker_id.clone(),
                };
                let pool = state.pool.clone();
                workers.spawn(projection.run(
                    pool.clone(),
                    runner,
                    crate::rebuild::FeedSource::shared(pool),
                    self.jetstream.clone(),
                    stop.child_token(),
                ));
            }
            workers.spawn(projections::prices::run_valuer(
                state.pool.clone(),
                stop.child_token(),
            ));
        }
        if settings.runs_scheduler() {
            let scheduler = JobScheduler::new(
                state.pool.clone(),
                state.write.jobs.clone(),
                SchedulerSettings {
                    stream: settings.nats.stream.clone(),
                    subjects: Subjects::new(settings.nats.subject_prefix.clone()),
                    tick: Duration::from_millis(settings.jobs.scheduler_tick_ms),
                    batch: 100,
                },
            );
            workers.spawn(scheduler.run(self.jetstream.clone(), stop.child_token()));
        }
        if settings.roles.runs_workers() && settings.audit.sealer_enabled {
            let key = settings.audit.key().unwrap_or_else(|error| {
                // Settings loaded from the environment were validated; built in code, they may not be.
                tracing::error!(error = %error, "the audit signing key is unusable; no checkpoints");
                None
            });
            let sealer = Sealer::new(state.pool.clone(), settings.audit.sealer(), key);
            workers.spawn(sealer.run(stop.child_token()));
        }
        if settings.roles.runs_workers() {
            if let Some(provider) = settings.prices.provider() {
                match commands::prices::provider::Provider::new(provider) {
                    Ok(provider) => {
                        let importer = commands::prices::importer::Importer::new(
                            state.pool.clone(),
                            state.write.prices.clone(),
                            provider,
                            settings.prices.importer(),
                        );
                        state.price_breaker = Some(importer.breaker());
                        workers.spawn(importer.run(stop.child_token()));
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "the price provider's client cannot be built; no imports run");
                    }
                }
            }
        }
        let sides = Sides {
            commands: settings.roles.serves_commands(),
            queries: settings.roles.serves_queries(),
        };
        let router = routes::router(state, self.contexts, sides);
        let stop_serving = stop.clone();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                info!("shutting down: draining requests and stopping workers");
                stop_serving.cancel();
            })
            .await;
        stop.cancel();
        while workers.join_next().await.is_some() {}
        served
    }
}
