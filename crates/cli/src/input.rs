//! Reading OTLP files, shared by `inspect` and `import`.
//!
//! Accepted inputs:
//! - OTLP/JSON as the OpenTelemetry Collector's file exporter writes it: one
//!   `ExportTraceServiceRequest` or `ExportLogsServiceRequest` per line (`.json`, `.jsonl`,
//!   `.ndjson`). Read line by line, so a file of any size streams.
//! - Binary OTLP protobuf (`.pb`, `.binpb`, `.protobuf`): either one raw request (an OTLP/HTTP
//!   body) or the Collector file exporter's `format: proto` stream, where each request is
//!   preceded by its length as a 4-byte big-endian integer. The file is read whole.
//! - Either of them gzip-compressed (`.gz` after the extension; detected by its magic bytes
//!   whatever the name).
//!
//! Metrics and profiles requests are recognised and skipped. Items are numbered by line (JSON)
//! or by message (protobuf), from 1, for `path:line: message` reports.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The extensions read, for messages.
pub const EXTENSIONS: &str = ".json, .jsonl, .ndjson or .pb (optionally followed by .gz)";

/// One decoded item of an OTLP file.
#[derive(Debug)]
pub enum Request {
    /// A traces export request.
    Traces(ExportTraceServiceRequest),
    /// A logs export request.
    Logs(ExportLogsServiceRequest),
    /// A request of another signal (`metrics`, `profiles`): not audit data, skipped.
    OtherSignal(&'static str),
    /// Valid JSON that is no OTLP request at all (a file that is not OTLP/JSON).
    NotOtlp,
}

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OTLP/JSON, one request per line.
    Json,
    /// Binary protobuf, one raw request or a length-prefixed stream.
    Protobuf,
}

impl Format {
    /// The format a file name says, ignoring a trailing `.gz`; `None` for other names.
    pub fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        match Path::new(name).extension()?.to_str()? {
            "json" | "jsonl" | "ndjson" => Some(Format::Json),
            "pb" | "binpb" | "protobuf" => Some(Format::Protobuf),
            _ => None,
        }
    }
}

/// A file to read.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its path.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its size on disk (for progress).
    pub size: u64,
    /// Found by walking a directory rather than named on the command line.
    pub walked: bool,
}

/// The files named on the command line, directories walked.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Files to read, in command-line order; each directory's files sorted by name.
    pub files: Vec<Input>,
    /// Paths that cannot be read (missing, unreadable, a named file of unknown type).
    pub problems: Vec<(PathBuf, String)>,
    /// Files in walked directories whose name is not an OTLP file's.
    pub ignored: Vec<PathBuf>,
}

/// Resolves `paths`: files are taken as they are (an unknown extension is a problem), and
/// directories are walked recursively, following symbolic links and skipping hidden entries,
/// taking only files whose name has an OTLP extension.
pub fn collect(paths: &[PathBuf]) -> Inputs {
    let mut out = Inputs::default();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                out.problems.push((path.clone(), e.to_string()));
                continue;
            }
        };
        if !meta.is_dir() {
            match Format::of(path) {
                Some(format) => out.files.push(Input {
                    path: path.clone(),
                    format,
                    size: meta.len(),
                    walked: false,
                }),
                None => out.problems.push((
                    path.clone(),
                    format!("unknown file type (expected {EXTENSIONS})"),
                )),
            }
            continue;
        }
        let walk = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) => match Format::of(e.path()) {
                    Some(format) => match e.metadata() {
                        Ok(m) => out.files.push(Input {
                            path: e.into_path(),
                            format,
                            size: m.len(),
                            walked: true,
                        }),
                        Err(err) => out.problems.push((e.into_path(), err.to_string())),
                    },
                    None => out.ignored.push(e.into_path()),
                },
                Err(err) => {
                    let at = err.path().unwrap_or(path).to_path_buf();
                    let msg = match err.io_error() {
                        Some(io) => io.to_string(),
                        None => err.to_string(),
                    };
                    out.problems.push((at, msg));
                }
            }
        }
    }
    out
}

/// Why an item could not be read.
#[derive(Debug)]
pub struct ReadError {
    /// What went wrong.
    pub error: anyhow::Error,
    /// The file could not be read further (I/O error, corrupt compression, truncated stream);
    /// otherwise only this item is bad and the next one is read.
    pub ends_file: bool,
}

/// Reads the requests of one file, one at a time, with their line (or message) number.
pub struct RequestReader {
    inner: Inner,
    item: usize,
    done: bool,
}

enum Inner {
    Json {
        reader: Box<dyn BufRead>,
        buf: Vec<u8>,
    },
    Protobuf {
        bytes: Vec<u8>,
        offset: usize,
        framed: bool,
    },
}

