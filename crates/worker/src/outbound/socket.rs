//! The fetch channel of native calls (PHP): a UNIX socket the worker
//! serves during the call, bound read-only into the sandbox at
//! `/run/faas/fetch.sock`. The sandbox has no network namespace of its
//! own to speak of (no interface but a down loopback): this socket is the
//! only thing it can connect to.
//!
//! One connection carries one exchange in the [`super::wire`] format: the
//! guest writes its request and shuts down its writing side; the worker
//! answers and closes. Connections are served on threads of their own (a
//! guest that never finishes a request blocks only itself), at most
//! [`super::MAX_OPEN`] at once; each read waits at most until the call's
//! deadline, and everything is joined when the call ends.
//!
//! Where the sockets live: a directory per worker (mode 0711, so no other
//! user can list it), holding the PHP prelude ([`PHP_PRELUDE`], read-only
//! for everyone) and one directory per call with a grant (mode 0755, its
//! socket 0666: a call may run as another uid), removed when the call ends.
//! Under the Server it is `worker-PID` in the Server's own directory
//! (`--sockets-dir`), which the Server removes when it reaps the worker,
//! however the worker ended (a SIGKILLed worker removes nothing), and
//! wholly when it stops or starts again; a worker run by hand makes its own
//! under the system's temporary directory, removed when it exits.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CallOutbound, FETCH_SOCKET};

/// The PHP prelude (`faas_fetch`, the `http`/`https` stream wrappers),
/// loaded before every PHP function with `auto_prepend_file`.
pub const PHP_PRELUDE: &[u8] = include_bytes!("php/prelude.php");

/// Where the prelude is inside the PHP sandbox.
pub const PHP_PRELUDE_PATH: &str = "/faas/prelude.php";

/// How often the accepting thread looks whether the call has ended.
const TICK: Duration = Duration::from_millis(20);

/// This worker's directory of call sockets (and the PHP prelude).
pub struct SocketDirs {
    base: PathBuf,
    next: AtomicU64,
}

/// Copies the tree `from` (files and directories only; the store's trees
/// hold nothing else) to `to`, readable by every uid.
fn copy_readable(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_readable(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// The directory of worker `pid` in the Server's `--sockets-dir`.
pub fn worker_dir(sockets_dir: &Path, pid: u32) -> PathBuf {
    sockets_dir.join(format!("worker-{pid}"))
}

impl SocketDirs {
    /// Creates this worker's directory ([`worker_dir`] in `sockets_dir`,
    /// else a new one under the temporary directory) and writes the
    /// prelude into it.
    pub fn create(sockets_dir: Option<&Path>) -> std::io::Result<Self> {
        let base = match sockets_dir {
            Some(parent) => {
                let base = worker_dir(parent, std::process::id());
                // A dead worker's, if its pid came round again.
                let _ = std::fs::remove_dir_all(&base);
                std::fs::create_dir(&base)?;
                base
            }
            None => nix::unistd::mkdtemp(&std::env::temp_dir().join("faas-outbound-XXXXXX"))?,
        };
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711))?;
        let prelude = base.join("prelude.php");
        std::fs::write(&prelude, PHP_PRELUDE)?;
        std::fs::set_permissions(&prelude, std::fs::Permissions::from_mode(0o644))?;
        Ok(Self {
            base,
            next: AtomicU64::new(1),
        })
    }

    /// A PHP project's tree, copied where a call's uid may read it (not
    /// write it: directories 0755, files 0644, owned by the worker), to
    /// bind read-only into its sandboxes; made once per worker and
    /// function, removed with the worker's directory or by
    /// [`Self::drop_tree`].
    pub fn tree(&self, id: &str, from: &Path) -> std::io::Result<PathBuf> {
        let trees = self.base.join("trees");
        if !trees.is_dir() {
            std::fs::create_dir(&trees)?;
            std::fs::set_permissions(&trees, std::fs::Permissions::from_mode(0o711))?;
        }
        let dest = trees.join(id);
        let _ = std::fs::remove_dir_all(&dest);
        copy_readable(from, &dest)?;
        Ok(dest)
    }

    /// Removes a forgotten function's tree copy, if any.
    pub fn drop_tree(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.base.join("trees").join(id));
    }

    /// The prelude on the host, to bind into a sandbox at
    /// [`PHP_PRELUDE_PATH`].
    pub fn prelude(&self) -> PathBuf {
        self.base.join("prelude.php")
    }

    /// Starts serving `call`'s socket in a directory of its own.
    pub fn serve(&self, call: Arc<CallOutbound>) -> std::io::Result<Served> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.base.join(n.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let path = dir.join(FETCH_SOCKET);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        listener.set_nonblocking(true)?;
        let ended = Arc::new(AtomicBool::new(false));
        let thread = {
            let ended = ended.clone();
            std::thread::Builder::new()
                .name("fetch-socket".into())
                .spawn(move || accept_loop(&listener, &call, &ended))?
        };
        Ok(Served {
            dir,
            ended,
            thread: Some(thread),
        })
    }
}

impl Drop for SocketDirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A call's socket being served; [`finish`](Self::finish) it when the call
/// has ended.
pub struct Served {
    dir: PathBuf,
    ended: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    /// The host directory to bind at `/run/faas` in the sandbox.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops accepting, waits for the exchanges under way (each ends at
    /// the call's deadline at the latest; a process that is gone closed
    /// its connections), and removes the socket.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.ended.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &UnixListener, call: &Arc<CallOutbound>, ended: &AtomicBool) {
    std::thread::scope(|scope| {
        while !ended.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, _)) => {
                    if !call.try_open() {
                        // Too many at once: closed unanswered (the guest
                        // reads an empty answer).
                        continue;
                    }
                    scope.spawn(move || {
                        serve_one(stream, call, ended);
                        call.closed();
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("fetch socket: {e}");
                    std::thread::sleep(TICK);
                }
            }
        }
    });
}

/// One exchange: the request to its end (the guest's half-close), then
/// the answer.
fn serve_one(mut stream: UnixStream, call: &CallOutbound, ended: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let deadline = call
        .deadline()
        .unwrap_or_else(|| Instant::now() + crate::jobs::DEFAULT_TIMEOUT);
    let cap = call.max_request_bytes();
    let mut request = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                request.extend_from_slice(&chunk[..n]);
                // One byte past the cap is enough to refuse it (the parser
                // says the body is too large); the rest is never read.
                if request.len() as u64 > cap {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    // A process killed in the middle of writing must not send half a
    // request: nothing is sent once the call has ended.
    if ended.load(Ordering::Acquire) {
        return;
    }
    let answer = call.exchange(&request);
    if answer.starts_with(b"timeout ") || Instant::now() >= deadline {
        // Out of time: the process is being stopped (504). It gets no
        // answer to go on with (it could print one and exit 0 before the
        // worker's kill): the connection stays open, unanswered, until the
        // call has ended.
        while !ended.load(Ordering::Acquire) {
            std::thread::sleep(TICK);
        }
        return;
    }
    let _ = stream.set_write_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    ));
    let _ = stream.write_all(&answer);
}
