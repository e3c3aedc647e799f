//! What crosses the gateway: which client headers reach MLflow (none that carry identity,
//! credentials, proxy claims or workspace selection) and which upstream headers reach the
//! client, and the requests that leave the gateway. An `UpstreamRequest` cannot be written as a
//! literal outside this file: it is made for the gateway's own calls (`to_mlflow`, `to_idp`)
//! or, for a client, as a `ClientRequest` from a checked plan (`client_request`, called only by
//! `pipeline::decision::Permit`, which `src/layering.rs` keeps so), the only kind
//! `pipeline::ctx::Ctx::forward` sends.

use crate::error::{GatewayError, Reason};
use crate::policy::plan::{BodyPlan, Plan};
use crate::policy::table::Row;
use crate::request::Incoming;

/// Request headers never forwarded. Hop-by-hop headers (RFC 9110 §7.6.1) and `Host` are
/// connection-specific; `Authorization` and `Cookie` are the caller's credentials (the token
/// must never reach MLflow); `X-Forwarded-*`/`Forwarded`/`X-Real-IP` would let a client spoof
/// its address (MLflow's assistant trusts loopback XFF); `X-MLFLOW-WORKSPACE` selects a
/// workspace; `Origin` would trip MLflow's CORS check; the identity headers of dev mode are the
/// gateway's input, not MLflow's; `Accept-Encoding` is dropped so answers can be checked.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "expect",
    "host",
    "content-length",
    "authorization",
    "cookie",
    "forwarded",
    "x-real-ip",
    "x-mlflow-workspace",
    "origin",
    "x-tenant",
    "x-subject",
    "x-roles",
    "x-request-id",
    "accept-encoding",
];

/// Response headers not copied back: hop-by-hop, framing (Spin frames the body itself), and
/// the request id (the gateway sets its own).
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "x-request-id",
];

