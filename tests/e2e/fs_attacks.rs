//! Red-team attacks on a function's file system: calls whose cost the
//! function controls (huge directories, deep trees, symlink chains that
//! climb them) must each answer with a result or an errno well inside the
//! call's deadline, the worker serving on (same process); and a deploy
//! whose compiler prints without end answers its compile error, cut.

use crate::harness::{example, TestServer};

fn fixture(name: &str) -> String {
    let path = crate::harness::repo_root()
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lists /tmp: a later call must find it empty.
const LIST_TMP: &str = r#"#include <dirent.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    DIR *d = opendir("/tmp");
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    printf("%d entries\n", n);
    return 0;
}
"#;

/// Runs `name` (deployed), asserts 200 and its output, then that the one
/// worker is the same process and a next call sees an empty /tmp.
fn assert_answers_and_serves_on(server: &TestServer, name: &str, want: &str) {
    let pid = server.get("/stats").json()["worker_pids"][0].clone();
    let resp = server.post(&format!("/invoke?fn={name}"), "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["output"], want, "{}", resp.body);
    let resp = server.post("/invoke?fn=listtmp", "");
    assert_eq!(resp.json()["output"], "0 entries\n", "{}", resp.body);
    let stats = server.get("/stats").json();
    assert_eq!(stats["worker_pids"][0], pid);
    assert_eq!(stats["worker_restarts"][0], 0);
}

#[test]
fn a_wide_directory_and_a_deep_tree_cost_each_call_little() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("listtmp", "c", LIST_TMP);
    server.deploy("fscost", "c", &fixture("fs_cost.c"));
    // Before the fix, the stat through the wide directory took a minute
    // and the opens in the deep tree seconds each: a 504 and a killed
    // worker.
    assert_answers_and_serves_on(
        &server,
        "fscost",
        "wide: ENOSPC after 100000+ dirs\n\
         wide stat: nlink ok\n\
         deep: 20000 levels\n\
         open 4000 deep: ok\n\
         open 8000 deep: ENAMETOOLONG\n\
         climb from 4000 deep: ok\n",
    );
}

#[test]
fn a_symlink_chain_climbing_a_deep_tree_ends_with_eloop() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("listtmp", "c", LIST_TMP);
    server.deploy("climb", "c", &fixture("symlink_climb.c"));
    assert_answers_and_serves_on(
        &server,
        "climb",
        "l0: ok\nl39: ELOOP\nl39 dir: ELOOP\ncycle: ELOOP\n",
    );
}

#[test]
fn a_compiler_that_prints_without_end_gives_a_short_compile_error() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    // Every level of the self-inclusion prints the 50 warnings again with
    // its include stack: about 3 MB of stderr, cut at 1 MiB by the Server,
    // then to the message's 16 KiB.
    let mut bomb = String::new();
    for i in 0..50 {
        bomb.push_str(&format!(
            "#warning line {i} of a compiler-output bomb: every level of the self-inclusion below prints this again\n"
        ));
    }
    bomb.push_str("#include __FILE__\n");
    let e = server
        .post("/deploy?name=bomb&lang=c", &bomb)
        .assert_error(422);
    assert!(e.contains("compiler-output bomb"), "{e}");
    assert!(e.ends_with("[... message truncated]"), "{e}");
    assert!(e.len() < 20 * 1024, "{}", e.len());
    // The Server serves on.
    server.deploy("ok", "c", &example("hello.c"));
    assert_eq!(server.post("/invoke?fn=ok", "").status, 200);
    assert!(!server
        .stored_functions()
        .iter()
        .any(|f| f.starts_with("bomb")));
}
