//! Secrets: `PUT|DELETE /secret/NAME`, `GET /secrets`, `secret=NAME` on a
//! deploy, the read-only file `/run/secrets/NAME` in every language, a
//! replaced value seen by the next call, values absent from every answer,
//! log and metric, and the key that seals them at rest.

use crate::harness::*;

/// Prints `[VALUE]|ro-or-rw|whether-other-is-visible` for
/// `/run/secrets/api_key`, trying to overwrite it and to read the secret
/// `other`, which the function does not name.
const READERS: [(&str, &str); 6] = [
    (
        "c",
        r#"#include <stdio.h>
int main(void) {
    char buf[256];
    FILE *f = fopen("/run/secrets/api_key", "r");
    if (!f) { printf("missing\n"); return 0; }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    FILE *w = fopen("/run/secrets/api_key", "w");
    FILE *o = fopen("/run/secrets/other", "r");
    printf("[%s]|%s|%s\n", buf, w ? "rw" : "ro", o ? "other" : "-");
    return 0;
}
"#,
    ),
    (
        "rust",
        r#"use std::fs;
fn main() {
    let v = fs::read_to_string("/run/secrets/api_key").unwrap_or_else(|_| "missing".into());
    let w = fs::OpenOptions::new().write(true).open("/run/secrets/api_key").is_ok();
    let o = fs::metadata("/run/secrets/other").is_ok();
    println!("[{}]|{}|{}", v, if w { "rw" } else { "ro" }, if o { "other" } else { "-" });
}
"#,
    ),
    (
        "go",
        r#"package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile("/run/secrets/api_key")
	v := string(b)
	if err != nil {
		v = "missing"
	}
	w := "ro"
	if f, err := os.OpenFile("/run/secrets/api_key", os.O_WRONLY, 0); err == nil {
		w = "rw"
		f.Close()
	}
	o := "-"
	if _, err := os.Stat("/run/secrets/other"); err == nil {
		o = "other"
	}
	fmt.Printf("[%s]|%s|%s\n", v, w, o)
}
"#,
    ),
    (
        "js",
        r#"const fs = require('fs');
let v;
try { v = fs.readFileSync('/run/secrets/api_key', 'utf8'); } catch (e) { v = 'missing'; }
let w = 'ro';
try { fs.writeFileSync('/run/secrets/api_key', 'x'); w = 'rw'; } catch (e) {}
const o = fs.existsSync('/run/secrets/other') ? 'other' : '-';
console.log(`[${v}]|${w}|${o}`);
"#,
    ),
    (
        "python",
        r#"import os
try:
    v = open('/run/secrets/api_key', encoding='utf-8').read()
except OSError:
    v = 'missing'
try:
    open('/run/secrets/api_key', 'w').write('x')
    w = 'rw'
except OSError:
    w = 'ro'
o = 'other' if os.path.exists('/run/secrets/other') else '-'
print(f'[{v}]|{w}|{o}')
"#,
    ),
    (
        "php",
        r#"<?php
$v = @file_get_contents('/run/secrets/api_key');
if ($v === false) { $v = 'missing'; }
$w = @file_put_contents('/run/secrets/api_key', 'x') === false ? 'ro' : 'rw';
$o = file_exists('/run/secrets/other') ? 'other' : '-';
echo "[$v]|$w|$o\n";
"#,
    ),
];

const VALUE: &str = "sk-live-Ünïcode 42";

fn put_secret(server: &TestServer, name: &str, value: &[u8]) -> Response {
    server.request("PUT", &format!("/secret/{name}"), value)
}

