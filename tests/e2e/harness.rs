//! Starts real `faas-server` processes on free ports with their own sockets
//! and function dirs, and talks HTTP to them the way curl does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The directory holding `faas-server`/`server` and `worker`.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faas-server"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faas-server"))
}

pub fn worker_bin() -> PathBuf {
    let path = std::env::var_os("FAAS_BIN_DIR")
        .map(|d| PathBuf::from(d).join("worker"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| bin_dir().join("worker"));
    assert!(
        path.is_file(),
        "worker binary not found at {}: run `make test` (it builds every binary first)",
        path.display()
    );
    path
}

/// The repository root (for examples/). Cargo's runtime value first: a
/// test binary reused by another checkout sharing the target dir must read
/// this checkout's files.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&manifest_dir).join("../..")
}

pub fn example(name: &str) -> String {
    let path = repo_root().join("examples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A running server; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct TestServer {
    pub dir: Arc<tempfile::TempDir>,
    pub addr: String,
    pub child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl TestServer {
    /// Starts `faas-server STRATEGY` in a fresh temporary directory.
    pub fn start(strategy: &str, extra: &[&str]) -> Self {
        Self::start_with_env(strategy, extra, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables for
    /// the server process.
    pub fn start_with_env(strategy: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut args = vec![strategy.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        // Servers of parallel tests must not share native uids: a worker
        // clears its uid's processes when it starts.
        if !args.iter().any(|a| a == "--native-uid-base") {
            args.push("--native-uid-base".into());
            args.push(unique_uid_base().to_string());
        }
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_in(dir, args, env)
    }

    fn start_in(
        dir: Arc<tempfile::TempDir>,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Self {
        let (child, log, addr) = spawn_server_with_env(dir.path(), &args, &env);
        let addr = addr.unwrap_or_else(|| {
            panic!(
                "server did not start; its log:\n{}",
                log.lock().unwrap().join("\n")
            )
        });
        let server = Self {
            dir,
            addr,
            child: Some(child),
            log,
            args,
            env,
        };
        server.wait_ready();
        server
    }

    /// Starts a server (and its workers) that resolve names with `hosts`
    /// as their `/etc/hosts`: in a mount namespace of their own, where it
    /// is bound over the real one (`unshare -m`, then `exec`: the child is
    /// the server itself). `None` when that cannot be done here (not
    /// root, no `unshare`).
    pub fn start_with_hosts(strategy: &str, extra: &[&str], hosts: &str) -> Option<Self> {
        let probe = Command::new("unshare")
            .args(["-m", "--propagation", "private", "true"])
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            return None;
        }
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let hosts_file = dir.path().join("hosts");
        std::fs::write(&hosts_file, hosts).unwrap();
        let mut args = vec![strategy.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--native-uid-base".into());
        args.push(unique_uid_base().to_string());
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
            .arg(&hosts_file)
            .arg(server_bin());
        let (child, log, addr) = spawn_server_cmd(cmd, dir.path(), &args, &[]);
        let addr = addr.unwrap_or_else(|| {
            panic!(
                "server did not start; its log:\n{}",
                log.lock().unwrap().join("\n")
            )
        });
        let server = Self {
            dir,
            addr,
            child: Some(child),
            log,
            args,
            env: Vec::new(),
        };
        server.wait_ready();
        Some(server)
    }

    /// The uid native calls of worker 0 run as (when the tests run as root).
    pub fn uid_base(&self) -> u64 {
        let at = self
            .args
            .iter()
            .position(|a| a == "--native-uid-base")
            .unwrap();
        self.args[at + 1].parse().unwrap()
    }

    /// Waits until every worker is up (the Server logs "ready" after
    /// spawning them; workers log "worker ready" when their engine is built).
    fn wait_ready(&self) {
        let workers = self
            .args
            .iter()
            .position(|a| a == "--workers")
            .map(|i| self.args[i + 1].parse::<usize>().unwrap())
            .unwrap_or(4);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("worker ready"))
                .count();
            if ready >= workers {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("workers not ready:\n{}", self.log_text());
    }

    pub fn functions_dir(&self) -> PathBuf {
        self.dir.path().join("functions")
    }

    /// Function directories in the store (hidden staging and cache dirs
    /// left out).
    pub fn stored_functions(&self) -> Vec<String> {
        std::fs::read_dir(self.functions_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    pub fn lb_socket(&self) -> PathBuf {
        self.dir.path().join("lb.sock")
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 30 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills this server with SIGKILL (no cleanup of any kind) and starts a
    /// new one on the same directory.
    pub fn crash_and_restart(mut self) -> Self {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        let dir = self.dir.clone();
        let args = self.args.clone();
        let env = self.env.clone();
        drop(self);
        Self::start_in(dir, args, env)
    }

    /// Stops this server and starts a new one on the same directory.
    pub fn restart(mut self) -> Self {
        let status = self.stop();
        assert!(status.success(), "server exited with {status}");
        let dir = self.dir.clone();
        let args = self.args.clone();
        let env = self.env.clone();
        drop(self);
        Self::start_in(dir, args, env)
    }

    /// Starts a new server on the directory of this one, which was stopped
    /// (its exit status checked by the caller).
    pub fn restart_stopped(self) -> Self {
        assert!(self.child.is_none(), "stop the server first");
        let (dir, args, env) = (self.dir.clone(), self.args.clone(), self.env.clone());
        drop(self);
        Self::start_in(dir, args, env)
    }

    /// Deploys with extra query parameters (`secret=db&env=K%3DV`) and
    /// asserts 201; returns the id.
    pub fn deploy_with(&self, name: &str, lang: &str, code: &str, query: &str) -> String {
        let resp = self.post(&format!("/deploy?name={name}&lang={lang}&{query}"), code);
        assert_eq!(resp.status, 201, "deploy {name}: {}", resp.body);
        resp.json()["id"].as_str().unwrap().to_string()
    }

    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        http(&self.addr, method, path, body)
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, body.as_bytes())
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, b"")
    }

    /// Deploys and asserts 201; returns the id.
    pub fn deploy(&self, name: &str, lang: &str, code: &str) -> String {
        let resp = self.post(&format!("/deploy?name={name}&lang={lang}"), code);
        assert_eq!(resp.status, 201, "deploy {name}: {}", resp.body);
        resp.json()["id"].as_str().unwrap().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A block of 64 uids no other test server of this run (or of a parallel
/// run) uses.
fn unique_uid_base() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    200_000 + (std::process::id() % 10_000) * 4096 + (n % 64) * 64
}

/// Spawns the server binary with isolated paths under `dir`; returns the
/// child, its collected stderr lines and the HTTP address once logged.
pub fn spawn_server(
    dir: &Path,
    args: &[String],
) -> (Child, Arc<Mutex<Vec<String>>>, Option<String>) {
    spawn_server_with_env(dir, args, &[])
}

pub fn spawn_server_with_env(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
) -> (Child, Arc<Mutex<Vec<String>>>, Option<String>) {
    spawn_server_cmd(Command::new(server_bin()), dir, args, env)
}

/// Spawns the server with `cmd` (the server binary, or a wrapper that
/// execs it with the arguments that follow) and isolated paths under
/// `dir`.
fn spawn_server_cmd(
    mut cmd: Command,
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
) -> (Child, Arc<Mutex<Vec<String>>>, Option<String>) {
    // The test's own variables win (e.g. RUST_LOG=debug).
    cmd.env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args);
    // A test that must know the port beforehand (peers) gives it.
    if !args.iter().any(|a| a == "--port") {
        cmd.arg("--port").arg("0");
    }
    cmd.arg("--lb-socket")
        .arg(dir.join("lb.sock"))
        .arg("--server-socket")
        .arg(dir.join("server.sock"))
        .arg("--functions-dir")
        .arg(dir.join("functions"));
    // A test may bring its own worker program.
    if !args.iter().any(|a| a == "--worker-bin") {
        cmd.arg("--worker-bin").arg(worker_bin());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning faas-server");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("  | {line}");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).ok();
    (child, log, addr)
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a JSON error with this status.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        let json = self.json();
        assert_eq!(json["ok"], false, "body: {}", self.body);
        json["error"].as_str().expect("error message").to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection, as curl sends it.
pub fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: e2e\r\nAccept: */*\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading the response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = String::from_utf8_lossy(&raw[split + 4..]).into_owned();
    Response {
        status,
        headers,
        body,
    }
}

/// One HTTP/1.1 request with extra headers; the answer as text.
pub fn http_with_headers(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Response {
    let (status, headers, body) = http_bytes(addr, method, path, headers, body);
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// One HTTP/1.1 request with extra headers; the answer's body as bytes.
pub fn http_bytes(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let parsed = parse_response(&raw[..split + 4]);
    (parsed.status, parsed.headers, raw[split + 4..].to_vec())
}

/// Waits until `cond` holds (`within` at most), else fails saying `what`.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the server's log has a line containing `text` (`within` at
/// most), else fails showing the log.
pub fn wait_for_log(server: &TestServer, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !server.log_text().contains(text) {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills worker `index` of `server` with SIGKILL; returns its pid.
pub fn kill_worker(server: &TestServer, index: usize) -> u64 {
    let pid = server.get("/stats").json()["worker_pids"][index]
        .as_u64()
        .expect("worker pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    pid
}

/// Polls `GET /stats` until `cond` holds (20 s at most).
pub fn wait_for(server: &TestServer, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond(&server.get("/stats").json()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "timed out waiting for {what}: {}",
        server.get("/stats").body
    );
}

/// Calls running on all workers, from `/stats`.
pub fn in_flight(stats: &serde_json::Value) -> u64 {
    stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["in_flight"].as_u64().unwrap())
        .sum()
}
