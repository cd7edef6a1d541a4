//! One faas worker process: takes jobs as JSON lines on stdin, runs each one,
//! and answers with one JSON line on stdout. Logs go to stderr, which the
//! Server shares with its own terminal.
//!
//! Modules:
//! - [`args`]: the worker's flags ([`args::WorkerArgs`]), shared with the
//!   Server that starts workers;
//! - [`wasm`]: the Wasmer sandbox (one engine and tokio runtime per process,
//!   a fresh `Store` and instance per call, compiled modules cached);
//! - [`artifact`]: compile-once artifacts (built by the Server at deploy);
//! - [`mapped`]: read-only file mappings (artifacts, Python's standard
//!   library), shared by the workers through the page cache;
//! - [`bench`]: the in-process runtime floor `make bench` compares with;
//! - [`fds`]: inherited descriptors sealed at start (close-on-exec);
//! - [`hostdir`]: host directories for `worker run --dir` (debugging only);
//! - [`vfs`]: the backends a call's files live in, mounted at guest paths,
//!   and the resolution of a guest's paths;
//! - [`wasifs`]: our WASI descriptor and path calls over them, answering
//!   as wasmtime does;
//! - [`interpreters`]: QuickJS and CPython compiled to WASI, for JS and
//!   Python functions;
//! - [`cache`]: the bounded LRU of compiled modules;
//! - [`child`]: a child process run against a deadline, output capped
//!   (native calls here, compilers in the Server);
//! - [`limits`]: memory cap (engine tunables) and deadline (watchdog);
//! - [`native`]: PHP (and JS/Python when asked) as host processes inside
//!   bubblewrap;
//! - [`outbound`]: outbound HTTP for functions with grants: the fetch
//!   channel (`/run/faas/fetch`, a socket for PHP), its wire format and
//!   bounds, and the language preludes that use it;
//! - [`reap`]: the worker as child subreaper, reaping what a call leaves;
//! - [`hostcall`]: what our replacements of WASI host functions share, and
//!   the `host.call` stub of the CPython reactor;
//! - [`poll`]: our `poll_oneoff`, which never blocks past a call's deadline;
//! - [`sock`]: `sock_shutdown` answering as POSIX does without sockets;
//! - [`tmpfs`]: in-memory file systems: each call's private, capped `/tmp`,
//!   and the read-only `/` and `/faas`;
//! - [`rofs`]: read-only places answer `EROFS`;
//! - [`stdio`]: in-memory guest stdio (capped output, deferred input);
//! - [`session`]: a store reused by successive calls of one module, and
//!   the binding of our host functions to the running call's state;
//! - [`jobs`]: finds a job's function on disk and turns the run into a
//!   [`JobResult`](faas_proto::JobResult);
//! - [`failure`]: why a job could not run, as the kind the Server and the
//!   gateway act on;
//! - [`environ`]: our `environ_get`/`environ_sizes_get`, so a call's
//!   `FAAS_REQUEST_ID` reaches an instance prepared before its job came;
//! - [`serve`]: the stdin/stdout loop shared by the Server's workers and the
//!   standalone debugging mode.

pub mod args;
pub mod artifact;
pub mod bench;
pub mod bytecode;
pub mod cache;
pub mod child;
pub mod environ;
pub mod failure;
pub mod fds;
pub mod hostcall;
pub mod hostdir;
pub mod interpreters;
pub mod jobs;
pub mod limits;
pub mod mapped;
pub mod memimage;
pub mod native;
pub mod outbound;
pub mod poll;
pub mod reap;
pub mod rofs;
pub mod serve;
pub mod session;
pub mod sock;
pub mod stdio;
pub mod tmpfs;
pub mod vfs;
pub mod wasifs;
pub mod wasm;

/// Whether a function id is safe to use as one path component.
pub fn is_valid_function_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
