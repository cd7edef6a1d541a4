//! The package installer (`faas_server::packages`) against the real
//! registries (PyPI, npm, crates.io; pinned versions), in the real build
//! sandbox as a build uid, and against small registries these tests serve
//! on 127.0.0.1 (an npm package with install scripts, a Go module proxy).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use faas_proto::Lang;
use faas_server::build_sandbox::{BuildSandbox, BuildSandboxConfig, SandboxKind};
use faas_server::packages::{InstallTools, Installer, PackageError, Registries};

use crate::harness::{http_bytes, repo_root, Response, TestServer};

const DEADLINE: Duration = Duration::from_secs(240);

/// A build sandbox of its own (root and build uid) in a temporary directory.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub sandbox: BuildSandbox,
}

static NEXT_UID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    // The build uid must be able to reach its job directories.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let n = NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let uid = 150_000 + (std::process::id() % 1000) * 32 + n;
    let sandbox = BuildSandbox::new(BuildSandboxConfig {
        kind: SandboxKind::Auto,
        bwrap: PathBuf::from("/usr/bin/bwrap"),
        root: dir.path().join("builds"),
        uid,
        memory_bytes: 2048 << 20,
        allow_unconfined: false,
    });
    assert!(sandbox.blocked().is_none(), "{:?}", sandbox.blocked());
    Setup { dir, sandbox }
}

/// The Go toolchain deploys use (`make toolchains` installs it).
fn go_tool() -> Option<(PathBuf, Option<PathBuf>)> {
    let out = Command::new("/usr/local/bin/go")
        .args(["env", "GOROOT"])
        .output()
        .ok()?;
    let root = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    Some((root.join("bin/go"), Some(root)))
}

pub fn installer(registries: Registries) -> Installer {
    Installer {
        tools: InstallTools::detect(go_tool()),
        registries,
    }
}

