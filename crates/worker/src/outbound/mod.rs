//! Outbound HTTP for functions: the channel through which guest code asks
//! the worker to make a request, in every language, with the platform's
//! client (`faas_outbound`) and its policy.
//!
//! # Why a file (and a socket), not host imports or WASI sockets
//!
//! The guest gets no socket at all (no WASI sockets, no network namespace
//! opened). It talks to the worker through **one special file**,
//! `/run/faas/fetch`, served by the worker's own WASI file system
//! ([`channel`]): open it read-write, write a request, read the answer to
//! end of file, close. That works unchanged in the six languages, inside
//! today's sandboxes, with nothing but plain file I/O:
//!
//! - C, Rust and Go are compiled by their stock toolchains for
//!   `wasm32-wasi`: a host import would need a custom `extern` per
//!   toolchain, which a single-file deploy cannot declare portably (Go's
//!   `//go:wasmimport` needs Go 1.21+, TinyGo spells it differently), and a
//!   module importing anything but WASI would refuse to run elsewhere;
//! - QuickJS and CPython are pinned, checksummed builds: we cannot add host
//!   functions to them, but both already read and write files, so their
//!   `fetch`/`faas.fetch` are a few lines of script in the prelude;
//! - PHP runs as a host process in bubblewrap with no network namespace:
//!   the same exchange goes over a per-call UNIX socket bound into the
//!   sandbox at `/run/faas/fetch.sock` ([`socket`]), the only thing the
//!   process can connect to.
//!
//! The file and the socket exist only in calls whose function has grants
//! (`allow=`): a function without any sees no `/run/faas` at all.
//!
//! The framing ([`wire`]) is text heads and raw bytes: `METHOD URL`,
//! `Name: value` lines, an empty line, then the body; the answer starts
//! with `ok STATUS URL`, or `denied|error|timeout MESSAGE`, then headers,
//! an empty line and the body. A request ends where the guest stops
//! writing: at its first read of the file, or when it shuts down its side
//! of the socket. One open (or connection) carries one exchange.
//!
//! # Bounds, and why each exists
//!
//! - `--max-outbound-requests` per call (64): every exchange counts, a
//!   malformed one too; past it the answer is `denied`, nothing is sent. A
//!   function cannot use the platform as a request flood.
//! - a request's body is capped at `--max-outbound-bytes` (and its head at
//!   64 KiB): writes past it fail with `EFBIG`. What a request holds is the
//!   worker's memory, outside the guest's linear-memory cap.
//! - responses are capped by the client at `--max-outbound-bytes`.
//! - at most [`MAX_OPEN`] exchanges are open at once in one call (`EMFILE`
//!   past it): each holds a request and an answer in the worker's memory,
//!   so this bounds a call's share to `MAX_OPEN` × (request + answer) caps,
//!   whatever number of descriptors it may open.
//! - name lookups still running are bounded per function by the client
//!   ([`faas_outbound::resolve`]): a DNS server that never answers holds a
//!   lookup past its call's deadline, and a function with
//!   [`faas_outbound::resolve::MAX_PENDING_PER_CALLER`] of them gets an
//!   immediate `error cannot resolve HOST now: ...` instead of more threads,
//!   so it cannot starve the worker's other functions.
//! - every request ends at the call's deadline: the client is given it,
//!   and the watchdog stops the guest when the blocking read returns (a
//!   call stopped while waiting answers 504, and the worker serves on).

mod channel;
pub mod python;
pub mod socket;
pub mod wire;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use faas_proto::{Grants, OutboundStats};

pub use channel::FetchDir;
use faas_outbound as client;

/// Where the fetch file and socket are, inside a sandbox.
pub const CHANNEL_DIR: &str = "/run/faas";
/// The file WebAssembly guests exchange requests through.
pub const FETCH_FILE: &str = "fetch";
/// The socket PHP exchanges requests through.
pub const FETCH_SOCKET: &str = "fetch.sock";

/// Default of `--max-outbound-requests`.
pub const DEFAULT_MAX_REQUESTS: u32 = 64;
/// Default of `--max-outbound-bytes`.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Exchanges one call may have open at once.
pub const MAX_OPEN: u32 = 4;

/// `/run/faas` as path components.
pub fn mount_point() -> Vec<String> {
    CHANNEL_DIR
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// Mounts `/run/faas` (holding `fetch`) for `call` in a call's namespace;
/// its parent directories must exist in the root.
pub fn mount(ns: &mut crate::vfs::Namespace, call: &Arc<CallOutbound>) {
    ns.mount(&mount_point(), Arc::new(FetchDir::new(call.clone())));
}

/// The worker's outbound settings (its flags).
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub max_requests: u32,
    pub max_bytes: u64,
    pub ca_file: Option<PathBuf>,
    /// Ports never reachable, even when granted (the gateway's).
    pub protected_ports: Vec<u16>,
}

