//! Copy-on-write memory images: a module's initial linear memory mapped
//! from a file instead of copied into every instance.
//!
//! Wasmer instantiates a module by copying each active data segment into
//! fresh memory, about 0.55 ms per MB here. A pre-initialised interpreter
//! carries its whole initialised heap as data (QuickJS with our prelude:
//! 0.8 MB in 10,002 segments; CPython: tens of MB), and every call would pay
//! that copy. So, once per machine (`worker prepare-runtimes`):
//!
//! - [`split`] lays the module's active data segments out into an image of
//!   its initial memory, and rewrites the module without them (a module
//!   that may name segments, with `memory.init` or `data.drop`, keeps each
//!   in place but empty, so indices are unchanged); the artifact is
//!   compiled from that module;
//! - the image is written beside the artifact ([`write_image`]).
//!
//! At instantiation, [`ImageMemory`] reserves the address space Wasmer's own
//! static memories reserve (the 4 GiB wasm32 range and its guard, so the
//! compiled code's bounds handling is unchanged) and maps the image file over
//! its start with `MAP_PRIVATE`: a call reads the image's pages from the page
//! cache, shared by every worker, and a page it writes becomes its own copy.
//! Nothing a call writes reaches the file or any other instance; the
//! mapping is gone when the instance is dropped.

use std::cell::UnsafeCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use wasmer::sys::vm::{LinearMemory, MemoryError, MemoryStyle, VMMemory, VMMemoryDefinition};
use wasmer::{MemoryType, Pages};
use wasmparser::{BinaryReader, DataKind, DataSectionReader, Operator};

use crate::limits::WASM_PAGE;

/// Data segments smaller than this in all are copied as usual: a mapping
/// costs a few system calls, a small copy less.
pub const MIN_IMAGE_BYTES: usize = 64 * 1024;

/// A module whose active data segments were moved into an image.
pub struct Split {
    /// The module without its active segments' bytes.
    pub module: Vec<u8>,
    /// Its initial memory from address 0 to the end of the last segment.
    pub image: Vec<u8>,
}

const CUSTOM_SECTION: u8 = 0;
const IMPORT_SECTION: u8 = 2;
const MEMORY_SECTION: u8 = 5;
const GLOBAL_SECTION: u8 = 6;
const EXPORT_SECTION: u8 = 7;
const START_SECTION: u8 = 8;
const CODE_SECTION: u8 = 10;
const DATA_SECTION: u8 = 11;
const DATA_COUNT_SECTION: u8 = 12;

/// The custom section [`split`] adds to a module whose instances may be
/// rewound ([`Rewind`]); it names no data.
pub const REWINDABLE_SECTION: &str = "faas:rewindable";
/// What [`split`] exports a rewindable module's mutable global `N` as
/// (`faas:global:N`), so that a rewind can set it back.
pub const GLOBAL_EXPORT_PREFIX: &str = "faas:global:";

