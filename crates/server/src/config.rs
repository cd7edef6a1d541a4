//! `faas-server` flags. Every flag has a `FAAS_*` environment fallback so
//! tests (and containers) can run isolated copies side by side.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use faas_lb::Strategy;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "faas-server",
    version,
    about = "faas: deploy C, Rust, Go, JS, Python, PHP and HTML functions over HTTP; run them in Wasmer",
    after_help = "Example: faas-server RR --port 8080\nThen: curl -X POST 'http://127.0.0.1:8080/deploy?name=hello&lang=c' --data-binary @examples/hello.c"
)]
pub struct Cli {
    /// Load-balancing strategy: RR (round robin), FIFO or WEIGHTED.
    #[arg(default_value = "RR", env = "FAAS_STRATEGY")]
    pub strategy: String,

    /// Address to listen on. The default only accepts local clients; use
    /// 0.0.0.0 to open the server to the network.
    #[arg(long, env = "FAAS_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port; 0 picks a free one (the real address is logged as
    /// `listening on http://ADDR`).
    #[arg(long, env = "FAAS_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The load balancer's UNIX socket.
    #[arg(long, env = "FAAS_LB_SOCKET", default_value = "/tmp/faas_lb.sock")]
    pub lb_socket: PathBuf,
    /// The Server's UNIX socket (the gateway talks to it).
    #[arg(
        long,
        env = "FAAS_SERVER_SOCKET",
        default_value = "/tmp/faas_server.sock"
    )]
    pub server_socket: PathBuf,
    /// Number of worker processes.
    #[arg(long, env = "FAAS_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Where deployed functions are stored.
    #[arg(long, env = "FAAS_FUNCTIONS_DIR", default_value = "./functions")]
    pub functions_dir: PathBuf,
    /// The worker binary (default: `worker` next to this binary).
    #[arg(long, env = "FAAS_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
    /// WEIGHTED: one weight per worker, e.g. 4,2,1,1 (default: all equal).
    #[arg(long, env = "FAAS_WEIGHTS")]
    pub weights: Option<String>,
    /// Most jobs waiting in the FIFO queue before new ones get 503.
    #[arg(long, env = "FAAS_MAX_QUEUE", default_value_t = 1024)]
    pub max_queue: usize,
    /// Default deadline of an invocation, in milliseconds.
    #[arg(long, env = "FAAS_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// The largest deadline a function may set at deploy.
    #[arg(long, env = "FAAS_MAX_TIMEOUT_MS", default_value_t = 60_000)]
    pub max_timeout_ms: u64,
    /// Default linear-memory cap of a function, in MiB.
    #[arg(long, env = "FAAS_MAX_MEMORY_MB", default_value_t = 128)]
    pub max_memory_mb: u64,
    /// The largest memory cap a function may set at deploy, in MiB.
    #[arg(
        long = "memory-limit-mb",
        env = "FAAS_MEMORY_LIMIT_MB",
        default_value_t = 1024
    )]
    pub max_memory_mb_limit: u64,
    /// Largest request body (source or payload), in bytes.
    #[arg(long, env = "FAAS_MAX_BODY_BYTES", default_value_t = faas_gateway::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Most bytes of stdout (and of stderr) kept from one invocation.
    #[arg(long, env = "FAAS_MAX_OUTPUT_BYTES", default_value_t = 1024 * 1024)]
    pub max_output_bytes: u64,
    /// Compiled modules each worker keeps in memory.
    #[arg(long, env = "FAAS_MODULE_CACHE_SIZE", default_value_t = 256)]
    pub module_cache_size: usize,
    /// Replace a worker once it has loaded this many modules (Wasmer never
    /// frees a process's code memory); 0 disables recycling.
    #[arg(long, env = "FAAS_RECYCLE_AFTER", default_value_t = 1000)]
    pub recycle_after: u64,
    /// Compiles allowed at once.
    #[arg(long, env = "FAAS_COMPILE_JOBS", default_value_t = 2)]
    pub compile_jobs: usize,
    /// Longest a single compile may run, in seconds.
    #[arg(long, env = "FAAS_COMPILE_TIMEOUT_S", default_value_t = 120)]
    pub compile_timeout_s: u64,
    /// Threads for the gateway's and the Server's async runtimes (each).
    /// They do microseconds of work per request, so few threads serve many
    /// workers, and fewer threads mean fewer cross-thread wake-ups (measured
    /// here: +10% invoke throughput with 1 instead of 2 on 2 cores).
    /// Default: one per 8 cores, at least 1.
    #[arg(long, env = "FAAS_IO_THREADS")]
    pub io_threads: Option<usize>,
    /// On SIGINT/SIGTERM, how long open requests may take to finish, in ms.
    #[arg(long, env = "FAAS_GRACE_MS", default_value_t = 10_000)]
    pub grace_ms: u64,
}

impl Cli {
    /// The strategy named on the command line.
    pub fn strategy(&self) -> anyhow::Result<Strategy> {
        self.strategy
            .parse::<Strategy>()
            .map_err(anyhow::Error::msg)
    }

    /// One weight per worker.
    pub fn weights(&self) -> anyhow::Result<Vec<u32>> {
        let n = usize::from(self.workers);
        let Some(spec) = &self.weights else {
            return Ok(vec![1; n]);
        };
        let weights = spec
            .split(',')
            .map(|w| {
                w.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|&w| (1..=1000).contains(&w))
                    .with_context(|| format!("invalid weight '{w}' (expected 1..1000)"))
            })
            .collect::<anyhow::Result<Vec<u32>>>()?;
        if weights.len() != n {
            bail!(
                "--weights lists {} weights for {n} workers; give one per worker",
                weights.len()
            );
        }
        Ok(weights)
    }

    /// The worker binary to start.
    pub fn worker_program(&self) -> anyhow::Result<PathBuf> {
        let path = match &self.worker_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .context("locating this binary")?
                .with_file_name("worker"),
        };
        if !path.is_file() {
            bail!(
                "worker binary not found at {} (build it with `make`, or pass --worker-bin)",
                path.display()
            );
        }
        Ok(path)
    }

    /// Threads per async runtime (gateway, Server).
    pub fn io_threads(&self) -> usize {
        self.io_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 8))
            .clamp(1, 64)
    }

    /// Flags passed on to every worker.
    pub fn worker_args(&self) -> Vec<String> {
        vec![
            "--module-cache-size".into(),
            self.module_cache_size.to_string(),
            "--max-output-bytes".into(),
            self.max_output_bytes.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn weights_must_match_workers() {
        let cli = Cli::parse_from(["faas-server", "WEIGHTED", "--weights", "4,2,1,1"]);
        assert_eq!(cli.weights().unwrap(), [4, 2, 1, 1]);
        let cli = Cli::parse_from(["faas-server", "WEIGHTED", "--weights", "4,2"]);
        assert!(cli.weights().is_err());
        let cli = Cli::parse_from(["faas-server", "WEIGHTED", "--weights", "4,0,1,1"]);
        assert!(cli.weights().is_err());
        let cli = Cli::parse_from(["faas-server"]);
        assert_eq!(cli.weights().unwrap(), [1, 1, 1, 1]);
        assert!(cli.strategy().is_ok());
        let cli = Cli::parse_from(["faas-server", "LIFO"]);
        assert!(cli.strategy().is_err());
    }
}
