//! The `fd_*` calls: what a descriptor is, reading, writing, seeking,
//! sizes and times, directory listings, closing and renumbering. Errnos are
//! wasmtime's: a directory descriptor is `EBADF` to every call that needs a
//! file (and to `fd_advise`, `fd_sync`); reading a descriptor opened
//! write-only, or the reverse, is `EBADF`; truncating one opened read-only
//! is `EINVAL`; `fd_fdstat_set_rights` is `ENOTSUP`; `fd_allocate` is
//! `ENOTSUP`. A stream (the fetch file of [`crate::outbound`]) has no
//! position: reads and writes ignore one, and seeking, telling and
//! positioned I/O are `ESPIPE`.

use wasmer::{FunctionEnvMut, RuntimeError};
use wasmer_wasix::WasiEnv;

use super::guest::{capacity, Guest};
use super::{rights, CallFs, Cx, Entry, FileFd, Installer, Layout};
use crate::vfs::{Errno, Kind, Result, SetTime, Stat};

pub(super) fn install(i: &mut Installer<'_>) {
    delegating!(i, "fd_read", fd_read, (iovs: i32, n: i32, out: i32));
    delegating!(i, "fd_write", fd_write, (iovs: i32, n: i32, out: i32));
    delegating!(i, "fd_pread", fd_pread, (iovs: i32, n: i32, at: i64, out: i32));
    delegating!(i, "fd_pwrite", fd_pwrite, (iovs: i32, n: i32, at: i64, out: i32));
    delegating!(i, "fd_seek", fd_seek, (offset: i64, whence: i32, out: i32));
    delegating!(i, "fd_tell", fd_tell, (out: i32));
    delegating!(i, "fd_fdstat_get", fd_fdstat_get, (out: i32));
    delegating!(i, "fd_fdstat_set_flags", fd_fdstat_set_flags, (flags: i32));
    delegating!(i, "fd_filestat_get", fd_filestat_get, (out: i32));
    delegating!(i, "fd_filestat_set_size", fd_filestat_set_size, (size: i64));
    delegating!(i, "fd_filestat_set_times", fd_filestat_set_times, (atim: i64, mtim: i64, flags: i32));
    delegating!(i, "fd_advise", fd_advise, (offset: i64, len: i64, advice: i32));
    delegating!(i, "fd_allocate", fd_allocate, (offset: i64, len: i64));
    delegating!(i, "fd_sync", fd_sync, ());
    delegating!(i, "fd_datasync", fd_sync, ());
    own!(i, "fd_fdstat_set_rights", fd_fdstat_set_rights, (fd: i32, base: i64, inheriting: i64));
    own!(i, "fd_readdir", fd_readdir, (fd: i32, buf: i32, len: i32, cookie: i64, out: i32));
    own!(i, "fd_prestat_get", fd_prestat_get, (fd: i32, out: i32));
    own!(i, "fd_prestat_dir_name", fd_prestat_dir_name, (fd: i32, buf: i32, len: i32));
    install_close(i);
    install_renumber(i);
}

/// A file descriptor that can be read.
fn readable(fs: &mut CallFs, fd: u32) -> Result<&mut FileFd> {
    match fs.file(fd)? {
        f if f.read => Ok(f),
        _ => Err(Errno::Badf),
    }
}

/// A file descriptor that can be written.
fn writable(fs: &mut CallFs, fd: u32) -> Result<&mut FileFd> {
    match fs.file(fd)? {
        f if f.write => Ok(f),
        _ => Err(Errno::Badf),
    }
}

/// Most bytes one read of a stream asks it for (a guest may pass iovecs
/// of gigabytes; a stream has no size to bound the buffer by).
const STREAM_CHUNK: usize = 1 << 20;

fn fd_read(cx: &mut Cx<'_>, fd: u32, iovs: i32, n: i32, out: i32) -> Result<()> {
    let iovs = cx.mem.iovecs(iovs as u32, n as u32)?;
    let f = readable(cx.fs, fd)?;
    if f.file.is_stream() {
        let mut data = vec![0u8; capacity(&iovs).min(STREAM_CHUNK)];
        let got = f.file.read_at(&mut data, 0)?;
        cx.mem.scatter(&iovs, &data[..got])?;
        return cx.mem.put_u32(out as u32, got as u32);
    }
    let (data, got) = read_at(f, capacity(&iovs), f.pos)?;
    f.pos += got as u64;
    cx.mem.scatter(&iovs, &data[..got])?;
    cx.mem.put_u32(out as u32, got as u32)
}

