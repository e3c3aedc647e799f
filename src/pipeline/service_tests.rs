//! MLflow 3's GenAI services through the whole pipeline, natively (`memory`): what a model
//! invocation's answer becomes (piped when it succeeds, scrubbed when it fails), what the
//! gateway claims for the tenant after MLflow created it, and how an OTLP export is sent on.

use super::host::UpstreamResponse;
use super::memory::{MemoryHost, Scripted};
use super::tests::{body_json, mlflow_with_workspaces, post, run_req, status, workspace_headers};
use super::Reply;
use std::io::Write;

fn answer(status: u16, body: &str) -> Scripted {
    Scripted::Answer(UpstreamResponse {
        status,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: body.as_bytes().to_vec(),
    })
}

const INVOKE: &str = "/gateway/chat/mlflow/invocations";

#[test]
fn a_models_answer_is_piped_and_its_error_loses_the_echoed_key() {
    let mut host = MemoryHost::dev_workspaces();
    mlflow_with_workspaces(&mut host);
    host.on("POST", INVOKE, answer(200, r#"{"choices":[]}"#));
    let o = run_req(&mut host, post(INVOKE, "team-a", r#"{"messages":[]}"#));
    assert!(matches!(o.reply, Reply::Piped { status: 200, .. }));
    assert_eq!(o.audit.record().route, Some("ai_gateway.invoke"));
    let sent = host.sent.last().expect("forwarded");
    assert_eq!(
        sent.body, br#"{"messages":[]}"#,
        "the client's bytes, unparsed"
    );
    assert_eq!(workspace_headers(sent), vec!["team-a"]);

    let echoed = r#"{"detail":"Incorrect API key provided: Bearer sk-SECRET-team-a-1234567890"}"#;
    host.on("POST", INVOKE, answer(401, echoed));
    let o = run_req(&mut host, post(INVOKE, "team-a", r#"{"messages":[]}"#));
    assert_eq!(status(&o), 401);
    let detail = body_json(&o)["detail"].as_str().unwrap().to_string();
    assert!(!detail.contains("sk-SECRET"), "{detail}");
    assert!(detail.starts_with("Incorrect API key provided: Bearer [redacted"));
}

#[test]
fn an_endpoints_own_experiment_is_claimed_for_the_tenant() {
    let mut host = MemoryHost::dev_workspaces();
    let (_, exp_b, _) = mlflow_with_workspaces(&mut host);
    let create = "/api/3.0/mlflow/gateway/endpoints/create";
    let set_tag = "/api/2.0/mlflow/experiments/set-experiment-tag";
    host.on(
        "POST",
        create,
        answer(
            200,
            r#"{"endpoint":{"endpoint_id":"e-1","experiment_id":"0"}}"#,
        ),
    );
    host.on("POST", set_tag, answer(200, "{}"));
    let o = run_req(&mut host, post(create, "team-a", r#"{"name":"chat"}"#));
    assert_eq!(status(&o), 200);
    let tagged = host
        .sent
        .iter()
        .find(|r| r.path_and_query == set_tag)
        .expect("the new experiment is tagged");
    let body: serde_json::Value = serde_json::from_slice(&tagged.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"experiment_id": "0", "key": "tenant", "value": "team-a"})
    );
    assert_eq!(workspace_headers(tagged), vec!["team-a"]);

    // An answer naming another tenant's experiment is never retagged; the operator hears.
    host.sent.clear();
    host.on(
        "POST",
        create,
        answer(
            200,
            &format!(r#"{{"endpoint":{{"experiment_id":"{exp_b}"}}}}"#),
        ),
    );
    let o = run_req(&mut host, post(create, "team-a", r#"{"name":"chat2"}"#));
    assert_eq!(status(&o), 200);
    assert!(!host
        .calls()
        .iter()
        .any(|c| c.contains("set-experiment-tag")));
    assert!(host
        .logs
        .iter()
        .any(|l| l.contains("could not tag experiment")));
}

#[test]
fn a_job_starters_run_is_tagged_with_the_tenant() {
    let mut host = MemoryHost::dev_workspaces();
    let (exp_a, _, _) = mlflow_with_workspaces(&mut host);
    let info = "/api/2.0/mlflow/traces/tr-1/info";
    host.on(
        "GET",
        info,
        answer(
            200,
            &format!(r#"{{"trace_info":{{"request_id":"tr-1","experiment_id":"{exp_a}"}}}}"#),
        ),
    );
    let start = "/ajax-api/3.0/mlflow/genai/evaluate/invoke";
    let run = "0123456789abcdef0123456789abcdef";
    host.on(
        "POST",
        start,
        answer(200, &format!(r#"{{"job_id":"j-1","run_id":"{run}"}}"#)),
    );
    host.on("POST", "/api/2.0/mlflow/runs/set-tag", answer(200, "{}"));
    let body = format!(
        r#"{{"experiment_id":"{exp_a}","trace_ids":["tr-1"],"serialized_scorers":["{{}}"]}}"#
    );
    let o = run_req(&mut host, post(start, "team-a", &body));
    assert_eq!(status(&o), 200);
    let tagged = host
        .sent
        .iter()
        .find(|r| r.path_and_query == "/api/2.0/mlflow/runs/set-tag")
        .expect("the run is tagged");
    let tag: serde_json::Value = serde_json::from_slice(&tagged.body).unwrap();
    assert_eq!(tag["run_id"], run);
    assert_eq!(tag["value"], "team-a");

    // Another tenant's experiment: refused before MLflow starts anything.
    host.on(
        "GET",
        "/api/3.0/mlflow/workspaces/team-b",
        Scripted::Answer(super::memory::recorded("workspace_get_missing")),
    );
    host.sent.clear();
    let o = run_req(&mut host, post(start, "team-b", &body));
    assert_eq!(status(&o), 403);
    assert!(!host.calls().iter().any(|c| c.contains("invoke")));
}

#[test]
fn a_compressed_export_reaches_mlflow_inflated_and_checked() {
    let mut host = MemoryHost::dev_workspaces();
    let (exp_a, exp_b, _) = mlflow_with_workspaces(&mut host);
    let trace = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{trace}","spanId":"0101010101010101","name":"s"}}]}}]}}]}}"#
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    // The span's trace does not exist yet: it will be created in the header's experiment.
    host.on(
        "GET",
        &format!("/api/2.0/mlflow/traces/tr-{trace}/info"),
        answer(404, r#"{"error_code":"RESOURCE_DOES_NOT_EXIST"}"#),
    );
    host.on("POST", "/v1/traces", answer(200, ""));
    let export = |exp: &str| {
        let headers = [
            ("x-tenant", "team-a"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("x-mlflow-experiment-id", exp),
        ];
        crate::request::Incoming::for_test("POST", "/v1/traces", "", &headers, &gz)
    };
    let o = run_req(&mut host, export(&exp_a));
    assert_eq!(status(&o), 200);
    let sent = host.sent.last().expect("forwarded");
    assert_eq!(sent.body, json.as_bytes());
    let names: Vec<&str> = sent.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert!(!names.contains(&"content-encoding"), "{names:?}");
    assert!(sent
        .headers
        .contains(&("content-type".into(), b"application/json".to_vec())));
    // Into another tenant's experiment (team-a's own workspace pinned): refused, nothing sent.
    host.sent.clear();
    let o = run_req(&mut host, export(&exp_b));
    assert_eq!(status(&o), 403);
    assert!(!host
        .calls()
        .iter()
        .any(|c| c.starts_with("POST /v1/traces")));
}
