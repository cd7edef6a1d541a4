//! Turns a [`Job`] into a [`JobResult`]: finds the function in the functions
//! dir, loads it once (compiled module, or source for native languages) into
//! a bounded cache, runs it under the job's limits, and describes how it
//! ended.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_proto::{Blob, FailureKind, Job, JobResult, Lang, OutboundStats};
use wasmer::Module;

use crate::cache::LruCache;
use crate::failure::JobError;
use crate::interpreters::Interpreter;
use crate::native::{NativeCall, NativeLimits, NativeRunner, SandboxExtras};
use crate::outbound::socket::SocketDirs;
use crate::outbound::{Access, CallOutbound, Outbound};
use crate::session::Session;
use crate::wasm::{
    PrepareOptions, Prepared, RunOutput, Sandbox, SecretFiles, DEFAULT_MAX_MEMORY_BYTES,
};

/// Most bytes of stdout (and of stderr) a function may return by default.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// `/tmp` cap of a job that names none.
pub const DEFAULT_MAX_TMP_BYTES: u64 = 16 * 1024 * 1024;
/// Deadline of a job that names none (the Server always names one).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A function ready to run.
#[derive(Clone)]
enum Loaded {
    /// A compiled module (C, Rust, Go).
    Wasm(Module),
    /// A script for an interpreter compiled to WebAssembly (JS, Python).
    Script {
        interpreter: Interpreter,
        code: Bytes,
        /// A project's files instead of one script.
        project: Option<Arc<Project>>,
    },
    /// A script for a host runtime, run in a sandbox (PHP; JS and Python
    /// when the operator asks for native runtimes).
    Native {
        lang: Lang,
        code: Arc<Vec<u8>>,
        /// A PHP project's tree on the host (readable by the call's uid),
        /// bound read-only at `/faas/app`.
        tree: Option<Arc<PathBuf>>,
    },
    Html(Arc<String>),
}

/// A multi-file project of an interpreted language: its unpacked tree,
/// seen read-only under `/faas/app`, and its entry file there.
pub struct Project {
    /// The entry's guest path (`/faas/app/main.py`).
    pub entry: String,
    /// (guest path, content) of every file of the tree.
    pub files: Vec<(String, Bytes)>,
}

/// Where a project's tree is, inside the guest.
pub const PROJECT_GUEST_DIR: &str = "/faas/app";

/// How a worker runs jobs (from its flags).
pub struct RunnerSettings {
    pub module_cache_size: usize,
    pub max_output_bytes: usize,
    pub runtimes_dir: PathBuf,
    pub native_langs: Vec<Lang>,
    /// The worker's HTTP client for functions with grants (`None`: no
    /// outbound HTTP, as in `worker run`).
    pub outbound: Option<Arc<Outbound>>,
    /// Where this worker's PHP sockets and prelude go (the Server's
    /// `--sockets-dir`; `None`: a directory of its own under the
    /// temporary directory).
    pub sockets_dir: Option<PathBuf>,
}

/// One Wasm call: whose, for which request, its input and its limits.
struct WasmCall<'a> {
    id: &'a str,
    request_id: &'a str,
    payload: Vec<u8>,
    limits: &'a CallLimits,
}

/// The limits one call runs under.
struct CallLimits {
    timeout: Duration,
    max_memory_bytes: u64,
    max_output_bytes: usize,
    max_tmp_bytes: u64,
}

