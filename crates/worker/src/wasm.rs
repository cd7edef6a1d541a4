//! The Wasmer sandbox.
//!
//! One [`Engine`] (cranelift) and one tokio runtime + `PluggableRuntime` live
//! as long as the process; every call gets a fresh `WasiEnv` and instance
//! (its own memory), so no state leaks from one invocation to the next. The
//! store and its host functions are reused by calls of the same module for
//! a while ([`crate::session`]). Guests get no
//! host networking (`UnsupportedVirtualNetworking`) and no host files: a
//! call's files are ours ([`crate::wasifs`]), in memory, unless `worker run
//! --dir` maps a host directory for debugging.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmer::{Engine, Instance, Module, Store};
use wasmer_wasix::runtime::task_manager::tokio::TokioTaskManager;
use wasmer_wasix::virtual_fs;
use wasmer_wasix::{
    PluggableRuntime, UnsupportedVirtualNetworking, WasiEnv, WasiEnvBuilder, WasiError,
};

use crate::artifact;
use crate::environ::Environ;
use crate::limits::{ImageSlot, Watchdog, WASM_PAGE};
use crate::memimage::MemoryImage;
use crate::outbound::{Access, CallOutbound};
use crate::poll::PollState;
use crate::session::{CallHooks, HookSlot, Session};
use crate::stdio::CappedOutput;
use crate::tmpfs::MemFs;
use crate::vfs::Namespace;
use crate::wasifs::CallFs;

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
    #[error("the interpreter has no run function (not the reactor it should be)")]
    NoRun,
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
    /// The memory image the engine's tunables map, around an instantiation.
    image: ImageSlot,
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
        let image = ImageSlot::default();
        let engine = artifact::new_engine_with_images(max_pages.clone(), image.clone());
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
            image,
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

    /// Runs the module's `_start` in a fresh store and instance (a one-off:
    /// `worker run` and `worker check`).
    pub fn run(&self, module: &Module, opts: RunOptions) -> Result<RunOutput, SandboxError> {
        let mut session = None;
        self.run_in(&mut session, "run", module, opts)
    }

    /// Runs the module's `_start` in a fresh instance, in `session` when it
    /// can serve module `key` (else in a new one, left in `session`), the
    /// way a worker runs invocations back to back.
    pub fn run_in(
        &self,
        session: &mut Option<Session>,
        key: &str,
        module: &Module,
        opts: RunOptions,
    ) -> Result<RunOutput, SandboxError> {
        let started = Instant::now();
        let prepared = self.prepare(module, &opts.instance, key, session.take())?;
        let (mut out, used) = self.call(prepared, opts.stdin, opts.max_output_bytes, opts.timeout);
        *session = (!used.worn()).then_some(used);
        out.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(out)
    }

    /// Builds a fresh WASI environment and instance of `module` (named
    /// `key` by the caller), ready for [`call`](Self::call): everything an
    /// invocation needs except its payload, so a worker can do this while
    /// it waits for the next job.
    ///
    /// The instance is built in `reuse` when that session serves `key`
    /// (its store and host functions are kept; see [`crate::session`]),
    /// else in a new session. A new session builds only the WASI namespaces
    /// the module imports (not all five that `WasiEnvBuilder::instantiate`
    /// creates, several hundred host functions), with our own
    /// `poll_oneoff`, bounded by the deadline, and file-system calls.
    pub fn prepare(
        &self,
        module: &Module,
        opts: &PrepareOptions,
        key: &str,
        reuse: Option<Session>,
    ) -> Result<Prepared, SandboxError> {
        let _enter = self.tokio.enter();
        let poll = PollState::default();
        // A fetch that waits until the deadline ends the call as a timeout,
        // as a poll does (`poll.timed_out`).
        let outbound = opts
            .outbound
            .clone()
            .map(|a| Arc::new(CallOutbound::new(a).stopping_at_deadline(poll.timed_out.clone())));
        let mut fs = call_fs(opts, outbound.as_ref())?;
        if outbound.is_some() {
            fs.stop_when(poll.timed_out.clone());
        }
        let hooks = CallHooks {
            poll,
            fs: Arc::new(Mutex::new(fs)),
            environ: Environ::new(&opts.env),
            outbound,
        };
        let (builder, captured) = self.builder(opts, &hooks);
        self.max_pages
            .store(pages(opts.max_memory_bytes), Ordering::Relaxed);
        let mut session = match reuse {
            Some(mut session) if session.serves(key, opts.entry) => {
                let env = builder.build().map_err(|e| instantiate_error(&e))?;
                // Replacing the environment drops the previous call's (its
                // files, buffers and process state).
                *session.env.env.as_mut(&mut session.store) = env;
                session
            }
            _ => self.open_session(key, module, builder, opts.entry)?,
        };
        *session.hooks.lock().unwrap() = hooks;
        let (instance, start) = match self.rewound(&mut session, opts) {
            Some(rewound) => rewound,
            None => self.instantiate(&mut session, module, opts)?,
        };
        session
            .env
            .initialize(&mut session.store, instance)
            .map_err(|e| instantiate_error(&e))?;
        Ok(Prepared {
            session,
            start,
            captured,
            limits: (opts.max_memory_bytes, opts.max_tmp_bytes),
            env: opts.env.clone(),
            outbound: opts.outbound.clone(),
            secrets: opts.secrets.clone(),
        })
    }

    /// The session's last instance set back to its state at instantiation,
    /// when it has one that can be ([`crate::memimage::Rewind`]) and was
    /// made for these limits and image.
    fn rewound(&self, session: &mut Session, opts: &PrepareOptions) -> Option<(Instance, Start)> {
        let kept = session.rewindable.take()?;
        if let Some(rewound) = Self::rewind(session, &kept, opts) {
            session.rewindable = Some(kept);
            session.rewound = true;
            return Some(rewound);
        }
        // Not rewound: a new instance is made in the same store, and this
        // one's memory stays mapped with it until the store is dropped, so
        // it counts towards the session's bound like any finished instance.
        let memory_bytes = kept
            .instance
            .exports
            .get_memory("memory")
            .map_or(0, |memory| memory.view(&session.store).data_size());
        session.count_abandoned(memory_bytes);
        None
    }

    /// `kept` set back to its state at instantiation, when it was made for
    /// these limits and image and can be.
    fn rewind(
        session: &mut Session,
        kept: &Rewindable,
        opts: &PrepareOptions,
    ) -> Option<(Instance, Start)> {
        let same_image = match (&kept.image, &opts.memory_image) {
            (a, Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same_image || kept.max_memory_bytes != opts.max_memory_bytes {
            return None;
        }
        // SAFETY: the memory is in this session's store, which the session
        // keeps with `kept`, and no guest code runs between calls.
        if let Err(e) = unsafe { kept.rewind.rewind() } {
            log::warn!("cannot rewind an instance's memory: {e}; making a new one");
            return None;
        }
        for (global, value) in &kept.globals {
            if let Err(e) = global.set(&mut session.store, value.clone()) {
                log::warn!("cannot rewind a global: {e}; making a new instance");
                return None;
            }
        }
        Some((kept.instance.clone(), kept.start.clone()))
    }

    /// A new instance of `module` in `session` (kept in the session to be
    /// rewound when the module and its memory allow).
    fn instantiate(
        &self,
        session: &mut Session,
        module: &Module,
        opts: &PrepareOptions,
    ) -> Result<(Instance, Start), SandboxError> {
        session.rewound = false;
        self.image.lock().unwrap().image = opts.memory_image.clone();
        let instance = Instance::new(&mut session.store, module, &session.imports);
        let made = std::mem::take(&mut *self.image.lock().unwrap()).made;
        let instance = instance.map_err(|e| instantiate_error(&e))?;
        let function = |name: &str| instance.exports.get_function(name).ok().cloned();
        let start = match opts.entry {
            Entry::Start => Start::Command(function("_start").ok_or(SandboxError::NoStart)?),
            Entry::Reactor => Start::Reactor {
                initialize: function("_initialize"),
                run: function("run").ok_or(SandboxError::NoRun)?,
            },
        };
        // Only a memory made from an image can be rewound, so the section
        // is looked up only then (never for a compiled function's call).
        let kept = made.zip(opts.memory_image.as_ref()).filter(|_| {
            module
                .custom_sections(crate::memimage::REWINDABLE_SECTION)
                .next()
                .is_some()
        });
        if let Some((rewind, image)) = kept {
            // Their values now, before any guest code ran: a new
            // instance's.
            let globals = instance
                .exports
                .iter()
                .filter(|(name, _)| name.starts_with(crate::memimage::GLOBAL_EXPORT_PREFIX))
                .filter_map(|(_, export)| match export {
                    wasmer::Extern::Global(global) => {
                        Some((global.clone(), global.get(&mut session.store)))
                    }
                    _ => None,
                })
                .collect();
            session.rewindable = Some(Rewindable {
                instance: instance.clone(),
                start: start.clone(),
                globals,
                rewind,
                image: image.clone(),
                max_memory_bytes: opts.max_memory_bytes,
            });
        }
        Ok((instance, start))
    }

    /// A new store with the WASI imports `module` needs, bound to a
    /// function environment that starts as `builder`'s.
    fn open_session(
        &self,
        key: &str,
        module: &Module,
        builder: WasiEnvBuilder,
        entry: Entry,
    ) -> Result<Session, SandboxError> {
        let mut store = Store::new(self.engine.clone());
        let env = builder
            .finalize(&mut store)
            .map_err(|e| instantiate_error(&e))?;
        let mut imports = env
            .import_object_for_all_wasi_versions(&mut store, module)
            .map_err(|e| instantiate_error(&e))?;
        let hooks = HookSlot::default();
        crate::session::bind_host_calls(&mut store, &env, &mut imports, module, &hooks);
        if entry == Entry::Reactor {
            crate::hostcall::stub_host_call(&mut store, &mut imports, module);
        }
        Ok(Session::new(key, store, env, imports, hooks, entry))
    }

    /// The WASI environment of one call: argv, variables, in-memory stdio,
    /// one guest thread. Its files are not wasix's ([`call_fs`]).
    fn builder(&self, opts: &PrepareOptions, hooks: &CallHooks) -> Built {
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
            builder = builder.stdin(Box::new(hooks.poll.stdin.clone()));
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
        // No guest call reaches wasix's file system: an empty one, rather
        // than the default tree wasix would build for every call.
        builder.set_mount_fs(virtual_fs::MountFileSystem::new());
        (builder, captured)
    }

    /// Runs a prepared instance's `_start` with `stdin` as its input.
    /// Returns the outcome and the session, to serve the next call unless
    /// it is [worn](Session::worn): then the caller drops it, after
    /// answering (dropping unmaps the guests' memories).
    pub fn call(
        &self,
        prepared: Prepared,
        stdin: Vec<u8>,
        max_output_bytes: usize,
        timeout: Option<Duration>,
    ) -> (RunOutput, Session) {
        let _enter = self.tokio.enter();
        let started = Instant::now();
        let Prepared {
            mut session,
            start,
            captured,
            ..
        } = prepared;
        let (poll, outbound) = {
            let hooks = session.hooks.lock().unwrap();
            (hooks.poll.clone(), hooks.outbound.clone())
        };
        poll.stdin.set(stdin);
        *poll.deadline.lock().unwrap() = timeout.map(|t| started + t);
        if let (Some(outbound), Some(t)) = (&outbound, timeout) {
            outbound.set_deadline(started + t);
        }
        if let Some((stdout, stderr)) = &captured {
            stdout.set_cap(max_output_bytes);
            stderr.set_cap(max_output_bytes);
        }

        let armed = timeout.map(|t| {
            self.watchdog
                .arm(Instant::now() + t, session.store.interrupter())
        });
        let called = start.call(&mut session.store);
        let fired = armed.is_some_and(|armed| armed.disarm());
        let timed_out = (fired || poll.timed_out.load(Ordering::Acquire)) && called.is_err();
        let (exit_code, trap) = match called {
            Ok(code) => (code, None),
            Err(err) => match err.downcast_ref::<WasiError>() {
                Some(WasiError::Exit(code)) => (code.raw(), None),
                Some(other) => (1, Some(other.to_string())),
                None => (1, Some(err.message())),
            },
        };
        // What `WasiFunctionEnv::on_exit` does that matters here: mark the
        // process finished. Its other work (closing every fd under a 10 s
        // timer task) wakes the tokio thread on every call, and the
        // in-memory files it would close are freed with the environment.
        session
            .env
            .data(&session.store)
            .process
            .terminate(exit_code.into());
        session.count_instance();
        if fired || trap.is_some() {
            session.retire();
        }

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
        (out, session)
    }
}

fn instantiate_error(e: &dyn std::fmt::Display) -> SandboxError {
    SandboxError::Instantiate(e.to_string())
}

/// How a module is started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Entry {
    /// A WASI command: `_start` (every deployed module, QuickJS).
    #[default]
    Start,
    /// A pre-initialised interpreter we ship as a WASI reactor (CPython):
    /// `_initialize`, then `run`, whose result is the exit code (`proc_exit`
    /// still ends it too). Its `host.call` import, the tool channel of the
    /// host it was built for, answers "no host" ([`crate::hostcall`]).
    Reactor,
}

