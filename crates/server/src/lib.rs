//! The faas Server: the main process of `faas-server`. It runs the load
//! balancer and the HTTP gateway as threads, supervises the worker
//! processes, and handles deploys (store + compile) and invokes (LB → worker).
//!
//! Modules:
//! - [`config`]: command-line flags (clap, with `FAAS_*` env fallbacks; the
//!   LB's, gateway's and workers' flags are flattened in from their crates);
//! - [`store`]: the on-disk function store and its in-memory index;
//! - [`archive`]: project archives (`.tar.gz`, `.zip`) unpacked with their
//!   limits, hostile entries refused;
//! - [`cluster`]: replicas sharing an S3 store (`--store s3://`): the
//!   shared index, propagation, peer notices;
//! - [`project`]: multi-file projects between unpacking and building (the
//!   entry file, the package-installing hook, per-language checks);
//! - [`toolchain`]: finding compilers/runtimes and building functions;
//! - [`build_sandbox`]: the bubblewrap sandbox and rlimits every compile
//!   runs in;
//! - [`packages`]: third-party packages (pip, npm, crates.io, Go modules)
//!   installed into a project at deploy, in the build sandbox's networked
//!   mode;
//! - [`workers`]: worker processes (spawn, pipes, crash replacement,
//!   recycling);
//! - [`service`]: what each gateway operation does (deploys and invokes in
//!   their own files);
//! - [`invocation_log`]: each function's recent calls;
//! - [`metrics`]: Prometheus metrics and the dashboard's live series;
//! - [`dashboard`]: the dashboard's data and the Prometheus text, joined
//!   with the store and the LB's figures;
//! - [`reaper`]: the Server as child subreaper, reaping its workers'
//!   orphans;
//! - [`rundir`]: the Server's directory of its workers' PHP sockets,
//!   cleaned when a worker is reaped and at stop and start;
//! - [`sockets`]: UNIX-socket binding (stale files) and the Server socket
//!   loop, the edge where operations and replies cross the wire.

pub mod archive;
pub mod build_sandbox;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod invocation_log;
pub mod metrics;
pub mod packages;
pub mod project;
pub mod reaper;
pub mod rundir;
pub mod secrets;
pub mod service;
pub mod sockets;
pub mod store;
pub mod toolchain;
pub mod workers;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use faas_proto::client::Client;
use faas_proto::{Lang, LbReply, LbRequest};
use tokio::sync::{watch, Semaphore};

use build_sandbox::BuildSandbox;
pub use config::Cli;
use service::{Limits, Service};
use store::{FunctionStore, Quota};
use toolchain::{RuntimeChoice, Toolchains};
use workers::{WorkerPool, WorkerSpec};

const PART: &str = "SERVER";
const MIB: u64 = 1024 * 1024;

/// Keeps the control plane's tokens to this process: reads the token
/// files, removes the token variables from the environment every child
/// would inherit, and makes this process non-dumpable, so that no process
/// of the same uid can read its `/proc/PID/environ` or memory. Called
/// before any thread starts (changing the environment is not thread-safe).
pub fn protect_secrets(cli: &mut Cli) -> anyhow::Result<()> {
    cli.gateway.load_token_files().map_err(anyhow::Error::msg)?;
    let mut secrets: Vec<String> = [&cli.gateway.api_token, &cli.gateway.invoke_token]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    // A NATS URL may carry a password or token: blanked like the tokens.
    if let Some(queue) = &cli.queue {
        if queue.contains('@') {
            secrets.push(queue.clone());
        }
    }
    // The S3 keys too: kept in the Cli, gone from the environment. Taken
    // before the scrub below, which blanks them where they were.
    cli.s3_credentials = cluster::Credentials::take_from_env();
    if let Err(err) = scrub_proc_self(&secrets) {
        log::warn!(target: PART, "cannot blank the tokens in this process's command line: {err}");
    }
    for var in ["FAAS_API_TOKEN", "FAAS_INVOKE_TOKEN", "FAAS_QUEUE"] {
        std::env::remove_var(var);
    }
    raise_open_files_limit();
    if let Err(err) = nix::sys::prctl::set_dumpable(false) {
        log::warn!(target: PART, "cannot make the server non-dumpable: {err}");
    }
    if cli.gateway.api_token.is_some() || cli.gateway.invoke_token.is_some() {
        let on_command_line = std::env::args().any(|a| {
            a.starts_with("--api-token") && !a.starts_with("--api-token-file")
                || a.starts_with("--invoke-token") && !a.starts_with("--invoke-token-file")
        });
        if on_command_line {
            log::warn!(target: PART, "a token was given on the command line, where every user of this machine can read it (ps); prefer --api-token-file / --invoke-token-file");
        }
    }
    Ok(())
}

