//! Turns a [`Job`] into a [`JobResult`]: finds the function in the functions
//! dir, loads it once (compiled module, or source for native languages) into
//! a bounded cache, runs it under the job's limits, and describes how it
//! ended.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use faas_proto::{FailureKind, Job, JobResult};
use wasmer::Module;

use crate::cache::LruCache;
use crate::native::{NativeLimits, NativeRunner};
use crate::wasm::{PrepareOptions, Prepared, RunOutput, Sandbox, Spent, DEFAULT_MAX_MEMORY_BYTES};

/// Most bytes of stdout (and of stderr) a function may return by default.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Deadline of a job that names none (the Server always names one).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A function ready to run.
#[derive(Clone)]
enum Loaded {
    Wasm(Module),
    Native {
        lang: &'static str,
        code: Arc<Vec<u8>>,
    },
    Html(Arc<String>),
}

/// Runs jobs for one worker process.
pub struct JobRunner {
    functions_dir: PathBuf,
    sandbox: Sandbox,
    native: NativeRunner,
    loaded: LruCache<Loaded>,
    max_output_bytes: usize,
    /// The Wasm function that ran last (id, module, memory cap): the one an
    /// idle worker prepares an instance of.
    last_wasm: Option<(String, Module, u64)>,
    /// An instance built while idle, for that function.
    prepared: Option<(String, Prepared)>,
    /// Wasm modules loaded since the process started.
    modules_loaded: u64,
    /// The last call's used instance, freed after the answer is sent.
    spent: Option<Spent>,
}

impl JobRunner {
    pub fn new(
        functions_dir: PathBuf,
        sandbox: Sandbox,
        module_cache_size: usize,
        max_output_bytes: usize,
    ) -> Self {
        Self {
            functions_dir,
            sandbox,
            native: NativeRunner::detect(),
            loaded: LruCache::new(module_cache_size),
            max_output_bytes,
            last_wasm: None,
            prepared: None,
            modules_loaded: 0,
            spent: None,
        }
    }

