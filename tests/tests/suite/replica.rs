//! A PostgreSQL streaming replica of the test primary, for query processes that read from one.
//!
//! The query side may read read models from a hot standby (`database.read_url`), which lags the
//! primary by however long replay takes. Only a real standby shows that lag honestly, so the
//! harness runs one: `pg_basebackup -R -X stream` of the primary `just services` started (same
//! major version's binaries), then `pg_ctl start` on a free port. `-R` writes `standby.signal`
//! and `primary_conninfo`, so the copy starts in recovery and streams the primary's WAL for as
//! long as it runs; every database the primary creates afterwards (each test's fresh clone of the
//! template) appears on the standby once replayed, which [`Replica::wait_for_database`] waits
//! for.
//!
//! One replica per test process, started on first use by [`replica()`] and shared by the tests
//! of that process (nextest runs one test per process, so each test asking for it pays the start:
//! a fast-checkpoint base backup of the whole primary cluster, so it grows with the databases
//! earlier runs left there). Its directory is `.local/replicas/<pid>-<random>/`; a watchdog
//! started with it, in its own process group so a test timeout does not take it down, stops the
//! server and deletes the directory when the test process is gone. Directories of dead processes
//! whose watchdog died too (a reboot) are swept by the next start.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

use crate::helpers::{fresh_database, services, wait_until, with_database};
use crate::pg::{append, free_port, running_as_root, server_dir, PgTools};

/// How long a start may take: base backup, server start and reaching consistent recovery.
const START_DEADLINE: Duration = Duration::from_secs(120);
/// How long a database created or a write committed on the primary may take to be replayed.
const REPLAY_DEADLINE: Duration = Duration::from_secs(30);
/// Settings a hot standby refuses to run with when they are lower than on its primary; the
/// primary gets some of them on its command line, which a base backup does not copy.
const MIRRORED_SETTINGS: &[&str] = &[
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "shared_preload_libraries",
];

/// A running streaming replica (hot standby) of the test primary.
#[derive(Debug)]
pub struct Replica {
    /// The replica's port on 127.0.0.1.
    port: u16,
    /// `.local/replicas/<pid>-<random>`: `data/` and `postgres.log`.
    dir: PathBuf,
}

/// The replica of this test process, started on first use; panics with the server log's
/// location when it cannot be started.
pub async fn replica() -> &'static Replica {
    static REPLICA: OnceCell<Replica> = OnceCell::const_new();
    REPLICA.get_or_init(start).await
}

impl Replica {
    /// The replica's `postgres` database, with the primary's user: the base of
    /// [`Replica::url_of`].
    pub fn base_url(&self) -> String {
        self.url_of(&with_database(&services().database_url, "postgres"))
    }

