//! Read-only places answer `EROFS`, as a read-only mount does.
//!
//! [`ReadOnly`] wraps a backend (a `worker run --dir HOST:GUEST:ro`
//! directory) so reading passes and every change fails with `EROFS`
//! before the backend sees it. The in-memory trees that are read-only (an
//! interpreter's `/faas`, the root holding the mount points) answer the
//! same by themselves ([`crate::tmpfs::MemFs::read_only`]). Nothing a call
//! writes can land anywhere but its capped `/tmp`: a writable `/faas` once
//! took 4 GB from one call.

use std::sync::Arc;

use crate::vfs::{Backend, DirEntry, Errno, File, OpenHow, Rel, Result, SetTime, Stat};

/// `backend`, with every change refused.
pub struct ReadOnly(pub Arc<dyn Backend>);

impl Backend for ReadOnly {
    fn stat(&self, path: &Rel) -> Result<Stat> {
        self.0.stat(path)
    }
    fn read_dir(&self, path: &Rel) -> Result<Vec<DirEntry>> {
        self.0.read_dir(path)
    }
    fn readlink(&self, path: &Rel) -> Result<String> {
        self.0.readlink(path)
    }
    fn open(&self, path: &Rel, how: OpenHow) -> Result<Arc<dyn File>> {
        if how.write || how.create || how.truncate {
            return Err(Errno::Rofs);
        }
        Ok(Arc::new(ReadOnlyFile(self.0.open(path, how)?)))
    }
    fn mkdir(&self, _: &Rel) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn rmdir(&self, _: &Rel) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn unlink(&self, _: &Rel) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn rename(&self, _: &Rel, _: &Rel) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn link(&self, _: &Rel, _: &Rel) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn symlink(&self, _: &str, _: &Rel) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn set_times(&self, _: &Rel, _: SetTime, _: SetTime) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn read_only(&self) -> bool {
        true
    }
}

/// A file of a [`ReadOnly`] backend: reads pass, changes fail.
struct ReadOnlyFile(Arc<dyn File>);

impl File for ReadOnlyFile {
    fn stat(&self) -> Result<Stat> {
        self.0.stat()
    }
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<usize> {
        self.0.read_at(buf, at)
    }
    fn write_at(&self, _: &[u8], _: u64) -> Result<usize> {
        Err(Errno::Rofs)
    }
    fn set_len(&self, _: u64) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn set_times(&self, _: SetTime, _: SetTime) -> Result<()> {
        Err(Errno::Rofs)
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
