//! The `path_*` calls: opening, creating, removing, renaming and linking
//! by path, symlinks and stats. Each resolves its path from a directory
//! descriptor ([`crate::vfs::Namespace::resolve`]) and checks what POSIX
//! and wasmtime check before the backend is asked, in their order: `O_CREAT
//! | O_EXCL` on anything that exists (a dangling symlink too) is `EEXIST`;
//! a directory opened for writing, truncating or creating is `EISDIR`;
//! `O_DIRECTORY` or a trailing `/` on a file is `ENOTDIR`; `O_CREAT |
//! O_DIRECTORY` is `EINVAL`; `unlink` of a directory is `EISDIR`; `rmdir`
//! of `.` is `EINVAL`; `rename` of a file over a directory is `EISDIR`, of
//! a directory over a file `ENOTDIR`, of a directory into itself `EINVAL`;
//! a hard link to a directory is `EPERM`; an absolute symlink is `EPERM`.

use wasmer::FunctionEnvMut;
use wasmer_wasix::WasiEnv;

use super::fd::{put_filestat, set_times};
use super::{rights, Cx, DirFd, Entry, FileFd, Installer};
use crate::vfs::{Backend, Errno, Kind, OpenHow, Rel, Resolved, Result, Stat};

pub(super) fn install(i: &mut Installer<'_>) {
    own!(i, "path_open", path_open, (fd: i32, dirflags: i32, path: i32, len: i32, oflags: i32,
        base: i64, inheriting: i64, fdflags: i32, out: i32));
    own!(i, "path_create_directory", path_create_directory, (fd: i32, path: i32, len: i32));
    own!(i, "path_remove_directory", path_remove_directory, (fd: i32, path: i32, len: i32));
    own!(i, "path_unlink_file", path_unlink_file, (fd: i32, path: i32, len: i32));
    own!(i, "path_rename", path_rename, (fd: i32, old: i32, old_len: i32, new_fd: i32,
        new: i32, new_len: i32));
    own!(i, "path_link", path_link, (fd: i32, flags: i32, old: i32, old_len: i32, new_fd: i32,
        new: i32, new_len: i32));
    own!(i, "path_symlink", path_symlink, (target: i32, target_len: i32, fd: i32, path: i32,
        len: i32));
    own!(i, "path_readlink", path_readlink, (fd: i32, path: i32, len: i32, buf: i32,
        buf_len: i32, out: i32));
    own!(i, "path_filestat_get", path_filestat_get, (fd: i32, flags: i32, path: i32, len: i32,
        out: i32));
    own!(i, "path_filestat_set_times", path_filestat_set_times, (fd: i32, flags: i32, path: i32,
        len: i32, atim: i64, mtim: i64, fst: i32));
}

/// Follow a symlink at the end of the path (`lookupflags`).
const FOLLOW: i32 = 1;

/// The path at (`ptr`, `len`), resolved from directory `fd`.
fn resolve(cx: &Cx<'_>, fd: i32, ptr: i32, len: i32, follow: bool) -> Result<Resolved> {
    let dir = cx.fs.dir(fd as u32)?;
    let path = cx.mem.path(ptr as u32, len as u32)?;
    cx.fs.ns()?.resolve(&dir.path, dir.floor, &path, follow)
}

/// What an existing path is: `ENOENT` if nothing is there, `ENOTDIR` for a
/// non-directory named with a trailing `/`.
fn existing(r: &Resolved) -> Result<Stat> {
    match r.stat {
        None => Err(Errno::Noent),
        Some(st) if r.trailing_slash && st.kind != Kind::Dir => Err(Errno::Notdir),
        Some(st) => Ok(st),
    }
}

/// Runs `f` on the backend holding `path` and the path inside it.
fn on<T>(
    cx: &Cx<'_>,
    path: &[String],
    f: impl FnOnce(&dyn Backend, &Rel) -> Result<T>,
) -> Result<T> {
    let (fs, rel) = cx.fs.ns()?.locate(path);
    f(fs.as_ref(), rel)
}

/// `path_open`'s flags, as wasi-libc passes them.
struct OpenFlags {
    create: bool,
    directory: bool,
    exclusive: bool,
    truncate: bool,
    read: bool,
    write: bool,
    append: bool,
    nonblock: bool,
}

