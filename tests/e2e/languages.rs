//! Every seed language, deployed and invoked over HTTP: the examples, compile
//! and syntax errors, failing functions, and what confines native functions.

use crate::harness::{example, TestServer};

/// (lang, hello file) for every language.
const HELLOS: [(&str, &str); 7] = [
    ("c", "hello.c"),
    ("rust", "hello.rs"),
    ("go", "hello.go"),
    ("js", "hello.js"),
    ("python", "hello.py"),
    ("php", "hello.php"),
    ("html", "hello.html"),
];

#[test]
fn every_hello_greets_and_echoes_its_payload() {
    let server = TestServer::start("RR", &[]);
    for (lang, file) in HELLOS {
        let name = format!("hello_{lang}");
        let resp = server.post(&format!("/deploy?name={name}&lang={lang}"), &example(file));
        assert_eq!(resp.status, 201, "{lang}: {}", resp.body);
        let body = resp.json();
        assert_eq!(body["lang"], lang);
        // JS and Python run on interpreters compiled to WebAssembly.
        let runtime = match lang {
            "php" => "native",
            "html" => "static",
            _ => "wasm",
        };
        assert_eq!(body["runtime"], runtime, "{lang}");
        assert_eq!(body["wasm"], runtime == "wasm", "{lang}");

        let payload = format!("payload for {lang}: \u{e9}t\u{e9}\nsecond line");
        let resp = server.post(&format!("/invoke?fn={name}"), &payload);
        assert_eq!(resp.status, 200, "{lang}: {}", resp.body);
        let out = resp.json();
        let expected = if lang == "html" {
            example(file)
        } else {
            format!("Hello from FAAS!\n{payload}")
        };
        assert_eq!(out["output"], expected.as_str(), "{lang}");
        assert_eq!(out["exit_code"], 0, "{lang}");
        assert_eq!(server.get(&format!("/function/{name}")).body, example(file));
    }
}

#[test]
fn compile_errors_answer_422_with_the_compilers_message_and_store_nothing() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let broken = [
        ("c", "int main(void) { return nope; }\n", "nope"),
        (
            "rust",
            "fn main() { let x: u32 = \"text\"; }\n",
            "mismatched types",
        ),
        (
            "go",
            "package main\nfunc main() { undefinedCall() }\n",
            "undefined",
        ),
        ("js", "function (\n", "SyntaxError"),
        ("python", "def broken(:\n    pass\n", "SyntaxError"),
        ("php", "<?php echo 'a' \n", "syntax error"),
    ];
    for (lang, code, needle) in broken {
        let resp = server.post(&format!("/deploy?name=bad_{lang}&lang={lang}"), code);
        resp.assert_error(422);
        let details = resp.json()["details"].as_str().unwrap().to_string();
        assert!(details.contains(needle), "{lang}: {details}");
        server
            .get(&format!("/function/bad_{lang}"))
            .assert_error(404);
    }
    let stored = server.stored_functions();
    assert!(stored.is_empty(), "{stored:?}");
}

#[test]
fn native_functions_that_fail_answer_500_with_their_stderr() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let failing = [
        ("js", "console.log('before'); console.error('js went wrong'); process.exit(4);\n", 4),
        ("python", "import sys\nprint('before')\nprint('python went wrong', file=sys.stderr)\nsys.exit(5)\n", 5),
        ("php", "<?php\necho \"before\\n\";\nfwrite(STDERR, \"php went wrong\\n\");\nexit(6);\n", 6),
    ];
    for (lang, code, exit_code) in failing {
        server.deploy(&format!("fail_{lang}"), lang, code);
        let resp = server.post(&format!("/invoke?fn=fail_{lang}"), "");
        resp.assert_error(500);
        let body = resp.json();
        assert_eq!(body["exit_code"], exit_code, "{lang}");
        assert_eq!(body["output"], "before\n", "{lang}");
        assert!(
            body["stderr"]
                .as_str()
                .unwrap()
                .contains(&format!("{lang} went wrong")),
            "{lang}: {body}"
        );
    }
    // An uncaught exception is a failure too, with its traceback.
    server.deploy("raises", "python", "raise ValueError('boom')\n");
    let resp = server.post("/invoke?fn=raises", "");
    resp.assert_error(500);
    assert!(resp.json()["stderr"]
        .as_str()
        .unwrap()
        .contains("ValueError: boom"));
}

#[test]
fn wasm_functions_see_no_host_files_or_variables() {
    let secret = "wasm-secret-value";
    let server =
        TestServer::start_with_env("RR", &["--workers", "1"], &[("FAAS_TEST_SECRET", secret)]);
    let code = r#"#include <stdio.h>
#include <stdlib.h>
extern char **environ;
int main(void) {
    FILE *f = fopen("/etc/passwd", "r");
    printf("passwd:%s\n", f ? "open" : "denied");
    FILE *w = fopen("/tmp/escape.txt", "w");
    printf("write:%s\n", w ? "open" : "denied");
    for (char **e = environ; *e; e++) printf("env:%s\n", *e);
    return 0;
}
"#;
    server.deploy("wasmprobe", "c", code);
    let out = server.post("/invoke?fn=wasmprobe", "").json();
    let text = out["output"].as_str().unwrap();
    assert!(text.contains("passwd:denied"), "{text}");
    // /tmp is the call's own, in memory: nothing reaches the host's.
    assert!(text.contains("write:open"), "{text}");
    assert!(!std::path::Path::new("/tmp/escape.txt").exists());
    assert!(!text.contains(secret), "{text}");
}

