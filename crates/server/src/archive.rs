//! Project archives: a deploy's `.tar.gz` or `.zip`, unpacked into the
//! function's private staging directory with every limit enforced while
//! unpacking.
//!
//! Nothing an archive declares is trusted: sizes are counted as bytes are
//! written (a zip bomb stops at `--max-unpacked-bytes`, after writing at
//! most that much), names are normalised and checked before anything is
//! created, and the tree is written with `O_EXCL | O_NOFOLLOW` into
//! directories this code created itself, so no write can follow a link.
//!
//! The rules (each breach refuses the whole archive; the caller removes
//! what was written):
//! - a path is relative, `/`-separated, UTF-8, without NUL, `\`, `..`,
//!   or a component longer than 255 bytes; `.` and empty components are
//!   dropped (`a/./b` is `a/b`), so two names that normalise to the same
//!   path are duplicates;
//! - only regular files and directories: symbolic links, hard links,
//!   devices and fifos are refused, whatever they point to (the simplest
//!   sound rule: a link can never lead out of the tree if there is none);
//! - a file's name appears once; a directory may be listed again (tar
//!   lists `./`), never as a file;
//! - at most `max_files` entries and `max_unpacked_bytes` written.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use faas_proto::{ArchiveFormat, ProjectFile};

/// Bounds of one archive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes the files may hold once unpacked.
    pub max_unpacked_bytes: u64,
    /// Most entries (files and directories).
    pub max_files: usize,
}

/// Entries in an archive beyond which it is refused.
pub const MAX_FILES: usize = 10_000;

/// Longest path kept (bytes), and longest component.
const MAX_PATH_BYTES: usize = 1024;
const MAX_COMPONENT_BYTES: usize = 255;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// Past a size or count limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// Malformed or hostile (400).
    #[error("{0}")]
    Refused(String),
    /// The Server could not write the tree (500).
    #[error("{0}")]
    Io(String),
}

type Result<T> = std::result::Result<T, ArchiveError>;

/// Unpacks `bytes` into `dest` (which must not exist: it is created, and
/// only what this call creates is written to). Returns the files written,
/// sorted by path.
pub fn unpack(
    format: ArchiveFormat,
    bytes: &[u8],
    dest: &Path,
    limits: Limits,
) -> Result<Vec<ProjectFile>> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dest)
        .map_err(|e| ArchiveError::Io(format!("cannot create the project directory: {e}")))?;
    let mut tree = Tree {
        dest,
        limits,
        seen: HashMap::new(),
        entries: 0,
        written: 0,
        files: Vec::new(),
    };
    match format {
        ArchiveFormat::TarGz => unpack_tar_gz(bytes, &mut tree)?,
        ArchiveFormat::Zip => unpack_zip(bytes, &mut tree)?,
    }
    let mut files = tree.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// What was seen under a normalised path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    File,
    Dir,
}

/// The tree being written, and what counts against its limits.
struct Tree<'a> {
    dest: &'a Path,
    limits: Limits,
    seen: HashMap<String, Seen>,
    entries: usize,
    written: u64,
    files: Vec<ProjectFile>,
}

