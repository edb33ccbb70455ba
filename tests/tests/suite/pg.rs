//! Postgres servers a test starts for itself, next to the one `just services` runs: the tools
//! (run as the `postgres` user when tests run as root), free ports, and a watchdog that stops a
//! server and deletes its directory once the test process is gone. Used by the streaming
//! replica ([`crate::replica`]) and by [`PrivatePostgres`], a whole server a test may stop and
//! start again.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{services, with_database};

impl PgTools {
    /// The binaries of the major version `just services` runs.
    pub(crate) async fn of_services() -> Self {
        let url = with_database(&services().database_url, "postgres");
        let mut connection = PgConnection::connect(&url)
            .await
            .expect("connect to the services' Postgres");
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut connection)
            .await
            .expect("read the server's version");
        Self {
            bin: PathBuf::from(format!("/usr/lib/postgresql/{}/bin", version / 10_000)),
            as_root: running_as_root(),
        }
    }
}

/// A new directory for a server of this test process, `.local/<kind>/<pid>-<random>/`, owned by
/// the `postgres` user, with a watchdog that stops the server and deletes it once the process
/// is gone; directories of dead processes left under `kind` are swept first.
pub(crate) async fn server_dir(kind: &str, tools: &PgTools) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.local")
        .join(kind);
    sweep_stale(&root, tools);
    let dir = root.join(format!(
        "{}-{}",
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir).expect("create the server's directory");
    if tools.as_root {
        let mut chown = std::process::Command::new("chown");
        chown.arg("postgres:").arg(&root).arg(&dir);
        PgTools::run("chown the server's directory to postgres", chown).await;
    }
    spawn_watchdog(&dir, tools);
    dir
}

/// A Postgres server of this test alone, in `.local/private-postgres/<pid>-<random>/`, which
/// the test may stop and start again (a database outage). Trust authentication on 127.0.0.1.
#[derive(Debug)]
pub(crate) struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_root: bool,
}

impl PrivatePostgres {
    /// A new server, started.
    pub(crate) async fn start() -> Self {
        let tools = PgTools::of_services().await;
        let dir = server_dir("private-postgres", &tools).await;
        let data = dir.join("data");
        let mut initdb = tools.command("initdb");
        initdb.arg("--pgdata").arg(&data).args([
            "--username=postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
        ]);
        PgTools::run("initdb of a private server", initdb).await;
        let port = free_port();
        append(
            &data.join("postgresql.auto.conf"),
            &format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
                 fsync = off\nmax_connections = 200\n"
            ),
        );
        let server = Self {
            dir,
            port,
            bin: tools.bin,
            as_root: tools.as_root,
        };
        server.start_again().await;
        server
    }

    /// The URL of its `postgres` database.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Command {
        let tools = PgTools {
            bin: self.bin.clone(),
            as_root: self.as_root,
        };
        let mut command = tools.command("pg_ctl");
        command
            .arg("--pgdata")
            .arg(self.dir.join("data"))
            .arg("--log")
            .arg(self.dir.join("postgres.log"))
            .args(args);
        command
    }

    /// Stops it the way an administrator's fast shutdown does: every connection is cut.
    pub(crate) async fn stop(&self) {
        PgTools::run(
            "pg_ctl stop",
            self.pg_ctl(&["--wait", "--mode=fast", "stop"]),
        )
        .await;
    }

    /// Starts it (again).
    pub(crate) async fn start_again(&self) {
        PgTools::run(
            "pg_ctl start",
            self.pg_ctl(&["--wait", "--timeout=60", "start"]),
        )
        .await;
    }
}

/// Runs the Postgres binaries as the `postgres` system user when the tests run as root
/// (Postgres refuses root), as the justfile does.
pub(crate) struct PgTools {
    pub(crate) bin: PathBuf,
    pub(crate) as_root: bool,
}

impl PgTools {
    pub(crate) fn command(&self, tool: &str) -> std::process::Command {
        let program = self.bin.join(tool);
        if self.as_root {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        }
    }

    /// Runs `command` to completion off the async runtime; panics with its output on failure.
    pub(crate) async fn run(what: &str, mut command: std::process::Command) {
        let what = what.to_owned();
        tokio::task::spawn_blocking(move || {
            let output = command
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|error| panic!("{what}: cannot run {command:?}: {error}"));
            assert!(
                output.status.success(),
                "{what} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        })
        .await
        .expect("the command's task completes");
    }
}

pub(crate) fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A port free on 127.0.0.1 right now (the server binds it a moment later; see the retry).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

pub(crate) fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|error| panic!("append to {}: {error}", path.display()));
}

/// Stops the server in `dir/data` and deletes `dir` once this test process is gone, however it ends. The
/// watchdog runs in the background of a shell that exits at once (so nothing is left to wait
/// for) and in a process group of its own, so signals nextest sends to the test's group on a
/// timeout do not reach it.
pub(crate) fn spawn_watchdog(dir: &Path, tools: &PgTools) {
    const SCRIPT: &str = r#"
        pid=$1 dir=$2 pg_ctl=$3 as_root=$4
        (
            while kill -0 "$pid" 2>/dev/null; do sleep 1; done
            if [ "$as_root" = 1 ]; then
                runuser -u postgres -- "$pg_ctl" -D "$dir/data" -m immediate stop
            else
                "$pg_ctl" -D "$dir/data" -m immediate stop
            fi
            rm -rf "$dir"
        ) >/dev/null 2>&1 &
    "#;
    let status = std::process::Command::new("sh")
        .args(["-c", SCRIPT, "postgres-watchdog"])
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(tools.bin.join("pg_ctl"))
        .arg(if tools.as_root { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .expect("start the server's watchdog");
    assert!(
        status.success(),
        "the server's watchdog did not start: {status}"
    );
}

/// Stops and deletes servers under `replicas` whose test process is gone and whose watchdog did not clean up
/// (a reboot or a killed watchdog). Best effort: a failure here never fails a test.
pub(crate) fn sweep_stale(replicas: &Path, tools: &PgTools) {
    let Ok(entries) = std::fs::read_dir(replicas) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = entry.path().join("data");
        if data.join("postmaster.pid").exists() {
            let _ = tools
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}
