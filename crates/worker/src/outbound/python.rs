//! The Python side of outbound HTTP: `boot.py`, which the interpreter runs
//! first (it puts `/faas/lib` on the path, hooks `urllib.request` and runs
//! the function as `__main__`), and the `faas` module.
//!
//! A call runs boot.py through `python -I -c STUB` (the interpreter's script
//! mode imports `runpy` and its dependencies at every call: 10 ms). Parsing
//! and compiling boot.py took 2 ms of every call, so a worker compiles it
//! once ([`COMPILE_STUB`], by the interpreter itself) and its calls load
//! the code object from `/faas/boot.pyc` ([`RUN_COMPILED_STUB`]).

use bytes::Bytes;

/// The file CPython is started with (instead of the function's script).
pub const BOOT_PATH: &str = "/faas/boot.py";
/// boot.py compiled ([`COMPILE_STUB`]'s output), when the worker has it.
pub const BOOT_PYC_PATH: &str = "/faas/boot.pyc";

/// `-c` program that runs boot.py from its source.
pub const RUN_SOURCE_STUB: &str =
    "exec(compile(open('/faas/boot.py','rb').read(),'/faas/boot.py','exec'))";
/// `-c` program that runs boot.py compiled ([`BOOT_PYC_PATH`]).
pub const RUN_COMPILED_STUB: &str =
    "exec(__import__('marshal').loads(open('/faas/boot.pyc','rb').read()))";
/// `-c` program that writes boot.py's code object (marshal) on stdout.
pub const COMPILE_STUB: &str = "import marshal,sys;sys.stdout.buffer.write(marshal.dumps(\
    compile(open('/faas/boot.py','rb').read(),'/faas/boot.py','exec')))";

const BOOT: &[u8] = include_bytes!("python/boot.py");
const FAAS: &[u8] = include_bytes!("python/faas.py");

/// The read-only files every Python call sees besides its script.
pub fn files() -> Vec<(String, Bytes)> {
    vec![
        (BOOT_PATH.to_string(), Bytes::from_static(BOOT)),
        ("/faas/lib/faas.py".to_string(), Bytes::from_static(FAAS)),
    ]
}
