//! Third-party packages installed into a project at deploy: a Python
//! `requirements.txt` (pure-Python wheels only), a JavaScript
//! `package.json` (npm, without scripts), a Rust `Cargo.toml`'s crates.io
//! dependencies, and a Go module's requirements (through `GOPROXY`).
//!
//! No package code runs on the host: every install tool runs in the build
//! sandbox ([`crate::build_sandbox`]) as the build uid, with a cleared
//! environment, the build rlimits and the caller's deadline, but in its
//! networked mode ([`ToolRun::network`]) since it must reach a registry. It
//! sees a private job directory holding only what it needs (a sanitised
//! manifest we write, never the project's own config files such as
//! `.npmrc`, `pip.conf` or `.cargo/config.toml`) and its language's
//! download cache, bound read-write at `/cache`.
//!
//! Manifests are checked before anything runs: only plain requirement
//! specifiers from the configured registry are accepted (no options lines,
//! URLs, paths, VCS or alternative indexes); each refusal is a
//! [`PackageError::Rejected`] (422) naming the line or package.
//!
//! What each install leaves in the project tree, for the build step (which
//! runs networkless) or the function:
//!
//! | lang | manifest | tool | result |
//! |---|---|---|---|
//! | python | `requirements.txt` | `pip install --only-binary=:all: --platform any --implementation py --python-version 3.15 --target` | `.python_packages/` (put on `sys.path`) |
//! | js | `package.json` `dependencies` | `npm install --omit=dev --ignore-scripts` | `node_modules/` |
//! | rust | `Cargo.toml` | `cargo fetch`, then `cargo vendor --offline` | `vendor/`, `Cargo.lock`, `.cargo/config.toml` |
//! | go | `go.mod` `require` | `go mod download`, then `go mod vendor` | `vendor/`, `go.sum` |
//!
//! A project that already ships its result (`node_modules/`, `vendor/`) is
//! left as it is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faas_proto::Lang;

use crate::build_sandbox::{BuildJob, BuildSandbox, ToolRun};
use crate::toolchain::{run_with_timeout, BuildError};

const PART: &str = "SERVER";

/// The Python the WebAssembly runtime embeds: wheels must fit it.
pub const PYTHON_VERSION: &str = "3.15";
/// Where a project's Python packages are installed (added to `sys.path`).
pub const PYTHON_PACKAGES_DIR: &str = ".python_packages";
/// The largest manifest read (`requirements.txt`, `package.json`, ...).
const MAX_MANIFEST_BYTES: u64 = 256 * 1024;
/// The most requirements or dependencies one project may list.
const MAX_REQUIREMENTS: usize = 200;
/// The most an install may add to a project (the archive limits count
/// what was uploaded, this what was downloaded).
const MAX_INSTALLED_BYTES: u64 = 512 * 1024 * 1024;
/// The most files an install may add.
const MAX_INSTALLED_FILES: u64 = 50_000;
/// The system's CA certificates (Debian's `ca-certificates`).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where the download cache appears inside bubblewrap.
const CACHE_GUEST: &str = "/cache";

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The manifest is refused, or a package cannot be had (no pure wheel,
    /// no such version, unreachable proxy): 422 naming it.
    #[error("{0}")]
    Rejected(String),
    /// The install tool is not on this server: 503.
    #[error("{0}")]
    Missing(String),
    /// The tool could not be run or ran past the deadline: 500.
    #[error("{0}")]
    Failed(String),
}

impl From<PackageError> for BuildError {
    fn from(err: PackageError) -> Self {
        match err {
            PackageError::Rejected(m) => BuildError::Rejected(m),
            PackageError::Missing(m) => BuildError::Missing(m),
            PackageError::Failed(m) => BuildError::Failed(m),
        }
    }
}

type Result<T> = std::result::Result<T, PackageError>;

/// What an install did.
#[derive(Debug, Default, Clone)]
pub struct Installed {
    /// The packages the tool reported (name and version when it says).
    pub packages: Vec<String>,
    /// Files added to the project.
    pub files: u64,
    pub elapsed: Duration,
}

/// Where packages come from (operator flags; the public registries by
/// default).
#[derive(Debug, Clone)]
pub struct Registries {
    /// `--pip-index-url`.
    pub pip_index: String,
    /// `--npm-registry`.
    pub npm_registry: String,
    /// `--goproxy`: never `direct` (that would let go.mod name any host).
    pub goproxy: String,
    /// `--gosumdb`: the checksum database, or `off`.
    pub gosumdb: String,
}

impl Default for Registries {
    fn default() -> Self {
        Self {
            pip_index: "https://pypi.org/simple".into(),
            npm_registry: "https://registry.npmjs.org/".into(),
            goproxy: "https://proxy.golang.org".into(),
            gosumdb: "sum.golang.org".into(),
        }
    }
}

/// The install tools found on this machine (all under `/usr` or a
/// toolchain root bound read-only into the sandbox).
#[derive(Debug, Clone, Default)]
pub struct InstallTools {
    /// A `python3` whose `-m pip` works.
    pub python: Option<PathBuf>,
    pub npm: Option<PathBuf>,
    /// `cargo` (`FAAS_CARGO`, else `/usr/bin/cargo`) and its root when
    /// outside `/usr`; `old` when it predates the sparse index (< 1.68).
    pub cargo: Option<(PathBuf, Option<PathBuf>)>,
    pub cargo_needs_sparse_flag: bool,
    /// The Go toolchain (program, GOROOT) the deploys build with.
    pub go: Option<(PathBuf, Option<PathBuf>)>,
}

