//! Prebuilt WebAssembly modules and multi-file projects (faas issue 24):
//! every language's example project deployed as an archive and run, the
//! archive read back, hostile archives refused with nothing stored, and a
//! project's tree read-only and closed.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{http_bytes, repo_root, Response, TestServer};

/// `examples/projects/NAME` packed as a `.tar.gz` (what `faas deploy DIR`
/// sends), paths relative to the project's root.
fn pack_example(name: &str) -> Vec<u8> {
    pack_dir(&repo_root().join("examples/projects").join(name))
}

fn pack_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).unwrap();
    gzip(&builder.into_inner().unwrap())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The same tree as a `.zip` (directories and files, made on Unix).
fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut entries: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((host, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&host).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{rel}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                entries.push((format!("{name}/"), Vec::new(), 0o040_755));
                stack.push((entry.path(), format!("{name}/")));
            } else {
                entries.push((name, std::fs::read(entry.path()).unwrap(), 0o100_644));
            }
        }
    }
    zip_of(&entries)
}

/// A zip of (name, data, Unix mode) entries, deflated, as `zip -r` writes.
fn zip_of(entries: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, mode) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        let packed = enc.finish().unwrap();
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes());
            v.extend(0u16.to_le_bytes());
            v.extend(8u16.to_le_bytes());
            v.extend([0, 0, 0, 0]);
            v.extend(crc.sum().to_le_bytes());
            v.extend((packed.len() as u32).to_le_bytes());
            v.extend((data.len() as u32).to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes());
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(&packed);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(((3u16 << 8) | 20).to_le_bytes());
        common(&mut central);
        central.extend([0; 6]);
        central.extend((mode << 16).to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0, 0]);
    out
}

/// A raw tar entry (the tar crate's setters refuse what attacks need).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    b.append(&header, data).unwrap();
}

fn tar_gz(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    gzip(&b.into_inner().unwrap())
}