/// The exports a prepared instance is started with.
#[derive(Clone)]
enum Start {
    Command(wasmer::Function),
    Reactor {
        initialize: Option<wasmer::Function>,
        run: wasmer::Function,
    },
}

/// An instance a session keeps to rewind for its next call instead of
/// making a new one ([`crate::memimage::Rewind`]).
pub(crate) struct Rewindable {
    instance: Instance,
    start: Start,
    /// The module's mutable globals and their values at instantiation.
    globals: Vec<(wasmer::Global, wasmer::Value)>,
    rewind: crate::memimage::Rewind,
    /// What the instance was made with.
    image: Arc<MemoryImage>,
    max_memory_bytes: u64,
}

impl Start {
    /// Runs the instance; `Ok(exit code)` when it returned.
    fn call(&self, store: &mut Store) -> Result<i32, wasmer::RuntimeError> {
        match self {
            Start::Command(start) => start.call(store, &[]).map(|_| 0),
            Start::Reactor { initialize, run } => {
                if let Some(initialize) = initialize {
                    initialize.call(store, &[])?;
                }
                let out = run.call(store, &[])?;
                Ok(out.first().and_then(wasmer::Value::i32).unwrap_or(0))
            }
        }
    }
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
    pub files: Vec<(String, Bytes)>,
    /// The function's secrets, read-only under `/run/secrets/` (with a
    /// `/tmp` cap only, like `files`).
    pub secrets: SecretFiles,
    /// Give the call a private in-memory `/tmp` of at most this many bytes
    /// (and the files above); `None`: no file system at all.
    pub max_tmp_bytes: Option<u64>,
    /// Cap on the guest's linear memory (fixed at instantiation).
    pub max_memory_bytes: u64,
    /// Outbound HTTP: the call gets `/run/faas/fetch` ([`crate::outbound`]);
    /// `None`: no such file (a function without grants).
    pub outbound: Option<Access>,
    /// The module's initial memory as an image to map, when its artifact
    /// was compiled without its data ([`crate::memimage`]).
    pub memory_image: Option<Arc<MemoryImage>>,
    /// How the module is started.
    pub entry: Entry,
}