impl InstallTools {
    /// Looks for pip, npm and cargo; `go` is the one the builds use.
    pub fn detect(go: Option<(PathBuf, Option<PathBuf>)>) -> Self {
        let python = ["/usr/bin/python3"]
            .iter()
            .map(PathBuf::from)
            .find(|p| probe(p, &["-m", "pip", "--version"]).is_some());
        let npm = ["/usr/bin/npm", "/usr/local/bin/npm"]
            .iter()
            .map(PathBuf::from)
            .find(|p| probe(p, &["--version"]).is_some());
        let cargo = match std::env::var_os("FAAS_CARGO") {
            Some(v) => Some(PathBuf::from(v)),
            None => Some(PathBuf::from("/usr/bin/cargo")).filter(|p| p.exists()),
        };
        let mut needs_flag = false;
        let cargo = cargo.and_then(|p| {
            let version = probe(&p, &["--version"])?;
            needs_flag = cargo_minor(&version).is_some_and(|m| m < 68);
            let real = std::fs::canonicalize(&p).unwrap_or(p);
            let root = (!real.starts_with("/usr"))
                .then(|| real.parent().and_then(Path::parent).map(Path::to_path_buf))
                .flatten();
            Some((real, root))
        });
        Self {
            python,
            npm,
            cargo,
            cargo_needs_sparse_flag: needs_flag,
            go,
        }
    }

    /// One line for the start log.
    pub fn summary(&self) -> String {
        let show = |name: &str, p: Option<&PathBuf>| match p {
            Some(p) => format!("{name} {}", p.display()),
            None => format!("{name} missing"),
        };
        [
            show("pip", self.python.as_ref()),
            show("npm", self.npm.as_ref()),
            show("cargo", self.cargo.as_ref().map(|c| &c.0)),
            show("go", self.go.as_ref().map(|g| &g.0)),
        ]
        .join(", ")
    }
}

/// Installs projects' packages.
#[derive(Debug, Clone)]
pub struct Installer {
    pub tools: InstallTools,
    pub registries: Registries,
}

impl Installer {
    /// Installs what `project`'s manifest for `lang` asks for into the
    /// project tree; `Ok` with nothing installed when it asks for nothing.
    pub fn install(
        &self,
        lang: Lang,
        project: &Path,
        sandbox: &BuildSandbox,
        deadline: Duration,
    ) -> Result<Installed> {
        let started = Instant::now();
        let mut installed = match lang {
            Lang::Python => self.python(project, sandbox, deadline),
            Lang::Js => self.js(project, sandbox, deadline),
            Lang::Rust => self.rust(project, sandbox, deadline),
            Lang::Go => self.go(project, sandbox, deadline),
            _ => Ok(Installed::default()),
        }?;
        installed.elapsed = started.elapsed();
        if !installed.packages.is_empty() {
            log::info!(target: PART, "{lang}: installed {} ({} files) in {:.1} s", installed.packages.join(", "), installed.files, installed.elapsed.as_secs_f64());
        }
        Ok(installed)
    }