/// Raises the open-files soft limit to the hard one: every client
/// connection, worker pipe and build holds descriptors, and the usual soft
/// default (1024) is below `--max-connections` (4096).
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!(target: PART, "cannot raise the open-files limit from {soft}: {err}");
            }
        }
    }
}

/// Overwrites the tokens in this process's original command line and
/// environment (the memory `/proc/self/cmdline` and `environ` show; `ps`
/// shows the first to every user): an argument equal to a token, and the
/// value of `--api-token=`, `--invoke-token=`, `FAAS_API_TOKEN=`,
/// `FAAS_INVOKE_TOKEN=`, `AWS_SECRET_ACCESS_KEY=`, `AWS_SESSION_TOKEN=`,
/// become `x`s. Flags were parsed into owned
/// strings before, so nothing reads this memory afterwards.
fn scrub_proc_self(secrets: &[String]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces): field 3 first.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/proc/self/mem")?;
    let prefixes = [
        "--api-token=",
        "--invoke-token=",
        "FAAS_API_TOKEN=",
        "FAAS_INVOKE_TOKEN=",
        // Removing a variable only unlinks it from `environ`: the text
        // stays in the block /proc/PID/environ shows (to root, and to
        // tools that read it), so the S3 secrets are blanked there too.
        "AWS_SECRET_ACCESS_KEY=",
        "AWS_SESSION_TOKEN=",
        // The NATS URL, which may carry a password or token.
        "--queue=",
        "FAAS_QUEUE=",
    ];
    // (arg_start, arg_end) and (env_start, env_end): fields 48 to 51.
    for (start, end) in [(field(48), field(49)), (field(50), field(51))] {
        if start == 0 || end <= start {
            continue;
        }
        let mut block = vec![0u8; (end - start) as usize];
        mem.read_exact_at(&mut block, start)?;
        let mut changed = false;
        let mut offset = 0;
        for item in block.clone().split(|&b| b == 0) {
            let text = String::from_utf8_lossy(item);
            let value_at = if secrets.iter().any(|s| *s == text) {
                Some(0)
            } else {
                prefixes
                    .iter()
                    .find(|p| text.starts_with(*p))
                    .map(|p| p.len())
            };
            if let Some(at) = value_at {
                block[offset + at..offset + item.len()].fill(b'x');
                changed = true;
            }
            offset += item.len() + 1;
        }
        if changed {
            mem.write_all_at(&block, start)?;
        }
    }
    Ok(())
}

/// Starts everything described by `cli` and blocks until SIGINT/SIGTERM,
/// then shuts down in order: stop accepting HTTP, let open requests finish
/// (up to `--grace-ms`), stop the workers, remove the socket files.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let lb_config = cli
        .lb
        .config(usize::from(cli.workers))
        .map_err(anyhow::Error::msg)?;
    // Bind first: a port in use or a live server on our sockets is a
    // one-line error before anything is started.
    let http = bind_http(&cli.gateway.host, cli.gateway.port)?;
    let lb_listener = sockets::bind_unix(&cli.lb_socket)?;
    let server_listener = sockets::bind_unix(&cli.server_socket)?;
    // Only this user may speak to the LB and the Server directly.
    for socket in [&cli.lb_socket, &cli.server_socket] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    }
    let _cleanup = sockets::RemoveOnDrop(vec![cli.lb_socket.clone(), cli.server_socket.clone()]);

    std::thread::Builder::new()
        .name("lb".into())
        .spawn(move || faas_lb::run(lb_listener, lb_config))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.io_threads())
        .thread_name("server")
        .enable_all()
        .build()?;
    runtime.block_on(serve(cli, http, server_listener))
}