/// Moves `wasm`'s active data segments into an image, when the module can
/// have one: it defines one 32-bit unshared memory (imports none), every
/// active segment targets it at a constant address within its initial size,
/// and they hold at least [`MIN_IMAGE_BYTES`]. `Ok(None)` otherwise (the
/// module runs as it is). An error means the module is malformed.
///
/// Segments are instantiated one by one even when empty (Wasmer evaluates
/// each one's offset, with an allocation: 10,002 of them, Wizer's most,
/// were a fifth of a CPython instantiation), so emptied segments are left
/// out unless code may name them: `memory.init` and `data.drop` are only
/// valid in a module with a data count section.
pub fn split(wasm: &[u8]) -> Result<Option<Split>, String> {
    let sections = sections(wasm)?;
    let mut memory_bytes = None;
    let mut data = None;
    let keep_indices = sections.iter().any(|s| s.id == DATA_COUNT_SECTION);
    for section in &sections {
        let body = &wasm[section.body.clone()];
        match section.id {
            IMPORT_SECTION => {
                let reader = wasmparser::ImportSectionReader::new(BinaryReader::new(body, 0))
                    .map_err(|e| e.to_string())?;
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    if matches!(import.ty, wasmparser::TypeRef::Memory(_)) {
                        return Ok(None);
                    }
                }
            }
            MEMORY_SECTION => {
                let reader = wasmparser::MemorySectionReader::new(BinaryReader::new(body, 0))
                    .map_err(|e| e.to_string())?;
                let memories = reader
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                match memories.as_slice() {
                    [m] if !m.memory64 && !m.shared => {
                        memory_bytes = usize::try_from(m.initial * WASM_PAGE).ok();
                    }
                    _ => return Ok(None),
                }
            }
            DATA_SECTION => data = Some(section),
            _ => {}
        }
    }
    let (Some(memory_bytes), Some(data)) = (memory_bytes, data) else {
        return Ok(None);
    };

    let reader = DataSectionReader::new(BinaryReader::new(&wasm[data.body.clone()], 0))
        .map_err(|e| e.to_string())?;
    let mut active = Vec::new();
    let mut body = Vec::new();
    let mut count = 0u32;
    for segment in reader {
        let segment = segment.map_err(|e| e.to_string())?;
        count += 1;
        match segment.kind {
            DataKind::Passive => {
                body.push(1);
                leb_u32(&mut body, segment.data.len() as u32);
                body.extend_from_slice(segment.data);
            }
            DataKind::Active {
                memory_index: 0,
                offset_expr,
            } => {
                let mut ops = offset_expr.get_operators_reader();
                let offset = match (ops.read(), ops.read()) {
                    (Ok(Operator::I32Const { value }), Ok(Operator::End)) => value as u32 as usize,
                    _ => return Ok(None),
                };
                let end = offset + segment.data.len();
                if end > memory_bytes {
                    // Instantiation must fail as it would have.
                    return Ok(None);
                }
                active.push((offset, segment.data));
                if !keep_indices {
                    count -= 1;
                    continue;
                }
                body.push(0);
                body.push(0x41); // i32.const
                leb_i32(&mut body, offset as u32 as i32);
                body.push(0x0b); // end
                body.push(0); // no bytes
            }
            DataKind::Active { .. } => return Ok(None),
        }
    }
    let total: usize = active.iter().map(|(_, d)| d.len()).sum();
    if total < MIN_IMAGE_BYTES {
        return Ok(None);
    }
    let len = active.iter().map(|(o, d)| o + d.len()).max().unwrap_or(0);
    let mut image = vec![0u8; len];
    for (offset, bytes) in active {
        image[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    let mut data_section = Vec::with_capacity(body.len() + 5);
    leb_u32(&mut data_section, count);
    data_section.extend_from_slice(&body);

    let globals = if keep_indices {
        None
    } else {
        rewindable_globals(wasm, &sections)?
    };
    let exports = globals
        .as_ref()
        .filter(|globals| !globals.is_empty())
        .map(|globals| {
            let old = sections.iter().find(|s| s.id == EXPORT_SECTION);
            export_globals(old.map(|s| &wasm[s.body.clone()]), globals)
        });
    let mut module = Vec::with_capacity(wasm.len() - total + 1024);
    module.extend_from_slice(&wasm[..8]); // magic and version
    let mut exported = false;
    for section in &sections {
        // A module without exports gets the section in its place: after
        // the globals, before the start, elements, data count and code.
        let export_due = order(section.id) > order(EXPORT_SECTION);
        if let (Some(exports), false, true) = (&exports, exported, export_due) {
            if section.id != CUSTOM_SECTION {
                push_section(&mut module, EXPORT_SECTION, exports);
                exported = true;
            }
        }
        match section.id {
            DATA_SECTION => push_section(&mut module, DATA_SECTION, &data_section),
            EXPORT_SECTION if exports.is_some() => {
                push_section(&mut module, EXPORT_SECTION, exports.as_ref().unwrap());
                exported = true;
            }
            _ => module.extend_from_slice(&wasm[section.start..section.body.end]),
        }
    }
    if globals.is_some() {
        let mut custom = Vec::new();
        leb_u32(&mut custom, REWINDABLE_SECTION.len() as u32);
        custom.extend_from_slice(REWINDABLE_SECTION.as_bytes());
        push_section(&mut module, CUSTOM_SECTION, &custom);
    }
    Ok(Some(Split { module, image }))
}

/// Where a known section goes among the others (the tag section, 13, goes
/// between memories and globals; the data count, 12, before the code).
fn order(id: u8) -> u8 {
    match id {
        13 => 6,
        6..=9 => id + 1,
        12 => 11,
        10 | 11 => id + 2,
        _ => id,
    }
}

fn push_section(module: &mut Vec<u8>, id: u8, body: &[u8]) {
    module.push(id);
    leb_u32(module, body.len() as u32);
    module.extend_from_slice(body);
}

/// The mutable globals of a module whose instances can be rewound to
/// their state at instantiation by restoring their memory (the image) and
/// those globals, when it is one (`None` otherwise): its imports are
/// functions only (no memory, table or global shared with anything else),
/// it has no start function (instantiating runs no code), exports no
/// table, and no code changes a table or drops a segment (table.set,
/// .grow, .fill, .copy, .init, elem.drop; memory.init and data.drop need
/// a data count section, which the caller ruled out). Its tables, element
/// segments and immutable globals are then the same in every instance.
fn rewindable_globals(wasm: &[u8], sections: &[Section]) -> Result<Option<Vec<u32>>, String> {
    let mut mutable = Vec::new();
    for section in sections {
        let body = &wasm[section.body.clone()];
        let reader = || BinaryReader::new(body, section.body.start as u64);
        match section.id {
            START_SECTION => return Ok(None),
            IMPORT_SECTION => {
                let imports =
                    wasmparser::ImportSectionReader::new(reader()).map_err(|e| e.to_string())?;
                for import in imports.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    if !matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                        return Ok(None);
                    }
                }
            }
            GLOBAL_SECTION => {
                let globals =
                    wasmparser::GlobalSectionReader::new(reader()).map_err(|e| e.to_string())?;
                for (index, global) in globals.into_iter().enumerate() {
                    let global = global.map_err(|e| e.to_string())?;
                    if global.ty.mutable {
                        mutable.push(index as u32);
                    }
                }
            }
            EXPORT_SECTION => {
                let exports =
                    wasmparser::ExportSectionReader::new(reader()).map_err(|e| e.to_string())?;
                for export in exports {
                    let export = export.map_err(|e| e.to_string())?;
                    if export.kind == wasmparser::ExternalKind::Table {
                        return Ok(None);
                    }
                }
            }
            CODE_SECTION => {
                let bodies =
                    wasmparser::CodeSectionReader::new(reader()).map_err(|e| e.to_string())?;
                for function in bodies {
                    let function = function.map_err(|e| e.to_string())?;
                    let mut ops = function.get_operators_reader().map_err(|e| e.to_string())?;
                    while !ops.eof() {
                        // An instruction we cannot read: not rewound.
                        let Ok(op) = ops.read() else {
                            return Ok(None);
                        };
                        if matches!(
                            op,
                            Operator::TableSet { .. }
                                | Operator::TableGrow { .. }
                                | Operator::TableFill { .. }
                                | Operator::TableCopy { .. }
                                | Operator::TableInit { .. }
                                | Operator::ElemDrop { .. }
                                | Operator::MemoryInit { .. }
                                | Operator::DataDrop { .. }
                        ) {
                            return Ok(None);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Some(mutable))
}

/// An export section: `old`'s exports (a section body, if any) and each of
/// `globals` as `faas:global:N`.
fn export_globals(old: Option<&[u8]>, globals: &[u32]) -> Vec<u8> {
    let (count, entries) = match old {
        Some(body) => {
            let (count, at) = read_leb_u32(body, 0).unwrap_or((0, body.len()));
            (count, &body[at..])
        }
        None => (0, &[][..]),
    };
    let mut out = Vec::new();
    leb_u32(&mut out, count + globals.len() as u32);
    out.extend_from_slice(entries);
    for index in globals {
        let name = format!("{GLOBAL_EXPORT_PREFIX}{index}");
        leb_u32(&mut out, name.len() as u32);
        out.extend_from_slice(name.as_bytes());
        out.push(0x03); // a global
        leb_u32(&mut out, *index);
    }
    out
}

/// One top-level section: where it starts (its id byte) and its body.
struct Section {
    id: u8,
    start: usize,
    body: std::ops::Range<usize>,
}

fn sections(wasm: &[u8]) -> Result<Vec<Section>, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("not a WebAssembly module".into());
    }
    let mut sections = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        let (size, after) = read_leb_u32(wasm, at + 1)?;
        let end = after
            .checked_add(size as usize)
            .filter(|&e| e <= wasm.len())
            .ok_or("a section runs past the end of the module")?;
        sections.push(Section {
            id,
            start,
            body: after..end,
        });
        at = end;
    }
    Ok(sections)
}

fn read_leb_u32(bytes: &[u8], mut at: usize) -> Result<(u32, usize), String> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(at).ok_or("truncated section size")?;
        at += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, at));
        }
    }
    Err("a section size is not a valid u32".into())
}

