//! `faas-server` flags: the Server's own, plus the flags of the parts it
//! runs ([`LbArgs`], [`GatewayArgs`], [`WorkerArgs`]), each declared in its
//! crate and flattened here. Every flag has a `FAAS_*` environment fallback
//! so tests (and containers) can run isolated copies side by side.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use faas_gateway::GatewayArgs;
use faas_lb::LbArgs;
use faas_worker::args::WorkerArgs;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "faas-server",
    version,
    about = "faas: deploy C, Rust, Go, JS, Python, PHP and HTML functions over HTTP; run them in Wasmer",
    after_help = "Example: faas-server RR --port 8080\nThen: curl -X POST 'http://127.0.0.1:8080/deploy?name=hello&lang=c' --data-binary @examples/hello.c"
)]
pub struct Cli {
    #[command(flatten)]
    pub lb: LbArgs,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,

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
    /// Where deployed functions are stored; with `--store s3://`, this
    /// replica's local cache of the shared store.
    #[arg(long, env = "FAAS_FUNCTIONS_DIR", default_value = "./functions")]
    pub functions_dir: PathBuf,
    /// Where secrets are kept, sealed with the secrets key (default:
    /// `secrets` beside the functions dir).
    #[arg(long, env = "FAAS_SECRETS_DIR", value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// The key that seals secrets at rest: 32 random bytes (or 64 hex
    /// digits). Default: `secrets.key` beside the functions dir, created at
    /// first start (mode 0600). Back it up: without it the secrets are lost.
    #[arg(long, env = "FAAS_SECRETS_KEY_FILE", value_name = "PATH")]
    pub secrets_key_file: Option<PathBuf>,
    /// Keep functions in an S3-compatible store shared by every replica:
    /// `s3://BUCKET[/PREFIX]`. Credentials from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`, region from `AWS_REGION` (us-east-1).
    /// Without it, `--functions-dir` is the store.
    #[arg(long, env = "FAAS_STORE", value_name = "s3://BUCKET[/PREFIX]")]
    pub store: Option<String>,
    /// The S3 endpoint for stores other than AWS (plain http:// allowed).
    #[arg(long, env = "FAAS_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The key (at least 16 bytes) that signs notices between replicas.
    #[arg(long, env = "FAAS_CLUSTER_KEY_FILE", value_name = "PATH")]
    pub cluster_key_file: Option<PathBuf>,
    /// Peer replicas told at once when this one changes the index.
    #[arg(long, env = "FAAS_PEERS", value_name = "URL,...")]
    pub peers: Option<String>,
    /// Peers as the A records of a name (a Kubernetes headless Service).
    #[arg(long, env = "FAAS_PEERS_DNS", value_name = "NAME:PORT")]
    pub peers_dns: Option<String>,
    /// How often the shared index is read, in milliseconds (a lost notice
    /// costs at most this much delay).
    #[arg(long, env = "FAAS_POLL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub poll_ms: u64,
    /// This replica's name in logs, `/stats` and `/metrics` (default: the
    /// hostname).
    #[arg(long, env = "FAAS_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// On SIGTERM, how long `/health/ready` fails while the replica keeps
    /// serving, so load balancers stop sending it calls first (default:
    /// 5000 with `--store s3://`, else 0).
    #[arg(long, env = "FAAS_DRAIN_DELAY_MS")]
    pub drain_delay_ms: Option<u64>,
    /// S3 credentials, taken out of the environment at start.
    #[arg(skip)]
    pub s3_credentials: Option<crate::cluster::Credentials>,
    /// The worker binary (default: `worker` next to this binary).
    #[arg(long, env = "FAAS_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
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
    /// Default size cap of a WebAssembly call's private in-memory `/tmp`,
    /// in MiB; writing past it fails inside the function with ENOSPC.
    #[arg(long, env = "FAAS_MAX_TMP_MB", default_value_t = 16)]
    pub max_tmp_mb: u64,
    /// The largest `/tmp` cap a function may set at deploy, in MiB.
    #[arg(
        long = "tmp-limit-mb",
        env = "FAAS_TMP_LIMIT_MB",
        default_value_t = 256
    )]
    pub max_tmp_mb_limit: u64,
    /// How long a finished async call (succeeded or dead) stays readable
    /// at `GET /invocation/ID`, in seconds.
    #[arg(long, env = "FAAS_KEEP_RESULTS_S", default_value_t = 86_400)]
    pub keep_results_s: u64,
    /// Most async calls running at once (default: half the workers, at
    /// least one), so that sync calls always find workers.
    #[arg(long, env = "FAAS_ASYNC_CONCURRENCY")]
    pub async_concurrency: Option<usize>,
    /// A host an async call's `X-Callback-Url` may name besides the
    /// function's own `allow=` grants: HOST, HOST:PORT, *.DOMAIN or
    /// IP:PORT, as `allow=` (repeatable; comma-separated in the variable).
    #[arg(
        long = "callback-allow",
        env = "FAAS_CALLBACK_ALLOW",
        value_name = "HOST[:PORT]",
        value_delimiter = ','
    )]
    pub callback_allow: Vec<String>,
    /// Keep async calls in NATS JetStream, shared by every replica:
    /// `nats://[USER:PASS@|TOKEN@]HOST:PORT`. Without it, each server keeps
    /// its own queue in the functions directory.
    #[arg(long, env = "FAAS_QUEUE", value_name = "nats://HOST:PORT")]
    pub queue: Option<String>,
    /// Versions kept per function; `PUT /function/NAME` removes older ones.
    #[arg(long, env = "FAAS_KEEP_VERSIONS", default_value_t = 5)]
    pub keep_versions: usize,
    /// The largest compiled module (`code.wasm`) a deploy may produce, in
    /// MiB; a larger one answers 422.
    #[arg(long, env = "FAAS_MAX_MODULE_MB", default_value_t = 64)]
    pub max_module_mb: u64,
    /// Most bytes a project archive may unpack to, counted while it is
    /// unpacked (what its headers declare is not trusted); more answers
    /// 413 and nothing is stored.
    #[arg(long, env = "FAAS_MAX_UNPACKED_BYTES", default_value_t = 200 * 1024 * 1024)]
    pub max_unpacked_bytes: u64,
    /// Most functions the store holds (a function's versions count once);
    /// a deploy past it answers 507.
    #[arg(long, env = "FAAS_MAX_FUNCTIONS", default_value_t = 10_000)]
    pub max_functions: usize,
    /// Most MiB the store holds on disk, every version counted; a deploy
    /// or update past it answers 507.
    #[arg(long, env = "FAAS_MAX_STORE_MB", default_value_t = 10_240)]
    pub max_store_mb: u64,
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
    /// Data-size limit of every compiler process, in MiB: a compile bomb
    /// fails there (422) instead of taking the machine's memory.
    #[arg(long, env = "FAAS_COMPILE_MEMORY_MB", default_value_t = 2048)]
    pub compile_memory_mb: u64,
    /// Where builds get their private directories (created 0711; one
    /// 0700 directory per build, owned by the build uid, removed after it).
    #[arg(long, env = "FAAS_BUILD_DIR", default_value = "/var/tmp/faas-build")]
    pub build_dir: PathBuf,
    /// The uid/gid compilers run as when the server runs as root
    /// (default: `--native-uid-base` - 1).
    #[arg(long, env = "FAAS_BUILD_UID")]
    pub build_uid: Option<u32>,
    /// How compiles are confined: `auto` (bubblewrap where it can create
    /// namespaces, else Landlock), `bwrap` or `landlock`.
    #[arg(long, env = "FAAS_BUILD_SANDBOX", value_enum, default_value = "auto")]
    pub build_sandbox: crate::build_sandbox::SandboxKind,
    /// Run compilers without a sandbox when neither bubblewrap nor Landlock
    /// works here (unsafe: a hostile deploy reads what the build uid can).
    #[arg(long, env = "FAAS_ALLOW_UNCONFINED_BUILD")]
    pub allow_unconfined_build: bool,
    /// The Python package index deploys' `requirements.txt` install from
    /// (pure-Python wheels only).
    #[arg(
        long,
        env = "FAAS_PIP_INDEX_URL",
        default_value = "https://pypi.org/simple"
    )]
    pub pip_index_url: String,
    /// The npm registry deploys' `package.json` dependencies come from.
    #[arg(
        long,
        env = "FAAS_NPM_REGISTRY",
        default_value = "https://registry.npmjs.org/"
    )]
    pub npm_registry: String,
    /// The Go module proxy a deploy's `go.mod` requirements come through
    /// (a project with `vendor/` needs none). Never `direct`.
    #[arg(long, env = "FAAS_GOPROXY", default_value = "https://proxy.golang.org")]
    pub goproxy: String,
    /// The Go checksum database (`off` only for a trusted private proxy).
    #[arg(long, env = "FAAS_GOSUMDB", default_value = "sum.golang.org")]
    pub gosumdb: String,
    /// Threads for the gateway's and the Server's async runtimes (each).
    /// They do microseconds of work per request, so few threads serve many
    /// workers, and fewer threads mean fewer cross-thread wake-ups (measured
    /// here: +10% invoke throughput with 1 instead of 2 on 2 cores).
    /// Default: one per 8 cores, at least 1.
    #[arg(long, env = "FAAS_IO_THREADS")]
    pub io_threads: Option<usize>,
}

