//! Attacks on the replicas' shared store and on their peer notices: what
//! someone with write access to the bucket but without the cluster key, or
//! with only network access to a replica, can make it do (nothing), and
//! where the secrets must never appear.

use std::collections::HashMap;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use crate::cluster::*;
use crate::harness::*;

/// The bucket, as someone holding the S3 keys (not the cluster key) sees it.
pub(crate) struct Bucket {
    store: object_store::aws::AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    pub(crate) fn open(weed: &Seaweed) -> Self {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("faas")
            .with_endpoint(&weed.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self { store, rt }
    }

    pub(crate) fn get(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let got = self.store.get(&ObjectPath::from(key)).await.unwrap();
            got.bytes().await.unwrap().to_vec()
        })
    }

    /// The keys under `prefix`.
    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        self.rt.block_on(async {
            let listed: Vec<_> = self
                .store
                .list(Some(&ObjectPath::from(prefix)))
                .try_collect()
                .await
                .unwrap();
            listed.into_iter().map(|o| o.location.to_string()).collect()
        })
    }

    pub(crate) fn put(&self, key: &str, body: &[u8]) {
        self.rt.block_on(async {
            self.store
                .put(&ObjectPath::from(key), body.to_vec().into())
                .await
                .unwrap();
        });
    }

    fn delete(&self, key: &str) {
        self.rt
            .block_on(async { self.store.delete(&ObjectPath::from(key)).await.unwrap() });
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A record as a forger would write it: the format faas stores, sealed
/// with a key that is not the cluster's.
fn forged_record(id: &str, name: &str, source: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let payload = serde_json::json!({
        "meta": {
            "id": id, "name": name, "lang": "python", "created": 1,
            "sha256": sha256_hex(source.as_bytes()), "wasm": true,
            "timeout_ms": 3_600_000u64, "pass_auth": true,
        }
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"a guess at the cluster key").unwrap();
    mac.update(format!("faas-record-v1\n{payload}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"payload": payload, "signature": format!("sha256={signature}")}),
    )
    .unwrap()
}

/// A sealed object with its payload edited and its signature kept.
fn edit_payload(sealed: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut outer: serde_json::Value = serde_json::from_slice(sealed).unwrap();
    let mut payload: serde_json::Value =
        serde_json::from_str(outer["payload"].as_str().unwrap()).unwrap();
    edit(&mut payload);
    outer["payload"] = payload.to_string().into();
    serde_json::to_vec(&outer).unwrap()
}

const EVIL: &str = "print('evil ran')";

#[test]
fn a_bucket_writer_without_the_cluster_key_gets_no_code_run() {
    let weed = Seaweed::start();
    let bucket = Bucket::open(&weed);
    let first = alone(&weed, "first", &[]);
    let ids: HashMap<&str, String> = ["good", "victim", "other", "tweak", "gone"]
        .into_iter()
        .map(|name| {
            let code = PY.replace("v1", name);
            (name, first.deploy(name, "python", &code))
        })
        .collect();
    let index_key = "t/v1/index.json";
    let original_index = bucket.get(index_key);

    // 1. A new function written straight into the bucket, listed in an
    // index written in the plain JSON a forger would guess (and then in
    // the sealed shape with a guessed key): the index is refused whole,
    // the replica keeps what it has, and the forged version never runs.
    let evil_id = "evil_1700000000";
    bucket.put(&format!("t/v1/fn/{evil_id}/code.py"), EVIL.as_bytes());
    bucket.put(
        &format!("t/v1/fn/{evil_id}/record.json"),
        &forged_record(evil_id, "evil", EVIL),
    );
    let outer: serde_json::Value = serde_json::from_slice(&original_index).unwrap();
    let mut index: serde_json::Value =
        serde_json::from_str(outer["payload"].as_str().unwrap()).unwrap();
    index["generation"] = (index["generation"].as_u64().unwrap() + 100).into();
    index["functions"]["evil"] = serde_json::json!({
        "latest": evil_id, "versions": {evil_id: {"version": 1000, "bytes": 17}}
    });
    bucket.put(index_key, index.to_string().as_bytes());
    wait_for_log(&first, "not a sealed object", Duration::from_secs(30));
    let guessed = edit_payload(&original_index, |p| *p = index.clone());
    bucket.put(index_key, &guessed);
    wait_for_log(&first, "not the cluster key's", Duration::from_secs(30));
    assert_eq!(first.post("/invoke?fn=evil", "").status, 404);
    assert_eq!(output(&first, "good", "a"), (200, "good:a\n".into()));
    // The refusal is logged once, not at every poll.
    std::thread::sleep(Duration::from_millis(1000));
    let refusals = first.log_text().matches("not the cluster key's").count();
    assert_eq!(refusals, 1, "{}", first.log_text());
    // Deploys refuse to build on an index they cannot trust.
    let refused = first.post("/deploy?name=meanwhile&lang=python", PY);
    assert_eq!(refused.status, 500, "{}", refused.body);
    bucket.put(index_key, &original_index);
    wait_for_log(&first, "readable again", Duration::from_secs(30));

    // 2. Versions in the (genuine) index, tampered with in the bucket:
    // a record swapped for another function's, a record whose settings
    // were raised (timeout, pass_auth) and whose language was changed,
    // a record signed with a guessed key, and a record removed.
    let record = |name: &str| format!("t/v1/fn/{}/record.json", ids[name]);
    bucket.put(&record("victim"), &bucket.get(&record("other")));
    let tweaked = edit_payload(&bucket.get(&record("tweak")), |p| {
        p["meta"]["timeout_ms"] = 3_600_000u64.into();
        p["meta"]["pass_auth"] = true.into();
        p["meta"]["lang"] = "php".into();
    });
    bucket.put(&record("tweak"), &tweaked);
    bucket.put(
        &format!("t/v1/fn/{}/code.php", ids["tweak"]),
        b"<?php echo 'evil ran';",
    );
    bucket.put(
        &record("other"),
        &forged_record(&ids["other"], "other", EVIL),
    );
    bucket.put(
        &format!("t/v1/fn/{}/code.py", ids["other"]),
        EVIL.as_bytes(),
    );
    bucket.delete(&record("gone"));

    // A cold replica gets ready all the same (a missing object does not
    // stall every other version), serves what is intact and runs none of
    // the tampered versions.
    let cold = alone(&weed, "cold", &[]);
    assert_eq!(output(&cold, "good", "b"), (200, "good:b\n".into()));
    for name in ["victim", "tweak", "other", "gone", "evil"] {
        let resp = cold.post(&format!("/invoke?fn={name}"), "");
        assert_eq!(resp.status, 404, "{name}: {}", resp.body);
        assert!(!resp.body.contains("evil ran"), "{name}: {}", resp.body);
    }
    let log = cold.log_text();
    for name in ["victim", "tweak", "other", "gone"] {
        assert!(
            log.contains(&format!("version {} refused, never run", ids[name])),
            "{name}: {log}"
        );
    }
    // The replica that deployed them still serves its own copies.
    assert_eq!(output(&first, "tweak", "c"), (200, "tweak:c\n".into()));
}

/// Every process under `pid` (itself included).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, u32> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "PID (comm) STATE PPID ...": comm may hold spaces and parens.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        if let Some(ppid) = after.split(' ').nth(1).and_then(|p| p.parse().ok()) {
            parents.insert(child, ppid);
        }
    }
    let mut tree = vec![pid];
    let mut grew = true;
    while grew {
        grew = false;
        for (child, parent) in &parents {
            if tree.contains(parent) && !tree.contains(child) {
                tree.push(*child);
                grew = true;
            }
        }
    }
    tree
}

