//! The Wasmer sandbox.
//!
//! One [`Engine`] (cranelift) and one tokio runtime + `PluggableRuntime` live
//! as long as the process; every call gets a fresh `Store`, `WasiEnv` and
//! instance, so no state leaks from one invocation to the next. Guests get no
//! host networking (`UnsupportedVirtualNetworking`) and no host files (the
//! default in-memory root file system, no pre-opened host directories) unless
//! `worker run --dir` maps one for debugging.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmer::{Engine, Instance, Module, Store};
use wasmer_wasix::runtime::task_manager::tokio::TokioTaskManager;
use wasmer_wasix::virtual_fs;
use wasmer_wasix::{
    PluggableRuntime, UnsupportedVirtualNetworking, WasiEnv, WasiEnvBuilder, WasiError,
};

use crate::artifact;
use crate::limits::{Watchdog, WASM_PAGE};
use crate::poll::PollState;
use crate::stdio::CappedOutput;
use crate::tmpfs::Quota;

/// Linear-memory cap when a call sets none (the server passes its own).
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 128 * 1024 * 1024;

/// Errors that stop a module from being loaded or started (as opposed to a
/// guest that runs and fails, which is a [`RunOutput`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid WebAssembly module: {0}")]
    Compile(String),
    #[error("cannot start the module: {0}")]
    Instantiate(String),
    #[error("the module has no _start function (not a WASI command)")]
    NoStart,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// How one call runs: its instance, then its input and limits.
pub struct RunOptions {
    pub instance: PrepareOptions,
    /// The guest's stdin (ignored when `instance.inherit_stdin`).
    pub stdin: Vec<u8>,
    /// Most bytes kept of stdout and of stderr each.
    pub max_output_bytes: usize,
    /// Interrupt the guest after this long.
    pub timeout: Option<Duration>,
}

/// What a call did.
#[derive(Debug)]
pub struct RunOutput {
    pub exit_code: i32,
    /// Set when the guest trapped instead of exiting.
    pub trap: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// stdout or stderr was cut at `max_output_bytes`.
    pub truncated: bool,
    /// The guest was interrupted at its deadline.
    pub timed_out: bool,
    pub duration_ms: f64,
}

/// A process-wide Wasmer engine and runtime.
pub struct Sandbox {
    engine: Engine,
    runtime: Arc<PluggableRuntime>,
    tokio: tokio::runtime::Runtime,
    /// The memory cap the engine's tunables apply, in pages.
    max_pages: Arc<AtomicU32>,
    watchdog: Watchdog,
}

impl Sandbox {
    pub fn new() -> Result<Self, SandboxError> {
        // WASI's blocking calls and timers run on this runtime; one thread is
        // plenty since a worker runs one guest at a time.
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wasi-rt")
            .enable_all()
            .build()
            .map_err(SandboxError::Runtime)?;
        let max_pages = Arc::new(AtomicU32::new(pages(DEFAULT_MAX_MEMORY_BYTES)));
        let engine = artifact::new_engine(max_pages.clone());
        let watchdog = Watchdog::start().map_err(SandboxError::Runtime)?;
        // PluggableRuntime sets up its (replaced) networking on the current
        // tokio runtime, so one must be entered.
        let _enter = tokio.enter();
        let mut runtime =
            PluggableRuntime::new(Arc::new(TokioTaskManager::new(tokio.handle().clone())));
        runtime
            .set_engine(engine.clone())
            .set_networking_implementation(UnsupportedVirtualNetworking::default());
        drop(_enter);
        Ok(Self {
            engine,
            runtime: Arc::new(runtime),
            tokio,
            max_pages,
            watchdog,
        })
    }

    /// The engine modules must be loaded into to run here.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles WebAssembly bytes (or WAT text) with cranelift.
    pub fn compile(&self, wasm: &[u8]) -> Result<Module, SandboxError> {
        Module::new(&self.engine, wasm).map_err(|e| SandboxError::Compile(e.to_string()))
    }

    /// Reads and compiles a `.wasm` file.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Module, SandboxError> {
        let bytes = std::fs::read(path).map_err(|source| SandboxError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.compile(&bytes)
    }

    /// Loads a deployed function's module: its artifact when current (no
    /// compiling), else `code.wasm` compiled now.
    pub fn load_function(&self, dir: &std::path::Path) -> Result<Module, SandboxError> {
        match artifact::load(&self.engine, dir) {
            Ok(Some(module)) => return Ok(module),
            Ok(None) => log::warn!(
                "{}: no current artifact; compiling code.wasm",
                dir.display()
            ),
            Err(err) => log::warn!("{}: {err}; compiling code.wasm", dir.display()),
        }
        self.load_file(&dir.join("code.wasm"))
    }