/// A project directory with `files`.
fn project(s: &Setup, files: &[(&str, &str)]) -> PathBuf {
    let dir = s.dir.path().join(format!(
        "project-{}",
        NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn rejected(r: Result<faas_server::packages::Installed, PackageError>) -> String {
    match r {
        Err(PackageError::Rejected(m)) => m,
        other => panic!("expected a 422 refusal, got {other:?}"),
    }
}

#[test]
fn pip_installs_a_pure_wheel_into_the_project() {
    let s = setup();
    let p = project(&s, &[("requirements.txt", "markdown==3.7\n")]);
    let got = installer(Registries::default())
        .install(Lang::Python, &p, &s.sandbox, DEADLINE)
        .unwrap();
    assert!(got.packages.iter().any(|p| p == "markdown-3.7"), "{got:?}");
    assert!(p.join(".python_packages/markdown/__init__.py").is_file());
    // Nothing compiled on the host's Python (3.11): no __pycache__.
    assert!(!p.join(".python_packages/markdown/__pycache__").exists());
}

#[test]
fn pip_refuses_a_package_with_only_native_wheels() {
    let s = setup();
    let p = project(&s, &[("requirements.txt", "orjson==3.10.7\n")]);
    let msg =
        rejected(installer(Registries::default()).install(Lang::Python, &p, &s.sandbox, DEADLINE));
    assert!(
        msg.starts_with("orjson==3.10.7: no pure-Python wheel"),
        "{msg}"
    );
    assert!(msg.contains("WebAssembly"), "{msg}");
    assert!(!p.join(".python_packages").exists());
}

#[test]
fn hostile_requirements_are_refused_before_pip_runs() {
    let s = setup();
    let inst = installer(Registries::default());
    for line in [
        "-e git+https://github.com/x/y.git#egg=y",
        "--index-url http://127.0.0.1:9/simple",
        "--extra-index-url http://127.0.0.1:9/simple",
        "file:///etc/passwd",
        "markdown @ file:///etc/passwd",
        "--trusted-host 127.0.0.1",
    ] {
        let p = project(&s, &[("requirements.txt", &format!("{line}\n"))]);
        let msg = rejected(inst.install(Lang::Python, &p, &s.sandbox, DEADLINE));
        assert!(msg.contains("line 1") && msg.contains("refused"), "{msg}");
    }
    // The pip cache was never created: no tool ran.
    assert!(!s.dir.path().join("builds/cache").exists());
}

#[test]
fn npm_installs_a_registry_package_and_ignores_the_projects_npmrc() {
    let s = setup();
    let p = project(
        &s,
        &[
            (
                "package.json",
                r#"{"name":"f","dependencies":{"ms":"2.1.3"},"scripts":{"postinstall":"touch root-postinstall-ran"}}"#,
            ),
            // A registry override to loopback: never read.
            (".npmrc", "registry=http://127.0.0.1:9/\n"),
        ],
    );
    let got = installer(Registries::default())
        .install(Lang::Js, &p, &s.sandbox, DEADLINE)
        .unwrap();
    assert_eq!(got.packages, vec!["ms@2.1.3"]);
    let pkg = std::fs::read_to_string(p.join("node_modules/ms/package.json")).unwrap();
    assert!(pkg.contains("\"version\": \"2.1.3\""), "{pkg}");
    assert!(!p.join("root-postinstall-ran").exists());
}

#[test]
fn hostile_package_json_is_refused() {
    let s = setup();
    let inst = installer(Registries::default());
    for spec in [
        "file:../../",
        "git+https://github.com/x/y.git",
        "github:x/y",
        "x/y",
        "http://127.0.0.1:9/x.tgz",
        "link:/etc",
    ] {
        let text = format!(r#"{{"dependencies":{{"evil":"{spec}"}}}}"#);
        let p = project(&s, &[("package.json", &text)]);
        let msg = rejected(inst.install(Lang::Js, &p, &s.sandbox, DEADLINE));
        assert!(msg.contains("evil") && msg.contains("refused"), "{msg}");
        assert!(!p.join("node_modules").exists());
    }
}

/// An npm registry with one package, `scripted@1.0.0`, whose preinstall,
/// install and postinstall scripts would each leave a marker in its
/// directory. Returns the registry URL.
pub fn scripted_registry(work: &Path) -> String {
    let pkg = work.join("scripted/package");
    std::fs::create_dir_all(&pkg).unwrap();
    let manifest = r#"{"name":"scripted","version":"1.0.0","main":"index.js","scripts":{"preinstall":"touch preinstall-ran","install":"touch install-ran","postinstall":"touch postinstall-ran"}}"#;
    std::fs::write(pkg.join("package.json"), manifest).unwrap();
    std::fs::write(pkg.join("index.js"), "module.exports = () => 'scripted';\n").unwrap();
    let tgz = work.join("scripted.tgz");
    let ok = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(work.join("scripted"))
        .arg("package")
        .status()
        .unwrap();
    assert!(ok.success());
    let tarball = std::fs::read(tgz).unwrap();
    let version: serde_json::Value = serde_json::from_str(manifest).unwrap();
    serve_at(move |base| {
        let mut version = version.clone();
        version["dist"] = serde_json::json!({
            "tarball": format!("{base}/scripted/-/scripted-1.0.0.tgz"),
        });
        let packument = serde_json::json!({
            "name": "scripted",
            "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": version},
        });
        HashMap::from([
            ("/scripted".to_string(), packument.to_string().into_bytes()),
            (
                "/scripted/-/scripted-1.0.0.tgz".to_string(),
                tarball.clone(),
            ),
        ])
    })
}

/// An HTTP/1.1 server on 127.0.0.1 answering GETs from the files `make`
/// returns for its base URL (path -> body; 404 otherwise).
pub fn serve_at(mut make: impl FnMut(&str) -> HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let files = Arc::new(make(&base));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let files = files.clone();
            std::thread::spawn(move || answer(stream, &files));
        }
    });
    base
}

