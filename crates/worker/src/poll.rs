//! Our own `poll_oneoff` for WASI preview1 guests.
//!
//! wasmer-wasix 0.704's implementation parks the worker thread forever on a
//! relative clock subscription with a zero timeout (CPython's `import
//! selectors` does exactly that), and the host interrupt cannot reach a guest
//! blocked in a host call. This one never blocks past the call's deadline:
//!
//! - clock subscriptions sleep until the earliest one is due (a zero or past
//!   timeout returns at once), in the calling thread, never past the
//!   deadline: there, the call ends as a timeout;
//! - stdin is always ready (its content is in memory), stdout/stderr always
//!   writable, any other descriptor is reported ready (regular files are);
//! - no subscriptions is `EINVAL`, as other runtimes answer.
//!
//! Guest memory is read as raw bytes, never as Rust enums: a guest may pass
//! anything. The function is built once per session; it finds the running
//! call's [`PollState`] through the accessor given to [`install`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmer::{Extern, Function, FunctionEnvMut, Imports, RuntimeError, Store};
use wasmer_wasix::types::wasi::Errno;
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::hostcall::Layout;
use crate::stdio::PendingInput;

/// Most subscriptions one call may pass (wasix's own default).
const MAX_SUBSCRIPTIONS: usize = 1024;
const EVENT_SIZE: usize = 32;

/// What the host function needs of its call; clones share it.
#[derive(Clone, Default)]
pub struct PollState {
    pub stdin: PendingInput,
    /// When the running call must end.
    pub deadline: Arc<Mutex<Option<Instant>>>,
    /// Set when a poll stopped the guest at its deadline.
    pub timed_out: Arc<AtomicBool>,
}

/// Returns the running call's [`PollState`].
pub type PollStateOf = Arc<dyn Fn() -> PollState + Send + Sync>;

/// A subscription's layout in each namespace.
impl Layout {
    fn size(self) -> usize {
        match self {
            Self::Preview1 => 48,
            Self::Unstable => 56,
        }
    }

    /// Offsets of (clock id, timeout, flags) in a clock subscription.
    fn clock_fields(self) -> (usize, usize, usize) {
        match self {
            Self::Preview1 => (16, 24, 40),
            Self::Unstable => (24, 32, 48),
        }
    }
}

/// Replaces `poll_oneoff` in every namespace the module imports it from;
/// `state` returns the running call's state.
pub fn install(
    store: &mut Store,
    func_env: &WasiFunctionEnv,
    imports: &mut Imports,
    state: &PollStateOf,
) {
    for layout in [Layout::Preview1, Layout::Unstable] {
        if !matches!(
            imports.get_export(layout.namespace(), "poll_oneoff"),
            Some(Extern::Function(_))
        ) {
            continue;
        }
        let state = state.clone();
        let function = Function::new_typed_with_env(
            store,
            &func_env.env,
            move |ctx: FunctionEnvMut<'_, WasiEnv>, subs: i32, events: i32, n: i32, out_n: i32| {
                poll_oneoff(ctx, &state(), layout, [subs, events, n, out_n])
            },
        );
        imports.define(layout.namespace(), "poll_oneoff", function);
    }
}

