//! Compile once, at deploy: the Server turns `code.wasm` into a serialized
//! Wasmer artifact (`code.wasmu`) with the same engine settings the workers
//! use, and workers load it in about a millisecond instead of running
//! cranelift (tens to hundreds of milliseconds) on first call.
//!
//! An artifact starts with a one-line stamp naming the Wasmer version, the
//! compiler, the target triple and CPU features. Wasmer does not validate
//! artifacts on load, so a worker only loads one whose stamp matches its own
//! engine exactly, and only from the function store the Server writes;
//! anything else is recompiled from `code.wasm` (and the Server rebuilds
//! stale artifacts at start).

use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use wasmer::sys::{BaseTunables, NativeEngineExt};
pub use wasmer::Engine;
use wasmer::Module;

use crate::limits::{CappedTunables, ImageSlot};

/// The Wasmer version this crate is built against (pinned in Cargo.toml; a
/// test checks it against Cargo.lock).
pub const WASMER_VERSION: &str = "7.4.2";

/// File name of the artifact inside a function's directory.
pub const ARTIFACT_FILE: &str = "code.wasmu";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("invalid WebAssembly module: {0}")]
    Compile(String),
    #[error("cannot serialize the module: {0}")]
    Serialize(String),
    #[error("cannot load the artifact: {0}")]
    Deserialize(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The engine every worker (and the Server, to build artifacts) uses:
/// cranelift with memory-capping tunables. `max_pages` is the cap the
/// tunables read at instantiation.
pub fn new_engine(max_pages: Arc<AtomicU32>) -> Engine {
    new_engine_with_images(max_pages, ImageSlot::default())
}

/// [`new_engine`] whose instantiations map a module's memory from the
/// image in `image` when one is set ([`crate::memimage`]).
pub fn new_engine_with_images(max_pages: Arc<AtomicU32>, image: ImageSlot) -> Engine {
    let mut engine = Engine::default();
    engine.set_tunables(CappedTunables::new(BaseTunables::new(), max_pages, image));
    engine
}

/// An artifact's body starts at a multiple of this: Wasmer reads its
/// metadata in place and refuses it unless 16-byte aligned, and a loaded
/// artifact is mapped (page-aligned), never copied ([`load_at`]).
const BODY_ALIGN: usize = 64;

/// The stamp an artifact built by `engine` carries: one line, padded with
/// spaces to [`BODY_ALIGN`].
pub fn stamp(engine: &Engine) -> String {
    let target = engine.target();
    let mut features: Vec<String> = target
        .cpu_features()
        .iter()
        .map(|f| f.to_string())
        .collect();
    features.sort();
    let line = format!(
        "faas-artifact/2 wasmer={WASMER_VERSION} compiler=cranelift triple={} cpu={}",
        target.triple(),
        features.join(",")
    );
    let width = (line.len() + 1).next_multiple_of(BODY_ALIGN) - 1;
    format!("{line:width$}\n")
}

/// Compiles WebAssembly bytes and returns the stamped artifact.
pub fn build(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>, ArtifactError> {
    build_allowing(engine, wasm, &[])
}

/// [`build`], also allowing the function imports `extra` (module, name):
/// for an interpreter module we ship, never for a deployed one.
fn build_allowing(
    engine: &Engine,
    wasm: &[u8],
    extra: &[(&str, &str)],
) -> Result<Vec<u8>, ArtifactError> {
    let module = Module::new(engine, wasm).map_err(|e| ArtifactError::Compile(e.to_string()))?;
    check_imports_allowing(&module, extra).map_err(ArtifactError::Compile)?;
    // A deployed module (no extra imports) is a WASI command: a call runs
    // its `_start`. Only the interpreters we ship may be reactors.
    if extra.is_empty() {
        check_start(&module).map_err(ArtifactError::Compile)?;
    }
    let bytes = module
        .serialize()
        .map_err(|e| ArtifactError::Serialize(e.to_string()))?;
    let mut out = stamp(engine).into_bytes();
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// The only imports a function may have: WASI preview1 functions. WASIX
/// (pipes, sockets, threads, process spawning) and anything else is refused
/// at deploy, so no guest can reach a host call that blocks or escapes.
pub fn check_imports(module: &Module) -> Result<(), String> {
    check_imports_allowing(module, &[])
}

/// A function module must export `_start` as a function taking and
/// returning nothing, as a WASI command does.
pub fn check_start(module: &Module) -> Result<(), String> {
    let start = module.exports().find(|e| e.name() == "_start");
    match start.map(|e| e.ty().clone()) {
        Some(wasmer::ExternType::Function(f))
            if f.params().is_empty() && f.results().is_empty() =>
        {
            Ok(())
        }
        Some(_) => Err("the module's _start export is not a function of no arguments".into()),
        None => Err(
            "the module exports no _start function (a WASI command has one: build with a main())"
                .into(),
        ),
    }
}

/// [`check_imports`], also allowing the function imports `extra`.
fn check_imports_allowing(module: &Module, extra: &[(&str, &str)]) -> Result<(), String> {
    for import in module.imports() {
        let wasi = matches!(import.module(), "wasi_snapshot_preview1" | "wasi_unstable");
        let listed = extra.contains(&(import.module(), import.name()));
        let allowed = (wasi || listed) && matches!(import.ty(), wasmer::ExternType::Function(_));
        if !allowed {
            return Err(format!(
                "the module imports {}::{}; functions may import only WASI preview1 functions (wasi_snapshot_preview1)",
                import.module(),
                import.name()
            ));
        }
    }
    Ok(())
}

/// Builds `dir/code.wasmu` from `dir/code.wasm` (written atomically).
pub fn build_file(engine: &Engine, dir: &Path) -> Result<(), ArtifactError> {
    build_at(engine, &dir.join("code.wasm"), &dir.join(ARTIFACT_FILE))
}

/// Builds the artifact of `wasm_path` at `artifact_path` (written to a
/// temporary name and renamed, so a reader never sees half a file).
pub fn build_at(
    engine: &Engine,
    wasm_path: &Path,
    artifact_path: &Path,
) -> Result<(), ArtifactError> {
    let wasm = std::fs::read(wasm_path).map_err(|source| ArtifactError::Io {
        path: wasm_path.display().to_string(),
        source,
    })?;
    write_artifact(engine, &wasm, artifact_path)
}

/// Compiles `wasm` into an artifact at `artifact_path` (written to a
/// temporary name and renamed).
pub fn write_artifact(
    engine: &Engine,
    wasm: &[u8],
    artifact_path: &Path,
) -> Result<(), ArtifactError> {
    write_artifact_allowing(engine, wasm, artifact_path, &[])
}

/// [`write_artifact`] of a module we ship (an interpreter), which may also
/// import the functions `extra` (module, name) besides WASI preview1: the
/// worker answers them itself ([`crate::hostcall`]).
pub fn write_artifact_allowing(
    engine: &Engine,
    wasm: &[u8],
    artifact_path: &Path,
    extra: &[(&str, &str)],
) -> Result<(), ArtifactError> {
    let artifact = build_allowing(engine, wasm, extra)?;
    let tmp = artifact_path.with_extension(format!("tmp{}", std::process::id()));
    let io = |source| ArtifactError::Io {
        path: tmp.display().to_string(),
        source,
    };
    std::fs::write(&tmp, artifact).map_err(io)?;
    std::fs::rename(&tmp, artifact_path).map_err(io)
}

/// Whether `dir/code.wasmu` exists and was built by an engine like `engine`.
pub fn is_current(engine: &Engine, dir: &Path) -> bool {
    is_current_at(engine, &dir.join(ARTIFACT_FILE))
}

/// Whether the artifact at `path` exists and was built by an engine like
/// `engine`.
pub fn is_current_at(engine: &Engine, path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut first);
    first == stamp(engine)
}

/// Rebuilds the artifact of every function under `functions_dir` that has a
/// `code.wasm` and no current artifact. Returns (rebuilt, wasm functions).
/// A fresh engine per build: an engine keeps the code of every module it
/// compiled until it is dropped.
pub fn refresh_all(functions_dir: &Path) -> std::io::Result<(usize, usize)> {
    let stamp_engine = new_engine(Default::default());
    let (mut rebuilt, mut total) = (0, 0);
    for entry in std::fs::read_dir(functions_dir)? {
        let dir = entry?.path();
        let hidden = dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden || !dir.join("code.wasm").is_file() {
            continue;
        }
        total += 1;
        if is_current(&stamp_engine, &dir) {
            continue;
        }
        match build_file(&new_engine(Default::default()), &dir) {
            Ok(()) => rebuilt += 1,
            Err(err) => log::error!("{}: {err}", dir.display()),
        }
    }
    Ok((rebuilt, total))
}

/// Loads `dir/code.wasmu` if its stamp matches `engine`; `Ok(None)` when it
/// is missing or stale.
pub fn load(engine: &Engine, dir: &Path) -> Result<Option<Module>, ArtifactError> {
    load_at(engine, &dir.join(ARTIFACT_FILE))
}

/// Loads the artifact at `path` if its stamp matches `engine`. The file is
/// mapped, not read: the module keeps the buffer it was loaded from (its
/// metadata is read in place), and mapped, that is page cache shared by
/// every worker rather than a copy in each one's heap.
pub fn load_at(engine: &Engine, path: &Path) -> Result<Option<Module>, ArtifactError> {
    let mapped = match crate::mapped::Mapped::open(path) {
        Ok(mapped) => mapped,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ArtifactError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let stamp = stamp(engine);
    if !mapped.as_ref().starts_with(stamp.as_bytes()) {
        return Ok(None);
    }
    let body = mapped.into_bytes().slice(stamp.len()..);
    // SAFETY: artifacts are written only by this platform (the Server into
    // its own function store, `make`/the Server beside the interpreter
    // modules), never uploaded by a client, and the stamp shows this Wasmer
    // version, compiler, target and CPU feature set built it, which is what
    // `deserialize` requires of its input. Files are replaced by renaming,
    // never changed in place, so the mapped bytes stay what was checked.
    let module = unsafe { Module::deserialize(engine, body) }
        .map_err(|e| ArtifactError::Deserialize(e.to_string()))?;
    Ok(Some(module))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmer_version_matches_the_lock_file() {
        // The runtime value: a test binary reused by another checkout sharing
        // the target dir must read this checkout's lock file.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let lock = std::fs::read_to_string(format!("{manifest_dir}/../../Cargo.lock")).unwrap();
        let entry = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"wasmer\"\n"))
            .unwrap();
        assert!(
            entry.contains(&format!("version = \"{WASMER_VERSION}\"")),
            "{entry}"
        );
    }

    #[test]
    fn artifacts_round_trip_and_stale_ones_are_refused() {
        let engine = new_engine(Arc::new(AtomicU32::new(16)));
        let dir = std::env::temp_dir().join(format!("faas-artifact-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // (module (func (export "_start")))
        let wasm = wat_start();
        std::fs::write(dir.join("code.wasm"), &wasm).unwrap();
        assert!(!is_current(&engine, &dir));
        assert!(load(&engine, &dir).unwrap().is_none());
        build_file(&engine, &dir).unwrap();
        assert!(is_current(&engine, &dir));
        let module = load(&engine, &dir)
            .unwrap()
            .expect("current artifact loads");
        assert!(module.exports().any(|e| e.name() == "_start"));
        // Another version's artifact is not loaded.
        let bytes = std::fs::read(dir.join(ARTIFACT_FILE)).unwrap();
        let body = &bytes[stamp(&engine).len()..];
        let mut other = stamp(&engine).replace(WASMER_VERSION, "0.0.1").into_bytes();
        other.extend_from_slice(body);
        std::fs::write(dir.join(ARTIFACT_FILE), other).unwrap();
        assert!(!is_current(&engine, &dir));
        assert!(load(&engine, &dir).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_shipped_interpreters_may_import_host_call() {
        // (module (import "host" "call" (func (param i32 i32 i32 i32) (result i32))))
        let wasm = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
            0x01, 0x09, 0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // type 0
            0x02, 0x0d, 0x01, 0x04, b'h', b'o', b's', b't', 0x04, b'c', b'a', b'l', b'l', 0x00,
            0x00, // import host.call: type 0
        ];
        let engine = new_engine(Arc::new(AtomicU32::new(16)));
        let refused = build(&engine, &wasm).unwrap_err().to_string();
        assert!(refused.contains("imports host::call"), "{refused}");
        assert!(build_allowing(&engine, &wasm, &[("host", "call")]).is_ok());
        assert!(build_allowing(&engine, &wasm, &[("host", "other")]).is_err());
    }

    fn wat_start() -> Vec<u8> {
        vec![
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
            0x03, 0x02, 0x01, 0x00, // func 0: type 0
            0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export
            0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
        ]
    }
}