#[test]
fn secrets_are_read_only_files_in_every_language_and_only_where_named() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    assert_eq!(put_secret(&server, "api_key", VALUE.as_bytes()).status, 201);
    assert_eq!(put_secret(&server, "other", b"not yours").status, 201);
    let expected = format!("[{VALUE}]|ro|-\n");
    for (lang, code) in READERS {
        let name = format!("sec_{lang}");
        let resp = server.post(
            &format!("/deploy?name={name}&lang={lang}&secret=api_key"),
            code,
        );
        assert_eq!(resp.status, 201, "{lang}: {}", resp.body);
        let call = server.post(&format!("/invoke?fn={name}"), "");
        assert_eq!(call.status, 200, "{lang}: {}", call.body);
        assert_eq!(call.json()["output"], expected, "{lang}: {}", call.body);
        assert_eq!(
            server.post(&format!("/fn/{name}"), "").body,
            expected,
            "{lang} on /fn/"
        );
        // The same code deployed without secret=: no /run/secrets at all.
        let bare = format!("bare_{lang}");
        server.deploy(&bare, lang, code);
        let call = server.post(&format!("/invoke?fn={bare}"), "");
        let out = call.json()["output"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            out == "missing\n" || out == "[missing]|ro|-\n",
            "{lang} without secret=: {}",
            call.body
        );
    }
    // Any bytes are a value.
    let binary: Vec<u8> = (0u8..=255).collect();
    assert_eq!(put_secret(&server, "blob", &binary).status, 201);
    let hexdump = "import sys\nsys.stdout.write(open('/run/secrets/blob','rb').read().hex())\n";
    let resp = server.post("/deploy?name=hexdump&lang=python&secret=blob", hexdump);
    assert_eq!(resp.status, 201, "{}", resp.body);
    let out = server.post("/invoke?fn=hexdump", "").json()["output"].clone();
    let want: String = binary.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(out, want.as_str());
}

