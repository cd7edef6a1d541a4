//! Secrets at rest: values a deployer stores with `PUT /secret/NAME` and
//! functions read as `/run/secrets/NAME`.
//!
//! Each secret is one file `NAME.sealed` in the secrets directory: JSON
//! with its times and the value sealed with ChaCha20-Poly1305 under the
//! key of `--secrets-key-file` (a fresh random nonce per write, the name as
//! associated data, so a sealed value moved to another name does not open).
//! The key never leaves this process and is never written beside the
//! values. A file `.keycheck` holds a known text sealed with the key: a
//! restart with another key fails at start, naming the key file, instead of
//! serving undecryptable secrets.
//!
//! The AEAD is `ring`'s, already compiled for rustls (object_store's TLS):
//! a maintained, audited implementation at no added crate.
//!
//! Values are decrypted when loaded and kept in memory, so a call pays no
//! crypto; one that does not open (a tampered file) is kept as broken, and
//! calls of functions that read it fail with 500 naming the secret.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Bytes of a secrets key.
pub const KEY_LEN: usize = 32;
/// Largest value (the gateway refuses more with 413 before it gets here).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most secrets one store holds.
pub const MAX_SECRETS: usize = 1000;
/// Most secrets one function may read.
pub const MAX_SECRETS_PER_FUNCTION: usize = 64;

const KEYCHECK_FILE: &str = ".keycheck";
const KEYCHECK_TEXT: &[u8] = b"faas secrets key check v1";

/// Why the secret store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secrets key file {path}: {why}")]
    Key { path: String, why: String },
    #[error("secrets directory {path}: {why}")]
    Io { path: String, why: String },
    #[error("the secrets key in {key} does not open the secrets stored in {dir} (a different key, or a damaged {KEYCHECK_FILE}); start with the key they were stored with")]
    WrongKey { key: String, dir: String },
}

/// A secret name: what may follow `/run/secrets/`.
pub fn check_name(name: &str) -> Result<(), String> {
    let shown: String = name.chars().take(64).collect();
    let mut chars = name.chars();
    let valid = name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{shown}' is not a secret name (1 to 64 letters, digits, '_', '-' and '.', starting with a letter, digit or '_')"
        ))
    }
}

/// One secret as stored on disk.
#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u32,
    created: u64,
    updated: u64,
    /// The value's length (listed without decrypting).
    size: u64,
    nonce: String,
    sealed: String,
}

/// A loaded secret.
#[derive(Clone)]
struct Entry {
    created: u64,
    updated: u64,
    size: u64,
    /// sha256 of the sealed file, hex: what a shared index names.
    digest: String,
    /// The value, or why it does not open.
    value: Result<Arc<[u8]>, String>,
}

/// A secret's listing (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    pub size: u64,
    pub created: u64,
    pub updated: u64,
}

/// Secret values by name, as a call gets them.
pub type Values = Vec<(String, Arc<[u8]>)>;

/// Why a function's secret cannot be handed to a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("secret '{0}' does not exist (store it with PUT /secret/{0})")]
    Missing(String),
    #[error("secret '{0}' cannot be decrypted (tampered with, or stored with another key); store it again")]
    Broken(String),
}

/// The secret store of one Server.
pub struct SecretStore {
    dir: PathBuf,
    key: LessSafeKey,
    rng: SystemRandom,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Serialises writers (put, delete): a file and the map change together.
    write: std::sync::Mutex<()>,
    /// Secrets named by deploys in progress (checked, not yet committed),
    /// with how many: a delete must not slip between a deploy's check and
    /// its commit (it found no stored version reading the secret, and the
    /// version then published read a secret that no longer existed).
    claimed: std::sync::Mutex<BTreeMap<String, usize>>,
}

/// A deploy's hold on the secrets it names, from its check until its
/// version is stored (then [`SecretStore::remove_unused`] sees the version
/// itself); released when dropped, whether the deploy succeeded or not.
pub struct Claim<'a> {
    store: &'a SecretStore,
    names: Vec<String>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claimed = self.store.claimed.lock().unwrap();
        for name in &self.names {
            if let Some(count) = claimed.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    claimed.remove(name);
                }
            }
        }
    }
}

