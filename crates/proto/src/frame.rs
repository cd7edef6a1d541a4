//! Newline-delimited JSON framing.
//!
//! [`FrameDecoder`] buffers bytes as they arrive and hands out complete lines.
//! It never holds more than `max_len` bytes of one unfinished line: a peer that
//! sends an endless line gets [`FrameError::TooLong`] instead of making the
//! reader allocate without bound.

use serde::{de::DeserializeOwned, Serialize};

/// Largest line accepted by default: room for a 16 MiB body even when JSON
/// escaping grows every byte sixfold, plus the envelope.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// Why a line could not be turned into a message.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A line grew past the decoder's limit; the rest of it is discarded.
    #[error("message longer than the {limit}-byte limit")]
    TooLong { limit: usize },
    /// The stream ended in the middle of a line.
    #[error("connection closed in the middle of a message ({pending} bytes pending)")]
    Incomplete { pending: usize },
    /// The line is not a JSON message of the expected shape.
    #[error("malformed message: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// Serialises `msg` as one JSON line, newline included.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising our own message types cannot fail: they hold no maps with
    // non-string keys and no types whose Serialize impl can error.
    let mut line = serde_json::to_vec(msg).expect("protocol messages always serialise");
    line.push(b'\n');
    line
}

/// Parses one line (with or without its trailing newline) as a `T`.
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, FrameError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(serde_json::from_slice(line)?)
}

/// Splits a byte stream into lines of at most `max_len` bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for a newline, so each byte is scanned once.
    scanned: usize,
    /// Set while dropping the remainder of a line that was too long.
    discarding: bool,
    max_len: usize,
}

