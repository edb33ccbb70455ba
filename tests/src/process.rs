//! The `backend` binary run as its own OS process, configured through its environment like a
//! deployment, so a test or the bench can `kill -9` it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a process may take to answer readiness.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How to start backend processes: the binary and the environment they share.
#[derive(Debug, Clone)]
pub struct Launch {
    binary: PathBuf,
    env: Vec<(String, String)>,
}

impl Launch {
    /// Processes of `binary` on `database_url` and `nats_url`, publishing to the JetStream stream
    /// `stream` (its subject prefix derived from it), with rate limits off and quiet logs.
    pub fn new(binary: &Path, database_url: &str, nats_url: &str, stream: &str) -> Self {
        let launch = Self {
            binary: binary.to_owned(),
            env: Vec::new(),
        };
        launch
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", nats_url)
            .env("APP_NATS__STREAM", stream)
            .env("APP_NATS__SUBJECT_PREFIX", &stream.to_lowercase())
            .env("APP_RATE_LIMIT__ENABLED", "false")
            .env("APP_LOG__FILTER", "warn")
    }

    /// The `backend` binary of the build this test or bench belongs to: next to the running
    /// executable's directory (`target/<profile>/`), or `BACKEND_BIN`.
    ///
    /// It is not rebuilt here: `just test` and `just bench` build it first, and a plain
    /// `cargo nextest run` uses whatever build is on disk.
    ///
    /// # Panics
    /// When it has not been built.
    pub fn built_binary() -> PathBuf {
        if let Ok(binary) = std::env::var("BACKEND_BIN") {
            return PathBuf::from(binary);
        }
        let exe = std::env::current_exe().expect("the running executable's path");
        // target/<profile>/deps/<test binary> or target/<profile>/<bench binary>.
        let binary = exe
            .ancestors()
            .skip(1)
            .take(2)
            .map(|dir| dir.join("backend"))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no backend binary near {}: build it with `cargo build -p api --bin backend` \
                     (`just test` does) or set BACKEND_BIN",
                    exe.display()
                )
            });
        binary
    }

    /// What a child takes from this process's environment: only what a shell needs. Its
    /// configuration is exactly [`Launch::env`]'s, never whatever `APP_*` happens to be set here.
    fn inherited(&self) -> impl Iterator<Item = (String, String)> {
        ["PATH", "HOME", "TMPDIR"].into_iter().filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|value| (name.to_owned(), value))
        })
    }

    /// The same with `key` set to `value` (later settings win).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts `backend serve` on a free port and waits until it answers readiness.
    ///
    /// # Panics
    /// When it cannot be started or is not ready within a minute.
    pub async fn start(&self) -> BackendProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(&self.binary)
            .arg("serve")
            .env_clear()
            .envs(self.inherited())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("APP_HTTP__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        let process = BackendProcess {
            pid: child.id().expect("a running child has a pid"),
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let ready = format!("{}/health/ready", process.base);
        let started = Instant::now();
        loop {
            match reqwest::get(&ready).await {
                Ok(response) if response.status().is_success() => return process,
                _ => {}
            }
            assert!(
                started.elapsed() < READY_WITHIN,
                "the backend at {} did not become ready within {READY_WITHIN:?}",
                process.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the backend's command line with `args` under this launch's configuration:
    /// `(succeeded, stdout, stderr)`.
    ///
    /// # Panics
    /// When the binary cannot be run.
    /// Awaited, so a backend running in the calling test's runtime keeps serving meanwhile (a
    /// blocking wait would freeze it, and with it anything the command waits for).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = tokio::process::Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(self.inherited())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {}: {e}", self.binary.display()));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs `backend create-admin-key` for `tenant` and returns the key it prints.
    ///
    /// # Panics
    /// When the command fails.
    pub fn create_admin_key(&self, tenant: &str) -> String {
        let output = std::process::Command::new(&self.binary)
            .args(["create-admin-key", "--tenant", tenant])
            .env_clear()
            .envs(self.inherited())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stderr(Stdio::inherit())
            .output()
            .expect("run create-admin-key");
        assert!(output.status.success(), "create-admin-key failed");
        String::from_utf8(output.stdout)
            .expect("the key is text")
            .lines()
            .last()
            .expect("create-admin-key prints the key")
            .trim()
            .to_owned()
    }
}

/// A running backend process.
#[derive(Debug)]
pub struct BackendProcess {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its process id.
    pub pid: u32,
    child: tokio::process::Child,
}

impl BackendProcess {
    /// `kill -9`: no shutdown, no goodbye to Postgres or NATS.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL the backend");
    }
}
