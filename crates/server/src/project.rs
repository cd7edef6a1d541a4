//! Multi-file projects: what happens between unpacking a deploy's archive
//! ([`crate::archive`]) and building it ([`crate::toolchain`]).
//!
//! 1. [`resolve_entry`]: the entry file (`entry=`, else the language's
//!    default; JavaScript also reads `package.json`'s `main`); missing: 400.
//! 2. [`install_packages`]: after [`crate::packages`] installed a
//!    project's pip, npm, crates.io and Go packages into the tree, what is
//!    left: Composer packages are not installed, so a PHP project that
//!    declares some it does not ship is refused with 422 naming them.
//! 3. [`plan`]: what the build needs to know of the tree, checked before
//!    any compiler runs (C's sources; Rust's edition, no `build.rs`, no
//!    dependencies; Go's module, no cgo).
//!
//! The tree was unpacked by our own code with no links, devices or `..`,
//! so walking it here never leaves it.

use std::path::{Path, PathBuf};

use faas_proto::{ErrorKind, Lang, ServiceError};

/// The directory, in a function's store directory, that holds its
/// unpacked project.
pub const TREE_DIR: &str = "tree";

/// What a build of a project needs besides its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The entry file, relative to the root.
    pub entry: String,
    /// C: every `.c` file of the tree, relative to the root, sorted.
    pub c_sources: Vec<String>,
    /// Rust: the edition `Cargo.toml` asks for (2021 without one).
    pub rust_edition: String,
    /// Go: the directory of the entry's package, relative (`.` at the root).
    pub go_package: String,
    /// Go: the tree has no `go.mod`; the build writes a minimal one.
    pub go_needs_mod: bool,
}

/// The entry file of a `lang` project unpacked at `tree`: `asked`
/// (normalised) when given, else the language's default. Missing: 400
/// naming it.
pub fn resolve_entry(lang: Lang, tree: &Path, asked: Option<&str>) -> Result<String, ServiceError> {
    let is_file = |rel: &str| {
        tree.join(rel)
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_file())
    };
    if let Some(asked) = asked {
        let entry = crate::archive::normalise(asked)
            .map_err(|e| ServiceError::bad_request(format!("entry={e}")))?
            .ok_or_else(|| ServiceError::bad_request("entry= names no file"))?;
        if !is_file(&entry) {
            return Err(ServiceError::bad_request(format!(
                "the entry file '{entry}' (entry=) is not in the archive"
            )));
        }
        return Ok(entry);
    }
    if lang == Lang::Js {
        if let Some(main) = package_main(tree) {
            // Node's resolution of `main`: the file, with `.js`, or its
            // directory's index.js.
            for candidate in [
                main.clone(),
                format!("{main}.js"),
                format!("{main}/index.js"),
            ] {
                if is_file(&candidate) {
                    return Ok(candidate);
                }
            }
            return Err(ServiceError::bad_request(format!(
                "package.json's main ('{main}') is not in the archive"
            )));
        }
    }
    let defaults = lang.default_entries();
    defaults
        .iter()
        .find(|d| is_file(d))
        .map(|d| d.to_string())
        .ok_or_else(|| {
            ServiceError::bad_request(format!(
                "the archive has no {} (a {lang} project's entry file); name another with entry=PATH",
                defaults.join(" or ")
            ))
        })
}