fn fd_pread(cx: &mut Cx<'_>, fd: u32, iovs: i32, n: i32, at: i64, out: i32) -> Result<()> {
    let iovs = cx.mem.iovecs(iovs as u32, n as u32)?;
    let f = readable(cx.fs, fd)?;
    if f.file.is_stream() {
        return Err(Errno::Spipe);
    }
    let (data, got) = read_at(f, capacity(&iovs), at as u64)?;
    cx.mem.scatter(&iovs, &data[..got])?;
    cx.mem.put_u32(out as u32, got as u32)
}

/// Up to `want` bytes of `f` at `at` (the buffer sized by what is there).
fn read_at(f: &FileFd, want: usize, at: u64) -> Result<(Vec<u8>, usize)> {
    let size = f.file.stat()?.size;
    let want = want.min(size.saturating_sub(at).min(usize::MAX as u64) as usize);
    let mut data = vec![0u8; want];
    let got = f.file.read_at(&mut data, at)?;
    Ok((data, got))
}

fn fd_write(cx: &mut Cx<'_>, fd: u32, iovs: i32, n: i32, out: i32) -> Result<()> {
    let iovs = cx.mem.iovecs(iovs as u32, n as u32)?;
    let data = cx.mem.gather(&iovs)?;
    let f = writable(cx.fs, fd)?;
    if f.file.is_stream() {
        let wrote = f.file.write_at(&data, 0)?;
        return cx.mem.put_u32(out as u32, wrote as u32);
    }
    let at = if f.append { f.file.stat()?.size } else { f.pos };
    let wrote = f.file.write_at(&data, at)?;
    f.pos = at + wrote as u64;
    cx.mem.put_u32(out as u32, wrote as u32)
}

fn fd_pwrite(cx: &mut Cx<'_>, fd: u32, iovs: i32, n: i32, at: i64, out: i32) -> Result<()> {
    let iovs = cx.mem.iovecs(iovs as u32, n as u32)?;
    let data = cx.mem.gather(&iovs)?;
    let f = writable(cx.fs, fd)?;
    if f.file.is_stream() {
        return Err(Errno::Spipe);
    }
    if at as u64 > f.max_size {
        return Err(Errno::Fbig);
    }
    let wrote = f.file.write_at(&data, at as u64)?;
    cx.mem.put_u32(out as u32, wrote as u32)
}

fn fd_seek(cx: &mut Cx<'_>, fd: u32, offset: i64, whence: i32, out: i32) -> Result<()> {
    // wasi_unstable numbered the origins differently.
    let (set, cur, end) = match cx.layout {
        Layout::Preview1 => (0, 1, 2),
        Layout::Unstable => (2, 0, 1),
    };
    let f = cx.fs.file(fd)?;
    if f.file.is_stream() {
        return Err(Errno::Spipe);
    }
    let base = match whence {
        w if w == set => 0,
        w if w == cur => f.pos,
        w if w == end => f.file.stat()?.size,
        _ => return Err(Errno::Inval),
    };
    let new = base as i128 + offset as i128;
    if new < 0 {
        return Err(Errno::Inval);
    }
    // Past a /tmp cap, nothing could be written: refused before anything
    // grows.
    if new > f.max_size as i128 {
        return Err(Errno::Fbig);
    }
    f.pos = new as u64;
    cx.mem.put_u64(out as u32, f.pos)
}

fn fd_tell(cx: &mut Cx<'_>, fd: u32, out: i32) -> Result<()> {
    let f = cx.fs.file(fd)?;
    if f.file.is_stream() {
        return Err(Errno::Spipe);
    }
    let pos = f.pos;
    cx.mem.put_u64(out as u32, pos)
}

fn fd_fdstat_get(cx: &mut Cx<'_>, fd: u32, out: i32) -> Result<()> {
    let (filetype, flags, base, inheriting) = match cx.fs.fds.get(&fd) {
        Some(Entry::Dir(_)) => (3u8, 0u16, rights::DIR, rights::ALL),
        Some(Entry::File(f)) => {
            let mut base = rights::ALL;
            if !f.read {
                base &= !rights::READING;
            }
            if !f.write {
                base &= !rights::WRITING;
            }
            let flags = u16::from(f.append) | (u16::from(f.nonblock) << 2);
            (4, flags, base, base)
        }
        _ => return Err(Errno::Badf),
    };
    let mut b = [0u8; 24];
    b[0] = filetype;
    b[2..4].copy_from_slice(&flags.to_le_bytes());
    b[8..16].copy_from_slice(&base.to_le_bytes());
    b[16..24].copy_from_slice(&inheriting.to_le_bytes());
    cx.mem.write(out as u32, &b)
}