impl Cli {
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

    /// How compiles are confined ([`crate::build_sandbox`]).
    pub fn build_sandbox_config(&self) -> crate::build_sandbox::BuildSandboxConfig {
        crate::build_sandbox::BuildSandboxConfig {
            kind: self.build_sandbox,
            bwrap: self.worker.bwrap.clone(),
            root: self.build_dir.clone(),
            uid: self
                .build_uid
                .unwrap_or_else(|| self.worker.native_uid_base.saturating_sub(1)),
            memory_bytes: self.compile_memory_mb.max(64) * 1024 * 1024,
            allow_unconfined: self.allow_unconfined_build,
        }
    }

    /// Where deploys' packages come from ([`crate::packages`]).
    pub fn registries(&self) -> crate::packages::Registries {
        crate::packages::Registries {
            pip_index: self.pip_index_url.clone(),
            npm_registry: self.npm_registry.clone(),
            goproxy: self.goproxy.clone(),
            gosumdb: self.gosumdb.clone(),
        }
    }

    /// This replica's name: `--replica-name`, else the hostname.
    pub fn replica(&self) -> String {
        self.replica_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "faas".into())
        })
    }

    /// The secrets directory and key file, and whether the key may be
    /// created (only when it is the default one: a key file the operator
    /// named but is missing is a mistake to report, not to paper over).
    pub fn secrets_paths(&self) -> (PathBuf, PathBuf, bool) {
        let beside = self
            .functions_dir
            .parent()
            .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf());
        let beside = if beside.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            beside
        };
        let dir = self
            .secrets_dir
            .clone()
            .unwrap_or_else(|| beside.join("secrets"));
        match &self.secrets_key_file {
            Some(key) => (dir, key.clone(), false),
            None => (dir, beside.join("secrets.key"), true),
        }
    }

    /// The SIGTERM drain delay.
    pub fn drain_delay(&self) -> std::time::Duration {
        let default = if self.store.is_some() { 5000 } else { 0 };
        std::time::Duration::from_millis(self.drain_delay_ms.unwrap_or(default))
    }

    /// Most async calls in flight: `--async-concurrency`, or half the
    /// workers.
    pub fn async_in_flight(&self) -> usize {
        self.async_concurrency
            .unwrap_or(usize::from(self.workers) / 2)
            .max(1)
    }

    /// The queue of async calls in `functions_dir`, with its bounds, and
    /// the client that delivers their callbacks (under the same outbound
    /// settings as the workers': `worker`'s CA file and protected ports).
    pub fn open_background(
        &self,
        functions_dir: &std::path::Path,
        worker: &WorkerArgs,
    ) -> anyhow::Result<crate::service::Background> {
        let allow = faas_proto::Grants::parse(&self.callback_allow)
            .map_err(|e| anyhow::anyhow!("--callback-allow: {e}"))?;
        let client = faas_outbound::Client::new(faas_outbound::Config {
            // The body is the call's output: as large as an output may be.
            max_response_bytes: worker
                .max_outbound_bytes
                .max(worker.max_output_bytes as u64),
            extra_ca_file: worker.outbound_ca_file.clone(),
            protected_ports: worker.outbound_protected_ports.clone(),
        })
        .map_err(|e| anyhow::anyhow!("the callbacks' HTTP client: {e}"))?;
        let mut background = crate::service::Background::open(
            functions_dir,
            self.queue.as_deref(),
            self.async_in_flight(),
            std::time::Duration::from_secs(self.keep_results_s),
        )
        .map_err(|e| anyhow::anyhow!("opening the queue of async calls: {e}"))?;
        background.callbacks = Some(crate::service::Callbacks::new(client, allow));
        Ok(background)
    }

    /// Threads per async runtime (gateway, Server).
    pub fn io_threads(&self) -> usize {
        self.io_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 8))
            .clamp(1, 64)
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
    fn the_parts_flags_are_flattened() {
        let cli = Cli::parse_from([
            "faas-server",
            "WEIGHTED",
            "--weights",
            "4,2,1,1",
            "--port",
            "0",
            "--max-output-bytes",
            "99",
        ]);
        assert_eq!(cli.lb.config(4).unwrap().weights, [4, 2, 1, 1]);
        assert_eq!(cli.gateway.port, 0);
        assert_eq!(cli.worker.max_output_bytes, 99);
        assert!(Cli::try_parse_from(["faas-server", "LIFO"]).is_err());
    }
}
