//! The build is hostile code too: deploys that try to read host files,
//! other functions' sources and the Server's tokens through the compilers,
//! compile bombs, and compilers that write outside their directory. Every
//! attack must fail to cross, and the server must stay healthy.

use std::path::Path;
use std::time::SystemTime;

use crate::harness::{example, http_bytes, TestServer};

/// What a deploy (and, when it deploys, an invoke) answered, as text.
fn deploy_and_run(server: &TestServer, name: &str, lang: &str, code: &str) -> (u16, String) {
    deploy_and_run_with(server, name, lang, code, &[])
}

fn deploy_and_run_with(
    server: &TestServer,
    name: &str,
    lang: &str,
    code: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let path = format!("/deploy?name={name}&lang={lang}");
    let (status, _, body) = http_bytes(&server.addr, "POST", &path, headers, code.as_bytes());
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if status == 201 {
        let path = format!("/invoke?fn={name}");
        let (_, _, out) = http_bytes(&server.addr, "POST", &path, headers, b"");
        text.push_str(&String::from_utf8_lossy(&out));
    }
    (status, text)
}

/// The server still deploys and runs a hello after an attack.
fn assert_healthy(server: &TestServer, name: &str) {
    server.deploy(name, "c", &example("hello.c"));
    let resp = server.post(&format!("/invoke?fn={name}"), "ok");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.json()["output"].as_str().unwrap().ends_with("ok"));
}

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn compilers_in_bubblewrap_cannot_read_host_files() {
    let server = TestServer::start("RR", &["--workers", "1", "--build-sandbox", "bwrap"]);
    assert!(server.log_text().contains("confined by Bubblewrap"));
    host_files_stay_out_of_reach(&server);
}

#[test]
fn compilers_under_landlock_cannot_read_host_files() {
    let server = TestServer::start("RR", &["--workers", "1", "--build-sandbox", "landlock"]);
    assert!(server.log_text().contains("confined by Landlock"));
    host_files_stay_out_of_reach(&server);
}

fn host_files_stay_out_of_reach(server: &TestServer) {
    let shadow = host_file("/etc/shadow");
    let shadow_root = shadow.lines().next().expect("a line in /etc/shadow");
    let hostname = host_file("/etc/hostname");
    let hostname = hostname.trim();
    assert!(!hostname.is_empty());
    let attacks: [(&str, &str, String, &str); 5] = [
        (
            "embed",
            "c",
            "#include <stdio.h>\nstatic const char d[] = {\n#embed \"/etc/shadow\"\n, 0};\nint main(void) { fputs(d, stdout); return 0; }\n".into(),
            shadow_root,
        ),
        (
            "incbin",
            "c",
            incbin_program("/etc/hostname"),
            hostname,
        ),
        (
            "includestr",
            "rust",
            "fn main() { print!(\"{}\", include_str!(\"/etc/passwd\")); }\n".into(),
            "root:x:0:0",
        ),
        (
            "include",
            "c",
            "#include \"/etc/passwd\"\nint main(void) { return 0; }\n".into(),
            "root:",
        ),
        (
            "embedbytes",
            "rust",
            "fn main() { print!(\"{}\", String::from_utf8_lossy(include_bytes!(\"/etc/shadow\"))); }\n".into(),
            shadow_root,
        ),
    ];
    for (name, lang, code, secret) in attacks {
        let (status, text) = deploy_and_run(server, name, lang, &code);
        assert_eq!(
            status, 422,
            "{name}: the file must not exist for the compiler: {text}"
        );
        assert!(!text.contains(secret), "{name} leaked {secret:?}: {text}");
        assert!(
            !text.contains("root:"),
            "{name}: the answer quotes a host file: {text}"
        );
    }
    // The same mechanisms work on the function's own files: the attacks
    // fail because the host's files are not there, not because they are
    // written wrong.
    let own = deploy_and_run(server, "ownincbin", "c", &incbin_program("code.c"));
    assert_eq!(own.0, 201, "{}", own.1);
    assert!(own.1.contains(".incbin"), "{}", own.1);
    assert_healthy(server, "after_files");
}

/// A C function printing the bytes of `path`, pulled in by the assembler.
fn incbin_program(path: &str) -> String {
    format!(
        "#include <stdio.h>\n\
         __asm__(\".section .rodata.blob,\\\"\\\",@\\n.globl blob\\nblob:\\n.incbin \\\"{path}\\\"\\n.int8 0\\n.size blob, 4096\\n\");\n\
         extern const char blob[];\n\
         int main(void) {{ fputs(blob, stdout); return 0; }}\n"
    )
}

