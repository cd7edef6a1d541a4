//! Functions that run with a host runtime: PHP (no WASI build of PHP is
//! reachable), and JavaScript or Python when the operator asks for the
//! native runtimes (`--native-js`, `--native-python`). Every call runs
//! inside bubblewrap:
//!
//! - new user, network, PID, IPC, UTS and cgroup namespaces: no network (not
//!   even the host's loopback), no view of the host's processes;
//! - a root holding only read-only binds of `/usr` (and the `/lib*`, `/bin`
//!   links), the runtime's config (`/etc/php`), a fresh `/proc`, a fresh
//!   read-only `/dev` (so no `/dev/shm` to fill), a size-capped tmpfs as
//!   `/tmp` (also the working directory and `HOME`: the only writable place),
//!   and the script, read-only at `/faas/code.<ext>`, copied in through a
//!   pipe: nothing of the function store, the host's `/etc` or `/proc`;
//! - a cleared environment (`PATH`, `HOME`, `TMPDIR`, `LANG`,
//!   `FAAS_FUNCTION`, `FAAS_REQUEST_ID`);
//! - when the worker is root, the uid/gid of its slot (`--native-uid-base` +
//!   worker id), so no call can touch another's files or processes and
//!   `RLIMIT_NPROC` bounds one call; a crashed worker's leftovers are killed
//!   when its replacement starts ([`NativeRunner::new`]);
//! - rlimits: CPU seconds, data size (the memory cap), file size, open
//!   files, processes, no core dumps;
//! - `--die-with-parent`, and the whole process group killed when the call
//!   ends or its deadline passes; every process the call left (bubblewrap's
//!   own forked child included) is reaped before the next call
//!   ([`crate::reap`]);
//! - stdout and stderr capped.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faas_proto::{FailureKind, Lang};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};

use crate::child::{capture, wait_until, Ended};
use crate::wasm::RunOutput;

/// The bubblewrap binary.
pub const BWRAP: &str = "/usr/bin/bwrap";

/// `PATH` inside the sandbox (and of bubblewrap itself).
const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long a call's leftover processes get to die once killed.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// How long the call's output may still be read after its group was
/// killed; a process that escaped the group and holds the pipe open costs
/// the call its output, not the worker.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// How far the file-size rlimit sits above the `/tmp` size.
const FSIZE_MARGIN: u64 = 1024 * 1024;

/// php's settings for every call.
const PHP_ARGS: &[&str] = &[
    "-d",
    "display_errors=stderr",
    "-d",
    "log_errors=0",
    // Memory outside the caps: System V shared memory and message queues
    // live in the call's IPC namespace, not in its data rlimit (shmmax is
    // the host's, unbounded), and FFI reaches memfd_create and mmap.
    "-d",
    "disable_functions=shmop_open,shm_attach,msg_get_queue",
    "-d",
    "ffi.enable=0",
];

/// Limits of one native call.
#[derive(Debug, Clone)]
pub struct NativeLimits {
    pub timeout: Duration,
    pub max_memory_bytes: u64,
    pub max_output_bytes: usize,
    /// Size of the call's `/tmp` (a tmpfs): a write past it gets ENOSPC.
    pub max_tmp_bytes: u64,
    pub max_open_files: u64,
    pub max_processes: u64,
}

/// Why a native call could not run.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The Server found no usable runtime for the language.
    #[error("no {} runtime on this worker: install {} (`make toolchains` does), or point {} at one, then restart the server", .0.program, .0.package, .0.variable)]
    MissingRuntime(Runtime),
    #[error("{0} functions do not run as native processes")]
    NotNative(Lang),
    #[error("native functions cannot be confined on this worker: {0}; install bubblewrap and enable unprivileged user namespaces, or start the server with --allow-unconfined-native")]
    NoSandbox(String),
    #[error("cannot prepare the call: {0}")]
    Setup(std::io::Error),
}

impl NativeError {
    /// How the failure is reported: what the operator must install or
    /// enable, or a fault of the worker.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::MissingRuntime(_) => FailureKind::RuntimeMissing,
            Self::NoSandbox(_) => FailureKind::SandboxUnavailable,
            Self::NotNative(_) | Self::Setup(_) => FailureKind::Internal,
        }
    }
}