/// `package.json`'s `main`, normalised, when it names one.
fn package_main(tree: &Path) -> Option<String> {
    let text = std::fs::read_to_string(tree.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let main = json.get("main")?.as_str()?;
    crate::archive::normalise(main).ok().flatten()
}

/// The hook between unpacking and building where a project's declared
/// packages would be installed into its tree. Nothing is installed yet:
/// a project that declares packages and does not ship them is refused
/// (422, naming what it declares); one that ships them (`node_modules/`,
/// `vendor/`) or declares none goes on.
pub fn install_packages(lang: Lang, tree: &Path) -> Result<(), ServiceError> {
    // Python, JavaScript, Rust and Go packages were installed before this
    // ([`crate::packages`]); what is left declared and not shipped here is
    // Composer's.
    let wanted = match lang {
        Lang::Rust => {
            cargo_manifest(tree)?;
            Vec::new()
        }
        Lang::Php => composer_requirements(tree),
        _ => Vec::new(),
    };
    if wanted.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = wanted.iter().take(10).map(String::as_str).collect();
    Err(ServiceError::new(
        ErrorKind::CompileFailed,
        format!(
            "installing packages at deploy is not supported yet: the project needs {}{}; ship them in the archive ({})",
            shown.join(", "),
            if wanted.len() > shown.len() { ", ..." } else { "" },
            match lang {
                Lang::Python => "as packages beside the entry file",
                Lang::Js => "node_modules/",
                Lang::Go => "vendor/, from `go mod vendor`",
                Lang::Php => "vendor/ with its autoload.php, from `composer install`",
                _ => "a Rust project may use the standard library only",
            }
        ),
    ))
}

/// `composer.json`'s requirements (not `php` or extensions) when the
/// archive has no `vendor/autoload.php`.
fn composer_requirements(tree: &Path) -> Vec<String> {
    if tree.join("vendor/autoload.php").is_file() {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(tree.join("composer.json")) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    json.get("require")
        .and_then(|d| d.as_object())
        .map(|d| {
            d.keys()
                .filter(|k| *k != "php" && !k.starts_with("ext-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The parsed `Cargo.toml`, if the project has one. A build script
/// (`build.rs`, or `package.build`) and a malformed manifest are refused.
fn cargo_manifest(tree: &Path) -> Result<Option<toml::Table>, ServiceError> {
    let rejected = |msg: String| ServiceError::new(ErrorKind::CompileFailed, msg);
    if tree.join("build.rs").exists() {
        return Err(rejected(
            "build.rs is not allowed: a build script would run at deploy; generate its output beforehand and ship it".into(),
        ));
    }
    let Ok(text) = std::fs::read_to_string(tree.join("Cargo.toml")) else {
        return Ok(None);
    };
    let manifest: toml::Table = text
        .parse()
        .map_err(|e| rejected(format!("Cargo.toml is not valid TOML: {e}")))?;
    let build = manifest
        .get("package")
        .and_then(|p| p.get("build"))
        .is_some_and(|b| b.as_bool() != Some(false));
    if build {
        return Err(rejected(
            "Cargo.toml's package.build is not allowed: a build script would run at deploy".into(),
        ));
    }
    Ok(Some(manifest))
}

/// What the build of a `lang` project at `tree` with `entry` needs, checked
/// before any compiler runs (422 for what no compiler would accept here).
pub fn plan(lang: Lang, tree: &Path, entry: &str) -> Result<Plan, ServiceError> {
    let rejected = |msg: String| ServiceError::new(ErrorKind::CompileFailed, msg);
    let mut plan = Plan {
        entry: entry.to_string(),
        c_sources: Vec::new(),
        rust_edition: "2021".into(),
        go_package: ".".into(),
        go_needs_mod: false,
    };
    match lang {
        Lang::C => {
            plan.c_sources = files_with(tree, ".c")
                .map_err(|e| ServiceError::internal(format!("reading the project: {e}")))?;
        }
        Lang::Rust => {
            if let Some(manifest) = cargo_manifest(tree)? {
                if let Some(edition) = manifest
                    .get("package")
                    .and_then(|p| p.get("edition"))
                    .and_then(|e| e.as_str())
                {
                    if !["2015", "2018", "2021", "2024"].contains(&edition) {
                        return Err(rejected(format!(
                            "Cargo.toml: edition \"{edition}\" is not one rustc knows"
                        )));
                    }
                    plan.rust_edition = edition.to_string();
                }
            }
        }
        Lang::Go => {
            let sources = files_with(tree, ".go")
                .map_err(|e| ServiceError::internal(format!("reading the project: {e}")))?;
            for file in &sources {
                if file.starts_with("vendor/") {
                    continue;
                }
                let text = std::fs::read_to_string(tree.join(file)).unwrap_or_default();
                if imports_c(&text) {
                    return Err(rejected(format!(
                        "{file} imports \"C\": cgo is not supported (functions are WebAssembly; use pure Go)"
                    )));
                }
            }
            plan.go_package = match entry.rsplit_once('/') {
                Some((dir, _)) => format!("./{dir}"),
                None => ".".into(),
            };
            plan.go_needs_mod = !tree.join("go.mod").is_file();
        }
        _ => {}
    }
    Ok(plan)
}

/// Whether Go source `text` imports the pseudo-package "C" (cgo), alone or
/// in an import block.
fn imports_c(text: &str) -> bool {
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if in_block {
            if line.starts_with(')') {
                in_block = false;
            } else if line == "\"C\"" || line.ends_with(" \"C\"") {
                return true;
            }
        } else if line == "import (" {
            in_block = true;
        } else if line == "import \"C\"" || line.starts_with("import \"C\"") {
            return true;
        }
    }
    false
}

/// Every file of `tree` whose name ends with `suffix`, relative, sorted.
fn files_with(tree: &Path, suffix: &str) -> std::io::Result<Vec<String>> {
    Ok(crate::archive::list(tree)?
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.ends_with(suffix))
        .collect())
}

/// Copies the tree at `from` into `to` (created), files and directories
/// only, each handed over by `give` (the build uid's ownership).
pub fn copy_tree(
    from: &Path,
    to: &Path,
    give: &dyn Fn(&Path) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    give(to)?;
    let mut copied = 0;
    let mut dirs: Vec<(PathBuf, PathBuf)> = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = dirs.pop() {
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let target = dst.join(entry.file_name());
            if kind.is_dir() {
                std::fs::create_dir(&target)?;
                give(&target)?;
                dirs.push((entry.path(), target));
            } else if kind.is_file() {
                std::fs::copy(entry.path(), &target)?;
                give(&target)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn entries_resolve_by_default_by_name_and_by_package_json() {
        let t = tree(&[("src/main.rs", ""), ("main.py", "")]);
        assert_eq!(
            resolve_entry(Lang::Rust, t.path(), None).unwrap(),
            "src/main.rs"
        );
        assert_eq!(
            resolve_entry(Lang::Python, t.path(), Some("./main.py")).unwrap(),
            "main.py"
        );
        let err = resolve_entry(Lang::C, t.path(), None).unwrap_err();
        assert!(err.message.contains("main.c"), "{}", err.message);
        assert!(resolve_entry(Lang::Python, t.path(), Some("../main.py")).is_err());
        let js = tree(&[
            ("package.json", r#"{"main":"lib/app"}"#),
            ("lib/app.js", ""),
        ]);
        assert_eq!(
            resolve_entry(Lang::Js, js.path(), None).unwrap(),
            "lib/app.js"
        );
    }

    #[test]
    fn composer_packages_not_shipped_are_refused() {
        let php = tree(&[("composer.json", r#"{"require":{"php":">=8","acme/x":"1"}}"#)]);
        let err = install_packages(Lang::Php, php.path()).unwrap_err();
        assert!(err.message.contains("acme/x"), "{}", err.message);
        // Installed before this hook by crate::packages.
        let py = tree(&[(
            "requirements.txt",
            "requests==2
",
        )]);
        assert!(install_packages(Lang::Python, py.path()).is_ok());
        let script = tree(&[("Cargo.toml", "[package]\nname='f'\n"), ("build.rs", "")]);
        assert!(install_packages(Lang::Rust, script.path())
            .unwrap_err()
            .message
            .contains("build.rs"));
    }

    #[test]
    fn cgo_is_found() {
        assert!(imports_c("package main\n\nimport \"C\"\n"));
        assert!(imports_c("package main\nimport (\n\t\"fmt\"\n\t\"C\"\n)\n"));
        assert!(!imports_c(
            "package main\nimport (\n\t\"fmt\"\n)\n// import \"C\"\n"
        ));
    }
}
