//! The async read loop every NDJSON reader shares: bytes in, complete lines
//! out, with the decoder's size cap.

use std::ops::ControlFlow;

use tokio::io::{AsyncRead, AsyncReadExt};

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
