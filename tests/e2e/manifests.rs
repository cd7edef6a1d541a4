//! The Kubernetes manifests (`deploy/kubernetes/`): every one validates
//! offline against a named Kubernetes version with `kubernetes-validate
//! --strict` (unknown fields fail), the kustomization applies every one of
//! them, and every flag and `FAAS_*` variable the Deployment gives the
//! server is one `faas-server --help` lists, so the manifests and the
//! binary cannot drift apart. None of this is skipped: a missing validator
//! or PyYAML fails the test, naming `make toolchains`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{repo_root, server_bin};

/// The Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.31.0";

fn manifests_dir() -> PathBuf {
    repo_root().join("deploy/kubernetes")
}

/// Every manifest: the `*.yaml` files of `deploy/kubernetes/` and of its
/// subdirectories (`optional/`), but not `kustomization.yaml`, which is
/// kustomize's and has no Kubernetes schema.
fn manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && path.file_name().is_some_and(|n| n != "kustomization.yaml")
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&manifests_dir(), &mut out);
    out.sort();
    assert!(
        out.len() >= 8,
        "expected the manifests in {}, found {out:?}",
        manifests_dir().display()
    );
    out
}

/// The documents of a YAML file, as JSON values (PyYAML, which
/// kubernetes-validate depends on).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): run `make toolchains`"));
    assert!(
        out.status.success(),
        "reading {} with PyYAML failed (PyYAML comes with kubernetes-validate: run `make toolchains`): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one document of `kind` among the manifests kustomize applies.
fn object(kind: &str, name: &str) -> Value {
    manifests()
        .iter()
        .filter(|p| p.parent() == Some(manifests_dir().as_path()))
        .flat_map(|p| yaml_documents(p))
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {}", manifests_dir().display()))
}

#[test]
fn every_manifest_validates_strictly() {
    let files = manifests();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate cannot be run ({e}): install it with `make toolchains`")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubernetes-validate --strict -k {KUBERNETES_VERSION} failed:\n{stdout}{stderr}"
    );
    // A kind without a schema only warns: every manifest must be checked.
    assert!(
        !stdout.contains("Couldn't find schema") && !stderr.contains("Couldn't find schema"),
        "a manifest was not validated:\n{stdout}{stderr}"
    );
    for file in &files {
        let name = file
            .strip_prefix(manifests_dir())
            .unwrap()
            .display()
            .to_string();
        assert!(
            stdout.contains(&format!("{name} passed")),
            "{name} is not reported as passed:\n{stdout}{stderr}"
        );
    }

    // kustomize applies every top-level manifest (optional/ is on purpose
    // not in it), and nothing that is not there.
    let kustomization = yaml_documents(&manifests_dir().join("kustomization.yaml"));
    let mut listed: Vec<String> = kustomization[0]["resources"]
        .as_array()
        .expect("kustomization.yaml has resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut top: Vec<String> = files
        .iter()
        .filter(|p| p.parent() == Some(manifests_dir().as_path()))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        listed, top,
        "kustomization.yaml must list every manifest of deploy/kubernetes/"
    );
}

