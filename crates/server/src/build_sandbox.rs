//! The build sandbox: every compiler and checker a deploy runs (clang,
//! rustc, go, `php -l`) is hostile-input processing, so it runs in
//! bubblewrap, as the build uid, seeing only what it needs:
//!
//! - read-only `/usr` (and the `/lib*`, `/bin` links), the toolchain's own
//!   directory when it lives elsewhere (a `GOROOT`, `/opt/wasi-sdk`), and
//!   the few `/etc` files a tool reads (`/etc/php`);
//! - a private scratch directory at `/build` holding a copy of the
//!   function's sources (never the store, never another function), where
//!   the output is written and copied out by the Server;
//! - a private, size-capped tmpfs as `/tmp` (crash reproducers, temporary
//!   objects), a fresh `/proc` (new PID namespace: no view of the Server's
//!   `/proc/PID/environ` or `cmdline`) and `/dev`;
//! - no network, a cleared environment (PATH, HOME, TMPDIR, LANG and the
//!   tool's own variables; never a `FAAS_*` value);
//! - rlimits: data size (`--compile-memory-mb`), CPU seconds, file size,
//!   processes (when the Server can switch uid), open files, no core dumps;
//!   and the caller's wall-clock timeout kills the whole sandbox.
//!
//! When bubblewrap cannot create namespaces here, builds are refused with
//! the cause (503), unless the operator passed `--allow-unconfined-build`:
//! then the tools run directly, still with the cleared environment, the
//! build uid, the rlimits and the private scratch directory.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};

const PART: &str = "SERVER";

/// Where the function's sources and outputs appear inside the sandbox.
pub const GUEST_DIR: &str = "/build";

/// The largest file a compile may write (objects, the module).
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// The private `/tmp` of a compile.
const TMP_BYTES: u64 = 256 * 1024 * 1024;
/// Processes and threads of the build uid at once (only enforced when the
/// Server runs as root and builds get a uid of their own).
const MAX_PROCESSES: u64 = 512;
const MAX_OPEN_FILES: u64 = 1024;
/// Job directories older than this are a crashed Server's leftovers.
const STALE_JOB_AGE: Duration = Duration::from_secs(24 * 3600);

/// How builds are confined on this machine.
#[derive(Debug, Clone)]
pub struct BuildSandboxConfig {
    /// The bubblewrap binary (`FAAS_BWRAP` overrides `/usr/bin/bwrap`).
    pub bwrap: PathBuf,
    /// Holds one private directory per running build (`--build-dir`).
    pub root: PathBuf,
    /// The uid/gid builds run as when the Server is root.
    pub uid: u32,
    /// The data-size rlimit of every build process.
    pub memory_bytes: u64,
    /// Run tools without bubblewrap when it cannot work here.
    pub allow_unconfined: bool,
}

/// One tool run inside the sandbox.
#[derive(Debug, Default)]
pub struct ToolRun {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The tool's own variables (added to PATH, HOME, TMPDIR, LANG).
    pub env: Vec<(String, OsString)>,
    /// Toolchain directories outside `/usr`, bound read-only at their own
    /// path.
    pub tool_dirs: Vec<PathBuf>,
    /// Host files or directories the tool needs, bound read-only at their
    /// own path when they exist (e.g. `/etc/php`).
    pub etc: Vec<&'static str>,
    /// Extra writable binds (host, guest), for the Server's own trusted
    /// steps only (the Go cache warm-up); never for a function's build.
    pub writable: Vec<(PathBuf, PathBuf)>,
    /// The umask of the tool (files a trusted step writes for others).
    pub umask: Option<u32>,
    /// Run as the Server's own uid instead of the build uid (trusted steps).
    pub as_server: bool,
}

