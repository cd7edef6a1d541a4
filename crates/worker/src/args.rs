//! The worker's flags. The worker binary flattens [`WorkerArgs`]; the Server
//! flattens the same struct into its own command line and turns it back into
//! the worker's arguments with [`WorkerArgs::to_args`], so a flag is declared
//! once.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

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
        args
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
        };
        let mut argv: Vec<OsString> = vec!["worker".into()];
        argv.extend(args.to_args());
        assert_eq!(Cli::parse_from(argv).worker, args);
    }
}
