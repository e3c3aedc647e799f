//! The benchmark's floor: forward every request to MLflow and return the answer, with the
//! gateway's own header rules and outbound client but no identity, policy, pre-flight or
//! audit. Gateway minus this is what the policy costs.

use mlflow_enterprise_gateway::config::parse_origin;
use mlflow_enterprise_gateway::forward::{forwardable, response_headers, UpstreamRequest};
use mlflow_enterprise_gateway::shell::outbound::{respond_full, send_to};
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, Request, ResponseOutparam};

/// Reads the request like the gateway does and answers through the gateway's response writer.
#[spin_sdk::http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let (status, headers, body) = match Request::try_from_incoming_request(incoming).await {
        Ok(req) => forward(req),
        Err(_) => (400, Vec::new(), b"bad request".to_vec()),
    };
    let _ = respond_full(out.into_inner(), status, &headers, &body);
}

fn forward(req: Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let origin = match spin_sdk::variables::get("upstream_origin")
        .ok()
        .and_then(|o| parse_origin("upstream_origin", &o).ok())
    {
        Some(o) => o,
        None => return (500, Vec::new(), b"bad upstream_origin".to_vec()),
    };
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
    let up = UpstreamRequest {
        method,
        path_and_query,
        headers,
        body: req.into_body(),
    };
    match send_to(origin.https, &origin.authority, &up, 30) {
        Ok(r) => (r.status, response_headers(&r.headers, "bench"), r.body),
        Err(_) => (502, Vec::new(), b"upstream failed".to_vec()),
    }
}
