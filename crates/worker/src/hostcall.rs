//! What the replacements of WASI host functions share: the namespaces, and
//! finding wasix's own function to call it from ours.
//!
//! The replacements themselves ([`crate::poll`], [`crate::wasifs`],
//! [`crate::sock`]) are leaves: none knows where a call's state is kept.
//! Each `install` takes an accessor (a closure that returns the running
//! call's state, the way wasmtime's `add_to_linker(linker, get_cx)` does),
//! and [`crate::session`] hands them one reading its slot.

use wasmer::{Extern, Imports, Store, TypedFunction, WasmTypeList};

/// The namespace of WASI preview1.
pub const PREVIEW1: &str = "wasi_snapshot_preview1";
/// The older namespace some toolchains still import (same calls, a few
/// different layouts).
pub const UNSTABLE: &str = "wasi_unstable";

/// The two 32-bit WASI namespaces: they differ in a few layouts (a
/// subscription, a file's stat, the standard descriptors' order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Preview1,
    Unstable,
}

impl Layout {
    pub fn namespace(self) -> &'static str {
        match self {
            Self::Preview1 => PREVIEW1,
            Self::Unstable => UNSTABLE,
        }
    }
}

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
