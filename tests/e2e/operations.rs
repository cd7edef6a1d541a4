//! Operating the platform: versions, delete, tokens, request ids, recent
//! invocations, and the `faas` command-line client.

use std::process::Command;
use std::thread;

use crate::harness::{example, http_bytes, TestServer};

fn hello_says(text: &str) -> String {
    example("hello.c").replace("Hello from FAAS!", text)
}

/// The `id` of every entry of a JSON list (of versions or functions).
fn ids_of(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect()
}

#[test]
fn update_keeps_versions_and_switches_atomically() {
    let server = TestServer::start("RR", &["--keep-versions", "3"]);
    let first = server.deploy("svc", "c", &hello_says("v1"));
    // POST /deploy on a taken name is still 409, as in the seed.
    server
        .post("/deploy?name=svc&lang=c", &hello_says("v1b"))
        .assert_error(409);
    // PUT needs the name to exist, and answers like a deploy.
    server
        .request("PUT", "/function/nope?lang=c", hello_says("x").as_bytes())
        .assert_error(404);
    server
        .request("PUT", "/function/svc?lang=cobol", b"x")
        .assert_error(400);
    let resp = server.request(
        "PUT",
        "/function/svc?lang=c",
        b"int main(void){ return nope; }",
    );
    resp.assert_error(422);
    assert_eq!(server.post("/invoke?fn=svc", "").json()["output"], "v1\n");

    let resp = server.request("PUT", "/function/svc?lang=c", hello_says("v2").as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.body);
    let second = resp.json()["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(server.post("/invoke?fn=svc", "").json()["output"], "v2\n");
    // An old version still answers by id.
    assert_eq!(
        server.post(&format!("/invoke?fn={first}"), "").json()["output"],
        "v1\n"
    );
    let versions = server.get("/function/svc/versions").json();
    let ids = ids_of(&versions["versions"]);
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    assert_eq!(
        versions["versions"][0]["sha256"].as_str().unwrap().len(),
        64
    );

    // Two updates racing: both stored, one wins, nothing mixed.
    let racers: Vec<_> = ["v3", "v4"]
        .into_iter()
        .map(|v| {
            let addr = server.addr.clone();
            let code = hello_says(v);
            thread::spawn(move || {
                crate::harness::http(&addr, "PUT", "/function/svc?lang=c", code.as_bytes())
            })
        })
        .collect();
    for racer in racers {
        assert_eq!(racer.join().unwrap().status, 201);
    }
    let out = server.post("/invoke?fn=svc", "").json()["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out == "v3\n" || out == "v4\n", "{out}");
    // At most --keep-versions are kept: the oldest is gone, from disk too.
    let versions = server.get("/function/svc/versions").json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    server
        .post(&format!("/invoke?fn={first}"), "")
        .assert_error(404);
    assert!(!server.functions_dir().join(&first).exists());
    // A restart serves the same latest version.
    let server = server.restart();
    assert_eq!(
        server.post("/invoke?fn=svc", "").json()["output"],
        out.as_str()
    );
}

#[test]
fn a_server_killed_in_the_middle_of_an_update_keeps_a_consistent_store() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let first = server.deploy("svc", "c", &hello_says("v1"));
    // A Go build takes most of a second: kill -9 the server inside it, with
    // the new version's staging directory on disk.
    let addr = server.addr.clone();
    let update = thread::spawn(move || {
        // Raw, so that a connection reset is an outcome and not a panic.
        use std::io::{Read, Write};
        let code = example("hello.go");
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!(
            "PUT /function/svc?lang=go HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            code.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(code.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    let functions = server.functions_dir();
    let staging = || {
        std::fs::read_dir(&functions)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".staging-"))
    };
    crate::harness::wait_until(
        "the update building, its staging directory on disk",
        std::time::Duration::from_secs(20),
        || server.log_text().contains("deploy svc (go): building") && staging(),
    );
    let server = server.crash_and_restart();
    // The client saw its connection end, not a success.
    let answer = update.join().unwrap();
    assert!(!answer.starts_with("HTTP/1.1 201"), "{answer}");
    // The old version is whole and still the one served; nothing half-built
    // is listed or left on disk.
    assert!(!staging(), "staging leftovers survived a restart");
    let listed = server.get("/functions").json();
    let ids = ids_of(&listed["functions"]);
    assert_eq!(ids, [first.as_str()]);
    assert_eq!(server.stored_functions(), vec![first.clone()]);
    let resp = server.post("/invoke?fn=svc", "");
    assert_eq!(resp.json()["output"], "v1\n");
    // And the update can simply be made again.
    let resp = server.request(
        "PUT",
        "/function/svc?lang=go",
        example("hello.go").as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        server.post("/invoke?fn=svc", "").json()["output"],
        "Hello from FAAS!\n"
    );
}

#[test]
fn delete_removes_a_function_or_one_version() {
    let server = TestServer::start("RR", &[]);
    let v1 = server.deploy("gone", "c", &hello_says("g1"));
    let resp = server.request("PUT", "/function/gone?lang=c", hello_says("g2").as_bytes());
    let v2 = resp.json()["id"].as_str().unwrap().to_string();
    // The latest version cannot go alone while others exist.
    server
        .request("DELETE", &format!("/function/{v2}"), b"")
        .assert_error(409);
    let resp = server.request("DELETE", &format!("/function/{v1}"), b"");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["removed"][0], v1.as_str());
    assert!(!server.functions_dir().join(&v1).exists());
    assert_eq!(server.post("/invoke?fn=gone", "").json()["output"], "g2\n");

    // Delete during a burst: every call answers 200 or 404, none hangs.
    let callers: Vec<_> = (0..40)
        .map(|_| {
            let addr = server.addr.clone();
            thread::spawn(move || {
                crate::harness::http(&addr, "POST", "/invoke?fn=gone", b"").status
            })
        })
        .collect();
    let resp = server.request("DELETE", "/function/gone", b"");
    assert_eq!(resp.status, 200, "{}", resp.body);
    for caller in callers {
        let status = caller.join().unwrap();
        assert!(status == 200 || status == 404, "{status}");
    }
    server.post("/invoke?fn=gone", "").assert_error(404);
    server.get("/function/gone").assert_error(404);
    server
        .request("DELETE", "/function/gone", b"")
        .assert_error(404);
    assert!(
        server.stored_functions().is_empty(),
        "{:?}",
        server.stored_functions()
    );
    // The name is free again.
    server.deploy("gone", "c", &hello_says("g3"));
}

#[test]
fn tokens_guard_every_protected_route() {
    let server = TestServer::start(
        "RR",
        &[
            "--workers",
            "1",
            "--api-token",
            "adm1n",
            "--invoke-token",
            "1nv0ke",
        ],
    );
    let admin = [("Authorization", "Bearer adm1n")];
    let invoker = [("Authorization", "Bearer 1nv0ke")];
    let hello = example("hello.c");
    let protected_api = [
        ("POST", "/deploy?name=t&lang=c"),
        ("PUT", "/function/t?lang=c"),
        ("GET", "/function/t"),
        ("GET", "/function/t/versions"),
        ("GET", "/function/t/invocations"),
        ("GET", "/functions"),
        ("GET", "/stats"),
        ("DELETE", "/function/t"),
    ];
    for (method, path) in protected_api {
        for headers in [
            &[][..],
            &[("Authorization", "Bearer wrong")][..],
            &invoker[..],
        ] {
            let (status, h, body) =
                http_bytes(&server.addr, method, path, headers, hello.as_bytes());
            assert_eq!(
                status,
                401,
                "{method} {path} {headers:?}: {}",
                String::from_utf8_lossy(&body)
            );
            assert!(h
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v == "Bearer"));
        }
    }
    let (status, _, _) = http_bytes(
        &server.addr,
        "POST",
        "/deploy?name=t&lang=c",
        &admin,
        hello.as_bytes(),
    );
    assert_eq!(status, 201);
    for path in ["/invoke?fn=t", "/fn/t"] {
        let (status, _, _) = http_bytes(&server.addr, "POST", path, &admin, b"");
        assert_eq!(status, 401, "{path}");
        let (status, _, body) = http_bytes(&server.addr, "POST", path, &invoker, b"");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    for (method, path) in protected_api.iter().skip(2).take(5) {
        let (status, _, _) = http_bytes(&server.addr, method, path, &admin, b"");
        assert_eq!(status, 200, "{method} {path}");
    }
    // Health stays open.
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn request_ids_reach_every_part_and_invocations_are_kept_in_a_ring() {
    let server = TestServer::start_with_env("RR", &["--workers", "1"], &[("RUST_LOG", "debug")]);
    server.deploy(
        "traced",
        "c",
        "#include <stdio.h>\nint main(void){ fputs(\"to stderr\", stderr); return 0; }\n",
    );
    let (status, headers, body) = http_bytes(
        &server.addr,
        "POST",
        "/invoke?fn=traced",
        &[("X-Request-Id", "trace-7f3a")],
        b"",
    );
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["request_id"], "trace-7f3a");
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("x-request-id") && v == "trace-7f3a"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = server.log_text();
        let parts = ["[GATEWAY]", "[SERVER]", "[LB]", "[WORKER-0]"];
        let seen: Vec<bool> = parts
            .iter()
            .map(|p| {
                log.lines()
                    .any(|l| l.starts_with(p) && l.contains("trace-7f3a"))
            })
            .collect();
        if seen.iter().all(|s| *s) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{parts:?} {seen:?}\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The ring: newest first, bounded, with the first KiB of stderr.
    for i in 0..25 {
        server.post("/invoke?fn=traced", &i.to_string());
    }
    let recent = server.get("/function/traced/invocations?limit=5").json();
    let calls = recent["invocations"].as_array().unwrap();
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0]["status"], "ok");
    assert_eq!(calls[0]["stderr"], "to stderr");
    assert!(calls[0]["time_ms"].as_u64().unwrap() >= calls[1]["time_ms"].as_u64().unwrap());
    assert_eq!(
        server.get("/function/traced/invocations").json()["invocations"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    server
        .get("/function/traced/invocations?limit=0")
        .assert_error(400);
    server
        .get("/function/traced/invocations?limit=1001")
        .assert_error(400);
    server.get("/function/nope/invocations").assert_error(404);
    let all = server.get("/function/traced/invocations?limit=1000").json();
    assert_eq!(all["invocations"].as_array().unwrap().len(), 26);
}

fn faas(server: &TestServer, args: &[&str]) -> std::process::Output {
    let bin = crate::harness::worker_bin().with_file_name("faas");
    Command::new(&bin)
        .args(args)
        .env("FAAS_URL", format!("http://{}", server.addr))
        .env_remove("FAAS_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make`)", bin.display()))
}

