//! The Server's own directory for what its workers keep on the host while
//! they run: each worker's PHP fetch sockets and prelude, in `worker-PID`
//! (see `faas_worker::outbound::socket`). A worker removes its directory
//! when it exits, but a SIGKILLed one (a deadline overrun, the OOM killer,
//! an operator) removes nothing; the Server, which reaps every worker,
//! removes the dead worker's directory then, and the whole directory when
//! it stops.
//!
//! The directory is `faas-server-XXXXXX` under the temporary directory
//! (socket paths must stay short: at most 107 bytes), 0711, holding a
//! `lock` file the Server keeps locked (`flock`) while it runs. A Server
//! that was itself killed leaves its directory behind: the next Server to
//! start removes every such directory of this user whose lock nobody holds,
//! and leaves those of Servers still running.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

const PART: &str = "SERVER";

/// How the directories are named: this, then six random characters.
const PREFIX: &str = "faas-server-";

/// The file a running Server keeps locked.
const LOCK: &str = "lock";

/// A running Server's directory; removed when dropped (or by
/// [`remove`](Self::remove)).
pub struct RunDir {
    path: PathBuf,
    /// Held until the Server exits: tells a later Server this one runs.
    _lock: Flock<File>,
}

impl std::fmt::Debug for RunDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunDir").field("path", &self.path).finish()
    }
}

impl RunDir {
    /// Removes the directories dead Servers left under the temporary
    /// directory, then creates this one's.
    pub fn create() -> std::io::Result<Self> {
        Self::create_in(&std::env::temp_dir())
    }

    /// [`create`](Self::create) under `parent`.
    pub fn create_in(parent: &Path) -> std::io::Result<Self> {
        let swept = sweep(parent);
        if swept > 0 {
            log::info!(target: PART, "removed {swept} directory(ies) left by stopped servers in {}", parent.display());
        }
        let path = nix::unistd::mkdtemp(&parent.join(format!("{PREFIX}XXXXXX")))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))?;
        let file = File::create(path.join(LOCK))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| std::io::Error::from(errno))?;
        log::debug!(target: PART, "workers' socket directory: {}", path.display());
        Ok(Self { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what worker `pid` kept here: called once it has been reaped
    /// (it cannot add anything any more).
    pub fn remove_worker(&self, pid: u32) {
        let dir = faas_worker::outbound::socket::worker_dir(&self.path, pid);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => log::debug!(target: PART, "removed {}", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(target: PART, "cannot remove {}: {e}", dir.display()),
        }
    }

    /// Removes the directory and everything in it (at shutdown, once the
    /// workers are gone).
    pub fn remove(&self) {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(target: PART, "cannot remove {}: {e}", self.path.display()),
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Removes the directories under `parent` that stopped Servers of this
/// user left: those whose lock nobody holds. Returns how many.
fn sweep(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let uid = nix::unistd::geteuid().as_raw();
    let mut swept = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        // Not following links: only a directory of ours.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        // Without a lock file it may be a Server's being created.
        let Ok(file) = File::open(path.join(LOCK)) else {
            continue;
        };
        // Locked: its Server runs. Else its Server is gone; the lock is
        // held while removing, so two Servers starting together do not
        // both work on it.
        if let Ok(_held) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => swept += 1,
                Err(e) => log::warn!(target: PART, "cannot remove {}: {e}", path.display()),
            }
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_server_s_directory_is_swept_and_a_running_one_s_kept() {
        let parent = tempfile::tempdir().unwrap();
        let running = RunDir::create_in(parent.path()).unwrap();
        // What a SIGKILLed Server leaves: its directory, its lock file
        // unlocked, and a worker's sockets.
        let dead = parent.path().join(format!("{PREFIX}dead00"));
        std::fs::create_dir_all(dead.join("worker-42/1")).unwrap();
        File::create(dead.join(LOCK)).unwrap();
        std::fs::write(dead.join("worker-42/1/fetch.sock"), b"").unwrap();
        // Not ours to judge: no lock file, another name.
        let creating = parent.path().join(format!("{PREFIX}new000"));
        std::fs::create_dir(&creating).unwrap();
        let other = parent.path().join("faas-outbound-abc123");
        std::fs::create_dir(&other).unwrap();

        let next = RunDir::create_in(parent.path()).unwrap();
        assert!(!dead.exists());
        assert!(running.path().is_dir() && next.path().is_dir());
        assert!(creating.is_dir() && other.is_dir());
        let mode = std::fs::metadata(next.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o711);

        // A worker's directory goes when it is reaped; all of it at stop.
        let worker = faas_worker::outbound::socket::worker_dir(next.path(), 7);
        std::fs::create_dir_all(worker.join("3")).unwrap();
        next.remove_worker(7);
        assert!(!worker.exists() && next.path().is_dir());
        next.remove_worker(7);
        let path = next.path().to_path_buf();
        drop(next);
        assert!(!path.exists());
        assert!(running.path().is_dir());
    }
}