    fn python(
        &self,
        project: &Path,
        sandbox: &BuildSandbox,
        deadline: Duration,
    ) -> Result<Installed> {
        let Some(text) = read_manifest(project, "requirements.txt")? else {
            return Ok(Installed::default());
        };
        let requirements = parse_requirements(&text)?;
        if requirements.is_empty() {
            return Ok(Installed::default());
        }
        let python = self.tools.python.clone().ok_or_else(|| {
            PackageError::Missing("requirements.txt needs pip on the server (Debian: python3-pip; `make toolchains` installs it)".into())
        })?;
        let job = new_job(sandbox)?;
        let mut list = requirements.join("\n");
        list.push('\n');
        job.put("requirements.txt", list.as_bytes())
            .map_err(setup)?;
        let (cache, cache_guest) = cache(sandbox, "pip")?;
        let target = job.guest().join("site");
        let mut args: Vec<OsString> = [
            "-I",
            "-m",
            "pip",
            "install",
            // No config file, no PIP_* variable: only these arguments.
            "--isolated",
            "--no-input",
            "--disable-pip-version-check",
            "--no-color",
            "--progress-bar",
            "off",
            // Wheels only (never an sdist build: that would run setup.py),
            // and only pure ones: the interpreter is CPython in WebAssembly.
            "--only-binary=:all:",
            "--platform",
            "any",
            "--implementation",
            "py",
            "--python-version",
            PYTHON_VERSION,
            "--no-compile",
            "--index-url",
            &self.registries.pip_index,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.extend([
            "--cache-dir".into(),
            cache_guest.clone().into(),
            "--target".into(),
            target.into(),
            "-r".into(),
            job.guest().join("requirements.txt").into(),
        ]);
        let run = ToolRun {
            program: python,
            args,
            writable: vec![(cache, cache_guest)],
            network: true,
            ..ToolRun::default()
        };
        let out = run_tool(sandbox, &job, &run, deadline, "pip")?;
        let out = out.map_err(|message| PackageError::Rejected(pip_refusal(&message)))?;
        let site = job.host().join("site");
        // Console scripts are for a shell the function does not have.
        let _ = std::fs::remove_dir_all(site.join("bin"));
        let files = replace_dir(&site, &project.join(PYTHON_PACKAGES_DIR))?;
        Ok(Installed {
            packages: pip_installed(&out),
            files,
            ..Installed::default()
        })
    }

    fn js(&self, project: &Path, sandbox: &BuildSandbox, deadline: Duration) -> Result<Installed> {
        if project.join("node_modules").exists() {
            return Ok(Installed::default());
        }
        let Some(text) = read_manifest(project, "package.json")? else {
            return Ok(Installed::default());
        };
        let manifest = sanitise_package_json(&text)?;
        let Some(manifest) = manifest else {
            return Ok(Installed::default());
        };
        let npm = self.tools.npm.clone().ok_or_else(|| {
            PackageError::Missing("package.json dependencies need npm on the server (Debian: npm; `make toolchains` installs it)".into())
        })?;
        let job = new_job(sandbox)?;
        job.put("package.json", manifest.as_bytes())
            .map_err(setup)?;
        let (cache, cache_guest) = cache(sandbox, "npm")?;
        let args: Vec<OsString> = vec![
            "install".into(),
            "--omit=dev".into(),
            // No lifecycle script of any package (or of the project) runs.
            "--ignore-scripts".into(),
            "--no-audit".into(),
            "--no-fund".into(),
            "--no-package-lock".into(),
            "--no-update-notifier".into(),
            "--install-links=false".into(),
            "--loglevel=error".into(),
            "--registry".into(),
            self.registries.npm_registry.clone().into(),
            "--cache".into(),
            cache_guest.clone().into(),
        ];
        // No user, global or project config: only these arguments (the
        // config files named here do not exist; the job holds only the
        // sanitised package.json, never the project's .npmrc).
        let mut env: Vec<(String, OsString)> = [
            ("NPM_CONFIG_IGNORE_SCRIPTS", "true"),
            ("NO_UPDATE_NOTIFIER", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
        env.push((
            "NPM_CONFIG_USERCONFIG".into(),
            job.guest().join(".no-user-npmrc").into(),
        ));
        env.push((
            "NPM_CONFIG_GLOBALCONFIG".into(),
            job.guest().join(".no-global-npmrc").into(),
        ));
        // Node trusts its own CA list, not the system's: the registry may sit
        // behind a CA only the system store has (as pip, cargo and go trust).
        if Path::new(SYSTEM_CA_BUNDLE).is_file() {
            env.push(("NODE_EXTRA_CA_CERTS".into(), SYSTEM_CA_BUNDLE.into()));
        }
        let run = ToolRun {
            program: npm,
            args,
            env,
            writable: vec![(cache, cache_guest)],
            network: true,
            ..ToolRun::default()
        };
        run_tool(sandbox, &job, &run, deadline, "npm")?
            .map_err(|m| PackageError::Rejected(npm_refusal(&m)))?;
        let files = replace_dir(
            &job.host().join("node_modules"),
            &project.join("node_modules"),
        )?;
        let packages = dependencies(&manifest);
        Ok(Installed {
            packages,
            files,
            ..Installed::default()
        })
    }

    fn rust(
        &self,
        project: &Path,
        sandbox: &BuildSandbox,
        deadline: Duration,
    ) -> Result<Installed> {
        let Some(text) = read_manifest(project, "Cargo.toml")? else {
            return Ok(Installed::default());
        };
        if project.join("build.rs").exists() || build_key(&text) {
            return Err(PackageError::Rejected(
                "Cargo.toml: the project's own build script (build.rs) is refused: it would run at deploy; dependencies' build scripts run only inside the networkless build sandbox".into(),
            ));
        }
        let crates = check_cargo_toml(&text)?;
        if crates.is_empty() || project.join("vendor").exists() {
            return Ok(Installed::default());
        }
        let (cargo, root) = self.tools.cargo.clone().ok_or_else(|| {
            PackageError::Missing("Cargo.toml dependencies need cargo on the server (Debian: cargo; `make toolchains` installs it; FAAS_CARGO names another)".into())
        })?;
        let job = new_job(sandbox)?;
        copy_project(project, job.host(), &job)?;
        let (cache, cache_guest) = cache(sandbox, "cargo")?;
        let mut env: Vec<(String, OsString)> = vec![
            ("CARGO_HOME".into(), cache_guest.clone().into()),
            ("CARGO_TARGET_DIR".into(), job.guest().join("target").into()),
            ("CARGO_NET_GIT_FETCH_WITH_CLI".into(), "false".into()),
            ("CARGO_TERM_COLOR".into(), "never".into()),
            ("CARGO_TERM_PROGRESS_WHEN".into(), "never".into()),
        ];
        let mut flags: Vec<OsString> = Vec::new();
        if self.tools.cargo_needs_sparse_flag {
            // Cargo before 1.68 knows crates.io only as a git index (not
            // reachable from every server); its sparse protocol is there
            // behind -Z, which RUSTC_BOOTSTRAP unlocks.
            env.push(("RUSTC_BOOTSTRAP".into(), "1".into()));
            flags.extend(["-Z".into(), "sparse-registry".into()]);
        } else {
            env.push((
                "CARGO_REGISTRIES_CRATES_IO_PROTOCOL".into(),
                "sparse".into(),
            ));
        }
        let tool_dirs: Vec<PathBuf> = root.into_iter().collect();
        let mut fetch = flags.clone();
        fetch.push("fetch".into());
        let run = ToolRun {
            program: cargo.clone(),
            args: fetch,
            env: env.clone(),
            tool_dirs: tool_dirs.clone(),
            writable: vec![(cache.clone(), cache_guest.clone())],
            network: true,
            ..ToolRun::default()
        };
        run_tool(sandbox, &job, &run, deadline, "cargo fetch")?.map_err(|m| {
            PackageError::Rejected(format!(
                "cargo could not fetch the dependencies: {}",
                tool_message(&m, &job)
            ))
        })?;
        // Vendoring reads the cache only: no network for it.
        let mut vendor = flags;
        vendor.extend(["vendor".into(), "--offline".into(), "vendor".into()]);
        let run = ToolRun {
            program: cargo,
            args: vendor,
            env,
            tool_dirs,
            writable: vec![(cache, cache_guest)],
            ..ToolRun::default()
        };
        run_tool(sandbox, &job, &run, deadline, "cargo vendor")?.map_err(|m| {
            PackageError::Rejected(format!(
                "cargo could not vendor the dependencies: {}",
                tool_message(&m, &job)
            ))
        })?;
        let files = replace_dir(&job.host().join("vendor"), &project.join("vendor"))?;
        copy_file(&job.host().join("Cargo.lock"), &project.join("Cargo.lock"))?;
        let config = project.join(".cargo");
        let _ = std::fs::remove_dir_all(&config);
        std::fs::create_dir(&config).map_err(setup)?;
        std::fs::write(config.join("config.toml"), CARGO_VENDOR_CONFIG).map_err(setup)?;
        Ok(Installed {
            packages: crates,
            files,
            ..Installed::default()
        })
    }

    fn go(&self, project: &Path, sandbox: &BuildSandbox, deadline: Duration) -> Result<Installed> {
        let Some(text) = read_manifest(project, "go.mod")? else {
            return Ok(Installed::default());
        };
        let modules = go_requirements(&text)?;
        if modules.is_empty() || project.join("vendor").exists() {
            return Ok(Installed::default());
        }
        let (go, goroot) = self
            .tools
            .go
            .clone()
            .ok_or_else(|| PackageError::Missing(crate::toolchain::missing_hint(Lang::Go)))?;
        let job = new_job(sandbox)?;
        // `go mod vendor` reads the packages the module imports.
        copy_project(project, job.host(), &job)?;
        let (cache, cache_guest) = cache(sandbox, "go")?;
        let mut env: Vec<(String, OsString)> = [
            ("GOTOOLCHAIN", "local"),
            ("GOENV", "off"),
            ("GOTELEMETRY", "off"),
            ("GOFLAGS", "-mod=mod -modcacherw"),
            ("CGO_ENABLED", "0"),
            ("GOOS", "wasip1"),
            ("GOARCH", "wasm"),
            ("GONOSUMDB", ""),
            ("GOPRIVATE", ""),
            ("GOINSECURE", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
        env.push(("GOPROXY".into(), self.registries.goproxy.clone().into()));
        env.push(("GOSUMDB".into(), self.registries.gosumdb.clone().into()));
        env.push(("GOMODCACHE".into(), cache_guest.join("mod").into()));
        env.push(("GOCACHE".into(), job.guest().join(".gocache").into()));
        env.push(("GOPATH".into(), job.guest().join(".gopath").into()));
        if let Some(root) = &goroot {
            env.push(("GOROOT".into(), root.into()));
        }
        let tool_dirs: Vec<PathBuf> = goroot.into_iter().collect();
        let run = ToolRun {
            program: go.clone(),
            args: vec!["mod".into(), "download".into()],
            env: env.clone(),
            tool_dirs: tool_dirs.clone(),
            writable: vec![(cache.clone(), cache_guest.clone())],
            network: true,
            ..ToolRun::default()
        };
        run_tool(sandbox, &job, &run, deadline, "go mod download")?.map_err(|m| {
            PackageError::Rejected(go_refusal(&m, &modules, &self.registries.goproxy, &job))
        })?;
        // go.sum entries for the packages the module imports (through the
        // same proxy: `tidy` may look up a module the imports need).
        let run = ToolRun {
            args: vec!["mod".into(), "tidy".into()],
            ..run
        };
        run_tool(sandbox, &job, &run, deadline, "go mod tidy")?.map_err(|m| {
            PackageError::Rejected(go_refusal(&m, &modules, &self.registries.goproxy, &job))
        })?;
        // Offline from here: only the cache.
        env.retain(|(k, _)| k != "GOPROXY");
        env.push(("GOPROXY".into(), "off".into()));
        let run = ToolRun {
            program: go,
            args: vec!["mod".into(), "vendor".into()],
            env,
            tool_dirs,
            writable: vec![(cache, cache_guest)],
            ..ToolRun::default()
        };
        run_tool(sandbox, &job, &run, deadline, "go mod vendor")?.map_err(|m| {
            PackageError::Rejected(format!("go mod vendor failed: {}", tool_message(&m, &job)))
        })?;
        let files = replace_dir(&job.host().join("vendor"), &project.join("vendor"))?;
        copy_file(&job.host().join("go.sum"), &project.join("go.sum"))?;
        Ok(Installed {
            packages: modules,
            files,
            ..Installed::default()
        })
    }
}

/// The source replacement a vendored Rust project builds with (offline).
const CARGO_VENDOR_CONFIG: &str = "# Written by faas at deploy: the dependencies were fetched from crates.io\n# into vendor/, and the build (offline) reads them from there.\n[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n[source.vendored-sources]\ndirectory = \"vendor\"\n";

fn setup(e: std::io::Error) -> PackageError {
    PackageError::Failed(format!("cannot prepare the package install: {e}"))
}

fn new_job(sandbox: &BuildSandbox) -> Result<BuildJob> {
    if let Some(why) = sandbox.blocked() {
        return Err(PackageError::Missing(format!(
            "packages cannot be installed here: {why}"
        )));
    }
    sandbox.job().map_err(setup)
}

/// The language's download cache: (host path, path the tool sees).
fn cache(sandbox: &BuildSandbox, name: &str) -> Result<(PathBuf, PathBuf)> {
    let host = sandbox.build_cache_dir(name).map_err(setup)?;
    let guest = sandbox.guest_path(&host, CACHE_GUEST);
    Ok((host, guest))
}

/// Runs one install tool: `Ok(Ok(output))` when it exited 0, `Ok(Err(
/// output))` when it refused, `Err` when it could not run or ran late.
fn run_tool(
    sandbox: &BuildSandbox,
    job: &BuildJob,
    run: &ToolRun,
    deadline: Duration,
    what: &str,
) -> Result<std::result::Result<String, String>> {
    let cmd = sandbox.command(job, run, deadline);
    match run_with_timeout(cmd, deadline) {
        Err(e) => Err(PackageError::Failed(format!("cannot run {what}: {e}"))),
        Ok(None) => Err(PackageError::Failed(format!(
            "{what} did not finish within {} s (--compile-timeout-s)",
            deadline.as_secs()
        ))),
        Ok(Some((status, out))) if status.success() => Ok(Ok(out)),
        Ok(Some((_, out))) => Ok(Err(out)),
    }
}

/// `name` in the project, when it is a regular file (never a link), at
/// most [`MAX_MANIFEST_BYTES`] of UTF-8.
fn read_manifest(project: &Path, name: &str) -> Result<Option<String>> {
    let path = project.join(name);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(PackageError::Rejected(format!(
            "{name} must be a regular file"
        )));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(PackageError::Rejected(format!(
            "{name} is {} bytes; {MAX_MANIFEST_BYTES} at most",
            meta.len()
        )));
    }
    let bytes = std::fs::read(&path).map_err(setup)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| PackageError::Rejected(format!("{name} is not UTF-8 text")))
}

/// The requirements of a `requirements.txt`, one normalised specifier
/// each; anything but a plain `name[extras] specifiers ; marker` line is
/// refused, naming the line: options (`-e`, `-r`, `--index-url`,
/// `--extra-index-url`, `--find-links`, ...), URLs and direct references
/// (`pkg @ https://...`, `git+...`), paths and line continuations.
pub fn parse_requirements(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(cut) => &raw[..cut],
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let refuse = |why: &str| {
            PackageError::Rejected(format!(
                "requirements.txt line {}: `{}` is refused: {why}; only plain requirement specifiers from the package index are installed (e.g. `markdown==3.7`)",
                i + 1,
                shorten(line)
            ))
        };
        if line.starts_with('-') {
            return Err(refuse("options (-e, -r, --index-url, --extra-index-url, --find-links, ...) are not accepted"));
        }
        if line.ends_with('\\') {
            return Err(refuse("line continuations are not accepted"));
        }
        if line.contains("://") || line.contains('@') || line.contains('/') || line.contains('\\') {
            return Err(refuse("URLs, paths and direct references are not accepted"));
        }
        let (spec, marker) = match line.split_once(';') {
            Some((s, m)) => (s.trim(), Some(m.trim())),
            None => (line, None),
        };
        if let Some(marker) = marker {
            let ok = marker
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" _.'\"<>=!~()".contains(&b));
            if !ok || marker.is_empty() {
                return Err(refuse(
                    "the environment marker has characters a marker never uses",
                ));
            }
        }
        let name_len = spec
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
            .count();
        let (name, rest) = spec.split_at(name_len);
        if name.is_empty() || !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(refuse("it does not start with a package name"));
        }
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(r) => {
                let Some((extras, after)) = r.split_once(']') else {
                    return Err(refuse("unclosed extras"));
                };
                if !extras
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-, ".contains(&b))
                {
                    return Err(refuse("extras are names separated by commas"));
                }
                after.trim_start()
            }
            None => rest,
        };
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let op_len = part.bytes().take_while(|b| b"=!<>~".contains(b)).count();
            let (op, version) = part.split_at(op_len);
            let version = version.trim();
            let ok_op = ["==", "!=", "<=", ">=", "~=", "<", ">", "==="].contains(&op);
            let ok_version = !version.is_empty()
                && version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".*+!-_".contains(&b));
            if !ok_op || !ok_version {
                return Err(refuse(
                    "a version specifier is an operator (==, >=, ~=, ...) and a version",
                ));
            }
        }
        out.push(line.to_string());
        if out.len() > MAX_REQUIREMENTS {
            return Err(PackageError::Rejected(format!(
                "requirements.txt lists more than {MAX_REQUIREMENTS} requirements"
            )));
        }
    }
    Ok(out)
}

