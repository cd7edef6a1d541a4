//! JavaScript, Python and PHP functions run as host processes (`node`,
//! `python3`, `php`), as in the seed. They are not sandboxed like Wasm, so
//! each call is confined as far as plain Unix allows:
//!
//! - its own empty temporary working directory (also `HOME` and `TMPDIR`),
//!   removed after the call; the source is copied in, so the function needs
//!   no access to the function store;
//! - a cleared environment: `PATH`, `HOME`, `TMPDIR`, `LANG` and the
//!   platform's `FAAS_FUNCTION` / `FAAS_REQUEST_ID` only;
//! - when the worker runs as root, the function runs as `nobody` (no access
//!   to root's files, to the server's `/proc/<pid>/environ`, or to the
//!   server's directories);
//! - `setrlimit`: CPU seconds, data size (heap and anonymous mappings),
//!   file size, open files, processes, no core dumps;
//! - its own process group, killed with SIGKILL when the call ends or its
//!   deadline passes (stray background processes die with it);
//! - stdout and stderr capped (the rest is read and dropped).
//!
//! What this does *not* isolate: the host network, other world-readable
//! files, and a process that leaves its group with `setsid` (it still runs as
//! `nobody` under the CPU limit). Use Wasm languages for untrusted code.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use faas_proto::Lang;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Pid, Uid};

use crate::wasm::RunOutput;

/// Limits of one native call.
#[derive(Debug, Clone)]
pub struct NativeLimits {
    pub timeout: Duration,
    pub max_memory_bytes: u64,
    pub max_output_bytes: usize,
    pub max_file_bytes: u64,
    pub max_open_files: u64,
    pub max_processes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("no {0} runtime on this worker (install it: `make toolchains`)")]
    MissingRuntime(&'static str),
    #[error("{0} functions do not run as native processes")]
    NotNative(Lang),
    #[error("cannot prepare the call: {0}")]
    Setup(std::io::Error),
}

/// The host runtimes, as the Server found them (`--node`, `--python`,
/// `--php`).
pub struct NativeRunner {
    node: Option<PathBuf>,
    python: Option<PathBuf>,
    php: Option<PathBuf>,
    /// uid/gid to run functions as (set when the worker is root).
    run_as: Option<(Uid, Gid)>,
    scratch_root: PathBuf,
}

/// How one call's process ended.
struct Ended {
    status: ExitStatus,
    timed_out: bool,
}

impl NativeRunner {
    pub fn new(node: Option<PathBuf>, python: Option<PathBuf>, php: Option<PathBuf>) -> Self {
        let run_as = Uid::effective()
            .is_root()
            .then(|| (Uid::from_raw(65534), Gid::from_raw(65534)));
        Self {
            node,
            python,
            php,
            run_as,
            scratch_root: std::env::temp_dir(),
        }
    }

    /// The runtime, source file name and arguments for `lang`.
    fn program(&self, lang: Lang) -> Result<(&Path, &'static [&'static str]), NativeError> {
        let missing = |what| NativeError::MissingRuntime(what);
        Ok(match lang {
            Lang::Js => (self.node.as_deref().ok_or(missing("node"))?, &[]),
            // -I: ignore PYTHON* variables and the user's site-packages.
            Lang::Python => (self.python.as_deref().ok_or(missing("python3"))?, &["-I"]),
            Lang::Php => (
                self.php.as_deref().ok_or(missing("php"))?,
                &["-d", "display_errors=stderr", "-d", "log_errors=0"],
            ),
            other => return Err(NativeError::NotNative(other)),
        })
    }

    /// Runs `code` (a `lang` source file) with `payload` on stdin.
    pub fn run(
        &self,
        lang: Lang,
        function_id: &str,
        req: u64,
        code: &[u8],
        payload: &[u8],
        limits: &NativeLimits,
    ) -> Result<RunOutput, NativeError> {
        let started = Instant::now();
        let (program, args) = self.program(lang)?;
        let file = lang.source_file();
        let scratch =
            Scratch::create(&self.scratch_root, self.run_as).map_err(NativeError::Setup)?;
        std::fs::write(scratch.path.join(&file), code).map_err(NativeError::Setup)?;

        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg(&file)
            .current_dir(&scratch.path)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &scratch.path)
            .env("TMPDIR", &scratch.path)
            .env("LANG", "C.UTF-8")
            .env("FAAS_FUNCTION", function_id)
            .env("FAAS_REQUEST_ID", req.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        confine(&mut cmd, limits, self.run_as);
        let mut child = cmd.spawn().map_err(NativeError::Setup)?;

        let mut stdin = child.stdin.take().expect("piped");
        let payload = payload.to_vec();
        std::thread::spawn(move || {
            // A function that never reads its stdin gets EPIPE here: fine.
            let _ = stdin.write_all(&payload);
        });
        let stdout = capture(child.stdout.take().expect("piped"), limits.max_output_bytes);
        let stderr = capture(child.stderr.take().expect("piped"), limits.max_output_bytes);
        let ended = wait_until(&mut child, started + limits.timeout)?;
        let (stdout, cut_out) = collect(stdout);
        let (stderr, cut_err) = collect(stderr);
        drop(scratch);
        let (exit_code, trap) = exit_of(&ended);
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

/// Applies the rlimits and, when running as root, drops to `run_as`, in the
/// child before exec.
fn confine(cmd: &mut Command, limits: &NativeLimits, run_as: Option<(Uid, Gid)>) {
    let cpu_seconds = limits.timeout.as_secs() + 1;
    let rlimits = [
        (Resource::RLIMIT_CPU, cpu_seconds),
        (Resource::RLIMIT_DATA, limits.max_memory_bytes),
        (Resource::RLIMIT_FSIZE, limits.max_file_bytes),
        (Resource::RLIMIT_NOFILE, limits.max_open_files),
        (Resource::RLIMIT_NPROC, limits.max_processes),
        (Resource::RLIMIT_CORE, 0),
    ];
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (setrlimit, setgroups, setgid,
    // setuid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
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

/// Waits for `child` until `deadline`, then kills its whole process group
/// (whatever the function left running goes too).
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Ended, NativeError> {
    let group = Pid::from_raw(child.id() as i32);
    let mut poll = Duration::from_micros(200);
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().map_err(NativeError::Setup)? {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            break (None, true);
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(Duration::from_millis(5));
    };
    let _ = killpg(group, Signal::SIGKILL);
    let status = match status {
        Some(status) => status,
        None => child.wait().map_err(NativeError::Setup)?,
    };
    Ok(Ended { status, timed_out })
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

/// A per-call working directory, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(root: &Path, owner: Option<(Uid, Gid)>) -> std::io::Result<Self> {
        let path = nix::unistd::mkdtemp(&root.join("faas-call-XXXXXX"))?;
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

type Captured = mpsc::Receiver<(Vec<u8>, bool)>;

/// Reads a pipe on a thread, keeping at most `cap` bytes.
fn capture(mut pipe: impl Read + Send + 'static, cap: usize) -> Captured {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    if n > room {
                        truncated = true;
                    }
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        let _ = tx.send((kept, truncated));
    });
    rx
}

/// The captured bytes; gives up after a moment if a process that escaped
/// the group still holds the pipe open.
fn collect(rx: Captured) -> (Vec<u8>, bool) {
    rx.recv_timeout(Duration::from_millis(500))
        .unwrap_or((Vec::new(), true))
}