fn leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn leb_i32(out: &mut Vec<u8>, mut value: i32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// Writes `image` to `path`, padded with zeros to whole host pages (what
/// is mapped), through a temporary file so a reader never sees half of it.
pub fn write_image(path: &Path, image: &[u8]) -> std::io::Result<()> {
    let padded = image.len().next_multiple_of(host_page());
    let tmp = path.with_extension("image.tmp");
    let mut bytes = Vec::with_capacity(padded);
    bytes.extend_from_slice(image);
    bytes.resize(padded, 0);
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)
}

fn host_page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096)
}

/// An image file opened for mapping (kept open: a rebuilt image is a new
/// file, and instances already running keep the one they mapped).
#[derive(Debug)]
pub struct MemoryImage {
    file: File,
    len: usize,
    /// The same file, mapped to read from: what a rewind copies back.
    bytes: crate::mapped::Mapped,
}

impl MemoryImage {
    pub fn open(path: &Path) -> std::io::Result<Arc<Self>> {
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if len % host_page() != 0 {
            return Err(std::io::Error::other(format!(
                "{}: not a whole number of pages",
                path.display()
            )));
        }
        let bytes = crate::mapped::Mapped::of(&file)?;
        Ok(Arc::new(Self { file, len, bytes }))
    }

    /// Bytes mapped (whole pages).
    pub fn mapped_bytes(&self) -> usize {
        self.len
    }