/// A host runtime, as an operator installs it.
#[derive(Debug, Clone, Copy)]
pub struct Runtime {
    /// The program's name.
    pub program: &'static str,
    /// What provides it (Debian).
    pub package: &'static str,
    /// The Server's variable that names its path.
    pub variable: &'static str,
}

impl Runtime {
    /// The runtime native `lang` functions need (`None`: the language
    /// never runs natively).
    pub fn of(lang: Lang) -> Option<Self> {
        let (program, package, variable) = match lang {
            Lang::Js => ("node", "nodejs", "FAAS_NODE"),
            Lang::Python => ("python3", "python3", "FAAS_PYTHON"),
            Lang::Php => ("php", "php-cli", "FAAS_PHP"),
            _ => return None,
        };
        Some(Self {
            program,
            package,
            variable,
        })
    }
}

/// One native call: the script, its input and its extra variables.
#[derive(Debug, Clone, Copy)]
pub struct NativeCall<'a> {
    pub lang: Lang,
    pub function_id: &'a str,
    /// The request's id: the call's `FAAS_REQUEST_ID`.
    pub request_id: &'a str,
    pub code: &'a [u8],
    pub payload: &'a [u8],
    pub env: &'a [(String, String)],
    /// Read-only files `/run/secrets/NAME`.
    pub secrets: &'a crate::wasm::SecretFiles,
    /// What the call gets besides (the outbound channel and PHP prelude).
    pub extras: &'a SandboxExtras,
}

/// Files bound into one call's sandbox and runtime arguments, for the
/// capabilities a call is granted ([`crate::outbound`]). Applied only
/// inside bubblewrap.
#[derive(Debug, Clone, Default)]
pub struct SandboxExtras {
    /// (host path, path inside the sandbox), bound read-only.
    pub binds: Vec<(PathBuf, String)>,
    /// The runtime's arguments before the script.
    pub args: Vec<String>,
}

/// How native calls are set up on this worker.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    pub node: Option<PathBuf>,
    pub python: Option<PathBuf>,
    pub php: Option<PathBuf>,
    /// The uid/gid calls run as when the worker is root.
    pub uid: u32,
    /// The bubblewrap binary ([`BWRAP`] unless the operator names another).
    pub bwrap: PathBuf,
    /// Run without bubblewrap when it cannot work here (operator's choice).
    pub allow_unconfined: bool,
}

/// The host runtimes, as the Server found them, and how calls are confined.
pub struct NativeRunner {
    config: NativeConfig,
    /// The uid/gid to run as (set when the worker is root).
    run_as: Option<(Uid, Gid)>,
    /// Why bubblewrap cannot be used here, if it cannot.
    no_sandbox: Option<String>,
}

impl NativeRunner {
    /// Sets up the runner, first killing whatever a crashed predecessor of
    /// this slot left running under its uid.
    pub fn new(config: NativeConfig) -> Self {
        let run_as = Uid::effective()
            .is_root()
            .then(|| (Uid::from_raw(config.uid), Gid::from_raw(config.uid)));
        // Orphans of a call (bubblewrap's forked child) come back to this
        // process, to be reaped after each call (see `crate::reap`).
        if let Err(err) = crate::reap::become_subreaper() {
            log::warn!("cannot become a child subreaper ({err}): a call's orphans go to PID 1");
        }
        if let Some((uid, _)) = run_as {
            kill_everything_of(uid);
        }
        let no_sandbox = probe_at(&config.bwrap, run_as, &[]).err();
        crate::reap::reap_leftovers(LEFTOVER_GRACE);
        if let Some(why) = &no_sandbox {
            log::warn!("native functions cannot run in bubblewrap here: {why}");
        }
        Self {
            config,
            run_as,
            no_sandbox,
        }
    }

