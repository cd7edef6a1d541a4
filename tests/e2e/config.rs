//! A function's configuration: the deployer's variables (`env=KEY=VALUE`)
//! in every language, their rules, and where they show.

use crate::harness::*;

/// Prints `GREETING` and `API_URL` as the function sees them.
const READERS: [(&str, &str); 6] = [
    ("c", "#include <stdio.h>\n#include <stdlib.h>\nstatic const char *v(const char *k){ const char *x = getenv(k); return x ? x : \"-\"; }\nint main(void){ printf(\"%s|%s\\n\", v(\"GREETING\"), v(\"API_URL\")); return 0; }\n"),
    ("rust", "fn v(k: &str) -> String { std::env::var(k).unwrap_or_else(|_| \"-\".into()) }\nfn main() { println!(\"{}|{}\", v(\"GREETING\"), v(\"API_URL\")); }\n"),
    ("go", "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc v(k string) string { if x, ok := os.LookupEnv(k); ok { return x }; return \"-\" }\n\nfunc main() { fmt.Printf(\"%s|%s\\n\", v(\"GREETING\"), v(\"API_URL\")) }\n"),
    ("js", "const v = (k) => process.env[k] ?? '-';\nconsole.log(v('GREETING') + '|' + v('API_URL'));\n"),
    ("python", "import os\nv = lambda k: os.environ.get(k, '-')\nprint(v('GREETING') + '|' + v('API_URL'))\n"),
    ("php", "<?php $v = fn($k) => getenv($k) === false ? '-' : getenv($k);\necho $v('GREETING'), '|', $v('API_URL'), \"\\n\";\n"),
];

/// `env=` parameters, URL-encoded: a space, `&`, `=` and non-ASCII survive.
const VARIABLES: &str = "env=GREETING%3Dhello%20w%C3%B6rld&env=API_URL%3Dhttps%3A%2F%2Fapi.example.com%2F%3Fa%3D1%26b%3D2";
const EXPECTED: &str = "hello wörld|https://api.example.com/?a=1&b=2\n";

#[test]
fn variables_reach_every_language_on_both_routes() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    for (lang, code) in READERS {
        let name = format!("vars_{lang}");
        let resp = server.post(
            &format!("/deploy?name={name}&lang={lang}&{VARIABLES}"),
            code,
        );
        assert_eq!(resp.status, 201, "{lang}: {}", resp.body);
        let call = server.post(&format!("/invoke?fn={name}"), "");
        assert_eq!(call.status, 200, "{lang}: {}", call.body);
        assert_eq!(call.json()["output"], EXPECTED, "{lang}");
        let raw = server.post(&format!("/fn/{name}"), "");
        assert_eq!(raw.body, EXPECTED, "{lang} on /fn/");
    }
}

#[test]
fn variables_show_in_listings_and_change_with_an_update() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let (_, py) = READERS[4];
    let first = server.post(&format!("/deploy?name=cfg&lang=python&{VARIABLES}"), py);
    assert_eq!(first.status, 201, "{}", first.body);
    let listed = server.get("/functions").json();
    assert_eq!(listed["functions"][0]["env"]["GREETING"], "hello wörld");
    // An update brings its own variables: here only GREETING.
    let resp = server.request(
        "PUT",
        "/function/cfg?lang=python&env=GREETING%3Dv2",
        py.as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(server.post("/invoke?fn=cfg", "").json()["output"], "v2|-\n");
    let versions = server.get("/function/cfg/versions").json();
    assert_eq!(versions["versions"][0]["env"]["GREETING"], "v2");
    assert_eq!(
        versions["versions"][1]["env"]["API_URL"],
        "https://api.example.com/?a=1&b=2"
    );
    // The platform's own variables cannot be shadowed.
    let resp = server.post("/invoke?fn=cfg", "");
    assert!(resp.json()["request_id"].is_string());
}

#[test]
fn bad_variables_answer_400_naming_the_problem_and_store_nothing() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let (_, py) = READERS[4];
    let many: String = (0..65).map(|i| format!("&env=K{i}%3D1")).collect();
    let big = format!("&env=BIG%3D{}", "x".repeat(17 * 1024));
    let cases: Vec<(String, &str)> = vec![
        ("&env=NOVALUE".into(), "KEY=VALUE"),
        ("&env=1ABC%3Dx".into(), "not a variable name"),
        ("&env=A-B%3Dx".into(), "not a variable name"),
        ("&env=%3Dx".into(), "not a variable name"),
        ("&env=FAAS_REQUEST_ID%3Dforged".into(), "reserved"),
        ("&env=K%3Da%00b".into(), "NUL"),
        ("&env=K%3D1&env=K%3D2".into(), "given twice"),
        (many, "at most 64"),
        (big, "at most 16384"),
    ];
    for (query, message) in &cases {
        let resp = server.post(&format!("/deploy?name=bad&lang=python{query}"), py);
        assert_eq!(resp.status, 400, "{query}: {}", resp.body);
        assert!(resp.body.contains(message), "{query}: {}", resp.body);
    }
    assert!(server.stored_functions().is_empty());
    assert_eq!(server.post("/invoke?fn=bad", "").status, 404);
}

#[test]
fn the_cli_deploys_with_variables() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greet.py");
    std::fs::write(&file, READERS[4].1).unwrap();
    let out = std::process::Command::new(worker_bin().with_file_name("faas"))
        .arg("deploy")
        .arg(&file)
        .args([
            "--env",
            "GREETING=hi there",
            "--env",
            "API_URL=http://x/?q=a&b",
        ])
        .env("FAAS_URL", format!("http://{}", server.addr))
        .env_remove("FAAS_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.post("/invoke?fn=greet", "").json()["output"],
        "hi there|http://x/?q=a&b\n"
    );
}