/// Counts the bytes read from the file itself (before decompression), for progress.
struct Counting<R> {
    inner: R,
    counter: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

impl RequestReader {
    /// Opens `path`, read as `format`; bytes read from disk are added to `counter`.
    pub fn open(path: &Path, format: Format, counter: Option<Arc<AtomicU64>>) -> Result<Self> {
        let file = File::open(path).context("cannot open")?;
        let mut raw = BufReader::with_capacity(
            256 * 1024,
            Counting {
                inner: file,
                counter,
            },
        );
        let gzip = raw
            .fill_buf()
            .context("cannot read")?
            .starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        let inner = match format {
            Format::Json => Inner::Json {
                reader,
                buf: Vec::new(),
            },
            Format::Protobuf => {
                let mut bytes = Vec::new();
                reader.read_to_end(&mut bytes).context("cannot read")?;
                // A raw request starts with field 1 (tag 0x0a) or is empty; a stream starts with
                // a 4-byte length whose first byte is 0x0a only for messages over 160 MiB.
                let framed = bytes.len() >= 4 && bytes[0] != 0x0a;
                Inner::Protobuf {
                    bytes,
                    offset: 0,
                    framed,
                }
            }
        };
        Ok(Self {
            inner,
            item: 0,
            done: false,
        })
    }
}

impl Iterator for RequestReader {
    type Item = (usize, Result<Request, ReadError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match &mut self.inner {
            Inner::Json { reader, buf } => loop {
                buf.clear();
                self.item += 1;
                match reader.read_until(b'\n', buf) {
                    Ok(0) => {
                        self.done = true;
                        return None;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.done = true;
                        return Some((
                            self.item,
                            Err(ReadError {
                                error: anyhow!(e).context("cannot read"),
                                ends_file: true,
                            }),
                        ));
                    }
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let result = std::str::from_utf8(buf)
                    .map_err(|e| anyhow!("not UTF-8: {e}"))
                    .and_then(decode_json)
                    .map_err(|error| ReadError {
                        error,
                        ends_file: false,
                    });
                return Some((self.item, result));
            },
            Inner::Protobuf {
                bytes,
                offset,
                framed,
            } => {
                if !*framed {
                    self.done = true;
                    let req = decode_protobuf(bytes).map_err(|error| ReadError {
                        error,
                        ends_file: true,
                    });
                    return Some((1, req));
                }
                if *offset >= bytes.len() {
                    self.done = true;
                    return None;
                }
                self.item += 1;
                let rest = &bytes[*offset..];
                let Some((len, body)) = rest
                    .split_first_chunk::<4>()
                    .map(|(len, body)| (u32::from_be_bytes(*len) as usize, body))
                    .filter(|(len, body)| *len <= body.len())
                else {
                    self.done = true;
                    return Some((
                        self.item,
                        Err(ReadError {
                            error: anyhow!(
                                "truncated or not OTLP protobuf: {} bytes left at byte {offset} \
                                 do not hold a length-prefixed message",
                                rest.len()
                            ),
                            ends_file: true,
                        }),
                    ));
                };
                let req = decode_protobuf(&body[..len]).map_err(|error| ReadError {
                    error,
                    ends_file: false,
                });
                *offset += 4 + len;
                Some((self.item, req))
            }
        }
    }
}

/// The first key of a JSON object, when it is a plain string (fast path for the file exporter's
/// `{"resourceSpans":…` lines).
fn first_key(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    rest.get(..rest.find(['"', '\\'])?)
}

/// Decodes one line of OTLP/JSON.
pub fn decode_json(line: &str) -> Result<Request> {
    match first_key(line) {
        Some("resourceSpans") => {
            return serde_json::from_str(line)
                .map(Request::Traces)
                .context("not an OTLP/JSON traces request");
        }
        Some("resourceLogs") => {
            return serde_json::from_str(line)
                .map(Request::Logs)
                .context("not an OTLP/JSON logs request");
        }
        _ => {}
    }
    let value: serde_json::Value = serde_json::from_str(line).context("invalid JSON")?;
    if value.get("resourceSpans").is_some() {
        Ok(Request::Traces(
            serde_json::from_value(value).context("not an OTLP/JSON traces request")?,
        ))
    } else if value.get("resourceLogs").is_some() {
        Ok(Request::Logs(
            serde_json::from_value(value).context("not an OTLP/JSON logs request")?,
        ))
    } else if value.get("resourceMetrics").is_some() {
        Ok(Request::OtherSignal("metrics"))
    } else if value.get("resourceProfiles").is_some() {
        Ok(Request::OtherSignal("profiles"))
    } else {
        Ok(Request::NotOtlp)
    }
}

/// Decodes one binary OTLP request.
pub fn decode_protobuf(bytes: &[u8]) -> Result<Request> {
    // The two request types share field number 1; a traces request with spans is tried first.
    let traces = ExportTraceServiceRequest::decode(bytes);
    if let Ok(t) = &traces
        && t.resource_spans
            .iter()
            .any(|rs| rs.scope_spans.iter().any(|s| !s.spans.is_empty()))
    {
        return traces.map(Request::Traces).map_err(Into::into);
    }
    match ExportLogsServiceRequest::decode(bytes) {
        Ok(l)
            if l.resource_logs
                .iter()
                .any(|rl| rl.scope_logs.iter().any(|s| !s.log_records.is_empty())) =>
        {
            Ok(Request::Logs(l))
        }
        _ => match traces {
            Ok(t) => Ok(Request::Traces(t)),
            Err(e) => bail!("not an OTLP protobuf traces or logs request: {e}"),
        },
    }
}

/// The first request of a file, if it can be read (a JSON file is read up to its first line).
fn first_request(input: &Input) -> Option<Request> {
    RequestReader::open(&input.path, input.format, None)
        .ok()?
        .next()?
        .1
        .ok()
}

/// Looks at the first request of every file:
/// - a file found by walking a directory whose first line is JSON but no OTLP request (some
///   other JSON file lying there) moves to `ignored`;
/// - files that start with a logs request are put first (keeping their order otherwise), so
///   that the content they carry is known before the spans it belongs to are committed.
///
/// Costs one line per JSON file, but a whole read of each protobuf file.
pub fn order_and_filter(inputs: &mut Inputs) {
    let mut logs = Vec::new();
    let mut rest = Vec::new();
    for input in std::mem::take(&mut inputs.files) {
        match first_request(&input) {
            Some(Request::NotOtlp) if input.walked => inputs.ignored.push(input.path),
            Some(Request::Logs(_)) => logs.push(input),
            _ => rest.push(input),
        }
    }
    logs.extend(rest);
    inputs.files = logs;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name() {
        let f = |p: &str| Format::of(Path::new(p));
        assert_eq!(f("a/traces.json"), Some(Format::Json));
        assert_eq!(f("t-2025-01-01T00-00-00.000.JSONL.gz"), Some(Format::Json));
        assert_eq!(f("req.pb.gz"), Some(Format::Protobuf));
        assert_eq!(f("README.md"), None);
        assert_eq!(f("archive.gz"), None);
        assert_eq!(f("noext"), None);
    }

    #[test]
    fn json_lines_are_classified() {
        assert!(matches!(
            decode_json(r#"{"resourceSpans":[]}"#),
            Ok(Request::Traces(_))
        ));
        assert!(matches!(
            decode_json(r#" { "resourceLogs" : [] }"#),
            Ok(Request::Logs(_))
        ));
        assert!(matches!(
            decode_json(r#"{"resourceMetrics":[]}"#),
            Ok(Request::OtherSignal("metrics"))
        ));
        assert!(matches!(
            decode_json(r#"{"case":"x"}"#),
            Ok(Request::NotOtlp)
        ));
        assert!(decode_json("{not json").is_err());
        assert!(decode_json(r#"{"resourceSpans":"nope"}"#).is_err());
    }

    #[test]
    fn length_prefixed_protobuf_streams_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/otlp/openai-v2/chat_basic.pb"
        );
        let one = std::fs::read(fixture).unwrap();
        let logs = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/otlp/openai-v2/logs/chat_pii.pb"
        ))
        .unwrap();
        let mut stream = Vec::new();
        for msg in [&one, &logs, &one] {
            stream.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            stream.extend_from_slice(msg);
        }
        stream.extend_from_slice(&[0, 0, 1]); // truncated tail
        let path = dir.path().join("stream.pb");
        std::fs::write(&path, &stream).unwrap();
        let items: Vec<_> = RequestReader::open(&path, Format::Protobuf, None)
            .unwrap()
            .collect();
        assert_eq!(items.len(), 4);
        assert!(matches!(items[0], (1, Ok(Request::Traces(_)))));
        assert!(matches!(items[1], (2, Ok(Request::Logs(_)))));
        assert!(matches!(items[2], (3, Ok(Request::Traces(_)))));
        assert!(matches!(&items[3], (4, Err(e)) if e.ends_file));

        // The raw request reads as one message.
        let raw: Vec<_> = RequestReader::open(Path::new(fixture), Format::Protobuf, None)
            .unwrap()
            .collect();
        assert!(matches!(raw[..], [(1, Ok(Request::Traces(_)))]));
    }

    #[test]
    fn json_lines_are_numbered_and_bad_lines_do_not_stop_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(
            &path,
            "{\"resourceSpans\":[]}\n\n{garbage\r\n{\"resourceLogs\":[]}",
        )
        .unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let items: Vec<_> = RequestReader::open(&path, Format::Json, Some(counter.clone()))
            .unwrap()
            .collect();
        let lines: Vec<usize> = items.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert!(matches!(&items[1].1, Err(e) if !e.ends_file));
        assert!(matches!(items[2].1, Ok(Request::Logs(_))));
        assert_eq!(
            counter.load(Ordering::Relaxed),
            std::fs::metadata(&path).unwrap().len()
        );
    }
}
