//! The file systems a call sees, below our WASI calls ([`crate::wasifs`]).
//!
//! A [`Backend`] is one tree (a call's in-memory `/tmp`, an interpreter's
//! read-only `/faas`, a host directory of `worker run --dir`), addressed by
//! paths relative to its root in which the caller has already resolved
//! every symlink: a backend never follows one. [`Namespace`] mounts
//! backends at guest paths and resolves a guest's path the way wasmtime
//! does: component by component, symlinks followed by us, never above the
//! pre-opened directory it starts from.
//!
//! Errors are WASI errnos throughout, so what a guest gets is decided
//! here, not by whatever a backend's library answers.

mod ns;

use std::sync::Arc;

pub use ns::{Namespace, Resolved};
pub use wasmer_wasix::types::wasi::Errno;

pub type Result<T> = std::result::Result<T, Errno>;

/// A path inside a backend: its components, none `.` or `..`; empty is the
/// backend's root.
pub type Rel = [String];

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Devices, sockets, pipes of a host directory.
    Other,
}

/// A node's metadata; times in nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub atim: u64,
    pub mtim: u64,
    pub ctim: u64,
}

/// One timestamp of a `set_times`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    Keep,
    Now,
    At(u64),
}

/// A directory entry (never `.` or `..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: Kind,
    pub ino: u64,
}

/// How a regular file is opened. The caller has checked what the node is:
/// `create` is asked only for a name that does not exist.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenHow {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub truncate: bool,
}

/// One tree of files. Every path is resolved (no symlink inside, none
/// followed at the end); the caller has checked the kinds an operation
/// needs (no `rmdir` of a file, no `rename` of a directory over a file),
/// so a backend only refuses what only it can know (space, read-only).
pub trait Backend: Send + Sync {
    /// Metadata of `path` itself (a symlink is not followed).
    fn stat(&self, path: &Rel) -> Result<Stat>;
    fn read_dir(&self, path: &Rel) -> Result<Vec<DirEntry>>;
    fn readlink(&self, path: &Rel) -> Result<String>;
    /// Opens (or creates) the regular file at `path`.
    fn open(&self, path: &Rel, how: OpenHow) -> Result<Arc<dyn File>>;
    fn mkdir(&self, path: &Rel) -> Result<()>;
    fn rmdir(&self, path: &Rel) -> Result<()>;
    fn unlink(&self, path: &Rel) -> Result<()>;
    /// Moves `from` to `to`, replacing what `to` is (a file, or an empty
    /// directory when `from` is one).
    fn rename(&self, from: &Rel, to: &Rel) -> Result<()>;
    /// A hard link `to` of the file `from`.
    fn link(&self, from: &Rel, to: &Rel) -> Result<()>;
    fn symlink(&self, target: &str, path: &Rel) -> Result<()>;
    /// Sets the times of `path` itself (a symlink's own, not its target's).
    fn set_times(&self, path: &Rel, atim: SetTime, mtim: SetTime) -> Result<()>;
    /// The largest size a file may reach here (a call's `/tmp` cap):
    /// seeking or truncating beyond it fails with `EFBIG` before anything
    /// grows.
    fn max_file_size(&self) -> u64 {
        u64::MAX
    }
    /// Whether every change here fails with `EROFS`.
    fn read_only(&self) -> bool {
        false
    }
}

/// An open regular file.
pub trait File: Send + Sync {
    fn stat(&self) -> Result<Stat>;
    /// Reads at `at`; 0 at or past the end.
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<usize>;
    /// Writes all of `data` at `at` (a gap before it reads as zeros).
    fn write_at(&self, data: &[u8], at: u64) -> Result<usize>;
    fn set_len(&self, len: u64) -> Result<()>;
    fn set_times(&self, atim: SetTime, mtim: SetTime) -> Result<()>;
    fn sync(&self) -> Result<()>;
    /// Whether this is a stream (the fetch channel of
    /// [`crate::outbound`]): reads and writes ignore offsets, seeking and
    /// positioned I/O are `ESPIPE`.
    fn is_stream(&self) -> bool {
        false
    }
}

/// Nanoseconds since the epoch now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The WASI errno of a host error (Linux numbering).
pub fn errno_of(err: &std::io::Error) -> Errno {
    let Some(code) = err.raw_os_error() else {
        return match err.kind() {
            std::io::ErrorKind::NotFound => Errno::Noent,
            std::io::ErrorKind::PermissionDenied => Errno::Access,
            std::io::ErrorKind::AlreadyExists => Errno::Exist,
            _ => Errno::Io,
        };
    };
    use nix::errno::Errno as E;
    match E::from_raw(code) {
        E::EPERM => Errno::Perm,
        E::ENOENT => Errno::Noent,
        E::EIO => Errno::Io,
        E::EBADF => Errno::Badf,
        E::EAGAIN => Errno::Again,
        E::ENOMEM => Errno::Nomem,
        E::EACCES => Errno::Access,
        E::EBUSY => Errno::Busy,
        E::EEXIST => Errno::Exist,
        E::EXDEV => Errno::Xdev,
        E::ENOTDIR => Errno::Notdir,
        E::EISDIR => Errno::Isdir,
        E::EINVAL => Errno::Inval,
        E::EMFILE | E::ENFILE => Errno::Mfile,
        E::EFBIG => Errno::Fbig,
        E::ENOSPC | E::EDQUOT => Errno::Nospc,
        E::ESPIPE => Errno::Spipe,
        E::EROFS => Errno::Rofs,
        E::EMLINK => Errno::Mlink,
        E::ENAMETOOLONG => Errno::Nametoolong,
        E::ENOTEMPTY => Errno::Notempty,
        E::ELOOP => Errno::Loop,
        E::EOVERFLOW => Errno::Overflow,
        E::ENOTSUP => Errno::Notsup,
        E::ETXTBSY => Errno::Txtbsy,
        _ => Errno::Io,
    }
}
