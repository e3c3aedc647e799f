//! The benchmark's floor: forward every request to MLflow and return the answer, with the
//! gateway's own header rules and outbound client but no identity, policy, pre-flight or
//! audit. Gateway minus this is what the policy costs.
//!
//! For the attribution of that cost (docs/performance.md, "Where the gateway's CPU goes"), the
//! variable `extra_steps` (comma list, empty by default) adds one host-side step of the
//! gateway's at a time, each exactly as the gateway's shell does it:
//! * `vars`: read every component variable in one call (`wasi:config/store.get-all`);
//! * `kv`: open the key-value store and read one key; `kv3`: three keys;
//! * `audit`: write one audit-sized JSON line to stdout;
//! * `pipe`: answer with the head first and the body piped, as the gateway answers a forward.
//!
//! `GET /__ping` answers 200 at once, without calling MLflow (the cost of an instance alone).

use mlflow_enterprise_gateway::config::parse_origin;
use mlflow_enterprise_gateway::forward::{forwardable, response_headers, UpstreamRequest};
use mlflow_enterprise_gateway::shell::outbound::{respond_full, respond_piped, send_to, start, WireBody};
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, Request, ResponseOutparam};
use wasi::cli::stdout;

/// An audit line of the gateway's usual length.
const AUDIT_LINE: &str = "{\"ts\":\"2026-12-02T10:15:30.123Z\",\"request_id\":\"0123456789abcdef0123456789abcdef\",\"auth_mode\":\"oidc\",\"tenant\":\"bench-team\",\"subject\":\"bench\",\"roles\":[\"editor\"],\"method\":\"POST\",\"path\":\"/api/2.0/mlflow/runs/log-metric\",\"route\":\"runs.log_metric\",\"action\":\"write\",\"decision\":\"allow\",\"reason\":\"allowed\",\"status\":200,\"upstream_status\":200,\"duration_ms\":12,\"policy_version\":\"2026-11-30.1\",\"auth\":\"bearer\",\"token_check\":\"cached\"}\n";

/// Reads the request like the gateway does and answers through the gateway's response writer.
#[spin_sdk::http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let steps = spin_sdk::variables::get("extra_steps").unwrap_or_default();
    let has = |s: &str| steps.split(',').any(|x| x.trim() == s);
    if has("vars") {
        let _ = spin_sdk::wit::wasi::config::store::get_all();
    }
    if has("kv") || has("kv3") {
        if let Ok(store) = spin_sdk::key_value::Store::open_default() {
            for i in 0..if has("kv3") { 3 } else { 1 } {
                let _ = store.get(&format!("bench:key:{i}"));
            }
        }
    }
    let req = match Request::try_from_incoming_request(incoming).await {
        Ok(r) => r,
        Err(_) => {
            let _ = respond_full(out.into_inner(), 400, &[], b"bad request");
            return;
        }
    };
    if req.path() == "/__ping" {
        let _ = respond_full(out.into_inner(), 200, &[], b"");
    } else if has("pipe") {
        match prepare(req).and_then(|(origin, up)| {
            start(origin.https, &origin.authority, &up, WireBody::Bytes(&up.body), 30).ok()
        }) {
            Some(answer) => {
                let headers = response_headers(&answer.headers, "bench");
                let _ = respond_piped(out.into_inner(), answer.status, &headers, answer);
            }
            None => {
                let _ = respond_full(out.into_inner(), 502, &[], b"upstream failed");
            }
        }
    } else {
        let (status, headers, body) = forward(req);
        let _ = respond_full(out.into_inner(), status, &headers, &body);
    }
    if has("audit") {
        let _ = stdout::get_stdout().blocking_write_and_flush(AUDIT_LINE.as_bytes());
    }
}

fn prepare(req: Request) -> Option<(mlflow_enterprise_gateway::config::Origin, UpstreamRequest)> {
    let origin = spin_sdk::variables::get("upstream_origin")
        .ok()
        .and_then(|o| parse_origin("upstream_origin", &o).ok())?;
    let mut headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .filter(|(k, _)| forwardable(k, &[]))
        .collect();
    headers.push((
        "content-length".into(),
        req.body().len().to_string().into_bytes(),
    ));
    let method = req.method().to_string();
    let path_and_query = req.path_and_query().unwrap_or("/").to_string();
    Some((
        origin,
        UpstreamRequest::unplanned(method, path_and_query, headers, req.into_body()),
    ))
}

fn forward(req: Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let Some((origin, up)) = prepare(req) else {
        return (500, Vec::new(), b"bad upstream_origin".to_vec());
    };
    match send_to(origin.https, &origin.authority, &up, 30) {
        Ok(r) => (r.status, response_headers(&r.headers, "bench"), r.body),
        Err(_) => (502, Vec::new(), b"upstream failed".to_vec()),
    }
}
