//! Red-team attacks on secrets (`PUT /secret/NAME`, `secret=` on a deploy,
//! `/run/secrets/NAME`): values kept out of what operators read even when a
//! function writes them to stderr, a delete racing a deploy that names the
//! secret, a function tampering with its secret files, versions and the
//! worker's reused instances, and the PHP sandbox's descriptors and /proc.

use std::time::Duration;

use crate::harness::*;

fn put_secret(server: &TestServer, name: &str, value: &[u8]) -> Response {
    server.request("PUT", &format!("/secret/{name}"), value)
}

/// A function that writes its own secret to stderr (an error message, a
/// traceback) answers its caller with it, but neither the server's log
/// (the worker logs a call's stderr) nor the invocation log (`GET
/// /function/NAME/invocations`, the dashboard) keeps it. The second call
/// puts the value across the invocation log's 1 KiB cut: no start of it
/// is kept either.
#[test]
fn a_secret_written_to_stderr_reaches_neither_the_log_nor_the_invocation_log() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let value = "Qx9-STDERR-SECRET-value-77";
    assert_eq!(put_secret(&server, "tok", value.as_bytes()).status, 201);
    let code = "import sys\nv = open('/run/secrets/tok').read()\npad = sys.stdin.read()\nsys.stderr.write(pad + 'auth failed with ' + v + '\\n')\nprint('done')\n";
    server.deploy_with("leaky", "python", code, "secret=tok");

    let plain = server.post("/invoke?fn=leaky", "");
    assert_eq!(plain.status, 200, "{}", plain.body);
    // The call's own answer: what the function printed.
    assert!(
        plain.json()["stderr"].as_str().unwrap().contains(value),
        "{}",
        plain.body
    );
    // 1,000 bytes, then "auth failed with " (17): the value starts before
    // byte 1,024 and ends after it.
    let straddling = server.post("/invoke?fn=leaky", &"p".repeat(1000));
    assert_eq!(straddling.status, 200, "{}", straddling.body);

    let invocations = server.get("/function/leaky/invocations");
    assert_eq!(invocations.status, 200);
    assert!(
        !invocations.body.contains(&value[..7]),
        "the value (or its start) is in the invocation log: {}",
        invocations.body
    );
    let records = invocations.json()["invocations"].clone();
    let stderrs: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stderr"].as_str().unwrap())
        .collect();
    assert_eq!(stderrs.len(), 2, "{records}");
    assert!(
        stderrs
            .iter()
            .all(|e| e.starts_with("auth failed with [secret tok]") || e.starts_with("ppp")),
        "{records}"
    );
    assert!(
        stderrs.contains(&"auth failed with [secret tok]\n"),
        "{records}"
    );
    let dashboard = server.get("/ui/data");
    assert!(!dashboard.body.contains(&value[..7]), "{}", dashboard.body);

    wait_for_log(
        &server,
        "auth failed with [secret tok]",
        Duration::from_secs(5),
    );
    let log = server.log_text();
    assert!(
        !log.contains(&value[..7]),
        "the value is in the log:\n{log}"
    );
}

/// A deploy naming a secret checks that it exists, then builds (seconds
/// for Rust), then stores the version. A delete of the secret in between
/// found no stored version reading it and succeeded: the function was
/// then published reading a secret that no longer existed (every call 500,
/// and a later secret of that name, stored for anything else, would be
/// handed to it). The delete is now refused while the deploy runs.
#[test]
fn a_secret_cannot_be_deleted_while_a_deploy_naming_it_builds() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    assert_eq!(put_secret(&server, "race", b"race-value").status, 201);
    assert_eq!(put_secret(&server, "unrelated", b"u").status, 201);
    let code = "fn main() {\n    let v = std::fs::read_to_string(\"/run/secrets/race\").unwrap_or_else(|_| \"missing\".into());\n    println!(\"{v}\");\n}\n";
    let deploy = std::thread::scope(|s| {
        let deploy = s.spawn(|| server.post("/deploy?name=racer&lang=rust&secret=race", code));
        wait_for_log(
            &server,
            "deploy racer (rust): building",
            Duration::from_secs(30),
        );
        let delete = server.request("DELETE", "/secret/race", b"");
        assert_eq!(delete.status, 409, "{}", delete.body);
        assert!(
            delete.body.contains("deploy in progress"),
            "{}",
            delete.body
        );
        // A secret the deploy does not name is not held.
        assert_eq!(
            server.request("DELETE", "/secret/unrelated", b"").status,
            200
        );
        deploy.join().unwrap()
    });
    assert_eq!(deploy.status, 201, "{}", deploy.body);
    let call = server.post("/invoke?fn=racer", "");
    assert_eq!(call.status, 200, "{}", call.body);
    assert_eq!(call.json()["output"], "race-value\n");
    // Once stored, the version holds it (409 naming the function); once
    // the function is gone, it can go.
    let delete = server.request("DELETE", "/secret/race", b"");
    assert_eq!(delete.status, 409, "{}", delete.body);
    assert!(delete.body.contains("racer"), "{}", delete.body);
    assert_eq!(server.request("DELETE", "/function/racer", b"").status, 200);
    assert_eq!(server.request("DELETE", "/secret/race", b"").status, 200);

    // A deploy that fails to build releases its hold.
    assert_eq!(put_secret(&server, "race", b"v").status, 201);
    let broken = server.post(
        "/deploy?name=broken&lang=rust&secret=race",
        "fn main() { nope }",
    );
    assert_eq!(broken.status, 422, "{}", broken.body);
    assert_eq!(server.request("DELETE", "/secret/race", b"").status, 200);
}