/// Builds confined with bubblewrap, or (by the operator's choice) without.
#[derive(Debug)]
pub struct BuildSandbox {
    config: BuildSandboxConfig,
    /// The uid/gid builds switch to (set when the Server is root).
    run_as: Option<(Uid, Gid)>,
    /// `Ok(true)`: bubblewrap; `Ok(false)`: unconfined by the operator's
    /// choice; `Err`: why builds are refused.
    confined: Result<bool, String>,
}

/// A build's private directory: `/build` inside the sandbox; removed with
/// everything in it when dropped.
#[derive(Debug)]
pub struct BuildJob {
    host: PathBuf,
    guest: PathBuf,
    owner: Option<(Uid, Gid)>,
}

impl BuildJob {
    /// The directory on the host (the Server reads outputs from here).
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// The directory as the tool sees it (arguments name this path).
    pub fn guest(&self) -> &Path {
        &self.guest
    }

    /// Writes a file the build will read, owned by the build uid.
    pub fn put(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.host.join(name);
        std::fs::write(&path, bytes)?;
        self.give(&path)
    }

    /// Creates a subdirectory the build may write to.
    pub fn mkdir(&self, name: &str) -> std::io::Result<PathBuf> {
        let path = self.host.join(name);
        std::fs::create_dir_all(&path)?;
        self.give(&path)?;
        Ok(path)
    }

    /// Hands `path` to the build uid.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Whether the tool's files are to be linked (root: the build uid cannot
    /// change a root-owned file through a link) or copied.
    pub fn can_share_read_only(&self) -> bool {
        self.owner.is_some()
    }
}

impl Drop for BuildJob {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.host) {
            log::warn!(target: PART, "cannot remove build directory {}: {err}", self.host.display());
        }
    }
}

impl BuildSandbox {
    /// Prepares the build root and checks that bubblewrap works as the
    /// build uid; logs how builds will be confined.
    pub fn new(config: BuildSandboxConfig) -> Self {
        let run_as = Uid::effective()
            .is_root()
            .then(|| (Uid::from_raw(config.uid), Gid::from_raw(config.uid)));
        let confined = match prepare_root(&config.root) {
            Err(err) => Err(format!(
                "the build directory {} cannot be used: {err}",
                config.root.display()
            )),
            Ok(()) => match probe(&config.bwrap, run_as) {
                Ok(()) => Ok(true),
                Err(why) if config.allow_unconfined => {
                    log::warn!(target: PART, "compilers run WITHOUT bubblewrap (--allow-unconfined-build): a hostile deploy can read every file the build uid can ({why})");
                    Ok(false)
                }
                Err(why) => Err(format!(
                    "compiles cannot be confined on this server: bubblewrap cannot create namespaces ({why}); enable unprivileged user namespaces, or start the server with --allow-unconfined-build"
                )),
            },
        };
        match (&confined, run_as) {
            (Ok(true), Some((uid, _))) => {
                log::info!(target: PART, "builds run in bubblewrap as uid {uid}, in {}", config.root.display())
            }
            (Ok(true), None) => {
                log::info!(target: PART, "builds run in bubblewrap, in {}", config.root.display())
            }
            (Ok(false), _) => {}
            (Err(why), _) => log::warn!(target: PART, "{why}"),
        }
        Self {
            config,
            run_as,
            confined,
        }
    }

    /// Why builds are refused here, if they are.
    pub fn blocked(&self) -> Option<&str> {
        self.confined.as_ref().err().map(String::as_str)
    }

    /// Whether tools run in bubblewrap (paths inside differ from the host's).
    pub fn confined(&self) -> bool {
        self.confined == Ok(true)
    }

    /// Our own helper (`worker check`, `worker compile`) processing a
    /// deploy's input: not in bubblewrap (it reads the runtimes and writes
    /// the artifact into the staging directory), but with the cleared
    /// environment and the build rlimits.
    pub fn trusted_command(&self, program: &Path, timeout: Duration) -> Command {
        let mut cmd = Command::new(program);
        clear_env(&mut cmd);
        self.limit(&mut cmd, timeout, None, None);
        cmd
    }

