//! WASI completeness: a private, capped, in-memory /tmp per call; host
//! calls bounded by the deadline; preview1 only; POSIX errnos; file-system
//! calls that answer as wasmtime's (the same C program run by us, in
//! `worker run --dir` and in a deployed function's /tmp, and by `wasmtime
//! run` prints the same); `worker run --dir` mappings and their errors.

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

/// Runs `cmd` and returns its stdout; fails loudly if it cannot run (a
/// missing wasmtime names `make toolchains`) or exits non-zero.
fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (run `make toolchains`, which installs wasmtime): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Everything under `dir`, sorted: each path with its type, a symlink's
/// target, a file's bytes.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(format!("{name} -> {}", target.display()));
            } else if meta.is_dir() {
                out.push(format!("{name}/"));
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push(format!("{name} = {}", String::from_utf8_lossy(&bytes)));
            }
        }
    }
    out.sort();
    out
}

fn fs_suite(dir: &std::path::Path) -> std::path::PathBuf {
    let wasm = dir.join("fs_suite.wasm");
    compile_fixture("fs_suite.c", &wasm);
    wasm
}

/// The same directories, empty, for us and for wasmtime.
fn fresh_dirs(root: &std::path::Path, names: &[&str]) -> Vec<std::path::PathBuf> {
    names
        .iter()
        .map(|name| {
            let dir = root.join(name);
            std::fs::create_dir(&dir).unwrap();
            dir
        })
        .collect()
}

#[test]
fn worker_run_dir_behaves_like_wasmtime() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = fs_suite(tmp.path());
    let [ours, theirs] = &fresh_dirs(tmp.path(), &["ours", "theirs"])[..] else {
        unreachable!()
    };
    let got = run_ok(
        std::process::Command::new(crate::harness::worker_bin())
            .arg("run")
            .arg(format!("--dir={}:/data", ours.display()))
            .arg(&wasm)
            .arg("/data"),
    );
    let want = run_ok(
        std::process::Command::new("wasmtime")
            .arg("run")
            .arg("--dir")
            .arg(format!("{}::/data", theirs.display()))
            .arg(&wasm)
            .arg("/data"),
    );
    assert_eq!(got, want);
    for line in [
        "rmdir non-empty                  ENOTEMPTY",
        "open dir O_TRUNC                 EISDIR",
        "rename file over dir             EISDIR",
        "one at a time, same order        15 yes",
        "unlink dangling                  ok",
    ] {
        assert!(got.contains(line), "{line}:\n{got}");
    }
    // What the guest did is on the host, as wasmtime left it.
    assert_eq!(tree(ours), tree(theirs));

    // HOST:GUEST:ro reads, and refuses every change.
    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("f.txt"), "kept\n").unwrap();
    let probe = tmp.path().join("ro_probe.wasm");
    compile_fixture("ro_probe.c", &probe);
    let got = run_ok(
        std::process::Command::new(crate::harness::worker_bin())
            .arg("run")
            .arg(format!("--dir={}:/ro:ro", ro.display()))
            .arg(&probe),
    );
    assert_eq!(
        got,
        "read kept\nwrite open: refused\ncreate: refused\nmkdir: refused\nunlink: refused\nrename: refused\n"
    );
    assert_eq!(tree(&ro), ["f.txt = kept\n"]);
}