    /// Runs the module's `_start` in a fresh store and instance.
    pub fn run(&self, module: &Module, opts: RunOptions) -> Result<RunOutput, SandboxError> {
        let started = Instant::now();
        let prepared = self.prepare(module, &opts.instance)?;
        let (mut out, spent) = self.call(prepared, opts.stdin, opts.max_output_bytes, opts.timeout);
        drop(spent);
        out.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(out)
    }

    /// Builds a fresh store, WASI environment and instance for `module`,
    /// ready for [`call`](Self::call). Everything an invocation needs except
    /// its payload, so a worker can do this while it waits for the next job.
    ///
    /// Only the WASI namespaces the module imports are built (not all five
    /// that `WasiEnvBuilder::instantiate` creates, several hundred host
    /// functions), and `poll_oneoff` is our own, bounded by the deadline.
    pub fn prepare(
        &self,
        module: &Module,
        opts: &PrepareOptions,
    ) -> Result<Prepared, SandboxError> {
        let _enter = self.tokio.enter();
        let mut store = Store::new(self.engine.clone());
        let poll = PollState::default();
        let (builder, captured, quota) = self.builder(opts, &poll)?;
        self.max_pages
            .store(pages(opts.max_memory_bytes), Ordering::Relaxed);
        let failed = |e: &dyn std::fmt::Display| SandboxError::Instantiate(e.to_string());
        let mut wasi_env = builder.finalize(&mut store).map_err(|e| failed(&e))?;
        let mut imports = wasi_env
            .import_object_for_all_wasi_versions(&mut store, module)
            .map_err(|e| failed(&e))?;
        crate::poll::install(&mut store, &wasi_env, &mut imports, &poll);
        crate::tmpfs::install_sock_shutdown(&mut store, &wasi_env, &mut imports);
        if let Some(quota) = &quota {
            crate::tmpfs::install(&mut store, &wasi_env, &mut imports, quota);
        }
        let instance = Instance::new(&mut store, module, &imports).map_err(|e| failed(&e))?;
        wasi_env
            .initialize(&mut store, instance.clone())
            .map_err(|e| failed(&e))?;
        let start = instance
            .exports
            .get_function("_start")
            .map_err(|_| SandboxError::NoStart)?
            .clone();
        Ok(Prepared {
            store,
            _instance: instance,
            wasi_env,
            start,
            poll,
            captured,
            limits: (opts.max_memory_bytes, opts.max_tmp_bytes),
            env: opts.env.clone(),
        })
    }