    /// The runtime and its arguments for `lang`.
    fn program(&self, lang: Lang) -> Result<(&Path, &'static [&'static str]), NativeError> {
        let (configured, args): (_, &'static [&'static str]) = match lang {
            Lang::Js => (&self.config.node, &[]),
            // -I: ignore PYTHON* variables and the user's site-packages.
            Lang::Python => (&self.config.python, &["-I"]),
            Lang::Php => (&self.config.php, PHP_ARGS),
            other => return Err(NativeError::NotNative(other)),
        };
        match (configured, Runtime::of(lang)) {
            (Some(program), _) => Ok((program.as_path(), args)),
            (None, Some(runtime)) => Err(NativeError::MissingRuntime(runtime)),
            (None, None) => Err(NativeError::NotNative(lang)),
        }
    }

    /// Runs a call's script with its payload on stdin.
    pub fn run(
        &self,
        call: &NativeCall<'_>,
        limits: &NativeLimits,
    ) -> Result<RunOutput, NativeError> {
        let started = Instant::now();
        let NativeCall {
            lang,
            function_id,
            request_id,
            code,
            payload,
            env: extra,
            extras,
            secrets,
        } = *call;
        // The sandbox first: without it nothing native runs, whatever
        // runtime is there (and the Server passes none it cannot confine).
        if let (Some(why), false) = (&self.no_sandbox, self.config.allow_unconfined) {
            return Err(NativeError::NoSandbox(why.clone()));
        }
        let (program, args) = self.program(lang)?;
        let mut env = vec![
            ("FAAS_FUNCTION", function_id.to_string()),
            ("FAAS_REQUEST_ID", request_id.to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let file = lang.source_file();
        // What the sandbox reads through pipes, in fd order from 3: the
        // script, then each secret (never a file on the host's disk).
        let mut data: Vec<Vec<u8>> = Vec::new();
        let (mut cmd, script, scratch) = match &self.no_sandbox {
            None => {
                data.push(code.to_vec());
                data.extend(secrets.0.iter().map(|(_, value)| value.to_vec()));
                let names: Vec<&str> = secrets.0.iter().map(|(n, _)| n.as_str()).collect();
                let mut cmd =
                    bwrap_command(&self.config.bwrap, program, lang, &env, limits, &names, extras);
                cmd.args(args).args(&extras.args);
                (cmd, Path::new("/faas").join(&file), None)
            }
            // The operator accepted unconfined native calls (else the
            // call was refused above): there is no private /run to put
            // secrets in.
            Some(_) if !secrets.0.is_empty() => {
                return Err(NativeError::Setup(std::io::Error::other(
                    "secrets (/run/secrets) need the bubblewrap sandbox; this worker runs native functions unconfined",
                )))
            }
            Some(_) => {
                let dir = Scratch::create(self.run_as, lang, code).map_err(NativeError::Setup)?;
                let mut cmd = unconfined_command(program, &dir.path, &env);
                cmd.args(args);
                (cmd, dir.path.join(&file), Some(dir))
            }
        };
        cmd.arg(script);
        let pipes = data
            .iter()
            .map(|_| nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NativeError::Setup(e.into()))?;
        let read_fds: Vec<i32> = pipes.iter().map(|(read, _)| read.as_raw_fd()).collect();
        confine(&mut cmd, limits, self.run_as, read_fds);
        let mut child = cmd.spawn().map_err(NativeError::Setup)?;
        for ((read, write), bytes) in pipes.into_iter().zip(data) {
            drop(read);
            feed(write, bytes);
        }
        let input = payload.to_vec();
        feed_stdin(&mut child, input);
        let stdout = capture(child.stdout.take().expect("piped"), limits.max_output_bytes);
        let stderr = capture(child.stderr.take().expect("piped"), limits.max_output_bytes);
        let ended = wait_until(&mut child, started + limits.timeout).map_err(NativeError::Setup);
        // Whatever the call left (the sandbox's PID 1, which bubblewrap
        // forked, or escaped processes), reparented to this subreaper: no
        // zombie survives the call, even when waiting failed.
        crate::reap::reap_leftovers(LEFTOVER_GRACE);
        let ended = ended?;
        let (stdout, cut_out) = stdout.collect(OUTPUT_GRACE);
        let (stderr, cut_err) = stderr.collect(OUTPUT_GRACE);
        let (exit_code, trap) = exit_of(&ended);
        drop(scratch);
        Ok(RunOutput {
            exit_code,
            trap,
            stdout,
            stderr,
            truncated: cut_out || cut_err,
            timed_out: ended.timed_out,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// The bubblewrap command line around `program` (its arguments follow).
fn bwrap_command(
    bwrap: &Path,
    program: &Path,
    lang: Lang,
    env: &[(&str, String)],
    limits: &NativeLimits,
    secrets: &[&str],
    extras: &SandboxExtras,
) -> Command {
    let script = format!("/faas/{}", lang.source_file());
    let mut cmd = Command::new(bwrap);
    // bwrap's own environment becomes that of the sandbox's PID 1, which the
    // function can read at /proc/1/environ: only PATH, whatever the worker
    // was started with (`--clearenv` below only clears the function's).
    cmd.env_clear().env("PATH", SANDBOX_PATH);
    cmd.args(["--unshare-all", "--die-with-parent"]);
    // A new session keeps the function off a controlling terminal (no
    // TIOCSTI into the operator's shell). A worker under the Server leads
    // its own session, which has no terminal, so there is none to take;
    // bubblewrap's `--new-session` would also make the call's first process
    // a session leader, and the Server's reaper tells a dead worker's
    // orphans by their session (see faas_server::reaper). A worker started
    // by hand from a shell has a terminal: then the sandbox gets a session.
    if !leads_own_session() {
        cmd.arg("--new-session");
    }
    cmd.args(["--cap-drop", "ALL", "--clearenv"]);
    for (k, v) in [
        ("PATH", SANDBOX_PATH),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
    ] {
        cmd.args(["--setenv", k, v]);
    }
    for (k, v) in env {
        cmd.args(["--setenv", k, v]);
    }
    system_binds(&mut cmd);
    if lang == Lang::Php {
        cmd.args(["--ro-bind-try", "/etc/php", "/etc/php"]);
    }
    let tmp_bytes = limits.max_tmp_bytes.to_string();
    cmd.args(["--proc", "/proc", "--dev", "/dev"])
        .args(["--size", &tmp_bytes, "--tmpfs", "/tmp", "--chdir", "/tmp"])
        .args(["--dir", "/faas", "--ro-bind-data", "3", &script]);
    if !secrets.is_empty() {
        cmd.args(["--dir", "/run/secrets"]);
    }
    for (i, name) in secrets.iter().enumerate() {
        // Names are checked by the Server (no '/', no leading '.').
        cmd.args(["--perms", "0444", "--ro-bind-data"])
            .arg((4 + i).to_string())
            .arg(format!("/run/secrets/{name}"));
    }
    for (host, inside) in &extras.binds {
        cmd.arg("--ro-bind").arg(host).arg(inside);
    }
    cmd
        // Neither the sandbox's root tmpfs nor the tmpfs bwrap makes for
        // /dev (which holds /dev/shm) is a scratch space: both have no cap
        // but the host's memory. Read-only, writing there answers EROFS; the
        // device nodes (/dev/null, ...) are binds of their own and still
        // work. Only /tmp (capped) is writable.
        .args(["--remount-ro", "/dev", "--remount-ro", "/"])
        .arg("--")
        .arg(program);
    cmd
}

/// Whether this process leads its session (as a worker under the Server
/// does: it is started with `setsid`, and so has no controlling terminal).
fn leads_own_session() -> bool {
    nix::unistd::getsid(None).is_ok_and(|sid| sid == nix::unistd::getpid())
}

/// Read-only `/usr`, and `/lib*`, `/bin`, `/sbin` as they are on the host
/// (links into `/usr` on merged-usr systems, directories elsewhere). Also
/// the base of the Server's build sandbox.
pub fn system_binds(cmd: &mut Command) {
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

/// Without namespaces (`--allow-unconfined-native`): the runtime in a
/// scratch directory of its own, with a cleared environment.
fn unconfined_command(program: &Path, dir: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", SANDBOX_PATH)
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir);
    cmd
}

/// An unconfined call's working directory, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(owner: Option<(Uid, Gid)>, lang: Lang, code: &[u8]) -> std::io::Result<Self> {
        let path = nix::unistd::mkdtemp(&std::env::temp_dir().join("faas-call-XXXXXX"))?;
        let scratch = Self { path };
        std::fs::write(scratch.path.join(lang.source_file()), code)?;
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(&scratch.path, Some(uid), Some(gid))?;
        }
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Whether the bubblewrap at `bwrap` can create its namespaces here (as
/// `run_as`), with a cleared environment, and mount what every sandbox
/// mounts (`/proc`, `/dev`): some container profiles let bubblewrap create
/// namespaces but not mount a `/proc`, and a probe that stopped short
/// would pick a sandbox that then fails every call. `extra` adds what one
/// kind of sandbox needs besides (builds set a hostname).
pub fn probe_at(bwrap: &Path, run_as: Option<(Uid, Gid)>, extra: &[&str]) -> Result<(), String> {
    if !bwrap.is_file() {
        return Err(format!(
            "{} is missing (Debian: apt-get install bubblewrap)",
            bwrap.display()
        ));
    }
    let mut cmd = Command::new(bwrap);
    cmd.args(["--unshare-all", "--die-with-parent"]);
    system_binds(&mut cmd);
    cmd.args(["--proc", "/proc", "--dev", "/dev"])
        .args(extra)
        .args(["--", "/bin/sh", "-c", "exit 0"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = run_as {
        // std clears the supplementary groups when root drops to a uid.
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

/// Kills every process running as `uid` (a crashed worker's leftovers).
fn kill_everything_of(uid: Uid) {
    let killed = Command::new("/bin/kill")
        .args(["-KILL", "-1"])
        .uid(uid.as_raw())
        .gid(uid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(err) = killed {
        log::warn!("cannot clear the processes of uid {uid}: {err}");
    }
}

/// Most pipes a native call reads data from: the script and the secrets
/// (the Server allows 64 per function).
const MAX_DATA_FDS: usize = 1 + 64;

/// Applies the rlimits, drops to `run_as`, and puts the data pipes (the
/// script's, then the secrets') at fds 3, 4, ..., in the child before exec.
fn confine(
    cmd: &mut Command,
    limits: &NativeLimits,
    run_as: Option<(Uid, Gid)>,
    data_fds: Vec<i32>,
) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let cpu_seconds = limits.timeout.as_secs() + 1;
    let rlimits = [
        (Resource::RLIMIT_CPU, cpu_seconds),
        (Resource::RLIMIT_DATA, limits.max_memory_bytes),
        // Above the tmpfs's size, so that filling /tmp gets ENOSPC and the
        // function can go on (at the same size, SIGXFSZ killed it first).
        (Resource::RLIMIT_FSIZE, limits.max_tmp_bytes + FSIZE_MARGIN),
        (Resource::RLIMIT_NOFILE, limits.max_open_files),
        (Resource::RLIMIT_NPROC, limits.max_processes),
        (Resource::RLIMIT_CORE, 0),
    ];
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (dup2, fcntl, setrlimit,
    // setgroups, setgid, setuid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // First every source above the target range (one may sit in
            // it), then each into place: dup2 leaves the targets open across
            // exec. A fixed array: nothing is allocated after fork.
            let count = data_fds.len().min(MAX_DATA_FDS);
            let above = 3 + MAX_DATA_FDS as i32;
            let mut moved = [0; MAX_DATA_FDS];
            for (slot, fd) in moved.iter_mut().zip(&data_fds) {
                *slot = nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(above))?;
            }
            for (i, fd) in moved[..count].iter().enumerate() {
                nix::unistd::dup2(*fd, 3 + i as i32)?;
            }
            for (resource, limit) in rlimits {
                setrlimit(resource, limit, limit)?;
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

/// Writes `bytes` to `pipe` on a thread, then closes it.
fn feed(pipe: OwnedFd, bytes: Vec<u8>) {
    std::thread::spawn(move || {
        let _ = std::fs::File::from(pipe).write_all(&bytes);
    });
}

/// Gives the child its stdin on a thread. A function that never reads its
/// stdin gets EPIPE here: fine.
fn feed_stdin(child: &mut Child, bytes: Vec<u8>) {
    let mut stdin = child.stdin.take().expect("piped");
    std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
}

/// The exit code, and a description when a signal ended the process.
fn exit_of(ended: &Ended) -> (i32, Option<String>) {
    use std::os::unix::process::ExitStatusExt;
    match (ended.status.code(), ended.status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) if ended.timed_out => (128 + sig, None),
        (None, Some(sig)) => (128 + sig, Some(describe_signal(sig))),
        (None, None) => (1, Some("ended abnormally".into())),
    }
}

fn describe_signal(sig: i32) -> String {
    let name = Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"));
    if sig == Signal::SIGXCPU as i32 {
        format!("killed by {name}: CPU time limit reached")
    } else {
        format!("killed by {name}")
    }
}