/// Builds the functions' HTTP client once as the workers will, so that a
/// bad `--outbound-ca-file` is a one-line error at start rather than
/// workers failing one after the other.
fn check_outbound(args: &faas_worker::args::WorkerArgs) -> anyhow::Result<()> {
    faas_worker::outbound::Outbound::new(&args.outbound())
        .map(drop)
        .map_err(|e| anyhow::anyhow!("outbound HTTP client (--outbound-ca-file): {e}"))
}

fn bind_http(host: &str, port: u16) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind((host, port)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {port} on {host} is already in use (another faas-server?); stop it or pick another with --port"
            )
        } else {
            anyhow::anyhow!("cannot listen on {host}:{port}: {e}")
        }
    })
}

async fn serve(
    cli: Cli,
    http: std::net::TcpListener,
    server_listener: std::os::unix::net::UnixListener,
) -> anyhow::Result<()> {
    let http_addr = http.local_addr()?;
    let service = start_service(&cli, http_addr.port()).await?;
    let server_listener = {
        server_listener.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(server_listener)?
    };
    tokio::spawn(sockets::serve_requests(server_listener, service.clone()));

    let open_to_network = !http_addr.ip().is_loopback();
    if open_to_network && cli.gateway.api_token.is_none() {
        log::warn!(target: "GATEWAY", "listening on {http_addr} without --api-token: anyone who can reach it can deploy, read and delete functions");
    }
    let (stop_tx, gateway) = start_gateway(&cli, http)?;
    log::info!(target: "GATEWAY", "listening on http://{http_addr}");
    log::info!(
        target: PART,
        "ready: {} workers, strategy {}, LB socket {}, server socket {}",
        cli.workers,
        cli.lb.strategy,
        cli.lb_socket.display(),
        cli.server_socket.display()
    );

    wait_for_signal().await?;
    drain(&service, cli.drain_delay()).await;
    log::info!(target: PART, "shutting down: no new requests; finishing open ones");
    let _ = stop_tx.send(true);
    let joined = tokio::task::spawn_blocking(move || gateway.join()).await;
    if !matches!(joined, Ok(Ok(Ok(())))) {
        log::warn!(target: PART, "the gateway did not stop cleanly");
    }
    service.workers.stop(Duration::from_secs(5)).await;
    log::info!(target: PART, "stopped");
    Ok(())
}

