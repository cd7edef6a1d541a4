//! Bytecode for a Python project, made at deploy (`worker precompile`).
//!
//! A project's tree is read-only at run time, so CPython cannot cache the
//! bytecode of the modules a call imports: every call compiled them again
//! (a package such as `markdown` cost about 180 ms a call, against 5 ms to
//! load the same code already compiled). At deploy, the WebAssembly CPython
//! that runs the calls compiles every `.py` file of the tree and the worker
//! writes the result beside it, at the path CPython looks for
//! (`__pycache__/NAME.cpython-315.pyc`), as *unchecked hash-based* pycs
//! (PEP 552): never compared with their source at import, which is right for
//! a tree no call can change. Only our interpreter's compiler writes them,
//! from the tree's own sources; a file that does not compile gets none, and
//! importing it reports the error as before.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::jobs::PROJECT_GUEST_DIR;

/// The script the interpreter runs: reads guest paths (one per line) on
/// stdin, writes for each source that compiles `PYC_PATH\nLEN\n` and the
/// pyc's bytes on stdout.
pub const SCRIPT: &str = "import sys, marshal, importlib.util as u
out = sys.stdout.buffer
for path in sys.stdin.read().split('\\n'):
    if not path:
        continue
    try:
        src = open(path, 'rb').read()
        code = compile(src, path, 'exec', dont_inherit=True)
    except Exception:
        continue
    data = u.MAGIC_NUMBER + (1).to_bytes(4, 'little') + u.source_hash(src) + marshal.dumps(code)
    out.write(b'%s\\n%d\\n' % (u.cache_from_source(path).encode(), len(data)))
    out.write(data)
";

/// The `.py` files under `root` (paths relative to it, starting with `/`),
/// with their bytes. Links are not followed (a deployed tree has none).
pub fn sources(root: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut found = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), String::new())];
    while let Some((host, rel)) = dirs.pop() {
        for item in std::fs::read_dir(&host)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let rel = format!("{rel}/{name}");
            let kind = item.file_type()?;
            if kind.is_dir() {
                dirs.push((item.path(), rel));
            } else if kind.is_file() && name.ends_with(".py") {
                found.push((rel, std::fs::read(item.path())?));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The pycs in the script's output, as (path relative to the tree, bytes).
/// Each must be `DIR/__pycache__/STEM.TAG.pyc` for a source `DIR/STEM.py`
/// the script was given: anything else is refused, so the output can only
/// ever add cache files beside the tree's own sources.
pub fn parse<'a>(
    mut out: &'a [u8],
    sources: &HashSet<String>,
) -> Result<Vec<(String, &'a [u8])>, String> {
    let mut pycs = Vec::new();
    while !out.is_empty() {
        let mut line = || -> Result<&'a str, String> {
            let end = out
                .iter()
                .position(|b| *b == b'\n')
                .ok_or("a truncated record")?;
            let text = std::str::from_utf8(&out[..end]).map_err(|_| "a path that is not UTF-8")?;
            out = &out[end + 1..];
            Ok(text)
        };
        let path = line()?;
        let len: usize = line()?.parse().map_err(|_| "a bad length")?;
        if out.len() < len {
            return Err("a truncated pyc".into());
        }
        let (data, rest) = out.split_at(len);
        out = rest;
        let rel = path
            .strip_prefix(PROJECT_GUEST_DIR)
            .filter(|rel| rel.starts_with('/'))
            .ok_or_else(|| format!("a pyc outside the project: {path}"))?;
        let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
        let (parent, cache) = dir.rsplit_once('/').unwrap_or(("", dir));
        let stem = file.split('.').next().unwrap_or_default();
        let source = format!("{parent}/{stem}.py");
        if cache != "__pycache__" || !file.ends_with(".pyc") || !sources.contains(&source) {
            return Err(format!("an unexpected pyc path: {path}"));
        }
        pycs.push((rel.to_string(), data));
    }
    Ok(pycs)
}

/// Writes the pycs under `root`, making each `__pycache__` directory; never
/// through a link.
pub fn write(root: &Path, pycs: &[(String, &[u8])]) -> std::io::Result<usize> {
    for (rel, data) in pycs {
        let path = root.join(rel.trim_start_matches('/'));
        let dir = path.parent().unwrap_or(root);
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if !std::fs::symlink_metadata(dir)?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?
            .write_all(data)?;
    }
    Ok(pycs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!("{path}\n{}\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn only_cache_files_of_given_sources_are_accepted() {
        let sources: HashSet<String> = ["/a/b.py", "/main.py"].map(String::from).into();
        let mut out = record("/faas/app/a/__pycache__/b.cpython-315.pyc", b"xy");
        out.extend(record("/faas/app/__pycache__/main.cpython-315.pyc", b""));
        let pycs = parse(&out, &sources).unwrap();
        assert_eq!(
            pycs,
            vec![
                ("/a/__pycache__/b.cpython-315.pyc".to_string(), &b"xy"[..]),
                ("/__pycache__/main.cpython-315.pyc".to_string(), &b""[..]),
            ]
        );
        for bad in [
            "/faas/app/a/b.cpython-315.pyc",
            "/faas/app/a/__pycache__/c.cpython-315.pyc",
            "/faas/app/a/__pycache__/b.cpython-315.so",
            "/faas/appx/a/__pycache__/b.cpython-315.pyc",
            "/etc/__pycache__/b.pyc",
            "/faas/app/a/__pycache__/../__pycache__/b.pyc",
        ] {
            assert!(parse(&record(bad, b"x"), &sources).is_err(), "{bad}");
        }
        assert!(parse(b"/faas/app/__pycache__/main.x.pyc\n5\nab", &sources).is_err());
        assert!(parse(b"/faas/app/__pycache__/main.x.pyc", &sources).is_err());
    }

    #[test]
    fn pycs_are_written_beside_their_sources_and_never_through_a_link() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        let pycs = vec![("/a/__pycache__/b.cpython-315.pyc".to_string(), &b"pyc"[..])];
        assert_eq!(write(root.path(), &pycs).unwrap(), 1);
        let written = root.path().join("a/__pycache__/b.cpython-315.pyc");
        assert_eq!(std::fs::read(&written).unwrap(), b"pyc");
        // A link where the pyc goes is not followed.
        let outside = root.path().join("outside");
        std::fs::remove_file(&written).unwrap();
        std::os::unix::fs::symlink(&outside, &written).unwrap();
        assert!(write(root.path(), &pycs).is_err());
        assert!(!outside.exists());
    }
}
