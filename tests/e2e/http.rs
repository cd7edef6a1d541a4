//! HTTP-native functions: any bytes in and out of `POST /invoke`, and the
//! raw route `/fn/NAME[/REST]` that serves a function as an endpoint.

use base64::Engine as _;

use crate::harness::{example, http_bytes, TestServer};

/// Copies stdin to stdout unchanged, in every language.
const ECHOES: [(&str, &str); 6] = [
    ("c", "#include <stdio.h>\nint main(void){ char b[4096]; size_t n; while ((n = fread(b, 1, sizeof b, stdin)) > 0) fwrite(b, 1, n, stdout); return 0; }\n"),
    ("rust", "use std::io::{Read, Write};\nfn main() { let mut v = Vec::new(); std::io::stdin().read_to_end(&mut v).unwrap(); std::io::stdout().write_all(&v).unwrap(); }\n"),
    ("go", "package main\n\nimport (\n\t\"io\"\n\t\"os\"\n)\n\nfunc main() { io.Copy(os.Stdout, os.Stdin) }\n"),
    ("js", "process.stdout.write(require('fs').readFileSync(0));\n"),
    ("python", "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read())\n"),
    ("php", "<?php fwrite(STDOUT, stream_get_contents(STDIN));\n"),
];

/// Prints the request as the function sees it: method, path, query, one
/// header, and whether Authorization arrived.
const ENVS: [(&str, &str); 6] = [
    ("c", "#include <stdio.h>\n#include <stdlib.h>\nstatic const char *v(const char *k){ const char *x = getenv(k); return x ? x : \"-\"; }\nint main(void){ printf(\"%s %s %s %s %s\\n\", v(\"FAAS_HTTP_METHOD\"), v(\"FAAS_HTTP_PATH\"), v(\"FAAS_HTTP_QUERY\"), v(\"FAAS_HTTP_HEADER_X_CUSTOM\"), v(\"FAAS_HTTP_HEADER_AUTHORIZATION\")); return 0; }\n"),
    ("rust", "fn v(k: &str) -> String { std::env::var(k).unwrap_or_else(|_| \"-\".into()) }\nfn main() { println!(\"{} {} {} {} {}\", v(\"FAAS_HTTP_METHOD\"), v(\"FAAS_HTTP_PATH\"), v(\"FAAS_HTTP_QUERY\"), v(\"FAAS_HTTP_HEADER_X_CUSTOM\"), v(\"FAAS_HTTP_HEADER_AUTHORIZATION\")); }\n"),
    ("go", "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc v(k string) string { if x, ok := os.LookupEnv(k); ok { return x }; return \"-\" }\n\nfunc main() { fmt.Println(v(\"FAAS_HTTP_METHOD\"), v(\"FAAS_HTTP_PATH\"), v(\"FAAS_HTTP_QUERY\"), v(\"FAAS_HTTP_HEADER_X_CUSTOM\"), v(\"FAAS_HTTP_HEADER_AUTHORIZATION\")) }\n"),
    ("js", "const v = (k) => process.env[k] ?? '-';\nconsole.log([v('FAAS_HTTP_METHOD'), v('FAAS_HTTP_PATH'), v('FAAS_HTTP_QUERY'), v('FAAS_HTTP_HEADER_X_CUSTOM'), v('FAAS_HTTP_HEADER_AUTHORIZATION')].join(' '));\n"),
    ("python", "import os\nv = lambda k: os.environ.get(k, '-')\nprint(v('FAAS_HTTP_METHOD'), v('FAAS_HTTP_PATH'), v('FAAS_HTTP_QUERY'), v('FAAS_HTTP_HEADER_X_CUSTOM'), v('FAAS_HTTP_HEADER_AUTHORIZATION'))\n"),
    ("php", "<?php $v = fn($k) => getenv($k) === false ? '-' : getenv($k);\necho implode(' ', [$v('FAAS_HTTP_METHOD'), $v('FAAS_HTTP_PATH'), $v('FAAS_HTTP_QUERY'), $v('FAAS_HTTP_HEADER_X_CUSTOM'), $v('FAAS_HTTP_HEADER_AUTHORIZATION')]), \"\\n\";\n"),
];

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_byte_round_trips_through_both_routes_in_every_language() {
    let server = TestServer::start("RR", &[]);
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    for (lang, code) in ECHOES {
        let name = format!("echo_{lang}");
        server.deploy(&name, lang, code);
        // POST /invoke: not UTF-8, so the answer carries output_base64.
        let (status, _, body) = http_bytes(
            &server.addr,
            "POST",
            &format!("/invoke?fn={name}"),
            &[],
            &all,
        );
        assert_eq!(status, 200, "{lang}: {}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json.get("output").is_none(), "{lang}: {json}");
        let output = base64::engine::general_purpose::STANDARD
            .decode(json["output_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(output, all, "{lang}: /invoke");
        // The raw route: exactly the bytes, typed as bytes.
        let (status, headers, body) =
            http_bytes(&server.addr, "POST", &format!("/fn/{name}"), &[], &all);
        assert_eq!(status, 200, "{lang}");
        assert_eq!(body, all, "{lang}: /fn");
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(header(&headers, "x-exit-code"), Some("0"));
        assert!(header(&headers, "x-worker-id").is_some());
        assert!(header(&headers, "x-duration-ms").is_some());
        assert!(header(&headers, "x-request-id").is_some());
        // Text stays text.
        let (_, headers, body) = http_bytes(
            &server.addr,
            "POST",
            &format!("/fn/{name}"),
            &[],
            "héllo".as_bytes(),
        );
        assert_eq!(body, "héllo".as_bytes());
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
}

#[test]
fn the_request_reaches_the_function_in_every_language() {
    let server = TestServer::start("RR", &[]);
    for (lang, code) in ENVS {
        server.deploy(&format!("env_{lang}"), lang, code);
        let resp = server.post(
            &format!("/deploy?name=auth_{lang}&lang={lang}&pass_auth=1"),
            code,
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    let headers = [
        ("X-Custom", "hello"),
        ("Authorization", "Bearer s3cret"),
        ("Cookie", "a=b"),
    ];
    for (lang, _) in ENVS {
        // The path is passed as received, `..` and `%00` included.
        let (status, _, body) = http_bytes(
            &server.addr,
            "PUT",
            &format!("/fn/env_{lang}/a/../b%00?x=1&y"),
            &headers,
            b"",
        );
        assert_eq!(status, 200, "{lang}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            String::from_utf8_lossy(&body),
            "PUT /a/../b%00 x=1&y hello -\n",
            "{lang}"
        );
        let (_, _, body) = http_bytes(
            &server.addr,
            "GET",
            &format!("/fn/auth_{lang}"),
            &headers,
            b"",
        );
        assert_eq!(
            String::from_utf8_lossy(&body),
            "GET /  hello Bearer s3cret\n",
            "{lang}"
        );
    }
}

#[test]
fn content_types_statuses_and_bounds_of_the_raw_route() {
    let server = TestServer::start("RR", &["--workers", "2", "--max-body-bytes", "1000"]);
    server.deploy("page", "html", &example("hello.html"));
    let (status, headers, body) = http_bytes(&server.addr, "GET", "/fn/page", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(body, example("hello.html").as_bytes());

    let resp = server.post(
        "/deploy?name=api&lang=python&content_type=application/json",
        "print('{\"ok\": 1}')\n",
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let (_, headers, body) = http_bytes(&server.addr, "GET", "/fn/api", &[], b"");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(body, b"{\"ok\": 1}\n");
    server
        .post(
            "/deploy?name=badct&lang=c&content_type=no%0Aslash",
            &example("hello.c"),
        )
        .assert_error(400);

    // A function that fails: 500, its stdout as the body, never its stderr.
    server.deploy(
        "fails",
        "c",
        "#include <stdio.h>\nint main(void){ printf(\"partial\"); fputs(\"secret detail\", stderr); return 3; }\n",
    );
    let (status, headers, body) = http_bytes(&server.addr, "POST", "/fn/fails", &[], b"");
    assert_eq!(status, 500);
    assert_eq!(body, b"partial");
    assert_eq!(header(&headers, "x-exit-code"), Some("3"));

    // Non-UTF-8 stdout on the JSON route comes as base64, stderr too.
    server.deploy(
        "ff",
        "c",
        "#include <stdio.h>\nint main(void){ putchar(0xff); fputc(0xfe, stderr); return 0; }\n",
    );
    let json = server.post("/invoke?fn=ff", "").json();
    assert_eq!(json["output_base64"], "/w==");
    assert_eq!(json["stderr_base64"], "/g==");
    assert!(json["request_id"].is_null() || json["request_id"].is_string());

    // Errors stay JSON: unknown function, body over the cap.
    let (status, _, body) = http_bytes(&server.addr, "GET", "/fn/nope/x", &[], b"");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("\"ok\":false"));
    let (status, _, _) = http_bytes(&server.addr, "POST", "/fn/page", &[], &[b'x'; 2000]);
    assert_eq!(status, 413);
    server
        .post("/invoke?fn=page", &"x".repeat(2000))
        .assert_error(413);

    // A header flood: the bound applies and the call still runs.
    server.deploy(
        "count",
        "c",
        "#include <stdio.h>\n#include <string.h>\nextern char **environ;\nint main(void){ int n = 0; for (char **e = environ; *e; e++) if (!strncmp(*e, \"FAAS_HTTP_HEADER_\", 17)) n++; printf(\"%d\\n\", n); return 0; }\n",
    );
    let flood: Vec<(String, String)> = (0..90)
        .map(|i| (format!("X-H-{i}"), "v".repeat(100)))
        .collect();
    let flood: Vec<(&str, &str)> = flood
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = http_bytes(&server.addr, "GET", "/fn/count", &flood, b"");
    assert_eq!(status, 200);
    let n: usize = String::from_utf8_lossy(&body).trim().parse().unwrap();
    assert!((1..=64).contains(&n), "{n}");

    // Every answer carries a request id; a sane client id is kept.
    let (_, headers, _) = http_bytes(
        &server.addr,
        "GET",
        "/health",
        &[("X-Request-Id", "trace-42")],
        b"",
    );
    assert_eq!(header(&headers, "x-request-id"), Some("trace-42"));
}