#[allow(clippy::too_many_arguments)]
fn path_open(
    cx: &mut Cx<'_>,
    fd: i32,
    dirflags: i32,
    path: i32,
    len: i32,
    oflags: i32,
    base: i64,
    _inheriting: i64,
    fdflags: i32,
    out: i32,
) -> Result<()> {
    let base = base as u64;
    let flags = OpenFlags {
        create: oflags & 1 != 0,
        directory: oflags & 2 != 0,
        exclusive: oflags & 4 != 0,
        truncate: oflags & 8 != 0,
        read: base & rights::READING != 0,
        // FD_WRITE alone means writing, as in wasmtime: Go's `os.Open`
        // asks read-only files for FD_FILESTAT_SET_SIZE too, and must
        // still open them (a secret, an interpreter's /faas).
        write: base & rights::FD_WRITE != 0,
        append: fdflags & 1 != 0,
        nonblock: fdflags & 4 != 0,
    };
    if flags.create && flags.directory {
        return Err(Errno::Inval);
    }
    // O_CREAT | O_EXCL never follows a symlink at the end: it exists.
    let follow = dirflags & FOLLOW != 0 && !(flags.create && flags.exclusive);
    let floor = cx.fs.dir(fd as u32)?.floor;
    let r = resolve(cx, fd, path, len, follow)?;
    let entry = match r.stat {
        Some(st) => open_existing(cx, &r, st, floor, &flags)?,
        None => create(cx, &r, &flags)?,
    };
    let new = cx.fs.insert(entry)?;
    cx.mem.put_u32(out as u32, new).inspect_err(|_| {
        cx.fs.remove(new);
    })
}

fn open_existing(
    cx: &Cx<'_>,
    r: &Resolved,
    st: Stat,
    floor: usize,
    f: &OpenFlags,
) -> Result<Entry> {
    if f.create && f.exclusive {
        return Err(Errno::Exist);
    }
    match st.kind {
        // Only when not following: O_NOFOLLOW on a symlink.
        Kind::Symlink => Err(Errno::Loop),
        Kind::Dir if f.write || f.truncate || f.create => Err(Errno::Isdir),
        Kind::Dir => Ok(Entry::Dir(DirFd {
            path: r.path.clone(),
            floor,
            preopen: false,
        })),
        _ if f.directory || r.trailing_slash => Err(Errno::Notdir),
        _ => on(cx, &r.path, |fs, rel| {
            // wasmtime opens for writing what is opened to create or
            // truncate, unless the place is read-only.
            let write = f.write || f.truncate || (f.create && !fs.read_only());
            let how = OpenHow {
                read: f.read,
                write,
                create: false,
                truncate: f.truncate,
            };
            Ok(file_entry(fs.open(rel, how)?, f.read, write, f, fs))
        }),
    }
}

fn create(cx: &Cx<'_>, r: &Resolved, f: &OpenFlags) -> Result<Entry> {
    if !f.create {
        return Err(Errno::Noent);
    }
    if r.trailing_slash {
        return Err(Errno::Isdir);
    }
    on(cx, &r.path, |fs, rel| {
        let how = OpenHow {
            read: f.read,
            write: true,
            create: true,
            truncate: false,
        };
        Ok(file_entry(fs.open(rel, how)?, f.read, true, f, fs))
    })
}

fn file_entry(
    file: std::sync::Arc<dyn crate::vfs::File>,
    read: bool,
    write: bool,
    f: &OpenFlags,
    fs: &dyn Backend,
) -> Entry {
    Entry::File(FileFd {
        file,
        read,
        write,
        append: f.append,
        nonblock: f.nonblock,
        pos: 0,
        max_size: fs.max_file_size(),
    })
}

fn path_create_directory(cx: &mut Cx<'_>, fd: i32, path: i32, len: i32) -> Result<()> {
    let r = resolve(cx, fd, path, len, false)?;
    if r.stat.is_some() {
        return Err(Errno::Exist);
    }
    on(cx, &r.path, |fs, rel| fs.mkdir(rel))
}

fn path_remove_directory(cx: &mut Cx<'_>, fd: i32, path: i32, len: i32) -> Result<()> {
    let r = resolve(cx, fd, path, len, false)?;
    if r.dot_last {
        return Err(Errno::Inval);
    }
    if r.stat.ok_or(Errno::Noent)?.kind != Kind::Dir {
        return Err(Errno::Notdir);
    }
    if cx.fs.ns()?.is_mount_point(&r.path) {
        return Err(Errno::Busy);
    }
    on(cx, &r.path, |fs, rel| fs.rmdir(rel))
}

fn path_unlink_file(cx: &mut Cx<'_>, fd: i32, path: i32, len: i32) -> Result<()> {
    let r = resolve(cx, fd, path, len, false)?;
    if r.stat.ok_or(Errno::Noent)?.kind == Kind::Dir {
        return Err(Errno::Isdir);
    }
    if r.trailing_slash {
        return Err(Errno::Notdir);
    }
    on(cx, &r.path, |fs, rel| fs.unlink(rel))
}

/// `EXDEV` between two backends (`EROFS` if either is read-only: nothing
/// could change there anyway).
fn same_place(cx: &Cx<'_>, a: &[String], b: &[String]) -> Result<()> {
    let ns = cx.fs.ns()?;
    if ns.same_backend(a, b) {
        return Ok(());
    }
    if ns.locate(a).0.read_only() || ns.locate(b).0.read_only() {
        Err(Errno::Rofs)
    } else {
        Err(Errno::Xdev)
    }
}

