//! The worker's flags. The worker binary flattens [`WorkerArgs`]; the Server
//! flattens the same struct into its own command line and turns it back into
//! the worker's arguments with [`WorkerArgs::to_args`], so a flag is declared
//! once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use faas_proto::Lang;

use crate::jobs::DEFAULT_MAX_OUTPUT_BYTES;

#[derive(Args, Debug, Clone, PartialEq)]
pub struct WorkerArgs {
    /// Compiled modules each worker keeps in memory.
    #[arg(long, env = "FAAS_MODULE_CACHE_SIZE", default_value_t = 256)]
    pub module_cache_size: usize,
    /// Most bytes of stdout (and of stderr) kept from one invocation.
    #[arg(long, env = "FAAS_MAX_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_output_bytes: usize,
    /// node, for native JavaScript functions (the Server passes the one it
    /// found).
    #[arg(long, value_name = "PATH")]
    pub node: Option<PathBuf>,
    /// python3, for native Python functions.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// php, for native PHP functions.
    #[arg(long, value_name = "PATH")]
    pub php: Option<PathBuf>,
    /// Where the interpreter modules are (`qjs.wasm`, `python.wasm` and
    /// their artifacts); default: `runtimes` beside the
    /// directory of this binary (`build/runtimes`).
    #[arg(long, env = "FAAS_RUNTIMES_DIR", value_name = "DIR")]
    pub runtimes_dir: Option<PathBuf>,
    /// Run JavaScript with the host's node (inside bubblewrap) instead of
    /// QuickJS in WebAssembly: for compute-heavy functions that need a JIT.
    #[arg(long, env = "FAAS_NATIVE_JS")]
    pub native_js: bool,
    /// Run Python with the host's python3 (inside bubblewrap) instead of
    /// CPython in WebAssembly.
    #[arg(long, env = "FAAS_NATIVE_PYTHON")]
    pub native_python: bool,
    /// Native functions of worker N run as uid/gid BASE+N (when the server
    /// runs as root), so no call can reach another's files or processes.
    #[arg(long, env = "FAAS_NATIVE_UID_BASE", default_value_t = 61000)]
    pub native_uid_base: u32,
    /// Run native functions without bubblewrap when namespaces cannot be
    /// created on this machine (they then reach the host's network and
    /// world-readable files). Off by default: PHP deploys answer 503.
    #[arg(long, env = "FAAS_ALLOW_UNCONFINED_NATIVE")]
    pub allow_unconfined_native: bool,
    /// The bubblewrap binary that confines native calls (and compiles).
    #[arg(long, env = "FAAS_BWRAP", value_name = "PATH", default_value = crate::native::BWRAP)]
    pub bwrap: PathBuf,
    /// Most outbound HTTP requests one invocation may make (functions
    /// deployed with `allow=`); the next ones are refused as denied.
    #[arg(long, env = "FAAS_MAX_OUTBOUND_REQUESTS", default_value_t = crate::outbound::DEFAULT_MAX_REQUESTS)]
    pub max_outbound_requests: u32,
    /// Most bytes of one outbound response's body (past it the request
    /// fails with a clear error), and of one request's body.
    #[arg(long, env = "FAAS_MAX_OUTBOUND_BYTES", default_value_t = crate::outbound::DEFAULT_MAX_BYTES)]
    pub max_outbound_bytes: u64,
    /// A PEM file of CA certificates trusted for functions' outbound HTTPS,
    /// besides the system's roots (private PKI, tests).
    #[arg(long, env = "FAAS_OUTBOUND_CA_FILE", value_name = "PATH")]
    pub outbound_ca_file: Option<PathBuf>,
    /// A port functions may never reach, even when granted (repeatable).
    /// The Server adds its own HTTP port.
    #[arg(long = "outbound-protected-port", value_name = "PORT")]
    pub outbound_protected_ports: Vec<u16>,
}

impl WorkerArgs {
    /// The command-line arguments that give a worker these settings.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--module-cache-size".into(),
            self.module_cache_size.to_string().into(),
            "--max-output-bytes".into(),
            self.max_output_bytes.to_string().into(),
        ];
        let programs = [
            ("--node", &self.node),
            ("--python", &self.python),
            ("--php", &self.php),
        ];
        for (flag, path) in programs {
            if let Some(path) = path {
                args.push(flag.into());
                args.push(path.into());
            }
        }
        if let Some(dir) = &self.runtimes_dir {
            args.push("--runtimes-dir".into());
            args.push(dir.into());
        }
        let switches = [
            ("--native-js", self.native_js),
            ("--native-python", self.native_python),
            ("--allow-unconfined-native", self.allow_unconfined_native),
        ];
        args.extend(switches.iter().filter(|s| s.1).map(|s| s.0.into()));
        args.push("--native-uid-base".into());
        args.push(self.native_uid_base.to_string().into());
        args.push("--bwrap".into());
        args.push(self.bwrap.clone().into());
        args.push("--max-outbound-requests".into());
        args.push(self.max_outbound_requests.to_string().into());
        args.push("--max-outbound-bytes".into());
        args.push(self.max_outbound_bytes.to_string().into());
        if let Some(file) = &self.outbound_ca_file {
            args.push("--outbound-ca-file".into());
            args.push(file.into());
        }
        for port in &self.outbound_protected_ports {
            args.push("--outbound-protected-port".into());
            args.push(port.to_string().into());
        }
        args
    }

    /// The runtimes directory: the flag, else `runtimes` beside the
    /// directory of `program` (`build/bin/worker` → `build/runtimes`).
    pub fn runtimes_dir_for(&self, program: &Path) -> PathBuf {
        self.runtimes_dir.clone().unwrap_or_else(|| {
            let bin_dir = program.parent().unwrap_or(Path::new("."));
            bin_dir.join("..").join("runtimes")
        })
    }

    /// The outbound HTTP settings these flags give.
    pub fn outbound(&self) -> crate::outbound::OutboundSettings {
        crate::outbound::OutboundSettings {
            max_requests: self.max_outbound_requests,
            max_bytes: self.max_outbound_bytes,
            ca_file: self.outbound_ca_file.clone(),
            protected_ports: self.outbound_protected_ports.clone(),
        }
    }

    /// Languages run with host runtimes rather than in WebAssembly.
    pub fn native_langs(&self) -> Vec<Lang> {
        let mut langs = vec![Lang::Php];
        if self.native_js {
            langs.push(Lang::Js);
        }
        if self.native_python {
            langs.push(Lang::Python);
        }
        langs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        worker: WorkerArgs,
    }

    #[test]
    fn to_args_round_trips() {
        let args = WorkerArgs {
            module_cache_size: 7,
            max_output_bytes: 99,
            node: None,
            python: Some("/usr/bin/python3".into()),
            php: Some("/usr/bin/php".into()),
            runtimes_dir: Some("/opt/rt".into()),
            native_js: true,
            native_python: false,
            native_uid_base: 7000,
            allow_unconfined_native: false,
            bwrap: "/opt/bwrap".into(),
            max_outbound_requests: 3,
            max_outbound_bytes: 1234,
            outbound_ca_file: Some("/etc/ca.pem".into()),
            outbound_protected_ports: vec![8080, 9000],
        };
        let mut argv: Vec<OsString> = vec!["worker".into()];
        argv.extend(args.to_args());
        assert_eq!(Cli::parse_from(argv).worker, args);
    }
}