fn send(server: &TestServer, method: &str, path: &str, ct: &str, body: &[u8]) -> Response {
    let (status, headers, body) =
        http_bytes(&server.addr, method, path, &[("Content-Type", ct)], body);
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn deploy_archive(server: &TestServer, name: &str, lang: &str, ct: &str, body: &[u8]) -> Response {
    send(
        server,
        "POST",
        &format!("/deploy?name={name}&lang={lang}"),
        ct,
        body,
    )
}

fn invoke(server: &TestServer, name: &str, payload: &str) -> String {
    let resp = server.post(&format!("/invoke?fn={name}"), payload);
    assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    resp.json()["output"].as_str().unwrap().to_string()
}

/// A C program compiled by the test with the machine's WASI clang.
fn clang_module(source: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.c"), source).unwrap();
    let clang = [
        "/opt/wasi-sdk/bin/clang",
        "/usr/bin/clang-19",
        "/usr/bin/clang",
    ]
    .into_iter()
    .find(|c| Path::new(c).exists())
    .expect("a clang with wasm32-wasi (make toolchains)");
    let out = dir.path().join("m.wasm");
    let status = std::process::Command::new(clang)
        .args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(&out)
        .arg(dir.path().join("m.c"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// A hand-written module: `imports` (module, name, kind byte + type),
/// and a `_start` export unless `start` is false.
fn module(import: Option<(&str, &str, &[u8])>, start: bool) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    let section = |m: &mut Vec<u8>, id: u8, body: Vec<u8>| {
        m.push(id);
        m.push(body.len() as u8);
        m.extend(body);
    };
    section(&mut m, 1, vec![1, 0x60, 0, 0]); // one type: () -> ()
    if let Some((module, name, desc)) = import {
        let mut body = vec![1, module.len() as u8];
        body.extend(module.as_bytes());
        body.push(name.len() as u8);
        body.extend(name.as_bytes());
        body.extend(desc);
        section(&mut m, 2, body);
    }
    section(&mut m, 3, vec![1, 0]); // one function of type 0
    let funcs = usize::from(matches!(import, Some((_, _, [0, ..])))) as u8;
    if start {
        let mut body = vec![1, 6];
        body.extend(b"_start");
        body.extend([0, funcs]);
        section(&mut m, 7, body);
    }
    section(&mut m, 10, vec![1, 2, 0, 0x0b]); // its body: end
    m
}

#[test]
fn a_prebuilt_module_deploys_runs_and_reads_back_and_bad_ones_are_422() {
    let server = TestServer::start("RR", &[]);
    let wasm = clang_module(
        "#include <stdio.h>\nint main(void){int c,n=0;while((c=getchar())!=EOF)n++;printf(\"prebuilt %d\\n\",n);return 0;}\n",
    );
    let resp = deploy_archive(&server, "pre", "wasm", "application/wasm", &wasm);
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.json()["lang"], "wasm");
    assert_eq!(resp.json()["runtime"], "wasm");
    assert_eq!(invoke(&server, "pre", "four"), "prebuilt 4\n");
    let (status, headers, body) = http_bytes(&server.addr, "GET", "/function/pre", &[], b"");
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/wasm"));
    assert_eq!(body, wasm, "the module as deployed");

    let proc_exit: &[u8] = &[0, 0];
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "not wasm",
            b"hello, not a module".to_vec(),
            "not a WebAssembly module",
        ),
        (
            "non-WASI import",
            module(Some(("env", "system", proc_exit)), true),
            "env::system",
        ),
        (
            "imported memory",
            module(Some(("wasi_snapshot_preview1", "memory", &[2, 0, 1])), true),
            "wasi_snapshot_preview1::memory",
        ),
        ("no _start", module(None, false), "_start"),
    ];
    for (what, bytes, says) in cases {
        let resp = deploy_archive(&server, "bad", "wasm", "application/wasm", &bytes);
        let error = resp.assert_error(422);
        assert!(error.contains(says), "{what}: {error}");
    }
    // A valid module of our own making deploys: the refusals above are for
    // what they say, not for being hand-written.
    assert_eq!(
        deploy_archive(
            &server,
            "tiny",
            "wasm",
            "application/wasm",
            &module(None, true)
        )
        .status,
        201
    );
    assert!(!server.get("/functions").body.contains("\"bad\""));
}

