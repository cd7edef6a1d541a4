//! The guest's linear memory as our WASI calls read and write it: raw
//! little-endian bytes at 32-bit addresses, every access bounds-checked
//! (`EFAULT`), nothing trusted.

use wasmer::MemoryView;

use crate::vfs::{Errno, Result};

/// Most bytes one read or write call moves (wasmtime caps a call's
/// buffers too): a guest cannot make us allocate more than this at once.
pub const MAX_IO: usize = 16 * 1024 * 1024;

pub struct Guest<'a>(pub MemoryView<'a>);

impl Guest<'_> {
    pub fn read(&self, ptr: u32, len: u32) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        self.0
            .read(ptr as u64, &mut buf)
            .map_err(|_| Errno::Fault)?;
        Ok(buf)
    }

    pub fn write(&self, ptr: u32, bytes: &[u8]) -> Result<()> {
        self.0.write(ptr as u64, bytes).map_err(|_| Errno::Fault)
    }

    pub fn put_u32(&self, ptr: u32, value: u32) -> Result<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    pub fn put_u64(&self, ptr: u32, value: u64) -> Result<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// A path argument: UTF-8 (`EILSEQ` otherwise), without NUL.
    pub fn path(&self, ptr: u32, len: u32) -> Result<String> {
        if len as usize > 64 * 1024 {
            return Err(Errno::Nametoolong);
        }
        let bytes = self.read(ptr, len)?;
        if bytes.contains(&0) {
            return Err(Errno::Inval);
        }
        String::from_utf8(bytes).map_err(|_| Errno::Ilseq)
    }

    /// An array of `n` (pointer, length) buffers, as `fd_read` and
    /// `fd_write` take them.
    pub fn iovecs(&self, ptr: u32, n: u32) -> Result<Vec<(u32, u32)>> {
        if n > 1024 {
            return Err(Errno::Inval);
        }
        let raw = self.read(ptr, n * 8)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| {
                let buf = u32::from_le_bytes(c[0..4].try_into().expect("4 bytes"));
                let len = u32::from_le_bytes(c[4..8].try_into().expect("4 bytes"));
                (buf, len)
            })
            .collect())
    }

    /// The bytes of the buffers `iovs` (at most [`MAX_IO`]).
    pub fn gather(&self, iovs: &[(u32, u32)]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for &(buf, len) in iovs {
            let room = MAX_IO - out.len();
            let take = (len as usize).min(room) as u32;
            out.extend(self.read(buf, take)?);
            if out.len() == MAX_IO {
                break;
            }
        }
        Ok(out)
    }

    /// Spreads `data` over the buffers `iovs`, in order.
    pub fn scatter(&self, iovs: &[(u32, u32)], data: &[u8]) -> Result<()> {
        let mut rest = data;
        for &(buf, len) in iovs {
            let n = (len as usize).min(rest.len());
            self.write(buf, &rest[..n])?;
            rest = &rest[n..];
            if rest.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

/// Total length of the buffers `iovs`, capped at [`MAX_IO`].
pub fn capacity(iovs: &[(u32, u32)]) -> usize {
    iovs.iter()
        .map(|&(_, len)| len as usize)
        .fold(0usize, |a, b| a.saturating_add(b))
        .min(MAX_IO)
}
