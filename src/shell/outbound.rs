//! Outbound HTTP for the shell: a blocking wasi-http client with timeouts and explicit
//! framing. Public so that the benchmark's bare forwarding component pays exactly the same I/O
//! cost as the gateway (the difference between the two is the policy).

use crate::forward::UpstreamRequest;
pub use crate::pipeline::host::{SendFailure, UpstreamResponse};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as wt};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

fn map_error_code(e: wt::ErrorCode) -> SendFailure {
    use wt::ErrorCode as E;
    match e {
        E::HttpRequestDenied => SendFailure::Denied,
        E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => SendFailure::Timeout,
        E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::HttpProtocolError
        | E::HttpResponseIncomplete => SendFailure::Reset(format!("{e:?}")),
        other => SendFailure::Unreachable(format!("{other:?}")),
    }
}

/// Classifies a failure while reading an answer's body: a timeout is a timeout, a body that
/// stopped short of its declared length is truncated, anything else is a broken connection.
fn body_failure(code: Option<wt::ErrorCode>, got: u64, expected: Option<u64>) -> SendFailure {
    let truncated = || match expected {
        Some(expected) if got < expected => Some(SendFailure::Truncated { got, expected }),
        _ => None,
    };
    match code.map(map_error_code) {
        Some(SendFailure::Timeout) => SendFailure::Timeout,
        Some(other) => truncated().unwrap_or(match other {
            SendFailure::Unreachable(d) => SendFailure::Reset(d),
            o => o,
        }),
        None => {
            truncated().unwrap_or_else(|| SendFailure::Reset("connection closed mid-answer".into()))
        }
    }
}

/// Where an upstream request body comes from.
pub enum WireBody<'a> {
    /// Complete bytes (every JSON call, small uploads).
    Bytes(&'a [u8]),
    /// A client's body piped as it arrives (large artifact uploads); the caller has put the
    /// client's `content-length` in the headers, and Spin checks that exactly that many bytes
    /// are written.
    Stream(&'a InputStream),
}

/// Writes as much of `data` as the stream takes without waiting; returns how much.
fn write_some(stream: &OutputStream, data: &[u8]) -> Result<usize, StreamError> {
    let mut off = 0;
    while off < data.len() {
        let n = stream.check_write()? as usize;
        if n == 0 {
            break;
        }
        let k = n.min(data.len() - off).min(1 << 20);
        stream.write(&data[off..off + k])?;
        off += k;
    }
    Ok(off)
}

/// Writes all of `data`, waiting for the stream whenever it is full.
fn write_all(stream: &OutputStream, data: &[u8]) -> Result<(), StreamError> {
    let mut off = write_some(stream, data)?;
    while off < data.len() {
        stream.subscribe().block();
        off += write_some(stream, &data[off..])?;
    }
    Ok(())
}

/// Writes a complete body and flushes it.
fn write_bytes(stream: &OutputStream, data: &[u8]) -> Result<(), PipeError> {
    write_all(stream, data).map_err(output_error)?;
    stream.blocking_flush().map_err(output_error)
}

/// Why a pipe stopped early.
#[derive(Debug)]
pub enum PipeError {
    /// Reading the source failed (client or upstream connection broke).
    Input(String),
    /// The destination closed: for an upstream request body this is how wasi-http reports that
    /// the peer already has what it needs (the answer decides whether it was enough).
    OutputClosed,
    /// Writing the destination failed otherwise.
    Output(String),
}

fn output_error(e: StreamError) -> PipeError {
    match e {
        StreamError::Closed => PipeError::OutputClosed,
        other => PipeError::Output(format!("{other:?}")),
    }
}

/// Copies `input` to `output` chunk by chunk until `input` closes; memory stays at one chunk
/// whatever the size.
fn pipe(input: &InputStream, output: &OutputStream) -> Result<(), PipeError> {
    loop {
        match input.blocking_read(PIPE_CHUNK) {
            Ok(chunk) => write_all(output, &chunk).map_err(output_error)?,
            Err(StreamError::Closed) => break,
            Err(e) => return Err(PipeError::Input(format!("{e:?}"))),
        }
    }
    output.blocking_flush().map_err(output_error)
}

/// Chunk size for piped bodies (and for reading client bodies).
pub const PIPE_CHUNK: u64 = 256 * 1024;

/// An upstream answer whose body has not been read yet. Fields drop in declaration order
/// (stream, body, response), as wasi-http requires of child resources.
pub struct SpinAnswer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    stream: InputStream,
    body: wt::IncomingBody,
    _resp: wt::IncomingResponse,
}

