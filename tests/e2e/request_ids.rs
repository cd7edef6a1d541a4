//! `FAAS_REQUEST_ID` is the request's id, the one the answer's
//! `X-Request-Id` carries: the client's when it sends a sane one, else the
//! gateway's own, in every language and on both `/invoke` and `/fn/`.

use crate::harness::{http_bytes, TestServer};

/// Prints `FAAS_REQUEST_ID` (or `-`), in every language.
const PRINT_ID: [(&str, &str); 6] = [
    ("c", "#include <stdio.h>\n#include <stdlib.h>\nint main(void){ const char *v = getenv(\"FAAS_REQUEST_ID\"); printf(\"%s\\n\", v ? v : \"-\"); return 0; }\n"),
    ("rust", "fn main() { println!(\"{}\", std::env::var(\"FAAS_REQUEST_ID\").unwrap_or_else(|_| \"-\".into())); }\n"),
    ("go", "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tv, ok := os.LookupEnv(\"FAAS_REQUEST_ID\")\n\tif !ok {\n\t\tv = \"-\"\n\t}\n\tfmt.Println(v)\n}\n"),
    ("js", "console.log(process.env.FAAS_REQUEST_ID ?? '-');\n"),
    ("python", "import os\nprint(os.environ.get('FAAS_REQUEST_ID', '-'))\n"),
    ("php", "<?php $v = getenv('FAAS_REQUEST_ID'); echo $v === false ? '-' : $v, \"\\n\";\n"),
];

fn header(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

/// Calls `name` on `route` (with the client's `id`, if any) and returns the
/// id the answer carries and the one the function printed.
fn call(server: &TestServer, name: &str, route: &str, id: Option<&str>) -> (String, String) {
    let path = match route {
        "invoke" => format!("/invoke?fn={name}"),
        _ => format!("/fn/{name}"),
    };
    let sent: Vec<(&str, &str)> = id.map(|id| ("X-Request-Id", id)).into_iter().collect();
    let (status, headers, body) = http_bytes(&server.addr, "POST", &path, &sent, b"");
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{name} {route}: {body}");
    let answered = header(&headers, "x-request-id");
    let printed = match route {
        "invoke" => {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["request_id"], answered.as_str(), "{name}: {body}");
            json["output"].as_str().unwrap().to_string()
        }
        _ => body,
    };
    (answered, printed.trim_end().to_string())
}

/// Every function in `langs` sees each call's own id, the client's or the
/// gateway's, on both routes. Calls of one function follow each other on
/// one worker, so most of them run on an instance built before they came.
fn assert_ids_reach(server: &TestServer, langs: &[&str]) {
    for lang in langs {
        let name = format!("id_{lang}");
        for route in ["invoke", "fn"] {
            for n in 0..3 {
                let client = format!("trace-{lang}-{route}.{n}");
                let (answered, printed) = call(server, &name, route, Some(&client));
                assert_eq!(answered, client, "{lang} {route}");
                assert_eq!(printed, client, "{lang} {route}: the client's id");
                let (answered, printed) = call(server, &name, route, None);
                assert_ne!(answered, client, "{lang} {route}: a fresh id");
                assert_eq!(printed, answered, "{lang} {route}: the gateway's id");
            }
            // An id the gateway does not accept is replaced, for the
            // function too.
            let (answered, printed) = call(server, &name, route, Some("no spaces allowed"));
            assert_ne!(answered, "no spaces allowed");
            assert_eq!(printed, answered, "{lang} {route}");
        }
    }
}

#[test]
fn every_language_sees_the_request_id_on_both_routes() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    for (lang, code) in PRINT_ID {
        server.deploy(&format!("id_{lang}"), lang, code);
    }
    assert_ids_reach(&server, &["c", "rust", "go", "js", "python", "php"]);
}

#[test]
fn native_js_and_python_see_the_request_id_too() {
    let server = TestServer::start("RR", &["--workers", "1", "--native-js", "--native-python"]);
    for (lang, code) in PRINT_ID {
        if matches!(lang, "js" | "python") {
            server.deploy(&format!("id_{lang}"), lang, code);
        }
    }
    assert_ids_reach(&server, &["js", "python"]);
}