/// What [`SecretStore::remove_unused`] did.
#[derive(Debug)]
pub enum Removal {
    Removed,
    /// No such secret.
    Missing,
    /// Stored versions of these functions read it.
    Used(Vec<String>),
    /// A deploy naming it is in progress.
    Claimed,
    Failed(std::io::Error),
}

impl SecretStore {
    /// Opens the store in `dir` with the key in `key_file`. When
    /// `create_key` and the key file does not exist, a random key is
    /// written there (mode 0600) first. Fails when the key does not open
    /// what `dir` holds.
    pub fn open(dir: &Path, key_file: &Path, create_key: bool) -> Result<Self, SecretError> {
        let key = read_or_create_key(key_file, create_key, &SystemRandom::new())?;
        Self::open_with_key(dir, key, &key_file.display().to_string())
    }

    /// Opens the store in `dir` with `key_bytes` (`describe` names where
    /// the key comes from, in errors).
    pub fn open_with_key(
        dir: &Path,
        key_bytes: [u8; KEY_LEN],
        describe: &str,
    ) -> Result<Self, SecretError> {
        let rng = SystemRandom::new();
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &key_bytes).expect("a 32-byte key"),
        );
        let io = |why: std::io::Error| SecretError::Io {
            path: dir.display().to_string(),
            why: why.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let store = Self {
            dir: dir.to_path_buf(),
            key,
            rng,
            entries: RwLock::new(BTreeMap::new()),
            write: std::sync::Mutex::new(()),
            claimed: std::sync::Mutex::new(BTreeMap::new()),
        };
        store.check_key(describe)?;
        store.load()?;
        Ok(store)
    }

    /// A sealed known text: whoever opens it holds this store's key.
    pub fn keycheck(&self) -> Vec<u8> {
        self.seal(KEYCHECK_FILE, KEYCHECK_TEXT, 0, 0)
    }

    /// Whether `bytes` is a [`keycheck`](Self::keycheck) of this key.
    pub fn opens_keycheck(&self, bytes: &[u8]) -> bool {
        let opened = serde_json::from_slice::<Sealed>(bytes)
            .ok()
            .and_then(|s| self.open_sealed(KEYCHECK_FILE, &s).ok());
        opened.as_deref() == Some(KEYCHECK_TEXT)
    }

    /// Opens `.keycheck` (written on first use of a directory).
    fn check_key(&self, describe: &str) -> Result<(), SecretError> {
        let path = self.dir.join(KEYCHECK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                if self.opens_keycheck(&bytes) {
                    Ok(())
                } else {
                    Err(SecretError::WrongKey {
                        key: describe.to_string(),
                        dir: self.dir.display().to_string(),
                    })
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let sealed = self.keycheck();
                write_atomically(&path, &sealed).map_err(|e| SecretError::Io {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })
            }
            Err(e) => Err(SecretError::Io {
                path: path.display().to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// Reads every `NAME.sealed`; one that does not open is kept as broken
    /// (and logged by name), the others serve.
    fn load(&self) -> Result<(), SecretError> {
        let io = |why: std::io::Error| SecretError::Io {
            path: self.dir.display().to_string(),
            why: why.to_string(),
        };
        let mut entries = BTreeMap::new();
        for dirent in std::fs::read_dir(&self.dir).map_err(io)? {
            let dirent = dirent.map_err(io)?;
            let file = dirent.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".sealed") else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let bytes = std::fs::read(dirent.path()).map_err(io)?;
            let entry = self.entry_of(name, &bytes);
            if let Err(why) = &entry.value {
                log::error!(target: "SERVER", "secret '{name}' cannot be used: {why}");
            }
            entries.insert(name.to_string(), entry);
        }
        *self.entries.write().unwrap() = entries;
        Ok(())
    }

    /// Stores `value` as `name`; true when it did not exist before.
    pub fn put(&self, name: &str, value: &[u8], now: u64) -> Result<(bool, SecretMeta), String> {
        let sealed = self.seal_value(name, value, now)?;
        let created = !self.contains(name);
        if created && self.entries.read().unwrap().len() >= MAX_SECRETS {
            return Err(format!("the store holds {MAX_SECRETS} secrets already"));
        }
        let meta = self.install(name, &sealed)?;
        Ok((created, meta))
    }

    /// `value` sealed as `name`'s (its creation time kept when it exists),
    /// without storing it: what a shared store uploads.
    pub fn seal_value(&self, name: &str, value: &[u8], now: u64) -> Result<Vec<u8>, String> {
        check_name(name)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "a secret holds at most {MAX_VALUE_BYTES} bytes ({} given)",
                value.len()
            ));
        }
        let created = self
            .entries
            .read()
            .unwrap()
            .get(name)
            .map_or(now, |e| e.created);
        Ok(self.seal(name, value, created, now))
    }

    /// Stores a sealed value (sealed here, or read from a shared store) as
    /// `name`. One that does not open with this key is refused, and what
    /// was stored before stays.
    pub fn install(&self, name: &str, sealed: &[u8]) -> Result<SecretMeta, String> {
        check_name(name)?;
        let entry = self.entry_of(name, sealed);
        if let Err(why) = &entry.value {
            return Err(format!("secret '{name}' refused: {why}"));
        }
        let _writer = self.write.lock().unwrap();
        let path = self.dir.join(format!("{name}.sealed"));
        write_atomically(&path, sealed).map_err(|e| {
            log::error!(target: "SERVER", "storing secret '{name}': {e}");
            format!("could not store secret '{name}' (see the server log)")
        })?;
        let meta = meta_of(name, &entry);
        self.entries
            .write()
            .unwrap()
            .insert(name.to_string(), entry);
        Ok(meta)
    }

    /// sha256 (hex) of `name`'s sealed file, when it is stored here.
    pub fn digest(&self, name: &str) -> Option<String> {
        self.entries
            .read()
            .unwrap()
            .get(name)
            .map(|e| e.digest.clone())
    }

    /// Every stored name.
    pub fn names(&self) -> Vec<String> {
        self.entries.read().unwrap().keys().cloned().collect()
    }

    /// A stored file's entry: the value when it opens, else why not.
    fn entry_of(&self, name: &str, bytes: &[u8]) -> Entry {
        use sha2::Digest as _;
        let digest = crate::cluster::objects::hex(&sha2::Sha256::digest(bytes));
        match serde_json::from_slice::<Sealed>(bytes) {
            Ok(sealed) => {
                let value: Result<Arc<[u8]>, String> =
                    self.open_sealed(name, &sealed).map(Arc::from);
                Entry {
                    created: sealed.created,
                    updated: sealed.updated,
                    // The opened value's, not the file's unauthenticated field.
                    size: value.as_ref().map_or(sealed.size, |v| v.len() as u64),
                    digest,
                    value,
                }
            }
            Err(e) => Entry {
                created: 0,
                updated: 0,
                size: 0,
                digest,
                value: Err(format!("not a sealed secret: {e}")),
            },
        }
    }

    /// Removes `name` whatever uses it (a shared store's sync, which
    /// follows the index); false when it did not exist.
    pub fn remove(&self, name: &str) -> std::io::Result<bool> {
        if check_name(name).is_err() {
            return Ok(false);
        }
        let _writer = self.write.lock().unwrap();
        if !self.entries.read().unwrap().contains_key(name) {
            return Ok(false);
        }
        match std::fs::remove_file(self.dir.join(format!("{name}.sealed"))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.entries.write().unwrap().remove(name);
        Ok(true)
    }

    /// Holds `names` for a deploy until the returned claim is dropped;
    /// `Err(name)`: that one does not exist. Checked and claimed under the
    /// writers' lock, so no delete comes between.
    pub fn claim(&self, names: &[String]) -> Result<Claim<'_>, String> {
        let _writer = self.write.lock().unwrap();
        let entries = self.entries.read().unwrap();
        if let Some(missing) = names.iter().find(|n| !entries.contains_key(*n)) {
            return Err(missing.clone());
        }
        let mut claimed = self.claimed.lock().unwrap();
        for name in names {
            *claimed.entry(name.clone()).or_default() += 1;
        }
        Ok(Claim {
            store: self,
            names: names.to_vec(),
        })
    }

    /// Removes `name` unless a deploy in progress names it or `users`
    /// (the functions whose stored versions read it, asked under the
    /// writers' lock: a deploy's claim is released only once its version
    /// is stored) is not empty.
    pub fn remove_unused(&self, name: &str, users: impl FnOnce() -> Vec<String>) -> Removal {
        let _writer = self.write.lock().unwrap();
        let users = users();
        if !users.is_empty() {
            return Removal::Used(users);
        }
        if self.claimed.lock().unwrap().contains_key(name) {
            return Removal::Claimed;
        }
        if !self.entries.read().unwrap().contains_key(name) {
            return Removal::Missing;
        }
        match std::fs::remove_file(self.dir.join(format!("{name}.sealed"))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Removal::Failed(e),
        }
        self.entries.write().unwrap().remove(name);
        Removal::Removed
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.read().unwrap().contains_key(name)
    }

    /// Every secret's listing, by name.
    pub fn list(&self) -> Vec<SecretMeta> {
        self.entries
            .read()
            .unwrap()
            .iter()
            .map(|(name, entry)| meta_of(name, entry))
            .collect()
    }

    /// The values of `names`, for a call.
    pub fn values(&self, names: &[String]) -> Result<Values, ReadError> {
        let entries = self.entries.read().unwrap();
        names
            .iter()
            .map(|name| match entries.get(name).map(|e| &e.value) {
                None => Err(ReadError::Missing(name.clone())),
                Some(Err(_)) => Err(ReadError::Broken(name.clone())),
                Some(Ok(value)) => Ok((name.clone(), value.clone())),
            })
            .collect()
    }

    fn seal(&self, name: &str, value: &[u8], created: u64, updated: u64) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system's random source");
        let mut sealed = value.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(name)),
                &mut sealed,
            )
            .expect("sealing fits in memory");
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::to_vec(&Sealed {
            v: 1,
            created,
            updated,
            size: value.len() as u64,
            nonce: b64.encode(nonce),
            sealed: b64.encode(&sealed),
        })
        .expect("plain JSON")
    }

    fn open_sealed(&self, name: &str, sealed: &Sealed) -> Result<Vec<u8>, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if sealed.v != 1 {
            return Err(format!("unknown format version {}", sealed.v));
        }
        let nonce: [u8; NONCE_LEN] = b64
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or("a bad nonce")?;
        let mut bytes = b64.decode(&sealed.sealed).map_err(|_| "bad base64")?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(name)),
                &mut bytes,
            )
            .map_err(|_| "it does not open with this key (tampered, or another key)")?;
        Ok(plain.to_vec())
    }
}