    /// Frees what the last call left (its store and linear memory); called
    /// once its result has been written, so the client does not wait on it.
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
        let Some((id, module, max_memory_bytes)) = &self.last_wasm else {
            return;
        };
        match self
            .sandbox
            .prepare(module, &wasm_options(id, *max_memory_bytes))
        {
            Ok(prepared) => self.prepared = Some((id.clone(), prepared)),
            Err(err) => log::warn!("preparing {id}: {err}"),
        }
    }

    pub fn run(&mut self, job: Job) -> JobResult {
        let mut result = self.run_job(job);
        result.modules_loaded = Some(self.modules_loaded);
        result
    }

    fn run_job(&mut self, job: Job) -> JobResult {
        let req = job.req;
        if !crate::is_valid_function_id(&job.function) {
            return JobResult::failure(
                req,
                FailureKind::BadJob,
                format!("invalid function id '{}'", job.function),
            );
        }
        let loaded = match self.loaded.get(&job.function) {
            Some(loaded) => loaded,
            None => match self.load(&job) {
                Ok(loaded) => {
                    if matches!(loaded, Loaded::Wasm(_)) {
                        self.modules_loaded += 1;
                    }
                    self.loaded.insert(job.function.clone(), loaded.clone());
                    loaded
                }
                Err(mut failure) => {
                    failure.req = req;
                    return failure;
                }
            },
        };

        let timeout = job
            .timeout_ms
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let max_memory_bytes = job
            .max_memory_mb
            .map_or(DEFAULT_MAX_MEMORY_BYTES, |mb| mb * 1024 * 1024);
        let max_output_bytes = job
            .max_output_bytes
            .map_or(self.max_output_bytes, |n| n as usize);
        let payload = job.payload.unwrap_or_default().into_bytes();

        let outcome = match loaded {
            Loaded::Html(doc) => {
                return JobResult::success(req, doc.as_ref().clone(), String::new(), 0, 0.0)
            }
            Loaded::Wasm(module) => {
                let started = std::time::Instant::now();
                // A ready instance of this very function (and memory cap)
                // is used; any other is dropped (it never ran).
                let ready = match self.prepared.take() {
                    Some((id, p))
                        if id == job.function && p.max_memory_bytes() == max_memory_bytes =>
                    {
                        Ok(p)
                    }
                    _ => self
                        .sandbox
                        .prepare(&module, &wasm_options(&job.function, max_memory_bytes)),
                };
                self.last_wasm = Some((job.function.clone(), module, max_memory_bytes));
                ready.map_err(|e| e.to_string()).map(|prepared| {
                    let (mut out, spent) =
                        self.sandbox
                            .call(prepared, payload, max_output_bytes, Some(timeout));
                    self.spent = Some(spent);
                    out.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                    out
                })
            }
            Loaded::Native { lang, code } => self
                .native
                .run(
                    lang,
                    &job.function,
                    req,
                    &code,
                    &payload,
                    &NativeLimits {
                        timeout,
                        max_memory_bytes,
                        max_output_bytes,
                        max_file_bytes: 16 * 1024 * 1024,
                        max_open_files: 256,
                        max_processes: 4096,
                    },
                )
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(out) => describe(req, out, timeout),
            Err(err) => JobResult::failure(req, FailureKind::Internal, err),
        }
    }

    /// Reads a function from disk (once; then it is cached).
    fn load(&self, job: &Job) -> Result<Loaded, JobResult> {
        let dir = self.functions_dir.join(&job.function);
        let lang = match &job.lang {
            Some(lang) => lang.clone(),
            None => read_lang(&dir, &job.function)?,
        };
        let read = |file: &str| {
            std::fs::read(dir.join(file))
                .map_err(|e| not_found(&job.function, format!("{file}: {e}")))
        };
        match lang.as_str() {
            "c" | "rust" | "go" => {
                let path = dir.join("code.wasm");
                if !path.exists() {
                    return Err(not_found(&job.function, "no code.wasm"));
                }
                self.sandbox
                    .load_function(&dir)
                    .map(Loaded::Wasm)
                    .map_err(|e| JobResult::failure(0, FailureKind::Internal, e.to_string()))
            }
            "js" => Ok(Loaded::Native {
                lang: "js",
                code: Arc::new(read("code.js")?),
            }),
            "python" => Ok(Loaded::Native {
                lang: "python",
                code: Arc::new(read("code.py")?),
            }),
            "php" => Ok(Loaded::Native {
                lang: "php",
                code: Arc::new(read("code.php")?),
            }),
            "html" => Ok(Loaded::Html(Arc::new(lossy(read("code.html")?)))),
            other => Err(JobResult::failure(
                0,
                FailureKind::BadJob,
                format!("unknown language '{other}'"),
            )),
        }
    }
}

/// How every invocation of Wasm function `id` is instantiated.
fn wasm_options(id: &str, max_memory_bytes: u64) -> PrepareOptions {
    PrepareOptions {
        args: vec![id.to_string()],
        env: vec![("FAAS_FUNCTION".into(), id.to_string())],
        capture: true,
        inherit_stdin: false,
        dirs: Vec::new(),
        max_memory_bytes,
    }
}

/// Maps a finished run to the result the client sees.
fn describe(req: u64, out: RunOutput, timeout: Duration) -> JobResult {
    let mut result = JobResult::success(
        req,
        lossy(out.stdout),
        lossy(out.stderr),
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

fn not_found(id: &str, why: impl std::fmt::Display) -> JobResult {
    JobResult::failure(
        0,
        FailureKind::NotFound,
        format!("function '{id}' not found ({why})"),
    )
}

/// The `lang` field of a function's metadata.json.
fn read_lang(dir: &Path, id: &str) -> Result<String, JobResult> {
    let text = std::fs::read_to_string(dir.join("metadata.json")).map_err(|e| not_found(id, e))?;
    let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        JobResult::failure(0, FailureKind::Internal, format!("bad metadata.json: {e}"))
    })?;
    meta["lang"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| JobResult::failure(0, FailureKind::Internal, "metadata.json has no lang"))
}
