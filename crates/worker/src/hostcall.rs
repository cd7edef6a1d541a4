//! What every replacement of a WASI host function needs: finding the
//! function a module imports (to call it from ours) and reading or writing
//! a few bytes of guest memory.
//!
//! The replacements themselves ([`crate::poll`], [`crate::tmpfs`],
//! [`crate::rofs`], [`crate::sock`]) are leaves: none
//! knows where a call's state is kept. Each `install` takes an accessor (a
//! closure that returns the running call's state, the way wasmtime's
//! `add_to_linker(linker, get_cx)` does), and [`crate::session`] hands
//! them one reading its slot.

use wasmer::{Extern, FunctionEnvMut, Imports, Store, TypedFunction, WasmTypeList};
use wasmer_wasix::WasiEnv;

/// The namespace of WASI preview1.
pub const PREVIEW1: &str = "wasi_snapshot_preview1";
/// The older namespace some toolchains still import (same calls, a few
/// different layouts).
pub const UNSTABLE: &str = "wasi_unstable";

/// The module's own import `ns::name`, typed, if it imports it with
/// exactly these parameters and an errno result.
pub fn original<Args>(
    store: &Store,
    imports: &Imports,
    ns: &str,
    name: &str,
) -> Option<TypedFunction<Args, i32>>
where
    Args: WasmTypeList,
{
    match imports.get_export(ns, name) {
        Some(Extern::Function(f)) => f.typed::<Args, i32>(store).ok(),
        _ => None,
    }
}

/// `N` bytes of guest memory at `at`.
pub fn read_bytes<const N: usize>(ctx: &FunctionEnvMut<'_, WasiEnv>, at: u64) -> Option<[u8; N]> {
    let view = ctx.data().try_memory_view(ctx)?;
    let mut bytes = [0u8; N];
    view.read(at, &mut bytes).ok()?;
    Some(bytes)
}

/// Writes `bytes` into guest memory at `at`; false if out of bounds.
pub fn write_bytes(ctx: &FunctionEnvMut<'_, WasiEnv>, at: u64, bytes: &[u8]) -> bool {
    ctx.data()
        .try_memory_view(ctx)
        .is_some_and(|view| view.write(at, bytes).is_ok())
}

/// The little-endian u64 the guest has at `ptr`.
pub fn read_u64(ctx: &FunctionEnvMut<'_, WasiEnv>, ptr: i32) -> Option<u64> {
    read_bytes::<8>(ctx, ptr as u32 as u64).map(u64::from_le_bytes)
}

/// The little-endian u32 the guest has at `ptr`.
pub fn read_u32(ctx: &FunctionEnvMut<'_, WasiEnv>, ptr: i32) -> Option<u32> {
    read_bytes::<4>(ctx, ptr as u32 as u64).map(u32::from_le_bytes)
}

/// Writes a little-endian u32 at `ptr`; false if out of bounds.
pub fn write_u32(ctx: &FunctionEnvMut<'_, WasiEnv>, ptr: i32, value: u32) -> bool {
    write_bytes(ctx, ptr as u32 as u64, &value.to_le_bytes())
}

/// Runs `f` with `N` bytes of guest memory at address 0 lent to it as
/// scratch space (some WASI calls answer only into guest memory), then
/// puts the guest's bytes back. Sound because the guest's one thread is
/// inside the host call meanwhile. `None` when the memory is too small.
pub fn with_scratch<const N: usize, T>(
    ctx: &mut FunctionEnvMut<'_, WasiEnv>,
    f: impl FnOnce(&mut FunctionEnvMut<'_, WasiEnv>, i32) -> T,
) -> Option<(T, [u8; N])> {
    let saved = read_bytes::<N>(ctx, 0)?;
    let out = f(ctx, 0);
    let answer = read_bytes::<N>(ctx, 0)?;
    write_bytes(ctx, 0, &saved);
    Some((out, answer))
}