    /// A new private directory for one build.
    pub fn job(&self) -> std::io::Result<BuildJob> {
        self.new_job(self.run_as)
    }

    /// A private directory for a trusted step that runs as the Server's
    /// own uid ([`ToolRun::as_server`]).
    pub fn server_job(&self) -> std::io::Result<BuildJob> {
        self.new_job(None)
    }

    fn new_job(&self, owner: Option<(Uid, Gid)>) -> std::io::Result<BuildJob> {
        let host = nix::unistd::mkdtemp(&self.config.root.join("job-XXXXXX"))?;
        let job = BuildJob {
            guest: if self.confined() {
                PathBuf::from(GUEST_DIR)
            } else {
                host.clone()
            },
            host,
            owner,
        };
        job.give(&job.host)?;
        Ok(job)
    }

    /// A directory of the Server's own under the build root (e.g. the
    /// trusted Go cache), created when missing.
    pub fn shared_dir(&self, name: &str) -> std::io::Result<PathBuf> {
        let path = self.config.root.join(name);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }

    /// The command that runs `tool` for `job`, confined; run it with
    /// [`crate::toolchain::run_with_timeout`].
    pub fn command(&self, job: &BuildJob, tool: &ToolRun, timeout: Duration) -> Command {
        let mut cmd = if self.confined() {
            self.bwrap_command(job, tool)
        } else {
            let mut cmd = Command::new(&tool.program);
            cmd.args(&tool.args).current_dir(job.host());
            cmd
        };
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", job.guest())
            .env("TMPDIR", self.tmp_dir(job))
            .env("LANG", "C.UTF-8")
            .envs(tool.env.iter().map(|(k, v)| (k, v)));
        let run_as = (!tool.as_server).then_some(self.run_as).flatten();
        self.limit(&mut cmd, timeout, run_as, tool.umask);
        cmd
    }

    /// `/tmp` inside the sandbox; a directory in the job without one.
    fn tmp_dir(&self, job: &BuildJob) -> PathBuf {
        if self.confined() {
            PathBuf::from("/tmp")
        } else {
            job.host().to_path_buf()
        }
    }

    fn bwrap_command(&self, job: &BuildJob, tool: &ToolRun) -> Command {
        let mut cmd = Command::new(&self.config.bwrap);
        cmd.args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
        system_binds(&mut cmd);
        for dir in &tool.tool_dirs {
            cmd.arg("--ro-bind").arg(dir).arg(dir);
        }
        for path in &tool.etc {
            cmd.args(["--ro-bind-try", path, path]);
        }
        let tmp_bytes = TMP_BYTES.to_string();
        cmd.args(["--proc", "/proc", "--dev", "/dev"])
            .args(["--size", &tmp_bytes, "--tmpfs", "/tmp"])
            .arg("--bind")
            .arg(job.host())
            .arg(GUEST_DIR);
        for (host, guest) in &tool.writable {
            cmd.arg("--bind").arg(host).arg(guest);
        }
        // Nothing but /build and /tmp is writable.
        cmd.args(["--remount-ro", "/", "--chdir", GUEST_DIR, "--"])
            .arg(&tool.program)
            .args(&tool.args);
        cmd
    }

