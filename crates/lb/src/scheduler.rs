//! The load balancer's decisions, free of I/O so they can be tested directly.
//!
//! One rule holds for every strategy: **a job only ever starts on an idle
//! worker**, and no job waits while a worker is up and idle. When every
//! worker is busy, jobs wait in one queue (at most `max_queue`) in arrival
//! order and start as workers free up. So a long call never holds up the
//! calls behind it, and a worker that dies takes only the call it was
//! running with it. The strategies differ in *which* idle worker starts a job:
//!
//! - **RR**: the next idle worker in rotation (0,1,2,3,0,... when all are idle).
//! - **FIFO**: the same rotation; it also queues jobs while every worker is
//!   down (RR and WEIGHTED refuse them at once).
//! - **WEIGHTED**: smooth weighted round robin (the rule nginx uses) over the
//!   idle workers. It was chosen over a weighted least-load rule because it
//!   gives exact, predictable shares (4,2,1,1 → 4:2:1:1 over every 8 jobs
//!   when workers are idle) and spreads a heavy worker's turns out instead of
//!   bunching them.
//!
//! **Fair share.** Every job names its function (all versions of a name
//! share one account), and a function holds at most its *cap* of workers at
//! once: `--max-function-share` (default: workers − 1, at least 1; 0 = no
//! cap), lowered per function by `max_concurrency=N` at deploy. The queue
//! stays in arrival order, but a queued job whose function is at its cap is
//! passed over for the next job that may start; it keeps its place and
//! starts as soon as its function drops below the cap, ahead of every job
//! that arrived after it. So the rule above reads: *no job that may start
//! waits while a worker is idle*, and four calls of one function sleeping
//! on four workers cannot happen: the fourth waits, and the worker left
//! over serves everyone else at once. The cap is a hard one even when
//! nobody else is waiting: the LB cannot take a worker back from a running
//! call, so a spare worker must be kept free *before* another function
//! asks. The price is a single hot function's peak throughput: three
//! workers of four. Measured here (2 shared cores, wrk at 32 connections,
//! three alternating rounds): a C hello 3,970 calls/s against 4,580
//! uncapped (−13%), n-queens(9) 3,250 against 4,070 (−20%); every capped
//! round was below its uncapped neighbour. Three workers do not quite
//! saturate two cores, because each call's hops (gateway, Server, LB) run
//! between a worker's calls and a fourth worker hides them.
//! `--max-function-share 0` buys that back where one tenant owns the
//! platform. Capping only functions whose recent calls were long was
//! rejected: a hostile function can warm up with quick calls, then sleep
//! on every worker.
//! The cap protects against one function; several functions each at their
//! cap can still fill every worker (give them a lower `max_concurrency`).
//!
//! Every job handed out belongs to the connection that asked for it: only
//! that connection can end it (`job_done`), and closing the connection
//! releases its jobs, so counters can neither drift nor go negative.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use faas_proto::{LbErrorKind, WorkerStats};

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

/// Who asked for a job: a connection and its request id there.
pub type Owner = (u64, u64);

/// Whose share a job counts against, and how much that function may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The function's name (its versions share one account).
    pub function: Arc<str>,
    /// The function's own `max_concurrency`, if it set one; the LB-wide cap
    /// still applies when it is lower.
    pub max_concurrency: Option<usize>,
}

impl Share {
    pub fn new(function: impl Into<Arc<str>>, max_concurrency: Option<usize>) -> Self {
        Self {
            function: function.into(),
            max_concurrency,
        }
    }
}

/// A job waiting for a worker.
#[derive(Debug)]
struct Waiting<T> {
    owner: Owner,
    function: Arc<str>,
    cap: usize,
    item: T,
}

/// A job on a worker.
#[derive(Debug, Clone)]
struct Running {
    worker: usize,
    function: Arc<str>,
}

/// What to do with a submitted job.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send it to this worker now.
    Forward(usize),
    /// It waits in the queue; [`Scheduler::job_done`] or
    /// [`Scheduler::worker_up`] will hand it out.
    Queued,
    /// It cannot be taken.
    Rejected(Rejection),
}