/// Opens the store, finds the toolchains, connects to the LB and starts the
/// workers (`http_port`: the gateway's, which no function may reach).
async fn start_service(cli: &Cli, http_port: u16) -> anyhow::Result<Arc<Service>> {
    // Everything the Server writes (the store, artifacts) is its own:
    // functions run as other users and must not read it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let store = FunctionStore::open(&cli.functions_dir)
        .with_context(|| format!("opening the function store {}", cli.functions_dir.display()))?
        .with_quota(Quota {
            max_functions: cli.max_functions,
            max_bytes: cli.max_store_mb.saturating_mul(MIB),
        });
    let cluster = connect_cluster(cli).await?;
    let secrets = open_secrets(cli, cluster.as_deref()).await?;
    let worker_program = cli.worker_program()?;
    let mut worker_args = cli.worker.clone();
    // Functions never reach the gateway, even granted its address: the
    // workers' client refuses this port on every address of this host.
    worker_args.outbound_protected_ports.push(http_port);
    check_outbound(&worker_args)?;
    let runtimes_dir = worker_args.runtimes_dir_for(&worker_program);
    worker_args.runtimes_dir = Some(runtimes_dir.clone());
    prepare_runtimes(&worker_program, &runtimes_dir);
    let sandbox = BuildSandbox::new(cli.build_sandbox_config());
    let toolchains = Toolchains::detect(
        RuntimeChoice {
            worker: worker_program.clone(),
            runtimes_dir,
            native_js: cli.worker.native_js,
            native_python: cli.worker.native_python,
            allow_unconfined: cli.worker.allow_unconfined_native,
            uid: cli.worker.native_uid_base,
            bwrap: cli.worker.bwrap.clone(),
        },
        sandbox,
    )
    .with_packages(cli.registries());
    toolchains.log_summary();

    let lb = Arc::new(connect_lb(&cli.lb_socket).await?);

    // Workers run native functions with the runtimes found here: one finder.
    for (lang, program) in toolchains.native_runtimes() {
        match lang {
            Lang::Js => worker_args.node = program,
            Lang::Python => worker_args.python = program,
            _ => worker_args.php = program,
        }
    }
    // Workers keep their PHP sockets there; what a killed one leaves is
    // removed when it is reaped (without it, each worker makes its own
    // under the temporary directory, and a killed one's stays).
    let sockets_dir = rundir::RunDir::create()
        .inspect_err(
            |e| log::warn!(target: PART, "cannot create the workers' socket directory: {e}"),
        )
        .ok()
        .map(Arc::new);
    let spec = WorkerSpec {
        program: worker_program.clone(),
        functions_dir: store.dir().to_path_buf(),
        extra_args: worker_args.to_args(),
        recycle_after_loads: cli.recycle_after,
        sockets_dir,
    };
    // Before the first worker: what a dying worker leaves is reparented
    // here and reaped.
    reaper::start();
    // The queue before the workers: an unreachable NATS stops the start
    // with nothing to tear down.
    let background =
        tokio::task::block_in_place(|| cli.open_background(store.dir(), &worker_args))?;
    let workers = WorkerPool::start(usize::from(cli.workers), spec, lb.clone())?;

    let service = Arc::new(Service {
        store,
        toolchains,
        workers,
        lb,
        limits: Limits {
            default_timeout_ms: cli.timeout_ms,
            max_timeout_ms: cli.max_timeout_ms.max(cli.timeout_ms),
            default_memory_mb: cli.max_memory_mb,
            max_memory_mb: cli.max_memory_mb_limit.max(cli.max_memory_mb),
            default_tmp_mb: cli.max_tmp_mb,
            max_tmp_mb: cli.max_tmp_mb_limit.max(cli.max_tmp_mb),
            max_output_bytes: cli.worker.max_output_bytes as u64,
            compile_timeout: Duration::from_secs(cli.compile_timeout_s),
            keep_versions: cli.keep_versions.max(1),
            max_module_bytes: cli.max_module_mb.saturating_mul(MIB),
            max_unpacked_bytes: cli.max_unpacked_bytes,
            workers: u64::from(cli.workers),
        },
        compile_slots: Semaphore::new(cli.compile_jobs.max(1)),
        next_job: AtomicU64::new(1),
        worker_program,
        invocations: Default::default(),
        metrics: Default::default(),
        cluster,
        secrets,
        replica: Some(cli.replica()),
        draining: Default::default(),
        background,
    });
    let refresher = service.clone();
    tokio::task::spawn_blocking(move || refresher.refresh_artifacts());
    tokio::spawn(service.clone().follow_cluster());
    // Before the dispatcher: a call it ends is not in this list too.
    service.deliver_pending_callbacks();
    tokio::spawn(service.clone().run_background());
    Ok(service)
}

/// In S3 mode, connects to the shared store (and checks it honours
/// conditional writes); `None` with the directory store.
/// The secret store. On one machine its key is `--secrets-key-file` (by
/// default created beside the functions dir). In S3 mode every replica
/// must hold the same key: `--secrets-key-file` on each, or by default
/// one derived from the cluster key (which they share already); the
/// store's key check refuses a replica with another.
async fn open_secrets(
    cli: &Cli,
    cluster: Option<&cluster::Cluster>,
) -> anyhow::Result<secrets::SecretStore> {
    let (dir, key_file, create_key) = cli.secrets_paths();
    let store = match (cluster, &cli.secrets_key_file, &cli.cluster_key_file) {
        (Some(_), None, Some(cluster_key)) => {
            let key = cluster::notice::ClusterKey::from_file(cluster_key)?;
            secrets::SecretStore::open_with_key(
                &dir,
                key.derive(b"faas secrets key v1"),
                &format!(
                    "the key derived from the cluster key {}",
                    cluster_key.display()
                ),
            )?
        }
        _ => secrets::SecretStore::open(&dir, &key_file, create_key && cluster.is_none())?,
    };
    if let Some(cluster) = cluster {
        cluster.check_secrets_key(&store).await?;
    }
    Ok(store)
}