/// Runs jobs for one worker process.
pub struct JobRunner {
    functions_dir: PathBuf,
    sandbox: Sandbox,
    native: NativeRunner,
    loaded: LruCache<Loaded>,
    max_output_bytes: usize,
    /// Where the interpreter modules are, and those loaded so far.
    runtimes_dir: PathBuf,
    interpreters: HashMap<Lang, Interpreter>,
    /// Languages the operator runs with host runtimes instead.
    native_langs: Vec<Lang>,
    /// The Wasm function that ran last (id, module, instance options): the
    /// one an idle worker prepares an instance of.
    last_wasm: Option<(String, Module, PrepareOptions)>,
    /// An instance built while idle, for that function.
    prepared: Option<(String, Prepared)>,
    /// The store the last Wasm call ran in, to build the next instance of
    /// the same function in (see [`crate::session`]).
    session: Option<Session>,
    /// Wasm modules loaded since the process started.
    modules_loaded: u64,
    /// A session done with (worn, or of another function), dropped after
    /// the answer is sent: dropping unmaps its instances' memories.
    spent: Option<Session>,
    outbound: Option<Arc<Outbound>>,
    /// Native calls' fetch sockets and the PHP prelude.
    sockets: Option<SocketDirs>,
    /// What the running job did through its fetch channel.
    outbound_stats: Option<OutboundStats>,
}

impl JobRunner {
    pub fn new(
        functions_dir: PathBuf,
        sandbox: Sandbox,
        native: NativeRunner,
        settings: RunnerSettings,
    ) -> Self {
        Self {
            functions_dir,
            sandbox,
            native,
            loaded: LruCache::new(settings.module_cache_size),
            max_output_bytes: settings.max_output_bytes,
            runtimes_dir: settings.runtimes_dir,
            interpreters: HashMap::new(),
            native_langs: settings.native_langs,
            last_wasm: None,
            prepared: None,
            session: None,
            modules_loaded: 0,
            spent: None,
            outbound: settings.outbound,
            sockets: SocketDirs::create(settings.sockets_dir.as_deref())
                .inspect_err(|e| log::warn!("no outbound HTTP nor prelude for PHP: {e}"))
                .ok(),
            outbound_stats: None,
        }
    }

    /// Frees what the last call left (a worn session and the memories it
    /// holds); called once its result has been written, so the client does
    /// not wait on it.
    pub fn tidy(&mut self) {
        self.spent = None;
    }

    /// Called when no job is waiting: builds the next instance of the last
    /// Wasm function, so that if it is called again the call only pays for
    /// `_start`. Does nothing if one is ready already.
    pub fn prepare_idle(&mut self) {
        if self.prepared.is_some() {
            return;
        }
        let Some((id, module, opts)) = &self.last_wasm else {
            return;
        };
        match self.sandbox.prepare(module, opts, id, self.session.take()) {
            Ok(prepared) => self.prepared = Some((id.clone(), prepared)),
            Err(err) => log::warn!("preparing {id}: {err}"),
        }
    }

    /// Drops deleted functions from the caches (and a prepared instance of
    /// one): a later job for them loads from disk, and finds nothing.
    pub fn forget(&mut self, ids: &[String]) {
        for id in ids {
            self.loaded.remove(id);
            if let Some(sockets) = &self.sockets {
                sockets.drop_tree(id);
            }
        }
        if self
            .last_wasm
            .as_ref()
            .is_some_and(|(id, ..)| ids.contains(id))
        {
            self.last_wasm = None;
            self.prepared = None;
        }
        if self
            .session
            .as_ref()
            .is_some_and(|s| ids.iter().any(|id| id == s.key()))
        {
            self.session = None;
        }
    }

    pub fn run(&mut self, job: Job) -> JobResult {
        self.outbound_stats = None;
        let mut result = self.run_job(job);
        result.modules_loaded = Some(self.modules_loaded);
        result.outbound = self.outbound_stats.take();
        result
    }

    /// What a call of `function` may reach: the worker's client and the
    /// function's grants (`None` without grants: the call gets no channel
    /// at all).
    fn access(&self, function: &str, grants: &faas_proto::Grants) -> Option<Access> {
        match &self.outbound {
            Some(outbound) if !grants.is_empty() => Some(Access {
                outbound: outbound.clone(),
                function: function.to_string(),
                grants: grants.clone(),
            }),
            _ => None,
        }
    }

