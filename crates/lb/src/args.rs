//! The load balancer's command-line flags, flattened into `faas-server`.

use clap::Args;

use crate::scheduler::Strategy;
use crate::LbConfig;

#[derive(Args, Debug, Clone)]
pub struct LbArgs {
    /// Load-balancing strategy: RR (round robin), FIFO or WEIGHTED.
    #[arg(default_value = "RR", env = "FAAS_STRATEGY", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// WEIGHTED: one weight per worker, e.g. 4,2,1,1 (default: all equal).
    #[arg(long, env = "FAAS_WEIGHTS", value_parser = parse_weights)]
    pub weights: Option<Weights>,
    /// Most jobs waiting for a worker before new ones get 503.
    #[arg(long, env = "FAAS_MAX_QUEUE", default_value_t = 1024)]
    pub max_queue: usize,
    /// Most workers one function's calls hold at once, so that other
    /// functions always find one (default: workers - 1, at least 1; 0: no
    /// cap). A deploy's `max_concurrency=N` lowers it for that function.
    #[arg(long, env = "FAAS_MAX_FUNCTION_SHARE")]
    pub max_function_share: Option<usize>,
}

/// Weights as given on the command line (1..=1000 each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights(pub Vec<u32>);

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
}

fn parse_weights(spec: &str) -> Result<Weights, String> {
    spec.split(',')
        .map(|w| {
            w.trim()
                .parse::<u32>()
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .ok_or_else(|| format!("invalid weight '{w}' (expected 1..1000)"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Weights)
}

impl LbArgs {
    /// The LB's set-up for `workers` workers; the weights, when given, must
    /// name one per worker.
    pub fn config(&self, workers: usize) -> Result<LbConfig, String> {
        let weights = match &self.weights {
            None => vec![1; workers],
            Some(Weights(w)) if w.len() == workers => w.clone(),
            Some(Weights(w)) => {
                return Err(format!(
                    "--weights lists {} weights for {workers} workers; give one per worker",
                    w.len()
                ))
            }
        };
        Ok(LbConfig {
            strategy: self.strategy,
            weights,
            max_queue: self.max_queue,
            max_function_share: self
                .max_function_share
                .unwrap_or_else(|| workers.saturating_sub(1).max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lb: LbArgs,
    }

    #[test]
    fn weights_must_match_workers() {
        let cli = Cli::parse_from(["lb", "WEIGHTED", "--weights", "4,2,1,1"]);
        assert_eq!(cli.lb.config(4).unwrap().weights, [4, 2, 1, 1]);
        assert!(cli.lb.config(2).is_err());
        assert!(Cli::try_parse_from(["lb", "WEIGHTED", "--weights", "4,0,1,1"]).is_err());
        let cli = Cli::parse_from(["lb"]);
        assert_eq!(cli.lb.config(4).unwrap().weights, [1, 1, 1, 1]);
        assert_eq!(cli.lb.strategy, Strategy::RoundRobin);
        assert!(Cli::try_parse_from(["lb", "LIFO"]).is_err());
    }

    #[test]
    fn the_function_share_defaults_to_all_workers_but_one() {
        let cli = Cli::parse_from(["lb"]);
        assert_eq!(cli.lb.config(4).unwrap().max_function_share, 3);
        assert_eq!(cli.lb.config(1).unwrap().max_function_share, 1);
        let cli = Cli::parse_from(["lb", "--max-function-share", "0"]);
        assert_eq!(cli.lb.config(4).unwrap().max_function_share, 0);
    }
}