fn meta_of(name: &str, entry: &Entry) -> SecretMeta {
    SecretMeta {
        name: name.to_string(),
        size: entry.size,
        created: entry.created,
        updated: entry.updated,
    }
}

/// What a sealed value is bound to: its name (a file renamed to another
/// secret's name does not open).
fn aad(name: &str) -> Vec<u8> {
    format!("faas-secret-v1\0{name}").into_bytes()
}

/// The key in `path`: 32 raw bytes, or 64 hex digits (with an optional
/// newline: `openssl rand -hex 32 > key`). Created when asked and absent.
fn read_or_create_key(
    path: &Path,
    create: bool,
    rng: &SystemRandom,
) -> Result<[u8; KEY_LEN], SecretError> {
    let err = |why: String| SecretError::Key {
        path: path.display().to_string(),
        why,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut key = [0u8; KEY_LEN];
            rng.fill(&mut key)
                .map_err(|_| err("no random source".into()))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(format!("cannot create it: {e}")))?;
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(|e| err(format!("cannot write it: {e}")))?;
            log::warn!(target: "SERVER", "created a new secrets key in {}: back it up, the stored secrets cannot be read without it", path.display());
            return Ok(key);
        }
        Err(e) => return Err(err(e.to_string())),
    };
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(target: "SERVER", "secrets key file {} is readable by other users (chmod 600 it)", path.display());
        }
    }
    if bytes.len() == KEY_LEN {
        return Ok(bytes.try_into().expect("length checked"));
    }
    let text = std::str::from_utf8(&bytes).unwrap_or_default().trim();
    if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut key = [0u8; KEY_LEN];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex checked");
        }
        return Ok(key);
    }
    Err(err(format!(
        "a key is {KEY_LEN} random bytes or {} hex digits ({} bytes found)",
        2 * KEY_LEN,
        bytes.len()
    )))
}

