//! The Python side of outbound HTTP: `boot.py`, which the interpreter runs
//! first (it puts `/faas/lib` on the path, hooks `urllib.request` and runs
//! the function as `__main__`), and the `faas` module.

use std::sync::Arc;

/// The file CPython is started with (instead of the function's script).
pub const BOOT_PATH: &str = "/faas/boot.py";

const BOOT: &[u8] = include_bytes!("python/boot.py");
const FAAS: &[u8] = include_bytes!("python/faas.py");

/// The read-only files every Python call sees besides its script.
pub fn files() -> Vec<(String, Arc<[u8]>)> {
    vec![
        (BOOT_PATH.to_string(), Arc::from(BOOT)),
        ("/faas/lib/faas.py".to_string(), Arc::from(FAAS)),
    ]
}