/// `--name` appears in `help` as a whole flag (not as the prefix of a longer one).
fn help_lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        help[at + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

#[test]
fn deployment_gives_only_flags_the_server_has() {
    let help = Command::new(server_bin()).arg("--help").output().unwrap();
    assert!(help.status.success(), "faas-server --help failed");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();

    let deployment = object("Deployment", "faas");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("the Deployment has containers");
    let faas = containers
        .iter()
        .find(|c| c["name"] == "faas")
        .expect("a container named faas");

    // `--flag=value`, `--flag value`, and the strategy first.
    let mut flags: Vec<String> = Vec::new();
    let args: Vec<&str> = faas["args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a.as_str().expect("args are strings"))
        .collect();
    for (i, arg) in args.iter().enumerate() {
        if arg.starts_with("--") {
            flags.push(arg.split('=').next().unwrap().to_string());
        } else {
            let is_value = i > 0 && args[i - 1].starts_with("--") && !args[i - 1].contains('=');
            assert!(
                is_value || (i == 0 && ["RR", "FIFO", "WEIGHTED"].contains(arg)),
                "unexpected positional argument {arg:?} in the Deployment's args"
            );
        }
    }
    let mut vars: Vec<String> = faas["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    for source in faas["envFrom"].as_array().into_iter().flatten() {
        let name = source["configMapRef"]["name"]
            .as_str()
            .expect("envFrom names ConfigMaps only (secrets are given key by key)");
        let map = object("ConfigMap", name);
        vars.extend(map["data"].as_object().unwrap().keys().cloned());
    }
    assert!(
        flags.len() >= 5 && vars.len() >= 10,
        "flags {flags:?}, variables {vars:?}"
    );
    // The cluster's own settings must be among them.
    for needed in [
        "FAAS_STORE",
        "FAAS_PEERS_DNS",
        "FAAS_WORKERS",
        "FAAS_STRATEGY",
    ] {
        assert!(
            vars.iter().any(|v| v == needed),
            "the Deployment does not set {needed}"
        );
    }
    assert!(flags.iter().any(|f| f == "--cluster-key-file"));

    let missing: Vec<&str> = flags
        .iter()
        .chain(&vars)
        .map(String::as_str)
        .filter(|name| !help_lists_flag(&help, name))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/kubernetes names what `faas-server --help` does not list: {missing:?}"
    );
}

/// The Deployment's container as a process here: its args (paths moved
/// under a temporary root), the ConfigMap's and the Secret example's
/// values, and the env it sets. Only what cannot hold outside a cluster
/// is overridden, each said below.
#[test]
fn a_replica_starts_with_the_deployments_arguments_and_environment() {
    use std::io::BufRead;
    let weed = crate::cluster::Seaweed::start();
    let nats = crate::nats_queue::Nats::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let deployment = object("Deployment", "faas");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let config = object("ConfigMap", "faas-config")["data"].clone();
    let secret = object("Secret", "faas-secrets")["stringData"].clone();
    let under_root = |path: &str| format!("{}{path}", root.path().display());

    // The Secret volume's files, and the runtimes the init container copies.
    let secrets_dir = under_root("/run/secrets/faas");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    for (key, value) in secret.as_object().unwrap() {
        std::fs::write(format!("{secrets_dir}/{key}"), value.as_str().unwrap()).unwrap();
    }
    let runtimes = under_root("/var/cache/faas/runtimes");
    std::fs::create_dir_all(&runtimes).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(repo_root().join("build/runtimes/."))
        .arg(&runtimes)
        .status()
        .unwrap();
    assert!(copied.success());

    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            match a.split_once("=/") {
                Some((flag, path)) => format!("{flag}={}", under_root(&format!("/{path}"))),
                None => a.to_string(),
            }
        })
        .collect();
    for dir in ["/var/cache/faas/functions", "/var/cache/faas/build"] {
        std::fs::create_dir_all(under_root(dir)).unwrap();
    }
    let mut env: Vec<(String, String)> = config
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = var["value"].as_str() {
            v.to_string()
        } else if let Some(key) = var["valueFrom"]["secretKeyRef"]["key"].as_str() {
            secret[key].as_str().unwrap().to_string()
        } else if var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
            "faas-7d9c-test".to_string()
        } else {
            panic!("an env entry this test cannot reproduce: {var}");
        };
        env.push((name, value));
    }
    let port = crate::cluster::free_ports(1)[0].to_string();
    let overrides = [
        // The store is this test's SeaweedFS, with its bucket and keys.
        ("FAAS_STORE", "s3://faas/manifest".to_string()),
        ("FAAS_S3_ENDPOINT", weed.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", crate::cluster::KEY_ID.to_string()),
        ("AWS_SECRET_ACCESS_KEY", crate::cluster::SECRET.to_string()),
        // The queue is this test's NATS.
        ("FAAS_QUEUE", nats.url()),
        // A free port on loopback instead of 0.0.0.0:8080.
        ("FAAS_HOST", "127.0.0.1".to_string()),
        ("FAAS_PORT", port.clone()),
        ("FAAS_WORKERS", "1".to_string()),
        // The image has the worker beside the server; here it is the build's.
        (
            "FAAS_WORKER_BIN",
            crate::harness::worker_bin().display().to_string(),
        ),
    ];
    for (name, value) in overrides {
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value));
    }
    let mut child = Command::new(server_bin())
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("  | {line}");
            sink.lock().unwrap().push(line);
        }
    });
    let addr = format!("127.0.0.1:{port}");
    let log_text = || log.lock().unwrap().join("\n");
    crate::harness::wait_until(
        "the replica's readiness",
        std::time::Duration::from_secs(60),
        || {
            std::net::TcpStream::connect(&addr).is_ok()
                && crate::harness::http(&addr, "GET", "/health/ready", b"").status == 200
        },
    );
    assert!(
        log_text().contains("faas-7d9c-test "),
        "log lines carry the pod's name"
    );
    let bearer = |token: &str| format!("Bearer {}", secret[token].as_str().unwrap());
    let api = bearer("api-token");
    let (status, _, body) = crate::harness::http_bytes(
        &addr,
        "POST",
        "/deploy?name=from-yaml&lang=python",
        &[("Authorization", &api)],
        b"print('deployed by the manifest replica')",
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let invoke = bearer("invoke-token");
    let (status, _, body) = crate::harness::http_bytes(
        &addr,
        "POST",
        "/invoke?fn=from-yaml",
        &[("Authorization", &invoke)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("deployed by the manifest replica"));
    // An async call goes through the ConfigMap's queue (here NATS).
    let (status, _, body) = crate::harness::http_bytes(
        &addr,
        "POST",
        "/async/from-yaml",
        &[("Authorization", &invoke)],
        b"",
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::harness::wait_until(
        "the async call through NATS",
        std::time::Duration::from_secs(30),
        || {
            let (_, _, body) = crate::harness::http_bytes(
                &addr,
                "GET",
                &format!("/invocation/{id}"),
                &[("Authorization", &invoke)],
                b"",
            );
            String::from_utf8_lossy(&body).contains("\"succeeded\"")
        },
    );
    // SIGTERM: readiness fails first (the ConfigMap's drain delay), then it stops.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    crate::harness::wait_until(
        "readiness to fail",
        std::time::Duration::from_secs(10),
        || crate::harness::http(&addr, "GET", "/health/ready", b"").status == 503,
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", log_text());
}