/// Every way a Wasm function could change `/run/secrets` fails, and the
/// next call reads the same value; a secret it does not name is absent.
#[test]
fn tampering_with_run_secrets_from_wasm_fails_and_changes_nothing() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    assert_eq!(put_secret(&server, "cs", b"C-SECRET-xyz").status, 201);
    assert_eq!(put_secret(&server, "other", b"NOT-MINE").status, 201);
    let code = r#"#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#define TRY(what, call) printf("%s=%d\n", what, (int)(call))
int main(void) {
    int fd = open("/tmp/x", O_CREAT | O_WRONLY, 0644);
    write(fd, "EVIL", 4);
    close(fd);
    TRY("rename_over", rename("/tmp/x", "/run/secrets/cs"));
    TRY("rename_away", rename("/run/secrets/cs", "/tmp/y"));
    TRY("unlink", unlink("/run/secrets/cs"));
    TRY("link", link("/run/secrets/cs", "/run/secrets/copy"));
    TRY("symlink", symlink("x", "/run/secrets/new"));
    TRY("truncate", truncate("/run/secrets/cs", 0));
    TRY("mkdir", mkdir("/run/secrets/d", 0777));
    TRY("rmdir", rmdir("/run/secrets"));
    TRY("rename_dir", rename("/run/secrets", "/tmp/s"));
    TRY("open_rw", open("/run/secrets/cs", O_RDWR));
    TRY("open_trunc", open("/run/secrets/cs", O_RDONLY | O_TRUNC));
    TRY("create", open("/run/secrets/z", O_CREAT | O_WRONLY, 0644));
    int r = open("/run/secrets/cs", O_RDONLY);
    TRY("ftruncate", ftruncate(r, 0));
    TRY("write", write(r, "x", 1));
    struct timespec ts[2] = {{0, 0}, {0, 0}};
    TRY("futimens", futimens(r, ts));
    TRY("other", access("/run/secrets/other", F_OK));
    char buf[64] = {0};
    pread(r, buf, sizeof buf - 1, 0);
    printf("value=%s\n", buf);
    return 0;
}
"#;
    server.deploy_with("tamper", "c", code, "secret=cs");
    for _ in 0..2 {
        let call = server.post("/invoke?fn=tamper", "");
        assert_eq!(call.status, 200, "{}", call.body);
        let out = call.json()["output"].as_str().unwrap().to_string();
        let mut lines = out.lines().collect::<Vec<_>>();
        assert_eq!(lines.pop(), Some("value=C-SECRET-xyz"), "{out}");
        assert_eq!(lines.len(), 16, "{out}");
        for line in lines {
            assert!(line.ends_with("=-1"), "succeeded: {line}\n{out}");
        }
    }
}

/// Python: prints the secret `k`, or `missing`, and what `/run/secrets`
/// holds.
const READ_K: &str = "import os\ntry:\n    v = open('/run/secrets/k').read()\nexcept OSError:\n    v = 'missing'\nls = sorted(os.listdir('/run/secrets')) if os.path.exists('/run/secrets') else None\nprint(v, ls)\n";