    /// The WASI environment of one call: argv, variables, in-memory stdio,
    /// one guest thread, and the files it may see.
    fn builder(&self, opts: &PrepareOptions, poll: &PollState) -> Result<Built, SandboxError> {
        let program = opts
            .args
            .first()
            .cloned()
            .unwrap_or_else(|| "function".into());
        let mut builder = WasiEnv::builder(program)
            .args(opts.args.iter().skip(1))
            .envs(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .runtime(self.runtime.clone());
        // One guest thread: a function cannot fan out threads inside a worker.
        builder.capabilities_mut().threading.max_threads = Some(1);
        if !opts.inherit_stdin {
            builder = builder.stdin(Box::new(poll.stdin.clone()));
        }
        let mut captured = None;
        if opts.capture {
            let stdout = CappedOutput::new(0);
            let stderr = CappedOutput::new(0);
            builder = builder
                .stdout(Box::new(stdout.clone()))
                .stderr(Box::new(stderr.clone()));
            captured = Some((stdout, stderr));
        }
        let setup = |e: &dyn std::fmt::Display| SandboxError::Instantiate(e.to_string());
        let mut quota = None;
        if let Some(max_tmp_bytes) = opts.max_tmp_bytes {
            let q = Quota::new(max_tmp_bytes as usize);
            let root = call_fs(&opts.files, &q).map_err(|e| setup(&e))?;
            builder.set_mount_fs(root);
            builder.add_preopen_dir("/").map_err(|e| setup(&e))?;
            quota = Some(q);
        }
        if !opts.dirs.is_empty() {
            let root = crate::hostdir::root(self.tokio.handle().clone(), &opts.dirs)
                .map_err(|e| setup(&e))?;
            builder.set_mount_fs(root);
            builder.add_preopen_dir("/").map_err(|e| setup(&e))?;
        }
        Ok((builder, captured, quota))
    }

    /// Runs a prepared instance's `_start` with `stdin` as its input.
    /// Returns the outcome and the used instance: dropping it unmaps the
    /// guest's memory, which the caller can do after answering.
    pub fn call(
        &self,
        prepared: Prepared,
        stdin: Vec<u8>,
        max_output_bytes: usize,
        timeout: Option<Duration>,
    ) -> (RunOutput, Spent) {
        let _enter = self.tokio.enter();
        let started = Instant::now();
        let Prepared {
            mut store,
            _instance,
            wasi_env,
            start,
            poll,
            captured,
            ..
        } = prepared;
        poll.stdin.set(stdin);
        *poll.deadline.lock().unwrap() = timeout.map(|t| started + t);
        if let Some((stdout, stderr)) = &captured {
            stdout.set_cap(max_output_bytes);
            stderr.set_cap(max_output_bytes);
        }

        let armed = timeout.map(|t| self.watchdog.arm(Instant::now() + t, store.interrupter()));
        let called = start.call(&mut store, &[]);
        let timed_out = (armed.as_ref().is_some_and(|a| a.fired())
            || poll.timed_out.load(Ordering::Acquire))
            && called.is_err();
        drop(armed);
        let (exit_code, trap) = match called {
            Ok(_) => (0, None),
            Err(err) => match err.downcast_ref::<WasiError>() {
                Some(WasiError::Exit(code)) => (code.raw(), None),
                Some(other) => (1, Some(other.to_string())),
                None => (1, Some(err.message())),
            },
        };
        wasi_env.on_exit(&mut store, Some(exit_code.into()));

        let mut out = RunOutput {
            exit_code,
            trap,
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
            timed_out,
            duration_ms: 0.0,
        };
        if let Some((stdout, stderr)) = captured {
            let (stdout, cut_out) = stdout.take();
            let (stderr, cut_err) = stderr.take();
            out.stdout = stdout;
            out.stderr = stderr;
            out.truncated = cut_out || cut_err;
        }
        out.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let spent = Spent {
            _store: store,
            _instance,
            _env: wasi_env,
        };
        (out, spent)
    }
}

/// An instance that has run; dropping it frees its store and memory.
pub struct Spent {
    _store: Store,
    _instance: wasmer::Instance,
    _env: wasmer_wasix::WasiFunctionEnv,
}

/// What [`Sandbox::prepare`] needs to know ahead of the call.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// argv, including argv[0].
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Capture stdout/stderr (else they are the worker's own).
    pub capture: bool,
    /// Use the worker's own stdin (for `worker run`).
    pub inherit_stdin: bool,
    /// Host directories mapped into the guest, for debugging only.
    pub dirs: Vec<crate::hostdir::DirMapping>,
    /// Read-only in-memory files (guest path, content): an interpreter's
    /// script and prelude. No host file is ever mapped for them.
    pub files: Vec<(String, Arc<[u8]>)>,
    /// Give the call a private in-memory `/tmp` of at most this many bytes
    /// (and the files above); `None`: no file system at all.
    pub max_tmp_bytes: Option<u64>,
    /// Cap on the guest's linear memory (fixed at instantiation).
    pub max_memory_bytes: u64,
}

/// A fresh instance waiting for its call.
pub struct Prepared {
    store: Store,
    _instance: wasmer::Instance,
    wasi_env: wasmer_wasix::WasiFunctionEnv,
    start: wasmer::Function,
    poll: PollState,
    captured: Option<(CappedOutput, CappedOutput)>,
    limits: (u64, Option<u64>),
    env: Vec<(String, String)>,
}

impl Prepared {
    /// Whether this instance was built as `opts` asks: same caps and
    /// variables (a raw-route call adds its own), so a call may use it.
    pub fn fits(&self, opts: &PrepareOptions) -> bool {
        self.limits == (opts.max_memory_bytes, opts.max_tmp_bytes) && self.env == opts.env
    }
}

/// What [`Sandbox::builder`] makes: the WASI environment, the captured
/// stdout/stderr, and the `/tmp` quota.
type Built = (
    WasiEnvBuilder,
    Option<(CappedOutput, CappedOutput)>,
    Option<Arc<Quota>>,
);

/// A call's file system: a private `/tmp` capped by `quota`, and `/faas`
/// holding `files` read-only (an interpreter's script). Nothing else exists;
/// creating anything outside `/tmp` fails.
fn call_fs(
    files: &[(String, Arc<[u8]>)],
    quota: &Arc<Quota>,
) -> Result<virtual_fs::MountFileSystem, virtual_fs::FsError> {
    let root = virtual_fs::MountFileSystem::new();
    let tmp = virtual_fs::TmpFileSystem::new();
    tmp.set_memory_limiter(quota.clone());
    root.mount("/tmp", Arc::new(tmp))?;
    if !files.is_empty() {
        let faas = virtual_fs::TmpFileSystem::new();
        for (path, content) in files {
            let name = path.strip_prefix("/faas").unwrap_or(path);
            faas.new_open_options_ext()
                .insert_ro_file(std::path::Path::new(name), content.as_ref().into())?;
        }
        root.mount("/faas", Arc::new(faas))?;
    }
    Ok(root)
}

/// Bytes → whole WebAssembly pages (at least one).
fn pages(bytes: u64) -> u32 {
    (bytes / WASM_PAGE).clamp(1, 65536) as u32
}