fn fd_fdstat_set_flags(cx: &mut Cx<'_>, fd: u32, flags: i32) -> Result<()> {
    const APPEND: i32 = 1;
    const NONBLOCK: i32 = 4;
    let f = cx.fs.file(fd)?;
    // The sync flags cannot be changed on an open descriptor.
    if flags & !(APPEND | NONBLOCK) != 0 {
        return Err(Errno::Inval);
    }
    f.append = flags & APPEND != 0;
    f.nonblock = flags & NONBLOCK != 0;
    Ok(())
}

fn fd_fdstat_set_rights(cx: &mut Cx<'_>, fd: i32, _base: i64, _inheriting: i64) -> Result<()> {
    // Rights are not a thing descriptors carry any more (preview2 dropped
    // them); wasmtime refuses to change them.
    if cx.fs.exists(fd) {
        Err(Errno::Notsup)
    } else {
        Err(Errno::Badf)
    }
}

fn fd_filestat_get(cx: &mut Cx<'_>, fd: u32, out: i32) -> Result<()> {
    let stat = match cx.fs.fds.get(&fd) {
        Some(Entry::Dir(dir)) => cx.fs.ns()?.stat(&dir.path)?,
        Some(Entry::File(f)) => f.file.stat()?,
        _ => return Err(Errno::Badf),
    };
    put_filestat(&cx.mem, cx.layout, out as u32, &stat)
}

/// Writes a `filestat` in the namespace's layout.
pub(super) fn put_filestat(mem: &Guest<'_>, layout: Layout, ptr: u32, st: &Stat) -> Result<()> {
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&st.dev.to_le_bytes());
    b[8..16].copy_from_slice(&st.ino.to_le_bytes());
    b[16] = filetype(st.kind);
    // wasi_unstable had a 32-bit link count, so what follows moves up.
    let (rest, len) = match layout {
        Layout::Preview1 => {
            b[24..32].copy_from_slice(&st.nlink.to_le_bytes());
            (32, 64)
        }
        Layout::Unstable => {
            b[20..24].copy_from_slice(&(st.nlink.min(u32::MAX as u64) as u32).to_le_bytes());
            (24, 56)
        }
    };
    for (i, value) in [st.size, st.atim, st.mtim, st.ctim].into_iter().enumerate() {
        let at = rest + 8 * i;
        b[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    mem.write(ptr, &b[..len])
}

/// The WASI file type of a node.
pub(super) fn filetype(kind: Kind) -> u8 {
    match kind {
        Kind::Dir => 3,
        Kind::File => 4,
        Kind::Symlink => 7,
        Kind::Other => 0,
    }
}

fn fd_filestat_set_size(cx: &mut Cx<'_>, fd: u32, size: i64) -> Result<()> {
    let f = cx.fs.file(fd)?;
    if !f.write || size < 0 {
        return Err(Errno::Inval);
    }
    if size as u64 > f.max_size {
        return Err(Errno::Fbig);
    }
    f.file.set_len(size as u64)
}

/// The two times a `*_set_times` call asks for (`EINVAL` when a time is
/// both given and "now").
pub(super) fn set_times(atim: i64, mtim: i64, flags: i32) -> Result<(SetTime, SetTime)> {
    let one = |value: i64, given: i32, now: i32| match (flags & given != 0, flags & now != 0) {
        (true, true) => Err(Errno::Inval),
        (true, false) => Ok(SetTime::At(value as u64)),
        (false, true) => Ok(SetTime::Now),
        (false, false) => Ok(SetTime::Keep),
    };
    Ok((one(atim, 1, 2)?, one(mtim, 4, 8)?))
}

fn fd_filestat_set_times(cx: &mut Cx<'_>, fd: u32, atim: i64, mtim: i64, flags: i32) -> Result<()> {
    let (atim, mtim) = set_times(atim, mtim, flags)?;
    match cx.fs.fds.get(&fd) {
        Some(Entry::File(f)) => f.file.set_times(atim, mtim),
        // wasmtime refuses it on a pre-opened directory only.
        Some(Entry::Dir(dir)) if !dir.preopen => {
            let (fs, rel) = cx.fs.ns()?.locate(&dir.path);
            fs.set_times(rel, atim, mtim)
        }
        _ => Err(Errno::Badf),
    }
}

fn fd_advise(cx: &mut Cx<'_>, fd: u32, _offset: i64, _len: i64, advice: i32) -> Result<()> {
    cx.fs.file(fd)?;
    if !(0..=5).contains(&advice) {
        return Err(Errno::Inval);
    }
    Ok(())
}

fn fd_allocate(cx: &mut Cx<'_>, fd: u32, _offset: i64, _len: i64) -> Result<()> {
    cx.fs.file(fd)?;
    Err(Errno::Notsup)
}

fn fd_sync(cx: &mut Cx<'_>, fd: u32) -> Result<()> {
    cx.fs.file(fd)?.file.sync()
}

fn fd_readdir(cx: &mut Cx<'_>, fd: i32, buf: i32, len: i32, cookie: i64, out: i32) -> Result<()> {
    let Some(Entry::Dir(dir)) = cx.fs.fds.get(&(fd as u32)) else {
        return Err(Errno::Badf);
    };
    let ns = cx.fs.ns()?;
    let here = ns.stat(&dir.path)?;
    let (fs, rel) = ns.locate(&dir.path);
    let listed = fs.read_dir(rel)?;
    // `.` and `..` first, as wasmtime lists them (`..` with this
    // directory's inode: the parent is not the guest's to see).
    let dots = [".", ".."].map(|name| (name.to_string(), here.ino, Kind::Dir));
    let entries = dots
        .into_iter()
        .chain(listed.into_iter().map(|e| (e.name, e.ino, e.kind)));
    let room = len as u32 as usize;
    let mut bytes = Vec::new();
    // A cookie is the index of the next entry; each entry is a 24-byte
    // header (next cookie, inode, name length, type) and the name.
    for (next, (name, ino, kind)) in (1u64..).zip(entries).skip(cookie as u64 as usize) {
        bytes.extend_from_slice(&next.to_le_bytes());
        bytes.extend_from_slice(&ino.to_le_bytes());
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[filetype(kind), 0, 0, 0]);
        bytes.extend_from_slice(name.as_bytes());
        if bytes.len() >= room {
            break;
        }
    }
    bytes.truncate(room);
    cx.mem.write(buf as u32, &bytes)?;
    cx.mem.put_u32(out as u32, bytes.len() as u32)
}

