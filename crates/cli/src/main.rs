//! `faas`: the command-line client of a faas server, a thin layer over its
//! HTTP API.
//!
//! ```text
//! faas deploy hello.c                 # name from the file stem, lang from the extension
//! faas deploy myproject/              # a directory: packed as .tar.gz (no .git, nor
//!                                     # what .faasignore lists), lang from its entry file
//! faas deploy module.wasm             # a prebuilt WASI module
//! faas deploy hello.c --update        # a new version when the name exists
//! faas invoke hello -d 'payload'      # prints the function's output as is
//! faas invoke hello -d @in.json --json
//! faas ls | versions NAME | rm NAME | logs NAME | stats
//! faas deploy hook.py --env CHANNEL=ops --secret slack_token --allow hooks.slack.com
//! faas secret set slack_token -d @token.txt   # or -d VALUE, or -d - for stdin
//! faas secret ls | secret rm NAME
//! faas invoke resize -d @in.jpg --async --callback https://hooks.example.com/done
//! faas call ID --wait                 # the async call's status, attempts and output
//! faas dlq ls [--function NAME] | dlq redrive ID | dlq rm ID
//! faas deploy job.c --retries 5 --max-concurrency 2 --schedule '*/5 * * * *'
//! ```
//!
//! `--url` / `FAAS_URL` (default `http://127.0.0.1:8080`), `--token` /
//! `FAAS_TOKEN`. Tables by default, `--json` for the server's answer.
//! Errors are one line on stderr and a non-zero exit; `invoke` exits with
//! the function's own exit code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(name = "faas", version, about = "Client of a faas server")]
struct Cli {
    /// The server.
    #[arg(
        long,
        env = "FAAS_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// Bearer token (the server's --api-token, or --invoke-token for invoke).
    #[arg(long, env = "FAAS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deploy a source file, a prebuilt `.wasm` module or a project
    /// directory.
    Deploy {
        file: PathBuf,
        /// Function name (default: the file's stem, or the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Language (default: from the extension: c, rs, go, js, py, php,
        /// html, wasm; for a directory, from its entry file).
        #[arg(long)]
        lang: Option<String>,
        /// A project's entry file, relative to the directory (default: the
        /// language's: main.c, src/main.rs, main.go, index.js, main.py,
        /// index.php).
        #[arg(long)]
        entry: Option<String>,
        /// Deploy a new version when the name is taken.
        #[arg(long)]
        update: bool,
        /// A variable the function sees in its environment (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// A secret the function reads as /run/secrets/NAME (repeatable).
        #[arg(long = "secret", value_name = "NAME")]
        secrets: Vec<String>,
        /// A host the function may call: HOST, HOST:PORT, *.DOMAIN or
        /// IP:PORT (repeatable).
        #[arg(long = "allow", value_name = "HOST[:PORT]")]
        allow: Vec<String>,
        /// Run the function on this schedule (`schedule=`, a cron
        /// expression).
        #[arg(long, value_name = "EXPR")]
        schedule: Option<String>,
        /// Async calls: attempts after a failed one (0 to 10).
        #[arg(long, value_name = "N")]
        retries: Option<String>,
        /// Most calls of the function running at once.
        #[arg(long, value_name = "N")]
        max_concurrency: Option<String>,
    },
    /// Store, list or remove secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Run a function and print its output.
    Invoke {
        name: String,
        /// The payload: text, @FILE, or - for stdin.
        #[arg(short = 'd', long = "data", default_value = "")]
        data: String,
        /// Queue the call (`POST /async/NAME`) and print its id instead of
        /// waiting for the output.
        #[arg(long = "async")]
        queue: bool,
        /// With --async: POST the outcome to this URL when the call ends
        /// (allowed by the function's --allow or the server's
        /// --callback-allow).
        #[arg(long, value_name = "URL", requires = "queue")]
        callback: Option<String>,
    },
    /// An async call: its status, attempts, callback and output.
    Call {
        id: String,
        /// Poll until the call succeeded or is dead.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Dead async calls: list, queue again, remove.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// List the deployed functions.
    Ls,
    /// A function's versions.
    Versions { name: String },
    /// Remove a function (every version) or one version by id.
    Rm { name: String },
    /// A function's recent invocations.
    Logs {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// The load balancer's and workers' counters.
    Stats,
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// List dead calls, oldest first.
    Ls {
        /// Only this function's.
        #[arg(long)]
        function: Option<String>,
    },
    /// Queue a dead call again with a fresh retry budget.
    Redrive { id: String },
    /// Remove a dead call.
    Rm { id: String },
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Create or replace a secret.
    Set {
        name: String,
        /// The value: text, @FILE, or - for stdin.
        #[arg(short = 'd', long = "data")]
        data: String,
    },
    /// List the secrets (names, sizes, users; never values).
    Ls,
    /// Remove a secret no function uses.
    Rm { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("faas: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let client = Client::new(cli);
    match &cli.command {
        Command::Deploy {
            file,
            name,
            lang,
            entry,
            update,
            env,
            secrets,
            allow,
            schedule,
            retries,
            max_concurrency,
        } => {
            let entries: Vec<String> = entry.iter().cloned().collect();
            // Passed through as they are: the server names what is wrong.
            let single = [
                ("schedule", schedule),
                ("retries", retries),
                ("max_concurrency", max_concurrency),
            ]
            .map(|(key, value)| (key, value.iter().cloned().collect::<Vec<_>>()));
            let settings: String = [
                ("env", env),
                ("secret", secrets),
                ("allow", allow),
                ("entry", &entries),
            ]
            .iter()
            .map(|(key, values)| (*key, values.to_vec()))
            .chain(single)
            .flat_map(|(key, values)| {
                values
                    .into_iter()
                    .map(move |v| format!("&{key}={}", escape(&v)))
            })
            .collect();
            deploy(
                &client,
                cli,
                file,
                name.as_deref(),
                lang.as_deref(),
                *update,
                &settings,
            )
        }
        Command::Secret(SecretCommand::Set { name, data }) => {
            let value = payload_of(data)?;
            let body = client.expect_ok(client.send(
                "PUT",
                &format!("/secret/{}", escape(name)),
                &value,
            )?)?;
            if cli.json {
                println!("{body}");
            } else {
                let verb = if body["created"] == true {
                    "created"
                } else {
                    "replaced"
                };
                println!("{verb} secret {name} ({} bytes)", value.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Secret(SecretCommand::Ls) => listing(
            &client,
            cli,
            "/secrets",
            "secrets",
            &["name", "size", "created", "updated", "used_by"],
        ),
        Command::Secret(SecretCommand::Rm { name }) => {
            let body = client.expect_ok(client.send(
                "DELETE",
                &format!("/secret/{}", escape(name)),
                &[],
            )?)?;
            if cli.json {
                println!("{body}");
            } else {
                println!("removed secret {name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke {
            name,
            data,
            queue: true,
            callback,
        } => invoke_async(&client, cli, name, data, callback.as_deref()),
        Command::Invoke { name, data, .. } => invoke(&client, cli, name, data),
        Command::Call { id, wait, timeout } => call(&client, cli, id, *wait, *timeout),
        Command::Dlq(DlqCommand::Ls { function }) => {
            let path = match function {
                Some(f) => format!("/dead-letters?function={}", escape(f)),
                None => "/dead-letters".into(),
            };
            let body = client.expect_ok(client.get(&path)?)?;
            if cli.json {
                println!("{body}");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Value> = body["dead_letters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|call| {
                    let last = call["attempts"]
                        .as_array()
                        .and_then(|a| a.last())
                        .cloned()
                        .unwrap_or_default();
                    serde_json::json!({
                        "id": call["id"],
                        "function": call["function"],
                        "attempts": call["attempts"].as_array().map_or(0, Vec::len),
                        "finished_ms": call["finished_ms"],
                        "last_outcome": last["outcome"],
                        "last_error": last["error"],
                    })
                })
                .collect();
            let columns = [
                "id",
                "function",
                "attempts",
                "finished_ms",
                "last_outcome",
                "last_error",
            ];
            table(cli, &serde_json::json!({ "rows": rows }), "rows", &columns)
        }
        Command::Dlq(DlqCommand::Redrive { id }) => {
            let path = format!("/dead-letters/{}/redrive", escape(id));
            let body = client.expect_ok(client.send("POST", &path, &[])?)?;
            if cli.json {
                println!("{body}");
            } else {
                println!("queued {id} again");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq(DlqCommand::Rm { id }) => {
            let path = format!("/dead-letters/{}", escape(id));
            let body = client.expect_ok(client.send("DELETE", &path, &[])?)?;
            if cli.json {
                println!("{body}");
            } else {
                println!("removed dead letter {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ls => listing(
            &client,
            cli,
            "/functions",
            "functions",
            &["name", "id", "lang", "created"],
        ),
        Command::Versions { name } => {
            let path = format!("/function/{}/versions", escape(name));
            listing(
                &client,
                cli,
                &path,
                "versions",
                &["id", "version", "created", "sha256", "lang"],
            )
        }
        Command::Rm { name } => remove(&client, cli, name),
        Command::Logs { name, limit } => {
            let path = format!("/function/{}/invocations?limit={limit}", escape(name));
            let columns = [
                "time_ms",
                "request_id",
                "id",
                "status",
                "exit_code",
                "duration_ms",
                "worker_id",
                "stderr",
            ];
            listing(&client, cli, &path, "invocations", &columns)
        }
        Command::Stats => {
            let columns = [
                "worker_id",
                "up",
                "in_flight",
                "completed",
                "failed",
                "weight",
            ];
            listing(&client, cli, "/stats", "workers", &columns)
        }
    }
}

/// One GET, shown as a table of `body[key]` (or the JSON).
fn listing(
    client: &Client,
    cli: &Cli,
    path: &str,
    key: &str,
    columns: &[&str],
) -> anyhow::Result<ExitCode> {
    let body = client.expect_ok(client.get(path)?)?;
    table(cli, &body, key, columns)
}

fn remove(client: &Client, cli: &Cli, name: &str) -> anyhow::Result<ExitCode> {
    let body =
        client.expect_ok(client.send("DELETE", &format!("/function/{}", escape(name)), &[])?)?;
    if cli.json {
        println!("{body}");
    } else {
        for id in body["removed"].as_array().into_iter().flatten() {
            println!("removed {}", id.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn deploy(
    client: &Client,
    cli: &Cli,
    file: &Path,
    name: Option<&str>,
    lang: Option<&str>,
    update: bool,
    options: &str,
) -> anyhow::Result<ExitCode> {
    let project = file.is_dir();
    let (code, content_type) = if project {
        (pack(file)?, "application/gzip")
    } else {
        let code = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let wasm = file.extension().is_some_and(|e| e == "wasm");
        (
            code,
            if wasm {
                "application/wasm"
            } else {
                "text/plain"
            },
        )
    };
    let name = match name {
        Some(name) => name.to_string(),
        None => std::fs::canonicalize(file)
            .ok()
            .and_then(|p| {
                let stem = if project {
                    p.file_name()
                } else {
                    p.file_stem()
                };
                stem.and_then(|s| s.to_str()).map(str::to_string)
            })
            .context("give --name: the path has no usable name")?,
    };
    let lang = match lang {
        Some(lang) => lang.to_string(),
        None if project => project_lang(file, options)?,
        None => lang_of(file)?,
    };
    let query = format!("name={}&lang={}{options}", escape(&name), escape(&lang));
    let mut answer = client.send_typed("POST", &format!("/deploy?{query}"), &code, content_type)?;
    if answer.0 == 409 && update {
        let path = format!(
            "/function/{}?lang={}{options}",
            escape(&name),
            escape(&lang)
        );
        answer = client.send_typed("PUT", &path, &code, content_type)?;
    }
    let body = client.expect_ok(answer)?;
    if cli.json {
        println!("{body}");
    } else {
        println!(
            "deployed {} as {}",
            body["name"].as_str().unwrap_or(&name),
            body["id"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `-d`'s bytes: text as is, `@FILE`'s content, or stdin for `-`.
fn payload_of(data: &str) -> anyhow::Result<Vec<u8>> {
    Ok(match data {
        "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
        d if d.starts_with('@') => {
            std::fs::read(&d[1..]).with_context(|| format!("reading {}", &d[1..]))?
        }
        d => d.as_bytes().to_vec(),
    })
}

fn invoke(client: &Client, cli: &Cli, name: &str, data: &str) -> anyhow::Result<ExitCode> {
    let payload = payload_of(data)?;
    let (status, body) = client.send("POST", &format!("/invoke?fn={}", escape(name)), &payload)?;
    if cli.json {
        println!("{body}");
    }
    // A function that ran (0 or not): its output as is, its exit code.
    if body.get("exit_code").is_some_and(|c| !c.is_null()) {
        if !cli.json {
            std::io::stdout().write_all(&bytes_of(&body, "output"))?;
            std::io::stderr().write_all(&bytes_of(&body, "stderr"))?;
        }
        let code = body["exit_code"].as_i64().unwrap_or(1).clamp(0, 255) as u8;
        return Ok(ExitCode::from(code));
    }
    client.expect_ok((status, body))?;
    Ok(ExitCode::SUCCESS)
}

/// `faas invoke NAME --async`: queues the call; prints its id (alone on
/// stdout, for scripts) and where to follow it (on stderr).
fn invoke_async(
    client: &Client,
    cli: &Cli,
    name: &str,
    data: &str,
    callback: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let payload = payload_of(data)?;
    let headers: Vec<(&str, &str)> = callback
        .map(|url| ("X-Callback-Url", url))
        .into_iter()
        .collect();
    let answer = client.send_with(
        "POST",
        &format!("/async/{}", escape(name)),
        &headers,
        &payload,
    )?;
    let body = client.expect_ok(answer)?;
    if cli.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let id = body["id"]
        .as_str()
        .context("the server's answer has no id")?;
    println!("{id}");
    eprintln!(
        "queued; status: {}{} (or `faas call {id} --wait`)",
        client.url,
        body["status_url"].as_str().unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `faas call ID [--wait]`: the invocation, polled until it ends with
/// `--wait`. Exits 1 when the call is dead, so a script can tell.
fn call(
    client: &Client,
    cli: &Cli,
    id: &str,
    wait: bool,
    timeout_s: u64,
) -> anyhow::Result<ExitCode> {
    let path = format!("/invocation/{}", escape(id));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_s);
    let mut pause = std::time::Duration::from_millis(50);
    let body = loop {
        let body = client.expect_ok(client.get(&path)?)?;
        let ended = matches!(body["status"].as_str(), Some("succeeded" | "dead"));
        if !wait || ended {
            break body;
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "call {id} is still {} after {timeout_s} s",
                body["status"].as_str().unwrap_or("?")
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    };
    if cli.json {
        println!("{body}");
    } else {
        show_call(&body)?;
    }
    Ok(if body["status"] == "dead" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// An invocation as lines: its fields, its attempts, then its output.
fn show_call(body: &Value) -> anyhow::Result<()> {
    for field in [
        "id",
        "function",
        "status",
        "created_ms",
        "finished_ms",
        "due_ms",
        "retries",
    ] {
        if !body[field].is_null() {
            println!("{field:<12}{}", cell(&body[field]));
        }
    }
    let callback = &body["callback"];
    if !callback.is_null() {
        let mut line = format!(
            "{} {} ({} tries",
            cell(&callback["url"]),
            cell(&callback["state"]),
            cell(&callback["attempts"])
        );
        if !callback["status_code"].is_null() {
            line.push_str(&format!(", last answer {}", callback["status_code"]));
        }
        if let Some(error) = callback["error"].as_str() {
            line.push_str(&format!(", {error}"));
        }
        println!("{:<12}{line})", "callback");
    }
    println!();
    print_table(
        body,
        "attempts",
        &[
            "number",
            "start_ms",
            "duration_ms",
            "exit_code",
            "outcome",
            "worker",
            "error",
        ],
    );
    let output = bytes_of(body, "output");
    if !output.is_empty() {
        println!();
        std::io::stdout().write_all(&output)?;
    }
    Ok(())
}

/// `output` or `output_base64` as bytes.
fn bytes_of(body: &Value, field: &str) -> Vec<u8> {
    if let Some(text) = body[field].as_str() {
        return text.as_bytes().to_vec();
    }
    body[format!("{field}_base64")]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default()
}

/// A project directory as a `.tar.gz`, paths relative to it: `.git` and
/// what `.faasignore` lists are left out; symbolic links are left out too
/// (the server refuses links), with a warning.
fn pack(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let ignore = Ignore::read(dir);
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((host, rel)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&host)
            .with_context(|| format!("reading {}", host.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                bail!("{}: not a UTF-8 name", entry.path().display());
            };
            let path = format!("{rel}{file_name}");
            if file_name == ".git" || ignore.matches(&path, file_name) {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                builder.append_dir(&path, entry.path())?;
                stack.push((entry.path(), format!("{path}/")));
            } else if kind.is_file() {
                builder.append_path_with_name(entry.path(), &path)?;
            } else {
                eprintln!("faas: leaving out {path}: only files and directories are sent");
            }
        }
    }
    let tar = builder.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    Ok(gz.finish()?)
}

/// `.faasignore`: one pattern a line (`#` comments): a path relative to
/// the project (`docs/`, `build/out.bin`), a name anywhere (`target`), or
/// `*.ext`.
struct Ignore(Vec<String>);

impl Ignore {
    fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join(".faasignore")).unwrap_or_default();
        Self(
            text.lines()
                .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        )
    }

    fn matches(&self, path: &str, name: &str) -> bool {
        self.0.iter().any(|p| match p.strip_prefix('*') {
            Some(suffix) => name.ends_with(suffix),
            None => p == path || p == name,
        })
    }
}

/// A project's language, from its entry file (`--entry`'s extension) or
/// the files a language's project has.
fn project_lang(dir: &Path, options: &str) -> anyhow::Result<String> {
    if let Some(entry) = options.split('&').find_map(|kv| kv.strip_prefix("entry=")) {
        return lang_of(Path::new(entry));
    }
    let markers: [(&str, &[&str]); 7] = [
        ("rust", &["Cargo.toml", "src/main.rs", "main.rs"]),
        ("go", &["go.mod", "main.go"]),
        ("js", &["package.json", "index.js"]),
        ("python", &["main.py"]),
        ("php", &["index.php", "composer.json"]),
        ("c", &["main.c"]),
        ("html", &["index.html"]),
    ];
    markers
        .iter()
        .find(|(_, files)| files.iter().any(|f| dir.join(f).is_file()))
        .map(|(lang, _)| lang.to_string())
        .with_context(|| {
            format!(
                "cannot tell the language of {}: it has no main.c, src/main.rs, main.go, index.js, main.py or index.php; give --lang (and --entry)",
                dir.display()
            )
        })
}

fn lang_of(file: &Path) -> anyhow::Result<String> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    Ok(match ext {
        "c" => "c",
        "rs" => "rust",
        "go" => "go",
        "js" | "mjs" | "cjs" => "js",
        "py" => "python",
        "php" => "php",
        "html" | "htm" => "html",
        "wasm" => "wasm",
        other => bail!("cannot tell the language of '.{other}' files: give --lang"),
    }
    .to_string())
}

/// Prints `body[key]` (a list of objects) as a table of `columns`.
fn table(cli: &Cli, body: &Value, key: &str, columns: &[&str]) -> anyhow::Result<ExitCode> {
    if cli.json {
        println!("{body}");
    } else {
        print_table(body, key, columns);
    }
    Ok(ExitCode::SUCCESS)
}

/// `body[key]` (a list of objects) as a table of `columns`.
fn print_table(body: &Value, key: &str, columns: &[&str]) {
    let rows: Vec<Vec<String>> = body[key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| columns.iter().map(|c| cell(&row[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in rows {
        line(row);
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::String(s) => s
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect(),
        other => other.to_string(),
    }
}

/// Percent-encodes a path segment or query value.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Client {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
}

impl Client {
    fn new(cli: &Cli) -> Self {
        Self {
            agent: ureq::AgentBuilder::new().build(),
            url: cli.url.trim_end_matches('/').to_string(),
            token: cli.token.clone(),
        }
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send("GET", path, &[])
    }

    /// One request; any HTTP status comes back with its JSON body.
    fn send(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Value)> {
        self.send_typed(method, path, body, "text/plain")
    }

    /// [`Self::send`] with the body's Content-Type.
    fn send_typed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        content_type: &str,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_with(method, path, &[("Content-Type", content_type)], body)
    }

    /// [`send`](Self::send) with extra headers.
    fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.agent.request(method, &format!("{}{path}", self.url));
        for (name, value) in headers {
            req = req.set(name, value);
        }
        if let Some(token) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        let resp = match req.send_bytes(body) {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
            Err(err) => bail!(
                "cannot reach the server at {} ({err}); is it running? start it with `make run`, or pass --url",
                self.url
            ),
        };
        let status = resp.status();
        let text = resp.into_string().context("reading the answer")?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    /// The body of a successful answer, or the server's error as one line.
    fn expect_ok(&self, (status, body): (u16, Value)) -> anyhow::Result<Value> {
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let error = body["error"].as_str().unwrap_or("error");
        match status {
            401 => bail!("the server wants a token: pass --token or set FAAS_TOKEN ({error})"),
            404 => bail!("{error} (see `faas ls`)"),
            _ => bail!("{error} (HTTP {status})"),
        }
    }
}