impl crate::pipeline::host::Answer for SpinAnswer {
    fn status(&self) -> u16 {
        self.status
    }
    fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }
    fn read_all(self) -> Result<UpstreamResponse, SendFailure> {
        SpinAnswer::read_all(self)
    }
}

impl SpinAnswer {
    /// Reads the whole body.
    pub fn read_all(self) -> Result<UpstreamResponse, SendFailure> {
        let expected = crate::forward::declared_length(&self.headers);
        let mut buf = Vec::new();
        loop {
            match self.stream.blocking_read(PIPE_CHUNK) {
                Ok(chunk) => buf.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                // Timeouts, resets and early ends surface here as a last-operation error.
                Err(StreamError::LastOperationFailed(e)) => {
                    let code = wt::http_error_code(&e);
                    return Err(body_failure(code, buf.len() as u64, expected));
                }
            }
        }
        if let Some(expected) = expected.filter(|&n| (buf.len() as u64) < n) {
            return Err(SendFailure::Truncated {
                got: buf.len() as u64,
                expected,
            });
        }
        let SpinAnswer {
            status,
            headers,
            stream,
            body,
            _resp,
        } = self;
        drop(stream);
        let _ = wt::IncomingBody::finish(body);
        Ok(UpstreamResponse {
            status,
            headers,
            body: buf,
        })
    }

    /// Pipes the body into `output` (a response to the client) without holding it.
    pub fn pipe_to(self, output: &OutputStream) -> Result<(), PipeError> {
        pipe(&self.stream, output)?;
        let SpinAnswer { stream, body, .. } = self;
        drop(stream);
        let _ = wt::IncomingBody::finish(body);
        Ok(())
    }
}

/// Blocking wasi-http call that returns once the upstream's status and headers have arrived.
/// Connect / first-byte / between-bytes timeouts apply. A `Bytes` body is written (and, when
/// it fits, finished) before the request is handed over, with an explicit `content-length`:
/// MLflow reads a chunked body as empty, and a small body streamed after hand-over can wait
/// ~40 ms for a delayed ACK. A `Stream` body is piped after hand-over (large uploads only).
pub fn start(
    https: bool,
    authority: &str,
    req: &UpstreamRequest,
    body_src: WireBody<'_>,
    timeout_secs: u64,
) -> Result<SpinAnswer, SendFailure> {
    let internal = |what: &str| SendFailure::Unreachable(format!("request construction: {what}"));
    let fields = wt::Fields::from_list(&req.headers).map_err(|_| internal("headers"))?;
    let out = wt::OutgoingRequest::new(fields);
    let method = match req.method.as_str() {
        "GET" => wt::Method::Get,
        "POST" => wt::Method::Post,
        "PUT" => wt::Method::Put,
        "PATCH" => wt::Method::Patch,
        "DELETE" => wt::Method::Delete,
        "HEAD" => wt::Method::Head,
        other => wt::Method::Other(other.to_string()),
    };
    out.set_method(&method).map_err(|_| internal("method"))?;
    let scheme = if https {
        wt::Scheme::Https
    } else {
        wt::Scheme::Http
    };
    out.set_scheme(Some(&scheme))
        .map_err(|_| internal("scheme"))?;
    out.set_authority(Some(authority))
        .map_err(|_| internal("authority"))?;
    out.set_path_with_query(Some(&req.path_and_query))
        .map_err(|_| internal("path"))?;
    let body = out.body().map_err(|_| internal("body"))?;
    let stream = body.write().map_err(|_| internal("body stream"))?;
    let io = |e: StreamError| SendFailure::Unreachable(format!("body write: {e:?}"));
    // Write what fits before hand-over (the whole body, for anything small).
    let data: &[u8] = match body_src {
        WireBody::Bytes(d) => d,
        WireBody::Stream(_) => &[],
    };
    let off = write_some(&stream, data).map_err(io)?;
    let options = wt::RequestOptions::new();
    let ns = timeout_secs.saturating_mul(1_000_000_000);
    let _ = options.set_connect_timeout(Some(ns));
    let _ = options.set_first_byte_timeout(Some(ns));
    let _ = options.set_between_bytes_timeout(Some(ns));
    let complete = off == data.len() && matches!(body_src, WireBody::Bytes(_));
    let pending = if complete {
        drop(stream);
        wt::OutgoingBody::finish(body, None).map_err(map_error_code)?;
        None
    } else {
        Some((stream, body))
    };
    let future = outgoing_handler::handle(out, Some(options)).map_err(map_error_code)?;
    if let Some((stream, body)) = pending {
        let written = match body_src {
            WireBody::Bytes(d) => write_all(&stream, &d[off..])
                .and_then(|()| stream.blocking_flush())
                .map_err(output_error),
            WireBody::Stream(input) => pipe(input, &stream),
        };
        // The stream is a child of the body: it must go first, also on failure (dropping a
        // resource with live children traps the component).
        drop(stream);
        match written {
            Ok(()) => wt::OutgoingBody::finish(body, None).map_err(map_error_code)?,
            // Measured: with the whole body delivered, the last write or flush can report
            // `Closed` once MLflow has answered; the answer (or the future's error, for a body
            // cut short of its content-length) decides.
            Err(PipeError::OutputClosed) => {
                let _ = wt::OutgoingBody::finish(body, None);
            }
            Err(PipeError::Input(d)) => {
                return Err(SendFailure::Unreachable(format!("client body: {d}")))
            }
            Err(PipeError::Output(d)) => {
                return Err(SendFailure::Unreachable(format!("body write: {d}")))
            }
        }
    }
    future.subscribe().block();
    let resp = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(map_error_code(e)),
        _ => return Err(SendFailure::Unreachable("response future".into())),
    };
    let status = resp.status();
    let headers = resp.headers().entries();
    let body = resp
        .consume()
        .map_err(|_| SendFailure::Unreachable("response body".into()))?;
    let stream = body
        .stream()
        .map_err(|_| SendFailure::Unreachable("response stream".into()))?;
    Ok(SpinAnswer {
        status,
        headers,
        stream,
        body,
        _resp: resp,
    })
}

