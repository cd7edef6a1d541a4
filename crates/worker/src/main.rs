//! `worker`: a faas worker process.
//!
//! - `worker --functions-dir DIR`: reads jobs as JSON lines on stdin and
//!   answers on stdout, exactly as under the Server, so a job can be run by
//!   hand: `echo '{"fn":"hello_1","payload":"x"}' | worker`.
//! - `worker run FILE.wasm [ARGS...]`: runs one module with the terminal's
//!   stdin/stdout and exits with its exit code (like `wasmer run`).

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use faas_worker::jobs::{JobRunner, DEFAULT_MAX_OUTPUT_BYTES};
use faas_worker::wasm::{PrepareOptions, RunOptions, Sandbox};

#[derive(Parser, Debug)]
#[command(
    name = "worker",
    version,
    about = "faas worker: runs functions in Wasmer"
)]
struct Cli {
    /// Where deployed functions live (one directory per function id).
    #[arg(long, env = "FAAS_FUNCTIONS_DIR", default_value = "./functions")]
    functions_dir: PathBuf,
    /// This worker's number, shown in its log lines.
    #[arg(long, env = "FAAS_WORKER_ID", default_value_t = 0)]
    id: usize,
    /// Most compiled modules kept in memory.
    #[arg(long, env = "FAAS_MODULE_CACHE_SIZE", default_value_t = 256)]
    module_cache_size: usize,
    /// Most bytes of stdout (and of stderr) a function may return.
    #[arg(long, env = "FAAS_MAX_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_OUTPUT_BYTES)]
    max_output_bytes: usize,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one WebAssembly (WASI) module with this terminal's stdin/stdout.
    Run {
        /// Set an environment variable for the module (repeatable).
        #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Map a host directory into the module: HOST or HOST:GUEST (repeatable).
        #[arg(long = "dir", value_name = "HOST[:GUEST]", value_parser = parse_dir)]
        dirs: Vec<(String, String)>,
        /// The .wasm file.
        file: PathBuf,
        /// Arguments passed to the module.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build DIR/code.wasmu (the compile-once artifact) from DIR/code.wasm.
    /// Exits 3 if the module is not valid WebAssembly. The Server runs this
    /// at deploy, in a child process, so compiler memory and crashes stay
    /// out of the Server.
    Compile {
        /// A function directory holding code.wasm.
        dir: PathBuf,
    },
    /// Rebuild every missing or stale artifact under --functions-dir (run by
    /// the Server at start, e.g. after a Wasmer upgrade); prints
    /// `rebuilt N of M`.
    RefreshArtifacts,
    /// Benchmark floor: run a module in a tight loop, a fresh instance per
    /// call (as for an invocation), on N threads; prints one JSON line.
    Bench {
        /// Threads, each with its own engine and runtime (like workers).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// How long to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// stdin of every call.
        #[arg(long, default_value = "")]
        payload: String,
        /// The .wasm file.
        file: PathBuf,
    },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got '{s}'")),
    }
}

fn parse_dir(s: &str) -> Result<(String, String), String> {
    let (host, guest) = s.split_once(':').unwrap_or((s, s));
    if host.is_empty() || guest.is_empty() {
        return Err(format!("expected HOST or HOST:GUEST, got '{s}'"));
    }
    Ok((host.to_string(), guest.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let part: &'static str = Box::leak(format!("WORKER-{}", cli.id).into_boxed_str());
    faas_logging::init(part);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use faas_worker::artifact;
    match &cli.command {
        Some(Command::Compile { dir }) => {
            let engine = artifact::new_engine(Default::default());
            return match artifact::build_file(&engine, dir) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(err @ artifact::ArtifactError::Compile(_)) => {
                    eprintln!("{err}");
                    Ok(ExitCode::from(3))
                }
                Err(err) => Err(err.into()),
            };
        }
        Some(Command::RefreshArtifacts) => {
            let (rebuilt, total) = artifact::refresh_all(&cli.functions_dir)?;
            println!("rebuilt {rebuilt} of {total}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let sandbox = Sandbox::new()?;
    match cli.command {
        Some(Command::Compile { .. }) | Some(Command::RefreshArtifacts) => {
            unreachable!("handled above")
        }
        Some(Command::Run {
            env,
            dirs,
            file,
            args,
        }) => {
            let module = sandbox.load_file(&file)?;
            let mut argv = vec![file.display().to_string()];
            argv.extend(args);
            let out = sandbox.run(
                &module,
                RunOptions {
                    // The terminal's own stdio, no deadline, the whole
                    // 4 GiB a wasm32 module can address.
                    instance: PrepareOptions {
                        args: argv,
                        env,
                        capture: false,
                        inherit_stdin: true,
                        dirs,
                        max_memory_bytes: 4 * 1024 * 1024 * 1024,
                    },
                    stdin: Vec::new(),
                    max_output_bytes: cli.max_output_bytes,
                    timeout: None,
                },
            )?;
            if let Some(trap) = out.trap {
                eprintln!("error: {} trapped: {trap}", file.display());
            }
            Ok(ExitCode::from(out.exit_code.clamp(0, 255) as u8))
        }
        Some(Command::Bench {
            threads,
            seconds,
            payload,
            file,
        }) => {
            drop(sandbox);
            let report = faas_worker::bench::run(&file, threads, seconds, &payload)?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            log::info!(
                "worker ready (functions dir {})",
                cli.functions_dir.display()
            );
            let mut runner = JobRunner::new(
                cli.functions_dir,
                sandbox,
                cli.module_cache_size,
                cli.max_output_bytes,
            );
            // Unbuffered fd 0: readiness checks must see every waiting byte,
            // which std's buffered Stdin could hide.
            let stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
            faas_worker::serve::serve(&mut runner, stdin, std::io::stdout().lock())?;
            log::info!("stdin closed, exiting");
            Ok(ExitCode::SUCCESS)
        }
    }
}
