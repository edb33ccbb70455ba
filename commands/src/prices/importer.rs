//! The importer: the backend's own worker that runs price imports. It polls for due imports of
//! its provider (queued, retry due, or running with a lease that ended), starts an attempt on
//! the import's stream (several importers may poll; the stream lets one win), fetches the range
//! page by page and records each page as it arrives (recording is idempotent, so a page fetched
//! again after a crash changes nothing), reports progress, and completes the import or fails
//! the attempt with the retry time of an exponential backoff. A circuit breaker per provider
//! stops it from starting attempts while the provider is down. A suspended tenant's imports and
//! refreshes wait: none is started or asked for until it is reactivated (an attempt running
//! when it was suspended finishes its range).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::aggregate::Rejection;
use domain::identity::TenantId;
use domain::prices::{
    ImportKey, ImportSource, ImportStatus, Interval, PriceImport, PriceImportCommand,
    PriceImportError,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use super::provider::{Breaker, Provider};
use super::PriceCommands;
use crate::bus::CommandError;
use crate::metadata::CommandContext;
use crate::relay::sleep_or_cancel;

/// The actor recorded on the importer's commands.
pub const ACTOR: &str = "system:price-importer";

/// How the importer works.
#[derive(Debug, Clone)]
pub struct ImporterSettings {
    /// How often it looks for due imports.
    pub poll: Duration,
    /// How long an attempt holds its import before another importer may take it over.
    pub lease: Duration,
    /// How many attempts an import gets.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each one.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Outages in a row that open the provider's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker lets nothing through.
    pub breaker_cooldown: Duration,
}

/// An import due for an attempt, with what fetching it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
struct DueImport {
    tenant_id: String,
    import_id: Uuid,
    asset_id: Uuid,
    symbol: String,
    exchange: String,
    interval: String,
    range_from: DateTime<Utc>,
    range_to: DateTime<Utc>,
}

/// Where an attempt starts: its number, and what earlier attempts recorded.
#[derive(Debug, Clone, Copy)]
struct Resume {
    attempt: u32,
    fetched: u64,
    recorded_until: Option<DateTime<Utc>>,
}

/// Runs the imports of one provider.
#[derive(Debug, Clone)]
pub struct Importer {
    pool: PgPool,
    prices: Arc<PriceCommands>,
    provider: Provider,
    breaker: Arc<Breaker>,
    settings: ImporterSettings,
}

/// Why an attempt stopped early.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] super::provider::ProviderError),
    /// Recording the bars failed.
    #[error("recording the bars failed: {0}")]
    Record(String),
    /// The attempt was taken over or the import changed under it: stop without failing it.
    #[error("the attempt is no longer running")]
    Stale,
}

impl Importer {
    /// An importer of `provider`'s imports.
    pub fn new(
        pool: PgPool,
        prices: Arc<PriceCommands>,
        provider: Provider,
        settings: ImporterSettings,
    ) -> Self {
        let breaker = Arc::new(Breaker::new(
            settings.breaker_failures,
            settings.breaker_cooldown,
        ));
        Self {
            pool,
            prices,
            provider,
            breaker,
            settings,
        }
    }

    /// The provider's breaker (to report its state).
    pub fn breaker(&self) -> Arc<Breaker> {
        self.breaker.clone()
    }