/// The 422 message for a failed pip run: the requirement it could not
/// satisfy, and why that happens here.
fn pip_refusal(message: &str) -> String {
    let missing = message
        .lines()
        .find_map(|l| l.split_once("No matching distribution found for "))
        .map(|(_, name)| name.trim().to_string());
    match missing {
        Some(name) => format!(
            "{name}: no pure-Python wheel (py3-none-any) for Python {PYTHON_VERSION} on the package index. Functions run CPython in WebAssembly, where native extensions (manylinux/macOS/Windows wheels) cannot load, and source distributions are never built at deploy; pick a version with a pure wheel, or a pure-Python alternative. pip said: {}",
            error_lines(message, "ERROR:")
        ),
        None => format!("pip could not install the requirements: {}", error_lines(message, "ERROR:")),
    }
}

/// The packages pip reports as installed.
fn pip_installed(out: &str) -> Vec<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully installed "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The 422 message for a failed npm run.
fn npm_refusal(message: &str) -> String {
    let mut lines = error_lines(message, "npm error");
    if lines.is_empty() {
        lines = error_lines(message, "npm ERR!");
    }
    format!("npm could not install the dependencies: {lines}")
}

/// The lines of `message` starting with `prefix` (a tool's error lines),
/// else its last lines; shortened.
fn error_lines(message: &str, prefix: &str) -> String {
    let picked: Vec<&str> = message
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter(|l| !l.contains("A complete log of this run"))
        .take(12)
        .collect();
    let text = if picked.is_empty() {
        let all: Vec<&str> = message.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(8)..].join("\n")
    } else {
        picked.join("\n")
    };
    shorten_to(&text, 4096)
}