    /// The rlimits, the uid switch and the umask, in the child before exec.
    fn limit(
        &self,
        cmd: &mut Command,
        timeout: Duration,
        run_as: Option<(Uid, Gid)>,
        umask: Option<u32>,
    ) {
        cmd.stdin(Stdio::null());
        let mut rlimits = vec![
            (Resource::RLIMIT_DATA, self.config.memory_bytes),
            (Resource::RLIMIT_CPU, timeout.as_secs() + 1),
            (Resource::RLIMIT_FSIZE, MAX_FILE_BYTES),
            (Resource::RLIMIT_NOFILE, MAX_OPEN_FILES),
            (Resource::RLIMIT_CORE, 0),
        ];
        // Counted per real uid: only meaningful for a uid of the builds' own.
        if run_as.is_some() {
            rlimits.push((Resource::RLIMIT_NPROC, MAX_PROCESSES));
        }
        // SAFETY: runs in the forked child before exec and only makes
        // async-signal-safe system calls (setrlimit, umask, setgroups,
        // setgid, setuid); the vector was built before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for &(resource, limit) in &rlimits {
                    setrlimit(resource, limit, limit)?;
                }
                if let Some(mask) = umask {
                    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
                }
                if let Some((uid, gid)) = run_as {
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                }
                Ok(())
            });
        }
    }

    /// Whether the build uid can read `dir` (every ancestor searchable by
    /// others, the directory itself readable): a toolchain under `/root`
    /// cannot be bound into a sandbox that bubblewrap sets up as that uid.
    pub fn readable_by_builds(&self, dir: &Path) -> bool {
        if self.run_as.is_none() {
            return true;
        }
        let Ok(dir) = dir.canonicalize() else {
            return false;
        };
        let others = |p: &Path, bits: u32| {
            p.metadata()
                .map(|m| m.permissions().mode() & bits == bits)
                .unwrap_or(false)
        };
        dir.ancestors().skip(1).all(|a| others(a, 0o001)) && others(&dir, 0o005)
    }
}

/// Starts `cmd` with only PATH, LANG and the log level: a helper process
/// never inherits the Server's variables (tokens, store credentials).
pub fn clear_env(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8");
    if let Some(level) = std::env::var_os("RUST_LOG") {
        cmd.env("RUST_LOG", level);
    }
}

/// Read-only `/usr`, and `/lib*`, `/bin`, `/sbin` as they are on the host.
fn system_binds(cmd: &mut Command) {
    cmd.args(["--ro-bind", "/usr", "/usr"]);
    for dir in ["/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"] {
        match std::fs::read_link(dir) {
            Ok(target) => {
                cmd.arg("--symlink").arg(target).arg(dir);
            }
            Err(_) if Path::new(dir).is_dir() => {
                cmd.args(["--ro-bind", dir, dir]);
            }
            Err(_) => {}
        }
    }
}

/// Creates the build root (0711: the build uid may enter its own job
/// directory but list nothing), refusing one that is not a directory of
/// ours (a link planted in a shared `/var/tmp`), and removes job
/// directories a crashed Server left behind.
fn prepare_root(root: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(root)?;
    if !meta.is_dir() || meta.uid() != Uid::effective().as_raw() {
        return Err(std::io::Error::other(
            "it is not a directory owned by the server's user",
        ));
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))?;
    let now = SystemTime::now();
    for entry in std::fs::read_dir(root)?.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_JOB_AGE);
        if stale && entry.file_name().to_string_lossy().starts_with("job-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Whether bubblewrap can create its namespaces here (as `run_as`).
fn probe(bwrap: &Path, run_as: Option<(Uid, Gid)>) -> Result<(), String> {
    if !bwrap.is_file() {
        return Err(format!(
            "{} is missing (Debian: apt-get install bubblewrap)",
            bwrap.display()
        ));
    }
    let mut cmd = Command::new(bwrap);
    cmd.args(["--unshare-all", "--die-with-parent"]);
    system_binds(&mut cmd);
    cmd.args(["--", "/bin/sh", "-c", "exit 0"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Mirrors `from` (a trusted cache) into `to` for one build: links when the
/// build uid cannot write the Server's files through them, copies
/// otherwise, so nothing a build writes reaches the next build.
pub fn mirror(job: &BuildJob, from: &Path, to: &Path) -> std::io::Result<u64> {
    let mut files = 0;
    std::fs::create_dir_all(to)?;
    job.give(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            files += mirror(job, &entry.path(), &target)?;
        } else if kind.is_file() {
            if job.can_share_read_only() {
                std::fs::hard_link(entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
            }
            files += 1;
        }
    }
    Ok(files)
}
