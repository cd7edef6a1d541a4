//! `worker`: a faas worker process.
//!
//! - `worker --functions-dir DIR`: reads jobs as JSON lines on stdin and
//!   answers on stdout, exactly as under the Server, so a job can be run by
//!   hand: `echo '{"fn":"hello_1","payload":"x"}' | worker`.
//! - `worker run FILE.wasm [ARGS...]`: runs one module with the terminal's
//!   stdin/stdout and exits with its exit code (like `wasmer run`).
//! - `worker compile DIR`, `worker refresh-artifacts`, `worker bench FILE`:
//!   artifacts and the benchmark floor.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use faas_worker::args::WorkerArgs;
use faas_worker::artifact;
use faas_worker::hostdir::DirMapping;
use faas_worker::interpreters::Interpreter;
use faas_worker::jobs::{JobRunner, RunnerSettings, PROJECT_GUEST_DIR};
use faas_worker::native::{NativeConfig, NativeRunner};
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
    /// The directory in which this worker keeps its PHP fetch sockets and
    /// prelude, as `DIR/worker-PID` (the Server passes its own, and removes
    /// that when it reaps the worker); default: a new directory under the
    /// temporary directory, removed at exit.
    #[arg(long, value_name = "DIR")]
    sockets_dir: Option<PathBuf>,
    #[command(flatten)]
    worker: WorkerArgs,
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
        /// Map host directory HOST into the module at GUEST (default: the
        /// same path; `/` is allowed), as `wasmtime run --dir HOST::GUEST`
        /// does; `HOST:GUEST` is the same, and a trailing `:ro` makes it
        /// read-only. Repeatable: the first mapping is the module's
        /// pre-opened descriptor 3, the next 4, and so on. A missing HOST,
        /// an unknown mode or two mappings at one GUEST exit with status 2.
        #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
        dirs: Vec<String>,
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
    /// Check a JavaScript or Python script's syntax with the interpreter in
    /// WebAssembly (what a deploy runs): exit 0 when it parses, 1 with the
    /// error on stderr when not, 2 when the check could not run.
    Check {
        /// js or python.
        #[arg(long)]
        lang: faas_proto::Lang,
        /// The script.
        file: PathBuf,
    },
    /// Compile every `.py` file of a Python project's tree to bytecode with
    /// the interpreter in WebAssembly, and write each beside its source
    /// (`__pycache__/`), as a deploy does; prints `compiled N of M`. A file
    /// that does not compile gets none.
    Precompile {
        /// The project's tree.
        tree: PathBuf,
    },
    /// Build the artifacts of the interpreter modules in the runtimes dir
    /// that have none or a stale one (run by `make` and by the Server at
    /// start); prints `prepared N`.
    PrepareRuntimes,
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

fn main() -> ExitCode {
    faas_worker::fds::seal_inherited();
    let cli = Cli::parse();
    let part: &'static str = Box::leak(format!("WORKER-{}", cli.id).into_boxed_str());
    faas_logging::init(part);
    // Interpreters recurse deeply on the native stack (QuickJS: ~1 KiB per
    // JS call); 8 MiB lets scripts recurse thousands of levels.
    wasmer::sys::vm::set_stack_size(8 * 1024 * 1024);
    let outcome = match cli.command {
        None => serve_jobs(cli.functions_dir, cli.id, cli.sockets_dir, &cli.worker),
        Some(Command::Run {
            env,
            dirs,
            file,
            args,
        }) => match DirMapping::parse_all(&dirs) {
            Ok(dirs) => run_module(&file, args, env, dirs, cli.worker.max_output_bytes),
            Err(message) => {
                eprintln!("worker run: {message}");
                Ok(ExitCode::from(2))
            }
        },
        Some(Command::Compile { dir }) => compile(&dir),
        Some(Command::Check { lang, file }) => check(&cli.worker, lang, &file),
        Some(Command::Precompile { tree }) => precompile(&cli.worker, &tree),
        Some(Command::PrepareRuntimes) => {
            let dir = cli.worker.runtimes_dir_for(&current_exe());
            faas_worker::interpreters::prepare_all(&dir)
                .map(|n| {
                    println!("prepared {n}");
                    ExitCode::SUCCESS
                })
                .map_err(Into::into)
        }
        Some(Command::RefreshArtifacts) => refresh_artifacts(&cli.functions_dir),
        Some(Command::Bench {
            threads,
            seconds,
            payload,
            file,
        }) => faas_worker::bench::run(&file, threads, seconds, &payload)
            .map(|report| {
                println!("{report}");
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
    };
    outcome.unwrap_or_else(|err| {
        log::error!("{err:#}");
        ExitCode::from(1)
    })
}

fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("worker"))
}