    fn run_job(&mut self, job: Job) -> JobResult {
        let req = job.req;
        let loaded = match self.function(&job) {
            Ok(loaded) => loaded,
            Err(err) => return err.into_result(req),
        };
        let limits = self.limits_of(&job);
        let request_id = request_id_of(&job);
        let payload = job.payload.unwrap_or_default().into_bytes();
        let mut opts = wasm_options(&job.function, &limits);
        opts.env.extend(job.env.iter().cloned());
        opts.outbound = self.access(&job.function, &job.allow);
        opts.secrets = SecretFiles(
            job.secrets
                .iter()
                .map(|s| (s.name.clone(), Bytes::copy_from_slice(s.value.0.as_bytes())))
                .collect(),
        );
        let call = WasmCall {
            id: &job.function,
            request_id: &request_id,
            payload,
            limits: &limits,
        };
        let outcome = match loaded {
            Loaded::Html(doc) => {
                return JobResult::success(req, doc.as_str().into(), Blob::default(), 0, 0.0)
            }
            Loaded::Wasm(module) => self.run_wasm(module, opts, call),
            Loaded::Script {
                interpreter,
                code,
                project,
            } => {
                let files = match &project {
                    Some(project) => {
                        // The interpreters start the file FAAS_CODE names
                        // (the prelude and boot.py read it).
                        opts.env.push(("FAAS_CODE".into(), project.entry.clone()));
                        interpreter.project_files(&project.files)
                    }
                    None => interpreter.files(code),
                };
                let opts = PrepareOptions {
                    args: interpreter.run_args(),
                    files,
                    memory_image: interpreter.memory_image.clone(),
                    entry: interpreter.entry,
                    ..opts
                };
                self.run_wasm(interpreter.module, opts, call)
            }
            Loaded::Native { lang, code, tree } => {
                let (mut extras, served, outbound) = self.native_extras(lang, &job.allow, &call);
                if let Some(tree) = tree {
                    extras
                        .binds
                        .push((tree.to_path_buf(), PROJECT_GUEST_DIR.to_string()));
                }
                let native = NativeCall {
                    lang,
                    function_id: call.id,
                    request_id: call.request_id,
                    code: &code,
                    payload: &call.payload,
                    env: &job.env,
                    extras: &extras,
                    secrets: &opts.secrets,
                };
                let out = self
                    .native
                    .run(&native, &native_limits(&limits))
                    .map_err(JobError::from);
                if let Some(served) = served {
                    served.finish();
                }
                self.outbound_stats = outbound.and_then(|o| o.stats());
                out
            }
        };
        match outcome {
            Ok(out) => describe(req, out, limits.timeout),
            Err(err) => err.into_result(req),
        }
    }

    /// What a native call gets besides its script: for PHP, the prelude
    /// (`faas_fetch`, the http stream wrappers) and, with grants, its
    /// fetch socket at `/run/faas` (served until the call ends).
    fn native_extras(
        &self,
        lang: Lang,
        grants: &faas_proto::Grants,
        call: &WasmCall<'_>,
    ) -> (
        SandboxExtras,
        Option<crate::outbound::socket::Served>,
        Option<Arc<CallOutbound>>,
    ) {
        let mut extras = SandboxExtras::default();
        let Some(sockets) = self.sockets.as_ref().filter(|_| lang == Lang::Php) else {
            return (extras, None, None);
        };
        use crate::outbound::socket::PHP_PRELUDE_PATH;
        extras
            .binds
            .push((sockets.prelude(), PHP_PRELUDE_PATH.to_string()));
        extras.args = vec!["-d".into(), format!("auto_prepend_file={PHP_PRELUDE_PATH}")];
        let Some(access) = self.access(call.id, grants) else {
            return (extras, None, None);
        };
        let outbound = Arc::new(CallOutbound::new(access));
        outbound.set_request_id(call.request_id);
        outbound.set_deadline(std::time::Instant::now() + call.limits.timeout);
        match sockets.serve(outbound.clone()) {
            Ok(served) => {
                extras.binds.push((
                    served.dir().to_path_buf(),
                    crate::outbound::CHANNEL_DIR.to_string(),
                ));
                (extras, Some(served), Some(outbound))
            }
            Err(e) => {
                log::warn!(
                    "req {}: no fetch socket for this call: {e}",
                    call.request_id
                );
                (extras, None, None)
            }
        }
    }