    /// `primary_url` (any database of the primary) pointed at the replica: same user, same
    /// database name, same parameters. The database may not be replayed yet: see
    /// [`Replica::wait_for_database`].
    pub fn url_of(&self, primary_url: &str) -> String {
        let (scheme, rest) = primary_url
            .split_once("://")
            .expect("database URL has a scheme");
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}{tail}", self.port)
    }

    /// The replica server's log, for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Waits until the database of `primary_url` (created on the primary) has been replayed and
    /// accepts connections on the replica; returns its URL on the replica.
    pub async fn wait_for_database(&self, primary_url: &str) -> String {
        let url = self.url_of(primary_url);
        let what = format!(
            "the replica on port {} has database {:?} (server log: {})",
            self.port,
            database_name(primary_url),
            self.log_path().display()
        );
        wait_until(&what, REPLAY_DEADLINE, || async {
            PgConnection::connect(&url).await.is_ok()
        })
        .await;
        url
    }

    /// Waits until the replica has replayed everything the primary had written when this was
    /// called (its current WAL position), so whatever a test committed before is visible.
    pub async fn wait_until_caught_up(&self) {
        let target = primary_wal_position().await;
        self.wait_for(
            &format!("the replica has replayed the primary's WAL up to {target}"),
            "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
            &target,
        )
        .await;
    }

    /// Pauses WAL replay: the replica keeps receiving the primary's WAL but shows nothing new,
    /// like a replica that lags, until [`Replica::resume_replay`]. Affects every test of this
    /// process (one, under nextest).
    pub async fn pause_replay(&self) {
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut self.connect().await)
            .await
            .expect("pause replay on the replica");
        self.wait_for(
            "the replica's replay is paused",
            "SELECT pg_get_wal_replay_pause_state() = $1",
            "paused",
        )
        .await;
    }

    /// Resumes WAL replay after [`Replica::pause_replay`].
    pub async fn resume_replay(&self) {
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut self.connect().await)
            .await
            .expect("resume replay on the replica");
    }

    /// Waits until the replica has *received* (not necessarily replayed) the primary's WAL up
    /// to its current position: with replay paused, the replica now holds every earlier write
    /// but shows none of them.
    pub async fn wait_until_received(&self) {
        let target = primary_wal_position().await;
        self.wait_for(
            &format!("the replica has received the primary's WAL up to {target}"),
            "SELECT coalesce(pg_last_wal_receive_lsn() >= $1::pg_lsn, false)",
            &target,
        )
        .await;
    }

    /// Waits until `condition` (a boolean query with one text parameter, `argument`) holds on
    /// the replica's `postgres` database, asking over one connection.
    async fn wait_for(&self, what: &str, condition: &'static str, argument: &str) {
        let standby = tokio::sync::Mutex::new(self.connect().await);
        let what = format!(
            "{what} (replica on port {}, server log: {})",
            self.port,
            self.log_path().display()
        );
        wait_until(&what, REPLAY_DEADLINE, || async {
            sqlx::query_scalar::<_, bool>(condition)
                .bind(argument)
                .fetch_one(&mut *standby.lock().await)
                .await
                .expect("query the replica")
        })
        .await;
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.base_url())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "connect to the replica on port {}: {error} (server log: {})",
                    self.port,
                    self.log_path().display()
                )
            })
    }
}

/// The database name in a `postgres://…/name?…` URL.
fn database_name(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    path.split('?').next().unwrap_or(path)
}

/// The primary's current WAL insert position, as text (`pg_lsn`).
async fn primary_wal_position() -> String {
    let mut primary = PgConnection::connect(&with_database(&services().database_url, "postgres"))
        .await
        .expect("connect to the primary");
    sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut primary)
        .await
        .expect("read the primary's WAL position")
}

async fn start() -> Replica {
    let primary_url = with_database(&services().database_url, "postgres");
    let mut primary = PgConnection::connect(&primary_url)
        .await
        .expect("connect to the primary");
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut primary)
        .await
        .expect("read the primary's version");
    let bin = PathBuf::from(format!("/usr/lib/postgresql/{}/bin", version / 10_000));
    assert!(
        bin.join("pg_basebackup").exists(),
        "the replica needs the primary's major version's binaries in {}",
        bin.display()
    );
    let mirrored: Vec<(String, String)> =
        sqlx::query_as("SELECT name, setting FROM pg_settings WHERE name = ANY($1)")
            .bind(MIRRORED_SETTINGS)
            .fetch_all(&mut primary)
            .await
            .expect("read the primary's settings");
    let tools = PgTools {
        bin,
        as_root: running_as_root(),
    };

    let dir = server_dir("replicas", &tools).await;

    let data = dir.join("data");
    let mut backup = tools.command("pg_basebackup");
    backup
        .arg("--dbname")
        .arg(&primary_url)
        .arg("--pgdata")
        .arg(&data)
        .args(["--write-recovery-conf", "--wal-method=stream"])
        // A spread checkpoint would wait for up to minutes; throwaway copies need no fsync.
        .args(["--checkpoint=fast", "--no-sync", "--no-manifest"]);
    PgTools::run("pg_basebackup of the primary", backup).await;

    // Later lines of postgresql.auto.conf win, so a retry on another port just appends. A
    // throwaway copy needs no fsync; without it, start-up also skips syncing the whole copied
    // directory (seconds).
    let mut config = String::from(
        "\n# test replica\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
         hot_standby = on\nfsync = off\n",
    );
    for (name, setting) in &mirrored {
        config.push_str(&format!("{name} = '{}'\n", setting.replace('\'', "''")));
    }
    let log = dir.join("postgres.log");
    let mut last_failure = String::new();
    for _ in 0..5 {
        let port = free_port();
        config.push_str(&format!("port = {port}\n"));
        append(&data.join("postgresql.auto.conf"), &config);
        config.clear();
        let mut pg_ctl = tools.command("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(&data)
            .arg("--log")
            .arg(&log)
            .args(["--wait", "--timeout=60", "start"])
            .stdin(Stdio::null());
        let output = tokio::task::spawn_blocking(move || pg_ctl.output())
            .await
            .expect("pg_ctl's task completes")
            .expect("run pg_ctl");
        if output.status.success() {
            let replica = Replica { port, dir };
            wait_until_in_recovery(&replica).await;
            return replica;
        }
        // Most likely another process took the port between probing and binding.
        last_failure = String::from_utf8_lossy(&output.stderr).into_owned();
    }
    panic!(
        "the replica did not start: {last_failure} (server log: {})",
        log.display()
    );
}