/// Writes `bytes` to `path` through a temporary file and a rename: a crash
/// leaves the old value or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> SecretStore {
        SecretStore::open(&dir.join("secrets"), &dir.join("key"), true).unwrap()
    }

    #[test]
    fn a_value_round_trips_and_is_not_stored_in_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let value = b"hunter2-\x00\xff-very-secret";
        assert!(s.put("db", value, 10).unwrap().0);
        assert!(!s.put("db", value, 20).unwrap().0);
        let on_disk = std::fs::read(tmp.path().join("secrets/db.sealed")).unwrap();
        assert!(!on_disk.windows(6).any(|w| w == b"hunter"));
        let reopened = store(tmp.path());
        let values = reopened.values(&["db".into()]).unwrap();
        assert_eq!(&*values[0].1, value);
        let meta = &reopened.list()[0];
        assert_eq!(
            (meta.created, meta.updated, meta.size),
            (10, 20, value.len() as u64)
        );
        let mode = std::fs::metadata(tmp.path().join("key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn another_key_fails_at_open_naming_the_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        store(tmp.path()).put("db", b"x", 1).unwrap();
        std::fs::write(tmp.path().join("other"), "ab".repeat(32)).unwrap();
        let err = SecretStore::open(
            &tmp.path().join("secrets"),
            &tmp.path().join("other"),
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("other") && err.contains("does not open"),
            "{err}"
        );
    }

    #[test]
    fn a_tampered_or_moved_value_is_refused_by_name_never_returned() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        s.put("a", b"value-a", 1).unwrap();
        s.put("b", b"value-b", 1).unwrap();
        let dir = tmp.path().join("secrets");
        // b's file under a's name: the name is authenticated.
        std::fs::copy(dir.join("b.sealed"), dir.join("a.sealed")).unwrap();
        // One flipped bit in c.
        s.put("c", b"value-c", 1).unwrap();
        let mut sealed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("c.sealed")).unwrap()).unwrap();
        let text = sealed["sealed"].as_str().unwrap().to_string();
        let flipped = if text.starts_with('A') { "B" } else { "A" };
        sealed["sealed"] = format!("{flipped}{}", &text[1..]).into();
        std::fs::write(dir.join("c.sealed"), sealed.to_string()).unwrap();
        let s = store(tmp.path());
        assert_eq!(
            s.values(&["a".into()]).unwrap_err(),
            ReadError::Broken("a".into())
        );
        assert_eq!(
            s.values(&["c".into()]).unwrap_err(),
            ReadError::Broken("c".into())
        );
        assert_eq!(&*s.values(&["b".into()]).unwrap()[0].1, b"value-b");
        assert_eq!(
            s.values(&["zz".into()]).unwrap_err(),
            ReadError::Missing("zz".into())
        );
    }

    #[test]
    fn names_and_sizes_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(s.put(bad, b"v", 1).is_err(), "{bad:?}");
        }
        assert!(s.put("ok.name-1_", b"v", 1).is_ok());
        assert!(s.put("big", &vec![0; MAX_VALUE_BYTES + 1], 1).is_err());
    }

    #[test]
    fn a_claimed_secret_is_not_removed_until_the_claim_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        s.put("db", b"v", 1).unwrap();
        assert_eq!(
            s.claim(&["db".into(), "zz".into()]).err(),
            Some("zz".into())
        );
        let first = s.claim(&["db".into()]).unwrap();
        let second = s.claim(&["db".into()]).unwrap();
        assert!(matches!(s.remove_unused("db", Vec::new), Removal::Claimed));
        drop(first);
        assert!(matches!(s.remove_unused("db", Vec::new), Removal::Claimed));
        drop(second);
        assert!(matches!(
            s.remove_unused("db", || vec!["f".into()]),
            Removal::Used(_)
        ));
        assert!(matches!(s.remove_unused("db", Vec::new), Removal::Removed));
        assert!(matches!(s.remove_unused("db", Vec::new), Removal::Missing));
    }

    #[test]
    fn a_hex_key_file_is_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("key"), format!("{}\n", "0f".repeat(32))).unwrap();
        let s = SecretStore::open(&tmp.path().join("secrets"), &tmp.path().join("key"), false);
        assert!(s.is_ok());
        std::fs::write(tmp.path().join("short"), "abc").unwrap();
        let err = SecretStore::open(&tmp.path().join("s2"), &tmp.path().join("short"), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("32 random bytes"), "{err}");
    }
}