/// The Server's mode: jobs on stdin, results on stdout, until stdin closes.
fn serve_jobs(
    functions_dir: PathBuf,
    id: usize,
    sockets_dir: Option<PathBuf>,
    args: &WorkerArgs,
) -> anyhow::Result<ExitCode> {
    let sandbox = Sandbox::new()?;
    let native = NativeRunner::new(NativeConfig {
        node: args.node.clone(),
        python: args.python.clone(),
        php: args.php.clone(),
        uid: args.native_uid_base.saturating_add(id as u32),
        allow_unconfined: args.allow_unconfined_native,
        bwrap: args.bwrap.clone(),
    });
    log::info!("worker ready (functions dir {})", functions_dir.display());
    let settings = RunnerSettings {
        module_cache_size: args.module_cache_size,
        max_output_bytes: args.max_output_bytes,
        runtimes_dir: args.runtimes_dir_for(&current_exe()),
        native_langs: args.native_langs(),
        outbound: Some(std::sync::Arc::new(
            faas_worker::outbound::Outbound::new(&args.outbound())
                .map_err(|e| anyhow::anyhow!("outbound HTTP client: {e}"))?,
        )),
        sockets_dir,
    };
    let mut runner = JobRunner::new(functions_dir, sandbox, native, settings);
    // Unbuffered fd 0: readiness checks must see every waiting byte, which
    // std's buffered Stdin could hide.
    let stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    faas_worker::serve::serve(&mut runner, stdin, std::io::stdout().lock())?;
    log::info!("stdin closed, exiting");
    Ok(ExitCode::SUCCESS)
}

/// `worker run`: one module with the terminal's stdio; its exit code is ours.
fn run_module(
    file: &Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dirs: Vec<DirMapping>,
    max_output_bytes: usize,
) -> anyhow::Result<ExitCode> {
    let sandbox = Sandbox::new()?;
    let module = sandbox.load_file(file)?;
    let mut argv = vec![file.display().to_string()];
    argv.extend(args);
    let out = sandbox.run(
        &module,
        RunOptions {
            // The terminal's own stdio, no deadline, the whole 4 GiB a
            // wasm32 module can address.
            instance: PrepareOptions {
                args: argv,
                env,
                capture: false,
                inherit_stdin: true,
                dirs,
                files: Vec::new(),
                secrets: Default::default(),
                max_tmp_bytes: None,
                max_memory_bytes: 4 * 1024 * 1024 * 1024,
                outbound: None,
                memory_image: None,
                entry: Default::default(),
            },
            stdin: Vec::new(),
            max_output_bytes,
            timeout: None,
        },
    )?;
    if let Some(trap) = out.trap {
        eprintln!("error: {} trapped: {trap}", file.display());
    }
    Ok(ExitCode::from(out.exit_code.clamp(0, 255) as u8))
}

/// `worker compile DIR`: exit 3 when the module is not valid WebAssembly.
fn compile(dir: &Path) -> anyhow::Result<ExitCode> {
    let engine = artifact::new_engine(Default::default());
    match artifact::build_file(&engine, dir) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err @ artifact::ArtifactError::Compile(_)) => {
            eprintln!("{err}");
            Ok(ExitCode::from(3))
        }
        Err(err) => Err(err.into()),
    }
}