    /// Polls and runs due imports until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        info!(provider = self.provider.name(), "price importer started");
        while !shutdown.is_cancelled() {
            if let Err(error) = self.request_due_refreshes(Utc::now()).await {
                warn!(error = %error, "asking for scheduled price refreshes failed");
            }
            match self.run_due(Utc::now()).await {
                Ok(0) => sleep_or_cancel(self.settings.poll, &shutdown).await,
                Ok(_) => {}
                Err(error) => {
                    warn!(error = %error, "looking for due price imports failed");
                    sleep_or_cancel(self.settings.poll, &shutdown).await;
                }
            }
        }
    }

    /// Asks for the import of every refresh schedule due at `now` (the last `lookback_bars`
    /// completed bars of its series) and records when it asked. Several importers may look at
    /// once: recording the ask is one conditional statement, and should two ask at once they
    /// ask for the same range, which is the same import. Returns how many imports it asked
    /// for.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn request_due_refreshes(&self, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
        let due: Vec<(String, Uuid, String, i32)> = sqlx::query_as(
            "WITH due AS (
                 SELECT s.tenant_id, s.asset_id, s.interval, s.every_minutes, s.lookback_bars
                   FROM read_models.price_refresh_schedules s
                   JOIN read_models.price_assets a
                     ON a.tenant_id = s.tenant_id AND a.asset_id = s.asset_id AND NOT a.delisted
                   LEFT JOIN scheduler.price_refreshes r
                     ON r.tenant_id = s.tenant_id AND r.asset_id = s.asset_id
                    AND r.interval = s.interval
                  WHERE (r.requested_at IS NULL
                         OR r.requested_at + make_interval(mins => s.every_minutes) <= $1)
                    AND NOT EXISTS (SELECT 1 FROM read_models.tenants t
                                     WHERE t.tenant_id = s.tenant_id AND t.status = 'suspended')
                  ORDER BY s.tenant_id, s.asset_id, s.interval
                  LIMIT 50
             ), taken AS (
                 INSERT INTO scheduler.price_refreshes AS r
                        (tenant_id, asset_id, interval, requested_at)
                 SELECT tenant_id, asset_id, interval, $1 FROM due
                 ON CONFLICT (tenant_id, asset_id, interval) DO UPDATE SET requested_at = $1
                  WHERE r.requested_at < $1
                 RETURNING r.tenant_id, r.asset_id, r.interval
             )
             SELECT t.tenant_id, t.asset_id, t.interval, d.lookback_bars
               FROM taken t JOIN due d USING (tenant_id, asset_id, interval)",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut asked = 0;
        for (tenant, asset, interval, lookback) in due {
            let (Ok(tenant), Some(interval)) =
                (TenantId::parse(&tenant), Interval::by_name(&interval))
            else {
                continue;
            };
            let step = interval.seconds();
            let to_seconds = now.timestamp() - now.timestamp().rem_euclid(step);
            let from_seconds = to_seconds - step * i64::from(lookback.max(1));
            let (Some(from), Some(to)) = (
                DateTime::from_timestamp(from_seconds, 0),
                DateTime::from_timestamp(to_seconds, 0),
            ) else {
                continue;
            };
            let key = ImportKey {
                asset,
                interval,
                from,
                to,
            };
            let context = context(tenant, None);
            match self
                .prices
                .request_import(&context, key, self.provider.name(), now)
                .await
            {
                Ok(_) => asked += 1,
                Err(error) => {
                    warn!(asset = %asset, error = %error, "asking for a scheduled price refresh failed");
                }
            }
        }
        Ok(asked)
    }

    /// Runs the imports due at `now`, one after another, while the breaker lets requests
    /// through. Returns how many it started an attempt of (or abandoned, when the last
    /// attempt's lease had ended).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
        let due: Vec<DueImport> = sqlx::query_as(
            "SELECT i.tenant_id, i.import_id, i.asset_id, a.symbol, a.exchange, i.interval, i.range_from,
                    i.range_to
               FROM read_models.price_imports i
               JOIN read_models.price_assets a
                 ON a.tenant_id = i.tenant_id AND a.asset_id = i.asset_id
              WHERE i.provider = $1
                AND NOT a.delisted
                AND NOT EXISTS (SELECT 1 FROM read_models.tenants t
                                 WHERE t.tenant_id = i.tenant_id AND t.status = 'suspended')
                AND (i.status = 'queued'
                     OR (i.status = 'waiting' AND i.next_attempt_at <= $2)
                     OR (i.status = 'running' AND i.lease_until <= $2))
              ORDER BY coalesce(i.next_attempt_at, i.lease_until, i.requested_at)
              LIMIT 10",
        )
        .bind(self.provider.name())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut started = 0;
        for import in due {
            if !self.breaker.admit() {
                break;
            }
            if self.attempt(&import).await {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Starts and runs one attempt of `import`; false when another importer had it already.
    /// A half-open breaker's probe that reached no provider request is given back.
    async fn attempt(&self, import: &DueImport) -> bool {
        let ran = self.run_attempt(import).await;
        self.breaker.release();
        ran
    }

    async fn run_attempt(&self, import: &DueImport) -> bool {
        let Some((context, interval)) = self.context_of(import) else {
            return false;
        };
        let now = Utc::now();
        let start = PriceImportCommand::Start {
            lease_until: self.lease_from(now),
            max_attempts: self.settings.max_attempts,
            at: now,
        };
        if self
            .prices
            .import(&context, import.import_id, None, start, now)
            .await
            .is_err()
        {
            // Not due any more (another importer started it), or the store failed.
            return false;
        }
        let Some(resume) = self.running(&context, import.import_id).await else {
            // Abandoned by the start (its last attempt's lease ended), or taken over already.
            return true;
        };
        let attempt = resume.attempt;
        let outcome = self
            .fetch_and_record(import, &context, interval, resume)
            .await;
        let now = Utc::now();
        let command = match outcome {
            Ok(fetched) => PriceImportCommand::Complete {
                attempt,
                fetched,
                at: now,
            },
            Err(AttemptError::Stale) => return true,
            Err(error) => {
                warn!(import = %import.import_id, attempt, error = %error, "price import attempt failed");
                PriceImportCommand::Fail {
                    attempt,
                    error: error.to_string(),
                    retry_at: now + self.retry_wait(attempt),
                    max_attempts: self.settings.max_attempts,
                    at: now,
                }
            }
        };
        if let Err(error) = self
            .prices
            .import(&context, import.import_id, None, command, now)
            .await
        {
            // Taken over meanwhile, or the store failed: the lease ends and it is retried.
            warn!(import = %import.import_id, attempt, error = %error, "ending a price import attempt failed");
        }
        true
    }

    /// The running attempt of `import` and where it resumes, if one is running.
    async fn running(&self, context: &CommandContext, import: Uuid) -> Option<Resume> {
        match self.prices.import_state(&context.tenant, import).await {
            Ok(PriceImport::Requested {
                status: ImportStatus::Running { attempt, .. },
                fetched,
                recorded_until,
                ..
            }) => Some(Resume {
                attempt,
                fetched,
                recorded_until,
            }),
            _ => None,
        }
    }

    /// Fetches the range page by page from where the import's recording stands, recording each
    /// page and reporting progress (which renews the lease). Returns how many bars the provider
    /// reported since the import was asked for. Every provider request's outcome goes to the
    /// breaker; before a page is recorded, the attempt is checked to be still running, so an
    /// attempt taken over stops instead of recording alongside its successor.
    async fn fetch_and_record(
        &self,
        import: &DueImport,
        context: &CommandContext,
        interval: Interval,
        resume: Resume,
    ) -> Result<u64, AttemptError> {
        let source = ImportSource {
            provider: self.provider.name().to_owned(),
            import_id: import.import_id,
        };
        let mut from = resume.recorded_until.map_or(import.range_from, |recorded| {
            recorded.max(import.range_from)
        });
        let mut fetched = resume.fetched;
        while from < import.range_to {
            let page = self
                .provider
                .page(
                    &import.symbol,
                    &import.exchange,
                    interval,
                    from,
                    import.range_to,
                )
                .await;
            self.breaker.record(page.as_ref().map(|_| ()));
            let page = page?;
            let Some(last) = page.bars.last().map(|bar| bar.time) else {
                break;
            };
            let still_running = self
                .running(context, import.import_id)
                .await
                .is_some_and(|running| running.attempt == resume.attempt);
            if !still_running {
                return Err(AttemptError::Stale);
            }
            fetched += page.bars.len() as u64;
            let now = Utc::now();
            self.prices
                .record(context, import.asset_id, interval, page.bars, &source, now)
                .await
                .map_err(|error| AttemptError::Record(error.to_string()))?;
            from = last + chrono::Duration::seconds(interval.seconds());
            let progress = PriceImportCommand::Progress {
                attempt: resume.attempt,
                fetched,
                recorded_until: from,
                lease_until: self.lease_from(now),
                at: now,
            };
            match self
                .prices
                .import(context, import.import_id, None, progress, now)
                .await
            {
                Ok(_) => {}
                Err(CommandError::Rejected(Rejection::Domain(PriceImportError::NotRunning))) => {
                    return Err(AttemptError::Stale)
                }
                Err(error) => return Err(AttemptError::Record(error.to_string())),
            }
            if !page.full {
                break;
            }
        }
        Ok(fetched)
    }

    /// The wait before the attempt after `attempt`: `retry_base` doubled per attempt, capped.
    fn retry_wait(&self, attempt: u32) -> chrono::Duration {
        let doubled = self
            .settings
            .retry_base
            .saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)));
        chrono::Duration::from_std(doubled.min(self.settings.retry_max))
            .unwrap_or(chrono::Duration::MAX)
    }

    /// The end of a lease taken or renewed at `now`.
    fn lease_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::MAX)
    }

    /// The context of the importer's commands on `import`, and its interval.
    fn context_of(&self, import: &DueImport) -> Option<(CommandContext, Interval)> {
        let tenant = TenantId::parse(&import.tenant_id).ok()?;
        let interval = Interval::by_name(&import.interval)?;
        Some((context(tenant, Some(import.import_id)), interval))
    }
}

/// The context of the importer's commands in `tenant`, correlated by the import they concern
/// (a fresh id when asking for a new one).
fn context(tenant: TenantId, import: Option<Uuid>) -> CommandContext {
    let id = Uuid::now_v7().to_string();
    CommandContext {
        request_id: id.clone(),
        correlation_id: import.map_or_else(|| id.clone(), |import| import.to_string()),
        causation_id: id,
        actor: ACTOR.to_owned(),
        tenant,
        idempotency: None,
    }
}