/// Secrets belong to a version: on one worker (whose prepared instance and
/// session are reused between calls), an older version called by id that
/// did not name the secret never sees it, an update that drops the name
/// stops seeing it, and another function called right after sees nothing.
#[test]
fn secrets_follow_the_version_not_the_worker() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    assert_eq!(put_secret(&server, "k", b"k-value").status, 201);
    let v1 = server.deploy("ver", "python", READ_K);
    let update = |query: &str| {
        let resp = server.request(
            "PUT",
            &format!("/function/ver?lang=python{query}"),
            READ_K.as_bytes(),
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
        resp.json()["id"].as_str().unwrap().to_string()
    };
    let output = |name: &str| {
        let call = server.post(&format!("/invoke?fn={name}"), "");
        assert_eq!(call.status, 200, "{}", call.body);
        call.json()["output"].as_str().unwrap().to_string()
    };
    let v2 = update("&secret=k");
    server.deploy("plain", "python", READ_K);
    for _ in 0..2 {
        assert_eq!(output("ver"), "k-value ['k']\n");
        assert_eq!(output(&v1), "missing None\n");
        assert_eq!(output("ver"), "k-value ['k']\n");
        assert_eq!(output("plain"), "missing None\n");
    }
    let _v3 = update("");
    assert_eq!(output("ver"), "missing None\n");
    assert_eq!(output("ver"), "missing None\n");
    // The version that named it still does (the delete of the secret is
    // refused while it is kept).
    assert_eq!(output(&v2), "k-value ['k']\n");
    assert_eq!(server.request("DELETE", "/secret/k", b"").status, 409);
}

/// PHP runs natively in bubblewrap, the secret bound in from a pipe: the
/// call holds no descriptor but its stdio and its script, sees no process
/// but its sandbox's, lists only its own secret, and cannot change it.
#[test]
fn a_php_function_sees_only_its_own_secret_and_nothing_of_the_worker() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    assert_eq!(put_secret(&server, "ps", b"PHP-SECRET-111").status, 201);
    assert_eq!(put_secret(&server, "os", b"OTHER-SECRET-222").status, 201);
    let code = r#"<?php
$fds = [];
foreach (scandir('/proc/self/fd') as $f) {
    if ($f[0] != '.') { $fds[] = $f . '>' . @readlink("/proc/self/fd/$f"); }
}
$procs = 0;
foreach (scandir('/proc') as $p) { if (is_numeric($p)) { $procs++; } }
echo "fds=", implode(',', $fds), "\n";
echo "procs=$procs\n";
echo "ls=", implode(',', array_diff(scandir('/run/secrets'), ['.', '..'])), "\n";
echo "changed=", var_export(@chmod('/run/secrets/ps', 0666) || @unlink('/run/secrets/ps')
    || @file_put_contents('/run/secrets/ps', 'X') !== false || @symlink('/tmp', '/run/secrets/n'), true), "\n";
echo "value=", file_get_contents('/run/secrets/ps'), "\n";
"#;
    server.deploy_with("phpsec", "php", code, "secret=ps");
    let call = server.post("/invoke?fn=phpsec", "");
    assert_eq!(call.status, 200, "{}", call.body);
    let out = call.json()["output"].as_str().unwrap().to_string();
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}: {out}"))
            .to_string()
    };
    // 0-2: stdio pipes; 3: the script; then the PHP prelude (outbound
    // HTTP) and the listing's own handle: never a pipe (the secrets' data
    // pipes are closed by bubblewrap).
    for fd in field("fds").split(',') {
        let (n, target) = fd.split_once('>').unwrap();
        let n: u32 = n.parse().unwrap();
        assert!(
            n <= 2 && target.starts_with("pipe:")
                || n == 3 && target.starts_with("/faas/")
                || (4..=5).contains(&n) && !target.starts_with("pipe:"),
            "unexpected descriptor {fd}: {out}"
        );
    }
    // bubblewrap's PID 1 and PHP.
    assert_eq!(field("procs"), "2", "{out}");
    assert_eq!(field("ls"), "ps", "{out}");
    assert_eq!(field("changed"), "false", "{out}");
    assert_eq!(field("value"), "PHP-SECRET-111", "{out}");
}

/// `secret=` on a deploy: a name given twice is kept once, an empty or
/// invalid name or more than 64 are refused with 400, and nothing is
/// stored.
#[test]
fn the_deploys_secret_names_are_checked_and_nothing_is_stored_on_bad_input() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    assert_eq!(put_secret(&server, "a", b"v").status, 201);
    let code = "print(open('/run/secrets/a').read())\n";
    for query in [
        "secret=",
        "secret=a&secret=..",
        "secret=a&secret=a%2Fb",
        "secret=a&secret=ghost",
        &"secret=a&".repeat(65),
    ] {
        let resp = server.post(&format!("/deploy?name=bad&lang=python&{query}"), code);
        assert_eq!(resp.status, 400, "{query}: {}", resp.body);
    }
    assert!(server.stored_functions().is_empty());
    assert_eq!(
        server.get("/secrets").json()["secrets"][0]["used_by"],
        serde_json::json!([])
    );
    server.deploy_with("twice", "python", code, "secret=a&secret=a");
    let functions = server.get("/functions").json();
    assert_eq!(
        functions["functions"][0]["secrets"],
        serde_json::json!(["a"])
    );
    let call = server.post("/invoke?fn=twice", "");
    assert_eq!(call.json()["output"], "v\n", "{}", call.body);
}
