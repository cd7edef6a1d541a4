//! A private, capped, in-memory `/tmp` for every call.
//!
//! Each call gets a fresh `TmpFileSystem` whose contents count against a
//! [`Quota`] of `max_tmp_bytes`; it is dropped with the call. Three things
//! wasmer-wasix does not do on its own are done here:
//!
//! - a write past the quota fails with `ENOSPC` (wasix reports the limiter's
//!   refusal as `EIO`): `fd_write` and `fd_pwrite` are wrapped;
//! - seeking past the quota, or writing, truncating or allocating there,
//!   fails with `EFBIG` *before* the in-memory file grows: mem_fs would
//!   zero-fill the gap up to the offset first, so one `lseek(1 TiB)` and a
//!   one-byte write could exhaust the worker;
//! - `sock_shutdown` answers `EBADF` / `ENOTSOCK` as POSIX says (no function
//!   has a socket);
//! - the quota counts bytes even when it refuses them (the buffer has
//!   already grown when the limiter is asked), so the refusal is exact.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use wasmer::{Extern, Function, FunctionEnvMut, Imports, RuntimeError, Store, TypedFunction};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::virtual_fs::limiter::FsMemoryLimiter;
use wasmer_wasix::virtual_fs::FsError;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::session::HookSlot;

/// Bytes a call's `/tmp` may hold.
#[derive(Debug)]
pub struct Quota {
    cap: usize,
    used: AtomicUsize,
    /// Set when a write was refused, so the wrapper can say ENOSPC.
    hit: AtomicBool,
}

impl Quota {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            used: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl FsMemoryLimiter for Quota {
    fn on_grow(&self, grown: usize) -> Result<(), FsError> {
        // Always counted: the buffer has grown already, and its drop will
        // report the whole capacity back through `on_shrink`.
        let now = self.used.fetch_add(grown, Ordering::Relaxed) + grown;
        if now > self.cap {
            self.hit.store(true, Ordering::Relaxed);
            Err(FsError::WriteZero)
        } else {
            Ok(())
        }
    }

    fn on_shrink(&self, shrunk: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(shrunk))
            });
    }
}

const NS: &str = "wasi_snapshot_preview1";

/// Wraps the file-growing calls of `imports` so the running call's quota
/// (read from `hooks`: these functions outlive one call) is enforced with
/// the right errnos.
pub fn install(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    hooks: &HookSlot,
) {
    type Write = (i32, i32, i32, i32);
    if let Some(orig) = original::<Write>(store, imports, "fd_write") {
        let hooks = hooks.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, iovs: i32, n: i32, out: i32| {
                let errno = orig.call(&mut ctx, fd, iovs, n, out)?;
                Ok::<_, RuntimeError>(no_space(errno, &hooks))
            },
        );
        imports.define(NS, "fd_write", f);
    }
    type PWrite = (i32, i32, i32, i64, i32);
    if let Some(orig) = original::<PWrite>(store, imports, "fd_pwrite") {
        let hooks = hooks.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>,
                  fd: i32,
                  iovs: i32,
                  n: i32,
                  at: i64,
                  out: i32| {
                if at as u64 > cap(&hooks) {
                    return Ok(Errno::Fbig as i32);
                }
                let errno = orig.call(&mut ctx, fd, iovs, n, at, out)?;
                Ok::<_, RuntimeError>(no_space(errno, &hooks))
            },
        );
        imports.define(NS, "fd_pwrite", f);
    }
    install_seek(store, func_env, imports, hooks);
    type SetSize = (i32, i64);
    if let Some(orig) = original::<SetSize>(store, imports, "fd_filestat_set_size") {
        let hooks = hooks.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, size: i64| {
                if size as u64 > cap(&hooks) {
                    return Ok(Errno::Fbig as i32);
                }
                orig.call(&mut ctx, fd, size)
            },
        );
        imports.define(NS, "fd_filestat_set_size", f);
    }
    type Allocate = (i32, i64, i64);
    if let Some(orig) = original::<Allocate>(store, imports, "fd_allocate") {
        let hooks = hooks.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, at: i64, len: i64| {
                if (at as u64).saturating_add(len as u64) > cap(&hooks) {
                    return Ok(Errno::Nospc as i32);
                }
                orig.call(&mut ctx, fd, at, len)
            },
        );
        imports.define(NS, "fd_allocate", f);
    }
}