fn answer(mut stream: std::net::TcpStream, files: &HashMap<String, Vec<u8>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = match files.get(path) {
        Some(b) => ("200 OK", b.clone()),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

#[test]
fn npm_never_runs_a_packages_install_scripts() {
    let s = setup();
    let registry = scripted_registry(s.dir.path());
    let p = project(
        &s,
        &[("package.json", r#"{"dependencies":{"scripted":"1.0.0"}}"#)],
    );
    let inst = installer(Registries {
        npm_registry: format!("{registry}/"),
        ..Registries::default()
    });
    inst.install(Lang::Js, &p, &s.sandbox, DEADLINE).unwrap();
    let dir = p.join("node_modules/scripted");
    assert!(dir.join("index.js").is_file(), "the package was installed");
    for marker in ["preinstall-ran", "install-ran", "postinstall-ran"] {
        assert!(!dir.join(marker).exists(), "{marker} exists: a script ran");
    }
}

#[test]
fn cargo_vendors_crates_io_dependencies() {
    let s = setup();
    let p = project(
        &s,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"f\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"=1.0.9\"\n",
            ),
            ("src/main.rs", "fn main() { println!(\"{}\", itoa::Buffer::new().format(7)); }\n"),
            // A project's own cargo config (a registry override) is not read.
            (".cargo/config.toml", "[source.crates-io]\nreplace-with = \"evil\"\n[source.evil]\nregistry = \"sparse+http://127.0.0.1:9/\"\n"),
        ],
    );
    let got = installer(Registries::default())
        .install(Lang::Rust, &p, &s.sandbox, DEADLINE)
        .unwrap();
    assert_eq!(got.packages, vec!["itoa =1.0.9"]);
    assert!(p.join("vendor/itoa/Cargo.toml").is_file());
    let lock = std::fs::read_to_string(p.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"itoa\""), "{lock}");
    let config = std::fs::read_to_string(p.join(".cargo/config.toml")).unwrap();
    assert!(config.contains("directory = \"vendor\""), "{config}");
}

#[test]
fn cargo_refuses_the_projects_build_script_and_other_sources() {
    let s = setup();
    let inst = installer(Registries::default());
    let head = "[package]\nname = \"f\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    let p = project(
        &s,
        &[
            (
                "Cargo.toml",
                &format!("{head}[dependencies]\nitoa = \"1\"\n"),
            ),
            ("build.rs", "fn main() {}\n"),
        ],
    );
    let msg = rejected(inst.install(Lang::Rust, &p, &s.sandbox, DEADLINE));
    assert!(msg.contains("build.rs"), "{msg}");
    for deps in [
        "[dependencies]\nx = { git = \"https://github.com/x/y\" }\n",
        "[dependencies]\nx = { path = \"../../etc\" }\n",
        "[patch.crates-io]\nitoa = { path = \"x\" }\n",
    ] {
        let p = project(&s, &[("Cargo.toml", &format!("{head}{deps}"))]);
        let msg = rejected(inst.install(Lang::Rust, &p, &s.sandbox, DEADLINE));
        assert!(msg.contains("refused"), "{msg}");
    }
}

#[test]
fn go_names_the_module_it_cannot_download() {
    let s = setup();
    let p = project(
        &s,
        &[
            (
                "go.mod",
                "module example.com/f\n\ngo 1.21\n\nrequire github.com/nonexistent-faas-test/greet v1.0.0\n",
            ),
            ("main.go", "package main\n\nimport \"github.com/nonexistent-faas-test/greet\"\n\nfunc main() { greet.Hello() }\n"),
        ],
    );
    // The default proxy (proxy.golang.org) is unreachable from here; a
    // closed loopback port stands for it wherever it is reachable.
    let inst = installer(Registries {
        goproxy: "http://127.0.0.1:9".into(),
        ..Registries::default()
    });
    let msg = rejected(inst.install(Lang::Go, &p, &s.sandbox, DEADLINE));
    assert!(
        msg.contains("github.com/nonexistent-faas-test/greet") && msg.contains("GOPROXY"),
        "{msg}"
    );
    assert!(!p.join("vendor").exists());
}