#[test]
fn compiled_projects_build_from_several_files() {
    let server = TestServer::start("RR", &[]);
    let gz = "application/gzip";
    // C: main.c, stats.c and stats.h compiled together.
    let resp = deploy_archive(&server, "cproj", "c", gz, &pack_example("c"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "cproj", "one two\nthree\n"),
        "{\"bytes\":14,\"words\":3,\"lines\":2}\n"
    );
    // Rust: a Cargo crate with modules in src/.
    let resp = deploy_archive(&server, "rsproj", "rust", gz, &pack_example("rust"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "rsproj", "b a b c b a"),
        "[[\"b\",3],[\"a\",2],[\"c\",1]]\n"
    );
    // Go: a package of its own and a vendored module.
    let resp = deploy_archive(&server, "goproj", "go", gz, &pack_example("go"));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(invoke(&server, "goproj", "a loud world"), "Hello, WORLD!\n");

    // Refused with a clear 422, nothing stored.
    let dir = tempfile::tempdir().unwrap();
    let write = |files: &[(&str, &str)]| -> Vec<u8> {
        let root = dir.path().join(format!("p{}", rand_suffix()));
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        pack_dir(&root)
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "rust",
            write(&[
                ("Cargo.toml", "[package]\nname='x'\nversion='0.1.0'\n"),
                ("build.rs", "fn main(){}"),
                ("src/main.rs", "fn main(){}"),
            ]),
            "build.rs",
        ),
        (
            "rust",
            write(&[
                (
                    "Cargo.toml",
                    "[package]\nname='x'\nversion='0.1.0'\n[dependencies]\nserde={git='https://github.com/serde-rs/serde'}\n",
                ),
                ("src/main.rs", "fn main(){}"),
            ]),
            "`git` is refused",
        ),
        (
            "go",
            write(&[
                ("go.mod", "module m\n\ngo 1.21\n"),
                (
                    "main.go",
                    "package main\n\nimport \"C\"\n\nfunc main() {}\n",
                ),
            ]),
            "cgo",
        ),
        (
            "go",
            write(&[
                (
                    "go.mod",
                    "module m\n\ngo 1.21\n\nrequire example.com/missing v1.2.3\n",
                ),
                ("main.go", "package main\n\nfunc main() {}\n"),
            ]),
            "example.com/missing",
        ),
        (
            "c",
            write(&[("main.c", "int main(void){return undefined_fn();}\n")]),
            "undefined_fn",
        ),
    ];
    for (lang, bytes, says) in cases {
        let resp = deploy_archive(&server, "refused", lang, gz, &bytes);
        let error = resp.assert_error(422);
        let all = format!("{error} {}", resp.json()["details"]);
        assert!(all.contains(says), "{lang}: {all}");
    }
    assert!(!server.get("/functions").body.contains("refused"));
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn interpreted_projects_import_their_modules_as_tar_gz_and_zip() {
    let server = TestServer::start("RR", &[]);
    let resp = deploy_archive(
        &server,
        "jsproj",
        "js",
        "application/gzip",
        &pack_example("js"),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "jsproj", "hello big world"),
        "{\"title\":\"Hello Big World\",\"words\":3}\n"
    );
    // Python, as a zip.
    let zip = zip_dir(&repo_root().join("examples/projects/python"));
    let resp = deploy_archive(&server, "pyproj", "python", "application/zip", &zip);
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "pyproj", "The  cat SAW the\ncat"),
        "{\"words\": 5, \"unique\": 3, \"longest\": \"the\"}\n"
    );
    let resp = deploy_archive(
        &server,
        "phpproj",
        "php",
        "application/gzip",
        &pack_example("php"),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "phpproj", "Hello, Big World!"),
        "{\"slug\":\"hello-big-world\",\"length\":15}\n"
    );

    // Declared packages that cannot be installed (native wheels only):
    // 422 naming them (tests/e2e/packages.rs has the rest).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.py"), "print(1)\n").unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "orjson==3.10.7\n").unwrap();
    let resp = deploy_archive(
        &server,
        "needs",
        "python",
        "application/gzip",
        &pack_dir(dir.path()),
    );
    assert!(resp.assert_error(422).contains("orjson==3.10.7"));
    // An entry file that is not there: 400 naming it.
    let resp = send(
        &server,
        "POST",
        "/deploy?name=noentry&lang=python&entry=app/run.py",
        "application/gzip",
        &pack_example("python"),
    );
    assert!(resp.assert_error(400).contains("app/run.py"));
    let resp = deploy_archive(
        &server,
        "noentry",
        "c",
        "application/gzip",
        &pack_example("python"),
    );
    assert!(resp.assert_error(400).contains("main.c"));
    // entry= names another file.
    let resp = send(
        &server,
        "POST",
        "/deploy?name=other&lang=python&entry=textkit/clean.py",
        "application/gzip",
        &pack_example("python"),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(invoke(&server, "other", ""), "");
}