/// The guest path of a pre-opened directory, as `fd_prestat_dir_name`
/// gives it.
fn preopen_name(cx: &Cx<'_>, fd: i32) -> Result<String> {
    match cx.fs.fds.get(&(fd as u32)) {
        Some(Entry::Dir(dir)) if dir.preopen => Ok(format!("/{}", dir.path.join("/"))),
        _ => Err(Errno::Badf),
    }
}

fn fd_prestat_get(cx: &mut Cx<'_>, fd: i32, out: i32) -> Result<()> {
    let name = preopen_name(cx, fd)?;
    let mut b = [0u8; 8];
    b[4..8].copy_from_slice(&(name.len() as u32).to_le_bytes());
    cx.mem.write(out as u32, &b)
}

fn fd_prestat_dir_name(cx: &mut Cx<'_>, fd: i32, buf: i32, len: i32) -> Result<()> {
    let name = preopen_name(cx, fd)?;
    if (len as u32 as usize) < name.len() {
        return Err(Errno::Nametoolong);
    }
    cx.mem.write(buf as u32, name.as_bytes())
}

/// `fd_close`: a pre-opened directory closes like any descriptor (wasix
/// would keep it); wasix's stdio is closed by wasix.
fn install_close(i: &mut Installer<'_>) {
    if !i.wants("fd_close") {
        return;
    }
    let orig = i.original::<i32>("fd_close");
    let fs = i.fs.clone();
    i.define(
        "fd_close",
        move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32| {
            let entry = fs().lock().unwrap().remove(fd as u32);
            match (entry, &orig) {
                (None, _) => Ok(Errno::Badf as i32),
                (Some(Entry::Wasix(inner)), Some(orig)) => orig.call(&mut ctx, inner),
                // Dropping ours closes it.
                (Some(_), _) => Ok::<i32, RuntimeError>(Errno::Success as i32),
            }
        },
    );
}

/// `fd_renumber(from, to)`: both must be open (`EBADF`); `to` is closed
/// and `from` takes its number.
fn install_renumber(i: &mut Installer<'_>) {
    if !i.wants("fd_renumber") {
        return;
    }
    let close = i.original::<i32>("fd_close");
    let fs = i.fs.clone();
    i.define(
        "fd_renumber",
        move |mut ctx: FunctionEnvMut<'_, WasiEnv>, from: i32, to: i32| {
            let (from, to) = (from as u32, to as u32);
            let replaced = {
                let state = fs();
                let mut state = state.lock().unwrap();
                if !state.fds.contains_key(&from) || !state.fds.contains_key(&to) {
                    return Ok(Errno::Badf as i32);
                }
                if from == to {
                    return Ok(Errno::Success as i32);
                }
                let moved = state.remove(from).expect("checked above");
                state.fds.insert(to, moved)
            };
            if let (Some(Entry::Wasix(inner)), Some(close)) = (replaced, &close) {
                close.call(&mut ctx, inner)?;
            }
            Ok::<i32, RuntimeError>(Errno::Success as i32)
        },
    );
}