    /// The job's function, from the cache or loaded now.
    fn function(&mut self, job: &Job) -> Result<Loaded, JobError> {
        if !crate::is_valid_function_id(&job.function) {
            return Err(JobError::BadJob(format!(
                "invalid function id '{}'",
                job.function
            )));
        }
        if let Some(loaded) = self.loaded.get(&job.function) {
            return Ok(loaded);
        }
        let loaded = self.load(job)?;
        if matches!(loaded, Loaded::Wasm(_)) {
            self.modules_loaded += 1;
        }
        self.loaded.insert(job.function.clone(), loaded.clone());
        Ok(loaded)
    }

    fn limits_of(&self, job: &Job) -> CallLimits {
        CallLimits {
            timeout: job
                .timeout_ms
                .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
            max_memory_bytes: job
                .max_memory_mb
                .map_or(DEFAULT_MAX_MEMORY_BYTES, |mb| mb * 1024 * 1024),
            max_output_bytes: job
                .max_output_bytes
                .map_or(self.max_output_bytes, |n| n as usize),
            max_tmp_bytes: job
                .max_tmp_mb
                .map_or(DEFAULT_MAX_TMP_BYTES, |mb| mb * 1024 * 1024),
        }
    }

    /// Runs a Wasm function on a fresh instance: the one prepared while idle
    /// when it is of this very function and fits the call, else a new one
    /// (in the last call's session when that ran this function too). The
    /// request's id is set on the instance last: an instance prepared
    /// before the job arrived serves it too.
    fn run_wasm(
        &mut self,
        module: Module,
        opts: PrepareOptions,
        call: WasmCall<'_>,
    ) -> Result<RunOutput, JobError> {
        let WasmCall {
            id,
            request_id,
            payload,
            limits,
        } = call;
        let started = std::time::Instant::now();
        let ready = match self.prepared.take() {
            Some((ready_id, p)) if ready_id == id && p.fits(&opts) => Ok(p),
            // Any other prepared instance is given up (it never ran); its
            // store may still serve this call.
            given_up => {
                if let Some((_, p)) = given_up {
                    self.session = Some(p.into_session());
                }
                let reuse = self.session_for(id);
                self.sandbox.prepare(&module, &opts, id, reuse)
            }
        };
        self.last_wasm = Some((id.to_string(), module, opts));
        let mut prepared = ready.map_err(|e| JobError::module(id, e))?;
        prepared.set_env("FAAS_REQUEST_ID", request_id);
        let outbound = prepared.outbound();
        if let Some(outbound) = &outbound {
            outbound.set_request_id(request_id);
        }
        let (mut out, session) = self.sandbox.call(
            prepared,
            payload,
            limits.max_output_bytes,
            Some(limits.timeout),
        );
        if session.worn() {
            self.spent = Some(session);
        } else {
            self.session = Some(session);
        }
        out.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.outbound_stats = outbound.and_then(|o| o.stats());
        Ok(out)
    }

    /// The kept session when it belongs to function `id`; another
    /// function's is set aside to be dropped after answering.
    fn session_for(&mut self, id: &str) -> Option<Session> {
        match self.session.take() {
            Some(session) if session.key() == id => Some(session),
            other => {
                self.spent = other;
                None
            }
        }
    }