/// Writes `files` (path, contents) under `dir`, making directories.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A project of ES modules, as Node runs it: relative imports, a package's
/// conditional "exports" (its `import` target, a subpath), a CommonJS file
/// and a CommonJS package imported as their `module.exports`, builtins,
/// JSON, `import.meta`, top-level await and `import()`, also from CommonJS.
const ESM_PROJECT: &[(&str, &str)] = &[
    ("package.json", r#"{"main": "index.mjs"}"#),
    (
        "index.mjs",
        r#"import { greet } from './lib/greet.js';
import fs, { readFileSync } from 'node:fs';
import path from 'path';
import old, { twice } from './lib/old.cjs';
import data from './data.json';
import esmOnly from 'esm-only';
import { sub } from 'esm-only/sub';
import cjsPkg from 'cjs-pkg';
const input = readFileSync(0, 'utf8').trim();
await new Promise((r) => setTimeout(r, 5));
const dynamic = await import('./lib/greet.js');
const fromCjs = await old.later();
console.log(JSON.stringify([greet(input), twice(21), old.twice === twice, data.n, esmOnly(), sub,
  cjsPkg.name, typeof fs.readFileSync, path.basename(import.meta.url), import.meta.dirname,
  import.meta.filename, dynamic.greet('again'), fromCjs]));
"#,
    ),
    ("lib/package.json", r#"{"type": "module"}"#),
    ("lib/greet.js", "export function greet(n) { return `hello ${n}`; }\n"),
    ("lib/old.cjs", "exports.twice = (x) => x * 2;\nexports.later = () => import('./lib/greet.js').then((m) => m.greet('from cjs'));\n"),
    ("data.json", r#"{"n": 7}"#),
    (
        "node_modules/esm-only/package.json",
        r#"{"type": "module", "exports": {".": {"require": "./dist/index.cjs", "import": "./dist/index.js"}, "./sub": "./dist/sub.js", "./escape": "./../../../lib/greet.js"}}"#,
    ),
    ("node_modules/esm-only/dist/index.js", "export default () => 'esm default';\n"),
    ("node_modules/esm-only/dist/index.cjs", "module.exports = () => 'the require target';\n"),
    ("node_modules/esm-only/dist/sub.js", "export const sub = 'subpath';\n"),
    ("node_modules/esm-only/dist/hidden.js", "export const hidden = 1;\n"),
    ("node_modules/cjs-pkg/package.json", r#"{"main": "main.js"}"#),
    ("node_modules/cjs-pkg/main.js", "module.exports = { name: 'cjs-pkg' };\n"),
];

#[test]
fn a_project_of_es_modules_imports_files_packages_commonjs_and_builtins() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), ESM_PROJECT);
    let resp = deploy_archive(
        &server,
        "esm",
        "js",
        "application/gzip",
        &pack_dir(dir.path()),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.json()["entry"], "index.mjs", "{}", resp.body);
    let out: serde_json::Value = serde_json::from_str(&invoke(&server, "esm", "world")).unwrap();
    assert_eq!(
        out,
        serde_json::json!([
            "hello world",
            42,
            true,
            7,
            "esm default",
            "subpath",
            "cjs-pkg",
            "function",
            "index.mjs",
            "/faas/app",
            "/faas/app/index.mjs",
            "hello again",
            "hello from cjs"
        ])
    );

    // What a package does not export, or exports outside itself, is not
    // importable; neither is a file that is not there. The call fails
    // with the reason and the next call runs as before.
    for (i, (import, reason)) in [
        ("esm-only/dist/hidden.js", "not defined by \"exports\""),
        ("esm-only/escape", "not defined by \"exports\""),
        ("./missing.js", "Cannot find module './missing.js'"),
        ("no-such-package", "Cannot find module 'no-such-package'"),
    ]
    .into_iter()
    .enumerate()
    {
        let code = format!("import x from '{import}';\nconsole.log('imported', x);\n");
        write_tree(dir.path(), &[("index.mjs", &code)]);
        let name = format!("esm_unresolved_{i}");
        let resp = deploy_archive(
            &server,
            &name,
            "js",
            "application/gzip",
            &pack_dir(dir.path()),
        );
        assert_eq!(resp.status, 201, "{import}: {}", resp.body);
        let resp = server.post(&format!("/invoke?fn={name}"), "");
        assert_eq!(resp.status, 500, "{import}: {}", resp.body);
        let stderr = resp.json()["stderr"].as_str().unwrap().to_string();
        assert!(stderr.contains(reason), "{import}: {stderr}");
        assert_eq!(resp.json()["output"], "", "{import}");
    }
    assert_eq!(invoke(&server, "esm", "again").lines().count(), 1);

    // One file with import statements is an ES module too (Node's syntax
    // detection), and so is one with only a top-level await.
    server.deploy(
        "esm_one",
        "js",
        "import { basename } from 'path';\nimport os from 'os';\nconsole.log(basename('/a/b.txt'), typeof os.platform);\n",
    );
    assert_eq!(invoke(&server, "esm_one", ""), "b.txt function\n");
    server.deploy(
        "tla_one",
        "js",
        "const v = await new Promise((r) => setTimeout(() => r(5), 1));\nconsole.log('awaited', v);\n",
    );
    assert_eq!(invoke(&server, "tla_one", ""), "awaited 5\n");
    // An error thrown by a module names its file and line; a syntax error
    // in an ES module is refused at deploy, with its line.
    server.deploy(
        "esm_throw",
        "js",
        "import fs from 'fs';\nconst a = 1;\nthrow new Error('boom ' + a);\n",
    );
    let resp = server.post("/invoke?fn=esm_throw", "");
    assert_eq!(resp.status, 500, "{}", resp.body);
    let stderr = resp.json()["stderr"].as_str().unwrap().to_string();
    assert!(stderr.contains("Error: boom 1"), "{stderr}");
    assert!(stderr.contains("/faas/code.js:3"), "{stderr}");
    let resp = server.post(
        "/deploy?name=esm_bad&lang=js",
        "import fs from 'fs';\nexport const x = ;\n",
    );
    let error = resp.assert_error(422);
    assert!(resp.body.contains("code.js:2"), "{error}: {}", resp.body);
    assert_eq!(server.get("/function/esm_bad").status, 404);

    // The red team's attacks on the loader. Options polluted through
    // Object.prototype no longer make require() compile a module inside
    // the loader (that trapped the interpreter); a CommonJS export whose
    // getter throws fails the import with that error; 40,000 blank lines
    // are parsed in a moment, not the 30 s check deadline.
    let polluted = r#"import fs from 'fs';
fs.writeFileSync('/tmp/x.mjs', "import '/tmp/b.cjs';\nimport { y } from '/tmp/c.mjs';\nconsole.log('x evaluated', y);\n");
fs.writeFileSync('/tmp/b.cjs', "Object.prototype.compile_module = true;\ntry { require('/tmp/d.js'); } catch (e) { console.log('d threw'); }\ndelete Object.prototype.compile_module;\n");
fs.writeFileSync('/tmp/d.js', "}); import '/tmp/x.mjs'; (function () {\n");
fs.writeFileSync('/tmp/c.mjs', "export const y = 5;\n");
await import('/tmp/x.mjs');
"#;
    server.deploy("esm_polluted", "js", polluted);
    let resp = server.post("/invoke?fn=esm_polluted", "");
    assert_eq!(
        resp.json()["output"],
        "d threw\nx evaluated 5\n",
        "{}",
        resp.body
    );
    assert_ne!(resp.json()["kind"], "trap", "{}", resp.body);
    write_tree(
        dir.path(),
        &[
            ("index.mjs", "try { const m = await import('./p.cjs'); console.log('imported', m.a); } catch (e) { console.log('refused:', e.message); }\n"),
            ("p.cjs", "module.exports = { a: 1, get b() { throw new Error('getter b threw'); } };\n"),
        ],
    );
    let resp = deploy_archive(
        &server,
        "esm_getter",
        "js",
        "application/gzip",
        &pack_dir(dir.path()),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "esm_getter", ""),
        "refused: getter b threw\n"
    );
    let started = Instant::now();
    server.deploy(
        "blank_lines",
        "js",
        &format!("{}console.log('ok');\n", "\n".repeat(40_000)),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(invoke(&server, "blank_lines", ""), "ok\n");
}

#[test]
fn an_archive_reads_back_as_deployed_lists_its_files_and_updates_to_and_from_one_file() {
    let server = TestServer::start("RR", &[]);
    let bytes = pack_example("python");
    let resp = deploy_archive(&server, "proj", "python", "application/gzip", &bytes);
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.json()["archive"], "tar_gz");
    assert_eq!(resp.json()["entry"], "main.py");
    let (status, headers, body) = http_bytes(&server.addr, "GET", "/function/proj", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(body, bytes, "the same bytes");
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/gzip"));
    let files = server.get("/function/proj/files").json();
    let listed: Vec<(String, u64)> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    // The deploy compiled each module's bytecode beside it (the tree is
    // read-only at run time, so calls could not cache it).
    let (pycs, listed): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .partition(|(p, _)| p.contains("__pycache__/"));
    let pycs: Vec<&str> = pycs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pycs,
        [
            "__pycache__/main.cpython-315.pyc",
            "textkit/__pycache__/__init__.cpython-315.pyc",
            "textkit/__pycache__/clean.cpython-315.pyc",
            "textkit/__pycache__/stats.cpython-315.pyc"
        ]
    );
    let root = repo_root().join("examples/projects/python");
    let size = |p: &str| std::fs::metadata(root.join(p)).unwrap().len();
    assert_eq!(
        listed,
        [
            "main.py",
            "textkit/__init__.py",
            "textkit/clean.py",
            "textkit/stats.py"
        ]
        .map(|p| (p.to_string(), size(p)))
    );
    // The versions record the archive's sha256.
    let versions = server.get("/function/proj/versions").json();
    let sha = versions["versions"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha.len(), 64);

    // Archive → one file → archive, each version running as itself.
    let resp = server.request("PUT", "/function/proj?lang=python", b"print('one file')\n");
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(invoke(&server, "proj", ""), "one file\n");
    assert_eq!(server.get("/function/proj").body, "print('one file')\n");
    assert_eq!(
        server.get("/function/proj/files").json()["files"][0]["path"],
        "code.py"
    );
    let resp = send(
        &server,
        "PUT",
        "/function/proj?lang=python",
        "application/zip",
        &zip_dir(&root),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "proj", "a b"),
        "{\"words\": 2, \"unique\": 2, \"longest\": \"a\"}\n"
    );
    let versions = server.get("/function/proj/versions").json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    // Deleting removes every version's tree.
    assert_eq!(server.request("DELETE", "/function/proj", b"").status, 200);
    assert!(server.stored_functions().is_empty());
}