impl FrameDecoder {
    pub fn new(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            discarding: false,
            max_len,
        }
    }

    /// Appends bytes read from the stream.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete line without its newline, `Ok(None)` when
    /// more bytes are needed, or `TooLong` once per oversized line (the
    /// decoder then skips to the next newline and carries on).
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                Some(offset) => {
                    let end = self.scanned + offset;
                    let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                    self.scanned = 0;
                    line.pop();
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if line.len() > self.max_len {
                        return Err(FrameError::TooLong {
                            limit: self.max_len,
                        });
                    }
                    return Ok(Some(line));
                }
                None => {
                    self.scanned = self.buf.len();
                    if self.buf.len() > self.max_len {
                        self.buf.clear();
                        self.scanned = 0;
                        if !self.discarding {
                            self.discarding = true;
                            return Err(FrameError::TooLong {
                                limit: self.max_len,
                            });
                        }
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Whether a complete line is already buffered (so reading the next one
    /// will not block).
    pub fn has_line(&self) -> bool {
        self.buf.contains(&b'\n')
    }

    /// Call at end of stream: an unfinished line is an error.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        let pending = self.buf.len();
        self.buf.clear();
        self.scanned = 0;
        if pending == 0 || self.discarding {
            self.discarding = false;
            Ok(())
        } else {
            Err(FrameError::Incomplete { pending })
        }
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

/// Reads messages from a blocking reader, one line at a time.
pub struct LineReader<R> {
    inner: R,
    decoder: FrameDecoder,
    chunk: Box<[u8]>,
}

impl<R: std::io::Read> LineReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        Self {
            inner,
            decoder: FrameDecoder::new(max_len),
            chunk: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }

    /// Whether a complete line is already buffered.
    pub fn has_line(&self) -> bool {
        self.decoder.has_line()
    }

    /// The underlying reader (e.g. to poll it for readiness).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The next line, `Ok(None)` at a clean end of stream.
    pub fn next_line(&mut self) -> std::io::Result<Option<Result<Vec<u8>, FrameError>>> {
        loop {
            match self.decoder.next_line() {
                Ok(Some(line)) => return Ok(Some(Ok(line))),
                Ok(None) => {}
                Err(err) => return Ok(Some(Err(err))),
            }
            let n = match self.inner.read(&mut self.chunk) {
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if n == 0 {
                return match self.decoder.finish() {
                    Ok(()) => Ok(None),
                    Err(err) => Ok(Some(Err(err))),
                };
            }
            self.decoder.feed(&self.chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::*;
    use crate::{FunctionSettings, HttpRequest, Lang, ServiceError};

    #[test]
    fn lines_split_across_feeds() {
        let mut d = FrameDecoder::new(100);
        d.feed(b"{\"a\":");
        assert!(d.next_line().unwrap().is_none());
        d.feed(b"1}\n{\"b\":2}\n{\"c\"");
        assert_eq!(d.next_line().unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(d.next_line().unwrap().unwrap(), b"{\"b\":2}");
        assert!(d.next_line().unwrap().is_none());
        assert!(matches!(
            d.finish(),
            Err(FrameError::Incomplete { pending: 4 })
        ));
    }

    #[test]
    fn oversized_line_is_reported_once_then_skipped() {
        let mut d = FrameDecoder::new(8);
        d.feed(b"0123456789abcdef");
        assert!(matches!(
            d.next_line(),
            Err(FrameError::TooLong { limit: 8 })
        ));
        d.feed(b"still the same line");
        assert!(d.next_line().unwrap().is_none());
        d.feed(b"\nok\n");
        assert_eq!(d.next_line().unwrap().unwrap(), b"ok");
        assert!(d.finish().is_ok());
    }

    #[test]
    fn oversized_complete_line_is_rejected() {
        let mut d = FrameDecoder::new(4);
        d.feed(b"toolong\nok\n");
        assert!(matches!(d.next_line(), Err(FrameError::TooLong { .. })));
        assert_eq!(d.next_line().unwrap().unwrap(), b"ok");
    }

    #[test]
    fn malformed_json_is_a_typed_error() {
        for bad in [
            &b"not json"[..],
            b"{\"type\":\"invoke\"}",
            b"{\"type\":\"nope\",\"req\":1}",
            b"[1,2]",
            b"",
        ] {
            assert!(matches!(
                decode::<ServerRequest>(bad),
                Err(FrameError::Invalid(_))
            ));
        }
    }

    #[test]
    fn line_reader_reads_until_eof() {
        let data = b"{\"x\":1}\n{\"y\":2}\n".to_vec();
        let mut r = LineReader::new(&data[..], 1024);
        assert_eq!(r.next_line().unwrap().unwrap().unwrap(), b"{\"x\":1}");
        assert_eq!(r.next_line().unwrap().unwrap().unwrap(), b"{\"y\":2}");
        assert!(r.next_line().unwrap().is_none());
        let partial = b"{\"x\":1".to_vec();
        let mut r = LineReader::new(&partial[..], 1024);
        assert!(matches!(
            r.next_line().unwrap().unwrap(),
            Err(FrameError::Incomplete { .. })
        ));
    }

    fn round_trip<T>(msg: T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let line = encode(&msg);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(decode::<T>(&line).unwrap(), msg);
    }

    #[test]
    fn every_message_round_trips() {
        let job = Job {
            payload: Some("line1\nline2 \u{e9}\"".into()),
            lang: Some(Lang::C),
            timeout_ms: Some(1000),
            max_memory_mb: Some(64),
            max_output_bytes: Some(1024),
            ..Job::new(7, "hello_1")
        };
        let meta = FunctionMeta {
            id: "hello_1".into(),
            name: "hello".into(),
            lang: Lang::Python,
            created: 1,
            sha256: "00".into(),
            wasm: false,
            settings: FunctionSettings {
                max_memory_mb: Some(8),
                ..Default::default()
            },
            version: 3,
        };
        let ops = [
            Operation::Deploy(DeploySpec {
                name: "hello".into(),
                lang: Lang::C,
                code: "int main(){}\n".into(),
                settings: FunctionSettings {
                    timeout_ms: Some(5),
                    max_memory_mb: None,
                    max_tmp_mb: Some(4),
                    content_type: Some("image/png".into()),
                    pass_auth: true,
                    max_concurrency: Some(2),
                    env: [("API_URL".to_string(), "https://x/?a=1&b".to_string())].into(),
                    secrets: vec!["db_password".into()],
                    allow: crate::Grants::parse(&["api.example.com", "127.0.0.1:8080"]).unwrap(),
                    retries: Some(3),
                    retry_backoff_ms: Some(10),
                    max_age_s: None,
                    schedule: Some("*/5 * * * * *".into()),
                    schedule_payload: Some("tick".into()),
                    archive: Some(crate::ArchiveFormat::TarGz),
                    entry: Some("src/main.c".into()),
                },
            }),
            Operation::ListFiles { name: "x".into() },
            Operation::Delete { name: "x".into() },
            Operation::Versions { name: "x".into() },
            Operation::Invocations {
                name: "x".into(),
                limit: 5,
            },
            Operation::Invoke {
                function: "hello".into(),
                payload: vec![0xff, 0].into(),
                request_id: Some("r1".into()),
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/a".into(),
                    query: "x=1".into(),
                    headers: vec![("accept".into(), "*/*".into())],
                }),
                sent_us: Some(1),
            },
            Operation::GetSource { name: "h".into() },
            Operation::PutSecret {
                name: "db".into(),
                value: crate::SecretValue(crate::Blob(vec![0, 255, 1])),
            },
            Operation::ListSecrets,
            Operation::DeleteSecret { name: "db".into() },
            Operation::List,
            Operation::Stats,
        ];
        for (req, op) in ops.into_iter().enumerate() {
            round_trip(ServerRequest {
                req: req as u64,
                op,
            });
        }
        let replies = [
            Reply::Deployed {
                function: meta.clone(),
            },
            Reply::Invoked {
                worker_id: 2,
                result: JobResult::success(1, "out".into(), vec![0xfe].into(), 0, 1.5),
                content_type: Some("text/html".into()),
            },
            Reply::Source {
                lang: Lang::Go,
                code: "package main".into(),
                content_type: None,
            },
            Reply::Source {
                lang: Lang::Wasm,
                code: vec![0, 0x61, 0x73, 0x6d, 0xff].into(),
                content_type: Some("application/wasm".into()),
            },
            Reply::Files {
                files: vec![crate::ProjectFile {
                    path: "a/b.py".into(),
                    size: 3,
                }],
            },
            Reply::Functions {
                functions: vec![meta],
            },
            Reply::Failed {
                error: ServiceError::bad_request("no").with_details("why"),
            },
        ];
        for reply in replies {
            round_trip(ServerReply { req: 9, reply });
        }
        round_trip(LbRequest::Invoke {
            req: 2,
            function: "f".into(),
            payload: None,
            request_id: Some("r".into()),
            name: Some("f".into()),
            max_concurrency: Some(1),
        });
        round_trip(LbRequest::JobDone {
            req: 2,
            worker_id: 1,
            ok: true,
        });
        round_trip(LbRequest::WorkerDown { worker_id: 1 });
        round_trip(LbRequest::WorkerUp { worker_id: 1 });
        round_trip(LbRequest::Stats { req: 3 });
        round_trip(LbReply::ForwardToWorker {
            req: 9,
            worker_id: 3,
            job: job.clone(),
        });
        round_trip(LbReply::Stats {
            req: 3,
            strategy: "RR".into(),
            queue_len: 0,
            workers: vec![WorkerStats {
                worker_id: 0,
                up: true,
                weight: 1,
                in_flight: 2,
                completed: 3,
                failed: 1,
            }],
        });
        round_trip(LbReply::Error {
            req: Some(4),
            kind: LbErrorKind::NoWorker,
            error: "no worker".into(),
        });
        round_trip(LbReply::Error {
            req: None,
            kind: LbErrorKind::Invalid,
            error: "worker state changes need the server role".into(),
        });
        round_trip(WorkerRequest::Run(job.clone()));
        round_trip(WorkerRequest::Forget {
            ids: vec!["a_1".into(), "b_2".into()],
        });
        round_trip(job);
        round_trip(JobResult::failure(2, FailureKind::Timeout, "timed out"));
    }

    #[test]
    fn seed_messages_parse() {
        let msg: LbRequest = decode(br#"{"type":"invoke","fn":"hello_XXX","payload":""}"#).unwrap();
        assert_eq!(
            msg,
            LbRequest::Invoke {
                req: 0,
                function: "hello_XXX".into(),
                payload: Some(String::new()),
                request_id: None,
                name: None,
                max_concurrency: None,
            }
        );
        let msg: ServerRequest =
            decode(br#"{"type":"deploy","name":"hello","lang":"c","code":"..."}"#).unwrap();
        assert_eq!(msg.req, 0);
        assert!(matches!(
            msg.op,
            Operation::Deploy(DeploySpec { lang: Lang::C, .. })
        ));
        let job: Job = decode(br#"{"fn":"hello_1"}"#).unwrap();
        assert_eq!(job.function, "hello_1");
        assert_eq!(job.payload, None);
    }

    #[test]
    fn worker_requests_are_tagged_and_untagged_lines_are_jobs() {
        let mut job = Job::new(3, "hello_1");
        job.payload = Some("in".into());
        let line = WorkerRequest::run_line(&job);
        assert_eq!(line, encode(&WorkerRequest::Run(job.clone())));
        assert!(line.starts_with(br#"{"type":"run","req":3,"fn":"hello_1""#));
        assert_eq!(
            WorkerRequest::decode(&line).unwrap(),
            WorkerRequest::Run(job)
        );
        let ids = vec!["a_1".to_string()];
        let line = WorkerRequest::forget_line(&ids);
        assert_eq!(line, b"{\"type\":\"forget\",\"ids\":[\"a_1\"]}\n");
        assert_eq!(
            WorkerRequest::decode(&line).unwrap(),
            WorkerRequest::Forget { ids }
        );
        // A seed-style line, as typed by hand: a job.
        let legacy = WorkerRequest::decode(br#"{"fn":"hello_1","payload":"x"}"#).unwrap();
        let WorkerRequest::Run(job) = legacy else {
            panic!("{legacy:?}")
        };
        assert_eq!((job.req, job.function.as_str()), (0, "hello_1"));
        // A typed line that is wrong stays an error, whatever else it holds.
        for bad in [
            &br#"{"type":"bogus","fn":"hello_1"}"#[..],
            br#"{"type":"forget"}"#,
            br#"{"type":"run","req":"x","fn":"f"}"#,
            br#"not json"#,
        ] {
            assert!(WorkerRequest::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn broken_lines_give_their_req_when_they_have_one() {
        assert_eq!(req_of_line(br#"{"req":7,"type":"bogus"}"#), Some(7));
        assert_eq!(req_of_line(br#"{"type":"run","req":8,"fn":3}"#), Some(8));
        assert_eq!(req_of_line(br#"{"fn":"f"}"#), None);
        assert_eq!(req_of_line(br#"{"req":"x"}"#), None);
        assert_eq!(req_of_line(b"{\"req\":9"), None);
    }

    #[test]
    fn older_lines_still_read() {
        // An LB error without a kind, a worker's `unavailable` failure.
        let reply: LbReply = decode(br#"{"type":"error","req":2,"error":"x"}"#).unwrap();
        assert_eq!(
            reply,
            LbReply::Error {
                req: Some(2),
                kind: LbErrorKind::Invalid,
                error: "x".into()
            }
        );
        let reply: LbReply =
            decode(br#"{"type":"error","kind":"from_the_future","error":"x"}"#).unwrap();
        assert!(matches!(
            reply,
            LbReply::Error {
                req: None,
                kind: LbErrorKind::Invalid,
                ..
            }
        ));
        let result: JobResult =
            decode(br#"{"req":1,"ok":false,"kind":"unavailable","error":"no php"}"#).unwrap();
        assert_eq!(result.kind, Some(FailureKind::RuntimeMissing));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::messages::{Job, JobResult, LbRequest, ServerRequest};
    use proptest::prelude::*;

    /// What the decoder must produce for `input`: each complete line, or one
    /// `TooLong` for a line over `max`; then the end of the stream.
    fn expected(input: &[u8], max: usize) -> (Vec<Result<Vec<u8>, ()>>, bool) {
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let last = parts.pop().unwrap_or_default();
        let mut out: Vec<Result<Vec<u8>, ()>> = parts
            .iter()
            .map(|p| {
                if p.len() > max {
                    Err(())
                } else {
                    Ok(p.to_vec())
                }
            })
            .collect();
        if last.len() > max {
            out.push(Err(()));
        }
        let incomplete = !last.is_empty() && last.len() <= max;
        (out, incomplete)
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunks_give_lines_or_typed_errors(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400),
            cuts in proptest::collection::vec(1usize..40, 1..20),
            max in 1usize..30,
        ) {
            let mut decoder = FrameDecoder::new(max);
            let mut got = Vec::new();
            let mut rest = &input[..];
            let mut cut = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                decoder.feed(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match decoder.next_line() {
                        Ok(Some(line)) => {
                            prop_assert!(line.len() <= max);
                            got.push(Ok(line));
                        }
                        Ok(None) => break,
                        Err(FrameError::TooLong { .. }) => got.push(Err(())),
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
                // Never more than one unfinished line's worth is buffered.
                prop_assert!(decoder.buf.len() <= max + n);
            }
            let (want, incomplete) = expected(&input, max);
            prop_assert_eq!(got, want);
            prop_assert_eq!(decoder.finish().is_err(), incomplete);
        }

        #[test]
        fn decoding_any_line_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<ServerRequest>(&line);
            let _ = decode::<LbRequest>(&line);
            let _ = decode::<Job>(&line);
            let _ = decode::<JobResult>(&line);
        }
    }
}