/// `worker check`: a deploy's syntax check of a script, in the sandbox.
fn check(args: &WorkerArgs, lang: faas_proto::Lang, file: &Path) -> anyhow::Result<ExitCode> {
    if faas_worker::interpreters::module_file(lang).is_none() {
        eprintln!("worker check parses JavaScript and Python only, not {lang}");
        return Ok(ExitCode::from(2));
    }
    let sandbox = Sandbox::new()?;
    let dir = args.runtimes_dir_for(&current_exe());
    let interpreter = match Interpreter::load(sandbox.engine(), &dir, lang) {
        Ok(interpreter) => interpreter,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::from(2));
        }
    };
    let script = std::fs::read(file)?;
    let out = sandbox.run(
        &interpreter.module,
        RunOptions {
            instance: PrepareOptions {
                args: interpreter.check_args(),
                env: Vec::new(),
                capture: true,
                inherit_stdin: false,
                dirs: Vec::new(),
                files: interpreter.files(script.into()),
                secrets: Default::default(),
                max_tmp_bytes: Some(16 * 1024 * 1024),
                max_memory_bytes: 256 * 1024 * 1024,
                outbound: None,
                memory_image: interpreter.memory_image.clone(),
                entry: interpreter.entry,
            },
            stdin: Vec::new(),
            max_output_bytes: 64 * 1024,
            timeout: Some(std::time::Duration::from_secs(30)),
        },
    )?;
    std::io::stderr().write_all(&out.stderr)?;
    // A script that exhausts the parser (a nesting bomb) or its time is
    // the script's fault: rejected (exit 1, 422), not a missing toolchain.
    Ok(match (out.timed_out, out.trap, out.exit_code) {
        (true, _, _) => {
            eprintln!("the {lang} interpreter took more than 30 s to parse the script");
            ExitCode::from(1)
        }
        (_, Some(trap), _) => {
            eprintln!("the {lang} interpreter could not parse the script: {trap}");
            ExitCode::from(1)
        }
        (_, None, 0) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// `worker precompile`: see [`faas_worker::bytecode`].
fn precompile(args: &WorkerArgs, tree: &Path) -> anyhow::Result<ExitCode> {
    use faas_worker::bytecode;
    let sources = bytecode::sources(tree)?;
    if sources.is_empty() {
        println!("compiled 0 of 0");
        return Ok(ExitCode::SUCCESS);
    }
    let sandbox = Sandbox::new()?;
    let dir = args.runtimes_dir_for(&current_exe());
    let interpreter = Interpreter::load(sandbox.engine(), &dir, faas_proto::Lang::Python)?;
    let stdin: String = sources
        .iter()
        .map(|(rel, _)| format!("{PROJECT_GUEST_DIR}{rel}\n"))
        .collect();
    let names: std::collections::HashSet<String> =
        sources.iter().map(|(rel, _)| rel.clone()).collect();
    let tree_files = sources
        .into_iter()
        .map(|(rel, bytes)| (format!("{PROJECT_GUEST_DIR}{rel}"), bytes.into()))
        .collect::<Vec<_>>();
    let out = sandbox.run(
        &interpreter.module,
        RunOptions {
            instance: PrepareOptions {
                args: ["python", "-I", "-c", bytecode::SCRIPT]
                    .map(String::from)
                    .to_vec(),
                env: Vec::new(),
                capture: true,
                inherit_stdin: false,
                dirs: Vec::new(),
                files: interpreter.project_files(&tree_files),
                secrets: Default::default(),
                max_tmp_bytes: Some(16 * 1024 * 1024),
                max_memory_bytes: 512 * 1024 * 1024,
                outbound: None,
                memory_image: interpreter.memory_image.clone(),
                entry: interpreter.entry,
            },
            stdin: stdin.into_bytes(),
            max_output_bytes: 512 * 1024 * 1024,
            timeout: None,
        },
    )?;
    if out.exit_code != 0 || out.trap.is_some() {
        eprintln!(
            "compiling the project's bytecode failed (exit {}, {:?}): {}",
            out.exit_code,
            out.trap,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Ok(ExitCode::from(1));
    }
    let pycs = match bytecode::parse(&out.stdout, &names) {
        Ok(pycs) => pycs,
        Err(why) => {
            eprintln!("the interpreter's bytecode output is not usable: {why}");
            return Ok(ExitCode::from(1));
        }
    };
    let written = bytecode::write(tree, &pycs)?;
    println!("compiled {written} of {}", names.len());
    Ok(ExitCode::SUCCESS)
}

fn refresh_artifacts(functions_dir: &Path) -> anyhow::Result<ExitCode> {
    let (rebuilt, total) = artifact::refresh_all(functions_dir)?;
    println!("rebuilt {rebuilt} of {total}");
    Ok(ExitCode::SUCCESS)
}
