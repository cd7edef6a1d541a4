//! WASI completeness: a private, capped, in-memory /tmp per call; host
//! calls bounded by the deadline; preview1 only; POSIX errnos.

use std::time::{Duration, Instant};

use crate::harness::{example, http, TestServer};

/// Writes its payload to /tmp/<payload>, lists /tmp, reads the file back.
const TMP_USER: &str = r#"#include <stdio.h>
#include <string.h>
#include <dirent.h>
int main(void) {
    char name[64] = {0}, path[128];
    fread(name, 1, sizeof name - 1, stdin);
    snprintf(path, sizeof path, "/tmp/%s", name);
    FILE *f = fopen(path, "w");
    if (!f) { perror("fopen"); return 2; }
    fprintf(f, "written by %s", name);
    fclose(f);
    DIR *d = opendir("/tmp");
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') printf("entry %s\n", e->d_name);
    closedir(d);
    char back[128] = {0};
    f = fopen(path, "r");
    fread(back, 1, sizeof back - 1, f);
    printf("read %s\n", back);
    return 0;
}
"#;

/// Fills /tmp until a write fails, then reports the errno and carries on.
const TMP_FILLER: &str = r#"#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
static char block[65536];
int main(void) {
    int fd = open("/tmp/big", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof block);
        if (n < 0) { printf("write failed after %ld KiB: %s\n", total / 1024, errno == ENOSPC ? "ENOSPC" : strerror(errno)); break; }
        total += n;
        if (total > (1L << 30)) { puts("no cap"); return 1; }
    }
    /* A seek far past the cap, then a write: refused before anything grows. */
    off_t at = lseek(fd, (off_t)1 << 40, SEEK_SET);
    printf("seek: %s\n", at < 0 && errno == EFBIG ? "EFBIG" : "moved");
    printf("ftruncate: %s\n", ftruncate(fd, (off_t)1 << 40) < 0 ? "refused" : "grew");
    close(fd);
    unlink("/tmp/big");
    FILE *f = fopen("/tmp/after", "w");
    printf("after unlink: %s\n", f && fputs("ok", f) >= 0 ? "writable" : "full");
    return 0;
}
"#;

#[test]
fn every_call_has_a_private_tmp_that_is_gone_afterwards() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    server.deploy("tmpuser", "c", TMP_USER);
    for name in ["first", "second", "third"] {
        let resp = server.post("/invoke?fn=tmpuser", name);
        assert_eq!(resp.status, 200, "{}", resp.body);
        // Only this call's file: nothing of earlier calls, on any worker.
        assert_eq!(
            resp.json()["output"],
            format!("entry {name}\nread written by {name}\n")
        );
    }
    // Concurrent calls never see each other's files.
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let name = format!("c{i}");
                let resp = http(&addr, "POST", "/invoke?fn=tmpuser", name.as_bytes());
                (name, resp)
            })
        })
        .collect();
    for caller in callers {
        let (name, resp) = caller.join().unwrap();
        assert_eq!(
            resp.json()["output"],
            format!("entry {name}\nread written by {name}\n")
        );
    }
    // Nothing reached the host's /tmp.
    assert!(!std::path::Path::new("/tmp/first").exists());
}

#[test]
fn writing_past_the_tmp_cap_fails_inside_the_function() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-tmp-mb", "2"]);
    server.deploy("filler", "c", TMP_FILLER);
    let resp = server.post("/invoke?fn=filler", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let out = resp.json()["output"].as_str().unwrap().to_string();
    let kib: u64 = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("write failed after "))
        .and_then(|l| l.strip_suffix(" KiB: ENOSPC"))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!((1024..=2048).contains(&kib), "{out}");
    assert!(out.contains("seek: EFBIG\n"), "{out}");
    assert!(out.contains("ftruncate: refused\n"), "{out}");
    assert!(out.contains("after unlink: writable\n"), "{out}");
    // Per function, at deploy.
    let resp = server.post("/deploy?name=small&lang=c&max_tmp_mb=1", TMP_FILLER);
    assert_eq!(resp.status, 201, "{}", resp.body);
    let out = server.post("/invoke?fn=small", "").json()["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        out.starts_with("write failed after 10") || out.starts_with("write failed after 9"),
        "{out}"
    );
    server
        .post("/deploy?name=huge&lang=c&max_tmp_mb=99999", TMP_FILLER)
        .assert_error(400);
    assert_eq!(server.get("/stats").json()["worker_restarts"][0], 0);
}