fn connection_listed(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k == "connection")
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A header name as a WSGI server reads it: case-insensitive, and `_` read as `-` (uvicorn and
/// gunicorn put `X_MLFLOW_WORKSPACE` into the environ as `HTTP_X_MLFLOW_WORKSPACE`, the same
/// key as `X-MLFLOW-WORKSPACE`), so every spelling of a dropped header is dropped.
fn wsgi_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Whether a client header may be forwarded.
pub fn forwardable(name: &str, connection: &[String]) -> bool {
    let name = wsgi_name(name);
    !DROPPED_REQUEST_HEADERS.contains(&name.as_str())
        && !name.starts_with("x-forwarded-")
        && !name.starts_with("spin-")
        && !connection.iter().any(|c| wsgi_name(c) == name)
}

/// The header MLflow selects the workspace by (`mlflow/server/workspace_helpers.py`).
pub const WORKSPACE_HEADER: &str = "x-mlflow-workspace";

/// Artifact bodies larger than this are streamed through (uploads and downloads on the proxied
/// artifact routes); smaller ones are buffered, so they still leave in one write (a body sent
/// after the request is handed over can wait ~40 ms for a delayed ACK).
pub const STREAM_THRESHOLD: u64 = 1 << 20;

/// The body length a message declares: exactly one well-formed `content-length`, else `None`
/// (absent, repeated or malformed: such bodies are buffered, never streamed).
pub fn declared_length(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    let mut values = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    let (_, v) = values.next()?;
    if values.next().is_some() || v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Whether a body of this declared length is streamed rather than buffered.
pub fn streamed(declared: Option<u64>) -> bool {
    declared.is_some_and(|n| n > STREAM_THRESHOLD)
}

/// Largest request body the gateway holds in memory: every body except a large artifact upload
/// with a declared length is read into memory before the policy sees it, so this bounds the
/// component's memory per request whatever a client declares or sends chunked. It equals the
/// JSON parse limit (`mlflow::MAX_JSON_BODY_BYTES`): no buffered route needs more.
pub const MAX_BUFFERED_BODY_BYTES: u64 = crate::mlflow::MAX_JSON_BODY_BYTES as u64;

/// How the pipeline takes a request body in, decided from the head alone (method, matched route,
/// declared length) before a byte of the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyIntake {
    /// Left in the client's connection and piped to MLflow once the request is allowed (a
    /// proxied artifact upload declaring more than `STREAM_THRESHOLD` bytes).
    Stream(u64),
    /// Read into memory, refused with 413 as soon as more than `limit` bytes arrive.
    Buffer { limit: u64 },
}

/// The 413 for a body over the limit, in MLflow's error shape.
pub fn body_too_large(limit: u64) -> GatewayError {
    GatewayError::new(
        Reason::BodyTooLarge,
        format!("request body is larger than the gateway accepts ({limit} bytes)"),
    )
}

/// The intake for a request to `row`: an artifact upload with a large declared length streams;
/// anything else is buffered up to `MAX_BUFFERED_BODY_BYTES`, and a declared length over that
/// is refused at once (nothing is read).
pub fn body_intake(
    method: &str,
    row: &Row,
    declared: Option<u64>,
) -> Result<BodyIntake, GatewayError> {
    let upload = method == "PUT" && row.strategy.shape().streams;
    match declared {
        Some(n) if upload && streamed(Some(n)) => Ok(BodyIntake::Stream(n)),
        Some(n) if n > MAX_BUFFERED_BODY_BYTES => Err(body_too_large(MAX_BUFFERED_BODY_BYTES)),
        _ => Ok(BodyIntake::Buffer {
            limit: MAX_BUFFERED_BODY_BYTES,
        }),
    }
}

/// How many bytes to ask the client's stream for next so that a buffered body never holds more
/// than `limit + 1` bytes (the extra byte proves the body is over the limit).
pub fn next_read(buffered: u64, limit: u64, chunk: u64) -> u64 {
    limit.saturating_add(1).saturating_sub(buffered).min(chunk)
}

/// A request leaving the gateway, fully decided. Its fields are readable everywhere (the
/// platform sends it, tests inspect it) but it is made only here (`sealed`).
#[derive(Debug, Clone, PartialEq, Eq)]
// `#[non_exhaustive]` would seal it against other crates only; this seals it in this one.
#[allow(clippy::manual_non_exhaustive)]
pub struct UpstreamRequest {
    pub method: String,
    /// Path and query, relative to the upstream origin (base path included).
    pub path_and_query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    sealed: (),
}

/// A client's request as a permit allows it: the only thing `Ctx::forward` sends to MLflow.
#[derive(Debug)]
pub struct ClientRequest(UpstreamRequest);

impl ClientRequest {
    /// For a body piped from the client: the length it declared replaces the buffered one.
    pub fn set_length(&mut self, len: u64) {
        let h = &mut self.0.headers;
        h.retain(|(k, _)| k != "content-length");
        h.push(("content-length".into(), len.to_string().into_bytes()));
    }
    pub fn into_request(self) -> UpstreamRequest {
        self.0
    }
}

/// The upstream request for a checked plan. `original_body` is the client's body, moved in
/// (artifact uploads can be large); it is sent unless the plan rewrote the body. Called only by
/// `pipeline::decision::Permit::request`.
pub fn client_request(
    req: &Incoming,
    plan: &Plan,
    original_body: Vec<u8>,
    base_path: &str,
    request_id: &str,
) -> ClientRequest {
    let (body, made) = match &plan.body {
        BodyPlan::Original => (original_body, Made::No),
        BodyPlan::Replace(b) => (b.clone(), Made::Json),
        BodyPlan::Inflated(b) => (b.clone(), Made::Inflated),
    };
    ClientRequest(build(
        req,
        &plan.path,
        &plan.query,
        body,
        made,
        base_path,
        request_id,
    ))
}

/// Whether the gateway made the body it sends, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    /// The client's bytes.
    No,
    /// Re-serialised JSON: its own `Content-Type`.
    Json,
    /// The client's body inflated: the client's type, no `Content-Encoding`.
    Inflated,
}

/// The one place a forwarded request's head is made: the client's headers that may cross,
/// `Content-Type: application/json` for a body the gateway re-serialised, no
/// `Content-Encoding` for one it inflated, the peer as `X-Forwarded-For`, the request id, and
/// an explicit length.
fn build(
    req: &Incoming,
    path: &str,
    query: &str,
    body: Vec<u8>,
    made: Made,
    base_path: &str,
    request_id: &str,
) -> UpstreamRequest {
    let connection = connection_listed(&req.headers);
    let json = made == Made::Json;
    let mut headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .filter(|(k, _)| forwardable(k, &connection))
        .filter(|(k, _)| !(json && wsgi_name(k) == "content-type"))
        .filter(|(k, _)| !(made == Made::Inflated && wsgi_name(k) == "content-encoding"))
        .cloned()
        .collect();
    if json {
        headers.push(("content-type".into(), b"application/json".to_vec()));
    }
    if let Some(ip) = &req.peer_ip {
        headers.push(("x-forwarded-for".into(), ip.as_bytes().to_vec()));
    }
    headers.push(("x-request-id".into(), request_id.as_bytes().to_vec()));
    // MLflow reads an empty body when the length is missing (chunked): always send it.
    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    let mut path_and_query = format!("{base_path}{path}");
    if !query.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    UpstreamRequest {
        method: req.method.clone(),
        path_and_query,
        headers,
        body,
        sealed: (),
    }
}