async fn wait_until_in_recovery(replica: &Replica) {
    let url = replica.base_url();
    let what = format!(
        "the replica on port {} accepts connections in recovery (server log: {})",
        replica.port,
        replica.log_path().display()
    );
    wait_until(&what, START_DEADLINE, || async {
        let Ok(mut conn) = PgConnection::connect(&url).await else {
            return false;
        };
        sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test]
async fn a_streaming_replica_replays_the_primary_and_refuses_writes() {
    let replica = replica().await;
    let primary_url = fresh_database().await;
    let mut primary = PgConnection::connect(&primary_url).await.unwrap();
    sqlx::query("CREATE TABLE replica_probe (id int PRIMARY KEY, note text NOT NULL)")
        .execute(&mut primary)
        .await
        .unwrap();
    sqlx::query("INSERT INTO replica_probe VALUES (1, 'written on the primary')")
        .execute(&mut primary)
        .await
        .unwrap();

    let replica_url = replica.wait_for_database(&primary_url).await;
    assert_eq!(database_name(&replica_url), database_name(&primary_url));
    replica.wait_until_caught_up().await;
    let mut standby = PgConnection::connect(&replica_url).await.unwrap();
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut standby)
        .await
        .unwrap();
    assert!(in_recovery, "the replica is a standby");
    let note: String = sqlx::query_scalar("SELECT note FROM replica_probe WHERE id = 1")
        .fetch_one(&mut standby)
        .await
        .unwrap();
    assert_eq!(note, "written on the primary");

    let refused = sqlx::query("INSERT INTO replica_probe VALUES (2, 'written on the replica')")
        .execute(&mut standby)
        .await
        .expect_err("a standby refuses writes");
    let code = refused
        .as_database_error()
        .and_then(|error| error.code())
        .map(|code| code.into_owned());
    assert_eq!(
        code.as_deref(),
        Some("25006"),
        "read_only_sql_transaction: {refused}"
    );

    // A paused replay is a lagging replica: the write has arrived but is not visible yet.
    replica.pause_replay().await;
    sqlx::query("INSERT INTO replica_probe VALUES (3, 'written while the replica lags')")
        .execute(&mut primary)
        .await
        .unwrap();
    replica.wait_until_received().await;
    let lagging: Option<String> = sqlx::query_scalar("SELECT note FROM replica_probe WHERE id = 3")
        .fetch_optional(&mut standby)
        .await
        .unwrap();
    assert_eq!(lagging, None, "replay is paused");
    replica.resume_replay().await;
    replica.wait_until_caught_up().await;
    let caught_up: String = sqlx::query_scalar("SELECT note FROM replica_probe WHERE id = 3")
        .fetch_one(&mut standby)
        .await
        .unwrap();
    assert_eq!(caught_up, "written while the replica lags");
}