/// The worker's HTTP client and limits, shared by every call.
pub struct Outbound {
    client: client::Client,
    max_requests: u32,
    max_bytes: u64,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("max_requests", &self.max_requests)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub fn new(settings: &OutboundSettings) -> Result<Self, String> {
        let client = client::Client::new(client::Config {
            max_response_bytes: settings.max_bytes,
            extra_ca_file: settings.ca_file.clone(),
            protected_ports: settings.protected_ports.clone(),
        })?;
        Ok(Self {
            client,
            max_requests: settings.max_requests,
            max_bytes: settings.max_bytes,
        })
    }

    /// Most bytes a request may hold (head and body) on the channel.
    pub fn max_request_bytes(&self) -> u64 {
        self.max_bytes + wire::MAX_HEAD_BYTES as u64
    }
}

/// What a call may reach, as a sandbox is told: the worker's client and
/// the function's grants.
#[derive(Debug, Clone)]
pub struct Access {
    pub outbound: Arc<Outbound>,
    /// The function's id: the client bounds each function's pending name
    /// lookups apart ([`faas_outbound::resolve`]).
    pub function: String,
    pub grants: Grants,
}

impl PartialEq for Access {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.outbound, &other.outbound)
            && self.function == other.function
            && self.grants == other.grants
    }
}

/// One call's outbound state: its counts, deadline and request id.
#[derive(Debug)]
pub struct CallOutbound {
    access: Access,
    state: Mutex<CallState>,
    /// Set when a request ran into the call's deadline (what stops a
    /// WebAssembly guest there: [`crate::wasifs::CallFs::stop_when`]).
    deadline_passed: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Default)]
struct CallState {
    request_id: String,
    deadline: Option<Instant>,
    /// Exchanges begun (each counts towards the cap).
    begun: u32,
    /// Exchanges open now (see [`MAX_OPEN`]).
    open: u32,
    stats: OutboundStats,
}

impl CallOutbound {
    pub fn new(access: Access) -> Self {
        Self {
            access,
            state: Mutex::default(),
            deadline_passed: None,
        }
    }

    /// Sets `flag` when a request runs into the call's deadline.
    pub fn stopping_at_deadline(mut self, flag: Arc<AtomicBool>) -> Self {
        self.deadline_passed = Some(flag);
        self
    }

    /// Marks the call as out of time.
    fn out_of_time(&self) {
        if let Some(flag) = &self.deadline_passed {
            flag.store(true, Ordering::Release);
        }
    }

    pub fn max_request_bytes(&self) -> u64 {
        self.access.outbound.max_request_bytes()
    }

    /// The request's id, for the log line of a denial.
    pub fn set_request_id(&self, id: &str) {
        self.state.lock().unwrap().request_id = id.to_string();
    }

    /// When every request of this call must end.
    pub fn set_deadline(&self, at: Instant) {
        self.state.lock().unwrap().deadline = Some(at);
    }

    /// When every request of this call must end, once known.
    pub fn deadline(&self) -> Option<Instant> {
        self.state.lock().unwrap().deadline
    }

    /// What the call did (`None`: no request).
    pub fn stats(&self) -> Option<OutboundStats> {
        let state = self.state.lock().unwrap();
        (state.begun > 0).then(|| state.stats.clone())
    }

    /// Counts an exchange as open, unless [`MAX_OPEN`] are.
    fn try_open(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        if state.open >= MAX_OPEN {
            return false;
        }
        state.open += 1;
        true
    }

    fn closed(&self) {
        let mut state = self.state.lock().unwrap();
        state.open = state.open.saturating_sub(1);
    }