    /// The interpreter of `lang`, loaded on first use.
    fn interpreter(&mut self, lang: Lang) -> Result<Interpreter, JobError> {
        if let Some(interpreter) = self.interpreters.get(&lang) {
            return Ok(interpreter.clone());
        }
        let mut interpreter = Interpreter::load(self.sandbox.engine(), &self.runtimes_dir, lang)?;
        interpreter.compile_boot(&self.sandbox);
        self.interpreters.insert(lang, interpreter.clone());
        Ok(interpreter)
    }

    /// Reads a function from disk (once; then it is cached).
    fn load(&mut self, job: &Job) -> Result<Loaded, JobError> {
        let id = job.function.as_str();
        let dir = self.functions_dir.join(id);
        let lang = match job.lang {
            Some(lang) => lang,
            None => read_lang(&dir, id)?,
        };
        let read = |file: String| {
            std::fs::read(dir.join(&file))
                .map_err(|e| JobError::not_found(id, format!("{file}: {e}")))
        };
        match lang {
            _ if lang.is_compiled() => {
                if !dir.join("code.wasm").exists() {
                    return Err(JobError::not_found(id, "no code.wasm"));
                }
                self.sandbox
                    .load_function(&dir)
                    .map(Loaded::Wasm)
                    .map_err(|e| JobError::module(id, e))
            }
            Lang::Html => Ok(Loaded::Html(Arc::new(lossy(read(lang.source_file())?)))),
            Lang::Js | Lang::Python if !self.native_langs.contains(&lang) => {
                let project = read_project(&dir, id)?;
                let code = match project {
                    Some(_) => Bytes::new(),
                    None => Bytes::from(read(lang.source_file())?),
                };
                Ok(Loaded::Script {
                    interpreter: self.interpreter(lang)?,
                    code,
                    project,
                })
            }
            _ => match read_project_entry(&dir, id)? {
                // The script the sandbox runs only requires the entry, so
                // that its __DIR__ and relative includes are the tree's.
                Some(entry) if lang == Lang::Php => {
                    let sockets = self.sockets.as_ref().ok_or_else(|| {
                        setup_error("PHP projects need the worker's run directory".into())
                    })?;
                    let tree = sockets
                        .tree(id, &dir.join("tree"))
                        .map_err(|e| setup_error(format!("copying the project: {e}")))?;
                    let quoted = format!("{PROJECT_GUEST_DIR}/{entry}")
                        .replace('\\', "\\\\")
                        .replace('\'', "\\'");
                    Ok(Loaded::Native {
                        lang,
                        code: Arc::new(format!("<?php require '{quoted}';\n").into_bytes()),
                        tree: Some(Arc::new(tree)),
                    })
                }
                Some(_) => Err(setup_error(format!(
                    "{lang} projects run in WebAssembly only (not with a native runtime)"
                ))),
                None => Ok(Loaded::Native {
                    lang,
                    code: Arc::new(read(lang.source_file())?),
                    tree: None,
                }),
            },
        }
    }
}

fn native_limits(limits: &CallLimits) -> NativeLimits {
    NativeLimits {
        timeout: limits.timeout,
        max_memory_bytes: limits.max_memory_bytes,
        max_output_bytes: limits.max_output_bytes,
        max_tmp_bytes: limits.max_tmp_bytes,
        max_open_files: 256,
        // Per slot uid: bubblewrap, the runtime and a few children.
        max_processes: 32,
    }
}

/// How every invocation of Wasm function `id` is instantiated.
fn wasm_options(id: &str, limits: &CallLimits) -> PrepareOptions {
    PrepareOptions {
        args: vec![id.to_string()],
        env: vec![("FAAS_FUNCTION".into(), id.to_string())],
        capture: true,
        inherit_stdin: false,
        dirs: Vec::new(),
        files: Vec::new(),
        secrets: Default::default(),
        max_memory_bytes: limits.max_memory_bytes,
        max_tmp_bytes: Some(limits.max_tmp_bytes),
        outbound: None,
        memory_image: None,
        entry: Default::default(),
    }
}