impl Tree<'_> {
    /// Counts one more entry against `max_files`.
    fn count(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(ArchiveError::TooLarge(format!(
                "the archive has more than {} files (at most {} entries)",
                self.limits.max_files, self.limits.max_files
            )));
        }
        Ok(())
    }

    /// Creates the directory `path` (normalised) and its parents.
    fn dir(&mut self, path: &str) -> Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        let mut prefix = String::new();
        for component in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            match self.seen.get(&prefix) {
                Some(Seen::Dir) => continue,
                Some(Seen::File) => {
                    return Err(ArchiveError::Refused(format!(
                        "'{prefix}' is both a file and a directory in the archive"
                    )))
                }
                None => {}
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(self.dest.join(&prefix))
                .map_err(|e| ArchiveError::Io(format!("cannot create {prefix}: {e}")))?;
            self.seen.insert(prefix.clone(), Seen::Dir);
        }
        Ok(())
    }

    /// Writes the file `path` (normalised) from `data`, counting every
    /// byte read against `max_unpacked_bytes`.
    fn file(&mut self, path: &str, data: &mut dyn Read) -> Result<()> {
        if self.seen.contains_key(path) {
            return Err(ArchiveError::Refused(format!(
                "'{path}' appears twice in the archive (after normalising its name)"
            )));
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.seen.insert(path.to_string(), Seen::File);
        let target = self.dest.join(path);
        // O_EXCL and O_NOFOLLOW: a fresh file in a directory made above,
        // never anything that was there, never through a link.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&target)
            .map_err(|e| ArchiveError::Io(format!("cannot create {path}: {e}")))?;
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = data.read(&mut buf).map_err(|e| {
                ArchiveError::Refused(format!("the archive is corrupt at '{path}': {e}"))
            })?;
            if n == 0 {
                break;
            }
            size += n as u64;
            self.written += n as u64;
            if self.written > self.limits.max_unpacked_bytes {
                return Err(ArchiveError::TooLarge(format!(
                    "the archive unpacks to more than {} bytes (--max-unpacked-bytes); stopped at '{path}'",
                    self.limits.max_unpacked_bytes
                )));
            }
            out.write_all(&buf[..n])
                .map_err(|e| ArchiveError::Io(format!("cannot write {path}: {e}")))?;
        }
        self.files.push(ProjectFile {
            path: path.to_string(),
            size,
        });
        Ok(())
    }
}

/// `name` as a path inside the tree: relative, components joined by `/`,
/// `.` and empty ones dropped; `None` for the root itself.
pub fn normalise(name: &str) -> Result<Option<String>> {
    let shown: String = name.chars().take(200).collect();
    let refuse = |why: &str| Err(ArchiveError::Refused(format!("'{shown}': {why}")));
    if name.contains('\0') {
        return refuse("a name with a NUL byte");
    }
    if name.contains('\\') {
        return refuse("a name with a backslash (paths are '/'-separated)");
    }
    if name.starts_with('/') {
        return refuse("an absolute path (entries must be relative to the project's root)");
    }
    if name.len() > MAX_PATH_BYTES {
        return refuse("a path longer than 1024 bytes");
    }
    let mut parts = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => continue,
            ".." => return refuse("a path with '..' (entries must stay inside the project)"),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return refuse("a name longer than 255 bytes");
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn unpack_tar_gz(bytes: &[u8], tree: &mut Tree<'_>) -> Result<()> {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Refused(format!("not a .tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry
            .map_err(|e| ArchiveError::Refused(format!("not a valid .tar.gz archive: {e}")))?;
        let kind = entry.header().entry_type();
        // Metadata of the archive itself, not entries.
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        tree.count()?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw)
            .map_err(|_| ArchiveError::Refused("an entry's name is not UTF-8".into()))?;
        let path = normalise(&name)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let Some(path) = path else {
                    return Err(ArchiveError::Refused(format!(
                        "'{name}': a file without a name"
                    )));
                };
                tree.file(&path, &mut entry)?;
            }
            tar::EntryType::Directory => tree.dir(path.as_deref().unwrap_or(""))?,
            other => return Err(refused_kind(&name, tar_kind(other))),
        }
    }
    Ok(())
}

fn tar_kind(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "a symbolic link",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Char => "a character device",
        tar::EntryType::Block => "a block device",
        tar::EntryType::Fifo => "a fifo",
        tar::EntryType::GNUSparse => "a sparse file",
        _ => "an entry of an unsupported kind",
    }
}

fn refused_kind(name: &str, what: &str) -> ArchiveError {
    let shown: String = name.chars().take(200).collect();
    ArchiveError::Refused(format!(
        "'{shown}' is {what}: archives may hold only regular files and directories"
    ))
}

/// Reads a little-endian field of `N` bytes at `at`, if it is there.
fn le(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(n)?)?;
    Some(
        field
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    )
}

/// One entry of a zip's central directory: what it says of itself.
struct ZipEntry {
    name: String,
    method: u64,
    flags: u64,
    crc32: u64,
    compressed: usize,
    /// The Unix mode, when the archive was made on Unix.
    mode: Option<u32>,
    local_header: usize,
}