/// The running call's `/tmp` cap (no cap when it has no `/tmp`: then no
/// file can be written at all).
fn cap(hooks: &HookSlot) -> u64 {
    hooks
        .lock()
        .unwrap()
        .quota
        .as_ref()
        .map_or(u64::MAX, |q| q.cap() as u64)
}

/// `fd_seek` that refuses to move a cursor past the quota.
fn install_seek(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    hooks: &HookSlot,
) {
    type Seek = (i32, i64, i32, i32);
    let Some(orig) = original::<Seek>(store, imports, "fd_seek") else {
        return;
    };
    let hooks = hooks.clone();
    let f = Function::new_typed_with_env(
        store,
        &func_env.env,
        move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, offset: i64, whence: i32, out: i32| {
            // Where the cursor is now, to put it back if the seek goes too far.
            let old = match orig.call(&mut ctx, fd, 0, 1, out)? {
                0 => read_u64(&ctx, out),
                errno => return Ok(errno),
            };
            let errno = orig.call(&mut ctx, fd, offset, whence, out)?;
            if errno != Errno::Success as i32 {
                return Ok(errno);
            }
            match (old, read_u64(&ctx, out)) {
                (_, Some(new)) if new <= cap(&hooks) => Ok(errno),
                (Some(old), Some(_)) => {
                    orig.call(&mut ctx, fd, old as i64, 0, out)?;
                    Ok::<_, RuntimeError>(Errno::Fbig as i32)
                }
                _ => Ok(Errno::Fault as i32),
            }
        },
    );
    imports.define(NS, "fd_seek", f);
}

/// `sock_shutdown`: no function ever has a socket, so a valid descriptor
/// is `ENOTSOCK` and an invalid one `EBADF` (wasix answers otherwise).
pub fn install_sock_shutdown(store: &mut Store, func_env: &WasiFunctionEnv, imports: &mut Imports) {
    type FdStat = (i32, i32);
    let Some(fdstat) = original::<FdStat>(store, imports, "fd_fdstat_get") else {
        return;
    };
    if original::<(i32, i32)>(store, imports, "sock_shutdown").is_none() {
        return;
    }
    let f = Function::new_typed_with_env(
        store,
        &func_env.env,
        move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, _how: i32| {
            // fd_fdstat_get needs 24 bytes of guest memory for its answer:
            // borrow the first 24 and put them back (the guest is inside
            // this call, so nothing else reads them meanwhile).
            let Some(saved) = read_bytes::<24>(&ctx, 0) else {
                return Ok(Errno::Fault as i32);
            };
            let errno = fdstat.call(&mut ctx, fd, 0)?;
            if let Some(view) = ctx.data().try_memory_view(&ctx) {
                let _ = view.write(0, &saved);
            }
            Ok::<_, RuntimeError>(if errno == Errno::Success as i32 {
                Errno::Notsock as i32
            } else {
                Errno::Badf as i32
            })
        },
    );
    imports.define(NS, "sock_shutdown", f);
}

fn read_bytes<const N: usize>(ctx: &FunctionEnvMut<'_, WasiEnv>, at: u64) -> Option<[u8; N]> {
    let view = ctx.data().try_memory_view(ctx)?;
    let mut bytes = [0u8; N];
    view.read(at, &mut bytes).ok()?;
    Some(bytes)
}

/// The little-endian u64 the guest has at `ptr`.
fn read_u64(ctx: &FunctionEnvMut<'_, WasiEnv>, ptr: i32) -> Option<u64> {
    let view = ctx.data().try_memory_view(ctx)?;
    let mut bytes = [0u8; 8];
    view.read(ptr as u32 as u64, &mut bytes).ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// The module's own import `name`, typed, if it has one.
fn original<Args>(store: &Store, imports: &Imports, name: &str) -> Option<TypedFunction<Args, i32>>
where
    Args: wasmer::WasmTypeList,
{
    match imports.get_export(NS, name) {
        Some(Extern::Function(f)) => f.typed::<Args, i32>(store).ok(),
        _ => None,
    }
}

/// EIO from a write the quota refused is ENOSPC.
fn no_space(errno: i32, hooks: &HookSlot) -> i32 {
    let refused = || {
        let hooks = hooks.lock().unwrap();
        hooks
            .quota
            .as_ref()
            .is_some_and(|q| q.hit.swap(false, Ordering::Relaxed))
    };
    if errno == Errno::Io as i32 && refused() {
        Errno::Nospc as i32
    } else {
        errno
    }
}
