//! `/run/faas` for WebAssembly guests: a read-only directory holding one
//! file, `fetch`. Every open of it is a new exchange ([`FetchFile`]): the
//! guest writes a request, and its first read sends it (blocking, up to
//! the call's deadline) and starts the answer, read to end of file.
//!
//! The file is a stream, not a regular file: reads and writes ignore
//! offsets, and seeking is `ESPIPE` ([`crate::vfs::File::is_stream`]).
//! What a hostile guest can do to it, and what it gets:
//!
//! - write past the request cap: `EFBIG` (the worker's memory is bounded);
//! - write after reading: `EPIPE` (one exchange per open);
//! - read before writing: the answer `error malformed request: empty
//!   request` (and it counts);
//! - open it more than [`super::MAX_OPEN`] times at once: `EMFILE`;
//! - open it other than read-write: `EACCES`; create, remove, rename or
//!   change anything under `/run/faas`: `EROFS`.

use std::sync::{Arc, Mutex};

use super::{CallOutbound, FETCH_FILE};
use crate::vfs::{
    now_ns, Backend, DirEntry, Errno, File, Kind, OpenHow, Rel, Result, SetTime, Stat,
};

/// Inode numbers of the directory and of the file.
const DIR_INO: u64 = 1;
const FILE_INO: u64 = 2;

/// The directory mounted at `/run/faas` in a call that has grants.
pub struct FetchDir {
    call: Arc<CallOutbound>,
    /// Its device number, and when it was made (for `stat`).
    dev: u64,
    made: u64,
}

impl FetchDir {
    pub fn new(call: Arc<CallOutbound>) -> Self {
        Self {
            call,
            // Not a MemFs device number: high enough never to meet one.
            dev: 0xfe7c_0000,
            made: now_ns(),
        }
    }

    fn node(&self, kind: Kind, ino: u64) -> Stat {
        Stat {
            kind,
            dev: self.dev,
            ino,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            size: 0,
            atim: self.made,
            mtim: self.made,
            ctim: self.made,
        }
    }
}

fn is_file(path: &Rel) -> bool {
    path.len() == 1 && path[0] == FETCH_FILE
}

impl Backend for FetchDir {
    fn stat(&self, path: &Rel) -> Result<Stat> {
        match path {
            [] => Ok(self.node(Kind::Dir, DIR_INO)),
            _ if is_file(path) => Ok(self.node(Kind::File, FILE_INO)),
            _ => Err(Errno::Noent),
        }
    }

    fn read_dir(&self, path: &Rel) -> Result<Vec<DirEntry>> {
        match path {
            [] => Ok(vec![DirEntry {
                name: FETCH_FILE.into(),
                kind: Kind::File,
                ino: FILE_INO,
            }]),
            _ if is_file(path) => Err(Errno::Notdir),
            _ => Err(Errno::Noent),
        }
    }

    fn readlink(&self, _: &Rel) -> Result<String> {
        Err(Errno::Inval)
    }

    fn open(&self, path: &Rel, how: OpenHow) -> Result<Arc<dyn File>> {
        if !is_file(path) || how.create {
            return Err(Errno::Rofs);
        }
        // Writing the request and reading the answer: both, on one
        // descriptor.
        if !(how.read && how.write) {
            return Err(Errno::Access);
        }
        if !self.call.try_open() {
            return Err(Errno::Mfile);
        }
        Ok(Arc::new(FetchFile {
            call: self.call.clone(),
            stat: self.node(Kind::File, FILE_INO),
            side: Mutex::new(Side::Writing(Vec::new())),
        }))
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

/// One exchange.
struct FetchFile {
    call: Arc<CallOutbound>,
    stat: Stat,
    side: Mutex<Side>,
}

enum Side {
    /// The request so far.
    Writing(Vec<u8>),
    /// The answer, and how much of it was read.
    Reading(Vec<u8>, usize),
}

impl File for FetchFile {
    fn stat(&self) -> Result<Stat> {
        Ok(self.stat)
    }

    fn read_at(&self, buf: &mut [u8], _at: u64) -> Result<usize> {
        let mut side = self.side.lock().unwrap();
        if let Side::Writing(request) = &mut *side {
            let request = std::mem::take(request);
            *side = Side::Reading(self.call.exchange(&request), 0);
        }
        let Side::Reading(answer, read) = &mut *side else {
            unreachable!("set above");
        };
        let n = buf.len().min(answer.len() - *read);
        buf[..n].copy_from_slice(&answer[*read..*read + n]);
        *read += n;
        if *read == answer.len() {
            // Read to the end: its memory goes now, not at close.
            *answer = Vec::new();
            *read = 0;
        }
        Ok(n)
    }

    fn write_at(&self, data: &[u8], _at: u64) -> Result<usize> {
        let mut side = self.side.lock().unwrap();
        let Side::Writing(request) = &mut *side else {
            return Err(Errno::Pipe);
        };
        if (request.len() + data.len()) as u64 > self.call.max_request_bytes() {
            return Err(Errno::Fbig);
        }
        request.extend_from_slice(data);
        Ok(data.len())
    }

    fn set_len(&self, _: u64) -> Result<()> {
        Err(Errno::Inval)
    }

    fn set_times(&self, _: SetTime, _: SetTime) -> Result<()> {
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn is_stream(&self) -> bool {
        true
    }
}

impl Drop for FetchFile {
    fn drop(&mut self) {
        self.call.closed();
    }
}