/// Secret files (name, value): their `Debug` shows names and sizes only,
/// never a value (options may be logged).
#[derive(Clone, Default, PartialEq)]
pub struct SecretFiles(pub Vec<(String, Bytes)>);

impl std::fmt::Debug for SecretFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|(name, v)| format!("{name} ({} bytes)", v.len())),
            )
            .finish()
    }
}

/// A fresh instance waiting for its call.
pub struct Prepared {
    session: Session,
    start: Start,
    captured: Option<(CappedOutput, CappedOutput)>,
    limits: (u64, Option<u64>),
    env: Vec<(String, String)>,
    outbound: Option<Access>,
    secrets: SecretFiles,
}

impl Prepared {
    /// Whether this instance was built as `opts` asks: same caps,
    /// variables (a raw-route call adds its own) and secret values (one
    /// replaced since is seen by the next call), so a call may use it.
    pub fn fits(&self, opts: &PrepareOptions) -> bool {
        self.limits == (opts.max_memory_bytes, opts.max_tmp_bytes)
            && self.env == opts.env
            && self.secrets == opts.secrets
            && self.outbound == opts.outbound
    }

    /// The call's outbound state (its request id is set on it; its counts
    /// are read after the call), when it has grants.
    pub fn outbound(&self) -> Option<Arc<CallOutbound>> {
        self.session.hooks.lock().unwrap().outbound.clone()
    }