/// A complete call: `start` with the request's bytes, then the whole answer.
pub fn send_to(
    https: bool,
    authority: &str,
    req: &UpstreamRequest,
    timeout_secs: u64,
) -> Result<UpstreamResponse, SendFailure> {
    start(
        https,
        authority,
        req,
        WireBody::Bytes(&req.body),
        timeout_secs,
    )?
    .read_all()
}

/// Sends a complete answer to the client: the body is written and finished *before* the
/// response is handed to Spin, with its length, so head and body leave together (a body
/// written after hand-over can wait ~40 ms for a delayed ACK on a kept-alive connection,
/// measured with wrk on small answers). Returns a description of what failed, if anything.
pub fn respond_full(
    out: wt::ResponseOutparam,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), String> {
    let (resp, out_body, stream) = response_parts(status, headers, Some(body.len()))?;
    let sent = write_some(&stream, body).unwrap_or(0);
    if sent == body.len() {
        drop(stream);
        let _ = wt::OutgoingBody::finish(out_body, None);
        wt::ResponseOutparam::set(out, Ok(resp));
        return Ok(());
    }
    wt::ResponseOutparam::set(out, Ok(resp));
    let written = write_bytes(&stream, &body[sent..]);
    drop(stream);
    written.map_err(|e| format!("response body: {e:?}"))?;
    let _ = wt::OutgoingBody::finish(out_body, None);
    Ok(())
}

/// Sends the head now and pipes an upstream body after it (large downloads).
pub fn respond_piped(
    out: wt::ResponseOutparam,
    status: u16,
    headers: &[(String, String)],
    upstream: SpinAnswer,
) -> Result<(), String> {
    let (resp, out_body, stream) = response_parts(status, headers, None)?;
    wt::ResponseOutparam::set(out, Ok(resp));
    let piped = upstream.pipe_to(&stream);
    drop(stream);
    piped.map_err(|e| format!("response body: {e:?}"))?;
    let _ = wt::OutgoingBody::finish(out_body, None);
    Ok(())
}

/// A response head (with `content-length` when the length is known) and its body stream.
fn response_parts(
    status: u16,
    headers: &[(String, String)],
    length: Option<usize>,
) -> Result<(wt::OutgoingResponse, wt::OutgoingBody, OutputStream), String> {
    let mut list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    if let Some(n) = length {
        list.push(("content-length".into(), n.to_string().into_bytes()));
    }
    let fields = wt::Fields::from_list(&list).map_err(|e| format!("headers: {e:?}"))?;
    let resp = wt::OutgoingResponse::new(fields);
    resp.set_status_code(status)
        .map_err(|()| "status".to_string())?;
    let body = resp.body().map_err(|()| "body".to_string())?;
    let stream = body.write().map_err(|()| "stream".to_string())?;
    Ok((resp, body, stream))
}
