//! Our own `environ_get` and `environ_sizes_get` for WASI guests.
//!
//! wasmer-wasix fixes a guest's variables when its environment is built,
//! and an idle worker builds the next call's instance before that call's
//! job has arrived ([`crate::jobs`]). A call's own variable,
//! `FAAS_REQUEST_ID`, is only known once the job is read; so the guest
//! reads its variables from the running call's [`Environ`] (in its
//! [`CallHooks`](crate::session::CallHooks)), which the worker completes
//! just before `_start`. The host functions are built once per session,
//! like `poll_oneoff` ([`crate::poll`]).
//!
//! Guest pointers are checked: a write outside the guest's memory answers
//! `EFAULT`, never touches the host.

use std::sync::Arc;

use wasmer::{Extern, Function, FunctionEnvMut, Imports, Store};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

/// How the host functions read the running call's variables: they pass a
/// reader, which gets the variables for as long as it runs (the caller
/// owns where they live; see `session::bind_host_calls`).
pub type WithEnviron = Arc<dyn Fn(&mut dyn FnMut(&Environ) -> Errno) -> Errno + Send + Sync>;

/// The namespaces whose `environ_*` functions take 32-bit pointers.
const NAMESPACES: [&str; 3] = ["wasi_snapshot_preview1", "wasi_unstable", "wasix_32v1"];

/// A call's environment variables, as the guest reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environ {
    /// `KEY=VALUE` and a NUL, each.
    entries: Vec<Vec<u8>>,
}

impl Environ {
    pub fn new(vars: &[(String, String)]) -> Self {
        let mut environ = Self::default();
        for (key, value) in vars {
            environ.set(key, value);
        }
        environ
    }

    /// Sets `key` (replacing an earlier value of it).
    pub fn set(&mut self, key: &str, value: &str) {
        let mut entry = Vec::with_capacity(key.len() + value.len() + 2);
        entry.extend_from_slice(key.as_bytes());
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        entry.push(0);
        let prefix = key.len() + 1;
        match self
            .entries
            .iter_mut()
            .find(|e| e.len() > prefix && e[..prefix] == entry[..prefix])
        {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }

    /// `environ_sizes_get`'s answer: the count and the bytes of all
    /// entries (NULs included).
    fn sizes(&self) -> (u32, u32) {
        let bytes: usize = self.entries.iter().map(Vec::len).sum();
        (self.entries.len() as u32, bytes as u32)
    }

    /// The pointer table (each entry's guest address, from `buf`) and the
    /// entries, as `environ_get` writes them; `None` if they would not fit
    /// a 32-bit address space.
    fn layout(&self, buf: u32) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut table = Vec::with_capacity(self.entries.len() * 4);
        let mut offset = 0u32;
        for entry in &self.entries {
            table.extend_from_slice(&buf.checked_add(offset)?.to_le_bytes());
            offset = offset.checked_add(u32::try_from(entry.len()).ok()?)?;
        }
        Some((table, self.entries.concat()))
    }
}

/// Replaces `environ_get` and `environ_sizes_get` in every namespace the
/// imports hold them in. The functions read the running call's variables
/// through `environ`.
pub fn install(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    environ: &WithEnviron,
) {
    for namespace in NAMESPACES {
        if !matches!(
            imports.get_export(namespace, "environ_get"),
            Some(Extern::Function(_))
        ) {
            continue;
        }
        let with = environ.clone();
        let get = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |ctx: FunctionEnvMut<'_, WasiEnv>, table: i32, buf: i32| {
                let mut ctx = Some(ctx);
                with(&mut |vars| match ctx.take() {
                    Some(ctx) => environ_get(ctx, vars, table, buf),
                    None => Errno::Fault,
                }) as i32
            },
        );
        let with = environ.clone();
        let sizes = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |ctx: FunctionEnvMut<'_, WasiEnv>, count: i32, size: i32| {
                let mut ctx = Some(ctx);
                with(&mut |vars| match ctx.take() {
                    Some(ctx) => environ_sizes_get(ctx, vars, count, size),
                    None => Errno::Fault,
                }) as i32
            },
        );
        imports.define(namespace, "environ_get", get);
        imports.define(namespace, "environ_sizes_get", sizes);
    }
}

fn environ_sizes_get(
    ctx: FunctionEnvMut<'_, WasiEnv>,
    environ: &Environ,
    count_ptr: i32,
    size_ptr: i32,
) -> Errno {
    let Some(view) = ctx.data().try_memory_view(&ctx) else {
        return Errno::Fault;
    };
    let (count, size) = environ.sizes();
    let written = view
        .write(count_ptr as u32 as u64, &count.to_le_bytes())
        .and_then(|()| view.write(size_ptr as u32 as u64, &size.to_le_bytes()));
    match written {
        Ok(()) => Errno::Success,
        Err(_) => Errno::Fault,
    }
}

fn environ_get(
    ctx: FunctionEnvMut<'_, WasiEnv>,
    environ: &Environ,
    table_ptr: i32,
    buf_ptr: i32,
) -> Errno {
    let Some(view) = ctx.data().try_memory_view(&ctx) else {
        return Errno::Fault;
    };
    let Some((table, strings)) = environ.layout(buf_ptr as u32) else {
        return Errno::Fault;
    };
    let written = view
        .write(table_ptr as u32 as u64, &table)
        .and_then(|()| view.write(buf_ptr as u32 as u64, &strings));
    match written {
        Ok(()) => Errno::Success,
        Err(_) => Errno::Fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_laid_out_as_wasi_expects() {
        let mut environ = Environ::new(&[
            ("FAAS_FUNCTION".into(), "f_1".into()),
            ("A".into(), "1".into()),
        ]);
        environ.set("FAAS_REQUEST_ID", "r-1");
        environ.set("FAAS_REQUEST_ID", "r-2");
        // A key that is a prefix of another is its own variable.
        environ.set("FAAS", "x");
        assert_eq!(environ.sizes(), (4, 18 + 4 + 20 + 7));
        let (table, strings) = environ.layout(1000).unwrap();
        let addresses: Vec<u32> = table
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(addresses, [1000, 1018, 1022, 1042]);
        assert_eq!(
            strings,
            b"FAAS_FUNCTION=f_1\0A=1\0FAAS_REQUEST_ID=r-2\0FAAS=x\0".to_vec()
        );
        // Entries that would wrap past 4 GiB are refused, not wrapped.
        assert!(environ.layout(u32::MAX - 10).is_none());
        assert_eq!(Environ::default().sizes(), (0, 0));
    }
}
