//! What the replacements of WASI host functions share: the namespaces, and
//! finding wasix's own function to call it from ours.
//!
//! The replacements themselves ([`crate::poll`], [`crate::wasifs`],
//! [`crate::sock`]) are leaves: none knows where a call's state is kept.
//! Each `install` takes an accessor (a closure that returns the running
//! call's state, the way wasmtime's `add_to_linker(linker, get_cx)` does),
//! and [`crate::session`] hands them one reading its slot.
//!
//! Besides WASI, the CPython reactor we ship imports `host.call`, the tool
//! channel of the host it was built for: [`stub_host_call`] answers it.

use wasmer::{Extern, Function, Imports, Module, Store, TypedFunction, WasmTypeList};

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

/// What the `host.call` stub answers: "no host" (the value the host the
/// module was built for gives when it has no tools).
pub const NO_HOST: i32 = -1;

/// Answers the `host.call` import of a pre-initialised interpreter we ship
/// (CPython's reactor: the tool channel of the host it was built for) with
/// [`NO_HOST`], when `module` imports it with that signature. Deployed
/// modules never get it: `crate::artifact::check_imports` refuses every
/// import but WASI's at deploy.
pub fn stub_host_call(store: &mut Store, imports: &mut Imports, module: &Module) {
    let wanted = module.imports().functions().any(|import| {
        import.module() == "host"
            && import.name() == "call"
            && import.ty().params() == [wasmer::Type::I32; 4]
            && import.ty().results() == [wasmer::Type::I32]
    });
    if wanted {
        let stub = Function::new_typed(store, |_: i32, _: i32, _: i32, _: i32| -> i32 { NO_HOST });
        imports.define("host", "call", stub);
    }
}
