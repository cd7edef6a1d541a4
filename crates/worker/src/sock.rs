//! The `sock_*` calls as POSIX answers them when there are no sockets.
//!
//! No function ever has a socket (networking is an unsupported stub), so
//! the only right answers are `ENOTSOCK` for a descriptor that exists and
//! `EBADF` for one that does not; wasix answers otherwise. Which
//! descriptors exist is the running call's state: [`install`] takes an
//! accessor that tells.

use std::sync::Arc;

use wasmer::{Function, FunctionEnvMut, Imports, Module, RuntimeError, Store};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::hostcall::{PREVIEW1, UNSTABLE};

/// Tells whether a descriptor is open in the running call.
pub type ExistsOf = Arc<dyn Fn(i32) -> bool + Send + Sync>;

fn answer(exists: &ExistsOf, fd: i32) -> Result<i32, RuntimeError> {
    Ok(if exists(fd) {
        Errno::Notsock
    } else {
        Errno::Badf
    } as i32)
}

/// Replaces the `sock_*` calls `module` imports.
pub fn install(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    module: &Module,
    exists: &ExistsOf,
) {
    for import in module.imports().functions() {
        let ns = import.module();
        if ns != PREVIEW1 && ns != UNSTABLE {
            continue;
        }
        let e = exists.clone();
        let env = &func_env.env;
        let f = match import.name() {
            "sock_accept" => Function::new_typed_with_env(
                store,
                env,
                move |_: FunctionEnvMut<'_, WasiEnv>, fd: i32, _: i32, _: i32| answer(&e, fd),
            ),
            "sock_recv" => Function::new_typed_with_env(
                store,
                env,
                move |_: FunctionEnvMut<'_, WasiEnv>,
                      fd: i32,
                      _: i32,
                      _: i32,
                      _: i32,
                      _: i32,
                      _: i32| answer(&e, fd),
            ),
            "sock_send" => Function::new_typed_with_env(
                store,
                env,
                move |_: FunctionEnvMut<'_, WasiEnv>, fd: i32, _: i32, _: i32, _: i32, _: i32| {
                    answer(&e, fd)
                },
            ),
            "sock_shutdown" => Function::new_typed_with_env(
                store,
                env,
                move |_: FunctionEnvMut<'_, WasiEnv>, fd: i32, _: i32| answer(&e, fd),
            ),
            _ => continue,
        };
        imports.define(ns, import.name(), f);
    }
}