impl UpstreamRequest {
    /// A JSON request the gateway itself makes to MLflow (pre-flights, provisioning, probes),
    /// carrying the client request's id; `body` is JSON or empty.
    pub fn to_mlflow(
        method: &str,
        base_path: &str,
        path: &str,
        body: Vec<u8>,
        request_id: &str,
    ) -> UpstreamRequest {
        let mut headers = vec![("x-request-id".into(), request_id.as_bytes().to_vec())];
        headers.extend(json_headers(&body));
        UpstreamRequest {
            method: method.into(),
            path_and_query: format!("{base_path}{path}"),
            headers,
            body,
            sealed: (),
        }
    }

    /// A request to the identity provider: `path` on its origin (`/` when empty), answers in
    /// JSON, with `headers` (the token endpoint's form type and client credentials) on top.
    pub fn to_idp(
        method: &str,
        path: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> UpstreamRequest {
        let mut all = json_headers(&[]);
        if !body.is_empty() {
            all.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        all.extend(headers);
        UpstreamRequest {
            method: method.into(),
            path_and_query: if path.is_empty() { "/".into() } else { path },
            headers: all,
            body,
            sealed: (),
        }
    }

    /// A request with no plan behind it: only for the benchmark's bare forwarder
    /// (`bench/forwarder`, which measures what the policy costs by forwarding without one).
    /// Compiled only with the `bench` feature, which the gateway's own build never enables.
    #[cfg(feature = "bench")]
    pub fn unplanned(
        method: String,
        path_and_query: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> UpstreamRequest {
        UpstreamRequest {
            method,
            path_and_query,
            headers,
            body,
            sealed: (),
        }
    }

    /// Leaves exactly the gateway's workspace header: every spelling already present is
    /// removed and `workspace`, if any, added.
    pub fn pin_workspace(&mut self, workspace: Option<&str>) {
        self.headers
            .retain(|(k, _)| wsgi_name(k) != WORKSPACE_HEADER);
        if let Some(ws) = workspace {
            self.headers
                .push((WORKSPACE_HEADER.into(), ws.as_bytes().to_vec()));
        }
    }
}

/// `Accept: application/json`, and for a JSON body its type and length.
fn json_headers(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![("accept".into(), b"application/json".to_vec())];
    if !body.is_empty() {
        headers.push(("content-type".into(), b"application/json".to_vec()));
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    headers
}

/// Upstream response headers to return to the client, plus the request id.
pub fn response_headers(upstream: &[(String, Vec<u8>)], request_id: &str) -> Vec<(String, String)> {
    let connection = connection_listed(upstream);
    let mut out: Vec<(String, String)> = upstream
        .iter()
        .filter(|(k, _)| !DROPPED_RESPONSE_HEADERS.contains(&k.as_str()))
        .filter(|(k, _)| !connection.iter().any(|c| c == k))
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.clone()).ok()?)))
        .collect();
    out.push(("x-request-id".into(), request_id.into()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ROWS;

    fn plan_for(path: &str) -> Plan {
        Plan {
            row: &ROWS[0],
            checks: vec![],
            references: vec![],
            protect: None,
            artifact_read: None,
            absent_or_own: vec![],
            verify: vec![],
            path: path.into(),
            query: "a=1".into(),
            body: BodyPlan::Original,
            filter: None,
            claim: None,
        }
    }

    #[test]
    fn credentials_identity_and_proxy_headers_are_stripped() {
        let req = Incoming::for_test(
            "POST",
            "/x",
            "",
            &[
                ("authorization", "Bearer secret-token"),
                ("cookie", "s=1"),
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-host", "evil"),
                ("x-mlflow-workspace", "other"),
                ("origin", "http://evil"),
                ("x-tenant", "a"),
                ("connection", "close, x-custom"),
                ("x-custom", "1"),
                ("spin-full-url", "http://x"),
                ("content-type", "application/json"),
                ("user-agent", "mlflow-python-client"),
            ],
            b"{}",
        );
        let up = client_request(
            &req,
            &plan_for("/api/2.0/mlflow/runs/get"),
            req.body.clone(),
            "/base",
            "rid",
        )
        .into_request();
        let names: Vec<&str> = up.headers.iter().map(|(k, _)| k.as_str()).collect();
        for gone in [
            "authorization",
            "cookie",
            "x-forwarded-host",
            "x-mlflow-workspace",
            "origin",
            "x-tenant",
            "x-custom",
            "spin-full-url",
            "connection",
        ] {
            assert!(!names.contains(&gone), "{gone} forwarded");
        }
        let xff: Vec<&Vec<u8>> = up
            .headers
            .iter()
            .filter(|(k, _)| k == "x-forwarded-for")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(xff, vec![&b"127.0.0.1".to_vec()]);
        assert!(up
            .headers
            .contains(&("content-length".into(), b"2".to_vec())));
        assert!(up
            .headers
            .contains(&("x-request-id".into(), b"rid".to_vec())));
        assert!(names.contains(&"user-agent"));
        assert_eq!(up.path_and_query, "/base/api/2.0/mlflow/runs/get?a=1");
    }

    #[test]
    fn response_headers_drop_framing_and_set_request_id() {
        let h = response_headers(
            &[
                ("content-length".into(), b"5".to_vec()),
                ("content-type".into(), b"application/json".to_vec()),
                ("x-request-id".into(), b"upstream".to_vec()),
            ],
            "mine",
        );
        assert_eq!(
            h,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("x-request-id".to_string(), "mine".to_string())
            ]
        );
    }

    #[test]
    fn only_large_well_declared_bodies_stream() {
        let h = |v: &[&str]| -> Vec<(String, Vec<u8>)> {
            v.iter()
                .map(|x| ("content-length".to_string(), x.as_bytes().to_vec()))
                .collect()
        };
        assert_eq!(declared_length(&h(&["5"])), Some(5));
        assert_eq!(declared_length(&h(&[])), None);
        assert_eq!(declared_length(&h(&["5", "5"])), None);
        assert_eq!(declared_length(&h(&["+5"])), None);
        assert_eq!(declared_length(&h(&[""])), None);
        assert!(!streamed(Some(STREAM_THRESHOLD)));
        assert!(streamed(Some(STREAM_THRESHOLD + 1)));
        assert!(!streamed(None));
    }

    fn row(id: &str) -> &'static Row {
        ROWS.iter().find(|r| r.id == id).expect("row exists")
    }