#[test]
fn a_replaced_secret_is_seen_by_the_next_call_without_a_redeploy() {
    // One worker: the second call reuses the instance prepared while idle,
    // which must not keep the old value.
    let server = TestServer::start("RR", &["--workers", "1"]);
    for (lang, code) in [READERS[0], READERS[4], READERS[5]] {
        assert!(put_secret(&server, "api_key", b"v1").status / 100 == 2);
        let name = format!("rot_{lang}");
        let resp = server.post(
            &format!("/deploy?name={name}&lang={lang}&secret=api_key"),
            code,
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
        for _ in 0..2 {
            let out = server.post(&format!("/invoke?fn={name}"), "").json()["output"].clone();
            assert_eq!(out, "[v1]|ro|-\n", "{lang}");
        }
        assert_eq!(put_secret(&server, "api_key", b"v2").status, 200);
        let out = server.post(&format!("/invoke?fn={name}"), "").json()["output"].clone();
        assert_eq!(out, "[v2]|ro|-\n", "{lang}");
    }
}

#[test]
fn the_secret_api_lists_without_values_refuses_deleting_a_used_one_and_checks_input() {
    let server = TestServer::start("RR", &["--workers", "1", "--api-token", "tok"]);
    let auth = |method: &str, path: &str, body: &[u8]| {
        http_with_headers(
            &server.addr,
            method,
            path,
            body,
            &[("Authorization", "Bearer tok")],
        )
    };
    // Behind the API token, every route.
    assert_eq!(put_secret(&server, "db", b"pw").status, 401);
    assert_eq!(server.get("/secrets").status, 401);
    assert_eq!(server.request("DELETE", "/secret/db", b"").status, 401);

    let created = auth("PUT", "/secret/db", b"hunter2");
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["created"], true);
    let replaced = auth("PUT", "/secret/db", b"hunter22");
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let deployed = auth(
        "POST",
        "/deploy?name=uses_db&lang=python&secret=db",
        b"print(len(open('/run/secrets/db').read()))\n",
    );
    assert_eq!(deployed.status, 201, "{}", deployed.body);
    let listed = auth("GET", "/secrets", b"");
    assert_eq!(listed.status, 200);
    let secret = &listed.json()["secrets"][0];
    assert_eq!(secret["name"], "db");
    assert_eq!(secret["size"], 8);
    assert_eq!(secret["used_by"], serde_json::json!(["uses_db"]));
    assert!(secret["created"].as_u64().unwrap() <= secret["updated"].as_u64().unwrap());
    assert!(!listed.body.contains("hunter"), "{}", listed.body);
    // The function shows which secrets it reads, not their values.
    let functions = auth("GET", "/functions", b"");
    assert_eq!(
        functions.json()["functions"][0]["secrets"],
        serde_json::json!(["db"])
    );

    let in_use = auth("DELETE", "/secret/db", b"");
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    assert!(in_use.body.contains("uses_db"), "{}", in_use.body);
    assert_eq!(auth("DELETE", "/function/uses_db", b"").status, 200);
    assert_eq!(auth("DELETE", "/secret/db", b"").status, 200);
    assert_eq!(auth("DELETE", "/secret/db", b"").status, 404);

    // Bad input: 400 or 413 naming the problem, nothing stored.
    let too_big = auth("PUT", "/secret/big", &vec![b'x'; 64 * 1024 + 1]);
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert_eq!(
        auth("PUT", "/secret/ok", &vec![b'x'; 64 * 1024]).status,
        201
    );
    for bad in ["..", ".hidden", "a%2Fb", "a%20b", &"x".repeat(65)] {
        let resp = auth("PUT", &format!("/secret/{bad}"), b"v");
        assert_eq!(resp.status, 400, "{bad}: {}", resp.body);
        assert!(
            resp.body.contains("not a secret name"),
            "{bad}: {}",
            resp.body
        );
    }
    let unknown = auth(
        "POST",
        "/deploy?name=nope&lang=python&secret=ghost",
        b"print(1)\n",
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(unknown.body.contains("'ghost'"), "{}", unknown.body);
    let invalid = auth(
        "POST",
        "/deploy?name=nope&lang=python&secret=..%2Fx",
        b"print(1)\n",
    );
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert!(server.stored_functions().is_empty());
    let names: Vec<String> = auth("GET", "/secrets", b"").json()["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["ok"]);
    assert_eq!(server.request("PATCH", "/secret/ok", b"").status, 405);
}

#[test]
fn a_secret_value_appears_in_no_answer_log_or_metric() {
    let server = TestServer::start_with_env("RR", &["--workers", "1"], &[("RUST_LOG", "debug")]);
    let value = "Zq7-SECRET-VALUE-never-shown-9x";
    assert_eq!(put_secret(&server, "token", value.as_bytes()).status, 201);
    // Reads it and prints only its length; fails on a second route so
    // error paths are covered too.
    let code = "import sys\nv = open('/run/secrets/token').read()\nprint(len(v))\nif sys.stdin.read() == 'fail':\n    sys.stderr.write('failing on purpose\\n')\n    sys.exit(3)\n";
    let resp = server.post("/deploy?name=quiet&lang=python&secret=token", code);
    assert_eq!(resp.status, 201, "{}", resp.body);
    let mut answers = vec![resp.body];
    let ok = server.post("/invoke?fn=quiet", "");
    assert_eq!(ok.json()["output"], format!("{}\n", value.len()));
    answers.push(ok.body);
    answers.push(server.post("/invoke?fn=quiet", "fail").body);
    answers.push(server.post("/fn/quiet/x?y=1", "").body);
    for path in [
        "/functions",
        "/function/quiet",
        "/function/quiet/versions",
        "/function/quiet/invocations",
        "/secrets",
        "/metrics",
        "/ui/data",
        "/stats",
    ] {
        let resp = server.get(path);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
        answers.push(resp.body);
    }
    answers.push(put_secret(&server, "token", value.as_bytes()).body);
    for answer in &answers {
        assert!(!answer.contains(value), "the value leaked in: {answer}");
    }
    let log = server.log_text();
    assert!(log.contains("secret 'token'"), "the log names secrets");
    assert!(!log.contains(value), "the value leaked in the log");
    // Nor on disk in clear.
    let sealed = std::fs::read(server.dir.path().join("secrets/token.sealed")).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(value));
}

#[test]
fn the_key_seals_secrets_at_rest_and_a_wrong_key_stops_the_start_with_one_line() {
    let mut server = TestServer::start("RR", &["--workers", "1"]);
    let key = server.dir.path().join("secrets.key");
    // Created at first start, 32 bytes, readable by the server only.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(server.log_text().contains("back it up"));
    assert_eq!(put_secret(&server, "db", b"pw-1").status, 201);
    server.deploy_with(
        "reader",
        "python",
        "print(open('/run/secrets/db').read())\n",
        "secret=db",
    );
    let status = server.stop();
    assert!(status.success());

    // Another key: the server refuses to start, in one line naming it.
    let dir = server.dir.path().to_path_buf();
    let other = dir.join("other.key");
    std::fs::write(&other, "ab".repeat(32)).unwrap();
    let out = start_with_key(&dir, "2", &other);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("does not open"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("other.key"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A named key file that does not exist is an error too (never
    // created silently: that would orphan the stored secrets).
    let out = start_with_key(&dir, "3", &dir.join("missing.key"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.key"));

    // The right key: the value is back. A tampered value answers 500
    // naming the secret, never garbage.
    let server = server.restart_stopped();
    assert_eq!(
        server.post("/invoke?fn=reader", "").json()["output"],
        "pw-1\n"
    );
    let sealed_path = dir.join("secrets/db.sealed");
    let mut sealed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sealed_path).unwrap()).unwrap();
    let text = sealed["sealed"].as_str().unwrap().to_string();
    let flipped = if text.starts_with('A') { "B" } else { "A" };
    sealed["sealed"] = format!("{flipped}{}", &text[1..]).into();
    std::fs::write(&sealed_path, sealed.to_string()).unwrap();
    let mut server = server;
    server.stop();
    let server = server.restart_stopped();
    let call = server.post("/invoke?fn=reader", "");
    assert_eq!(call.status, 500, "{}", call.body);
    assert!(call.body.contains("secret 'db'"), "{}", call.body);
    assert!(!call.body.contains("pw-1"));
    // Storing it again repairs it.
    assert_eq!(put_secret(&server, "db", b"pw-2").status, 200);
    assert_eq!(
        server.post("/invoke?fn=reader", "").json()["output"],
        "pw-2\n"
    );
}

#[test]
fn the_cli_sets_lists_uses_and_removes_secrets() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let faas = |args: &[&str], stdin: &[u8]| {
        use std::io::Write as _;
        let mut child = std::process::Command::new(worker_bin().with_file_name("faas"))
            .args(args)
            .env("FAAS_URL", format!("http://{}", server.addr))
            .env_remove("FAAS_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let value_file = dir.path().join("token.txt");
    std::fs::write(&value_file, "from-a-file").unwrap();
    let at_file = format!("@{}", value_file.display());
    let (ok, out) = faas(&["secret", "set", "token", "-d", &at_file], b"");
    assert!(
        ok && out.contains("created secret token (11 bytes)"),
        "{out}"
    );
    let (ok, out) = faas(&["secret", "set", "token", "-d", "-"], b"from-stdin");
    assert!(ok && out.contains("replaced"), "{out}");
    let code = dir.path().join("show.py");
    std::fs::write(&code, "print(open('/run/secrets/token').read())\n").unwrap();
    let (ok, out) = faas(
        &[
            "deploy",
            code.to_str().unwrap(),
            "--secret",
            "token",
            "--allow",
            "api.example.com",
        ],
        b"",
    );
    assert!(ok, "{out}");
    assert_eq!(
        server.post("/invoke?fn=show", "").json()["output"],
        "from-stdin\n"
    );
    let listed = server.get("/functions").json();
    assert_eq!(
        listed["functions"][0]["allow"],
        serde_json::json!(["api.example.com"])
    );
    let (ok, out) = faas(&["secret", "ls"], b"");
    assert!(ok && out.contains("token") && out.contains("show"), "{out}");
    assert!(!out.contains("from-stdin"), "{out}");
    let (ok, out) = faas(&["secret", "rm", "token"], b"");
    assert!(!ok && out.contains("used by show"), "{out}");
    assert!(faas(&["rm", "show"], b"").0);
    let (ok, out) = faas(&["secret", "rm", "token"], b"");
    assert!(ok && out.contains("removed secret token"), "{out}");
    let (ok, out) = faas(&["deploy", code.to_str().unwrap(), "--allow", "*"], b"");
    assert!(!ok && out.contains("every host"), "{out}");
}

/// Starts a server on `dir`'s store with `key` as its secrets key (its own
/// sockets, named by `tag`), expecting it to stop; returns its output.
fn start_with_key(dir: &std::path::Path, tag: &str, key: &std::path::Path) -> std::process::Output {
    std::process::Command::new(server_bin())
        .args(["RR", "--port", "0", "--workers", "1"])
        .arg("--lb-socket")
        .arg(dir.join(format!("lb{tag}.sock")))
        .arg("--server-socket")
        .arg(dir.join(format!("s{tag}.sock")))
        .arg("--functions-dir")
        .arg(dir.join("functions"))
        .arg("--worker-bin")
        .arg(worker_bin())
        .arg("--secrets-key-file")
        .arg(key)
        .output()
        .unwrap()
}