async fn connect_cluster(cli: &Cli) -> anyhow::Result<Option<Arc<cluster::Cluster>>> {
    let Some(url) = &cli.store else {
        if cli.peers.is_some() || cli.peers_dns.is_some() {
            anyhow::bail!(
                "--peers and --peers-dns need --store s3://BUCKET: replicas share a store"
            );
        }
        return Ok(None);
    };
    let key = cli
        .cluster_key_file
        .as_deref()
        .map(cluster::notice::ClusterKey::from_file)
        .transpose()?;
    let config = cluster::ClusterConfig {
        url: url.clone(),
        endpoint: cli.s3_endpoint.clone(),
        credentials: cli.s3_credentials.clone(),
        replica: cli.replica(),
        key,
        peers: cluster::notice::Peers::parse(cli.peers.as_deref(), cli.peers_dns.as_deref())?,
        poll: Duration::from_millis(cli.poll_ms),
        max_blob_bytes: cli.max_module_mb.saturating_mul(MIB),
    };
    Ok(Some(Arc::new(cluster::Cluster::connect(config).await?)))
}

/// Connects to the LB and claims the server role (only the Server may
/// report workers up and down).
async fn connect_lb(socket: &std::path::Path) -> anyhow::Result<Client<LbRequest, LbReply>> {
    let lb: Client<LbRequest, LbReply> = Client::connect(socket)
        .await
        .with_context(|| format!("connecting to the load balancer at {}", socket.display()))?;
    let hello = lb
        .call(|req| LbRequest::Hello {
            req,
            role: "server".into(),
        })
        .await;
    if !matches!(hello, Ok(LbReply::Welcome { .. })) {
        anyhow::bail!("the load balancer refused the server role: {hello:?}");
    }
    Ok(lb)
}

/// Builds the interpreter modules' artifacts when missing or stale (once
/// per machine and Wasmer version; `make` normally did it already).
fn prepare_runtimes(worker: &std::path::Path, runtimes_dir: &std::path::Path) {
    if !runtimes_dir.is_dir() {
        return;
    }
    let mut cmd = std::process::Command::new(worker);
    build_sandbox::clear_env(&mut cmd);
    cmd.arg("--runtimes-dir")
        .arg(runtimes_dir)
        .arg("prepare-runtimes");
    match toolchain::run_with_timeout(cmd, Duration::from_secs(600)) {
        Ok(Some((status, out))) if status.success() => {
            if !out.contains("prepared 0") {
                log::info!(target: PART, "interpreter artifacts built in {}", runtimes_dir.display());
            }
        }
        Ok(Some((_, out))) => {
            log::error!(target: PART, "preparing the interpreters failed: {}", out.trim())
        }
        Ok(None) => log::error!(target: PART, "preparing the interpreters timed out"),
        Err(err) => log::error!(target: PART, "cannot prepare the interpreters: {err}"),
    }
}

/// Starts the gateway thread; it stops accepting when the returned sender
/// says `true`.
fn start_gateway(
    cli: &Cli,
    http: std::net::TcpListener,
) -> anyhow::Result<(watch::Sender<bool>, JoinHandle<std::io::Result<()>>)> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let config = faas_gateway::GatewayConfig {
        server_socket: cli.server_socket.clone(),
        max_body_bytes: cli.gateway.max_body_bytes,
        max_archive_bytes: cli.gateway.max_archive_bytes,
        read_timeout: Duration::from_millis(cli.gateway.read_timeout_ms),
        max_connections: cli.gateway.max_connections,
        max_connections_per_ip: cli.gateway.max_connections_per_ip,
        allowed_hosts: cli.gateway.allowed_hosts.clone(),
        api_token: cli.gateway.api_token.clone(),
        invoke_token: cli.gateway.invoke_token.clone(),
        threads: cli.io_threads(),
    };
    let grace = Duration::from_millis(cli.gateway.grace_ms);
    let gateway = std::thread::Builder::new()
        .name("gateway".into())
        .spawn(move || {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            faas_gateway::run(http, config, shutdown, grace)
        })?;
    Ok((stop_tx, gateway))
}

/// Fails readiness, then keeps serving for `delay` so load balancers take
/// this replica out before it stops accepting. A second signal cuts the
/// delay short.
async fn drain(service: &Service, delay: Duration) {
    service
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    if delay.is_zero() {
        return;
    }
    log::info!(
        target: PART,
        "draining: /health/ready answers 503; still serving for {} ms",
        delay.as_millis()
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = wait_for_signal() => log::info!(target: PART, "second signal: draining cut short"),
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => log::info!(target: PART, "SIGTERM received"),
        _ = int.recv() => log::info!(target: PART, "SIGINT received"),
    }
    Ok(())
}