#[test]
fn worker_run_maps_a_directory_at_the_guests_root_as_fd_3() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = fs_suite(tmp.path());
    let dirs = fresh_dirs(tmp.path(), &["root", "data", "wt_root", "wt_data"]);
    // Both forms: HOST:/ (the one that failed with "file exists") and
    // wasmtime's HOST::GUEST.
    let got = run_ok(
        std::process::Command::new(crate::harness::worker_bin())
            .arg("run")
            .arg(format!("--dir={}:/", dirs[0].display()))
            .arg(format!("--dir={}::/data", dirs[1].display()))
            .arg(&wasm)
            .args(["/", "preopens"]),
    );
    let want = run_ok(
        std::process::Command::new("wasmtime")
            .arg("run")
            .arg(format!("--dir={}::/", dirs[2].display()))
            .arg(format!("--dir={}::/data", dirs[3].display()))
            .arg(&wasm)
            .args(["/", "preopens"]),
    );
    assert_eq!(got, want);
    // The first --dir is fd 3, the next fd 4; files are created through
    // them; a closed pre-open is gone.
    for line in [
        "prestat 3                        ok /",
        "prestat 4                        ok /data",
        "prestat 5                        EBADF",
        "create in fd 3                   ok",
        "mkdirat 3                        ok",
        "close fd 3                       ok",
        "fstat 3                          EBADF",
        "open through the closed one      EBADF",
        "fd of a file created in 4        6",
    ] {
        assert!(got.contains(line), "{line}:\n{got}");
    }
    assert_eq!(tree(&dirs[0]), tree(&dirs[2]));
    assert_eq!(tree(&dirs[1]), tree(&dirs[3]));
    assert_eq!(
        tree(&dirs[0]),
        ["dir_in3/", "dir_in3/moved.txt = three", "hard3.txt = three"]
    );
}

#[test]
fn worker_run_refuses_bad_mappings_with_one_line_and_status_2() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = fs_suite(tmp.path());
    let here = tmp.path().display().to_string();
    let missing = tmp.path().join("missing").display().to_string();
    let cases: [(&[String], String); 4] = [
        (
            &[format!("{here}:/data:rw")],
            format!("worker run: --dir {here}:/data:rw: unknown mode 'rw' (the only mode is ro)"),
        ),
        (
            &[format!("{missing}::/data")],
            format!("worker run: --dir {missing}::/data: cannot use {missing}: "),
        ),
        (
            &[format!("{here}::/data"), format!("{here}:/data/")],
            format!(
                "worker run: --dir {here}:/data/: /data is already mapped by --dir {here}::/data"
            ),
        ),
        (
            &[format!("{here}::/"), format!("{here}::/")],
            format!("worker run: --dir {here}::/: / is already mapped by --dir {here}::/"),
        ),
    ];
    for (dirs, want) in cases {
        let out = std::process::Command::new(crate::harness::worker_bin())
            .arg("run")
            .args(dirs.iter().map(|d| format!("--dir={d}")))
            .arg(&wasm)
            .arg("/data")
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{dirs:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{dirs:?}: {stderr}");
        assert!(stderr.starts_with(&want), "{dirs:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{dirs:?}: the module ran");
    }
}

#[test]
fn a_functions_tmp_behaves_like_a_wasmtime_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = fs_suite(tmp.path());
    let dirs = fresh_dirs(tmp.path(), &["root", "tmp"]);
    // A deployed function has / and /tmp pre-opened: wasmtime with the
    // same two.
    let mut wasmtime = std::process::Command::new("wasmtime");
    wasmtime
        .arg("run")
        .arg(format!("--dir={}::/", dirs[0].display()))
        .arg(format!("--dir={}::/tmp", dirs[1].display()))
        .arg(&wasm)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = wasmtime.spawn().unwrap_or_else(|e| {
        panic!("cannot run wasmtime (run `make toolchains`, which installs it): {e}")
    });
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"/tmp").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = String::from_utf8(out.stdout).unwrap();

    let server = TestServer::start("RR", &["--workers", "1"]);
    let source =
        std::fs::read_to_string(crate::harness::repo_root().join("tests/fixtures/fs_suite.c"))
            .unwrap();
    server.deploy("fs_suite", "c", &source);
    // Twice: each call starts from an empty /tmp.
    for call in 1..=2 {
        let resp = server.post("/invoke?fn=fs_suite", "/tmp");
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], want.as_str(), "call {call}");
    }
    assert!(
        want.contains("escape with ..                   EPERM"),
        "{want}"
    );
    assert!(
        want.contains("link a dir                       EPERM"),
        "{want}"
    );
}
