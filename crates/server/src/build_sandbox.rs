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
//! One explicit exception to "no network": a package install step
//! ([`ToolRun::network`], `pip`, `npm`, `cargo fetch`, `go mod download`)
//! must reach the registries. It keeps everything else above (build uid,
//! cleared environment, rlimits, private `/proc`, read-only system) and
//! gains the host's network namespace plus the few `/etc` files name
//! resolution and TLS read; the compile step after it stays networkless.
//!
//! Where bubblewrap cannot create namespaces (many container profiles),
//! builds are confined with Landlock instead (unprivileged, kernel >= 5.13):
//! the tool runs directly as the build uid, with the same environment and
//! rlimits, and may read only the toolchain directories, execute nothing
//! else, and write only to its private directory (which is also its
//! `TMPDIR`); it may neither open the host's `/proc` nor make TCP
//! connections, nor signal processes outside it (where the kernel's
//! Landlock has those rights). `--build-sandbox` picks one of the two.
//! When neither works here, builds are refused with the cause (503),
//! unless the operator passed `--allow-unconfined-build`: then the tools run
//! directly, still with the cleared environment, the build uid, the rlimits
//! and the private scratch directory.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use faas_worker::native::{probe_at, system_binds};
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
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

/// Which confinement the operator asks for (`--build-sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxKind {
    /// bubblewrap where it works, else Landlock.
    Auto,
    Bwrap,
    Landlock,
}

/// How builds are confined on this machine.
#[derive(Debug, Clone)]
pub struct BuildSandboxConfig {
    pub kind: SandboxKind,
    /// The bubblewrap binary (`--bwrap`, `FAAS_BWRAP`; `/usr/bin/bwrap` by
    /// default), the one native calls use too.
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
    /// Reach the network (package installs only, never a compile): the
    /// host's network namespace, and the files resolvers and TLS read.
    pub network: bool,
}

/// What a networked install step reads besides the system: name
/// resolution and the CA certificates (nothing else of `/etc`).
pub const NETWORK_ETC: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
];

/// How tools are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    Bubblewrap,
    Landlock,
    /// By the operator's choice (`--allow-unconfined-build`).
    Unconfined,
}

/// Builds confined with bubblewrap or Landlock, or (by the operator's
/// choice) without.
#[derive(Debug)]
pub struct BuildSandbox {
    config: BuildSandboxConfig,
    /// The uid/gid builds switch to (set when the Server is root).
    run_as: Option<(Uid, Gid)>,
    /// `Err`: why builds are refused.
    confinement: Result<Confinement, String>,
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
    /// Prepares the build root and picks the confinement that works here
    /// (bubblewrap as the build uid, else Landlock); logs the choice.
    pub fn new(config: BuildSandboxConfig) -> Self {
        let run_as = Uid::effective()
            .is_root()
            .then(|| (Uid::from_raw(config.uid), Gid::from_raw(config.uid)));
        let confinement = prepare_root(&config.root)
            .map_err(|err| {
                format!(
                    "the build directory {} cannot be used: {err}",
                    config.root.display()
                )
            })
            .and_then(|()| choose(&config, run_as));
        match (&confinement, run_as) {
            (Ok(Confinement::Unconfined), _) => {}
            (Ok(how), Some((uid, _))) => {
                log::info!(target: PART, "builds run confined by {how:?} as uid {uid}, in {}", config.root.display())
            }
            (Ok(how), None) => {
                log::info!(target: PART, "builds run confined by {how:?}, in {}", config.root.display())
            }
            (Err(why), _) => log::warn!(target: PART, "{why}"),
        }
        Self {
            config,
            run_as,
            confinement,
        }
    }

    /// Why builds are refused here, if they are.
    pub fn blocked(&self) -> Option<&str> {
        self.confinement.as_ref().err().map(String::as_str)
    }

    /// Whether tools run in bubblewrap (paths inside differ from the host's).
    pub fn confined(&self) -> bool {
        self.confinement == Ok(Confinement::Bubblewrap)
    }