/// A tool's message with the job's paths hidden.
fn tool_message(message: &str, job: &BuildJob) -> String {
    let text = message
        .replace(&format!("{}/", job.host().display()), "")
        .replace(&format!("{}/", job.guest().display()), "");
    shorten_to(text.trim(), 8192)
}

/// `package.json` reduced to what npm needs to install the production
/// dependencies: `dependencies` and `optionalDependencies`, each checked
/// to be a registry package name with a version range or tag; `None` when
/// there are none. Everything else (`scripts`, `devDependencies`,
/// `overrides`, `workspaces`, `bundleDependencies`, `publishConfig`, ...)
/// is dropped, so nothing in it can run or redirect the install.
pub fn sanitise_package_json(text: &str) -> Result<Option<String>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| PackageError::Rejected(format!("package.json is not valid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(PackageError::Rejected(
            "package.json is not a JSON object".into(),
        ));
    };
    let mut kept = serde_json::Map::new();
    let mut count = 0;
    for field in ["dependencies", "optionalDependencies"] {
        let Some(deps) = object.get(field) else {
            continue;
        };
        let Some(deps) = deps.as_object() else {
            return Err(PackageError::Rejected(format!(
                "package.json: {field} must be an object of name: version"
            )));
        };
        for (name, spec) in deps {
            check_npm_dependency(field, name, spec)?;
            count += 1;
        }
        if !deps.is_empty() {
            kept.insert(field.to_string(), serde_json::Value::Object(deps.clone()));
        }
    }
    if count == 0 {
        return Ok(None);
    }
    if count > MAX_REQUIREMENTS {
        return Err(PackageError::Rejected(format!(
            "package.json lists {count} dependencies; {MAX_REQUIREMENTS} at most"
        )));
    }
    let mut manifest = serde_json::Map::new();
    manifest.insert("name".into(), "faas-function".into());
    manifest.insert("version".into(), "0.0.0".into());
    manifest.insert("private".into(), true.into());
    manifest.extend(kept);
    Ok(Some(serde_json::Value::Object(manifest).to_string()))
}