/// Why a submitted job was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Every worker is busy and the queue holds `max_queue` jobs.
    #[error("queue full ({waiting} jobs waiting)")]
    QueueFull { waiting: usize },
    /// No worker is up (RR and WEIGHTED; FIFO queues instead).
    #[error("no worker is up")]
    NoWorker,
    /// The owner already has a job with this request id.
    #[error("request {req} is already in progress")]
    InProgress { req: u64 },
}

impl Rejection {
    /// The kind the refusal carries on the wire.
    pub fn kind(&self) -> LbErrorKind {
        match self {
            Self::QueueFull { .. } => LbErrorKind::QueueFull,
            Self::NoWorker => LbErrorKind::NoWorker,
            Self::InProgress { .. } => LbErrorKind::Invalid,
        }
    }
}

/// Why a report was refused; nothing changed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no job {req} was handed to this connection")]
    UnknownJob { req: u64 },
    #[error("job {req} ran on worker {actual}, not {claimed}")]
    WrongWorker {
        req: u64,
        actual: usize,
        claimed: usize,
    },
    #[error("there is no worker {0}")]
    NoSuchWorker(usize),
}

/// Decides which worker runs each job. `T` is whatever the caller needs to
/// answer a queued job later.
#[derive(Debug)]
pub struct Scheduler<T> {
    strategy: Strategy,
    workers: Vec<WorkerState>,
    next_rr: usize,
    queue: VecDeque<Waiting<T>>,
    max_queue: usize,
    /// Most workers one function holds at once (`usize::MAX`: no cap).
    max_share: usize,
    /// Jobs handed out and not yet done.
    running: HashMap<Owner, Running>,
    /// Workers each function holds now; a function holding none has no
    /// entry, so the map is bounded by the running jobs.
    held: HashMap<Arc<str>, usize>,
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
            max_share: usize::MAX,
            running: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Caps the workers one function may hold at once (0: no cap).
    pub fn with_max_share(mut self, max_share: usize) -> Self {
        self.max_share = if max_share == 0 {
            usize::MAX
        } else {
            max_share
        };
        self
    }