/// A Go module proxy (GOPROXY protocol) serving one module,
/// `example.com/greet v1.0.0`.
pub fn go_proxy(work: &Path) -> String {
    let src = work.join("gozip");
    let root = src.join("example.com/greet@v1.0.0");
    std::fs::create_dir_all(&root).unwrap();
    let gomod = "module example.com/greet\n\ngo 1.21\n";
    std::fs::write(root.join("go.mod"), gomod).unwrap();
    std::fs::write(
        root.join("greet.go"),
        "package greet\n\n// Hello greets.\nfunc Hello(name string) string { return \"hello, \" + name }\n",
    )
    .unwrap();
    let zip = work.join("greet.zip");
    let ok = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile, os\nz = zipfile.ZipFile(sys.argv[1], 'w')\nfor d, _, fs in os.walk(sys.argv[2]):\n    for f in fs:\n        p = os.path.join(d, f)\n        z.write(p, os.path.relpath(p, sys.argv[2]))\nz.close()")
        .arg(&zip)
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success());
    let zip = std::fs::read(zip).unwrap();
    serve_at(move |_| {
        HashMap::from([
            (
                "/example.com/greet/@v/list".to_string(),
                b"v1.0.0\n".to_vec(),
            ),
            (
                "/example.com/greet/@v/v1.0.0.info".to_string(),
                br#"{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}"#.to_vec(),
            ),
            (
                "/example.com/greet/@v/v1.0.0.mod".to_string(),
                gomod.as_bytes().to_vec(),
            ),
            ("/example.com/greet/@v/v1.0.0.zip".to_string(), zip.clone()),
        ])
    })
}

#[test]
fn go_modules_come_through_the_configured_proxy_into_vendor() {
    let s = setup();
    let proxy = go_proxy(s.dir.path());
    let p = project(
        &s,
        &[
            (
                "go.mod",
                "module example.com/f\n\ngo 1.21\n\nrequire example.com/greet v1.0.0\n",
            ),
            ("main.go", "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello(\"go\")) }\n"),
        ],
    );
    let inst = installer(Registries {
        goproxy: proxy,
        gosumdb: "off".into(),
        ..Registries::default()
    });
    let got = inst.install(Lang::Go, &p, &s.sandbox, DEADLINE).unwrap();
    assert_eq!(got.packages, vec!["example.com/greet v1.0.0"]);
    assert!(p.join("vendor/example.com/greet/greet.go").is_file());
    assert!(p.join("vendor/modules.txt").is_file());
    let sum = std::fs::read_to_string(p.join("go.sum")).unwrap();
    assert!(sum.contains("example.com/greet v1.0.0"), "{sum}");
}

// ---- Deploys over HTTP: real server and workers, archives with manifests.

