//! Outside `/tmp`, a call's file system is read-only, and says so.
//!
//! A call sees an in-memory root holding its capped `/tmp` and, for an
//! interpreter, `/faas` (the script and the prelude). `/faas` is a
//! [`ReadOnly`](crate::hostdir::ReadOnly) file system: no file there can be
//! written, truncated, renamed or unlinked, and nothing can be created. It
//! has no size cap of its own, so this is what keeps a call's writes inside
//! its `/tmp` cap (a writable `/faas` once took 4 GB from one call). The
//! root refuses every change too.
//!
//! Both refuse with `FsError::PermissionDenied`, which wasix reports as
//! `EPERM`, and virtual-fs has no error that becomes `EROFS`. So the WASI
//! calls that change files are wrapped: in such a call's file system the
//! only source of `EPERM` is a read-only place, and it is answered as
//! `EROFS`, what a program expects from a read-only mount.
//!
//! Two things wasix does above the file system pass anyway, and write no
//! byte: setting a file's times (kept in wasix's own inode table), and a
//! rename out of `/faas` into `/tmp`, which wasix does as copy + remove and
//! reports as done although the remove was refused: the copy lands in
//! `/tmp` (counted in its cap) and the original stays.

use wasmer::{Extern, Function, FunctionEnvMut, Imports, RuntimeError, Store, Value};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::hostcall::PREVIEW1 as NS;

/// The WASI calls that create, change or remove files (those that act on
/// file contents through an open descriptor fail earlier: a read-only file
/// is never opened for writing).
const CHANGING: &[&str] = &[
    "path_open",
    "path_create_directory",
    "path_remove_directory",
    "path_unlink_file",
    "path_rename",
    "path_symlink",
    "path_link",
    "path_filestat_set_times",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_allocate",
];

/// Wraps the file-changing calls among `imports` so a refusal by a
/// read-only place answers `EROFS`.
pub fn install(store: &mut Store, func_env: &WasiFunctionEnv, imports: &mut Imports) {
    for &name in CHANGING {
        let Some(Extern::Function(orig)) = imports.get_export(NS, name) else {
            continue;
        };
        let ty = orig.ty(store);
        // The original's own result type: these calls all return an errno.
        if ty.results() != [wasmer::Type::I32] {
            continue;
        }
        let f = Function::new_with_env(
            store,
            &func_env.env,
            ty,
            move |mut ctx: FunctionEnvMut<'_, WasiEnv>, args: &[Value]| {
                let results = orig.call(&mut ctx, args)?;
                Ok::<_, RuntimeError>(match results.first() {
                    Some(Value::I32(errno)) if *errno == Errno::Perm as i32 => {
                        vec![Value::I32(Errno::Rofs as i32)]
                    }
                    _ => results.into_vec(),
                })
            },
        );
        imports.define(NS, name, f);
    }
}