    /// Our own helper (`worker check`, `worker compile`) processing a
    /// deploy's input: not in bubblewrap (it reads the runtimes and writes
    /// the artifact into the staging directory), but with the cleared
    /// environment and the build rlimits.
    pub fn trusted_command(&self, program: &Path, timeout: Duration) -> Command {
        let mut cmd = Command::new(program);
        clear_env(&mut cmd);
        self.limit(&mut cmd, timeout, None, None, None);
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

    /// A directory only the build uid may use, under `<build
    /// root>/cache/<uid>` (0711, the Server's), created when missing: a package download
    /// cache that install steps write and the Server never reads for code.
    pub fn build_cache_dir(&self, name: &str) -> std::io::Result<PathBuf> {
        let parent = self.shared_dir("cache")?;
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o711))?;
        // One set per build uid: servers sharing a build root (tests, or
        // several on one host) each own theirs.
        let owner = match self.run_as {
            Some((uid, _)) => uid.to_string(),
            None => "self".to_string(),
        };
        let parent = parent.join(owner);
        match std::fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if !std::fs::symlink_metadata(&parent)?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                parent.display()
            )));
        }
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o711))?;
        let path = parent.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Never a link planted there: the bind would follow it.
        if !std::fs::symlink_metadata(&path)?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                path.display()
            )));
        }
        if let Some((uid, gid)) = self.run_as {
            nix::unistd::chown(&path, Some(uid), Some(gid))?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(path)
    }

    /// Where a writable bind of `host` appears to the tool: `guest` inside
    /// bubblewrap, the host path itself otherwise.
    pub fn guest_path(&self, host: &Path, guest: &str) -> PathBuf {
        if self.confined() {
            PathBuf::from(guest)
        } else {
            host.to_path_buf()
        }
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
        let ruleset = match self.confinement {
            Ok(Confinement::Landlock) => Some(landlock_rules(job, tool)),
            _ => None,
        };
        self.limit(&mut cmd, timeout, run_as, tool.umask, ruleset);
        cmd
    }

    /// `/tmp` inside the sandbox; the job's own directory without one.
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
            // Not the host's name (the UTS namespace starts with it).
            "--hostname",
            "faas-build",
        ]);
        if tool.network {
            // Only the network namespace is shared back: PID, IPC, UTS and
            // the user namespace stay private.
            cmd.arg("--share-net");
        }
        system_binds(&mut cmd);
        for dir in &tool.tool_dirs {
            cmd.arg("--ro-bind").arg(dir).arg(dir);
        }
        for path in tool.etc.iter().chain(network_etc(tool)) {
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

    /// The rlimits, the uid switch, the umask and the Landlock ruleset
    /// (built here, before the fork), in the child before exec.
    fn limit(
        &self,
        cmd: &mut Command,
        timeout: Duration,
        run_as: Option<(Uid, Gid)>,
        umask: Option<u32>,
        ruleset: Option<Result<RulesetCreated, landlock::RulesetError>>,
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
        // A ruleset that could not be built refuses the run (in the child,
        // where the error surfaces as the spawn's error).
        let mut ruleset = ruleset.map(|r| r.map_err(|e| e.to_string()));
        if let Some(Err(err)) = &ruleset {
            log::error!(target: PART, "cannot build the Landlock ruleset: {err}");
        }
        // SAFETY: runs in the forked child before exec and only makes
        // async-signal-safe system calls (setrlimit, umask, setgroups,
        // setgid, setuid, prctl, landlock_restrict_self); everything it
        // uses was built before the fork, and its errors allocate nothing.
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
                match ruleset.take() {
                    None => Ok(()),
                    Some(Ok(rules)) => match rules.restrict_self() {
                        Ok(status) if status.ruleset != RulesetStatus::NotEnforced => Ok(()),
                        _ => Err(std::io::Error::from_raw_os_error(
                            nix::errno::Errno::EPERM as i32,
                        )),
                    },
                    Some(Err(_)) => Err(std::io::Error::from_raw_os_error(
                        nix::errno::Errno::EPERM as i32,
                    )),
                }
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

/// Picks bubblewrap or Landlock as `--build-sandbox` asks and as works
/// here; without either, runs unconfined only if the operator allowed it.
fn choose(config: &BuildSandboxConfig, run_as: Option<(Uid, Gid)>) -> Result<Confinement, String> {
    let bwrap = match config.kind {
        SandboxKind::Landlock => Err("not chosen (--build-sandbox landlock)".to_string()),
        // With what a build adds: a hostname (its own UTS namespace) and
        // dropped capabilities.
        _ => probe_at(
            &config.bwrap,
            run_as,
            &[
                "--new-session",
                "--cap-drop",
                "ALL",
                "--hostname",
                "faas-build",
            ],
        ),
    };
    let landlock = match (config.kind, &bwrap) {
        (SandboxKind::Bwrap, _) => Err("not chosen (--build-sandbox bwrap)".to_string()),
        (SandboxKind::Auto, Ok(())) => Err("not needed".to_string()),
        _ => probe_landlock(),
    };
    match (bwrap, landlock) {
        (Ok(()), _) => Ok(Confinement::Bubblewrap),
        (Err(why), Ok(())) => {
            if config.kind == SandboxKind::Auto {
                log::info!(target: PART, "bubblewrap cannot confine builds here ({why}): using Landlock");
            }
            Ok(Confinement::Landlock)
        }
        (Err(bwrap), Err(landlock)) if config.allow_unconfined => {
            log::warn!(target: PART, "compilers run WITHOUT a sandbox (--allow-unconfined-build): a hostile deploy can read every file the build uid can (bubblewrap: {bwrap}; Landlock: {landlock})");
            Ok(Confinement::Unconfined)
        }
        (Err(bwrap), Err(landlock)) => Err(format!(
            "compiles cannot be confined on this server: bubblewrap cannot create namespaces ({bwrap}) and Landlock is unavailable ({landlock}); enable unprivileged user namespaces or Landlock, or start the server with --allow-unconfined-build"
        )),
    }
}

/// Whether this kernel enforces Landlock's first file-system rights.
fn probe_landlock() -> Result<(), String> {
    let abi = ABI::V1;
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.create())
        .map(drop)
        .map_err(|e| format!("Landlock: {e}"))
}

/// The Landlock rules of one run: read and execute the system and toolchain
/// directories, read and write the job's directory (and a trusted step's
/// writable directories) and `/dev/null`; nothing else, no TCP, no signal
/// or abstract socket outside. Rights the kernel lacks are dropped (best
/// effort); the file-system ones every Landlock kernel has.
fn landlock_rules(
    job: &BuildJob,
    tool: &ToolRun,
) -> Result<RulesetCreated, landlock::RulesetError> {
    let abi = ABI::V6;
    let system = [
        "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
    ]
    .iter()
    .map(PathBuf::from);
    let readable: Vec<PathBuf> = system
        .chain(tool.tool_dirs.iter().cloned())
        .chain(tool.etc.iter().chain(network_etc(tool)).map(PathBuf::from))
        .filter(|p| p.exists())
        .collect();
    let writable: Vec<PathBuf> = std::iter::once(job.host().to_path_buf())
        .chain(tool.writable.iter().map(|(host, _)| host.clone()))
        .chain(["/dev/null".into()])
        .collect();
    let ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?;
    // An install step's TCP is left unhandled (so allowed); a compile's is
    // denied.
    let ruleset = if tool.network {
        ruleset
    } else {
        ruleset.handle_access(AccessNet::from_all(abi))?
    };
    ruleset
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(readable, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))
}

/// The `/etc` files a networked run reads ([`NETWORK_ETC`]), none otherwise.
fn network_etc(tool: &ToolRun) -> impl Iterator<Item = &&'static str> {
    NETWORK_ETC.iter().filter(|_| tool.network)
}

/// Starts `cmd` with a worker's environment only (PATH, the locale, the log
/// settings): a helper process never inherits the Server's variables
/// (tokens, store credentials).
pub fn clear_env(cmd: &mut Command) {
    cmd.env_clear().envs(crate::workers::worker_environment());
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
