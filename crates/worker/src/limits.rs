//! Per-call limits for WebAssembly guests.
//!
//! - **Memory**: [`CappedTunables`] clamps every linear memory's maximum to
//!   the current job's cap, so `memory.grow` past it fails *inside* the guest
//!   (malloc returns NULL) instead of growing the host. Tunables belong to the
//!   engine, and a worker runs one job at a time, so the cap is a shared
//!   atomic set before each instantiation.
//! - **Time**: [`Watchdog`] is one long-lived thread that interrupts the
//!   running store when its deadline passes (Wasmer's host interrupt, a
//!   signal to the guest's thread). No thread is created per call, and a
//!   call costs it no wake-up.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmer::sys::vm::{
    MemoryError, MemoryStyle, TableStyle, VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryType, Pages, TableType};

use crate::memimage::{MemoryImage, Rewind};

/// WebAssembly pages are 64 KiB.
pub const WASM_PAGE: u64 = 64 * 1024;

/// The memory image the next instantiation maps its memory from
/// ([`crate::memimage`]), set by the sandbox around `Instance::new` of a
/// module that has one, and empty otherwise.
pub type ImageSlot = Arc<Mutex<ImageUse>>;

/// See [`ImageSlot`].
#[derive(Default)]
pub struct ImageUse {
    /// The image to map.
    pub image: Option<Arc<MemoryImage>>,
    /// How to rewind the memory made from it, once made.
    pub made: Option<Rewind>,
}

/// Tunables that cap linear memory at a limit that can change between
/// calls, and map a module's initial memory from its image when it has one.
pub struct CappedTunables {
    base: BaseTunables,
    max_pages: Arc<AtomicU32>,
    image: ImageSlot,
}

impl CappedTunables {
    pub fn new(base: BaseTunables, max_pages: Arc<AtomicU32>, image: ImageSlot) -> Self {
        Self {
            base,
            max_pages,
            image,
        }
    }

    fn capped(&self, ty: &MemoryType) -> Result<MemoryType, MemoryError> {
        let cap = Pages(self.max_pages.load(Ordering::Relaxed));
        if ty.minimum > cap {
            return Err(MemoryError::Generic(format!(
                "the module needs {} MiB of memory at start; the limit is {} MiB",
                u64::from(ty.minimum.0) * WASM_PAGE / (1024 * 1024),
                u64::from(cap.0) * WASM_PAGE / (1024 * 1024)
            )));
        }
        let mut ty = *ty;
        ty.maximum = Some(ty.maximum.map_or(cap, |max| max.min(cap)));
        Ok(ty)
    }
}

impl Tunables for CappedTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(memory)
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        self.base.create_host_memory(&self.capped(ty)?, style)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        let ty = self.capped(ty)?;
        let image = self.image.lock().unwrap().image.clone();
        if let Some(image) = image {
            // SAFETY: as below.
            if let Some(made) = unsafe { image.memory(&ty, style, Some(vm_definition_location)) } {
                let (memory, rewind) = made?;
                self.image.lock().unwrap().made = Some(rewind);
                return Ok(memory);
            }
        }
        // SAFETY: forwarded unchanged from our caller, who upholds the
        // contract of `Tunables::create_vm_memory`.
        unsafe {
            self.base
                .create_vm_memory(&ty, style, vm_definition_location)
        }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: as above.
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }
}

/// What the watchdog thread watches: the running call's deadline.
struct Watch {
    deadline: Instant,
    interrupter: wasmer::Interrupter,
    fired: Arc<AtomicBool>,
}

/// Interrupts a running guest at its deadline.
///
/// Arming and disarming only swap a value under an uncontended lock: the
/// watchdog thread polls every [`TICK`] instead of being woken twice per
/// call, which measurably cost more than the check itself on the hot path.
/// Deadlines are therefore honoured within one tick.
pub struct Watchdog {
    current: Arc<Mutex<Option<Watch>>>,
}

/// How often the watchdog looks at the clock.
pub const TICK: Duration = Duration::from_millis(5);

/// Disarms the watchdog when dropped; says whether it fired.
pub struct Armed<'a> {
    watchdog: &'a Watchdog,
    fired: Arc<AtomicBool>,
}

impl Armed<'_> {
    /// Disarms the watchdog and says whether it fired: after this it cannot.
    pub fn disarm(self) -> bool {
        let fired = self.fired.clone();
        drop(self);
        fired.load(Ordering::Acquire)
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.watchdog.current.lock().unwrap().take();
    }
}

impl Watchdog {
    pub fn start() -> std::io::Result<Self> {
        let current: Arc<Mutex<Option<Watch>>> = Arc::default();
        // The thread holds only a weak handle, so it ends with its watchdog.
        let watched = Arc::downgrade(&current);
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                let Some(current) = watched.upgrade() else {
                    return;
                };
                let slot = current.lock().unwrap();
                // Interrupted again at every tick until disarmed: Wasmer
                // drops a request that finds the store between states
                // (not running, or another interrupt still in flight),
                // and one lost request would let the guest run on until
                // the server kills the worker.
                if let Some(watch) = slot.as_ref().filter(|w| Instant::now() >= w.deadline) {
                    watch.fired.store(true, Ordering::Release);
                    watch.interrupter.interrupt();
                }
            })?;
        Ok(Self { current })
    }

    /// Interrupts `interrupter`'s store at `deadline` unless the returned
    /// guard is dropped first.
    pub fn arm(&self, deadline: Instant, interrupter: wasmer::Interrupter) -> Armed<'_> {
        let fired = Arc::new(AtomicBool::new(false));
        *self.current.lock().unwrap() = Some(Watch {
            deadline,
            interrupter,
            fired: fired.clone(),
        });
        Armed {
            watchdog: self,
            fired,
        }
    }
}