    /// Sets a variable for this call only (the request's id), after the
    /// instance was built: the guest reads its variables when it runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.session.hooks.lock().unwrap().environ.set(key, value);
    }

    /// Gives up the instance (it never runs) and returns its session.
    pub fn into_session(self) -> Session {
        let mut session = self.session;
        session.count_instance();
        session
    }
}

/// What [`Sandbox::builder`] makes: the WASI environment and the captured
/// stdout/stderr.
type Built = (WasiEnvBuilder, Option<(CappedOutput, CappedOutput)>);

/// A call's files. With host directories (`worker run --dir`), those,
/// pre-opened in order. With a `/tmp` cap: a root that holds a private
/// in-memory `/tmp` of that size and, read-only, `/faas` with `files` (an
/// interpreter's script) and `/run/secrets` with the function's secrets,
/// and with grants `/run/faas` holding the fetch file ([`crate::outbound`]),
/// `/` and `/tmp` pre-opened; nothing else exists,
/// and changing anything outside `/tmp` fails with `EROFS`. Else, no files.
fn call_fs(
    opts: &PrepareOptions,
    outbound: Option<&Arc<CallOutbound>>,
) -> Result<CallFs, SandboxError> {
    if !opts.dirs.is_empty() {
        let (ns, preopens) =
            crate::hostdir::namespace(&opts.dirs).map_err(|e| instantiate_error(&e))?;
        return Ok(CallFs::new(ns, &preopens));
    }
    let Some(cap) = opts.max_tmp_bytes else {
        return Ok(CallFs::stdio_only());
    };
    let tmp = vec!["tmp".to_string()];
    let faas = vec!["faas".to_string()];
    let secrets = vec!["run".to_string(), "secrets".to_string()];
    // Files under /faas (a script) are a mount of their own; any other
    // (Python's standard library) lives in the read-only root.
    let (script_files, root_files): (Vec<_>, Vec<_>) = opts
        .files
        .iter()
        .map(|(path, content)| (crate::hostdir::components(path), content.clone()))
        .partition(|(path, _)| path.first() == Some(&faas[0]));
    let mut mounts = vec![tmp.clone()];
    if !script_files.is_empty() {
        mounts.push(faas.clone());
    }
    if !opts.secrets.0.is_empty() {
        mounts.push(secrets.clone());
    }
    let mut dirs = mounts.clone();
    if outbound.is_some() {
        dirs.push(crate::outbound::mount_point());
    }
    let mut ns = Namespace::new(Arc::new(MemFs::read_only(&dirs, &root_files)));
    ns.mount(&tmp, Arc::new(MemFs::new(Some(cap))));
    // Read-only for real: a writable /faas or /run/secrets would be memory
    // outside the /tmp cap (see crate::rofs), and a secret is the
    // platform's to change, not the call's.
    let read_only = |files: &mut dyn Iterator<Item = (Vec<String>, Bytes)>| {
        Arc::new(MemFs::read_only(&[], &files.collect::<Vec<_>>()))
    };
    if !script_files.is_empty() {
        let mut files = script_files
            .into_iter()
            .map(|(path, content)| (path[1..].to_vec(), content));
        ns.mount(&faas, read_only(&mut files));
    }
    if !opts.secrets.0.is_empty() {
        // Names are checked by the Server (no '/', no leading '.').
        let mut files = opts
            .secrets
            .0
            .iter()
            .map(|(name, value)| (vec![name.clone()], value.clone()));
        ns.mount(&secrets, read_only(&mut files));
    }
    if let Some(call) = outbound {
        crate::outbound::mount(&mut ns, call);
    }
    // `/` and `/tmp`, as `wasmtime run --dir R::/ --dir T::/tmp` gives
    // them: a path under /tmp cannot leave it with `..`.
    Ok(CallFs::new(ns, &[Vec::new(), mounts[0].clone()]))
}

