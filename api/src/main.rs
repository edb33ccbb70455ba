//! The backend binary: `serve` (default) or `migrate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use api::config::Settings;
use api::startup::{self, Application};
use clap::{Parser, Subcommand};
use tracing::{error, info};

/// Event-sourced CQRS backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Optional TOML configuration file (environment variables override it).
    #[arg(long, env = "APP_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API, the relay and the projection builders (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI 3.1 document of every route (as served at `/api/v1/openapi.json`) and
    /// exit; needs no configuration or services.
    Openapi,
    /// Inspect and operate projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// The jobs the job scheduler parked (a history that does not decode, a timer's command
    /// failing for good), and retrying them.
    Scheduler {
        #[command(subcommand)]
        command: SchedulerCommand,
    },
    /// Mint a short-lived HS256 JWT for a user, signed with the configured
    /// `auth.jwt_hs256_secret` (for local development; production tokens come from your
    /// identity provider).
    MintToken {
        /// The user's tenant.
        #[arg(long)]
        tenant: String,
        /// The user's id.
        #[arg(long)]
        user: uuid::Uuid,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
    /// Create an admin API key for a tenant and print it (once; only its hash is stored).
    CreateAdminKey {
        /// The tenant (letters, digits, '-', '_').
        #[arg(long)]
        tenant: String,
        /// A name for the key.
        #[arg(long, default_value = "bootstrap admin")]
        name: String,
    },
    /// Operate tenants: list them with their usage, provision, change settings, suspend,
    /// reactivate.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Check the verifiable audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Generate an Ed25519 key for signing audit-log checkpoints: prints the private key
    /// (for `audit.signing_key`) on stdout and the public verifier key on stderr.
    GenerateAuditKey {
        /// The key's name (signature lines name it); printable ASCII, no spaces or '+'.
        #[arg(long, default_value = "cqrs-backend.local")]
        name: String,
    },
    /// Create an operator API key and print it (once): it rebuilds projections and reads every
    /// tenant's projection status and parked streams. No tenant's admin can create one.
    CreateOperatorKey {
        /// The tenant the key is recorded in (its own streams live there).
        #[arg(long, default_value = "system")]
        tenant: String,
        /// A name for the key.
        #[arg(long, default_value = "operator")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Every provisioned tenant: status, jobs submitted today, stored bytes, settings.
    List,
    /// Provision a tenant and print its first admin API key (once).
    Provision {
        /// The tenant's id (letters, digits, '-', '_').
        #[arg(long)]
        tenant: String,
        /// How it is shown.
        #[arg(long)]
        name: String,
        /// Settings as JSON, e.g. '{"quota_jobs_per_day": 1000}'; the server's for any left out.
        #[arg(long, default_value = "{}")]
        settings: String,
    },
    /// Replace a tenant's settings (JSON; every setting left out follows the server's).
    Settings {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Settings as JSON, e.g. '{"job_max_attempts": 5}'.
        #[arg(long)]
        settings: String,
    },
    /// Suspend a tenant: its credentials are refused at once; nothing is deleted.
    Suspend {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Why (shown to operators).
        #[arg(long)]
        reason: String,
    },
    /// Reactivate a suspended tenant.
    Reactivate {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Lag, parked streams and last error of every projection.
    Status,
    /// The parked streams of a projection.
    Parked {
        /// Projection name, e.g. `users`.
        name: String,
    },
    /// Retry a parked stream with the current code.
    Retry {
        /// Projection name.
        name: String,
        /// The stream id, as listed by `parked` (e.g. `acme:0192…`).
        stream: String,
    },
    /// Rebuild a projection from the event store without downtime, with a progress bar.
    Rebuild {
        /// Projection name.
        name: String,
    },
    /// Compare what a projection applied with the event store, stream by stream; exits 1 when
    /// anything is missing or extra.
    Verify {
        /// Projection name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every leaf from the event store, rebuild each tenant's tree from them, and
    /// check every stored checkpoint's root and signature; exits 1 naming the first position
    /// that disagrees (modified, missing, inserted, reordered, truncated).
    Verify {
        /// Only this tenant's log.
        #[arg(long)]
        tenant: Option<String>,
        /// Check checkpoint signatures with this verifier key (`{name}+{id}+{base64}`) instead
        /// of the configured signing key's, so an auditor needs no secret.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Verify an NDJSON export offline (no database, no server): every checkpoint given (the
    /// latest, and any kept from before) must be signed by the public key and sign exactly the
    /// export's first events. The export must start at the tenant's first event.
    VerifyExport {
        /// The export (`GET /api/v1/audit/export` without `after`).
        file: PathBuf,
        /// A checkpoint's signed note, as served in `note`; repeat for checkpoints kept earlier.
        #[arg(long = "checkpoint", required = true)]
        checkpoints: Vec<PathBuf>,
        /// The log's public key (`verifier_key` from `GET /api/v1/audit/log/key`).
        #[arg(long)]
        public_key: String,
    },
}

#[derive(Debug, Subcommand)]
enum SchedulerCommand {
    /// The parked jobs, oldest first, with their reasons.
    Parked,
    /// Derive a parked job's timer from its stored history again (after a fix).
    Retry {
        /// The job's stream id, as listed by `parked` (e.g. `acme:0192…`).
        stream: String,
    },
}

/// mimalloc: JSON values are many small allocations, freed on other threads than they were made
/// on (`audit verify`, exports, rebuilds); glibc's allocator spent a fifth of verify's time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        return print_openapi();
    }
    if let Some(Command::GenerateAuditKey { name }) = &cli.command {
        return generate_audit_key(name);
    }
    if let Some(Command::Audit {
        command:
            AuditCommand::VerifyExport {
                file,
                checkpoints,
                public_key,
            },
    }) = &cli.command
    {
        return verify_export(file, checkpoints, public_key);
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            // Telemetry is not configured yet: a plain line on stderr is the clearest answer.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{error}");
            }
            return ExitCode::from(2);
        }
    };
    api::telemetry::init(&settings.log);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Openapi | Command::GenerateAuditKey { .. } => Ok(()),
        Command::CreateAdminKey { tenant, name } => {
            create_key(settings, &tenant, &name, KeyKind::Admin).await
        }
        Command::CreateOperatorKey { tenant, name } => {
            create_key(settings, &tenant, &name, KeyKind::Operator).await
        }
        Command::Projections { command } => projections(settings, command).await,
        Command::Tenants { command } => tenants(settings, command).await,
        Command::Scheduler { command } => scheduler(settings, command).await,
        Command::Audit { command } => audit(settings, command).await,
        Command::MintToken {
            tenant,
            user,
            minutes,
        } => mint_token(&settings, &tenant, user, minutes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut chain = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            error!(error = %chain, "backend stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn print_openapi() -> ExitCode {
    let sides = api::routes::Sides {
        commands: true,
        queries: true,
    };
    // The defaults' limits: the document a backend serves states its own settings'.
    let limits = api::routes::openapi::Limits {
        max_page_size: api::config::QuerySettings::default().max_page_size,
        upload_max_bytes: api::config::DocumentSettings::default().max_bytes,
        text: api::config::CommunitySettings::default().text_limits(),
    };
    let document = api::routes::document(api::routes::contexts(), sides, limits);
    match serde_json::to_string_pretty(&document) {
        // The document is this command's output.
        #[allow(clippy::print_stdout)]
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        #[allow(clippy::print_stderr)]
        Err(error) => {
            eprintln!("the OpenAPI document does not serialize: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let pool = startup::connect_database(&settings).await?;
    startup::migrate(&pool).await?;
    info!(
        migrations = eventstore_migrations::MIGRATOR.iter().count(),
        "database is up to date"
    );
    Ok(())
}

/// Which key a bootstrap command creates.
#[derive(Debug, Clone, Copy)]
enum KeyKind {
    Admin,
    Operator,
}

async fn create_key(
    settings: Settings,
    tenant: &str,
    name: &str,
    kind: KeyKind,
) -> Result<(), Box<dyn std::error::Error>> {
    let (key_id, key) = match kind {
        KeyKind::Admin => api::bootstrap::create_admin_key(&settings, tenant, name).await?,
        KeyKind::Operator => api::bootstrap::create_operator_key(&settings, tenant, name).await?,
    };
    let what = match kind {
        KeyKind::Admin => format!("Admin API key for tenant {tenant}"),
        KeyKind::Operator => "Operator API key".to_owned(),
    };
    // The key is this command's output: printed once, to stdout, for the operator to keep.
    #[allow(clippy::print_stdout)]
    {
        println!("{what} (id {key_id}). It is shown only now; store it safely:");
        println!("{key}");
    }
    Ok(())
}

async fn tenants(
    settings: Settings,
    command: TenantsCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    use api::tenant_cli::{self, TenantChange};
    let pool = startup::connect_database(&settings).await?;
    startup::migrate(&pool).await?;
    let report = match &command {
        TenantsCommand::List => tenant_cli::list(&pool).await?,
        TenantsCommand::Provision {
            tenant,
            name,
            settings,
        } => tenant_cli::provision(&pool, tenant, name, settings).await?,
        TenantsCommand::Settings { tenant, settings } => {
            tenant_cli::change(&pool, tenant, TenantChange::Settings(settings)).await?
        }
        TenantsCommand::Suspend { tenant, reason } => {
            tenant_cli::change(&pool, tenant, TenantChange::Suspend(reason)).await?
        }
        TenantsCommand::Reactivate { tenant } => {
            tenant_cli::change(&pool, tenant, TenantChange::Reactivate).await?
        }
    };
    // The report is this command's output.
    #[allow(clippy::print_stdout)]
    {
        print!("{report}");
    }
    Ok(())
}

async fn projections(
    settings: Settings,
    command: ProjectionsCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    use api::operate;
    let pool = startup::connect_database(&settings).await?;
    // The tables these commands read may be newer than the last start of the backend.
    startup::migrate(&pool).await?;
    let (report, complete) = match command {
        ProjectionsCommand::Status => (
            operate::status_report(&pool, settings.projections.partitions).await?,
            true,
        ),
        ProjectionsCommand::Parked { name } => (operate::parked_report(&pool, &name).await?, true),
        ProjectionsCommand::Retry { name, stream } => {
            (operate::retry_report(&pool, &name, &stream).await?, true)
        }
        ProjectionsCommand::Verify { name } => operate::verify_report(&pool, &name).await?,
        ProjectionsCommand::Rebuild { name } => (
            operate::rebuild_report(&pool, &name, &mut std::io::stderr()).await?,
            true,
        ),
    };
    // The report is this command's output.
    #[allow(clippy::print_stdout)]
    {
        print!("{report}");
    }
    if complete {
        Ok(())
    } else {
        Err("the projection differs from the event store".into())
    }
}

/// `audit verify-export`: prints what verified, or why not (exit 1).
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn verify_export(file: &Path, checkpoints: &[PathBuf], public_key: &str) -> ExitCode {
    let read =
        |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    let notes: Result<Vec<String>, String> = checkpoints.iter().map(|path| read(path)).collect();
    let export = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()));
    let outcome = notes.and_then(|notes| {
        let export = std::io::BufReader::new(export?);
        commands::audit::offline::verify_export(export, &notes, public_key)
            .map_err(|refused| refused.to_string())
    });
    match outcome {
        Ok(verified) => {
            let covered = verified.checkpoints.iter().map(|(_, size)| *size).max();
            println!(
                "ok: {} events, the first {} of them covered by a checkpoint",
                verified.events,
                covered.unwrap_or(0)
            );
            for (origin, size) in verified.checkpoints {
                println!("checkpoint {origin} at size {size}: signed and matches the export");
            }
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a new checkpoint signing key: the private key on stdout, the verifier key on stderr.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn generate_audit_key(name: &str) -> ExitCode {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic() && c != '+');
    if !valid {
        eprintln!("--name: printable ASCII without spaces or '+'");
        return ExitCode::from(2);
    }
    let (private_key, verifier_key) = commands::audit::sealer::SigningKey::generate(name);
    println!("{private_key}");
    eprintln!("verifier key (give it to auditors): {verifier_key}");
    ExitCode::SUCCESS
}

async fn audit(
    settings: Settings,
    command: AuditCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = startup::connect_database(&settings).await?;
    startup::migrate(&pool).await?;
    let AuditCommand::Verify { tenant, public_key } = command else {
        return Ok(()); // verify-export runs before configuration is loaded.
    };
    let verifier_key = match public_key {
        Some(key) => Some(key),
        None => settings
            .audit
            .key()?
            .map(|key| key.verifier_key().to_owned()),
    };
    let (report, clean) =
        api::operate::audit_verify_report(&pool, tenant.as_deref(), verifier_key.as_deref())
            .await?;
    // The report is this command's output.
    #[allow(clippy::print_stdout)]
    {
        print!("{report}");
    }
    if clean {
        Ok(())
    } else {
        Err("the audit log and the event store disagree".into())
    }
}

async fn scheduler(
    settings: Settings,
    command: SchedulerCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    use api::operate;
    let pool = startup::connect_database(&settings).await?;
    startup::migrate(&pool).await?;
    let report = match command {
        SchedulerCommand::Parked => operate::scheduler_parked_report(&pool).await?,
        SchedulerCommand::Retry { stream } => {
            operate::scheduler_retry_report(&pool, &stream).await?
        }
    };
    // The report is this command's output.
    #[allow(clippy::print_stdout)]
    {
        print!("{report}");
    }
    Ok(())
}

fn mint_token(
    settings: &Settings,
    tenant: &str,
    user: uuid::Uuid,
    minutes: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let token = api::http::auth::mint_hs256_token(
        &settings.auth,
        tenant,
        user,
        chrono::Duration::minutes(minutes),
    )?;
    // The token is this command's output.
    #[allow(clippy::print_stdout)]
    {
        println!("{token}");
    }
    Ok(())
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let host = settings.http.host;
    let app = Application::build(settings).await?;
    let base = format!("http://{host}:{}", app.port());
    info!(
        api = %format!("{base}/api/v1"),
        docs = %format!("{base}/docs/"),
        openapi = %format!("{base}/api/v1/openapi.json"),
        health = %format!("{base}/health/ready"),
        "backend ready"
    );
    app.run_until_stopped(shutdown_signal()).await?;
    info!("backend stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
