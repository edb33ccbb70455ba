//! What the machine spends during a scenario: CPU time per process group, read from `/proc`,
//! and peak resident memory.

use std::time::Instant;

use serde::Serialize;

/// CPU used during a scenario, in cores (1.0 = one core busy for the whole scenario).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuSplit {
    /// The backend process.
    pub server: f64,
    /// Every Postgres process (the bench's own connections included).
    pub postgres: f64,
    /// nats-server.
    pub nats: f64,
    /// This process: the load generator (and, for in-process scenarios, the work itself).
    pub load: f64,
}

impl CpuSplit {
    /// Cores busy in all.
    pub fn total(&self) -> f64 {
        self.server + self.postgres + self.nats + self.load
    }
}

/// Clock ticks used so far by each process of interest: pid -> (group, ticks), groups being
/// server, postgres, nats, load. Kept per process so that one exiting between two readings
/// (a finished pgbench's connections) does not make the others' time look negative.
#[derive(Debug, Clone)]
pub struct CpuReading {
    at: Instant,
    ticks: std::collections::HashMap<u32, (usize, u64)>,
}

/// Reads the CPU time of the processes a scenario involves.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    server_pid: Option<u32>,
    ticks_per_second: f64,
}

impl CpuMeter {
    /// A meter that counts `server_pid` (if any) as the server.
    pub fn new(server_pid: Option<u32>) -> Self {
        let ticks_per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0);
        Self {
            server_pid,
            ticks_per_second,
        }
    }

    /// The CPU time used so far by each group. Processes that exit before the next reading
    /// (short-lived connections) are not counted; the bench keeps its connections pooled.
    pub fn read(&self) -> CpuReading {
        let own = std::process::id();
        let mut ticks = std::collections::HashMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ...`: comm may hold spaces, so split around the parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let group = if Some(pid) == self.server_pid {
                0
            } else if comm == "postgres" {
                1
            } else if comm.starts_with("nats-server") {
                2
            } else if pid == own {
                3
            } else {
                continue;
            };
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the comm.
            let used: u64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
                .sum();
            ticks.insert(pid, (group, used));
        }
        CpuReading {
            at: Instant::now(),
            ticks,
        }
    }

    /// Cores used by each group since `start`.
    pub fn since(&self, start: &CpuReading) -> CpuSplit {
        let now = self.read();
        let seconds = now.at.duration_since(start.at).as_secs_f64().max(1e-3);
        let mut used = [0_u64; 4];
        for (pid, (group, ticks)) in &now.ticks {
            let before = start.ticks.get(pid).map_or(0, |(_, ticks)| *ticks);
            used[*group] += ticks.saturating_sub(before);
        }
        let cores = |i: usize| used[i] as f64 / self.ticks_per_second / seconds;
        CpuSplit {
            server: cores(0),
            postgres: cores(1),
            nats: cores(2),
            load: cores(3),
        }
    }
}

/// A process's peak resident set so far (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Cores and CPU model, for the report.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default();
    format!(
        "{} cores, {model}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}