    #[test]
    fn body_intake_is_decided_from_the_head() {
        let upload = row("mlflow_artifacts.upload");
        let log_metric = row("runs.log_metric");
        let big = MAX_BUFFERED_BODY_BYTES + 1;
        // Large declared uploads stream, whatever their size.
        assert_eq!(
            body_intake("PUT", upload, Some(1 << 40)),
            Ok(BodyIntake::Stream(1 << 40))
        );
        // A chunked upload (no length) is buffered with the cap.
        assert_eq!(
            body_intake("PUT", upload, None),
            Ok(BodyIntake::Buffer {
                limit: MAX_BUFFERED_BODY_BYTES
            })
        );
        // JSON routes: a declared length over the limit is refused before reading.
        let err = body_intake("POST", log_metric, Some(big)).expect_err("refused");
        assert_eq!((err.status(), err.reason), (413, Reason::BodyTooLarge));
        assert_eq!(
            body_intake("POST", log_metric, Some(5)),
            Ok(BodyIntake::Buffer {
                limit: MAX_BUFFERED_BODY_BYTES
            })
        );
        assert!(body_intake("POST", log_metric, None).is_ok());
        assert!(body_intake("POST", log_metric, Some(1 << 40)).is_err());
    }

    #[test]
    fn buffered_reads_stop_one_byte_past_the_limit() {
        assert_eq!(next_read(0, 10, 4), 4);
        assert_eq!(next_read(8, 10, 4), 3);
        assert_eq!(next_read(11, 10, 4), 0);
        assert_eq!(next_read(0, u64::MAX, 4), 4);
    }
}