#[test]
fn a_build_cannot_read_another_functions_source() {
    for sandbox in ["bwrap", "landlock"] {
        let server = TestServer::start("RR", &["--workers", "1", "--build-sandbox", sandbox]);
        another_functions_source_stays_out_of_reach(&server);
    }
}

fn another_functions_source_stays_out_of_reach(server: &TestServer) {
    let marker = "VICTIM_MARKER_4711";
    let victim = server.deploy(
        "victim",
        "c",
        &format!("#include <stdio.h>\nint main(void) {{ puts(\"{marker}\"); return 0; }}\n"),
    );
    let absolute = server.functions_dir().join(&victim).join("code.c");
    assert!(absolute.is_file());
    for (name, path) in [
        ("abs", absolute.display().to_string()),
        ("rel", format!("../{victim}/code.c")),
        ("relup", format!("../../functions/{victim}/code.c")),
    ] {
        let code = format!("fn main() {{ print!(\"{{}}\", include_str!(\"{path}\")); }}\n");
        let (status, text) = deploy_and_run(server, name, "rust", &code);
        assert_eq!(status, 422, "{name}: {text}");
        assert!(!text.contains(marker), "{name} read the victim: {text}");
    }
}

#[test]
fn compilers_see_no_token_of_the_server() {
    for sandbox in ["bwrap", "landlock"] {
        tokens_stay_out_of_reach(sandbox);
    }
}

fn tokens_stay_out_of_reach(sandbox: &str) {
    let api = "api-token-0123456789abcdef";
    let invoke = "invoke-token-fedcba9876543210";
    let server = TestServer::start_with_env(
        "RR",
        &[
            "--workers",
            "1",
            "--invoke-token",
            invoke,
            "--build-sandbox",
            sandbox,
        ],
        &[("FAAS_API_TOKEN", api)],
    );
    let pid = server.pid();
    let auth_api = format!("Bearer {api}");
    let auth_invoke = format!("Bearer {invoke}");
    let run = |name: &str, code: &str| {
        let path = format!("/deploy?name={name}&lang=rust");
        let (status, _, body) = http_bytes(
            &server.addr,
            "POST",
            &path,
            &[("Authorization", &auth_api)],
            code.as_bytes(),
        );
        let mut text = String::from_utf8_lossy(&body).into_owned();
        if status == 201 {
            let (s, _, out) = http_bytes(
                &server.addr,
                "POST",
                &format!("/invoke?fn={name}"),
                &[("Authorization", &auth_invoke)],
                b"",
            );
            assert_eq!(s, 200, "{}", String::from_utf8_lossy(&out));
            text.push_str(&String::from_utf8_lossy(&out));
        }
        (status, text)
    };
    let (status, text) = run(
        "optenv",
        "fn main() { println!(\"api={:?} invoke={:?} path={:?}\", option_env!(\"FAAS_API_TOKEN\"), option_env!(\"FAAS_INVOKE_TOKEN\"), option_env!(\"PATH\")); }\n",
    );
    assert_eq!(status, 201, "{text}");
    assert!(
        text.contains("api=None invoke=None"),
        "the compiler's environment is cleared: {text}"
    );
    for (name, file) in [
        ("cmdline", format!("/proc/{pid}/cmdline")),
        ("environ", format!("/proc/{pid}/environ")),
        ("pid1env", "/proc/1/environ".to_string()),
        ("selfenv", "/proc/self/environ".to_string()),
        ("parentenv", "/proc/self/../1/environ".to_string()),
    ] {
        let code = format!(
            "fn main() {{ print!(\"{{}}\", String::from_utf8_lossy(include_bytes!(\"{file}\"))); }}\n"
        );
        let (_, text) = run(name, &code);
        assert!(!text.contains(api), "{name} leaked the API token: {text}");
        assert!(
            !text.contains(invoke),
            "{name} leaked the invoke token: {text}"
        );
    }
    // The server's /proc is out of reach (another PID namespace, or a
    // Landlock rule).
    let code =
        format!("fn main() {{ print!(\"{{}}\", include_str!(\"/proc/{pid}/cmdline\")); }}\n");
    let (status, text) = run("cmdline2", &code);
    assert_eq!(status, 422, "{text}");
}

