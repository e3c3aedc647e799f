//! The thin shell: the only module that talks to Spin. It implements the pipeline's platform
//! interface (`pipeline::host::Host`) with Spin's variables, key-value store, outbound HTTP,
//! clocks, randomness and stderr, runs `pipeline::handle` for each request, sends the reply
//! and writes the audit line. It decides nothing.

pub mod outbound;

use crate::audit::operator_line;
use crate::config::Origin;
use crate::forward::{next_read, UpstreamRequest};
use crate::pipeline::host::{BodyError, Host, OutBody, SendFailure};
use crate::pipeline::{self, Reply};
use crate::request::Incoming;
use outbound::{start, SpinAnswer};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::key_value::Store;
use spin_sdk::wit::wasi::http0_2_0::types as wt;
use spin_sdk::wit::wasi::keyvalue as kv;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The client's body, still unread in its connection. Fields drop stream first, as wasi-http
/// requires of child resources.
pub struct ClientBody {
    stream: InputStream,
    _body: wt::IncomingBody,
}

/// Spin, as the pipeline's platform. The key-value store is opened on first use (and, for
/// counters, as a `wasi:keyvalue` bucket: the same store, which spin-sdk 5.2 wraps only for
/// plain reads and writes).
struct Spin {
    store: Option<Store>,
    bucket: Option<kv::store::Bucket>,
    started: Instant,
}

impl Spin {
    fn store(&mut self) -> Result<&Store, String> {
        if self.store.is_none() {
            self.store = Some(Store::open_default().map_err(|e| format!("kv open: {e}"))?);
        }
        self.store
            .as_ref()
            .ok_or_else(|| "kv store missing after open".to_string())
    }
}

impl Host for Spin {
    type ClientBody = ClientBody;
    type Answer = SpinAnswer;

    /// Every component variable in one host call (`wasi:config/store.get-all`): reading the
    /// ~20 settings one `variables::get` at a time cost ~0.2 ms per request (measured: 222 µs
    /// vs 80 µs).
    fn variables(&mut self) -> Result<Vec<(String, String)>, String> {
        spin_sdk::wit::wasi::config::store::get_all().map_err(|e| format!("{e:?}"))
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store()?.get(key).map_err(|e| e.to_string())
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.store()?.set(key, value).map_err(|e| e.to_string())
    }

    fn kv_delete(&mut self, key: &str) -> Result<(), String> {
        self.store()?.delete(key).map_err(|e| e.to_string())
    }

    fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, String> {
        if self.bucket.is_none() {
            self.bucket = Some(kv::store::open("default").map_err(|e| format!("kv open: {e:?}"))?);
        }
        let bucket = self
            .bucket
            .as_ref()
            .ok_or_else(|| "kv bucket missing after open".to_string())?;
        kv::atomics::increment(bucket, key, delta).map_err(|e| format!("{e:?}"))
    }

    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn random_u64(&mut self) -> u64 {
        wasi::random::random::get_random_u64()
    }

    /// Each line leaves in one write to the host: `eprintln!` of a JSON value writes it piece
    /// by piece, and concurrent instances' pieces interleaved in Spin's stderr (measured: 1,814
    /// of 22,044 lines broken).
    fn log(&mut self, line: &str) {
        write_line(&wasi::cli::stderr::get_stderr(), line);
    }

    /// Reads the client's body into memory, holding at most `limit + 1` bytes, however it is
    /// framed (declared length or chunked).
    fn read_body(
        &mut self,
        body: ClientBody,
        declared: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, BodyError> {
        // Sized once, so the buffer never reallocates (a doubling would hold old and new
        // copies): by the declared length (already checked against the limit), else by the
        // limit itself; pages of linear memory count towards the RSS only once written.
        let cap = declared.map_or(limit.saturating_add(1), |n| n.min(limit));
        let mut buf = Vec::with_capacity(usize::try_from(cap).unwrap_or(usize::MAX));
        loop {
            let want = next_read(buf.len() as u64, limit, outbound::PIPE_CHUNK);
            if want == 0 {
                return Err(BodyError::TooLarge);
            }
            match body.stream.blocking_read(want) {
                Ok(chunk) => buf.extend_from_slice(&chunk),
                Err(StreamError::Closed) => return Ok(buf),
                Err(e) => return Err(BodyError::Unreadable(format!("{e:?}"))),
            }
        }
    }

    fn send(
        &mut self,
        origin: &Origin,
        req: &UpstreamRequest,
        body: OutBody<ClientBody>,
        timeout_secs: u64,
    ) -> Result<SpinAnswer, SendFailure> {
        match body {
            OutBody::Bytes => {
                let once = || {
                    start(
                        origin.https,
                        &origin.authority,
                        req,
                        outbound::WireBody::Bytes(&req.body),
                        timeout_secs,
                    )
                };
                match once() {
                    // Spin keeps connections to MLflow open between requests; one MLflow has
                    // just closed (uvicorn does after an unhandled exception in a handler, e.g.
                    // an AI gateway call whose provider is unreachable) breaks the next request
                    // sent on it before any answer. A read is sent again once, on a new
                    // connection; a write is not (MLflow may have acted on it): its caller
                    // gets the 502.
                    Err(SendFailure::Reset(_)) if matches!(req.method.as_str(), "GET" | "HEAD") => {
                        once()
                    }
                    other => other,
                }
            }
            // The client's body is piped into the call and dropped after it.
            OutBody::Stream(client) => start(
                origin.https,
                &origin.authority,
                req,
                outbound::WireBody::Stream(&client.stream),
                timeout_secs,
            ),
        }
    }
}

/// Writes a line to a host stream in one write when it fits the 4096 bytes a write takes
/// (operator lines always do; an audit line is bounded well below).
fn write_line(stream: &OutputStream, line: &str) {
    for chunk in line.as_bytes().chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}

/// Copies the request head out of Spin's type; the body stays in the connection.
fn incoming(req: &IncomingRequest) -> Incoming {
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    // Spin appends its own `spin-client-addr` after the client's headers: trust the last.
    let peer_ip = headers
        .iter()
        .rev()
        .find(|(k, _)| k == "spin-client-addr")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(|s| match s.rsplit_once(':') {
            Some((ip, _)) => ip.trim_matches(['[', ']']).to_string(),
            None => s.to_string(),
        });
    let path_and_query = req.path_with_query().unwrap_or_else(|| "/".into());
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_and_query.clone(), String::new()),
    };
    Incoming {
        method: req.method().to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
        peer_ip,
    }
}

/// The component's entry point: never fails (every error is a response made by the pipeline).
pub async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let mut spin = Spin {
        store: None,
        bucket: None,
        started: Instant::now(),
    };
    let head = incoming(&req);
    let body = req.consume().ok().and_then(|b| {
        b.stream()
            .ok()
            .map(|stream| ClientBody { stream, _body: b })
    });
    let pipeline::Outcome { reply, audit } = pipeline::handle(&mut spin, head, body);
    let sent = match reply {
        Reply::Full(r) => outbound::respond_full(out.into_inner(), r.status, &r.headers, &r.body),
        Reply::Piped {
            status,
            headers,
            answer,
        } => outbound::respond_piped(out.into_inner(), status, &headers, answer),
    };
    if let Err(e) = sent {
        // A failure mid-stream can only be logged: the status is already out.
        let now = crate::audit::rfc3339(spin.now_ms());
        let msg = format!("response not completed: {e}");
        spin.log(&operator_line(&now, "warn", audit.rid(), &msg));
    }
    let line = audit.line(spin.now_ms());
    write_line(&wasi::cli::stdout::get_stdout(), &line);
}