#[allow(clippy::too_many_arguments)]
fn path_rename(
    cx: &mut Cx<'_>,
    fd: i32,
    old: i32,
    old_len: i32,
    new_fd: i32,
    new: i32,
    new_len: i32,
) -> Result<()> {
    let from = resolve(cx, fd, old, old_len, false)?;
    let to = resolve(cx, new_fd, new, new_len, false)?;
    let st = from.stat.ok_or(Errno::Noent)?;
    let ns = cx.fs.ns()?;
    if from.dot_last || to.dot_last || ns.is_mount_point(&from.path) || ns.is_mount_point(&to.path)
    {
        return Err(Errno::Busy);
    }
    same_place(cx, &from.path, &to.path)?;
    let is_dir = st.kind == Kind::Dir;
    if is_dir && to.path.len() > from.path.len() && to.path.starts_with(&from.path) {
        return Err(Errno::Inval);
    }
    // A directory replaces only an empty one.
    let occupied = is_dir
        && to.path != from.path
        && to.stat.is_some_and(|t| t.kind == Kind::Dir)
        && !on(cx, &to.path, |fs, rel| fs.read_dir(rel))?.is_empty();
    match to.stat {
        Some(_) if to.path == from.path => return Ok(()),
        Some(target) if is_dir && target.kind != Kind::Dir => return Err(Errno::Notdir),
        Some(target) if !is_dir && target.kind == Kind::Dir => return Err(Errno::Isdir),
        Some(_) if occupied => return Err(Errno::Notempty),
        None if to.trailing_slash && !is_dir => return Err(Errno::Notdir),
        _ => {}
    }
    let to_path = to.path;
    on(cx, &from.path, |fs, rel| {
        let (_, to_rel) = cx.fs.ns()?.locate(&to_path);
        fs.rename(rel, to_rel)
    })
}

#[allow(clippy::too_many_arguments)]
fn path_link(
    cx: &mut Cx<'_>,
    fd: i32,
    flags: i32,
    old: i32,
    old_len: i32,
    new_fd: i32,
    new: i32,
    new_len: i32,
) -> Result<()> {
    let from = resolve(cx, fd, old, old_len, flags & FOLLOW != 0)?;
    let to = resolve(cx, new_fd, new, new_len, false)?;
    if existing(&from)?.kind == Kind::Dir {
        return Err(Errno::Perm);
    }
    if to.stat.is_some() {
        return Err(Errno::Exist);
    }
    same_place(cx, &from.path, &to.path)?;
    let to_path = to.path;
    on(cx, &from.path, |fs, rel| {
        let (_, to_rel) = cx.fs.ns()?.locate(&to_path);
        fs.link(rel, to_rel)
    })
}

fn path_symlink(
    cx: &mut Cx<'_>,
    target: i32,
    target_len: i32,
    fd: i32,
    path: i32,
    len: i32,
) -> Result<()> {
    let target = cx.mem.path(target as u32, target_len as u32)?;
    let r = resolve(cx, fd, path, len, false)?;
    if r.stat.is_some() {
        return Err(Errno::Exist);
    }
    on(cx, &r.path, |fs, rel| {
        // A read-only place refuses before anything is looked at; an
        // absolute target would lead out of the pre-opened directory.
        if fs.read_only() {
            Err(Errno::Rofs)
        } else if target.starts_with('/') {
            Err(Errno::Perm)
        } else if target.is_empty() {
            Err(Errno::Noent)
        } else {
            fs.symlink(&target, rel)
        }
    })
}

fn path_readlink(
    cx: &mut Cx<'_>,
    fd: i32,
    path: i32,
    len: i32,
    buf: i32,
    buf_len: i32,
    out: i32,
) -> Result<()> {
    let r = resolve(cx, fd, path, len, false)?;
    if r.stat.ok_or(Errno::Noent)?.kind != Kind::Symlink {
        return Err(Errno::Inval);
    }
    let target = cx.fs.ns()?.readlink(&r.path)?;
    // Cut to the buffer, as readlink(2) does.
    let n = target.len().min(buf_len as u32 as usize);
    cx.mem.write(buf as u32, &target.as_bytes()[..n])?;
    cx.mem.put_u32(out as u32, n as u32)
}

fn path_filestat_get(
    cx: &mut Cx<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    len: i32,
    out: i32,
) -> Result<()> {
    let r = resolve(cx, fd, path, len, flags & FOLLOW != 0)?;
    let st = existing(&r)?;
    put_filestat(&cx.mem, cx.layout, out as u32, &st)
}

#[allow(clippy::too_many_arguments)]
fn path_filestat_set_times(
    cx: &mut Cx<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    len: i32,
    atim: i64,
    mtim: i64,
    fst: i32,
) -> Result<()> {
    let (atim, mtim) = set_times(atim, mtim, fst)?;
    let r = resolve(cx, fd, path, len, flags & FOLLOW != 0)?;
    existing(&r)?;
    on(cx, &r.path, |fs, rel| fs.set_times(rel, atim, mtim))
}