    /// Workers `function` holds now.
    pub fn held_by(&self, function: &str) -> usize {
        self.held.get(function).copied().unwrap_or(0)
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Jobs handed out and not yet reported done.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Starts a new job on an idle worker, or queues it. A job may start at
    /// once even when others wait: every waiting job is then one whose
    /// function is at its cap (an idle worker never sits beside a job that
    /// may start), so it jumps ahead of nobody who could run.
    pub fn submit(&mut self, owner: Owner, share: Share, item: T) -> (Decision, Option<T>) {
        if self.running.contains_key(&owner) || self.queue.iter().any(|w| w.owner == owner) {
            return (
                Decision::Rejected(Rejection::InProgress { req: owner.1 }),
                Some(item),
            );
        }
        let cap = share
            .max_concurrency
            .map_or(self.max_share, |own| own.min(self.max_share))
            .max(1);
        if self.held_by(&share.function) < cap {
            if let Some(worker) = self.pick_idle() {
                self.start(owner, share.function, worker);
                return (Decision::Forward(worker), Some(item));
            }
        }
        let any_up = self.workers.iter().any(|w| w.up);
        if !any_up && self.strategy != Strategy::Fifo {
            return (Decision::Rejected(Rejection::NoWorker), Some(item));
        }
        if self.queue.len() >= self.max_queue {
            return (
                Decision::Rejected(Rejection::QueueFull {
                    waiting: self.queue.len(),
                }),
                Some(item),
            );
        }
        self.queue.push_back(Waiting {
            owner,
            function: share.function,
            cap,
            item,
        });
        (Decision::Queued, None)
    }

    /// Records the end of `owner`'s job on `worker` and returns queued jobs
    /// that can now start, with the worker each goes to.
    pub fn job_done(
        &mut self,
        owner: Owner,
        worker: usize,
        ok: bool,
    ) -> Result<Vec<(usize, Owner, T)>, Refused> {
        let req = owner.1;
        match self.running.get(&owner) {
            None => return Err(Refused::UnknownJob { req }),
            Some(&Running { worker: actual, .. }) if actual != worker => {
                return Err(Refused::WrongWorker {
                    req,
                    actual,
                    claimed: worker,
                })
            }
            Some(_) => {}
        }
        self.finish(owner);
        let w = &mut self.workers[worker];
        if ok {
            w.completed += 1;
        } else {
            w.failed += 1;
        }
        Ok(self.drain_queue())
    }

    /// A connection closed: its queued jobs are dropped and its running jobs
    /// released (nobody is left to report them). Returns queued jobs of
    /// other connections that can now start.
    pub fn connection_closed(&mut self, conn: u64) -> Vec<(usize, Owner, T)> {
        self.queue.retain(|w| w.owner.0 != conn);
        let released: Vec<Owner> = self
            .running
            .keys()
            .filter(|(c, _)| *c == conn)
            .copied()
            .collect();
        for owner in released {
            self.finish(owner);
        }
        self.drain_queue()
    }

    pub fn worker_down(&mut self, worker: usize) -> Result<(), Refused> {
        let w = self
            .workers
            .get_mut(worker)
            .ok_or(Refused::NoSuchWorker(worker))?;
        w.up = false;
        Ok(())
    }

    pub fn worker_up(&mut self, worker: usize) -> Result<Vec<(usize, Owner, T)>, Refused> {
        let w = self
            .workers
            .get_mut(worker)
            .ok_or(Refused::NoSuchWorker(worker))?;
        w.up = true;
        Ok(self.drain_queue())
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

    fn start(&mut self, owner: Owner, function: Arc<str>, worker: usize) {
        self.workers[worker].in_flight += 1;
        *self.held.entry(function.clone()).or_default() += 1;
        self.running.insert(owner, Running { worker, function });
    }

    /// Frees the worker and the share a running job held.
    fn finish(&mut self, owner: Owner) {
        let Some(Running { worker, function }) = self.running.remove(&owner) else {
            return;
        };
        self.workers[worker].in_flight -= 1;
        if let Some(held) = self.held.get_mut(&function) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(&function);
            }
        }
    }

    /// Starts waiting jobs, oldest first, while workers are idle, passing
    /// over jobs whose function is at its cap (they keep their place).
    fn drain_queue(&mut self) -> Vec<(usize, Owner, T)> {
        let mut started = Vec::new();
        // A passed-over job costs one map lookup: a hot function's thousand
        // queued calls are a few microseconds per pass.
        let mut i = 0;
        while i < self.queue.len() && self.any_idle() {
            let waiting = &self.queue[i];
            if self.held_by(&waiting.function) >= waiting.cap {
                i += 1;
                continue;
            }
            let Some(worker) = self.pick_idle() else {
                break;
            };
            let Waiting {
                owner,
                function,
                item,
                ..
            } = self.queue.remove(i).expect("index is in the queue");
            self.start(owner, function, worker);
            started.push((worker, owner, item));
        }
        started
    }

    fn any_idle(&self) -> bool {
        self.workers.iter().any(is_idle)
    }

    /// The idle worker the strategy picks, if any is idle.
    fn pick_idle(&mut self) -> Option<usize> {
        match self.strategy {
            Strategy::Weighted => self.pick_weighted(),
            Strategy::RoundRobin | Strategy::Fifo => self.pick_round_robin(),
        }
    }

