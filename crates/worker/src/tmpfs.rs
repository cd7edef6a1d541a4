//! A private, capped, in-memory `/tmp` for every call.
//!
//! Each call gets a fresh `TmpFileSystem` whose contents count against a
//! [`Quota`] of `max_tmp_bytes`; it is dropped with the call. What
//! wasmer-wasix does not do on its own is done here:
//!
//! - a write past the quota fails with `ENOSPC` (wasix reports the limiter's
//!   refusal as `EIO`): `fd_write` and `fd_pwrite` are wrapped;
//! - seeking past the quota, or writing, truncating or allocating there,
//!   fails with `EFBIG` *before* the in-memory file grows: mem_fs would
//!   zero-fill the gap up to the offset first, so one `lseek(1 TiB)` and a
//!   one-byte write could exhaust the worker;
//! - the quota counts bytes even when it refuses them (the buffer has
//!   already grown when the limiter is asked), so the refusal is exact.
//!
//! The wrappers are built once per session and outlive a call, so they
//! find the running call's quota through the accessor given to
//! [`install`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use wasmer::{Function, FunctionEnvMut, Imports, RuntimeError, Store, TypedFunction};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::virtual_fs::limiter::FsMemoryLimiter;
use wasmer_wasix::virtual_fs::FsError;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::hostcall::{self, read_u64, PREVIEW1 as NS};

/// Returns the running call's quota (`None`: the call has no `/tmp`).
pub type QuotaOf = Arc<dyn Fn() -> Option<Arc<Quota>> + Send + Sync>;

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

/// Wraps the file-growing calls of `imports` so the running call's quota
/// (`quota` returns it) is enforced with the right errnos.
pub fn install(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    quota: &QuotaOf,
) {
    type Write = (i32, i32, i32, i32);
    if let Some(orig) = original::<Write>(store, imports, "fd_write") {
        let quota = quota.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, iovs: i32, n: i32, out: i32| {
                let errno = orig.call(&mut ctx, fd, iovs, n, out)?;
                Ok::<_, RuntimeError>(no_space(errno, &quota))
            },
        );
        imports.define(NS, "fd_write", f);
    }
    type PWrite = (i32, i32, i32, i64, i32);
    if let Some(orig) = original::<PWrite>(store, imports, "fd_pwrite") {
        let quota = quota.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>,
                  fd: i32,
                  iovs: i32,
                  n: i32,
                  at: i64,
                  out: i32| {
                if at as u64 > cap(&quota) {
                    return Ok(Errno::Fbig as i32);
                }
                let errno = orig.call(&mut ctx, fd, iovs, n, at, out)?;
                Ok::<_, RuntimeError>(no_space(errno, &quota))
            },
        );
        imports.define(NS, "fd_pwrite", f);
    }
    install_seek(store, func_env, imports, quota);
    type SetSize = (i32, i64);
    if let Some(orig) = original::<SetSize>(store, imports, "fd_filestat_set_size") {
        let quota = quota.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, size: i64| {
                if size as u64 > cap(&quota) {
                    return Ok(Errno::Fbig as i32);
                }
                orig.call(&mut ctx, fd, size)
            },
        );
        imports.define(NS, "fd_filestat_set_size", f);
    }
    type Allocate = (i32, i64, i64);
    if let Some(orig) = original::<Allocate>(store, imports, "fd_allocate") {
        let quota = quota.clone();
        let f = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, at: i64, len: i64| {
                if (at as u64).saturating_add(len as u64) > cap(&quota) {
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
fn cap(quota: &QuotaOf) -> u64 {
    quota().map_or(u64::MAX, |q| q.cap() as u64)
}

/// `fd_seek` that refuses to move a cursor past the quota.
fn install_seek(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    quota: &QuotaOf,
) {
    type Seek = (i32, i64, i32, i32);
    let Some(orig) = original::<Seek>(store, imports, "fd_seek") else {
        return;
    };
    let quota = quota.clone();
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
                (_, Some(new)) if new <= cap(&quota) => Ok(errno),
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

/// The module's own import `name`, typed, if it has one.
fn original<Args>(store: &Store, imports: &Imports, name: &str) -> Option<TypedFunction<Args, i32>>
where
    Args: wasmer::WasmTypeList,
{
    hostcall::original(store, imports, NS, name)
}

/// EIO from a write the quota refused is ENOSPC.
fn no_space(errno: i32, quota: &QuotaOf) -> i32 {
    let refused = || quota().is_some_and(|q| q.hit.swap(false, Ordering::Relaxed));
    if errno == Errno::Io as i32 && refused() {
        Errno::Nospc as i32
    } else {
        errno
    }
}