/// The hostile archives of the issue: each refused with 400 or 413 naming
/// the problem, and nothing stored.
#[test]
fn hostile_archives_are_refused_and_nothing_is_stored() {
    let server = TestServer::start("RR", &[]);
    let file = |b: &mut tar::Builder<Vec<u8>>| {
        raw_entry(b, "main.py", tar::EntryType::Regular, "", b"print(1)\n")
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "traversal",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "../x", tar::EntryType::Regular, "", b"x")
            }),
            400,
            "'..'",
        ),
        (
            "absolute",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "/tmp/x", tar::EntryType::Regular, "", b"x")
            }),
            400,
            "absolute",
        ),
        (
            "symlink escape",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "etc", tar::EntryType::Symlink, "/etc", b"")
            }),
            400,
            "symbolic link",
        ),
        (
            "hard link escape",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "pw", tar::EntryType::Link, "../../etc/passwd", b"")
            }),
            400,
            "hard link",
        ),
        (
            "device",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "null", tar::EntryType::Char, "", b"")
            }),
            400,
            "character device",
        ),
        (
            "fifo",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "pipe", tar::EntryType::Fifo, "", b"")
            }),
            400,
            "fifo",
        ),
        (
            "duplicate",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "./main.py", tar::EntryType::Regular, "", b"2")
            }),
            400,
            "twice",
        ),
        (
            "duplicate after normalising",
            tar_gz(|b| {
                file(b);
                raw_entry(b, "a/b.py", tar::EntryType::Regular, "", b"1");
                raw_entry(b, "a/./b.py", tar::EntryType::Regular, "", b"2")
            }),
            400,
            "twice",
        ),
        (
            "not an archive",
            b"definitely not gzip".to_vec(),
            400,
            "not a valid .tar.gz",
        ),
        (
            "too many files",
            tar_gz(|b| {
                for i in 0..10_001 {
                    raw_entry(b, &format!("f{i}"), tar::EntryType::Regular, "", b"");
                }
            }),
            413,
            "more than 10000 files",
        ),
    ];
    for (what, bytes, status, says) in cases {
        let resp = deploy_archive(&server, "hostile", "python", "application/gzip", &bytes);
        let error = resp.assert_error(status);
        assert!(error.contains(says), "{what}: {error}");
    }
    // A zip with a symlink pointing out, and one whose entry climbs out.
    let link = zip_of(&[
        ("main.py".into(), b"print(1)\n".to_vec(), 0o100_644),
        ("escape".into(), b"../../../etc/passwd".to_vec(), 0o120_777),
    ]);
    let resp = deploy_archive(&server, "hostile", "python", "application/zip", &link);
    assert!(resp.assert_error(400).contains("symbolic link"));
    let climb = zip_of(&[("../../x.py".into(), b"x".to_vec(), 0o100_644)]);
    let resp = deploy_archive(&server, "hostile", "python", "application/zip", &climb);
    assert!(resp.assert_error(400).contains("'..'"));
    assert!(
        server.stored_functions().is_empty(),
        "{:?}",
        server.stored_functions()
    );
    assert_eq!(
        server.get("/functions").json()["functions"],
        serde_json::json!([])
    );
}

