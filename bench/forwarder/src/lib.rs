//! The benchmark's floor: forward every request to MLflow and return the answer, with the
//! gateway's own header rules and outbound client but no identity, policy, pre-flight or
//! audit. Gateway minus this is what the policy costs.

use mlflow_enterprise_gateway::config::parse_origin;
use mlflow_enterprise_gateway::forward::{forwardable, response_headers, UpstreamRequest};
use mlflow_enterprise_gateway::shell::outbound::send_to;
use spin_sdk::http::{Request, Response};

#[spin_sdk::http_component]
async fn handle(req: Request) -> Response {
    let origin = match spin_sdk::variables::get("upstream_origin")
        .ok()
        .and_then(|o| parse_origin("upstream_origin", &o).ok())
    {
        Some(o) => o,
        None => return Response::new(500, "bad upstream_origin"),
    };
    let mut headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .filter(|(k, _)| forwardable(k, &[]))
        .collect();
    headers.push(("content-length".into(), req.body().len().to_string().into_bytes()));
    let method = req.method().to_string();
    let path_and_query = req.path_and_query().unwrap_or("/").to_string();
    let up = UpstreamRequest {
        method,
        path_and_query,
        headers,
        body: req.into_body(),
    };
    match send_to(origin.https, &origin.authority, &up, 30) {
        Ok(r) => {
            let mut b = Response::builder();
            b.status(r.status);
            for (k, v) in response_headers(&r.headers, "bench") {
                b.header(k, v);
            }
            b.body(r.body);
            b.build()
        }
        Err(_) => Response::new(502, "upstream failed"),
    }
}
