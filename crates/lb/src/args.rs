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
}
