//! What the platform measures: Prometheus metrics for `GET /metrics` (text
//! exposition 0.0.4, through the `prometheus` crate) and the live series the
//! dashboard polls.
//!
//! Label cardinality is bounded: at most [`MAX_LABELLED`] function names get
//! series of their own (the rest share `function="_other"`), unknown names
//! get none (one counter), and a deleted function's series are removed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faas_proto::{FailureKind, OutboundStats, PlatformStats};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde_json::{json, Value};

/// Function names with series of their own.
pub const MAX_LABELLED: usize = 200;
/// Seconds of history the dashboard's charts show.
const HISTORY_SECS: u64 = 300;
/// Latency samples kept per second and per function (for percentiles).
const SAMPLES: usize = 512;

/// How long each part of an invocation took.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hops {
    /// Gateway sent → Server received.
    pub gateway_to_server: Option<Duration>,
    /// Server asked the LB → got a worker.
    pub lb_decision: Duration,
    /// Job written to the worker → result read, minus the function's run.
    pub worker_pipe: Duration,
    /// The function itself, as the worker measured it.
    pub execution: Duration,
    /// Server received → answer ready.
    pub server_total: Duration,
}

/// Background work's figures, read when a scrape or the dashboard asks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AsyncFigures {
    /// Waiting for an attempt (a first one or a retry).
    pub queued: usize,
    pub running: usize,
    /// Dead letters kept.
    pub dead: usize,
}

pub struct Metrics {
    registry: Registry,
    async_queued: IntGauge,
    async_running: IntGauge,
    async_retries: IntCounter,
    dead_letters: IntGauge,
    schedule_ticks: IntCounter,
    invocations: IntCounterVec,
    unknown: IntCounter,
    duration: HistogramVec,
    hops: HistogramVec,
    deploys: IntCounterVec,
    compile: Histogram,
    outbound: IntCounterVec,
    outbound_duration: HistogramVec,
    functions: IntGauge,
    rejections: IntCounter,
    queue: IntGauge,
    workers: [IntGaugeVec; 7],
    server_rss: IntGauge,
    /// Workers running a call / workers: what a custom-metric autoscaler
    /// targets (0.7, as Knative targets 70% concurrency).
    busy_ratio: prometheus::Gauge,
    /// `faas_replica_info{replica="NAME"} 1`: every series here is this
    /// replica's alone.
    replica: IntGaugeVec,
    labelled: Mutex<HashSet<String>>,
    live: Mutex<Live>,
}

/// The dashboard's data: calls per second and per function.
#[derive(Default)]
struct Live {
    seconds: VecDeque<Second>,
    functions: HashMap<String, FnStats>,
}

#[derive(Default)]
struct Second {
    at: u64,
    calls: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
}

#[derive(Default)]
struct FnStats {
    calls: u64,
    errors: u64,
    recent_ms: VecDeque<f64>,
    last_ms: u64,
}

