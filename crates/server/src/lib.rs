//! The faas Server: the main process of `faas-server`. It runs the load
//! balancer and the HTTP gateway as threads, supervises the worker
//! processes, and handles deploys (store + compile) and invokes (LB → worker).
//!
//! Modules:
//! - [`config`]: command-line flags (clap, with `FAAS_*` env fallbacks);
//! - [`lang`]: the supported languages;
//! - [`store`]: the on-disk function store and its in-memory index;
//! - [`toolchain`]: finding compilers/runtimes and building functions;
//! - [`workers`]: worker processes (spawn, pipes, crash replacement,
//!   recycling);
//! - [`service`]: what each gateway request does;
//! - [`sockets`]: UNIX-socket binding (stale files) and the Server socket loop.

pub mod config;
pub mod lang;
pub mod service;
pub mod sockets;
pub mod store;
pub mod toolchain;
pub mod workers;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faas_proto::client::Client;
use faas_proto::LbRequest;
use tokio::sync::{mpsc, watch, Semaphore};

pub use config::Cli;
use service::{Limits, Service};
use store::FunctionStore;
use toolchain::Toolchains;
use workers::{WorkerPool, WorkerSpec};

const PART: &str = "SERVER";

/// Starts everything described by `cli` and blocks until SIGINT/SIGTERM,
/// then shuts down in order: stop accepting HTTP, let open requests finish
/// (up to `--grace-ms`), stop the workers, remove the socket files.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let strategy = cli.strategy()?;
    let weights = cli.weights()?;

    // Bind first: a port in use or a live server on our sockets is a
    // one-line error before anything is started.
    let http = std::net::TcpListener::bind((cli.host.as_str(), cli.port)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {} on {} is already in use (another faas-server?); stop it or pick another with --port",
                cli.port,
                cli.host
            )
        } else {
            anyhow::anyhow!("cannot listen on {}:{}: {e}", cli.host, cli.port)
        }
    })?;
    let http_addr = http.local_addr()?;
    let lb_listener = sockets::bind_unix(&cli.lb_socket)?;
    let server_listener = sockets::bind_unix(&cli.server_socket)?;
    let _cleanup = sockets::RemoveOnDrop(vec![cli.lb_socket.clone(), cli.server_socket.clone()]);

    let lb_config = faas_lb::LbConfig {
        strategy,
        weights,
        max_queue: cli.max_queue,
    };
    std::thread::Builder::new()
        .name("lb".into())
        .spawn(move || faas_lb::run(lb_listener, lb_config))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.io_threads())
        .thread_name("server")
        .enable_all()
        .build()?;
    runtime.block_on(serve(cli, http, http_addr, server_listener))
}

async fn serve(
    cli: Cli,
    http: std::net::TcpListener,
    http_addr: std::net::SocketAddr,
    server_listener: std::os::unix::net::UnixListener,
) -> anyhow::Result<()> {
    let store = FunctionStore::open(&cli.functions_dir)
        .with_context(|| format!("opening the function store {}", cli.functions_dir.display()))?;
    let toolchains = Toolchains::detect();
    toolchains.log_summary();

    let lb_client: Client<LbRequest, faas_proto::LbReply> =
        Client::connect(&cli.lb_socket).await.with_context(|| {
            format!(
                "connecting to the load balancer at {}",
                cli.lb_socket.display()
            )
        })?;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<LbRequest>();

    let worker_program = cli.worker_program()?;
    let spec = WorkerSpec {
        program: worker_program.clone(),
        functions_dir: store.dir().to_path_buf(),
        extra_args: cli.worker_args(),
        recycle_after_loads: cli.recycle_after,
    };
    let workers = WorkerPool::start(usize::from(cli.workers), spec, events_tx)?;

    let cache_dir = store.dir().join(".cache");
    let service = Arc::new(Service {
        store,
        toolchains,
        workers: workers.clone(),
        lb: lb_client,
        limits: Limits {
            default_timeout_ms: cli.timeout_ms,
            max_timeout_ms: cli.max_timeout_ms.max(cli.timeout_ms),
            default_memory_mb: cli.max_memory_mb,
            max_memory_mb: cli.max_memory_mb_limit.max(cli.max_memory_mb),
            max_output_bytes: cli.max_output_bytes,
            compile_timeout: Duration::from_secs(cli.compile_timeout_s),
        },
        compile_slots: Semaphore::new(cli.compile_jobs.max(1)),
        cache_dir,
        next_job: AtomicU64::new(1),
        worker_program,
    });
    let refresher = service.clone();
    tokio::task::spawn_blocking(move || refresher.refresh_artifacts());

    // The worker pool's one-way LB notifications (worker_down/up) go out in
    // order; job_done is sent by each invoke directly.
    let notifier = service.clone();
    tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            if notifier.lb.send(&event).await.is_err() {
                log::error!(target: PART, "load balancer connection lost");
                break;
            }
        }
    });

    let server_listener = {
        server_listener.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(server_listener)?
    };
    tokio::spawn(sockets::serve_requests(server_listener, service.clone()));

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let gateway_config = faas_gateway::GatewayConfig {
        server_socket: cli.server_socket.clone(),
        max_body_bytes: cli.max_body_bytes,
        threads: cli.io_threads(),
    };
    let grace = Duration::from_millis(cli.grace_ms);
    let gateway = std::thread::Builder::new()
        .name("gateway".into())
        .spawn(move || {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            faas_gateway::run(http, gateway_config, shutdown, grace)
        })?;
    log::info!(target: "GATEWAY", "listening on http://{http_addr}");
    log::info!(
        target: PART,
        "ready: {} workers, strategy {}, LB socket {}, server socket {}",
        cli.workers,
        cli.strategy().map_or("?", |s| s.name()),
        cli.lb_socket.display(),
        cli.server_socket.display()
    );

    wait_for_signal().await?;
    log::info!(target: PART, "shutting down: no new requests; finishing open ones");
    let _ = stop_tx.send(true);
    let joined = tokio::task::spawn_blocking(move || gateway.join()).await;
    if !matches!(joined, Ok(Ok(Ok(())))) {
        log::warn!(target: PART, "the gateway did not stop cleanly");
    }
    workers.stop(Duration::from_secs(5)).await;
    log::info!(target: PART, "stopped");
    Ok(())
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