/// Bytes → whole WebAssembly pages (at least one).
fn pages(bytes: u64) -> u32 {
    (bytes / WASM_PAGE).clamp(1, 65536) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::MAX_CALLS;

    /// Increments a global and a byte of memory, then prints both: a fresh
    /// instance prints "11"; one that saw an earlier call would print more.
    /// With `trap` set, it traps after printing. Assembled by hand: the
    /// worker is built without Wasmer's text parser.
    fn counter_module(trap: bool) -> Vec<u8> {
        fn section(id: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![id, body.len() as u8];
            out.extend_from_slice(body);
            out
        }
        fn name(s: &str) -> Vec<u8> {
            let mut out = vec![s.len() as u8];
            out.extend_from_slice(s.as_bytes());
            out
        }
        let mut body = vec![0x00]; // no locals
        body.extend([
            0x23, 0, 0x41, 1, 0x6a, 0x24, 0, // $calls += 1
            0x41, 0xe4, 0, 0x41, 0xe4, 0, 0x2d, 0, 0, 0x41, 1, 0x6a, 0x3a, 0,
            0, // mem[100] += 1
            0x41, 16, 0x41, 48, 0x23, 0, 0x6a, 0x3a, 0, 0, // mem[16] = '0' + $calls
            0x41, 17, 0x41, 48, 0x41, 0xe4, 0, 0x2d, 0, 0, 0x6a, 0x3a, 0,
            0, // mem[17] = '0' + mem[100]
            0x41, 0, 0x41, 16, 0x36, 2, 0, // iov.buf = 16
            0x41, 4, 0x41, 2, 0x36, 2, 0, // iov.len = 2
            0x41, 1, 0x41, 0, 0x41, 1, 0x41, 8, 0x10, 0, 0x1a, // drop(fd_write(1, iov, 1, 8))
        ]);
        if trap {
            body.push(0x00); // unreachable
        }
        body.push(0x0b);
        let mut import = vec![1];
        import.extend(name("wasi_snapshot_preview1"));
        import.extend(name("fd_write"));
        import.extend([0x00, 0]);
        let mut export = vec![2];
        export.extend(name("memory"));
        export.extend([0x02, 0]);
        export.extend(name("_start"));
        export.extend([0x00, 1]);
        let mut code = vec![1, body.len() as u8];
        code.extend(body);
        let mut module = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        // (i32 i32 i32 i32) -> i32 for fd_write, () -> () for _start.
        module.extend(section(
            1,
            &[2, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f, 0x60, 0, 0],
        ));
        module.extend(section(2, &import));
        module.extend(section(3, &[1, 1]));
        module.extend(section(5, &[1, 0x00, 1]));
        module.extend(section(6, &[1, 0x7f, 1, 0x41, 0, 0x0b]));
        module.extend(section(7, &export));
        module.extend(section(10, &code));
        module
    }

    fn options() -> RunOptions {
        RunOptions {
            instance: PrepareOptions {
                args: vec!["test".into()],
                env: Vec::new(),
                capture: true,
                inherit_stdin: false,
                dirs: Vec::new(),
                files: Vec::new(),
                secrets: Default::default(),
                max_tmp_bytes: Some(1 << 20),
                max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
                outbound: None,
                memory_image: None,
                entry: Entry::Start,
            },
            stdin: Vec::new(),
            max_output_bytes: 1024,
            timeout: Some(Duration::from_secs(5)),
        }
    }

    #[test]
    fn a_session_gives_every_call_a_fresh_instance_until_it_is_worn() {
        let sandbox = Sandbox::new().unwrap();
        let module = sandbox.compile(&counter_module(false)).unwrap();
        let mut session = None;
        for call in 1..=MAX_CALLS {
            let out = sandbox
                .run_in(&mut session, "counter", &module, options())
                .unwrap();
            assert_eq!(out.stdout, b"11", "call {call}");
            // Kept for the next call until it has served MAX_CALLS.
            assert_eq!(session.is_some(), call < MAX_CALLS, "call {call}");
        }
        // Another module's name never reuses this store.
        sandbox
            .run_in(&mut session, "counter", &module, options())
            .unwrap();
        let out = sandbox
            .run_in(&mut session, "other", &module, options())
            .unwrap();
        assert_eq!(out.stdout, b"11");
        assert_eq!(session.as_ref().map(Session::key), Some("other"));
    }

    #[test]
    fn a_call_stopped_at_its_deadline_retires_the_session() {
        let sandbox = Sandbox::new().unwrap();
        // (module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))
        // in binary form: the worker is built without Wasmer's text parser.
        let spin: &[u8] = &[
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
            0x03, 0x02, 0x01, 0x00, // func 0 has type 0
            0x05, 0x03, 0x01, 0x00, 0x01, // one memory of one page
            0x07, 0x13, 0x02, // two exports
            0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // memory 0
            0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // func 0
            0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0
        ];
        let module = sandbox.compile(spin).unwrap();
        let mut session = None;
        let out = sandbox
            .run_in(
                &mut session,
                "spin",
                &module,
                RunOptions {
                    timeout: Some(Duration::from_millis(50)),
                    ..options()
                },
            )
            .unwrap();
        assert!(out.timed_out);
        assert!(session.is_none(), "an interrupted store is not reused");
    }

    #[test]
    fn a_trap_retires_the_session() {
        let sandbox = Sandbox::new().unwrap();
        let module = sandbox.compile(&counter_module(true)).unwrap();
        let mut session = None;
        let out = sandbox
            .run_in(&mut session, "trap", &module, options())
            .unwrap();
        assert!(out.trap.is_some());
        assert_eq!(out.stdout, b"11");
        assert!(session.is_none(), "a store that trapped is not reused");
    }
}