/// Maps a finished run to the result the client sees.
fn describe(req: u64, out: RunOutput, timeout: Duration) -> JobResult {
    let mut result = JobResult::success(
        req,
        out.stdout.into(),
        out.stderr.into(),
        out.exit_code,
        out.duration_ms,
    );
    result.truncated = out.truncated;
    if out.timed_out {
        result.ok = false;
        result.kind = Some(FailureKind::Timeout);
        result.error = Some(format!("timed out after {} ms", timeout.as_millis()));
        result.exit_code = None;
    } else if let Some(trap) = out.trap {
        result.ok = false;
        result.kind = Some(FailureKind::Trap);
        result.error = Some(format!("function trapped: {trap}"));
        result.exit_code = None;
    } else if out.exit_code != 0 {
        result.ok = false;
        result.kind = Some(FailureKind::Exit);
        result.error = Some(format!("function exited with code {}", out.exit_code));
    }
    result
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The `lang` field of a function's metadata.json.
/// A native call that cannot be set up.
fn setup_error(why: String) -> JobError {
    JobError::Native(crate::native::NativeError::Setup(std::io::Error::other(
        why,
    )))
}

/// A project's entry file (relative), when the version at `dir` is one.
fn read_project_entry(dir: &Path, id: &str) -> Result<Option<String>, JobError> {
    let text = std::fs::read_to_string(dir.join("metadata.json"))
        .map_err(|e| JobError::not_found(id, e))?;
    let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| JobError::Metadata {
        id: id.to_string(),
        why: format!("metadata.json: {e}"),
    })?;
    Ok(match (meta["archive"].as_str(), meta["entry"].as_str()) {
        (Some(_), Some(entry)) => Some(entry.to_string()),
        _ => None,
    })
}

/// A project's tree and entry, read once into memory (the worker caches
/// the loaded function), when the version at `dir` is a project.
fn read_project(dir: &Path, id: &str) -> Result<Option<Arc<Project>>, JobError> {
    let Some(entry) = read_project_entry(dir, id)? else {
        return Ok(None);
    };
    let root = dir.join("tree");
    let mut files = Vec::new();
    let mut dirs = vec![(root, String::new())];
    let missing = |e: std::io::Error| JobError::not_found(id, format!("its project tree: {e}"));
    while let Some((host, rel)) = dirs.pop() {
        for item in std::fs::read_dir(&host).map_err(missing)? {
            let item = item.map_err(missing)?;
            let name = item.file_name().to_string_lossy().into_owned();
            let rel = format!("{rel}/{name}");
            let kind = item.file_type().map_err(missing)?;
            if kind.is_dir() {
                dirs.push((item.path(), rel));
            } else if kind.is_file() {
                let bytes = std::fs::read(item.path()).map_err(missing)?;
                files.push((format!("{PROJECT_GUEST_DIR}{rel}"), Bytes::from(bytes)));
            }
        }
    }
    Ok(Some(Arc::new(Project {
        entry: format!("{PROJECT_GUEST_DIR}/{entry}"),
        files,
    })))
}

fn read_lang(dir: &Path, id: &str) -> Result<Lang, JobError> {
    let text = std::fs::read_to_string(dir.join("metadata.json"))
        .map_err(|e| JobError::not_found(id, e))?;
    let bad = |why: String| JobError::Metadata {
        id: id.to_string(),
        why,
    };
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("metadata.json: {e}")))?;
    let lang = meta["lang"]
        .as_str()
        .ok_or_else(|| bad("metadata.json has no lang".into()))?;
    lang.parse().map_err(bad)
}

/// The call's `FAAS_REQUEST_ID`: the request's id as the gateway gave it
/// (the client's `X-Request-Id`), or the job's number for a job sent by
/// hand without one. An id that cannot be a variable's value is replaced
/// the same way.
fn request_id_of(job: &Job) -> String {
    match &job.request_id {
        Some(id) if !id.is_empty() && !id.contains('\0') => id.clone(),
        _ => job.req.to_string(),
    }
}