    /// A new linear memory of type `ty` starting with the image, for a
    /// module whose data segments the image holds; `None` when `ty` or
    /// `style` is one this mapping does not serve (the caller then creates
    /// an ordinary memory, and instantiation copies as usual).
    ///
    /// # Safety
    /// `location`, when given, must be the instance's memory definition, as
    /// in `Tunables::create_vm_memory`.
    pub unsafe fn memory(
        self: &Arc<Self>,
        ty: &MemoryType,
        style: &MemoryStyle,
        location: Option<NonNull<VMMemoryDefinition>>,
    ) -> Option<Result<(VMMemory, Rewind), MemoryError>> {
        let minimum = ty.minimum.bytes().0;
        if ty.shared || !matches!(style, MemoryStyle::Static) || self.len > minimum {
            return None;
        }
        // SAFETY: as this function's contract.
        let memory = match unsafe { ImageMemory::new(self, ty, style, location) } {
            Ok(memory) => memory,
            Err(e) => return Some(Err(e)),
        };
        let rewind = Rewind {
            base: memory.base,
            accessible: minimum,
            definition: memory.definition.ptr(),
            image: self.clone(),
        };
        Some(Ok((VMMemory(Box::new(memory)), rewind)))
    }
}

/// Sets a memory made from an image back to its state at instantiation:
/// the image's contents, zeros after, the initial size.
///
/// With the module's mutable globals set back too, an instance of a
/// module [`split`] marked rewindable ([`REWINDABLE_SECTION`]) is then as
/// a new one would be: nothing else of an instance can change. Creating
/// an instance costs Wasmer work per function and per table entry (CPython
/// has 94,000 functions and a 47,000-entry table: 3 ms).
///
/// The pages a call wrote are the mapping's private pages (a page of a
/// private file mapping is the file's until written; an anonymous one is
/// zero until written). `/proc/self/pagemap` tells them apart, and a
/// rewind copies the image's bytes (or zeros) back into them and leaves
/// them mapped: the next call, which touches mostly the same pages, does
/// not fault on them again (dropping them instead, `MADV_DONTNEED`, made
/// faults a third of a Python call's CPU). When there is no pagemap, or a
/// call wrote more than [`MAX_RESTORED_PAGES`], they are dropped.
#[derive(Debug)]
pub struct Rewind {
    base: usize,
    /// The initial size, in bytes.
    accessible: usize,
    definition: NonNull<VMMemoryDefinition>,
    image: Arc<MemoryImage>,
}

/// Most written pages a rewind copies back; beyond, it drops them all
/// (cheaper than copying, and a worker does not keep that much memory
/// between calls).
pub const MAX_RESTORED_PAGES: usize = 4096;

// SAFETY: the pointers are to a memory of a store its owner keeps with
// this value (see `rewind`'s contract), which moves between threads with
// it.
unsafe impl Send for Rewind {}

