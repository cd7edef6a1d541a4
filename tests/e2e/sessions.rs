//! A worker reuses one Wasmer store for successive calls of a function
//! (only the store and its host functions; every call gets a fresh
//! instance and WASI environment). These tests attack that reuse: nothing
//! of one call may reach the next, and the memory the reused store holds
//! stays bounded.

use crate::harness::{http, TestServer};

/// Prints what a previous call could have left (a static counter, a static
/// buffer, fresh heap memory, the raw-route variables), then leaves its own
/// payload everywhere it can. `trap` as payload traps halfway.
const SNOOP: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int counter;
static char kept[64];
int main(void) {
    char payload[64] = {0};
    fread(payload, 1, sizeof payload - 1, stdin);
    counter++;
    char *heap = malloc(64);
    const char *path = getenv("FAAS_HTTP_PATH");
    printf("counter=%d kept=[%s] heap=[%s] path=%s\n", counter, kept, heap, path ? path : "none");
    strcpy(kept, payload);
    strcpy(heap, payload);
    if (strcmp(payload, "trap") == 0) __builtin_trap();
    return 0;
}
"#;

/// Touches 24 MiB of fresh memory (with a fill the compiler cannot know,
/// so the writes are not optimised away), then exits.
const TOUCH: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    size_t n = 24u << 20;
    int fill = getchar();
    char *p = malloc(n);
    if (!p) { puts("no memory"); return 1; }
    memset(p, fill, n);
    long sum = 0;
    for (size_t i = 0; i < n; i += 4096) sum += p[i];
    printf("%ld\n", sum / (long)(n / 4096));
    return 0;
}
"#;

#[test]
fn nothing_of_one_call_reaches_the_next_on_the_same_worker() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("snoop", "c", SNOOP);
    let clean = "counter=1 kept=[] heap=[] path=none\n";
    for payload in ["secret-one", "secret-two", "trap", "after-trap"] {
        let resp = server.post("/invoke?fn=snoop", payload);
        if payload == "trap" {
            resp.assert_error(500);
        } else {
            assert_eq!(resp.status, 200, "{}", resp.body);
        }
        assert_eq!(resp.json()["output"], clean, "after {payload}");
    }
    // The raw route's variables belong to its call only.
    let raw = http(&server.addr, "GET", "/fn/snoop/private/path", b"via-raw");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, "counter=1 kept=[] heap=[] path=/private/path\n");
    let resp = server.post("/invoke?fn=snoop", "x");
    assert_eq!(resp.json()["output"], clean);
    // Many calls in a row (several stores' worth) stay clean.
    for i in 0..150 {
        let resp = server.post("/invoke?fn=snoop", &format!("n{i}"));
        assert_eq!(resp.json()["output"], clean, "call {i}");
    }
    assert_eq!(server.get("/stats").json()["worker_restarts"][0], 0);
}

#[test]
fn memory_held_across_calls_stays_bounded() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("touch", "c", TOUCH);
    let pid = server.get("/stats").json()["worker_pids"][0]
        .as_u64()
        .expect("worker pid");
    let mut peak_kib = 0;
    for i in 0..40 {
        let resp = server.post("/invoke?fn=touch", "\x07");
        assert_eq!(resp.status, 200, "call {i}: {}", resp.body);
        assert_eq!(resp.json()["output"], "7\n");
        peak_kib = peak_kib.max(rss_kib(pid));
    }
    // 40 calls each touched 24 MiB (960 MiB in all): a store that kept
    // them would be far above this.
    assert!(
        peak_kib < 160 * 1024,
        "worker RSS peaked at {} MiB",
        peak_kib / 1024
    );
}

fn rss_kib(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("worker alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