/// `dir` packed as a `.tar.gz`, paths relative to it.
fn pack(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// A `.tar.gz` of `files`.
fn pack_files(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    pack(dir.path())
}

fn deploy(server: &TestServer, name: &str, lang: &str, archive: &[u8]) -> Response {
    let (status, headers, body) = http_bytes(
        &server.addr,
        "POST",
        &format!("/deploy?name={name}&lang={lang}"),
        &[("Content-Type", "application/gzip")],
        archive,
    );
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn example(name: &str) -> Vec<u8> {
    pack(&repo_root().join("examples/projects").join(name))
}

fn output(server: &TestServer, name: &str, payload: &str) -> String {
    let resp = server.post(&format!("/invoke?fn={name}"), payload);
    assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    resp.json()["output"].as_str().unwrap().to_string()
}

/// Every file under the server's function store whose name is `name`.
fn stored_files_named(server: &TestServer, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![server.functions_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() == name {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn a_python_project_imports_markdown_from_pypi() {
    let server = TestServer::start("RR", &[]);
    let resp = deploy(&server, "md", "python", &example("python-packages"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        output(&server, "md", "# Hi\n\n*faas*\n"),
        "<h1>Hi</h1>\n<p><em>faas</em></p>\n"
    );
}

#[test]
fn a_js_project_requires_an_npm_package() {
    let server = TestServer::start("RR", &[]);
    let resp = deploy(&server, "ms", "js", &example("js-packages"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(output(&server, "ms", "3600000"), "1 hour\n");
}

#[test]
fn a_js_project_of_es_modules_imports_an_esm_only_npm_package() {
    let server = TestServer::start("RR", &[]);
    let resp = deploy(&server, "camel", "js", &example("js-esm"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        output(&server, "camel", "hello big world"),
        "{\"camel\":\"helloBigWorld\",\"pascal\":\"HelloBigWorld\",\"words\":3,\"first\":\"hello\"}\n"
    );
}

#[test]
fn a_rust_project_builds_with_a_crates_io_dependency() {
    let server = TestServer::start("RR", &[]);
    let resp = deploy(&server, "sum", "rust", &example("rust-packages"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(output(&server, "sum", "40 2"), "sum: 42\n");
}

#[test]
fn a_requirement_with_only_native_wheels_is_422_naming_it() {
    let server = TestServer::start("RR", &[]);
    let archive = pack_files(&[
        ("main.py", "import orjson\nprint(orjson.dumps(1))\n"),
        ("requirements.txt", "orjson==3.10.7\n"),
    ]);
    let resp = deploy(&server, "native", "python", &archive);
    let msg = resp.assert_error(422);
    assert!(
        msg.contains("orjson==3.10.7") && msg.contains("WebAssembly"),
        "{msg}"
    );
    assert_eq!(server.get("/function/native").status, 404);
}

#[test]
fn hostile_manifests_are_422_and_store_nothing() {
    let server = TestServer::start("RR", &[]);
    let cases: [(&str, &str, &str); 5] = [
        (
            "python",
            "requirements.txt",
            "--index-url http://127.0.0.1:9/simple\nmarkdown==3.7\n",
        ),
        (
            "python",
            "requirements.txt",
            "-e git+https://github.com/x/y.git#egg=y\n",
        ),
        ("python", "requirements.txt", "file:///etc/passwd\n"),
        (
            "js",
            "package.json",
            r#"{"dependencies":{"up":"file:../../"}}"#,
        ),
        (
            "js",
            "package.json",
            r#"{"dependencies":{"g":"git+https://github.com/x/y.git"}}"#,
        ),
    ];
    for (i, (lang, manifest, text)) in cases.iter().enumerate() {
        let entry = if *lang == "python" {
            "main.py"
        } else {
            "index.js"
        };
        let archive = pack_files(&[(entry, "print('x')\n"), (manifest, text)]);
        let name = format!("hostile{i}");
        let resp = deploy(&server, &name, lang, &archive);
        let msg = resp.assert_error(422);
        assert!(msg.contains("refused"), "{text}: {msg}");
        assert_eq!(server.get(&format!("/function/{name}")).status, 404);
    }
}

#[test]
fn an_npm_packages_install_scripts_never_run_at_deploy() {
    let work = tempfile::tempdir().unwrap();
    let registry = scripted_registry(work.path());
    let server = TestServer::start("RR", &["--npm-registry", &format!("{registry}/")]);
    let archive = pack_files(&[
        (
            "package.json",
            r#"{"dependencies":{"scripted":"1.0.0"},"scripts":{"preinstall":"touch root-ran","postinstall":"touch root-ran"}}"#,
        ),
        ("index.js", "console.log(require('scripted')());\n"),
    ]);
    let resp = deploy(&server, "scripted", "js", &archive);
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(output(&server, "scripted", ""), "scripted\n");
    assert!(!stored_files_named(&server, "index.js").is_empty());
    for marker in [
        "preinstall-ran",
        "install-ran",
        "postinstall-ran",
        "root-ran",
    ] {
        assert!(
            stored_files_named(&server, marker).is_empty(),
            "{marker}: a script ran"
        );
    }
}