#[test]
fn compile_bombs_stop_at_the_build_limits() {
    let server = TestServer::start("RR", &["--workers", "1", "--compile-jobs", "1"]);
    let macro_bomb = "#define A \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n\
        #define B A A A A A A A A A A\n#define C B B B B B B B B B B\n\
        #define D C C C C C C C C C C\n#define E D D D D D D D D D D\n\
        #define F E E E E E E E E E E\n#define G F F F F F F F F F F\n\
        #define H G G G G G G G G G G\n#define I H H H H H H H H H H\n\
        const char *s = I;\nint main(void) { return s[0]; }\n";
    let bombs = [
        (
            "devzero",
            "rust",
            "static Z: &[u8] = include_bytes!(\"/dev/zero\");\nfn main() { println!(\"{}\", Z.len()); }\n",
        ),
        ("macros", "c", macro_bomb),
        (
            "bigstatic",
            "rust",
            "static BIG: [u8; 1 << 29] = [1; 1 << 29];\nfn main() { let i = std::env::args().count(); println!(\"{}\", BIG[i]); }\n",
        ),
    ];
    for (name, lang, code) in bombs {
        let resp = server.post(&format!("/deploy?name={name}&lang={lang}"), code);
        assert!(
            resp.status == 422 || resp.status == 500,
            "{name} must be refused: {} {}",
            resp.status,
            resp.body
        );
        assert_eq!(server.get("/health").status, 200);
        assert!(
            !server
                .stored_functions()
                .iter()
                .any(|f| f.starts_with(name)),
            "{name} stored nothing"
        );
    }
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert_healthy(&server, "after_bombs");
}

#[test]
fn a_crashing_compiler_leaves_nothing_in_the_hosts_tmp() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let started = SystemTime::now();
    let before = reproducers_since(Path::new("/tmp"), started);
    let resp = server.post(
        "/deploy?name=crash&lang=c",
        "#pragma clang __debug crash\nint main(void) { return 0; }\n",
    );
    assert_eq!(resp.status, 422, "{}", resp.body);
    let after = reproducers_since(Path::new("/tmp"), started);
    assert_eq!(
        before, after,
        "the compiler wrote crash reproducers into the host's /tmp"
    );
    assert_healthy(&server, "after_crash");
}

/// Files in `dir` named like clang's reproducers (`code-*.c`, `code-*.sh`)
/// changed since `since`.
fn reproducers_since(dir: &Path, since: SystemTime) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("code-"))
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

#[test]
fn without_a_sandbox_builds_are_refused_unless_the_operator_allows_them() {
    let no_bwrap = [("FAAS_BWRAP", "/nonexistent/bwrap")];
    // No bubblewrap: Landlock confines the builds.
    let server = TestServer::start_with_env("RR", &["--workers", "1"], &no_bwrap);
    assert!(
        server.log_text().contains("using Landlock"),
        "{}",
        server.log_text()
    );
    let resp = server.post(
        "/deploy?name=inc&lang=c",
        "#include \"/etc/passwd\"\nint main(void) { return 0; }\n",
    );
    assert!(!resp.assert_error(422).contains("root:"));
    assert_healthy(&server, "landlocked");

    // Neither (bubblewrap asked for, and missing): refused, naming the cause.
    let server = TestServer::start_with_env(
        "RR",
        &["--workers", "1", "--build-sandbox", "bwrap"],
        &no_bwrap,
    );
    for (lang, file) in [("c", "hello.c"), ("rust", "hello.rs"), ("php", "hello.php")] {
        let resp = server.post(
            &format!("/deploy?name=x_{lang}&lang={lang}"),
            &example(file),
        );
        let e = resp.assert_error(503);
        assert!(e.contains("--allow-unconfined-build"), "{e}");
        assert!(e.contains("/nonexistent/bwrap"), "{e}");
    }
    // Interpreted in WebAssembly: no host compiler, still deployable.
    server.deploy("js_ok", "js", &example("hello.js"));

    let server = TestServer::start_with_env(
        "RR",
        &[
            "--workers",
            "1",
            "--build-sandbox",
            "bwrap",
            "--allow-unconfined-build",
        ],
        &no_bwrap,
    );
    assert!(
        server.log_text().contains("WITHOUT a sandbox"),
        "the operator is warned at start: {}",
        server.log_text()
    );
    assert_healthy(&server, "unconfined");
}

#[test]
fn token_files_replace_tokens_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-token");
    std::fs::write(&file, "secret-from-a-file\n").unwrap();
    let server = TestServer::start(
        "RR",
        &["--workers", "1", "--api-token-file", file.to_str().unwrap()],
    );
    assert_eq!(server.get("/functions").status, 401);
    let (status, _, body) = http_bytes(
        &server.addr,
        "GET",
        "/functions",
        &[("Authorization", "Bearer secret-from-a-file")],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = std::process::Command::new(crate::harness::server_bin())
        .args(["RR", "--port", "0", "--api-token-file"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one non-empty line"));
}