#[test]
fn host_calls_end_at_the_deadline_and_zero_polls_return_at_once() {
    let server = TestServer::start("RR", &["--workers", "1", "--timeout-ms", "1000"]);
    server.deploy(
        "poll0",
        "c",
        "#include <poll.h>\n#include <stdio.h>\nint main(void){ for (int i = 0; i < 1000; i++) poll(NULL, 0, 0); puts(\"polled\"); return 0; }\n",
    );
    // A thousand zero-timeout polls finish inside the 1 s deadline: a poll
    // that waited would turn this call into a 504.
    let resp = server.post("/invoke?fn=poll0", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["output"], "polled\n");
    let pid = server.get("/stats").json()["worker_pids"][0].clone();

    server.deploy(
        "sleeper",
        "c",
        "#include <unistd.h>\nint main(void){ sleep(30); return 0; }\n",
    );
    let started = Instant::now();
    let e = server.post("/invoke?fn=sleeper", "").assert_error(504);
    assert!(e.contains("timed out after 1000 ms"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(1000));
    // The worker stopped the guest itself: same process, no restart.
    server.deploy("ok", "c", &example("hello.c"));
    assert_eq!(server.post("/invoke?fn=ok", "").status, 200);
    let stats = server.get("/stats").json();
    assert_eq!(stats["worker_pids"][0], pid);
    assert_eq!(stats["worker_restarts"][0], 0);
}

#[test]
fn only_wasi_preview1_imports_are_accepted_and_errnos_are_posix() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let resp = server.post(
        "/deploy?name=wasix&lang=c",
        "__attribute__((import_module(\"wasix_32v1\"), import_name(\"fd_pipe\"))) int fd_pipe(int *, int *);\nint main(void){ int a, b; return fd_pipe(&a, &b); }\n",
    );
    let e = resp.assert_error(422);
    assert!(e.contains("wasix_32v1::fd_pipe"), "{e}");
    server.deploy(
        "shut",
        "c",
        "#include <sys/socket.h>\n#include <errno.h>\n#include <stdio.h>\nint main(void){ int a = shutdown(99, SHUT_RDWR) < 0 ? errno : 0; int b = shutdown(1, SHUT_RDWR) < 0 ? errno : 0; printf(\"%s %s\\n\", a == EBADF ? \"EBADF\" : \"?\", b == ENOTSOCK ? \"ENOTSOCK\" : \"?\"); return 0; }\n",
    );
    assert_eq!(
        server.post("/invoke?fn=shut", "").json()["output"],
        "EBADF ENOTSOCK\n"
    );
}

/// Compiles a test program for wasm32-wasi with the platform's clang.
fn compile_fixture(name: &str, out: &std::path::Path) {
    let clang = std::env::var("FAAS_CLANG").unwrap_or_else(|_| "clang-19".into());
    let source = crate::harness::repo_root()
        .join("tests/fixtures")
        .join(name);
    let status = std::process::Command::new(&clang)
        .args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(out)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("{clang} is needed (run `make toolchains`): {e}"));
    assert!(status.success(), "compiling {name}");
}

#[test]
fn worker_run_dir_behaves_like_wasmtime() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("fs_suite.wasm");
    compile_fixture("fs_suite.c", &wasm);
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&ours).unwrap();
    std::fs::create_dir(&theirs).unwrap();
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("cannot run {cmd:?} (run `make toolchains`, which installs wasmtime): {e}")
        });
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let got = run(std::process::Command::new(crate::harness::worker_bin())
        .arg("run")
        .arg(format!("--dir={}:/data", ours.display()))
        .arg(&wasm));
    let want = run(std::process::Command::new("wasmtime")
        .arg("run")
        .arg("--dir")
        .arg(format!("{}::/data", theirs.display()))
        .arg(&wasm));
    assert_eq!(got, want);
    assert!(
        got.contains("rmdir non-empty              ENOTEMPTY"),
        "{got}"
    );
    // What the guest did is on the host.
    assert!(ours.join("dir3").is_dir());
    assert_eq!(
        std::fs::read_link(ours.join("link")).unwrap().to_str(),
        Some("sub/b.txt")
    );

    // HOST:GUEST:ro reads, and refuses every change.
    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("f.txt"), "kept\n").unwrap();
    let probe = tmp.path().join("ro_probe.wasm");
    compile_fixture("ro_probe.c", &probe);
    let got = run(std::process::Command::new(crate::harness::worker_bin())
        .arg("run")
        .arg(format!("--dir={}:/ro:ro", ro.display()))
        .arg(&probe));
    assert_eq!(
        got,
        "read kept\nwrite open: refused\ncreate: refused\nmkdir: refused\nunlink: refused\nrename: refused\n"
    );
    assert_eq!(std::fs::read_to_string(ro.join("f.txt")).unwrap(), "kept\n");
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 1);
}
