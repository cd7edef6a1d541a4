//! Sessions: one Wasmer store reused by successive calls of one module.
//!
//! Every call still gets a fresh instance (its own linear memory, globals
//! and tables) and a fresh WASI environment (arguments, variables, stdio,
//! `/tmp`). What a session keeps from one call to the next is the store and
//! the host functions bound in it: the WASI imports (about fifty
//! `Function`s whose construction was a third of a call's cost) and our own
//! replacements of some of them. Those are leaves that know nothing of
//! sessions: each is given an accessor that reads the running call's state
//! from this session's [`HookSlot`] ([`bind_host_calls`]), so nothing of
//! one call is reachable from the next: the previous environment is
//! dropped when the next one replaces it, and the previous instance is
//! never referenced again.
//!
//! A Wasmer store cannot free one of its instances before the store itself
//! is dropped, so a session is retired (and dropped after the answer has
//! been sent) once it has served [`MAX_CALLS`] calls, once the linear
//! memories it holds reach [`MAX_HELD_BYTES`], or after a call that trapped
//! or timed out.

use std::sync::{Arc, Mutex};

use wasmer::{Imports, Module, Store};
use wasmer_wasix::WasiFunctionEnv;

use crate::environ::{Environ, WithEnviron};
use crate::poll::{PollState, PollStateOf};
use crate::sock::ExistsOf;
use crate::wasifs::{CallFs, CallFsOf};
use crate::wasm::Entry;

/// Calls one session serves at most. Dropping a store unmaps every memory it
/// holds (10–40 µs each, most of it a cross-CPU TLB shoot-down), and it
/// cannot be done in parts, so this bounds the pause a worn store costs
/// the job that follows it (measured at concurrency 1: p99 about 0.6 ms
/// with 1, 0.8 ms with 8, 1 ms with 16, 1.6 ms with 64), while 8 keeps the
/// amortised cost of a new store (about 35 µs) near 4 µs a call.
pub const MAX_CALLS: u32 = 8;
/// Calls a session whose instance is rewound for each call serves at most
/// (its store holds that one instance: nothing grows per call, but what a
/// store may keep of a call, an exception's payload, stays bounded).
pub const MAX_REWOUND_CALLS: u32 = 256;
/// Linear memory (of finished instances) a session may hold before it is
/// retired: the worker's resident size stays within this much of a fresh
/// store's.
pub const MAX_HELD_BYTES: u64 = 32 * 1024 * 1024;

/// What our host functions need of the running call.
#[derive(Clone)]
pub struct CallHooks {
    pub poll: PollState,
    /// The call's files and descriptors.
    pub fs: Arc<Mutex<CallFs>>,
    /// The call's variables ([`crate::environ`]).
    pub environ: Environ,
    /// The call's outbound HTTP state, when its function has grants.
    pub outbound: Option<Arc<crate::outbound::CallOutbound>>,
}

impl Default for CallHooks {
    fn default() -> Self {
        Self {
            poll: PollState::default(),
            fs: Arc::new(Mutex::new(CallFs::stdio_only())),
            environ: Environ::default(),
            outbound: None,
        }
    }
}

/// Where host functions built once per session find the running call's
/// [`CallHooks`]. Locked only by the worker's one guest thread, so never
/// contended.
pub type HookSlot = Arc<Mutex<CallHooks>>;

/// Replaces WASI host functions among `imports` with ours, each reading
/// the running call's part of `hooks`: `poll_oneoff` (bounded by the
/// deadline), `environ_get`/`environ_sizes_get` (the call's own variables),
/// every descriptor and path call ([`crate::wasifs`]) and the `sock_*`
/// calls.
pub(crate) fn bind_host_calls(
    store: &mut Store,
    env: &WasiFunctionEnv,
    imports: &mut Imports,
    module: &Module,
    hooks: &HookSlot,
) {
    let slot = hooks.clone();
    let poll: PollStateOf = Arc::new(move || slot.lock().unwrap().poll.clone());
    crate::poll::install(store, env, imports, &poll);
    let slot = hooks.clone();
    let fs: CallFsOf = Arc::new(move || slot.lock().unwrap().fs.clone());
    crate::wasifs::install(store, env, imports, module, &fs);
    let slot = hooks.clone();
    let environ: WithEnviron = Arc::new(move |read| read(&slot.lock().unwrap().environ));
    crate::environ::install(store, env, imports, &environ);
    let slot = hooks.clone();
    let exists: ExistsOf = Arc::new(move |fd| slot.lock().unwrap().fs.lock().unwrap().exists(fd));
    crate::sock::install(store, env, imports, module, &exists);
}

/// A store, its WASI function environment and the imports bound to it,
/// for one module.
pub struct Session {
    /// Which module this session instantiates (the caller's name for it).
    pub(crate) key: String,
    pub(crate) store: Store,
    pub(crate) env: WasiFunctionEnv,
    pub(crate) imports: Imports,
    pub(crate) hooks: HookSlot,
    /// How its instances start (a reactor's store also holds the
    /// `host.call` stub).
    entry: Entry,
    /// The instance kept to be rewound for the next call, when it can be.
    pub(crate) rewindable: Option<crate::wasm::Rewindable>,
    /// Whether the current instance is the kept one, rewound (its memory
    /// was counted when it was made).
    pub(crate) rewound: bool,
    calls: u32,
    held_bytes: u64,
    retired: bool,
}

impl Session {
    pub(crate) fn new(
        key: &str,
        store: Store,
        env: WasiFunctionEnv,
        imports: Imports,
        hooks: HookSlot,
        entry: Entry,
    ) -> Self {
        Self {
            key: key.to_string(),
            store,
            env,
            imports,
            hooks,
            entry,
            rewindable: None,
            rewound: false,
            calls: 0,
            held_bytes: 0,
            retired: false,
        }
    }

    /// The caller's name for the module this session runs.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the session must be dropped rather than serve another call.
    pub fn worn(&self) -> bool {
        let max_calls = match self.rewindable {
            Some(_) => MAX_REWOUND_CALLS,
            None => MAX_CALLS,
        };
        self.retired || self.calls >= max_calls || self.held_bytes >= MAX_HELD_BYTES
    }

    /// Whether the next instance of module `key`, started as `entry`, may
    /// be built here.
    pub(crate) fn serves(&self, key: &str, entry: Entry) -> bool {
        !self.worn() && self.key == key && self.entry == entry
    }

    /// Counts the current instance as done with (it ran, or never will):
    /// its linear memory stays mapped until the store is dropped, unless it
    /// is the instance kept to be rewound (its pages are dropped then).
    pub(crate) fn count_instance(&mut self) {
        self.calls += 1;
        if self.rewindable.is_some() {
            return;
        }
        let memory_bytes = self
            .env
            .data(&self.store)
            .try_memory_view(&self.store)
            .map_or(0, |view| view.data_size());
        self.held_bytes += memory_bytes;
    }

    /// Counts an instance that was kept to be rewound and will not be
    /// (its memory stays mapped until the store is dropped).
    pub(crate) fn count_abandoned(&mut self, memory_bytes: u64) {
        self.held_bytes += memory_bytes;
    }

    /// Marks the session for dropping (after a trap or an interrupt, nothing
    /// of that store is reused).
    pub(crate) fn retire(&mut self) {
        self.retired = true;
    }
}