/// Histogram buckets from 50 µs to 30 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0, 10.0, 30.0,
    ]
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge_vec = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["worker"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let histogram_vec = |name: &str, help: &str, label: &str| {
            let opts = HistogramOpts::new(name, help).buckets(latency_buckets());
            let h = HistogramVec::new(opts, &[label]).expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let compile = Histogram::with_opts(
            HistogramOpts::new(
                "faas_compile_duration_seconds",
                "Deploy builds (compile or check), seconds",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(compile.clone()))
            .expect("registered once");
        Self {
            async_queued: gauge("faas_async_queued", "Async calls waiting for an attempt (a first one or a retry)"),
            async_running: gauge("faas_async_running", "Async calls with an attempt running"),
            async_retries: counter("faas_async_retries_total", "Failed attempts of async calls that were given another attempt"),
            dead_letters: gauge("faas_dead_letters", "Dead async calls kept (GET /dead-letters)"),
            schedule_ticks: counter("faas_schedule_ticks_total", "Schedule ticks that queued an async call"),
            invocations: counter_vec("faas_invocations_total", "Invocations by function and outcome (ok, error, timeout, crashed, rejected)", &["function", "outcome"]),
            unknown: counter("faas_invocations_unknown_function_total", "Invocations of names that are not deployed"),
            duration: histogram_vec("faas_invocation_duration_seconds", "Invocation time as the Server saw it, by function", "function"),
            hops: histogram_vec("faas_hop_duration_seconds", "Time in each hop of an invocation: gateway_to_server, lb_decision, worker_pipe, execution, server_total", "hop"),
            outbound: counter_vec("faas_outbound_requests_total", "Functions' outbound HTTP requests by function and outcome (ok: answered, any status; denied: refused by the policy; error; timeout)", &["function", "outcome"]),
            outbound_duration: histogram_vec("faas_outbound_request_duration_seconds", "Time of functions' outbound HTTP requests that were sent (refused ones are not), by function", "function"),
            deploys: counter_vec("faas_deploys_total", "Deploys and updates by language and result", &["lang", "result"]),
            compile,
            functions: gauge("faas_functions_deployed", "Deployed function versions"),
            rejections: counter("faas_lb_rejections_total", "Invocations refused because every worker was busy and the queue full"),
            queue: gauge("faas_lb_queue_length", "Invocations waiting for a worker"),
            workers: [
                gauge_vec("faas_worker_up", "1 when the worker is up"),
                gauge_vec("faas_worker_in_flight", "Invocations running on the worker"),
                gauge_vec("faas_worker_completed", "Invocations the worker completed (LB count)"),
                gauge_vec("faas_worker_failed", "Invocations that failed on the worker (LB count)"),
                gauge_vec("faas_worker_restarts", "Times the worker slot's process crashed and was replaced"),
                gauge_vec("faas_worker_recycles", "Times the worker slot's process was recycled"),
                gauge_vec("faas_worker_rss_bytes", "Resident memory of the worker process"),
            ],
            server_rss: gauge("faas_server_rss_bytes", "Resident memory of the server process"),
            busy_ratio: {
                let g = prometheus::Gauge::new("faas_worker_busy_ratio", "Share of this replica's workers running a call now (0 to 1)").expect("valid metric");
                registry.register(Box::new(g.clone())).expect("registered once");
                g
            },
            replica: {
                let g = IntGaugeVec::new(Opts::new("faas_replica_info", "This replica's name (every series here is this replica's alone)"), &["replica"]).expect("valid metric");
                registry.register(Box::new(g.clone())).expect("registered once");
                g
            },
            registry,
            labelled: Mutex::new(HashSet::new()),
            live: Mutex::new(Live::default()),
        }
    }

    /// The label a function's series use.
    fn label(&self, function: &str) -> String {
        let mut labelled = self.labelled.lock().unwrap();
        if labelled.contains(function) {
            return function.to_string();
        }
        if labelled.len() < MAX_LABELLED {
            labelled.insert(function.to_string());
            return function.to_string();
        }
        "_other".to_string()
    }

    /// Records one invocation that reached a worker.
    pub fn invocation(&self, function: &str, ok: bool, kind: Option<FailureKind>, hops: &Hops) {
        let label = self.label(function);
        let outcome = match kind {
            None if ok => "ok",
            Some(FailureKind::Timeout) => "timeout",
            Some(FailureKind::WorkerCrashed) => "crashed",
            _ => "error",
        };
        self.invocations.with_label_values(&[&label, outcome]).inc();
        let total = hops.server_total.as_secs_f64();
        self.duration.with_label_values(&[&label]).observe(total);
        if let Some(d) = hops.gateway_to_server {
            self.hops
                .with_label_values(&["gateway_to_server"])
                .observe(d.as_secs_f64());
        }
        for (hop, d) in [
            ("lb_decision", hops.lb_decision),
            ("worker_pipe", hops.worker_pipe),
            ("execution", hops.execution),
            ("server_total", hops.server_total),
        ] {
            self.hops.with_label_values(&[hop]).observe(d.as_secs_f64());
        }
        self.live
            .lock()
            .unwrap()
            .record(function, outcome == "ok", total * 1000.0);
    }

    /// What one invocation did through the platform's HTTP client.
    pub fn outbound(&self, function: &str, stats: &OutboundStats) {
        let label = self.label(function);
        for (outcome, n) in [
            ("ok", stats.ok),
            ("denied", stats.denied),
            ("error", stats.error),
            ("timeout", stats.timeout),
        ] {
            if n > 0 {
                self.outbound
                    .with_label_values(&[&label, outcome])
                    .inc_by(u64::from(n));
            }
        }
        let histogram = self.outbound_duration.with_label_values(&[&label]);
        // At most --max-outbound-requests of them, from our own worker.
        for ms in &stats.durations_ms {
            histogram.observe(ms.max(0.0) / 1000.0);
        }
    }

    /// An invocation refused before it ran (no worker free, queue full).
    pub fn rejected(&self, function: &str) {
        let label = self.label(function);
        self.invocations
            .with_label_values(&[&label, "rejected"])
            .inc();
        self.rejections.inc();
        self.live.lock().unwrap().record(function, false, 0.0);
    }

    /// A failed async attempt gets another.
    pub fn async_retry(&self) {
        self.async_retries.inc();
    }

    /// A schedule's tick queued a call.
    pub fn schedule_tick(&self) {
        self.schedule_ticks.inc();
    }

    /// An invocation of a name that is not deployed.
    pub fn unknown_function(&self) {
        self.unknown.inc();
    }

    pub fn deploy(&self, lang: &str, result: &str, build: Option<Duration>) {
        self.deploys.with_label_values(&[lang, result]).inc();
        if let Some(d) = build {
            self.compile.observe(d.as_secs_f64());
        }
    }

    /// A function is gone: so are its series.
    pub fn forget_function(&self, function: &str) {
        if self.labelled.lock().unwrap().remove(function) {
            for outcome in ["ok", "error", "timeout", "crashed", "rejected"] {
                let _ = self.invocations.remove_label_values(&[function, outcome]);
            }
            let _ = self.duration.remove_label_values(&[function]);
            for outcome in ["ok", "denied", "error", "timeout"] {
                let _ = self.outbound.remove_label_values(&[function, outcome]);
            }
            let _ = self.outbound_duration.remove_label_values(&[function]);
        }
        self.live.lock().unwrap().functions.remove(function);
    }

    /// The exposition text, with the gauges read now.
    pub fn render(
        &self,
        stats: Option<&PlatformStats>,
        functions: usize,
        background: AsyncFigures,
    ) -> String {
        self.functions.set(functions as i64);
        self.async_queued.set(background.queued as i64);
        self.async_running.set(background.running as i64);
        self.dead_letters.set(background.dead as i64);
        self.server_rss.set(rss_bytes(std::process::id()) as i64);
        if let Some(stats) = stats {
            self.queue.set(stats.queue_len as i64);
            let busy = stats.workers.iter().filter(|w| w.in_flight > 0).count();
            self.busy_ratio
                .set(busy as f64 / stats.workers.len().max(1) as f64);
            if let Some(name) = &stats.replica {
                self.replica.with_label_values(&[name]).set(1);
            }
            for w in &stats.workers {
                let id = w.worker_id.to_string();
                let pid = stats.worker_pids.get(w.worker_id).copied().unwrap_or(0);
                let values = [
                    i64::from(w.up),
                    w.in_flight as i64,
                    w.completed as i64,
                    w.failed as i64,
                    stats.worker_restarts.get(w.worker_id).copied().unwrap_or(0) as i64,
                    stats.worker_recycles.get(w.worker_id).copied().unwrap_or(0) as i64,
                    if pid == 0 { 0 } else { rss_bytes(pid) as i64 },
                ];
                for (gauge, value) in self.workers.iter().zip(values) {
                    gauge.with_label_values(&[&id]).set(value);
                }
            }
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The dashboard's series: calls, errors, p50 and p99 per second over
    /// the last minutes, and per-function figures.
    pub fn dashboard(&self) -> Value {
        let mut live = self.live.lock().unwrap();
        live.advance(now_secs());
        let series: Vec<Value> = live
            .seconds
            .iter()
            .map(|s| {
                let mut lat = s.latencies_ms.clone();
                json!({"t": s.at, "calls": s.calls, "errors": s.errors,
                       "p50_ms": percentile(&mut lat, 0.5), "p99_ms": percentile(&mut lat, 0.99)})
            })
            .collect();
        let functions: serde_json::Map<String, Value> = live
            .functions
            .iter()
            .map(|(name, f)| {
                let mut recent: Vec<f64> = f.recent_ms.iter().copied().collect();
                let v = json!({"calls": f.calls, "errors": f.errors,
                               "p50_ms": percentile(&mut recent, 0.5), "last_ms": f.last_ms});
                (name.clone(), v)
            })
            .collect();
        json!({"series": series, "functions": functions})
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    /// Drops seconds older than the history and adds empty ones up to `now`.
    fn advance(&mut self, now: u64) {
        while self
            .seconds
            .front()
            .is_some_and(|s| s.at + HISTORY_SECS <= now)
        {
            self.seconds.pop_front();
        }
        let next = self
            .seconds
            .back()
            .map_or(now.saturating_sub(HISTORY_SECS - 1), |s| s.at + 1);
        for at in next.max(now.saturating_sub(HISTORY_SECS - 1))..=now {
            self.seconds.push_back(Second {
                at,
                ..Second::default()
            });
        }
    }

    fn record(&mut self, function: &str, ok: bool, latency_ms: f64) {
        let now = now_secs();
        self.advance(now);
        let second = self.seconds.back_mut().expect("advanced to now");
        second.calls += 1;
        second.errors += u64::from(!ok);
        if second.latencies_ms.len() < SAMPLES {
            second.latencies_ms.push(latency_ms);
        }
        let f = self.functions.entry(function.to_string()).or_default();
        f.calls += 1;
        f.errors += u64::from(!ok);
        if f.recent_ms.len() >= SAMPLES {
            f.recent_ms.pop_front();
        }
        f.recent_ms.push_back(latency_ms);
        f.last_ms = now_millis();
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() as f64 * p) as usize).min(values.len() - 1)]
}

/// Resident memory of a process, from `/proc/PID/statm`.
fn rss_bytes(pid: u32) -> u64 {
    let pages = std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    pages * 4096
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
