//! `sock_shutdown` as POSIX answers it when there are no sockets.
//!
//! No function ever has a socket (networking is an unsupported stub), so
//! the only right answers are `ENOTSOCK` for a descriptor that exists and
//! `EBADF` for one that does not; wasix answers otherwise. Needs no state
//! of the running call.

use wasmer::{Function, FunctionEnvMut, Imports, RuntimeError, Store};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::hostcall::{original, with_scratch, PREVIEW1};

/// Replaces the module's `sock_shutdown`, if it imports one.
pub fn install(store: &mut Store, func_env: &WasiFunctionEnv, imports: &mut Imports) {
    let Some(fdstat) = original::<(i32, i32)>(store, imports, PREVIEW1, "fd_fdstat_get") else {
        return;
    };
    if original::<(i32, i32)>(store, imports, PREVIEW1, "sock_shutdown").is_none() {
        return;
    }
    let f = Function::new_typed_with_env(
        store,
        &func_env.env,
        move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, _how: i32| {
            // fd_fdstat_get answers in 24 bytes of guest memory: it only
            // tells whether the descriptor exists.
            let Some((errno, _)) =
                with_scratch::<24, _>(&mut ctx, |ctx, at| fdstat.call(ctx, fd, at))
            else {
                return Ok(Errno::Fault as i32);
            };
            Ok::<_, RuntimeError>(if errno? == Errno::Success as i32 {
                Errno::Notsock as i32
            } else {
                Errno::Badf as i32
            })
        },
    );
    imports.define(PREVIEW1, "sock_shutdown", f);
}
