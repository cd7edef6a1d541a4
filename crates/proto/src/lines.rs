//! The async loops every NDJSON connection shares: bytes in → complete
//! lines out (with the decoder's size cap), and queued lines → one writer.

use std::ops::ControlFlow;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::frame::{FrameDecoder, FrameError};

/// Calls `on_line` with every line (or framing error) read from `reader`,
/// until end of stream, a read error, or `on_line` breaks. A line cut off by
/// the end of the stream is dropped: its sender is gone.
pub async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    max_len: usize,
    mut on_line: impl FnMut(Result<Vec<u8>, FrameError>) -> ControlFlow<()>,
) {
    let mut decoder = FrameDecoder::new(max_len);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.feed(&chunk[..n]);
        loop {
            let item = match decoder.next_line() {
                Ok(Some(line)) => Ok(line),
                Ok(None) => break,
                Err(err) => Err(err),
            };
            if on_line(item).is_break() {
                return;
            }
        }
    }
}

/// Writes every line received on `lines` to `writer`, in order, until the
/// channel closes or a write fails. Lines already queued are written
/// together, so a burst costs one system call instead of one per line.
pub async fn write_lines<W, C>(mut writer: W, mut lines: C)
where
    W: AsyncWrite + Unpin,
    C: LineSource,
{
    let mut batch = Vec::new();
    while let Some(line) = lines.next().await {
        batch.clear();
        batch.extend_from_slice(&line);
        while batch.len() < 256 * 1024 {
            match lines.try_next() {
                Some(more) => batch.extend_from_slice(&more),
                None => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
    }
}

/// A queue of encoded lines: bounded or unbounded tokio channels.
pub trait LineSource {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send;
    fn try_next(&mut self) -> Option<Vec<u8>>;
}

impl LineSource for mpsc::Receiver<Vec<u8>> {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send {
        self.recv()
    }

    fn try_next(&mut self) -> Option<Vec<u8>> {
        self.try_recv().ok()
    }
}

impl LineSource for mpsc::UnboundedReceiver<Vec<u8>> {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send {
        self.recv()
    }

    fn try_next(&mut self) -> Option<Vec<u8>> {
        self.try_recv().ok()
    }
}