/// One dependency: a registry name and a semver range or dist-tag; never
/// `file:`, `link:`, `git+...`, `github:user/repo`, `user/repo`, a URL,
/// an `npm:` alias or `workspace:`.
fn check_npm_dependency(field: &str, name: &str, spec: &serde_json::Value) -> Result<()> {
    let valid_name = {
        let bare = match name.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('/') {
                Some((scope, rest)) if valid_npm_part(scope) => rest,
                _ => "",
            },
            None => name,
        };
        name.len() <= 214 && valid_npm_part(bare)
    };
    if !valid_name {
        return Err(PackageError::Rejected(format!(
            "package.json {field}: `{}` is not an npm package name",
            shorten(name)
        )));
    }
    let Some(spec) = spec.as_str() else {
        return Err(PackageError::Rejected(format!(
            "package.json {field}: {name}'s version must be a string"
        )));
    };
    let ok = !spec.is_empty()
        && spec.len() <= 256
        && !spec.starts_with('.')
        && spec
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .^~<>=|*+_-".contains(&b));
    if !ok {
        return Err(PackageError::Rejected(format!(
            "package.json {field}: {name}: `{}` is refused: only a version range or tag from the npm registry is installed (no file:, link:, git, GitHub, URL, npm: alias or workspace: dependency)",
            shorten(spec)
        )));
    }
    Ok(())
}

fn valid_npm_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with('.')
        && !part.starts_with('_')
        && part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b))
}

/// `name@range` for each dependency of a sanitised manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(manifest).unwrap_or_default();
    ["dependencies", "optionalDependencies"]
        .iter()
        .filter_map(|f| value.get(f).and_then(|d| d.as_object()))
        .flat_map(|d| d.iter())
        .map(|(n, v)| format!("{n}@{}", v.as_str().unwrap_or("")))
        .collect()
}

/// Whether `[package]` names a build script (`build = "..."`; `build =
/// false` is fine).
fn build_key(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("package").and_then(|p| p.get("build")).cloned())
        .is_some_and(|b| b.as_bool() != Some(false))
}