fn poll_oneoff(
    ctx: FunctionEnvMut<'_, WasiEnv>,
    state: &PollState,
    layout: Layout,
    [subs_ptr, events_ptr, count, nevents_ptr]: [i32; 4],
) -> Result<i32, RuntimeError> {
    let count = count as u32 as usize;
    if count == 0 {
        return Ok(Errno::Inval as i32);
    }
    if count > MAX_SUBSCRIPTIONS {
        return Ok(Errno::Toobig as i32);
    }
    let Some(view) = ctx.data().try_memory_view(&ctx) else {
        return Ok(Errno::Fault as i32);
    };
    let mut subs = vec![0u8; count * layout.size()];
    if view.read(subs_ptr as u32 as u64, &mut subs).is_err() {
        return Ok(Errno::Fault as i32);
    }
    let started = Instant::now();
    let mut ready = Vec::new();
    let mut clocks = Vec::new();
    for sub in subs.chunks_exact(layout.size()) {
        match classify(sub, layout, started, state) {
            Ok(Entry::Ready(event)) => ready.push(event),
            Ok(Entry::Clock(userdata, due)) => clocks.push((userdata, due)),
            Err(errno) => return Ok(errno as i32),
        }
    }
    if ready.is_empty() {
        let due = clocks.iter().map(|c| c.1).min().expect("count > 0");
        sleep_until(due, state)?;
    }
    let now = Instant::now();
    for (userdata, due) in clocks {
        if due <= now {
            ready.push(event(userdata, 0, 0, false));
        }
    }
    let bytes: Vec<u8> = ready.iter().flatten().copied().collect();
    let written = view.write(events_ptr as u32 as u64, &bytes).is_ok()
        && view
            .write(
                nevents_ptr as u32 as u64,
                &(ready.len() as u32).to_le_bytes(),
            )
            .is_ok();
    Ok(if written {
        Errno::Success
    } else {
        Errno::Fault
    } as i32)
}

/// One subscription: an event ready now, or a clock due at some instant.
enum Entry {
    Ready([u8; EVENT_SIZE]),
    Clock(u64, Instant),
}

fn classify(sub: &[u8], layout: Layout, now: Instant, state: &PollState) -> Result<Entry, Errno> {
    let userdata = u64_at(sub, 0);
    let fd = u32_at(sub, 16);
    match sub[8] {
        0 => {
            let (id_at, timeout_at, flags_at) = layout.clock_fields();
            let (clock, timeout) = (u32_at(sub, id_at), u64_at(sub, timeout_at));
            let absolute = u16_at(sub, flags_at) & 1 != 0;
            let wait = if absolute {
                timeout.saturating_sub(clock_now_ns(clock).ok_or(Errno::Inval)?)
            } else if clock <= 3 {
                timeout
            } else {
                return Err(Errno::Inval);
            };
            Ok(Entry::Clock(userdata, now + Duration::from_nanos(wait)))
        }
        1 => {
            let available = if fd == 0 {
                state.stdin.remaining() as u64
            } else {
                0
            };
            Ok(Entry::Ready(event(
                userdata,
                1,
                available,
                fd == 0 && available == 0,
            )))
        }
        2 => Ok(Entry::Ready(event(userdata, 2, 64 * 1024, false))),
        _ => Err(Errno::Inval),
    }
}

/// Sleeps until `due`, or ends the call (a trap the worker reports as a
/// timeout) when the deadline comes first.
fn sleep_until(due: Instant, state: &PollState) -> Result<(), RuntimeError> {
    let deadline = *state.deadline.lock().unwrap();
    loop {
        let now = Instant::now();
        if now >= due {
            return Ok(());
        }
        if deadline.is_some_and(|d| now >= d) {
            state.timed_out.store(true, Ordering::Release);
            return Err(RuntimeError::new("the call ran past its deadline"));
        }
        let until = deadline.map_or(due, |d| d.min(due));
        std::thread::sleep(until - now);
    }
}

/// The clocks a guest can ask for, in nanoseconds.
fn clock_now_ns(clock: u32) -> Option<u64> {
    match clock {
        0 => Some(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_nanos() as u64,
        ),
        // wasix's clock_time_get(MONOTONIC) reads CLOCK_MONOTONIC too.
        1..=3 => {
            let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
            Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        }
        _ => None,
    }
}

/// A preview1 event: userdata, errno 0, type, and for fd events the bytes
/// available and the hang-up flag.
fn event(userdata: u64, kind: u8, nbytes: u64, hangup: bool) -> [u8; EVENT_SIZE] {
    let mut e = [0u8; EVENT_SIZE];
    e[0..8].copy_from_slice(&userdata.to_le_bytes());
    e[10] = kind;
    if kind != 0 {
        e[16..24].copy_from_slice(&nbytes.to_le_bytes());
        e[24..26].copy_from_slice(&u16::from(hangup).to_le_bytes());
    }
    e
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