/// Small compressed, huge unpacked: stopped at --max-unpacked-bytes, fast,
/// whatever the headers declare; an archive over --max-archive-bytes is
/// refused before it is read.
#[test]
fn archive_bombs_stop_early_and_large_archives_are_413() {
    let server = TestServer::start("RR", &["--max-archive-bytes", "4194304"]);
    // A 512 MiB file of zeros in a tar.gz of about 0.5 MiB (deflate's best
    // ratio, about 1000:1; the fast level only reaches about 100:1).
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(512 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(header.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4_194_304, "{}", bomb.len());
    let started = Instant::now();
    let resp = deploy_archive(&server, "bomb", "python", "application/gzip", &bomb);
    let error = resp.assert_error(413);
    assert!(error.contains("--max-unpacked-bytes"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // The same as a zip (300 MiB of zeros, in about 300 KiB).
    let zip_bomb = zip_of(&[("main.py".into(), vec![0u8; 300 << 20], 0o100_644)]);
    // (zip_of deflates at the best level: 300 MiB of zeros in about 0.3 MiB.)
    assert!(zip_bomb.len() < 4_194_304, "{}", zip_bomb.len());
    let resp = deploy_archive(&server, "bomb", "python", "application/zip", &zip_bomb);
    assert!(resp.assert_error(413).contains("--max-unpacked-bytes"));

    // Past --max-archive-bytes (4 MiB here): 413 naming the flag.
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let resp = deploy_archive(&server, "big", "python", "application/gzip", &big);
    assert!(resp.assert_error(413).contains("--max-archive-bytes"));
    assert!(server.stored_functions().is_empty());
    // An unknown Content-Type keeps the one-file deploy.
    let resp = send(
        &server,
        "POST",
        "/deploy?name=plain&lang=python",
        "application/x-www-form-urlencoded",
        b"print('plain')\n",
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(invoke(&server, "plain", ""), "plain\n");
}

/// A project's tree is read-only to its function, and nothing outside it
/// (the store, the host) can be read through it.
#[test]
fn a_project_cannot_write_its_tree_nor_read_outside_it() {
    let server = TestServer::start("RR", &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.py"),
        r#"import os
results = {}
for name, attempt in [
    ("write", lambda: open("/faas/app/main.py", "w").write("x")),
    ("create", lambda: open("/faas/app/new.py", "w").write("x")),
    ("remove", lambda: os.remove("/faas/app/data.txt")),
    ("up", lambda: open("/faas/app/../../../../etc/passwd").read()),
    ("store", lambda: os.listdir("/faas/app/../../functions")),
]:
    try:
        attempt()
        results[name] = "allowed"
    except OSError as e:
        results[name] = type(e).__name__
print(sorted(results.items()))
print(open(os.path.join(os.path.dirname(__file__), "data.txt")).read().strip())
print(sorted(os.listdir("/")))
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("data.txt"), "tree data\n").unwrap();
    let resp = deploy_archive(
        &server,
        "ro",
        "python",
        "application/gzip",
        &pack_dir(dir.path()),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let out = invoke(&server, "ro", "");
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines[0].contains("allowed"), "{out}");
    assert_eq!(lines[1], "tree data");
    assert!(
        !lines[2].contains("etc") && !lines[2].contains("home"),
        "{out}"
    );

    let js = tempfile::tempdir().unwrap();
    std::fs::write(
        js.path().join("index.js"),
        r#"const fs = require('fs');
const tries = {
  write: () => fs.writeFileSync('/faas/app/index.js', 'x'),
  up: () => fs.readFileSync('/faas/app/../../../etc/passwd', 'utf8'),
  requireOut: () => require('../../../etc/passwd'),
};
const out = {};
for (const [k, f] of Object.entries(tries)) { try { f(); out[k] = 'allowed'; } catch (e) { out[k] = 'refused'; } }
console.log(JSON.stringify(out));
"#,
    )
    .unwrap();
    let resp = deploy_archive(
        &server,
        "rojs",
        "js",
        "application/gzip",
        &pack_dir(js.path()),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        invoke(&server, "rojs", ""),
        "{\"write\":\"refused\",\"up\":\"refused\",\"requireOut\":\"refused\"}\n"
    );
}

/// `faas deploy DIR` packs a project (without `.git` nor what
/// `.faasignore` lists) and infers its language; `faas deploy m.wasm`
/// uploads a prebuilt module.
#[test]
fn the_cli_deploys_a_directory_and_a_module() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("greeter");
    std::fs::create_dir_all(proj.join("lib")).unwrap();
    std::fs::create_dir_all(proj.join(".git")).unwrap();
    std::fs::create_dir_all(proj.join("notes")).unwrap();
    std::fs::write(proj.join("main.py"), "from lib.hi import hi\nprint(hi())\n").unwrap();
    std::fs::write(proj.join("lib/__init__.py"), "").unwrap();
    std::fs::write(
        proj.join("lib/hi.py"),
        "def hi():\n    return 'hi from a package'\n",
    )
    .unwrap();
    std::fs::write(proj.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(proj.join("notes/todo.txt"), "secret plans\n").unwrap();
    std::fs::write(proj.join("big.log"), "noise\n").unwrap();
    std::fs::write(proj.join(".faasignore"), "# not shipped\nnotes/\n*.log\n").unwrap();
    let cli = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(crate::harness::worker_bin().with_file_name("faas"))
            .args(args)
            .env("FAAS_URL", format!("http://{}", server.addr))
            .env_remove("FAAS_TOKEN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&["deploy".as_ref(), proj.as_os_str()]);
    assert_eq!(invoke(&server, "greeter", ""), "hi from a package\n");
    let files = server.get("/function/greeter/files").body;
    for shipped in ["main.py", "lib/hi.py", ".faasignore"] {
        assert!(files.contains(&format!("\"{shipped}\"")), "{files}");
    }
    for left_out in [".git", "notes", "big.log"] {
        assert!(!files.contains(left_out), "{left_out}: {files}");
    }
    let module = dir.path().join("count.wasm");
    std::fs::write(
        &module,
        clang_module("#include <stdio.h>\nint main(void){puts(\"from a module\");return 0;}\n"),
    )
    .unwrap();
    cli(&["deploy".as_ref(), module.as_os_str()]);
    assert_eq!(invoke(&server, "count", ""), "from a module\n");
}