/// The crates.io dependencies of a `Cargo.toml` (`name version`); refuses
/// those from anywhere else (git, another registry, a path outside the
/// project) and `[patch]` / `[replace]` sections, naming them.
pub fn check_cargo_toml(text: &str) -> Result<Vec<String>> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| PackageError::Rejected(format!("Cargo.toml is not valid TOML: {e}")))?;
    for section in ["patch", "replace"] {
        if table.contains_key(section) {
            return Err(PackageError::Rejected(format!(
                "Cargo.toml: [{section}] is refused: dependencies come from crates.io only"
            )));
        }
        if table
            .get("workspace")
            .and_then(|w| w.get(section))
            .is_some()
        {
            return Err(PackageError::Rejected(format!(
                "Cargo.toml: [workspace.{section}] is refused: dependencies come from crates.io only"
            )));
        }
    }
    let mut tables: Vec<(String, &toml::Table)> = Vec::new();
    let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
    for kind in kinds {
        if let Some(t) = table.get(kind).and_then(|v| v.as_table()) {
            tables.push((kind.to_string(), t));
        }
    }
    if let Some(t) = table
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|v| v.as_table())
    {
        tables.push(("workspace.dependencies".into(), t));
    }
    if let Some(targets) = table.get("target").and_then(|v| v.as_table()) {
        for (cfg, t) in targets {
            for kind in kinds {
                if let Some(t) = t.get(kind).and_then(|v| v.as_table()) {
                    tables.push((format!("target.{cfg}.{kind}"), t));
                }
            }
        }
    }
    let mut crates = Vec::new();
    for (section, deps) in tables {
        for (name, spec) in deps {
            let refuse = |why: &str| {
                PackageError::Rejected(format!(
                    "Cargo.toml [{section}] {name}: {why}; dependencies come from crates.io only"
                ))
            };
            let version = match spec {
                toml::Value::String(v) => v.clone(),
                toml::Value::Table(t) => {
                    for key in ["git", "registry", "registry-index", "branch", "tag", "rev"] {
                        if t.contains_key(key) {
                            return Err(refuse(&format!("`{key}` is refused")));
                        }
                    }
                    if let Some(path) = t.get("path") {
                        let path = path.as_str().unwrap_or("/");
                        if path.starts_with('/') || path.split(['/', '\\']).any(|c| c == "..") {
                            return Err(refuse("a path outside the project is refused"));
                        }
                        continue;
                    }
                    if t.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
                        continue;
                    }
                    t.get("version")
                        .and_then(|v| v.as_str())
                        .unwrap_or("*")
                        .to_string()
                }
                _ => return Err(refuse("not a version or a table")),
            };
            crates.push(format!("{name} {version}"));
            if crates.len() > MAX_REQUIREMENTS {
                return Err(PackageError::Rejected(format!(
                    "Cargo.toml lists more than {MAX_REQUIREMENTS} dependencies"
                )));
            }
        }
    }
    Ok(crates)
}

/// The minor version of `cargo 1.65.0 (...)`.
fn cargo_minor(version: &str) -> Option<u32> {
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// The modules a `go.mod` requires (`path version`); refuses `replace`
/// directives that point at a directory outside the module.
pub fn go_requirements(text: &str) -> Result<Vec<String>> {
    let mut modules = Vec::new();
    let mut block: Option<&str> = None;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (directive, rest) = match block {
            Some(d) if line == ")" => {
                let _ = d;
                block = None;
                continue;
            }
            Some(d) => (d, line),
            None => {
                let (d, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(match d {
                        "require" => "require",
                        "replace" => "replace",
                        _ => "other",
                    });
                    continue;
                }
                (d, rest)
            }
        };
        match directive {
            "require" => {
                let mut parts = rest.split_whitespace();
                if let (Some(path), Some(version)) = (parts.next(), parts.next()) {
                    modules.push(format!("{path} {version}"));
                }
            }
            "replace" => {
                if let Some((_, target)) = rest.split_once("=>") {
                    let target = target.trim();
                    let local = target.starts_with('.') || target.starts_with('/');
                    if local && (target.starts_with('/') || target.split('/').any(|c| c == "..")) {
                        return Err(PackageError::Rejected(format!(
                            "go.mod: `replace {}` points outside the module, which is refused",
                            shorten(rest)
                        )));
                    }
                }
            }
            _ => {}
        }
        if modules.len() > MAX_REQUIREMENTS {
            return Err(PackageError::Rejected(format!(
                "go.mod requires more than {MAX_REQUIREMENTS} modules"
            )));
        }
    }
    Ok(modules)
}

/// The 422 message for a failed `go mod download`: the module it could
/// not get, and from where.
fn go_refusal(message: &str, modules: &[String], proxy: &str, job: &BuildJob) -> String {
    let text = tool_message(message, job);
    let named = modules
        .iter()
        .filter_map(|m| m.split_whitespace().next())
        .find(|path| text.contains(path));
    match named {
        Some(module) => format!(
            "the Go module {module} cannot be downloaded through GOPROXY {proxy} (vendor it into the project's vendor/ with `go mod vendor`, or ask the operator for a reachable --goproxy): {text}"
        ),
        None => format!("go mod download failed through GOPROXY {proxy}: {text}"),
    }
}

/// Copies the project into the job for a tool that reads its sources
/// (cargo, go), leaving out its own tool config (`.cargo/`), build output
/// and any link.
fn copy_project(project: &Path, to: &Path, job: &BuildJob) -> Result<()> {
    fn walk(from: &Path, to: &Path, job: &BuildJob, top: bool) -> std::io::Result<()> {
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            if top && (name == ".cargo" || name == "target" || name == ".git") {
                continue;
            }
            let kind = entry.file_type()?;
            let target = to.join(&name);
            if kind.is_dir() {
                std::fs::create_dir_all(&target)?;
                job.give(&target)?;
                walk(&entry.path(), &target, job, false)?;
            } else if kind.is_file() {
                std::fs::copy(entry.path(), &target)?;
                job.give(&target)?;
            }
        }
        Ok(())
    }
    walk(project, to, job, true).map_err(setup)
}

/// Moves what a tool installed (`from`, written by the build uid) into the
/// project as the Server's own files, replacing `to`: regular files and
/// directories only, links skipped and never followed, within
/// [`MAX_INSTALLED_BYTES`] and [`MAX_INSTALLED_FILES`]. Returns the files.
fn replace_dir(from: &Path, to: &Path) -> Result<u64> {
    if !std::fs::symlink_metadata(from).is_ok_and(|m| m.is_dir()) {
        return Ok(0);
    }
    if std::fs::symlink_metadata(to).is_ok() {
        let removed = if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(to)
        } else {
            std::fs::remove_file(to)
        };
        removed.map_err(setup)?;
    }
    let mut count = (0u64, 0u64);
    copy_tree(from, to, &mut count)?;
    Ok(count.0)
}

