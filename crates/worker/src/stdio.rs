//! A guest's standard streams, in memory.
//!
//! - [`CappedOutput`] (stdout/stderr) keeps at most `cap` bytes and drops the
//!   rest, remembering that it did. Wasmer's own `Pipe` is unbounded, so a
//!   function printing in a loop would grow the worker until its deadline.
//! - [`PendingInput`] (stdin) gets its bytes when the call starts, so an
//!   instance can be built before its payload is known (see
//!   `Sandbox::prepare`).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use wasmer_wasix::virtual_fs::{FsError, VirtualFile};

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

/// A write-only, capped capture file. Clones share the buffer.
#[derive(Debug, Clone)]
pub struct CappedOutput {
    inner: Arc<Mutex<Captured>>,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Captured {
                bytes: Vec::new(),
                cap,
                truncated: false,
            })),
        }
    }

    /// Sets the cap for the next call (before anything is written).
    pub fn set_cap(&self, cap: usize) {
        self.inner.lock().unwrap().cap = cap;
    }

    /// What was kept, and whether anything was dropped.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut inner = self.inner.lock().unwrap();
        (std::mem::take(&mut inner.bytes), inner.truncated)
    }

    fn write(&self, buf: &[u8]) {
        let mut inner = self.inner.lock().unwrap();
        let room = inner.cap.saturating_sub(inner.bytes.len());
        if buf.len() > room {
            inner.truncated = true;
        }
        inner.bytes.extend_from_slice(&buf[..buf.len().min(room)]);
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Past the cap the bytes are accepted and dropped: the guest keeps
        // running normally and the response says `truncated`.
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for CappedOutput {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Reading stdout from the guest side gives end of file.
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for CappedOutput {
    fn start_seek(self: Pin<&mut Self>, _: io::SeekFrom) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "stdout is not seekable",
        ))
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(0))
    }
}

impl VirtualFile for CappedOutput {
    fn last_accessed(&self) -> u64 {
        0
    }

    fn last_modified(&self) -> u64 {
        0
    }

    fn created_time(&self) -> u64 {
        0
    }

    fn size(&self) -> u64 {
        0
    }

    fn set_len(&mut self, _: u64) -> Result<(), FsError> {
        Ok(())
    }

    fn unlink(&mut self) -> Result<(), FsError> {
        Ok(())
    }

    fn poll_read_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(0))
    }

    fn poll_write_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(64 * 1024))
    }
}

#[derive(Debug, Default)]
struct Input {
    bytes: Vec<u8>,
    read: usize,
}

/// A read-only stdin whose content is set just before the call; reads past
/// it give end of file. Clones share the content.
#[derive(Debug, Clone, Default)]
pub struct PendingInput {
    inner: Arc<Mutex<Input>>,
}

impl PendingInput {
    pub fn set(&self, bytes: Vec<u8>) {
        *self.inner.lock().unwrap() = Input { bytes, read: 0 };
    }

    pub(crate) fn remaining(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.bytes.len() - inner.read
    }
}

impl AsyncRead for PendingInput {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.inner.lock().unwrap();
        let start = inner.read;
        let n = buf.remaining().min(inner.bytes.len() - start);
        buf.put_slice(&inner.bytes[start..start + n]);
        inner.read += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PendingInput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "stdin is read-only",
        )))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for PendingInput {
    fn start_seek(self: Pin<&mut Self>, _: io::SeekFrom) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "stdin is not seekable",
        ))
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(0))
    }
}

impl VirtualFile for PendingInput {
    fn last_accessed(&self) -> u64 {
        0
    }

    fn last_modified(&self) -> u64 {
        0
    }

    fn created_time(&self) -> u64 {
        0
    }

    fn size(&self) -> u64 {
        self.remaining() as u64
    }

    fn set_len(&mut self, _: u64) -> Result<(), FsError> {
        Err(FsError::PermissionDenied)
    }

    fn unlink(&mut self) -> Result<(), FsError> {
        Ok(())
    }

    fn poll_read_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.remaining()))
    }

    fn poll_write_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_the_cap() {
        let out = CappedOutput::new(5);
        out.write(b"abc");
        out.write(b"defgh");
        assert_eq!(out.take(), (b"abcde".to_vec(), true));
        let out = CappedOutput::new(5);
        out.write(b"abcde");
        assert_eq!(out.take(), (b"abcde".to_vec(), false));
    }

    #[test]
    fn pending_input_reads_what_was_set_then_eof() {
        use tokio::io::AsyncReadExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let input = PendingInput::default();
        input.set(b"hello".to_vec());
        let mut reader = input.clone();
        let mut got = Vec::new();
        rt.block_on(reader.read_to_end(&mut got)).unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(input.remaining(), 0);
    }
}