const ZIP_END: u64 = 0x0605_4b50;
const ZIP_CENTRAL: u64 = 0x0201_4b50;
const ZIP_LOCAL: u64 = 0x0403_4b50;

/// The central directory of a zip: its entries, in order. Zip64 is not
/// needed within the limits (50 MiB, 10,000 entries) and is refused.
fn zip_directory(bytes: &[u8], max_files: usize) -> Result<Vec<ZipEntry>> {
    let bad = |why: &str| ArchiveError::Refused(format!("not a valid .zip archive: {why}"));
    // The end record is the last thing, before a comment of at most 64 KiB.
    let earliest = bytes.len().saturating_sub(22 + 0xffff);
    let end = (earliest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&at| le(bytes, at, 4) == Some(ZIP_END))
        .ok_or_else(|| bad("no end of central directory"))?;
    let field = |at: usize, n: usize| le(bytes, end + at, n).ok_or_else(|| bad("truncated"));
    let count = field(10, 2)?;
    let offset = field(16, 4)?;
    if count == 0xffff || offset == 0xffff_ffff {
        return Err(bad("zip64 archives are not supported"));
    }
    if count as usize > max_files {
        return Err(ArchiveError::TooLarge(format!(
            "the archive has {count} entries; at most {max_files}"
        )));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = offset as usize;
    for _ in 0..count {
        let field = |off: usize, n: usize| le(bytes, at + off, n).ok_or_else(|| bad("truncated"));
        if field(0, 4)? != ZIP_CENTRAL {
            return Err(bad("a central directory entry is missing"));
        }
        let made_by = field(4, 2)?;
        let (name_len, extra_len, comment_len) = (
            field(28, 2)? as usize,
            field(30, 2)? as usize,
            field(32, 2)? as usize,
        );
        let raw_name = bytes
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("truncated"))?;
        let name = std::str::from_utf8(raw_name)
            .map_err(|_| ArchiveError::Refused("an entry's name is not UTF-8".into()))?
            .to_string();
        let compressed = field(20, 4)?;
        let local_header = field(42, 4)?;
        if compressed == 0xffff_ffff || local_header == 0xffff_ffff {
            return Err(bad("zip64 archives are not supported"));
        }
        entries.push(ZipEntry {
            name,
            method: field(10, 2)?,
            flags: field(8, 2)?,
            crc32: field(16, 4)?,
            compressed: compressed as usize,
            mode: (made_by >> 8 == 3).then(|| (field(38, 4).unwrap_or(0) >> 16) as u32),
            local_header: local_header as usize,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

fn unsupported_method(path: &str, method: u64) -> ArchiveError {
    ArchiveError::Refused(format!(
        "'{path}' is compressed with method {method}; only stored (0) and deflate (8) are read"
    ))
}

fn unpack_zip(bytes: &[u8], tree: &mut Tree<'_>) -> Result<()> {
    let bad = |why: String| ArchiveError::Refused(format!("not a valid .zip archive: {why}"));
    for entry in zip_directory(bytes, tree.limits.max_files)? {
        tree.count()?;
        let name = &entry.name;
        let path = normalise(name)?;
        // The Unix mode, when the archive was made on Unix, says links,
        // devices and fifos apart from files.
        const S_IFMT: u32 = 0o170_000;
        const S_IFREG: u32 = 0o100_000;
        const S_IFDIR: u32 = 0o040_000;
        let mode = entry.mode.map(|m| m & S_IFMT).filter(|m| *m != 0);
        let kind = match mode {
            Some(0o120_000) => Some("a symbolic link"),
            Some(0o020_000) => Some("a character device"),
            Some(0o060_000) => Some("a block device"),
            Some(0o010_000) => Some("a fifo"),
            Some(0o140_000) => Some("a socket"),
            Some(S_IFREG | S_IFDIR) | None => None,
            Some(_) => Some("an entry of an unknown kind"),
        };
        if let Some(what) = kind {
            return Err(refused_kind(name, what));
        }
        if name.ends_with('/') || mode == Some(S_IFDIR) {
            tree.dir(path.as_deref().unwrap_or(""))?;
            continue;
        }
        let Some(path) = path else {
            return Err(ArchiveError::Refused(format!(
                "'{name}': a file without a name"
            )));
        };
        if entry.flags & 1 != 0 {
            return Err(ArchiveError::Refused(format!(
                "'{path}' is encrypted: archives must not be"
            )));
        }
        // The data follows the local header, whose name and extra field
        // may differ in length from the central directory's.
        let at = entry.local_header;
        if le(bytes, at, 4) != Some(ZIP_LOCAL) {
            return Err(bad(format!("the local header of '{path}' is missing")));
        }
        let skip = |off: usize| le(bytes, at + off, 2).map(|n| n as usize);
        let (Some(name_len), Some(extra_len)) = (skip(26), skip(28)) else {
            return Err(bad("truncated".into()));
        };
        let start = at + 30 + name_len + extra_len;
        let data = bytes
            .get(start..start.saturating_add(entry.compressed))
            .ok_or_else(|| bad(format!("the data of '{path}' is cut short")))?;
        let mut reader: Box<dyn Read> = match entry.method {
            0 => Box::new(data),
            8 => Box::new(flate2::read::DeflateDecoder::new(data)),
            m => return Err(unsupported_method(&path, m)),
        };
        let mut checked = flate2::CrcReader::new(&mut reader);
        tree.file(&path, &mut checked)?;
        if u64::from(checked.crc().sum()) != entry.crc32 {
            return Err(bad(format!("'{path}' does not match its CRC-32")));
        }
    }
    Ok(())
}

/// The files of an unpacked tree, sorted by path (what `GET
/// /function/NAME/files` lists). Links are not followed (there are none).
pub fn list(root: &Path) -> std::io::Result<Vec<ProjectFile>> {
    let mut files = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push((entry.path(), path));
            } else if kind.is_file() {
                let size = entry.metadata()?.len();
                files.push(ProjectFile { path, size });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_unpacked_bytes: 1 << 20,
        max_files: 100,
    };

    fn tar_gz(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    /// A header for `name` written raw (the tar crate's own setters refuse
    /// `..` and absolute names, which is what these tests need).
    fn raw(builder: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }

    fn unpack_into(format: ArchiveFormat, bytes: &[u8]) -> Result<Vec<ProjectFile>> {
        let dir = tempfile::tempdir().unwrap();
        unpack(format, bytes, &dir.path().join("tree"), LIMITS)
    }

    #[test]
    fn names_are_normalised_and_escapes_refused() {
        assert_eq!(normalise("a/./b").unwrap().as_deref(), Some("a/b"));
        assert_eq!(normalise("./a//b/").unwrap().as_deref(), Some("a/b"));
        assert_eq!(normalise("./").unwrap(), None);
        for bad in ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\0b"] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_project_unpacks_and_lists() {
        let bytes = tar_gz(|b| {
            raw(b, "./", tar::EntryType::Directory, b"");
            raw(b, "src/", tar::EntryType::Directory, b"");
            raw(b, "src/main.rs", tar::EntryType::Regular, b"fn main(){}");
            raw(b, "Cargo.toml", tar::EntryType::Regular, b"[package]");
        });
        let dir = tempfile::tempdir().unwrap();
        let files = unpack(ArchiveFormat::TarGz, &bytes, &dir.path().join("t"), LIMITS).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["Cargo.toml", "src/main.rs"]);
        assert_eq!(list(&dir.path().join("t")).unwrap(), files);
    }

    #[test]
    fn hostile_tars_are_refused() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "..",
                tar_gz(|b| raw(b, "../x", tar::EntryType::Regular, b"x")),
            ),
            (
                "absolute",
                tar_gz(|b| raw(b, "/x", tar::EntryType::Regular, b"x")),
            ),
            (
                "symbolic link",
                tar_gz(|b| raw(b, "l", tar::EntryType::Symlink, b"")),
            ),
            (
                "hard link",
                tar_gz(|b| raw(b, "l", tar::EntryType::Link, b"")),
            ),
            (
                "character device",
                tar_gz(|b| raw(b, "d", tar::EntryType::Char, b"")),
            ),
            ("fifo", tar_gz(|b| raw(b, "f", tar::EntryType::Fifo, b""))),
            (
                "twice",
                tar_gz(|b| {
                    raw(b, "a/b", tar::EntryType::Regular, b"1");
                    raw(b, "a/./b", tar::EntryType::Regular, b"2");
                }),
            ),
            (
                "both a file and a directory",
                tar_gz(|b| {
                    raw(b, "a", tar::EntryType::Regular, b"1");
                    raw(b, "a/b", tar::EntryType::Regular, b"2");
                }),
            ),
        ];
        for (why, bytes) in cases {
            let err = unpack_into(ArchiveFormat::TarGz, &bytes).unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
            assert!(matches!(err, ArchiveError::Refused(_)), "{why}");
        }
    }

    #[test]
    fn limits_are_counted_while_unpacking() {
        let big = vec![0u8; 2 << 20];
        let bytes = tar_gz(|b| raw(b, "zeros", tar::EntryType::Regular, &big));
        assert!(bytes.len() < 10_000, "compresses well: {}", bytes.len());
        let err = unpack_into(ArchiveFormat::TarGz, &bytes).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge(_)), "{err}");
        let many = tar_gz(|b| {
            for i in 0..101 {
                raw(b, &format!("f{i}"), tar::EntryType::Regular, b"x");
            }
        });
        let err = unpack_into(ArchiveFormat::TarGz, &many).unwrap_err();
        assert!(err.to_string().contains("more than 100 files"), "{err}");
    }

    /// A zip of (name, data, Unix mode) entries, deflated: what `zip -r`
    /// writes, in small.
    fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, mode) in entries {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).unwrap();
            let packed = enc.finish().unwrap();
            let offset = out.len() as u32;
            let common = |v: &mut Vec<u8>| {
                v.extend(20u16.to_le_bytes()); // version needed
                v.extend(0u16.to_le_bytes()); // flags
                v.extend(8u16.to_le_bytes()); // deflate
                v.extend([0, 0, 0, 0]); // time, date
                v.extend(crc.sum().to_le_bytes());
                v.extend((packed.len() as u32).to_le_bytes());
                v.extend((data.len() as u32).to_le_bytes());
                v.extend((name.len() as u16).to_le_bytes());
                v.extend(0u16.to_le_bytes()); // extra
            };
            out.extend(0x0403_4b50u32.to_le_bytes());
            common(&mut out);
            out.extend(name.as_bytes());
            out.extend(&packed);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend(((3u16 << 8) | 20).to_le_bytes()); // made on Unix
            common(&mut central);
            central.extend([0; 6]); // comment, disk, internal attributes
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

    #[test]
    fn zips_unpack_and_links_are_refused() {
        let good = zip_of(&[
            ("lib/util.py", b"X = 1\n", 0o100_644),
            ("pkg/", b"", 0o040_755),
        ]);
        let files = unpack_into(ArchiveFormat::Zip, &good).unwrap();
        assert_eq!(files[0].path, "lib/util.py");
        assert_eq!(files[0].size, 6);
        let dir = tempfile::tempdir().unwrap();
        unpack(ArchiveFormat::Zip, &good, &dir.path().join("t"), LIMITS).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("t/lib/util.py")).unwrap(),
            b"X = 1\n"
        );

        let bad = zip_of(&[("escape", b"../../etc/passwd", 0o120_777)]);
        let err = unpack_into(ArchiveFormat::Zip, &bad).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let dup = zip_of(&[("a", b"1", 0o100_644), ("./a", b"2", 0o100_644)]);
        assert!(unpack_into(ArchiveFormat::Zip, &dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let bomb = zip_of(&[("zeros", &vec![0u8; 2 << 20], 0o100_644)]);
        assert!(matches!(
            unpack_into(ArchiveFormat::Zip, &bomb).unwrap_err(),
            ArchiveError::TooLarge(_)
        ));
        let mut corrupt = good.clone();
        corrupt[43] ^= 0xff; // inside the first file's deflated data
        assert!(unpack_into(ArchiveFormat::Zip, &corrupt).is_err());

        assert!(unpack_into(ArchiveFormat::Zip, b"not a zip").is_err());
        assert!(unpack_into(ArchiveFormat::TarGz, b"not a tar").is_err());
    }
}