#[test]
fn a_slow_go_build_stalls_neither_invocations_nor_other_deploys() {
    let server = TestServer::start("RR", &[]);
    server.deploy("quick", "c", &example("hello.c"));
    // The first Go deploy of a fresh server builds Go's runtime: seconds.
    let addr = server.addr.clone();
    let go = std::thread::spawn(move || {
        crate::harness::http(
            &addr,
            "POST",
            "/deploy?name=slowgo&lang=go",
            example("hello.go").as_bytes(),
        )
    });
    crate::harness::wait_for_log(
        &server,
        "deploy slowgo (go): building",
        std::time::Duration::from_secs(20),
    );
    // Calls and other deploys are answered while the Go build runs: each
    // one is counted only if the build had not finished when it returned.
    let mut calls_during_build = 0;
    let mut page_during_build = false;
    for call in 0..200 {
        if go.is_finished() {
            break;
        }
        let resp = server.post("/invoke?fn=quick", "during");
        assert_eq!(resp.status, 200, "{}", resp.body);
        calls_during_build += usize::from(!go.is_finished());
        if call == 0 {
            server.deploy("page", "html", "<p>quick</p>\n");
            page_during_build = !go.is_finished();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let resp = go.join().unwrap();
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert!(page_during_build, "the html deploy waited for the Go build");
    assert!(
        calls_during_build >= 5,
        "only {calls_during_build} calls were answered during the Go build"
    );
    assert_eq!(
        server.post("/invoke?fn=slowgo", "go!").json()["output"],
        "Hello from FAAS!\ngo!"
    );
}

#[test]
fn a_missing_toolchain_answers_503_naming_what_to_install() {
    let server = TestServer::start_with_env(
        "RR",
        &["--workers", "1"],
        &[
            ("FAAS_GO", "/nonexistent/go"),
            ("FAAS_PHP", "/nonexistent/php"),
        ],
    );
    for (lang, file) in [("go", "hello.go"), ("php", "hello.php")] {
        let resp = server.post(
            &format!("/deploy?name=x_{lang}&lang={lang}"),
            &example(file),
        );
        let e = resp.assert_error(503);
        assert!(e.contains("make toolchains"), "{e}");
        assert!(e.contains(lang), "{e}");
    }
    let log = server.log_text();
    assert!(log.contains("go: not available"), "{log}");
    assert!(
        log.contains("c: /"),
        "the toolchain summary is logged at start: {log}"
    );
    // The others still work.
    server.deploy("still_c", "c", &example("hello.c"));
}

#[test]
fn the_realistic_examples_compute_their_answers() {
    let server = TestServer::start("RR", &[]);
    let cases = [
        ("primes.c", "c", r#"{"n": 30}"#, "{\"n\":30,\"count\":10,\"primes\":[2,3,5,7,11,13,17,19,23,29]}\n"),
        ("primes.c", "c", r#"{"n": 1000000}"#, "{\"n\":1000000,\"count\":78498,\"largest\":999983}\n"),
        ("fibonacci.rs", "rust", r#"{"n": 186}"#, "{\"n\":186,\"fib\":332825110087067562321196029789634457848}\n"),
        ("fibonacci.php", "php", r#"{"n": 92}"#, "{\"n\":92,\"fib\":7540113804746346429}\n"),
        (
            "wordcount.go",
            "go",
            "{\"text\": \"The cat and the dog.\\nThe cat!\"}",
            "{\"words\":7,\"lines\":2,\"top\":[{\"word\":\"the\",\"count\":3},{\"word\":\"cat\",\"count\":2},{\"word\":\"and\",\"count\":1}]}\n",
        ),
        (
            "wordcount.py",
            "python",
            "{\"text\": \"The cat and the dog.\\nThe cat!\"}",
            "{\"words\":7,\"lines\":2,\"top\":[{\"word\":\"the\",\"count\":3},{\"word\":\"cat\",\"count\":2},{\"word\":\"and\",\"count\":1}]}\n",
        ),
        ("stats.js", "js", r#"{"values":[1,2,3,4]}"#, "{\"count\":4,\"sum\":10,\"mean\":2.5,\"min\":1,\"max\":4,\"median\":2.5}\n"),
    ];
    for (file, lang, payload, expected) in cases {
        let name = file.replace('.', "_");
        if server.get(&format!("/function/{name}")).status == 404 {
            server.deploy(&name, lang, &example(file));
        }
        let resp = server.post(&format!("/invoke?fn={name}"), payload);
        assert_eq!(resp.status, 200, "{file}: {}", resp.body);
        assert_eq!(resp.json()["output"], expected, "{file}");
    }
    // Bad input: a JSON error on stderr and a 500.
    let resp = server.post("/invoke?fn=fibonacci_rs", r#"{"n": 187}"#);
    resp.assert_error(500);
    assert_eq!(
        resp.json()["stderr"],
        "{\"error\":\"n must be an integer from 0 to 186\"}\n"
    );
}

#[test]
fn the_same_program_in_six_languages_gives_the_same_answer() {
    let server = TestServer::start("RR", &[]);
    let langs = [
        ("queens.c", "c"),
        ("queens.rs", "rust"),
        ("queens.go", "go"),
        ("queens.js", "js"),
        ("queens.py", "python"),
        ("queens.php", "php"),
    ];
    for (file, lang) in langs {
        let name = format!("queens_{lang}");
        server.deploy(&name, lang, &example(file));
        for (n, solutions) in [("8", 92), ("6", 4), ("", 92)] {
            let resp = server.post(&format!("/invoke?fn={name}"), n);
            assert_eq!(resp.status, 200, "{lang}: {}", resp.body);
            let shown = if n.is_empty() { "8" } else { n };
            assert_eq!(
                resp.json()["output"],
                format!("N={shown} solutions={solutions}\n"),
                "{lang} n={n:?}"
            );
        }
        let resp = server.post(&format!("/invoke?fn={name}"), "99");
        resp.assert_error(500);
        assert!(
            resp.json()["stderr"]
                .as_str()
                .unwrap()
                .contains("N must be an integer from 1 to 14"),
            "{lang}"
        );
    }
}

/// numpy's matrix product (through its compiled extension and OpenBLAS,
/// both inside the interpreter) on a small and a 100×100 matrix.
const PY_NUMPY: &str = r#"
import json
import numpy as np
n = 100
a = np.arange(n * n, dtype=np.int64).reshape(n, n) % 7
small = np.arange(6).reshape(2, 3) @ np.arange(6).reshape(3, 2)
x = np.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0]))
print(json.dumps({'small': small.tolist(), 'trace': int((a @ a.T).trace()),
    'solve': [round(v, 9) for v in x.tolist()]}))
"#;

/// pandas reads the payload as CSV and groups it.
const PY_PANDAS: &str = r#"
import io, json, sys
import pandas as pd
df = pd.read_csv(io.StringIO(sys.stdin.read()))
by = df.groupby('city')['amount'].sum()
print(json.dumps({'rows': len(df), 'by_city': {k: int(v) for k, v in by.items()},
    'mean': float(df['amount'].mean())}))
"#;

#[test]
fn python_functions_have_numpy_and_pandas() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    // Importing pandas takes seconds in WebAssembly (its Python parts are
    // read from the standard library zip and run at each call).
    let limits = "timeout_ms=60000&max_memory_mb=256";
    // `runtime=python-scientific` names the same interpreter as `python`.
    let numpy = server.deploy_with(
        "numpy",
        "python",
        PY_NUMPY,
        &format!("{limits}&runtime=python-scientific"),
    );
    let resp = server.post(&format!("/invoke?fn={numpy}"), "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let out: serde_json::Value =
        serde_json::from_str(resp.json()["output"].as_str().unwrap()).unwrap();
    // trace(A·Aᵀ) is the sum of the squares of A's entries.
    let trace: i64 = (0..100i64)
        .flat_map(|i| (0..100i64).map(move |j| ((100 * i + j) % 7).pow(2)))
        .sum();
    assert_eq!(
        out,
        serde_json::json!({"small": [[10, 13], [28, 40]], "trace": trace, "solve": [2.0, 3.0]})
    );

    let pandas = server.deploy_with("pandas", "python", PY_PANDAS, limits);
    let resp = server.post(
        &format!("/invoke?fn={pandas}"),
        "city,amount\nparis,3\nrome,4\nparis,5\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.json()["output"],
        "{\"rows\": 3, \"by_city\": {\"paris\": 8, \"rome\": 4}, \"mean\": 4.0}\n"
    );
}

#[test]
fn a_runtime_a_language_does_not_have_is_refused_by_name() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    for (lang, runtime) in [("python", "python2"), ("js", "node"), ("c", "python")] {
        let resp = server.post(
            &format!("/deploy?name=rt_{lang}&lang={lang}&runtime={runtime}"),
            "print(1)",
        );
        assert_eq!(resp.status, 400, "{lang} {runtime}: {}", resp.body);
        let error = resp.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(runtime) && error.contains(lang), "{error}");
    }
    // Nothing was stored.
    assert!(!server.get("/functions").body.contains("rt_"));
    // A language's own name is its runtime.
    let id = server.deploy_with("rt_py", "python", "print('ok')", "runtime=python");
    let resp = server.post(&format!("/invoke?fn={id}"), "");
    assert_eq!(resp.json()["output"], "ok\n", "{}", resp.body);
}
