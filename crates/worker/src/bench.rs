//! `worker bench`: the runtime floor for `make bench`. Runs a module the way
//! a worker runs invocations back to back (a fresh WASI environment and
//! instance per call in a reused session, payload on stdin, output
//! captured, deadline armed, memory capped, a private /tmp) in a tight loop
//! on N threads, and reports calls per second and latency percentiles.
//! Everything is on the measured path, worn sessions' drops included.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::wasm::{PrepareOptions, RunOptions, Sandbox, SandboxError, DEFAULT_MAX_MEMORY_BYTES};

/// Runs the loop and returns a one-line JSON report.
pub fn run(
    file: &Path,
    threads: usize,
    seconds: f64,
    payload: &str,
) -> Result<String, SandboxError> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let file = file.to_path_buf();
            let payload = payload.as_bytes().to_vec();
            std::thread::spawn(move || -> Result<Vec<Duration>, SandboxError> {
                let sandbox = Sandbox::new()?;
                let module = sandbox.load_file(&file)?;
                let mut latencies = Vec::new();
                let mut session = None;
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let out = sandbox.run_in(
                        &mut session,
                        "bench",
                        &module,
                        RunOptions {
                            instance: PrepareOptions {
                                args: vec!["bench".into()],
                                env: Vec::new(),
                                capture: true,
                                inherit_stdin: false,
                                dirs: Vec::new(),
                                files: Vec::new(),
                                secrets: Default::default(),
                                max_tmp_bytes: Some(crate::jobs::DEFAULT_MAX_TMP_BYTES),
                                max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
                                outbound: None,
                                memory_image: None,
                                entry: Default::default(),
                            },
                            stdin: payload.clone(),
                            max_output_bytes: 1024 * 1024,
                            timeout: Some(Duration::from_secs(10)),
                        },
                    )?;
                    assert_eq!(out.exit_code, 0, "the benchmarked module failed");
                    latencies.push(start.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let started = Instant::now();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.join().expect("bench thread panicked")?);
    }
    let elapsed = started.elapsed().as_secs_f64().max(seconds);
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Ok(format!(
        "{{\"threads\":{},\"calls\":{},\"calls_per_sec\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        threads.max(1),
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    ))
}