#[test]
fn the_faas_cli_drives_every_operation() {
    let server = TestServer::start("RR", &["--workers", "1", "--api-token", "tok"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greet.c");
    std::fs::write(&file, hello_says("cli v1")).unwrap();
    let file = file.to_str().unwrap();

    // A missing token: one line naming what to do.
    let out = faas(&server, &["deploy", file]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = faas(&server, &["--token", "tok", "deploy", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("deployed greet as greet_"));
    std::fs::write(file, hello_says("cli v2")).unwrap();
    let out = faas(&server, &["--token", "tok", "deploy", file]);
    assert!(!out.status.success(), "a taken name needs --update");
    let out = faas(&server, &["--token", "tok", "deploy", file, "--update"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = faas(&server, &["invoke", "greet", "-d", "payload"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cli v2\npayload");
    let out = faas(&server, &["invoke", "greet", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["exit_code"], 0);
    // The function's exit code is the CLI's.
    let failing = dir.path().join("fails.c");
    std::fs::write(&failing, "int main(void){ return 7; }\n").unwrap();
    faas(
        &server,
        &["--token", "tok", "deploy", failing.to_str().unwrap()],
    );
    assert_eq!(faas(&server, &["invoke", "fails"]).status.code(), Some(7));

    let ls = String::from_utf8_lossy(&faas(&server, &["--token", "tok", "ls"]).stdout).into_owned();
    assert!(ls.starts_with("NAME"), "{ls}");
    assert!(ls.contains("greet") && ls.contains("fails"), "{ls}");
    let versions =
        String::from_utf8_lossy(&faas(&server, &["--token", "tok", "versions", "greet"]).stdout)
            .into_owned();
    assert_eq!(versions.lines().count(), 3, "{versions}");
    let logs = String::from_utf8_lossy(&faas(&server, &["--token", "tok", "logs", "greet"]).stdout)
        .into_owned();
    assert_eq!(logs.lines().count(), 3, "{logs}");
    let stats =
        String::from_utf8_lossy(&faas(&server, &["--token", "tok", "stats"]).stdout).into_owned();
    assert!(stats.starts_with("WORKER_ID"), "{stats}");
    let rm = faas(&server, &["--token", "tok", "rm", "greet"]);
    assert!(rm.status.success());
    let out = faas(&server, &["invoke", "greet"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    // No server: a clear line.
    let out = Command::new(crate::harness::worker_bin().with_file_name("faas"))
        .args(["--url", "http://127.0.0.1:9", "ls"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is it running"));
}
