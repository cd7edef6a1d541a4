//! The load balancer's decisions, free of I/O so they can be tested directly.
//!
//! - **RR**: workers in turn, skipping workers that are down.
//! - **FIFO**: one queue in arrival order; a job starts only on an idle
//!   worker, jobs start in the order they came, and no job waits while a
//!   worker is idle.
//! - **WEIGHTED**: smooth weighted round robin (the rule nginx uses) over the
//!   workers that are up. It was chosen over a weighted least-load rule
//!   because it gives exact, predictable shares (4,2,1,1 → 4:2:1:1 over every
//!   8 jobs) and spreads a heavy worker's turns out instead of bunching them.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use faas_proto::WorkerStats;

/// How jobs are spread over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    Fifo,
    Weighted,
}

impl Strategy {
    /// The name used on the command line and in stats.
    pub fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "RR",
            Self::Fifo => "FIFO",
            Self::Weighted => "WEIGHTED",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "RR" => Ok(Self::RoundRobin),
            "FIFO" => Ok(Self::Fifo),
            "WEIGHTED" => Ok(Self::Weighted),
            _ => Err(format!(
                "unknown strategy '{s}' (expected RR, FIFO or WEIGHTED)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
struct WorkerState {
    up: bool,
    weight: u32,
    /// Smooth weighted round robin's running score.
    current: i64,
    in_flight: u64,
    completed: u64,
    failed: u64,
}

/// What to do with a submitted job.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send it to this worker now.
    Forward(usize),
    /// It waits in the FIFO queue; [`Scheduler::job_done`] or
    /// [`Scheduler::worker_up`] will hand it out.
    Queued,
    /// It cannot be taken (queue full, no worker).
    Rejected(String),
}

/// Decides which worker runs each job. `T` is whatever the caller needs to
/// answer a queued job later (connection and request id).
#[derive(Debug)]
pub struct Scheduler<T> {
    strategy: Strategy,
    workers: Vec<WorkerState>,
    next_rr: usize,
    queue: VecDeque<T>,
    max_queue: usize,
}

impl<T> Scheduler<T> {
    /// `weights` must have one entry per worker (all ≥ 1).
    pub fn new(strategy: Strategy, weights: &[u32], max_queue: usize) -> Self {
        let workers = weights
            .iter()
            .map(|&weight| WorkerState {
                up: true,
                weight: weight.max(1),
                current: 0,
                in_flight: 0,
                completed: 0,
                failed: 0,
            })
            .collect();
        Self {
            strategy,
            workers,
            next_rr: 0,
            queue: VecDeque::new(),
            max_queue,
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Picks a worker for a new job, or queues it (FIFO).
    ///
    /// RR and WEIGHTED hand jobs to busy workers too (they wait in the
    /// worker's pipe); `max_queue` bounds how many may wait that way, so a
    /// flood is refused instead of piling up without limit.
    pub fn submit(&mut self, item: T) -> (Decision, Option<T>) {
        if self.strategy != Strategy::Fifo {
            let up = self.workers.iter().filter(|w| w.up).count() as u64;
            let in_flight: u64 = self.workers.iter().map(|w| w.in_flight).sum();
            if up > 0 && in_flight >= up + self.max_queue as u64 {
                return (
                    Decision::Rejected(format!(
                        "queue full ({} jobs waiting for a worker)",
                        in_flight - up
                    )),
                    Some(item),
                );
            }
        }
        let choice = match self.strategy {
            Strategy::RoundRobin => self.pick_round_robin(|_| true),
            Strategy::Weighted => self.pick_weighted(),
            Strategy::Fifo => {
                if self.queue.is_empty() {
                    self.pick_round_robin(|w| w.in_flight == 0)
                } else {
                    None
                }
            }
        };
        if let Some(worker) = choice {
            self.workers[worker].in_flight += 1;
            return (Decision::Forward(worker), Some(item));
        }
        if self.strategy != Strategy::Fifo {
            return (
                Decision::Rejected("no worker is up".to_string()),
                Some(item),
            );
        }
        if self.queue.len() >= self.max_queue {
            return (
                Decision::Rejected(format!("queue full ({} jobs waiting)", self.queue.len())),
                Some(item),
            );
        }
        self.queue.push_back(item);
        (Decision::Queued, None)
    }

    /// Records the end of a job on `worker` and returns queued jobs that can
    /// now start, with the worker each goes to.
    pub fn job_done(&mut self, worker: usize, ok: bool) -> Vec<(usize, T)> {
        if let Some(w) = self.workers.get_mut(worker) {
            w.in_flight = w.in_flight.saturating_sub(1);
            if ok {
                w.completed += 1;
            } else {
                w.failed += 1;
            }
        }
        self.drain_queue()
    }

    pub fn worker_down(&mut self, worker: usize) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.up = false;
        }
    }

    pub fn worker_up(&mut self, worker: usize) -> Vec<(usize, T)> {
        if let Some(w) = self.workers.get_mut(worker) {
            w.up = true;
        }
        self.drain_queue()
    }

    /// Removes queued jobs for which `keep` is false (their requester left).
    pub fn retain_queued(&mut self, keep: impl FnMut(&T) -> bool) {
        self.queue.retain(keep);
    }

    pub fn stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .enumerate()
            .map(|(worker_id, w)| WorkerStats {
                worker_id,
                up: w.up,
                weight: w.weight,
                in_flight: w.in_flight,
                completed: w.completed,
                failed: w.failed,
            })
            .collect()
    }

    fn drain_queue(&mut self) -> Vec<(usize, T)> {
        let mut started = Vec::new();
        while !self.queue.is_empty() {
            let Some(worker) = self.pick_round_robin(|w| w.in_flight == 0) else {
                break;
            };
            self.workers[worker].in_flight += 1;
            let item = self.queue.pop_front().expect("queue is not empty");
            started.push((worker, item));
        }
        started
    }

    /// The next worker at or after the round-robin pointer that is up and
    /// passes `eligible`.
    fn pick_round_robin(&mut self, eligible: impl Fn(&WorkerState) -> bool) -> Option<usize> {
        let n = self.workers.len();
        for step in 0..n {
            let i = (self.next_rr + step) % n;
            let w = &self.workers[i];
            if w.up && eligible(w) {
                self.next_rr = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// Smooth weighted round robin: every up worker gains its weight, the
    /// highest score wins and pays back the total.
    fn pick_weighted(&mut self) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, w) in self.workers.iter_mut().enumerate().filter(|(_, w)| w.up) {
            w.current += i64::from(w.weight);
            total += i64::from(w.weight);
            if best.is_none_or(|(_, score)| w.current > score) {
                best = Some((i, w.current));
            }
        }
        let (winner, _) = best?;
        self.workers[winner].current -= total;
        Some(winner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwards(s: &mut Scheduler<u32>, n: u32) -> Vec<usize> {
        (0..n)
            .map(|i| match s.submit(i).0 {
                Decision::Forward(w) => w,
                other => panic!("expected a forward, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_turns_and_skips_down_workers() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 4], 10);
        assert_eq!(forwards(&mut s, 6), [0, 1, 2, 3, 0, 1]);
        s.worker_down(2);
        assert_eq!(forwards(&mut s, 4), [3, 0, 1, 3]);
        s.worker_up(2);
        assert_eq!(forwards(&mut s, 2), [0, 1]);
        assert_eq!(forwards(&mut s, 1), [2]);
    }

    #[test]
    fn weighted_shares_follow_weights_smoothly() {
        let mut s = Scheduler::new(Strategy::Weighted, &[4, 2, 1, 1], 1000);
        let picks = forwards(&mut s, 80);
        let count = |w| picks.iter().filter(|&&p| p == w).count();
        assert_eq!([count(0), count(1), count(2), count(3)], [40, 20, 10, 10]);
        // Smooth: the heavy worker never runs more than twice in a row.
        assert!(picks
            .windows(3)
            .all(|w| !(w[0] == 0 && w[1] == 0 && w[2] == 0)));
        s.worker_down(0);
        let picks = forwards(&mut s, 4);
        assert!(!picks.contains(&0));
    }

    #[test]
    fn fifo_queues_when_busy_and_starts_in_arrival_order() {
        let mut s = Scheduler::new(Strategy::Fifo, &[1; 2], 3);
        assert_eq!(s.submit(1).0, Decision::Forward(0));
        assert_eq!(s.submit(2).0, Decision::Forward(1));
        assert_eq!(s.submit(3).0, Decision::Queued);
        assert_eq!(s.submit(4).0, Decision::Queued);
        assert_eq!(s.submit(5).0, Decision::Queued);
        assert!(matches!(s.submit(6).0, Decision::Rejected(_)));
        assert_eq!(s.queue_len(), 3);
        assert_eq!(s.job_done(1, true), vec![(1, 3)]);
        assert_eq!(s.job_done(0, false), vec![(0, 4)]);
        assert_eq!(s.job_done(0, true), vec![(0, 5)]);
        assert!(s.job_done(0, true).is_empty());
        // Worker 0 is idle again: a new job must not wait.
        assert_eq!(s.submit(7).0, Decision::Forward(0));
        let stats = s.stats();
        assert_eq!(stats[0].completed, 2);
        assert_eq!(stats[0].failed, 1);
        assert_eq!(stats[1].in_flight, 1);
    }

    #[test]
    fn fifo_holds_jobs_while_every_worker_is_down() {
        let mut s = Scheduler::new(Strategy::Fifo, &[1], 4);
        s.worker_down(0);
        assert_eq!(s.submit(1).0, Decision::Queued);
        assert_eq!(s.worker_up(0), vec![(0, 1)]);
    }

    #[test]
    fn round_robin_bounds_waiting_jobs() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 2], 3);
        assert_eq!(forwards(&mut s, 5), [0, 1, 0, 1, 0]);
        assert!(matches!(s.submit(9).0, Decision::Rejected(_)));
        s.job_done(0, true);
        assert_eq!(s.submit(9).0, Decision::Forward(1));
    }

    #[test]
    fn round_robin_with_no_worker_up_rejects() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1], 4);
        s.worker_down(0);
        assert!(matches!(s.submit(1).0, Decision::Rejected(_)));
    }

    #[test]
    fn strategy_names_parse() {
        assert_eq!("rr".parse::<Strategy>().unwrap(), Strategy::RoundRobin);
        assert_eq!("FIFO".parse::<Strategy>().unwrap(), Strategy::Fifo);
        assert_eq!("Weighted".parse::<Strategy>().unwrap(), Strategy::Weighted);
        assert!("LIFO".parse::<Strategy>().is_err());
    }
}