    /// Runs one exchange: what the guest wrote, in the [`wire`] format, to
    /// the answer it reads. Blocks until the answer, at most until the
    /// call's deadline.
    pub fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let outbound = &self.access.outbound;
        let deadline = {
            let mut state = self.state.lock().unwrap();
            state.begun += 1;
            if state.begun > outbound.max_requests {
                let why = format!(
                    "too many outbound requests in one call (at most {}, --max-outbound-requests)",
                    outbound.max_requests
                );
                state.stats.denied += 1;
                log::warn!("req {}: outbound request denied: {why}", state.request_id);
                return wire::encode_failure("denied", &why);
            }
            state.deadline
        };
        let req = match wire::parse_request(request, outbound.max_bytes) {
            Ok(req) => req,
            Err(why) => {
                self.state.lock().unwrap().stats.error += 1;
                return wire::encode_failure("error", &format!("malformed request: {why}"));
            }
        };
        // The origin as the client parses the URL: what the log may show.
        let target = client::origin_of(&req.url);
        let deadline = deadline.unwrap_or_else(|| Instant::now() + crate::jobs::DEFAULT_TIMEOUT);
        let started = Instant::now();
        if started >= deadline {
            self.state.lock().unwrap().stats.timeout += 1;
            self.out_of_time();
            return wire::encode_failure(
                "timeout",
                &format!("{target}: the call's deadline has passed"),
            );
        }
        let fetched = outbound.client.fetch_for(
            &self.access.function,
            &self.access.grants,
            client::Request {
                method: req.method,
                url: req.url,
                headers: req.headers,
                body: req.body,
            },
            deadline,
        );
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut state = self.state.lock().unwrap();
        match fetched {
            Ok(resp) => {
                state.stats.ok += 1;
                state.stats.durations_ms.push(took_ms);
                wire::encode_ok(resp.status, &resp.url, &resp.headers, &resp.body)
            }
            Err(err) => {
                // A blocking read cut short by the deadline is a timeout,
                // whatever the client saw (an interrupted system call).
                let outcome = match err.outcome() {
                    "denied" => "denied",
                    _ if Instant::now() >= deadline => "timeout",
                    other => other,
                };
                let message = describe(&err);
                match outcome {
                    "denied" => {
                        state.stats.denied += 1;
                        // The origin only: a URL's path or query may carry
                        // a token, and logs never show one.
                        log::warn!(
                            "req {}: outbound request to {target} denied: {message}",
                            state.request_id
                        );
                    }
                    "timeout" => {
                        state.stats.timeout += 1;
                        state.stats.durations_ms.push(took_ms);
                        // The client stops only at the deadline it was given:
                        // the call's.
                        self.out_of_time();
                    }
                    _ => {
                        state.stats.error += 1;
                        state.stats.durations_ms.push(took_ms);
                    }
                }
                let message = match outcome {
                    "timeout" => format!("{target}: no answer before the call's deadline"),
                    _ => message,
                };
                wire::encode_failure(outcome, &message)
            }
        }
    }
}

/// What the guest is told of a failure (the client's own words without
/// its "outbound request ..." prefix: the guest's API adds its own).
fn describe(err: &client::FetchError) -> String {
    use client::FetchError as E;
    match err {
        E::Denied(why) | E::Failed(why) => why.clone(),
        E::Invalid(why) => format!("invalid request: {why}"),
        E::TooLarge { limit } => {
            format!("the response is larger than {limit} bytes (--max-outbound-bytes)")
        }
        E::Timeout => "no answer before the call's deadline".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(max_requests: u32) -> CallOutbound {
        let outbound = Outbound::new(&OutboundSettings {
            max_requests,
            max_bytes: 1024,
            ca_file: None,
            protected_ports: Vec::new(),
        })
        .unwrap();
        CallOutbound::new(Access {
            outbound: Arc::new(outbound),
            function: "f_1".into(),
            grants: Grants::parse(&["127.0.0.1:9"]).unwrap(),
        })
    }

    #[test]
    fn every_exchange_counts_and_the_one_past_the_cap_is_denied() {
        let call = call(2);
        assert!(call.stats().is_none());
        for _ in 0..2 {
            let answer = call.exchange(b"");
            assert!(answer.starts_with(b"error malformed request"), "{answer:?}");
        }
        let answer = call.exchange(b"GET http://127.0.0.1:9/\n\n");
        assert!(answer.starts_with(b"denied too many"), "{answer:?}");
        let stats = call.stats().unwrap();
        assert_eq!((stats.error, stats.denied, stats.requests()), (2, 1, 3));
    }

    #[test]
    fn at_most_max_open_exchanges_at_once() {
        let call = call(2);
        assert!((0..MAX_OPEN).all(|_| call.try_open()));
        assert!(!call.try_open());
        call.closed();
        assert!(call.try_open());
    }

    #[test]
    fn log_lines_name_the_origin_only() {
        let origin = client::origin_of;
        assert_eq!(
            origin("HTTPS://user:pw@api.example.com:8443/x?token=secret"),
            "https://api.example.com:8443"
        );
        assert_eq!(origin("http://h?k=v"), "http://h");
        // A backslash is a path separator to the parser: what follows it
        // is the path, never shown.
        assert_eq!(origin("http://h\\token=secret/x"), "http://h");
        // Leading control characters are not copied into the log.
        assert_eq!(origin("\x08\x08http://h/"), "http://h");
        assert_eq!(origin("not a url"), "(an invalid URL)");
    }
}