impl Rewind {
    /// # Safety
    /// The memory must still exist (its store not dropped), and no guest
    /// code may be running in it.
    pub unsafe fn rewind(&self) -> std::io::Result<()> {
        // SAFETY: the definition lives as long as the memory (contract).
        let definition = unsafe { &mut *self.definition.as_ptr() };
        let length = definition.current_length;
        // SAFETY: as this function's contract.
        let restored = matches!(unsafe { self.restore_written_pages() }, Ok(true));
        // Private pages go: the image's pages read the file again, the
        // others read zeros (MAP_PRIVATE file and anonymous mappings).
        let (from, to) = match restored {
            true => (self.accessible, length),
            false => (0, length),
        };
        if to > from {
            // SAFETY: within the memory's own reservation (contract).
            let r = unsafe {
                libc::madvise(
                    (self.base + from) as *mut libc::c_void,
                    to - from,
                    libc::MADV_DONTNEED,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if length > self.accessible {
            // What the call grew is inaccessible again, as beyond a new
            // memory's initial size.
            // SAFETY: as above.
            let r = unsafe {
                libc::mprotect(
                    (self.base + self.accessible) as *mut libc::c_void,
                    length - self.accessible,
                    libc::PROT_NONE,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        definition.current_length = self.accessible;
        Ok(())
    }

    /// Copies the image (or zeros) back into every page of the initial
    /// size that is private; `Ok(false)` when it did not (no pagemap, too
    /// many pages), and the caller drops them instead.
    ///
    /// # Safety
    /// As [`Rewind::rewind`].
    unsafe fn restore_written_pages(&self) -> std::io::Result<bool> {
        use std::os::unix::fs::FileExt;
        static PAGEMAP: std::sync::OnceLock<Option<File>> = std::sync::OnceLock::new();
        let Some(pagemap) = PAGEMAP.get_or_init(|| File::open("/proc/self/pagemap").ok()) else {
            return Ok(false);
        };
        let page = host_page();
        let pages = self.accessible / page;
        let mut raw = vec![0u8; pages * 8];
        pagemap.read_exact_at(&mut raw, (self.base / page * 8) as u64)?;
        const PRESENT: u64 = 1 << 63;
        const SWAPPED: u64 = 1 << 62;
        const FILE_OR_SHARED: u64 = 1 << 61;
        let written: Vec<usize> = raw
            .chunks_exact(8)
            .map(|e| u64::from_ne_bytes(e.try_into().expect("8 bytes")))
            .enumerate()
            .filter(|(_, e)| e & SWAPPED != 0 || (e & PRESENT != 0 && e & FILE_OR_SHARED == 0))
            .map(|(i, _)| i)
            .collect();
        if written.len() > MAX_RESTORED_PAGES {
            return Ok(false);
        }
        let image = self.image.bytes.as_ref();
        for i in written {
            let at = i * page;
            // SAFETY: a page of the memory's initial size, readable and
            // writable, which nothing else references now (contract).
            let dst = unsafe { std::slice::from_raw_parts_mut((self.base + at) as *mut u8, page) };
            let from_image = image.get(at..).unwrap_or(&[]);
            let n = from_image.len().min(page);
            dst[..n].copy_from_slice(&from_image[..n]);
            // Past the image: zeros (a page only read is the shared zero
            // page, not written to here: it stays one).
            if dst[n..].iter().any(|&b| b != 0) {
                dst[n..].fill(0);
            }
        }
        Ok(true)
    }
}

/// Where the memory's definition lives: in the instance (a module's own
/// memory) or with us (a host memory).
#[derive(Debug)]
enum Definition {
    Instance(NonNull<VMMemoryDefinition>),
    Host(Box<UnsafeCell<VMMemoryDefinition>>),
}

impl Definition {
    fn ptr(&self) -> NonNull<VMMemoryDefinition> {
        match self {
            Definition::Instance(ptr) => *ptr,
            // SAFETY: a Box's pointer is never null.
            Definition::Host(cell) => unsafe { NonNull::new_unchecked(cell.get()) },
        }
    }
}

/// A static linear memory whose first pages are a private mapping of an
/// image file.
#[derive(Debug)]
struct ImageMemory {
    /// The reservation: the wasm32 range and its offset guard.
    base: usize,
    reserved: usize,
    ty: MemoryType,
    style: MemoryStyle,
    definition: Definition,
}

// SAFETY: the raw pointers are to memory this value owns (the mapping) or
// to the instance's definition, which Wasmer synchronises like its own
// memories (one instance runs on one thread at a time).
unsafe impl Send for ImageMemory {}
// SAFETY: as above.
unsafe impl Sync for ImageMemory {}

impl ImageMemory {
    unsafe fn new(
        image: &MemoryImage,
        ty: &MemoryType,
        style: &MemoryStyle,
        location: Option<NonNull<VMMemoryDefinition>>,
    ) -> Result<Self, MemoryError> {
        let accessible = ty.minimum.bytes().0;
        let reserved = MemoryStyle::static_bound().bytes().0
            + usize::try_from(style.offset_guard_size()).map_err(|_| {
                MemoryError::Generic("the memory guard does not fit the address space".into())
            })?;
        let os_error = |what: &str| {
            MemoryError::Region(format!("{what}: {}", std::io::Error::last_os_error()))
        };
        // SAFETY: a fresh anonymous reservation, no address given.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserved,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_error("cannot reserve linear memory"));
        }
        let mut memory = Self {
            base: base as usize,
            reserved,
            ty: *ty,
            style: *style,
            definition: Definition::Host(Box::new(UnsafeCell::new(VMMemoryDefinition {
                base: base.cast(),
                current_length: accessible,
            }))),
        };
        if image.len > 0 {
            // SAFETY: replaces the start of our own reservation (image.len
            // <= accessible <= reserved, checked by the caller).
            let mapped = unsafe {
                libc::mmap(
                    base,
                    image.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    image.file.as_raw_fd(),
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                return Err(os_error("cannot map the memory image"));
            }
        }
        memory.protect(image.len, accessible - image.len)?;
        if let Some(mut location) = location {
            // SAFETY: the caller passes the instance's definition.
            unsafe {
                let definition = location.as_mut();
                definition.base = base.cast();
                definition.current_length = accessible;
            }
            memory.definition = Definition::Instance(location);
        }
        Ok(memory)
    }

    /// Makes `len` bytes at `start` readable and writable (zero pages).
    fn protect(&mut self, start: usize, len: usize) -> Result<(), MemoryError> {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: within our reservation (callers stay below the bound).
        let r = unsafe {
            libc::mprotect(
                (self.base + start) as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if r != 0 {
            return Err(MemoryError::Region(format!(
                "cannot grow linear memory: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    fn length(&self) -> usize {
        // SAFETY: the definition is valid as long as we are.
        unsafe { self.definition.ptr().as_ref().current_length }
    }
}

impl Drop for ImageMemory {
    fn drop(&mut self) {
        // SAFETY: our own reservation, unmapped once.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.reserved) };
    }
}

impl LinearMemory for ImageMemory {
    fn ty(&self) -> MemoryType {
        let mut ty = self.ty;
        ty.minimum = self.size();
        ty
    }

    fn size(&self) -> Pages {
        Pages((self.length() / WASM_PAGE as usize) as u32)
    }

    fn style(&self) -> MemoryStyle {
        self.style
    }

    fn grow(&mut self, delta: Pages) -> Result<Pages, MemoryError> {
        let current = self.size();
        if delta.0 == 0 {
            return Ok(current);
        }
        let refused = MemoryError::CouldNotGrow {
            current,
            attempted_delta: delta,
        };
        let Some(new) = current.checked_add(delta) else {
            return Err(refused);
        };
        if new > self.ty.maximum.unwrap_or(Pages::max_value()) || new > MemoryStyle::static_bound()
        {
            return Err(refused);
        }
        let (from, to) = (current.bytes().0, new.bytes().0);
        self.protect(from, to - from)?;
        // SAFETY: the definition is valid as long as we are.
        unsafe { self.definition.ptr().as_mut().current_length = to };
        Ok(current)
    }

    fn vmmemory(&self) -> NonNull<VMMemoryDefinition> {
        self.definition.ptr()
    }

    fn try_clone(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Err(MemoryError::MemoryNotShared)
    }

    fn copy(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Err(MemoryError::UnsupportedOperation {
            message: "a memory mapped from an image cannot be copied".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with one memory of `pages` pages, the sections `extra`
    /// (whole, in order) and the given segments (`None` offset: passive),
    /// with a data count section when `counted`.
    fn built(
        pages: u32,
        extra: &[u8],
        segments: &[(Option<i32>, &[u8])],
        counted: bool,
    ) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        let mut memory = vec![1, 0];
        leb_u32(&mut memory, pages);
        wasm.push(MEMORY_SECTION);
        leb_u32(&mut wasm, memory.len() as u32);
        wasm.extend_from_slice(&memory);
        wasm.extend_from_slice(extra);
        if counted {
            wasm.extend_from_slice(&[DATA_COUNT_SECTION, 1, segments.len() as u8]);
        }
        let mut data = Vec::new();
        leb_u32(&mut data, segments.len() as u32);
        for (offset, bytes) in segments {
            match offset {
                Some(offset) => {
                    data.extend_from_slice(&[0, 0x41]);
                    leb_i32(&mut data, *offset);
                    data.push(0x0b);
                }
                None => data.push(1),
            }
            leb_u32(&mut data, bytes.len() as u32);
            data.extend_from_slice(bytes);
        }
        wasm.push(DATA_SECTION);
        leb_u32(&mut wasm, data.len() as u32);
        wasm.extend_from_slice(&data);
        wasm
    }

    fn counted_module(pages: u32, segments: &[(Option<i32>, &[u8])], counted: bool) -> Vec<u8> {
        built(pages, &[], segments, counted)
    }

    fn module(pages: u32, segments: &[(Option<i32>, &[u8])]) -> Vec<u8> {
        counted_module(pages, segments, false)
    }

    /// The custom section marking a module rewindable.
    fn marker() -> Vec<u8> {
        let mut body = vec![REWINDABLE_SECTION.len() as u8];
        body.extend_from_slice(REWINDABLE_SECTION.as_bytes());
        let mut section = vec![CUSTOM_SECTION, body.len() as u8];
        section.extend(body);
        section
    }

    #[test]
    fn active_segments_move_into_the_image_and_passive_ones_stay() {
        let big = vec![7u8; MIN_IMAGE_BYTES];
        let wasm = module(
            4,
            &[(Some(16), b"hello"), (None, b"passive"), (Some(1000), &big)],
        );
        let split = split(&wasm).unwrap().expect("an image");
        assert_eq!(split.image.len(), 1000 + big.len());
        assert_eq!(&split.image[16..21], b"hello");
        assert_eq!(&split.image[1000..], &big[..]);
        assert!(split.image[21..1000].iter().all(|&b| b == 0));
        // No code can name a segment (no data count section): only the
        // passive one is left; nothing else of an instance can change, so
        // it is marked rewindable.
        let mut expected = module(4, &[(None, b"passive")]);
        expected.extend(marker());
        assert_eq!(split.module, expected);
        wasmparser::validate(&split.module).unwrap();
    }

    #[test]
    fn a_rewindable_module_exports_its_mutable_globals() {
        let big = vec![7u8; MIN_IMAGE_BYTES];
        // (global (mut i32) (i32.const 5)) (global i32 (i32.const 6))
        let globals = [
            GLOBAL_SECTION,
            11,
            2,
            0x7f,
            1,
            0x41,
            5,
            0x0b,
            0x7f,
            0,
            0x41,
            6,
            0x0b,
        ];
        let out = split(&built(1, &globals, &[(Some(0), &big)], false))
            .unwrap()
            .expect("an image");
        let mut exports = vec![EXPORT_SECTION, 17, 1, 13];
        exports.extend_from_slice(b"faas:global:0");
        exports.extend([0x03, 0]);
        let mut expected = built(1, &[&globals[..], &exports[..]].concat(), &[], false);
        expected.extend(marker());
        assert_eq!(out.module, expected);
        wasmparser::validate(&out.module).unwrap();
    }

    #[test]
    fn a_module_with_a_start_function_is_not_rewindable() {
        let big = vec![7u8; MIN_IMAGE_BYTES];
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend([0x01, 4, 1, 0x60, 0, 0]); // type 0: () -> ()
        wasm.extend([0x03, 2, 1, 0]); // func 0: type 0
        wasm.extend([MEMORY_SECTION, 3, 1, 0, 1]); // one page
        wasm.extend([START_SECTION, 1, 0]); // start: func 0
        wasm.extend([CODE_SECTION, 4, 1, 2, 0, 0x0b]); // an empty body
        let mut data = vec![1, 0, 0x41, 0, 0x0b];
        leb_u32(&mut data, big.len() as u32);
        data.extend_from_slice(&big);
        push_section(&mut wasm, DATA_SECTION, &data);
        wasmparser::validate(&wasm).unwrap();
        let out = split(&wasm).unwrap().expect("an image");
        assert!(!out.module.ends_with(&marker()));
        wasmparser::validate(&out.module).unwrap();
    }

    #[test]
    fn segments_code_may_name_keep_their_indices() {
        let big = vec![7u8; MIN_IMAGE_BYTES];
        let segments: &[(Option<i32>, &[u8])] =
            &[(Some(16), b"hello"), (None, b"passive"), (Some(1000), &big)];
        let split = split(&counted_module(4, segments, true))
            .unwrap()
            .expect("an image");
        assert_eq!(split.image.len(), 1000 + big.len());
        // Same segments, same places, no bytes (the passive one kept).
        assert_eq!(
            split.module,
            counted_module(
                4,
                &[(Some(16), b""), (None, b"passive"), (Some(1000), b"")],
                true
            )
        );
        wasmparser::validate(&split.module).unwrap();
    }

    #[test]
    fn small_data_or_segments_past_the_initial_memory_keep_the_module_as_it_is() {
        assert!(split(&module(1, &[(Some(0), b"tiny")])).unwrap().is_none());
        let big = vec![1u8; MIN_IMAGE_BYTES];
        // 65,536 bytes at 1 do not fit one page: instantiation must fail as usual.
        assert!(split(&module(1, &[(Some(1), &big)])).unwrap().is_none());
        assert!(split(b"junk").is_err());
    }

    /// A WASI command whose 64 KiB data segment is all 7s: `_start` reads
    /// byte 0, overwrites it with 0x55, and exits with what it read.
    fn overwriting_module() -> Vec<u8> {
        fn section(id: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![id];
            leb_u32(&mut out, body.len() as u32);
            out.extend_from_slice(body);
            out
        }
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        // (i32) -> () for proc_exit, () -> () for _start.
        wasm.extend(section(1, &[2, 0x60, 1, 0x7f, 0, 0x60, 0, 0]));
        let mut import = vec![1, 22];
        import.extend_from_slice(b"wasi_snapshot_preview1");
        import.push(9);
        import.extend_from_slice(b"proc_exit");
        import.extend_from_slice(&[0, 0]);
        wasm.extend(section(2, &import));
        wasm.extend(section(3, &[1, 1]));
        wasm.extend(section(MEMORY_SECTION, &[1, 0, 2]));
        let mut export = vec![2, 6];
        export.extend_from_slice(b"_start");
        export.extend_from_slice(&[0, 1, 6]);
        export.extend_from_slice(b"memory");
        export.extend_from_slice(&[2, 0]);
        wasm.extend(section(7, &export));
        // i32.const 0, i32.load8_u; i32.const 0, i32.const 0x55, i32.store8; call 0
        let body = [
            0, 0x41, 0, 0x2d, 0, 0, 0x41, 0, 0x41, 0xd5, 0, 0x3a, 0, 0, 0x10, 0, 0x0b,
        ];
        let mut code = vec![1, body.len() as u8];
        code.extend_from_slice(&body);
        wasm.extend(section(10, &code));
        let mut data = vec![1, 0, 0x41, 0, 0x0b];
        leb_u32(&mut data, 65536);
        data.extend(std::iter::repeat_n(7u8, 65536));
        wasm.extend(section(DATA_SECTION, &data));
        wasm
    }

    #[test]
    fn every_instance_maps_the_image_afresh_and_writes_never_reach_it() {
        use crate::wasm::{PrepareOptions, RunOptions, Sandbox};
        let split = split(&overwriting_module()).unwrap().expect("an image");
        let path = std::env::temp_dir().join(format!("faas-image-test-{}", std::process::id()));
        write_image(&path, &split.image).unwrap();
        let image = MemoryImage::open(&path).unwrap();
        let sandbox = Sandbox::new().unwrap();
        let module = sandbox.compile(&split.module).unwrap();
        let mut session = None;
        for call in 0..3 {
            let opts = RunOptions {
                instance: PrepareOptions {
                    args: vec!["test".into()],
                    env: Vec::new(),
                    capture: true,
                    inherit_stdin: false,
                    dirs: Vec::new(),
                    files: Vec::new(),
                    secrets: Default::default(),
                    max_tmp_bytes: None,
                    max_memory_bytes: 1 << 20,
                    outbound: None,
                    memory_image: Some(image.clone()),
                    entry: crate::wasm::Entry::Start,
                },
                stdin: Vec::new(),
                max_output_bytes: 1024,
                timeout: Some(std::time::Duration::from_secs(5)),
            };
            let out = sandbox.run_in(&mut session, "img", &module, opts).unwrap();
            // Each call read the image's 7, not the previous call's 0x55.
            assert_eq!(out.exit_code, 7, "call {call}: {out:?}");
        }
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk[..65536].iter().all(|&b| b == 7));
        // Without the image, the stripped module's memory starts empty.
        let mut session = None;
        let bare = RunOptions {
            instance: PrepareOptions {
                args: vec!["test".into()],
                env: Vec::new(),
                capture: true,
                inherit_stdin: false,
                dirs: Vec::new(),
                files: Vec::new(),
                secrets: Default::default(),
                max_tmp_bytes: None,
                max_memory_bytes: 1 << 20,
                outbound: None,
                memory_image: None,
                entry: crate::wasm::Entry::Start,
            },
            stdin: Vec::new(),
            max_output_bytes: 1024,
            timeout: Some(std::time::Duration::from_secs(5)),
        };
        let out = sandbox.run_in(&mut session, "bare", &module, bare).unwrap();
        assert_eq!(out.exit_code, 0, "{out:?}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn negative_offsets_encode_as_wasm_does() {
        for value in [0, 63, 64, -1, -64, -65, 8191, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            leb_i32(&mut out, value);
            let mut reader = BinaryReader::new(&out, 0);
            assert_eq!(reader.read_var_i32().unwrap(), value);
        }
    }
}