#[test]
fn the_s3_secret_and_the_cluster_key_appear_in_no_answer_log_or_environment() {
    let mut weed = Seaweed::start();
    let cluster_key = std::fs::read_to_string(weed.key_file()).unwrap();
    let cluster_key = cluster_key.trim();
    let port = free_ports(1)[0];
    let args: Vec<String> = [
        "--workers",
        "2",
        "--store",
        "s3://faas/t",
        "--s3-endpoint",
        &weed.endpoint,
        "--replica-name",
        "leaky",
        "--port",
        &port.to_string(),
        "--poll-ms",
        "200",
        "--cluster-key-file",
        &weed.key_file().display().to_string(),
        // A peer that is not there: notices are sent (and fail).
        "--peers",
        &format!("http://127.0.0.1:{}", free_ports(1)[0]),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("RUST_LOG", "debug"),
    ];
    let r = TestServer::start_with_env("RR", &args, &env);
    wait_until("the replica's readiness", Duration::from_secs(60), || {
        r.get("/health/ready").status == 200
    });
    let mut answers: Vec<(String, Response)> = Vec::new();
    let mut ask = |what: &str, resp: Response| answers.push((what.to_string(), resp));
    // A function that prints its whole environment, and a C one (its
    // compiler's environment is checked while it runs).
    let dump = "import os\nprint(sorted(os.environ.items()))";
    ask("deploy", r.post("/deploy?name=env&lang=python", dump));
    ask("invoke", r.post("/invoke?fn=env", ""));
    ask("raw", r.post("/fn/env", ""));
    let addr = r.addr.clone();
    let c_deploy = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/deploy?name=hello&lang=c",
            example("hello.c").as_bytes(),
        )
    });
    // Every process of the replica while the build runs: the server, its
    // LB and gateway, its workers, the compiler.
    let mut environs = Vec::new();
    for _ in 0..20 {
        for pid in process_tree(r.pid()) {
            for file in ["environ", "cmdline"] {
                if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/{file}")) {
                    environs.push((format!("/proc/{pid}/{file}"), bytes));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ask("c deploy", c_deploy.join().unwrap());
    ask(
        "update",
        r.request("PUT", "/function/env?lang=python", dump.as_bytes()),
    );
    for path in [
        "/stats",
        "/metrics",
        "/ui/data",
        "/functions",
        "/function/env",
        "/function/env/versions",
        "/function/env/invocations",
        "/health",
        "/health/ready",
    ] {
        ask(path, r.get(path));
    }
    ask("notice", r.post("/cluster/notice", "{\"replica\":\"x\"}"));
    // The store goes away: errors must not carry what the client signs with.
    weed.kill();
    ask(
        "deploy in outage",
        r.post("/deploy?name=later&lang=python", PY),
    );
    ask(
        "delete in outage",
        r.request("DELETE", "/function/env", b""),
    );
    ask("miss in outage", r.post("/invoke?fn=unknown", ""));
    ask("invoke in outage", r.post("/invoke?fn=env", ""));
    ask("ready in outage", r.get("/health/ready"));
    ask("stats in outage", r.get("/stats"));
    // The store is back.
    weed.launch();
    wait_until("deploys to work again", Duration::from_secs(60), || {
        r.post("/deploy?name=later&lang=python", PY).status == 201
    });
    for pid in process_tree(r.pid()) {
        for file in ["environ", "cmdline"] {
            if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/{file}")) {
                environs.push((format!("/proc/{pid}/{file}"), bytes));
            }
        }
    }

    let invoked = answers[1].1.json()["output"].as_str().unwrap().to_string();
    assert!(
        invoked.contains("FAAS") || invoked.contains('['),
        "{invoked}"
    );
    assert!(
        environs.len() >= 2 * 4,
        "the server, its LB, gateway and workers: {:?}",
        environs.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let secrets = [("the S3 secret", SECRET), ("the cluster key", cluster_key)];
    for (what, secret) in secrets {
        for (asked, resp) in &answers {
            assert!(
                !resp.body.contains(secret),
                "{what} in {asked}: {}",
                resp.body
            );
            for (name, value) in &resp.headers {
                assert!(!value.contains(secret), "{what} in {asked}'s {name}");
            }
        }
        assert!(!r.log_text().contains(secret), "{what} in the log");
        for (path, bytes) in &environs {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains(secret), "{what} in {path}: {text:?}");
        }
    }
    // The server's own environment block keeps the variable's name with
    // its value blanked; its children never get the variable at all.
    for (path, bytes) in &environs {
        let text = String::from_utf8_lossy(bytes);
        if path.ends_with("/environ") && !path.starts_with(&format!("/proc/{}/", r.pid())) {
            assert!(!text.contains("AWS_SECRET_ACCESS_KEY"), "{path}: {text:?}");
        }
    }
}

#[test]
fn a_captured_cluster_notice_cannot_be_replayed() {
    use hmac::{Hmac, Mac};
    let weed = Seaweed::start();
    let r = alone(&weed, "replayed", &[]);
    let key = std::fs::read_to_string(weed.key_file()).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let body = format!("{{\"replica\":\"x\",\"generation\":1,\"sent_ms\":{now_ms}}}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.trim().as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let signature = format!("sha256={signature}");
    let send = || {
        http_bytes(
            &r.addr,
            "POST",
            "/cluster/notice",
            &[("X-Faas-Signature", signature.as_str())],
            body.as_bytes(),
        )
        .0
    };
    assert_eq!(send(), 200);
    for _ in 0..3 {
        assert_eq!(send(), 401);
    }
    assert!(r.log_text().contains("a replay"), "{}", r.log_text());
}

/// How [`HostileStore`] answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hostility {
    /// Forwards to SeaweedFS.
    Pass = 0,
    /// 200 with a 100 GB Content-Length, then spaces for as long as read.
    Gigantic = 1,
    /// 200 with a short body that is no JSON at all.
    Garbage = 2,
    /// Reads the request, never answers.
    Silent = 3,
}

/// A TCP endpoint in front of SeaweedFS that turns hostile on demand
/// (connections opened before the turn are cut, so none bypass it).
struct HostileStore {
    endpoint: String,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl HostileStore {
    fn start(upstream: &str) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (m, g) = (mode.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { break };
                let (mode, born) = (m.load(Ordering::SeqCst), g.load(Ordering::SeqCst));
                let (g, upstream) = (g.clone(), upstream.clone());
                std::thread::spawn(move || {
                    if mode == Hostility::Pass as u8 {
                        let Ok(mut server) = std::net::TcpStream::connect(&upstream) else {
                            return;
                        };
                        let (mut c2, mut s2) =
                            (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let up = std::thread::spawn(move || {
                            let _ = std::io::copy(&mut c2, &mut s2);
                            let _ = s2.shutdown(std::net::Shutdown::Both);
                        });
                        // Cut the connection when the mode changes.
                        let (c3, s3) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || loop {
                            std::thread::sleep(Duration::from_millis(20));
                            if g.load(Ordering::SeqCst) != born {
                                let _ = c3.shutdown(std::net::Shutdown::Both);
                                let _ = s3.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                        });
                        let _ = std::io::copy(&mut server, &mut client);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        let _ = up.join();
                        return;
                    }
                    let mut buf = [0u8; 65536];
                    let _ = client.set_read_timeout(Some(Duration::from_millis(500)));
                    let _ = client.read(&mut buf);
                    if mode == Hostility::Gigantic as u8 {
                        let _ = client.write_all(b"HTTP/1.1 200 OK\r\nETag: \"huge\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 100000000000\r\n\r\n");
                        let spaces = vec![b' '; 1 << 20];
                        while g.load(Ordering::SeqCst) == born && client.write_all(&spaces).is_ok()
                        {
                        }
                    } else if mode == Hostility::Garbage as u8 {
                        let _ = client.write_all(b"HTTP/1.1 200 OK\r\nETag: \"junk\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 12\r\n\r\n\xff\xfe{{[garbage");
                    } else {
                        while g.load(Ordering::SeqCst) == born {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                });
            }
        });
        Self {
            endpoint,
            mode,
            generation,
        }
    }

    fn turn(&self, mode: Hostility) {
        use std::sync::atomic::Ordering;
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_hostile_store_endpoint_neither_crashes_nor_blocks_a_replica() {
    let weed = Seaweed::start();
    let hostile = HostileStore::start(&weed.endpoint);
    let port = free_ports(1)[0];
    let args: Vec<String> = [
        "--workers",
        "1",
        "--store",
        "s3://faas/t",
        "--s3-endpoint",
        &hostile.endpoint,
        "--replica-name",
        "victim",
        "--port",
        &port.to_string(),
        "--poll-ms",
        "200",
        "--cluster-key-file",
        &weed.key_file().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ];
    let r = TestServer::start_with_env("RR", &args, &env);
    wait_until("the replica's readiness", Duration::from_secs(60), || {
        r.get("/health/ready").status == 200
    });
    r.deploy("cached", "python", PY);

    // A body without end: refused by its size, without reading it (the
    // replica once read it into memory until the request timed out).
    hostile.turn(Hostility::Gigantic);
    wait_for_log(&r, "bytes; refused", Duration::from_secs(60));
    assert_eq!(output(&r, "cached", "a"), (200, "v1:a\n".into()));
    let resp = r.post("/deploy?name=during&lang=python", PY);
    assert!(resp.status >= 500, "{}", resp.body);

    // Garbage: refused as damaged, logged, the cache serves.
    hostile.turn(Hostility::Garbage);
    wait_for_log(&r, "not a sealed object", Duration::from_secs(60));
    assert_eq!(output(&r, "cached", "b"), (200, "v1:b\n".into()));

    // Silence: cached functions answer while syncs and deploys wait for
    // the store's timeout; the deploy then answers 503.
    hostile.turn(Hostility::Silent);
    let addr = r.addr.clone();
    let deploy = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/deploy?name=silent&lang=python",
            PY.as_bytes(),
        )
    });
    for i in 0..5 {
        assert_eq!(
            output(&r, "cached", &i.to_string()),
            (200, format!("v1:{i}\n"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let answered = deploy.join().unwrap();
    assert_eq!(answered.status, 503, "{}", answered.body);

    // Back to normal: the replica is alive and catches up.
    hostile.turn(Hostility::Pass);
    wait_until("deploys to work again", Duration::from_secs(90), || {
        r.post("/deploy?name=after&lang=python", PY).status == 201
    });
    assert_eq!(output(&r, "after", "z"), (200, "v1:z\n".into()));
    assert_eq!(output(&r, "cached", "y"), (200, "v1:y\n".into()));
}
