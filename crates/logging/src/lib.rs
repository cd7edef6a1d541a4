//! One logging set-up for every faas process: stderr, one line per event,
//! level from `RUST_LOG` (default `info`), each line naming the part that
//! wrote it: `[SERVER]`, `[LB]`, `[GATEWAY]`, `[WORKER-2]`.
//!
//! Parts that share a process log with an explicit target equal to their
//! part name (`log::info!(target: "LB", ...)`); other lines of our crates
//! take the process's part, and a dependency's line also shows its module
//! path, so nothing is hidden.

use std::io::Write;

/// Installs the logger. `default_part` names lines whose target is a Rust
/// module path of this binary (e.g. `faas_server::...`). Safe to call twice.
pub fn init(default_part: &'static str) {
    init_labelled(default_part, None)
}

/// Like [`init`], every line starting with `label` (a replica's name, so
/// the logs of several replicas can be told apart once collected).
pub fn init_labelled(default_part: &'static str, label: Option<String>) {
    // The S3 client's retries are ours to report (once, with context),
    // not one line per attempt.
    let env = env_logger::Env::default().default_filter_or("info,object_store=warn");
    let label = label.map(|l| format!("{l} ")).unwrap_or_default();
    let _ = env_logger::Builder::from_env(env)
        .format(move |buf, record| {
            write!(buf, "{label}")?;
            let target = record.target();
            let is_part = target
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
            let ours = target.starts_with("faas_") || target.starts_with("worker");
            if is_part {
                writeln!(buf, "[{target}] {} {}", record.level(), record.args())
            } else if ours {
                writeln!(buf, "[{default_part}] {} {}", record.level(), record.args())
            } else {
                writeln!(
                    buf,
                    "[{default_part}] {} {target}: {}",
                    record.level(),
                    record.args()
                )
            }
        })
        .try_init();
}
