//! Outbound HTTP for the shell: a blocking wasi-http client with timeouts and explicit
//! framing. Public so that the benchmark's bare forwarding component pays exactly the same I/O
//! cost as the gateway (the difference between the two is the policy).

use crate::forward::UpstreamRequest;
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as wt};

/// An upstream answer, fully read.
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum SendFailure {
    Denied,
    Timeout,
    Unreachable(String),
}

fn map_error_code(e: wt::ErrorCode) -> SendFailure {
    use wt::ErrorCode as E;
    match e {
        E::HttpRequestDenied => SendFailure::Denied,
        E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => SendFailure::Timeout,
        other => SendFailure::Unreachable(format!("{other:?}")),
    }
}

/// Blocking wasi-http call with connect / first-byte / between-bytes timeouts. The body is
/// written (and, when it fits, finished) before the request is handed over, with an explicit
/// `content-length`: MLflow reads a chunked body as empty, and a body streamed after hand-over
/// can wait ~40 ms for a delayed ACK.
pub fn send_to(
    https: bool,
    authority: &str,
    req: &UpstreamRequest,
    timeout_secs: u64,
) -> Result<UpstreamResponse, SendFailure> {
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
    let data = &req.body;
    let mut off = 0usize;
    let io =
        |e: wasi::io::streams::StreamError| SendFailure::Unreachable(format!("body write: {e:?}"));
    while off < data.len() {
        let n = stream.check_write().map_err(io)? as usize;
        if n == 0 {
            break;
        }
        let k = n.min(data.len() - off).min(1 << 20);
        stream.write(&data[off..off + k]).map_err(io)?;
        off += k;
    }
    let options = wt::RequestOptions::new();
    let ns = timeout_secs.saturating_mul(1_000_000_000);
    let _ = options.set_connect_timeout(Some(ns));
    let _ = options.set_first_byte_timeout(Some(ns));
    let _ = options.set_between_bytes_timeout(Some(ns));
    let (stream, body) = if off == data.len() {
        drop(stream);
        wt::OutgoingBody::finish(body, None).map_err(map_error_code)?;
        (None, None)
    } else {
        (Some(stream), Some(body))
    };
    let future = outgoing_handler::handle(out, Some(options)).map_err(map_error_code)?;
    if let (Some(stream), Some(body)) = (stream, body) {
        while off < data.len() {
            let n = stream.check_write().map_err(io)? as usize;
            if n == 0 {
                stream.subscribe().block();
                continue;
            }
            let k = n.min(data.len() - off).min(1 << 20);
            stream.write(&data[off..off + k]).map_err(io)?;
            off += k;
        }
        stream.blocking_flush().map_err(io)?;
        drop(stream);
        wt::OutgoingBody::finish(body, None).map_err(map_error_code)?;
    }
    future.subscribe().block();
    let resp = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(map_error_code(e)),
        _ => return Err(SendFailure::Unreachable("response future".into())),
    };
    let status = resp.status();
    let headers = resp.headers().entries();
    let incoming_body = resp
        .consume()
        .map_err(|_| SendFailure::Unreachable("response body".into()))?;
    let input = incoming_body
        .stream()
        .map_err(|_| SendFailure::Unreachable("response stream".into()))?;
    let mut buf = Vec::new();
    loop {
        match input.blocking_read(256 * 1024) {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(e) => {
                // A timeout while streaming surfaces here as a last-operation error.
                let _ = e;
                return Err(SendFailure::Timeout);
            }
        }
    }
    drop(input);
    let _ = wt::IncomingBody::finish(incoming_body);
    drop(resp);
    Ok(UpstreamResponse {
        status,
        headers,
        body: buf,
    })
}