fn copy_tree(from: &Path, to: &Path, count: &mut (u64, u64)) -> Result<()> {
    std::fs::create_dir(to).map_err(setup)?;
    for entry in std::fs::read_dir(from).map_err(setup)? {
        let entry = entry.map_err(setup)?;
        let kind = entry.file_type().map_err(setup)?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, count)?;
        } else if kind.is_file() {
            count.0 += 1;
            count.1 += std::fs::copy(entry.path(), &target).map_err(setup)?;
            if count.0 > MAX_INSTALLED_FILES || count.1 > MAX_INSTALLED_BYTES {
                return Err(PackageError::Rejected(format!(
                    "the installed packages exceed {MAX_INSTALLED_FILES} files or {} MiB",
                    MAX_INSTALLED_BYTES >> 20
                )));
            }
        }
    }
    Ok(())
}

/// Copies one regular file the tool wrote (never through a link).
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if std::fs::symlink_metadata(from).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(to);
        std::fs::copy(from, to).map_err(setup)?;
    }
    Ok(())
}

fn shorten(text: &str) -> String {
    shorten_to(text, 120)
}

fn shorten_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

/// First line of `program args` if it exits 0 within 20 s.
fn probe(program: &Path, args: &[&str]) -> Option<String> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).env_remove("PIP_FIND_LINKS");
    match run_with_timeout(cmd, Duration::from_secs(20)) {
        Ok(Some((status, out))) if status.success() => out
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(PackageError::Rejected(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn plain_requirements_pass() {
        let got = parse_requirements(
            "# pinned\nmarkdown==3.7\n\nrequests[socks] >=2.0, <3  # comment\nattrs; python_version >= \"3.8\"\n",
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], "markdown==3.7");
    }

    #[test]
    fn hostile_requirements_are_refused_naming_the_line() {
        for line in [
            "-e git+https://example.com/x.git#egg=x",
            "--index-url http://127.0.0.1:9/simple",
            "--extra-index-url http://127.0.0.1:9/simple",
            "-i http://127.0.0.1:9/simple",
            "-r other.txt",
            "-c constraints.txt",
            "--find-links /etc",
            "file:///etc/passwd",
            "/etc/passwd",
            "./local",
            "pkg @ https://example.com/pkg.whl",
            "git+https://example.com/x.git",
            "pkg==1.0 \\",
            "pkg==1.0 --hash=sha256:abc",
            "pkg === ",
        ] {
            let msg = rejected(parse_requirements(&format!("markdown==3.7\n{line}\n")));
            assert!(msg.contains("line 2"), "{line}: {msg}");
        }
    }

    #[test]
    fn package_json_keeps_only_registry_dependencies() {
        let out = sanitise_package_json(
            r#"{"name":"x","scripts":{"postinstall":"touch /x"},"dependencies":{"left-pad":"1.3.0","@scope/a":"^1.2"},"devDependencies":{"evil":"file:../../"}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(!out.contains("scripts") && !out.contains("evil"), "{out}");
        assert!(out.contains("left-pad"));
        assert!(sanitise_package_json(r#"{"dependencies":{}}"#)
            .unwrap()
            .is_none());
        for spec in [
            "file:../../",
            "link:../x",
            "git+https://example.com/x.git",
            "git://example.com/x",
            "github:user/repo",
            "user/repo",
            "https://example.com/x.tgz",
            "http://127.0.0.1:9/x.tgz",
            "npm:other@1",
            "workspace:*",
            "../x",
        ] {
            let text = format!(r#"{{"dependencies":{{"x":"{spec}"}}}}"#);
            let msg = rejected(sanitise_package_json(&text));
            assert!(msg.contains("x:"), "{spec}: {msg}");
        }
        rejected(sanitise_package_json(r#"{"dependencies":{"../x":"1"}}"#));
        rejected(sanitise_package_json(
            r#"{"optionalDependencies":{"y":"file:/etc"}}"#,
        ));
    }

    #[test]
    fn cargo_toml_refuses_other_sources() {
        let ok = check_cargo_toml(
            "[package]\nname='f'\nversion='0.1.0'\n[dependencies]\nitoa = \"=1.0.9\"\nlocal = { path = \"lib\" }\n",
        )
        .unwrap();
        assert_eq!(ok, vec!["itoa =1.0.9"]);
        for bad in [
            "[dependencies]\nx = { git = 'https://example.com/x' }\n",
            "[dependencies]\nx = { version = '1', registry = 'other' }\n",
            "[dependencies]\nx = { path = '../../etc' }\n",
            "[dependencies]\nx = { path = '/etc' }\n",
            "[patch.crates-io]\nx = { path = 'y' }\n",
            "[target.'cfg(unix)'.dependencies]\nx = { git = 'https://example.com/x' }\n",
        ] {
            rejected(check_cargo_toml(bad));
        }
        assert!(build_key("[package]\nname='f'\nbuild='b.rs'\n"));
        assert!(!build_key("[package]\nname='f'\nbuild=false\n"));
    }

    #[test]
    fn go_mod_requirements() {
        let mods = go_requirements(
            "module m\n\ngo 1.22\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/b v0.2.0 // indirect\n)\nrequire example.com/c v1.1.0\n",
        )
        .unwrap();
        assert_eq!(mods.len(), 3);
        rejected(go_requirements(
            "module m\nreplace example.com/a => ../../etc\n",
        ));
        go_requirements("module m\nreplace example.com/a => ./a\n").unwrap();
    }

    #[test]
    fn cargo_versions() {
        assert_eq!(cargo_minor("cargo 1.65.0 (xyz)"), Some(65));
        assert_eq!(cargo_minor("cargo 1.95.0"), Some(95));
    }
}