    /// The next idle, up worker at or after the round-robin pointer.
    fn pick_round_robin(&mut self) -> Option<usize> {
        let n = self.workers.len();
        for step in 0..n {
            let i = (self.next_rr + step) % n;
            if is_idle(&self.workers[i]) {
                self.next_rr = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// Smooth weighted round robin over the idle workers: each gains its
    /// weight, the highest score wins and pays back the total.
    fn pick_weighted(&mut self) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, w) in self
            .workers
            .iter_mut()
            .enumerate()
            .filter(|(_, w)| is_idle(w))
        {
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

fn is_idle(w: &WorkerState) -> bool {
    w.up && w.in_flight == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job of a function with no cap of its own.
    fn any() -> Share {
        Share::new("f", None)
    }

    /// Submits and immediately finishes `n` jobs (workers always idle).
    fn sequential(s: &mut Scheduler<u32>, n: u64) -> Vec<usize> {
        (0..n)
            .map(|i| {
                let owner = (1, 1000 + i);
                match s.submit(owner, any(), 0).0 {
                    Decision::Forward(w) => {
                        s.job_done(owner, w, true).unwrap();
                        w
                    }
                    other => panic!("expected a forward, got {other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_turns_and_skips_down_workers() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 4], 10);
        assert_eq!(sequential(&mut s, 6), [0, 1, 2, 3, 0, 1]);
        s.worker_down(2).unwrap();
        assert_eq!(sequential(&mut s, 4), [3, 0, 1, 3]);
        s.worker_up(2).unwrap();
        assert_eq!(sequential(&mut s, 3), [0, 1, 2]);
    }

    #[test]
    fn weighted_shares_follow_weights_smoothly() {
        let mut s = Scheduler::new(Strategy::Weighted, &[4, 2, 1, 1], 1000);
        let picks = sequential(&mut s, 80);
        let count = |w| picks.iter().filter(|&&p| p == w).count();
        assert_eq!([count(0), count(1), count(2), count(3)], [40, 20, 10, 10]);
        // Smooth: the heavy worker never runs more than twice in a row.
        assert!(picks
            .windows(3)
            .all(|w| !(w[0] == 0 && w[1] == 0 && w[2] == 0)));
        s.worker_down(0).unwrap();
        assert!(!sequential(&mut s, 4).contains(&0));
    }

    #[test]
    fn no_job_waits_behind_a_busy_worker_while_another_is_idle() {
        for strategy in [Strategy::RoundRobin, Strategy::Fifo, Strategy::Weighted] {
            let mut s = Scheduler::new(strategy, &[1; 3], 10);
            // Worker 0 takes a long job; the others keep serving short ones.
            assert_eq!(s.submit((1, 1), any(), 0).0, Decision::Forward(0));
            for req in 2..20 {
                let (decision, _) = s.submit((1, req), any(), 0);
                let Decision::Forward(w) = decision else {
                    panic!("{strategy}: {decision:?}");
                };
                assert_ne!(w, 0, "{strategy}: a job went to the busy worker");
                s.job_done((1, req), w, true).unwrap();
            }
        }
    }

    #[test]
    fn jobs_queue_when_every_worker_is_busy_and_start_in_arrival_order() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 2], 3);
        assert_eq!(s.submit((1, 1), any(), 1).0, Decision::Forward(0));
        assert_eq!(s.submit((1, 2), any(), 2).0, Decision::Forward(1));
        assert_eq!(s.submit((1, 3), any(), 3).0, Decision::Queued);
        assert_eq!(s.submit((2, 1), any(), 4).0, Decision::Queued);
        assert_eq!(s.submit((1, 5), any(), 5).0, Decision::Queued);
        let (refused, _) = s.submit((1, 6), any(), 6);
        assert_eq!(
            refused,
            Decision::Rejected(Rejection::QueueFull { waiting: 3 })
        );
        let Decision::Rejected(rejection) = refused else {
            unreachable!()
        };
        assert_eq!(rejection.kind(), LbErrorKind::QueueFull);
        assert_eq!(rejection.to_string(), "queue full (3 jobs waiting)");
        let (again, _) = s.submit((1, 5), any(), 7);
        assert_eq!(again, Decision::Rejected(Rejection::InProgress { req: 5 }));
        assert_eq!(s.queue_len(), 3);
        assert_eq!(s.job_done((1, 2), 1, true).unwrap(), vec![(1, (1, 3), 3)]);
        assert_eq!(s.job_done((1, 1), 0, false).unwrap(), vec![(0, (2, 1), 4)]);
        // Connection 2 leaves: its running job is released, the next starts.
        assert_eq!(s.connection_closed(2), vec![(0, (1, 5), 5)]);
        let stats = s.stats();
        assert_eq!(stats[0].failed, 1);
        assert_eq!(stats[1].completed, 1);
        assert_eq!(s.running(), 2);
    }

    #[test]
    fn one_function_cannot_hold_every_worker() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 4], 10).with_max_share(3);
        let slow = || Share::new("slow", None);
        for req in 1..=3 {
            assert!(matches!(
                s.submit((1, req), slow(), 0).0,
                Decision::Forward(_)
            ));
        }
        // The fourth sleeper waits although a worker is idle...
        assert_eq!(s.submit((1, 4), slow(), 0).0, Decision::Queued);
        assert_eq!(s.held_by("slow"), 3);
        // ...and another function's call takes that worker at once.
        assert_eq!(
            s.submit((1, 5), Share::new("hello", None), 0).0,
            Decision::Forward(3)
        );
        // A sleeper ending lets the queued one start on its worker.
        assert_eq!(s.job_done((1, 2), 1, true).unwrap(), vec![(1, (1, 4), 0)]);
        assert_eq!(s.held_by("slow"), 3);
        s.job_done((1, 5), 3, true).unwrap();
        assert_eq!(s.held_by("hello"), 0);
    }

    #[test]
    fn a_passed_over_job_keeps_its_place() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 2], 10).with_max_share(1);
        let (a, b) = (|| Share::new("a", None), || Share::new("b", None));
        assert_eq!(s.submit((1, 1), a(), 1).0, Decision::Forward(0));
        assert_eq!(s.submit((1, 2), a(), 2).0, Decision::Queued);
        assert_eq!(s.submit((1, 3), b(), 3).0, Decision::Forward(1));
        assert_eq!(s.submit((1, 4), b(), 4).0, Decision::Queued);
        assert_eq!(s.submit((1, 5), a(), 5).0, Decision::Queued);
        // b's worker frees: a's job 2 is at its cap, b's job 4 goes first.
        assert_eq!(s.job_done((1, 3), 1, true).unwrap(), vec![(1, (1, 4), 4)]);
        // a's worker frees: job 2 (older) starts, not job 5.
        assert_eq!(s.job_done((1, 1), 0, true).unwrap(), vec![(0, (1, 2), 2)]);
        assert_eq!(s.job_done((1, 2), 0, true).unwrap(), vec![(0, (1, 5), 5)]);
    }

    #[test]
    fn max_concurrency_lowers_the_cap_and_zero_means_none() {
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 4], 10).with_max_share(3);
        let one = || Share::new("one", Some(1));
        assert_eq!(s.submit((1, 1), one(), 0).0, Decision::Forward(0));
        assert_eq!(s.submit((1, 2), one(), 0).0, Decision::Queued);
        // A function's own cap never raises the LB's.
        let greedy = || Share::new("greedy", Some(100));
        for req in 3..=5 {
            assert!(matches!(
                s.submit((1, req), greedy(), 0).0,
                Decision::Forward(_)
            ));
        }
        assert_eq!(s.submit((1, 6), greedy(), 0).0, Decision::Queued);

        let mut s = Scheduler::new(Strategy::RoundRobin, &[1; 4], 10).with_max_share(0);
        for req in 1..=4 {
            assert!(matches!(
                s.submit((1, req), any(), 0).0,
                Decision::Forward(_)
            ));
        }
        assert_eq!(s.held_by("f"), 4);
    }

    #[test]
    fn reports_from_strangers_change_nothing() {
        let mut s: Scheduler<u32> = Scheduler::new(Strategy::RoundRobin, &[1; 2], 3);
        assert_eq!(s.submit((1, 7), any(), 0).0, Decision::Forward(0));
        assert_eq!(
            s.job_done((2, 7), 0, true),
            Err(Refused::UnknownJob { req: 7 })
        );
        assert_eq!(
            s.job_done((1, 7), 1, true),
            Err(Refused::WrongWorker {
                req: 7,
                actual: 0,
                claimed: 1
            })
        );
        assert_eq!(
            s.job_done((1, 8), 0, true),
            Err(Refused::UnknownJob { req: 8 })
        );
        assert_eq!(
            s.worker_down(4_000_000_000),
            Err(Refused::NoSuchWorker(4_000_000_000))
        );
        assert_eq!(s.stats()[0].in_flight, 1);
        s.job_done((1, 7), 0, true).unwrap();
        // Twice is once too many.
        assert!(s.job_done((1, 7), 0, true).is_err());
        assert_eq!(s.stats()[0].in_flight, 0);
        assert_eq!(s.stats()[0].completed, 1);
    }

    #[test]
    fn fifo_holds_jobs_while_every_worker_is_down_and_rr_refuses() {
        let mut s = Scheduler::new(Strategy::Fifo, &[1], 4);
        s.worker_down(0).unwrap();
        assert_eq!(s.submit((1, 1), any(), 1).0, Decision::Queued);
        assert_eq!(s.worker_up(0).unwrap(), vec![(0, (1, 1), 1)]);
        let mut s = Scheduler::new(Strategy::RoundRobin, &[1], 4);
        s.worker_down(0).unwrap();
        assert_eq!(
            s.submit((1, 1), any(), 1).0,
            Decision::Rejected(Rejection::NoWorker)
        );
        assert_eq!(Rejection::NoWorker.kind(), LbErrorKind::NoWorker);
        assert_eq!(
            Rejection::InProgress { req: 1 }.kind(),
            LbErrorKind::Invalid
        );
    }

    #[test]
    fn strategy_names_parse() {
        assert_eq!("rr".parse::<Strategy>().unwrap(), Strategy::RoundRobin);
        assert_eq!("FIFO".parse::<Strategy>().unwrap(), Strategy::Fifo);
        assert_eq!("Weighted".parse::<Strategy>().unwrap(), Strategy::Weighted);
        assert!("LIFO".parse::<Strategy>().is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::{Decision, Owner, Scheduler, Share, Strategy as Lb};
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    /// Functions the jobs belong to.
    const FUNCTIONS: [&str; 3] = ["a", "b", "c"];

    /// One thing that can happen to the LB.
    #[derive(Debug, Clone)]
    enum Op {
        Submit {
            conn: u64,
            function: usize,
        },
        /// Finish the n-th running job (modulo how many run).
        Done {
            pick: usize,
            ok: bool,
        },
        /// A report for a job that does not exist or from another conn.
        BogusDone {
            conn: u64,
            req: u64,
            worker: usize,
        },
        Close {
            conn: u64,
        },
        Down {
            worker: usize,
        },
        Up {
            worker: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3u64, 0..FUNCTIONS.len()).prop_map(|(conn, function)| Op::Submit { conn, function }),
            4 => (any::<usize>(), any::<bool>()).prop_map(|(pick, ok)| Op::Done { pick, ok }),
            1 => (0..3u64, 0..50u64, 0..6usize).prop_map(|(conn, req, worker)| Op::BogusDone { conn, req, worker }),
            1 => (0..3u64).prop_map(|conn| Op::Close { conn }),
            1 => (0..5usize).prop_map(|worker| Op::Down { worker }),
            1 => (0..5usize).prop_map(|worker| Op::Up { worker }),
        ]
    }

    fn strategy() -> impl Strategy<Value = Lb> {
        prop_oneof![Just(Lb::RoundRobin), Just(Lb::Fifo), Just(Lb::Weighted),]
    }

    /// The cap the scheduler must apply to a function.
    fn cap(max_share: usize, own: Option<usize>) -> usize {
        let lb = if max_share == 0 {
            usize::MAX
        } else {
            max_share
        };
        own.map_or(lb, |own| own.min(lb)).max(1)
    }

    proptest! {
        #[test]
        fn no_job_is_lost_or_doubled_and_counters_stay_true(
            strategy in strategy(),
            weights in proptest::collection::vec(1u32..5, 1..5),
            max_queue in 0usize..6,
            max_share in 0usize..5,
            own_caps in proptest::collection::vec(proptest::option::of(0usize..4), FUNCTIONS.len()),
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let mut s: Scheduler<u64> =
                Scheduler::new(strategy, &weights, max_queue).with_max_share(max_share);
            let caps: Vec<usize> = own_caps.iter().map(|&own| cap(max_share, own)).collect();
            let share = |f: usize| Share::new(FUNCTIONS[f], own_caps[f]);
            let mut next_req = 1000u64;
            // Jobs started (owner → worker) per the model; every start is
            // checked against it.
            let mut running: Vec<(Owner, usize)> = Vec::new();
            let mut started: HashSet<Owner> = HashSet::new();
            let mut function_of: HashMap<Owner, usize> = HashMap::new();
            let mut begin = |s: &Scheduler<u64>, running: &mut Vec<(Owner, usize)>, function_of: &HashMap<Owner, usize>, owner: Owner, worker: usize| {
                let before = &s.stats()[worker];
                prop_assert!(before.up, "started on a down worker");
                prop_assert!(started.insert(owner), "job {owner:?} started twice");
                // A function's jobs start in arrival order: none passes an
                // older job of its own function.
                let f = FUNCTIONS[function_of[&owner]];
                prop_assert!(
                    !s.queue.iter().any(|w| &*w.function == f && w.owner.1 < owner.1),
                    "job {owner:?} of {f} started before an older one"
                );
                running.push((owner, worker));
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Submit { conn, function } => {
                        next_req += 1;
                        let owner = (conn, next_req);
                        function_of.insert(owner, function);
                        let idle_before: Vec<bool> = s.stats().iter().map(|w| w.up && w.in_flight == 0).collect();
                        let (decision, _) = s.submit(owner, share(function), next_req);
                        if let Decision::Forward(w) = decision {
                            prop_assert!(idle_before[w], "a job went to a busy worker");
                            begin(&s, &mut running, &function_of, owner, w)?;
                        }
                    }
                    Op::Done { pick, ok } => {
                        if running.is_empty() { continue; }
                        let (owner, worker) = running.remove(pick % running.len());
                        let more = s.job_done(owner, worker, ok).unwrap();
                        for (w, o, _) in more { begin(&s, &mut running, &function_of, o, w)?; }
                    }
                    Op::BogusDone { conn, req, worker } => {
                        let before = s.stats();
                        prop_assert!(s.job_done((conn, req), worker, true).is_err());
                        prop_assert_eq!(before, s.stats());
                    }
                    Op::Close { conn } => {
                        running.retain(|((c, _), _)| *c != conn);
                        for (w, o, _) in s.connection_closed(conn) { begin(&s, &mut running, &function_of, o, w)?; }
                    }
                    Op::Down { worker } => {
                        prop_assert_eq!(s.worker_down(worker).is_ok(), worker < weights.len());
                    }
                    Op::Up { worker } => {
                        match s.worker_up(worker) {
                            Ok(more) => for (w, o, _) in more { begin(&s, &mut running, &function_of, o, w)?; },
                            Err(_) => prop_assert!(worker >= weights.len()),
                        }
                    }
                }
                // Counters match the jobs that run; one job per worker.
                let stats = s.stats();
                let in_flight: u64 = stats.iter().map(|w| w.in_flight).sum();
                prop_assert_eq!(in_flight as usize, running.len());
                prop_assert_eq!(s.running(), running.len());
                prop_assert!(stats.iter().all(|w| w.in_flight <= 1));
                prop_assert!(s.queue_len() <= max_queue);
                // No function holds more than its cap, and the scheduler's
                // count of what it holds is exact.
                for (f, name) in FUNCTIONS.iter().enumerate() {
                    let holds = running.iter().filter(|(o, _)| function_of[o] == f).count();
                    prop_assert_eq!(s.held_by(name), holds);
                    prop_assert!(holds <= caps[f], "{name} holds {holds} workers, cap {}", caps[f]);
                }
                prop_assert!(s.held.len() <= running.len());
                // No job that may start waits while a worker is up and
                // idle: whatever waits then is at its function's cap.
                if stats.iter().any(|w| w.up && w.in_flight == 0) {
                    for waiting in &s.queue {
                        let f = function_of[&waiting.owner];
                        prop_assert!(s.held_by(FUNCTIONS[f]) >= caps[f], "{} waits below its cap beside an idle worker", FUNCTIONS[f]);
                    }
                }
            }
        }
    }
}
