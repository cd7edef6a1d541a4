//! Read-only file mappings: big files the platform wrote and never changes
//! in place (artifacts, written to a temporary name and renamed; the
//! interpreters' files in the runtimes dir), read through the page cache
//! instead of copied into each worker's heap.
//!
//! A worker that reads CPython's 400 MB artifact into memory keeps all of
//! it (Wasmer's deserialized module keeps the buffer it was given), four
//! workers 1.6 GB; mapped, those pages are the page cache's, shared by
//! every worker and dropped under memory pressure like any clean file
//! page.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A whole file mapped read-only and private: a later rename over it does
/// not change what is mapped (the old file lives while mapped).
pub struct Mapped {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and owned: no one writes through it, and
// it is unmapped once, by Drop.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl Mapped {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Self::of(&File::open(path)?)
    }

    /// The whole of an open file.
    pub fn of(file: &File) -> std::io::Result<Self> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("the file does not fit the address space"))?;
        if len == 0 {
            return Ok(Self {
                ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
                len,
            });
        }
        // SAFETY: a fresh read-only mapping of a file we opened; no address
        // given, so nothing of ours is replaced.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The mapping as shared bytes: slices and clones of it keep it mapped.
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self)
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.len)
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes at `ptr` while we live (or a
        // dangling, aligned pointer for no bytes).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: our own mapping, unmapped once.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_keeps_the_file_it_opened() {
        let dir = std::env::temp_dir().join(format!("faas-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"first").unwrap();
        let bytes = Mapped::open(&path).unwrap().into_bytes();
        // Replaced the way the platform replaces files: a new one renamed over.
        std::fs::write(dir.join("g"), b"second").unwrap();
        std::fs::rename(dir.join("g"), &path).unwrap();
        assert_eq!(&bytes[..], b"first");
        assert_eq!(&bytes.slice(1..3)[..], b"ir");
        std::fs::write(&path, b"").unwrap();
        assert!(Mapped::open(&path).unwrap().as_ref().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
