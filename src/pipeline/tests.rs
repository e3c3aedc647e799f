//! The whole pipeline, natively, on the in-memory platform (`memory`): what is forwarded, what
//! is refused, and every fail-closed path (key-value store broken or hung past the deadline,
//! MLflow down, cut off or answering something unexpected), each with its status, reason and
//! audit record. MLflow's answers are recorded from the real MLflow 3.17.2.

use super::host::SendFailure;
use super::memory::{recorded, recorded_meta, MemoryHost, Scripted};
use super::{handle, Outcome, Reply};
use crate::request::Incoming;

pub(super) fn get(path: &str, query: &str, tenant: &str) -> Incoming {
    let headers = [("x-tenant", tenant), ("x-subject", "alice")];
    Incoming::for_test("GET", path, query, &headers, b"")
}

pub(super) fn post(path: &str, tenant: &str, body: &str) -> Incoming {
    let headers = [("x-tenant", tenant), ("content-type", "application/json")];
    Incoming::for_test("POST", path, "", &headers, body.as_bytes())
}

/// Runs one request; the body (if any) is handed over unread, as the shell does.
pub(super) fn run_req(
    host: &mut MemoryHost,
    mut inc: Incoming,
) -> Outcome<super::memory::MemoryAnswer> {
    let body = std::mem::take(&mut inc.body);
    handle(host, inc, Some(body))
}

pub(super) fn status<A>(o: &Outcome<A>) -> u16 {
    o.reply.status()
}

pub(super) fn body_json<A>(o: &Outcome<A>) -> serde_json::Value {
    match &o.reply {
        Reply::Full(r) => serde_json::from_slice(&r.body).expect("JSON body"),
        Reply::Piped { .. } => panic!("piped"),
    }
}

/// MLflow as recorded: team-a's experiment, its run, team-b's experiment, the Default one.
pub(super) fn mlflow(host: &mut MemoryHost) -> (String, String, String) {
    let (exp_a, exp_b, run) = (
        recorded_meta("experiment_team_a"),
        recorded_meta("experiment_team_b"),
        recorded_meta("run"),
    );
    let exp = |id: &str| format!("/api/2.0/mlflow/experiments/get?experiment_id={id}");
    host.on(
        "GET",
        &exp(&exp_a),
        Scripted::Answer(recorded("experiments_get_team_a")),
    );
    host.on(
        "GET",
        &exp(&exp_b),
        Scripted::Answer(recorded("experiments_get_team_b")),
    );
    host.on(
        "GET",
        &exp("0"),
        Scripted::Answer(recorded("experiments_get_default")),
    );
    host.on(
        "GET",
        &exp("999"),
        Scripted::Answer(recorded("experiments_get_missing")),
    );
    let run_get = format!("/api/2.0/mlflow/runs/get?run_id={run}");
    host.on("GET", &run_get, Scripted::Answer(recorded("runs_get")));
    host.on(
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Scripted::Answer(recorded("runs_log_metric")),
    );
    (exp_a, exp_b, run)
}

fn log_metric(run: &str, tenant: &str) -> Incoming {
    let body = format!(r#"{{"run_id":"{run}","key":"m","value":1.0,"timestamp":1}}"#);
    post("/api/2.0/mlflow/runs/log-metric", tenant, &body)
}

#[test]
fn the_owner_is_forwarded_once_and_the_facts_are_cached() {
    let mut host = MemoryHost::dev();
    let (exp_a, _, run) = mlflow(&mut host);
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 200);
    let rec = o.audit.record();
    assert_eq!((rec.decision, rec.reason), ("allow", "allowed"));
    assert_eq!(rec.route, Some("runs.log_metric"));
    assert_eq!(rec.upstream_status, Some(200));
    assert_eq!(
        host.calls(),
        vec![
            format!("GET /api/2.0/mlflow/runs/get?run_id={run}"),
            format!("GET /api/2.0/mlflow/experiments/get?experiment_id={exp_a}"),
            "POST /api/2.0/mlflow/runs/log-metric".to_string(),
        ]
    );
    // The forwarded body is the checked one, judged fields first.
    let fwd = host.sent.last().expect("forwarded");
    assert!(fwd
        .body
        .starts_with(format!(r#"{{"run_id":"{run}""#).as_bytes()));
    // The second request is decided from the cached facts: no pre-flight, and two key-value
    // reads (the run's experiment, then the experiment's tenant and grants: a grant change
    // rewrites that fact, so the run never decides on a copy of it).
    host.sent.clear();
    host.kv_reads.clear();
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 200);
    assert_eq!(host.calls(), vec!["POST /api/2.0/mlflow/runs/log-metric"]);
    let reads = vec![format!("own:v2:run:{run}"), format!("own:v2:exp:{exp_a}")];
    assert_eq!(host.kv_reads, reads);
    // A stale experiment fact means a pre-flight.
    host.now_ms += 301_000;
    host.sent.clear();
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 200);
    assert!(
        host.calls().iter().any(|c| c.contains("experiments/get")),
        "{:?}",
        host.calls()
    );
    // another tenant is refused from the same reads
    host.kv_reads.clear();
    let o = run_req(&mut host, log_metric(&run, "team-b"));
    assert_eq!(o.audit.record().reason, "tenant_mismatch");
    assert_eq!(host.kv_reads, reads);
}

#[test]
fn another_tenant_is_refused_and_nothing_is_forwarded() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    let o = run_req(&mut host, log_metric(&run, "team-b"));
    assert_eq!(status(&o), 403);
    assert_eq!(body_json(&o)["error_code"], "PERMISSION_DENIED");
    let rec = o.audit.record();
    assert_eq!((rec.decision, rec.reason), ("deny", "tenant_mismatch"));
    assert_eq!(rec.upstream_status, None);
    assert!(
        host.calls().iter().all(|c| c.starts_with("GET ")),
        "only pre-flights"
    );
    // The Default experiment (untagged) belongs to nobody; an absent one is refused alike.
    for id in ["0", "999"] {
        let o = run_req(
            &mut host,
            get(
                "/api/2.0/mlflow/experiments/get",
                &format!("experiment_id={id}"),
                "team-a",
            ),
        );
        assert_eq!(status(&o), 403, "experiment {id}");
    }
}

#[test]
fn a_broken_key_value_store_fails_closed() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    host.kv_broken = true;
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 503);
    assert_eq!(o.audit.record().reason, "kv_unavailable");
    assert!(host.sent.is_empty(), "nothing sent, not even a pre-flight");
    assert!(host.logs.iter().any(|l| l.contains("store unavailable")));
}

#[test]
fn a_request_held_up_past_its_deadline_is_never_forwarded() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    host.set_var("request_timeout_seconds", "1");
    host.kv_stall_ms = 1_500; // the store answers, but after the client's deadline
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 503);
    assert_eq!(o.audit.record().reason, "deadline_exceeded");
    assert!(
        !host.calls().iter().any(|c| c.starts_with("POST")),
        "not forwarded"
    );
}

#[test]
fn mlflow_down_during_a_preflight_is_a_502() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    let run_get = format!("/api/2.0/mlflow/runs/get?run_id={run}");
    host.on(
        "GET",
        &run_get,
        Scripted::Fail(SendFailure::Unreachable("refused".into())),
    );
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 502);
    assert_eq!(o.audit.record().reason, "upstream_unreachable");
    assert_eq!(host.sent.len(), 1, "only the failed pre-flight");
}

#[test]
fn an_unexpected_preflight_answer_fails_closed() {
    for answer in [
        // An answer about another run.
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: br#"{"run":{"info":{"run_id":"other","experiment_id":"1"}}}"#.to_vec(),
        }),
        // Not JSON.
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: b"<html>".to_vec(),
        }),
        // A server error.
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 500,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }),
    ] {
        let mut host = MemoryHost::dev();
        let (_, _, run) = mlflow(&mut host);
        host.on(
            "GET",
            &format!("/api/2.0/mlflow/runs/get?run_id={run}"),
            answer,
        );
        let o = run_req(&mut host, log_metric(&run, "team-a"));
        assert_eq!(status(&o), 502);
        assert_eq!(o.audit.record().reason, "preflight_failed");
        assert!(!host.calls().iter().any(|c| c.starts_with("POST")));
    }
}

#[test]
fn upstream_failures_while_forwarding_are_named() {
    let cases = [
        (SendFailure::Timeout, 504, "upstream_timeout"),
        (SendFailure::Reset("reset".into()), 502, "upstream_reset"),
        (
            SendFailure::Truncated {
                got: 3,
                expected: 10,
            },
            502,
            "upstream_truncated",
        ),
    ];
    for (failure, code, reason) in cases {
        let mut host = MemoryHost::dev();
        let (_, _, run) = mlflow(&mut host);
        host.on(
            "POST",
            "/api/2.0/mlflow/runs/log-metric",
            Scripted::FailBody(200, failure),
        );
        let o = run_req(&mut host, log_metric(&run, "team-a"));
        assert_eq!((status(&o), o.audit.record().reason), (code, reason));
        // The answer's head had arrived: the audit line keeps MLflow's status.
        assert_eq!(o.audit.record().upstream_status, Some(200));
    }
}

#[test]
fn refusals_before_any_io() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    // An unknown route.
    let o = run_req(
        &mut host,
        get("/api/2.0/mlflow/webhooks/list", "", "team-a"),
    );
    assert_eq!((status(&o), o.audit.record().reason), (403, "route_denied"));
    let o = run_req(&mut host, get("/api/2.0/mlflow/not-a-route", "", "team-a"));
    assert_eq!(status(&o), 403);
    // No tenant (dev mode: the header is required).
    let o = run_req(
        &mut host,
        Incoming::for_test("GET", "/api/2.0/mlflow/runs/get", "", &[], b""),
    );
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (400, "tenant_header_missing")
    );
    // A body over the limit.
    let mut big = log_metric(&run, "team-a");
    big.body = vec![b' '; (crate::forward::MAX_BUFFERED_BODY_BYTES + 1) as usize];
    let o = run_req(&mut host, big);
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (413, "body_too_large")
    );
    assert!(host.sent.is_empty());
    assert!(host.kv.is_empty());
}

#[test]
fn an_invalid_setting_is_a_501_that_names_the_variable() {
    let mut host = MemoryHost::dev();
    host.set_var("request_timeout_seconds", "soon");
    let o = run_req(
        &mut host,
        get(
            "/api/2.0/mlflow/experiments/get",
            "experiment_id=1",
            "team-a",
        ),
    );
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (501, "config_invalid")
    );
    assert!(host
        .logs
        .iter()
        .any(|l| l.contains("request_timeout_seconds")));
    assert!(host.sent.is_empty());
}

#[test]
fn health_and_readiness() {
    let mut host = MemoryHost::dev();
    let o = run_req(&mut host, get("/healthz", "", ""));
    assert_eq!((status(&o), o.audit.record().reason), (200, "health"));
    assert!(host.sent.is_empty());
    host.on(
        "GET",
        "/health",
        Scripted::Fail(SendFailure::Unreachable("down".into())),
    );
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 503);
    assert_eq!(body_json(&o)["mlflow"], "unavailable");
    host.on("GET", "/health", Scripted::Answer(recorded("health")));
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 200);
}

#[test]
fn every_outcome_has_one_audit_record_with_the_request_id() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    let mut inc = log_metric(&run, "team-b");
    inc.headers
        .push(("x-request-id".into(), b"req-123".to_vec()));
    let o = run_req(&mut host, inc);
    assert_eq!(o.audit.rid(), "req-123");
    let line = o.audit.line(host.now_ms + 7);
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("one JSON line");
    assert_eq!(v["request_id"], "req-123");
    assert_eq!(v["status"], 403);
    assert_eq!(v["duration_ms"], 7);
    assert_eq!(v["tenant"], "team-b");
}

// ---- tenant_isolation=workspace ----

const WS: &str = "/api/3.0/mlflow/workspaces";

/// MLflow with workspaces on, team-a's workspace not created yet.
pub(super) fn mlflow_with_workspaces(host: &mut MemoryHost) -> (String, String, String) {
    let ids = mlflow(host);
    host.on(
        "GET",
        "/api/3.0/mlflow/server-info",
        Scripted::Answer(recorded("server_info_workspaces")),
    );
    host.on(
        "GET",
        &format!("{WS}/team-a"),
        Scripted::Answer(recorded("workspace_get_missing")),
    );
    host.on("POST", WS, Scripted::Answer(recorded("workspace_create")));
    ids
}

/// The workspace headers a sent request carries, in any spelling.
pub(super) fn workspace_headers(r: &crate::forward::UpstreamRequest) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().replace('_', "-") == "x-mlflow-workspace")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn a_tenants_first_request_creates_its_workspace_and_every_call_is_pinned() {
    let mut host = MemoryHost::dev_workspaces();
    let (_, _, run) = mlflow_with_workspaces(&mut host);
    // Selecting another workspace with conflicting spellings of the header is refused.
    let mut req = log_metric(&run, "team-a");
    req.headers
        .push(("x-mlflow-workspace".into(), b"team-a".to_vec()));
    req.headers
        .push(("x_mlflow_workspace".into(), b"default".to_vec()));
    let o = run_req(&mut host, req);
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (400, "workspace_header_invalid")
    );
    assert!(host.sent.is_empty());
    // The caller's own workspace, in every spelling: selected, then dropped and pinned once.
    let mut req = log_metric(&run, "team-a");
    for spelling in [
        "x-mlflow-workspace",
        "x_mlflow_workspace",
        "X-Mlflow-Workspace",
    ] {
        req.headers.push((spelling.into(), b"team-a".to_vec()));
    }
    let o = run_req(&mut host, req);
    assert_eq!(status(&o), 200);
    let calls = host.calls();
    assert_eq!(
        calls[..3],
        [
            "GET /api/3.0/mlflow/server-info".to_string(),
            format!("GET {WS}/team-a"),
            format!("POST {WS}"),
        ]
    );
    let created: serde_json::Value = serde_json::from_slice(&host.sent[2].body).unwrap();
    assert_eq!(created["name"], "team-a");
    // The gateway's own provisioning calls are outside any workspace ...
    for r in &host.sent[..3] {
        assert!(workspace_headers(r).is_empty(), "{}", r.path_and_query);
    }
    // ... and every call on the tenant's behalf (pre-flights and the forward) is pinned once.
    assert!(calls[3..].iter().any(|c| c.contains("runs/get")));
    assert_eq!(
        calls.last().unwrap(),
        "POST /api/2.0/mlflow/runs/log-metric"
    );
    for r in &host.sent[3..] {
        assert_eq!(workspace_headers(r), ["team-a"], "{}", r.path_and_query);
    }
    assert_eq!(o.audit.record().workspace.as_deref(), Some("team-a"));
    assert!(host
        .logs
        .iter()
        .any(|l| l.contains("created MLflow workspace `team-a`")));

    // Remembered: the next request goes straight to work.
    host.sent.clear();
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 200);
    assert_eq!(host.calls(), ["POST /api/2.0/mlflow/runs/log-metric"]);
    assert_eq!(workspace_headers(&host.sent[0]), ["team-a"]);
}

#[test]
fn a_workspace_created_by_another_instance_meanwhile_is_used() {
    let mut host = MemoryHost::dev_workspaces();
    let (_, _, run) = mlflow_with_workspaces(&mut host);
    host.on(
        "POST",
        WS,
        Scripted::Answer(recorded("workspace_create_exists")),
    );
    assert_eq!(status(&run_req(&mut host, log_metric(&run, "team-a"))), 200);
}

#[test]
fn manual_provisioning_refuses_a_tenant_without_a_workspace() {
    let mut host = MemoryHost::dev_workspaces();
    host.set_var("workspace_provisioning", "manual");
    let (_, _, run) = mlflow_with_workspaces(&mut host);
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 403);
    assert_eq!(o.audit.record().reason, "workspace_missing");
    assert!(body_json(&o)["message"]
        .as_str()
        .unwrap()
        .contains("workspace_provisioning=manual"));
    assert!(!host.calls().iter().any(|c| c.starts_with("POST")));

    // Once an operator has created it, the tenant works.
    host.on(
        "GET",
        &format!("{WS}/team-a"),
        Scripted::Answer(recorded("workspace_get")),
    );
    assert_eq!(status(&run_req(&mut host, log_metric(&run, "team-a"))), 200);
}

#[test]
fn an_mlflow_without_workspaces_is_refused_never_served_open() {
    let mut host = MemoryHost::dev_workspaces();
    let (_, _, run) = mlflow(&mut host);
    host.on(
        "GET",
        "/api/3.0/mlflow/server-info",
        Scripted::Answer(recorded("server_info_tag")),
    );
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 501);
    assert_eq!(o.audit.record().reason, "workspaces_disabled");
    assert_eq!(host.calls(), ["GET /api/3.0/mlflow/server-info"]);
    assert!(host.logs.iter().any(|l| l.contains("--enable-workspaces")));

    let o = run_req(&mut host, get("/readyz", "", ""));
    host.on("GET", "/health", Scripted::Answer(recorded("health")));
    let o2 = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 503);
    assert_eq!(status(&o2), 503);
    assert_eq!(body_json(&o2)["workspaces"], "unavailable");
    assert_eq!(body_json(&o2)["isolation"], "workspace");
    host.on(
        "GET",
        "/api/3.0/mlflow/server-info",
        Scripted::Answer(recorded("server_info_workspaces")),
    );
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 200);
    assert_eq!(body_json(&o)["workspaces"], "enabled");
}

#[test]
fn a_tenant_id_that_is_no_workspace_name_is_refused_before_any_call() {
    let mut host = MemoryHost::dev_workspaces();
    let (_, _, run) = mlflow_with_workspaces(&mut host);
    for tenant in ["default", "Team-A", "x"] {
        let o = run_req(&mut host, log_metric(&run, tenant));
        assert_eq!(status(&o), 403, "{tenant}");
        assert_eq!(o.audit.record().reason, "workspace_name_invalid");
    }
    assert!(host.calls().is_empty());
    // A prefix maps every tenant id into a namespace of its own.
    host.set_var("workspace_prefix", "t-");
    host.on(
        "GET",
        &format!("{WS}/t-default"),
        Scripted::Answer(recorded("workspace_get")),
    );
    let o = run_req(
        &mut host,
        get("/api/3.0/mlflow/workspaces/t-default", "", "default"),
    );
    assert_eq!(status(&o), 200);
    assert_eq!(workspace_headers(host.sent.last().unwrap()), ["t-default"]);
}

#[test]
fn the_workspace_api_shows_a_caller_only_the_workspaces_it_may_enter() {
    let mut host = MemoryHost::dev_workspaces();
    mlflow_with_workspaces(&mut host);
    host.on(
        "GET",
        &format!("{WS}/team-a"),
        Scripted::Answer(recorded("workspace_get")),
    );
    // MLflow lists every tenant's workspace; the caller sees its own (and, in two tenants,
    // the second one too, by name, before its first request creates it).
    let all = r#"{"workspaces": [{"name": "team-a", "description": "a"}, {"name": "team-b"}, {"name": "team-c"}]}"#;
    host.on(
        "GET",
        WS,
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 200,
            headers: vec![],
            body: all.as_bytes().to_vec(),
        }),
    );
    // No share index yet: nothing is shared with anyone.
    host.on(
        "GET",
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=mlflow-gateway-share-index",
        Scripted::Answer(recorded("experiments_get_missing")),
    );
    let o = run_req(&mut host, get(WS, "", "team-a"));
    assert_eq!(status(&o), 200, "{:?}", host.logs);
    let names = |o: &Outcome<super::memory::MemoryAnswer>| -> Vec<String> {
        body_json(o)["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&o), vec!["team-a"]);
    assert!(host.calls().contains(&format!("GET {WS}")));
    let o = run_req(&mut host, get(WS, "", "team-a, team-d=viewer"));
    assert_eq!(names(&o), vec!["team-a", "team-d"]);

    host.sent.clear();
    let o = run_req(&mut host, get(&format!("{WS}/team-b"), "", "team-a"));
    assert_eq!(status(&o), 404);
    assert_eq!(body_json(&o)["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert!(host.calls().is_empty());
    for (method, path) in [("POST", WS.to_string()), ("DELETE", format!("{WS}/team-a"))] {
        let inc = Incoming::for_test(method, &path, "", &[("x-tenant", "team-a")], b"{}");
        let o = run_req(&mut host, inc);
        assert_eq!(status(&o), 403, "{method} {path}");
        assert_eq!(o.audit.record().reason, "route_denied");
    }
    assert!(host.calls().is_empty());

    // In tag mode the rows are refused: workspaces are not used.
    let mut host = MemoryHost::dev();
    let o = run_req(&mut host, get(WS, "", "team-a"));
    assert_eq!(status(&o), 403);
    assert_eq!(o.audit.record().reason, "route_denied");
}

// ---- rate limits ----

fn log_metric_as(run: &str, tenant: &str, subject: &str) -> Incoming {
    let mut inc = log_metric(run, tenant);
    inc.headers
        .push(("x-subject".into(), subject.as_bytes().to_vec()));
    inc
}

#[test]
fn a_used_up_limit_is_429_with_retry_after_and_never_forwarded() {
    let mut host = MemoryHost::dev();
    host.set_var("rate_limit_subject_writes", "2");
    host.set_var("rate_limit_window_seconds", "60");
    let (exp_a, _, run) = mlflow(&mut host);
    host.now_ms = (1_796_000_000 / 60 * 60 + 20) * 1000; // 20 s into a 60 s window
    for _ in 0..2 {
        assert_eq!(
            status(&run_req(&mut host, log_metric_as(&run, "team-a", "alice"))),
            200
        );
    }
    let forwarded = host.calls().len();
    let o = run_req(&mut host, log_metric_as(&run, "team-a", "alice"));
    assert_eq!(status(&o), 429);
    assert_eq!(o.audit.record().reason, "rate_limited");
    assert_eq!(body_json(&o)["error_code"], "REQUEST_LIMIT_EXCEEDED");
    match &o.reply {
        Reply::Full(r) => assert!(r.headers.contains(&("retry-after".into(), "40".into()))),
        Reply::Piped { .. } => panic!("piped"),
    }
    assert_eq!(
        host.calls().len(),
        forwarded,
        "nothing sent for a limited request"
    );
    // Another subject has its own count; reads are counted apart from writes.
    assert_eq!(
        status(&run_req(&mut host, log_metric_as(&run, "team-a", "bob"))),
        200
    );
    let read = get(
        "/api/2.0/mlflow/experiments/get",
        &format!("experiment_id={exp_a}"),
        "team-a",
    );
    assert_eq!(status(&run_req(&mut host, read)), 200);
    // The next window starts a new count.
    host.now_ms += 60_000;
    assert_eq!(
        status(&run_req(&mut host, log_metric_as(&run, "team-a", "alice"))),
        200
    );
}

#[test]
fn the_tenant_limit_is_shared_by_its_subjects_and_keys_stay_bounded() {
    let mut host = MemoryHost::dev();
    host.set_var("rate_limit_tenant_writes", "3");
    host.set_var("rate_limit_window_seconds", "10");
    let (_, _, run) = mlflow(&mut host);
    for window in 0..20u64 {
        host.now_ms = 1_796_000_000_000 + window * 10_000;
        for (i, who) in ["alice", "bob", "carol", "dave"].iter().enumerate() {
            let want = if i < 3 { 200 } else { 429 };
            let o = run_req(&mut host, log_metric_as(&run, "team-a", who));
            assert_eq!(status(&o), want, "window {window}, {who}");
        }
    }
    // Two slots, each a counter and its epoch: the key space does not grow with time.
    let rl: Vec<&String> = host.kv.keys().filter(|k| k.starts_with("rl:")).collect();
    assert_eq!(rl.len(), 4, "{rl:?}");
    for (k, v) in &host.kv {
        if k.starts_with("rl:") && !k.ends_with(":epoch") {
            assert_eq!(v.len(), 8, "{k} is only ever written by increment");
        }
    }
}

#[test]
fn a_store_failure_in_the_limiter_denies_or_allows_as_configured() {
    let mut host = MemoryHost::dev();
    host.set_var("rate_limit_subject_writes", "100");
    host.set_var("ownership_cache_seconds", "0");
    let (_, _, run) = mlflow(&mut host);
    host.kv_broken = true;
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (503, "kv_unavailable")
    );
    assert!(host.calls().is_empty());
    host.set_var("rate_limit_store_failure", "allow");
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(status(&o), 200);
    assert!(host
        .logs
        .iter()
        .any(|l| l.contains("rate limit not counted")));
}

// ---- enforcement=report ----

#[test]
fn report_mode_forwards_what_it_would_refuse_and_audits_would_deny() {
    let mut host = MemoryHost::dev();
    host.set_var("enforcement", "report");
    let (exp_a, _, _) = mlflow(&mut host);
    let path = "/api/2.0/mlflow/experiments/get";
    let query = format!("experiment_id={exp_a}");
    // Another tenant's read: forwarded unchecked, MLflow's answer returned.
    let o = run_req(&mut host, get(path, &query, "team-b"));
    assert_eq!(status(&o), 200);
    let audit = o.audit.record();
    assert_eq!(
        (audit.decision, audit.reason),
        ("would_deny", "tenant_mismatch")
    );
    assert_eq!(audit.upstream_status, Some(200));
    assert_eq!(host.calls().last().unwrap(), &format!("GET {path}?{query}"));
    assert!(host.logs.iter().any(|l| l.contains("enforcement=report")));
    // No identity at all: refused as in enforce mode, and nothing is sent.
    let sent = host.calls().len();
    let anon = Incoming::for_test("GET", path, &query, &[], b"");
    let o = run_req(&mut host, anon);
    assert_eq!(status(&o), 400);
    assert_eq!(
        (o.audit.record().decision, o.audit.record().reason),
        ("deny", "tenant_header_missing")
    );
    assert_eq!(host.calls().len(), sent);
    // A protected tag stays refused, and nothing is sent.
    let body = format!(r#"{{"experiment_id":"{exp_a}","key":"tenant","value":"team-b"}}"#);
    let o = run_req(
        &mut host,
        post(
            "/api/2.0/mlflow/experiments/set-experiment-tag",
            "team-a",
            &body,
        ),
    );
    assert_eq!((status(&o), o.audit.record().reason), (403, "reserved_tag"));
    assert_eq!(host.calls().len(), sent);
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(body_json(&o)["enforcement"], "report");

    // The same read under enforce (the default) is refused and never sent.
    let mut host = MemoryHost::dev();
    mlflow(&mut host);
    let o = run_req(&mut host, get(path, &query, "team-b"));
    assert_eq!((status(&o), o.audit.record().decision), (403, "deny"));
}

/// MLflow's `experiments/get` answer for an experiment of `tenant` with one grant tag, shaped
/// as the recorded answers are.
fn experiment_with_grant(
    id: &str,
    tenant: &str,
    subject: &str,
    level: &str,
) -> crate::pipeline::host::UpstreamResponse {
    use crate::mlflow::grants::{tag_key, tag_value, Grant, GrantLevel};
    let g = Grant {
        subject: subject.into(),
        level: GrantLevel::parse(level).expect("level"),
    };
    let body = serde_json::json!({"experiment": {
        "experiment_id": id, "name": format!("exp-{id}"), "lifecycle_stage": "active",
        "tags": [{"key": "tenant", "value": tenant},
                 {"key": tag_key("tenant", subject), "value": tag_value(&g)}]}});
    crate::pipeline::host::UpstreamResponse {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: body.to_string().into_bytes(),
    }
}

/// Report mode in workspace mode: a request as `tenant` (with `roles`), on a host where both
/// tenants' workspaces exist.
fn as_tenant(
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    tenant: &str,
    roles: &str,
) -> Incoming {
    let headers = [
        ("x-tenant", tenant),
        ("x-roles", roles),
        ("content-type", "application/json"),
    ];
    Incoming::for_test(method, path, query, &headers, body.as_bytes())
}

fn report_host() -> (MemoryHost, String, String, String) {
    let mut host = MemoryHost::dev_workspaces();
    host.set_var("enforcement", "report");
    let (exp_a, exp_b, run) = mlflow_with_workspaces(&mut host);
    // Experiment 777: team-a's, with a DENY for the dev-mode subject (`anonymous`).
    host.on(
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=777",
        Scripted::Answer(experiment_with_grant(
            "777",
            "team-a",
            "user:anonymous",
            "DENY",
        )),
    );
    for ws in ["team-a", "team-b"] {
        host.on(
            "GET",
            &format!("{WS}/{ws}"),
            Scripted::Answer(recorded("workspace_get")),
        );
    }
    (host, exp_a, exp_b, run)
}

/// Every refusal report mode forwards (`error::REPORTABLE`), each where it arises: the request
/// enforce mode would have sent is forwarded, pinned to the caller's own workspace (never
/// unpinned, never another's), and audited `would_deny` with its reason.
#[test]
fn report_mode_forwards_each_reportable_refusal_pinned_to_the_callers_workspace() {
    use crate::error::REPORTABLE;
    let (_, exp_a, _, run) = report_host();
    let exp = "/api/2.0/mlflow/experiments/get";
    let cases = [
        // A viewer's write on its own run: the role.
        (
            "rbac",
            as_tenant(
                "POST",
                "/api/2.0/mlflow/runs/log-metric",
                "",
                &format!(r#"{{"run_id":"{run}","key":"m","value":1.0,"timestamp":1}}"#),
                "team-a",
                "viewer",
            ),
            "team-a",
        ),
        // Another tenant's experiment as the request's target.
        (
            "tenant_mismatch",
            as_tenant(
                "GET",
                exp,
                &format!("experiment_id={exp_a}"),
                "",
                "team-b",
                "editor",
            ),
            "team-b",
        ),
        // A target a DENY grant hides from the caller.
        (
            "grant_denied",
            as_tenant("GET", exp, "experiment_id=777", "", "team-a", "admin"),
            "team-a",
        ),
        // A target that does not exist.
        (
            "resource_not_found",
            as_tenant("GET", exp, "experiment_id=999", "", "team-a", "editor"),
            "team-a",
        ),
    ];
    let mut walked = Vec::new();
    for (reason, req, tenant) in cases {
        let (mut host, ..) = report_host();
        let path = req.path.clone();
        let o = run_req(&mut host, req);
        let rec = o.audit.record();
        assert_eq!(
            (rec.decision, rec.reason),
            ("would_deny", reason),
            "{reason}"
        );
        let fwd = host.sent.last().expect("forwarded");
        assert!(
            fwd.path_and_query.starts_with(&path),
            "{reason}: {}",
            fwd.path_and_query
        );
        assert_eq!(workspace_headers(fwd), vec![tenant.to_string()], "{reason}");
        // Every call on the caller's behalf is pinned to its own workspace.
        for r in host
            .sent
            .iter()
            .filter(|r| !r.path_and_query.starts_with(WS))
        {
            if r.path_and_query.ends_with("server-info") {
                continue;
            }
            assert_eq!(
                workspace_headers(r),
                vec![tenant.to_string()],
                "{}",
                r.path_and_query
            );
        }
        walked.push(reason);
    }
    let mut all: Vec<&str> = REPORTABLE.iter().map(|r| r.as_str()).collect();
    all.sort();
    walked.sort();
    assert_eq!(walked, all, "every reportable reason walked");
}

/// A visitor (the workspace header names a tenant the caller is not a member of) has no role
/// there: its write is refused in report mode too, never forwarded into the visited workspace.
#[test]
fn report_mode_never_forwards_a_visitors_refusal() {
    let (mut host, ..) = report_host();
    let mut req = as_tenant(
        "POST",
        "/api/2.0/mlflow/experiments/create",
        "",
        r#"{"name":"planted"}"#,
        "team-a",
        "admin",
    );
    req.headers
        .push(("x-mlflow-workspace".into(), b"team-b".to_vec()));
    let o = run_req(&mut host, req);
    let rec = o.audit.record();
    assert_eq!((rec.decision, rec.reason), ("deny", "rbac"));
    assert!(
        !host
            .sent
            .iter()
            .any(|r| r.path_and_query.contains("experiments/create")),
        "{:?}",
        host.sent
            .iter()
            .map(|r| &r.path_and_query)
            .collect::<Vec<_>>()
    );
}

/// What report mode never forwards: no identity, a refused or unknown route (the workspace API
/// first of all), a reference to another tenant's object. Each is refused as in enforce mode,
/// and MLflow is asked nothing on the request's behalf.
#[test]
fn report_mode_enforces_identity_routes_and_references() {
    let (_, _, exp_b, _) = report_host();
    let cases = [
        (
            "tenant_header_missing",
            400,
            Incoming::for_test("GET", "/api/3.0/mlflow/workspaces", "", &[], b""),
        ),
        (
            "tenant_header_missing",
            400,
            Incoming::for_test(
                "GET",
                "/api/2.0/mlflow-artifacts/artifacts/workspaces/team-a/1/r/artifacts/f",
                "",
                &[],
                b"",
            ),
        ),
        (
            "route_denied",
            403,
            as_tenant(
                "DELETE",
                "/api/3.0/mlflow/workspaces/team-a",
                "mode=CASCADE",
                "",
                "team-b",
                "viewer",
            ),
        ),
        (
            "route_denied",
            403,
            as_tenant(
                "PATCH",
                "/ajax-api/3.0/mlflow/workspaces/team-a",
                "",
                "{}",
                "team-b",
                "admin",
            ),
        ),
        (
            "route_denied",
            403,
            as_tenant(
                "POST",
                "/api/3.0/mlflow/workspaces",
                "",
                r#"{"name":"team-c"}"#,
                "team-b",
                "admin",
            ),
        ),
        (
            "route_denied",
            403,
            as_tenant(
                "POST",
                "/ajax-api/2.0/mlflow/gateway-proxy",
                "",
                "{}",
                "team-a",
                "admin",
            ),
        ),
        (
            "route_not_allowed",
            403,
            as_tenant(
                "POST",
                "/api/2.0/mlflow/no-such-route",
                "",
                "{}",
                "team-a",
                "admin",
            ),
        ),
        // The workspace list: the caller's own only, even for a viewer in report mode.
        (
            "tenant_mismatch",
            404,
            as_tenant(
                "GET",
                "/api/3.0/mlflow/workspaces/team-a",
                "",
                "",
                "team-b",
                "viewer",
            ),
        ),
        // A new dataset linked to another tenant's experiment: a reference.
        (
            "tenant_mismatch",
            403,
            as_tenant(
                "POST",
                "/api/3.0/mlflow/datasets/create",
                "",
                &format!(r#"{{"name":"d","experiment_ids":["{exp_b}"]}}"#),
                "team-a",
                "editor",
            ),
        ),
    ];
    for (reason, code, req) in cases {
        let (mut host, ..) = report_host();
        let what = format!("{} {}", req.method, req.path);
        let o = run_req(&mut host, req);
        let rec = o.audit.record();
        assert_eq!(
            (status(&o), rec.decision, rec.reason),
            (code, "deny", reason),
            "{what}"
        );
        let forwarded: Vec<String> = host
            .calls()
            .into_iter()
            .filter(|c| {
                c.contains("datasets/create") || c.starts_with(&what) || c.contains("gateway-proxy")
            })
            .collect();
        assert!(forwarded.is_empty(), "{what} reached MLflow: {forwarded:?}");
        assert!(
            host.sent.iter().all(|r| r.method == "GET"),
            "{what}: {:?}",
            host.calls()
        );
    }
}

/// MLflow with team-a's workspace in place, and a team-a editor's bearer token for `host`'s IdP
/// (`signin_tests::idp_host`); returns the run id and the `Authorization` value.
fn bearer_and_run(host: &mut MemoryHost) -> (String, String) {
    use super::signin::tests::{now, sign};
    let (_, _, run) = mlflow_with_workspaces(host);
    host.on(
        "GET",
        &format!("{WS}/team-a"),
        Scripted::Answer(recorded("workspace_get")),
    );
    let claims = serde_json::json!({"tenant_id": "team-a", "roles": ["editor"]});
    let token = format!("Bearer {}", sign(claims, "mlflow", None, now(host), 3600));
    (run, token)
}

/// A log-metric to `run`, with the given identity headers.
fn log_metric_with(run: &str, identity: (&str, &str)) -> Incoming {
    let body = format!(r#"{{"run_id":"{run}","key":"m","value":1.0,"timestamp":1}}"#);
    Incoming::for_test(
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        "",
        &[identity, ("content-type", "application/json")],
        body.as_bytes(),
    )
}

/// A training loop's steady state in workspace mode with a bearer token: the JWKS record, the
/// token's cached verdict (which remembers the tenant's workspace), the run's fact and its
/// experiment's (tenant and grants). Four key-value reads, nothing asked of MLflow first.
#[test]
fn a_cached_token_settles_its_workspace_and_owner_in_four_reads() {
    let mut host = super::signin::tests::idp_host();
    host.set_var("tenant_isolation", "workspace");
    host.set_var("token_cache_seconds", "300");
    let (run, token) = bearer_and_run(&mut host);
    let req = || log_metric_with(&run, ("authorization", &token));
    let o = run_req(&mut host, req());
    assert_eq!(status(&o), 200, "{:?}", host.logs);
    assert_eq!(o.audit.record().token_check, Some("verified"));
    host.kv_reads.clear();
    host.sent.clear();
    let o = run_req(&mut host, req());
    assert_eq!(status(&o), 200);
    assert_eq!(o.audit.record().token_check, Some("cached"));
    assert_eq!(o.audit.record().workspace.as_deref(), Some("team-a"));
    assert_eq!(host.calls(), vec!["POST /api/2.0/mlflow/runs/log-metric"]);
    assert_eq!(workspace_headers(&host.sent[0]), vec!["team-a"]);
    let reads: Vec<&str> = host
        .kv_reads
        .iter()
        .map(|k| k.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        reads,
        vec!["jwks", "tok", "own", "own"],
        "{:?}",
        host.kv_reads
    );
    assert!(host.kv_reads[2].starts_with("own:v2:run:"));
    assert!(host.kv_reads[3].starts_with("own:v2:exp:"));
    // Past ownership_cache_seconds the workspace is confirmed again (its own fact, then MLflow).
    host.now_ms += 301_000;
    host.kv_reads.clear();
    let o = run_req(&mut host, req());
    assert_eq!(status(&o), 200);
    assert!(
        host.kv_reads.iter().any(|k| k == "ws:v1:team-a"),
        "{:?}",
        host.kv_reads
    );
}

/// Not a test: the pure pipeline's own cost per log-metric request, natively
/// (`cargo test --release -- --ignored --nocapture pipeline_cost`).
#[test]
#[ignore]
fn pipeline_cost() {
    use super::signin::tests::idp_host;
    for mode in ["dev-tag", "oidc-tag", "oidc-workspace"] {
        let mut host = if mode == "dev-tag" {
            MemoryHost::dev()
        } else {
            let mut h = idp_host();
            h.set_var("token_cache_seconds", "300");
            h.set_var(
                "tenant_isolation",
                if mode == "oidc-tag" {
                    "tag"
                } else {
                    "workspace"
                },
            );
            h
        };
        let (run, token) = bearer_and_run(&mut host);
        let identity = if mode == "dev-tag" {
            ("x-tenant", "team-a")
        } else {
            ("authorization", token.as_str())
        };
        let req = || log_metric_with(&run, identity);
        for _ in 0..10 {
            assert_eq!(status(&run_req(&mut host, req())), 200);
        }
        let mut one = || {
            let o = run_req(&mut host, req());
            let _ = o.audit.line(0);
        };
        let warm = per_call_us(5000, false, &mut one);
        let cold = per_call_us(300, true, &mut one);
        host.sent.clear();
        println!("{mode}: {warm:.1} µs per request (native, warm caches), {cold:.1} µs cold");
        // log-batch of 100 metrics, as bench/metric.lua sends it.
        host.on(
            "POST",
            "/api/2.0/mlflow/runs/log-batch",
            Scripted::Answer(recorded("runs_log_metric")),
        );
        let metrics: Vec<String> = (1..=100)
            .map(|i| {
                format!(r#"{{"key":"b{i}","value":{i}.5,"timestamp":1700000000016,"step":1}}"#)
            })
            .collect();
        let body = format!(r#"{{"run_id":"{run}","metrics":[{}]}}"#, metrics.join(","));
        let batch = || {
            Incoming::for_test(
                "POST",
                "/api/2.0/mlflow/runs/log-batch",
                "",
                &[identity, ("content-type", "application/json")],
                body.as_bytes(),
            )
        };
        assert_eq!(status(&run_req(&mut host, batch())), 200);
        let mut one = || {
            let o = run_req(&mut host, batch());
            let _ = o.audit.line(0);
        };
        let warm = per_call_us(2000, false, &mut one);
        let cold = per_call_us(300, true, &mut one);
        host.sent.clear();
        println!("{mode} log-batch 100: {warm:.1} µs per request (native, warm caches), {cold:.1} µs cold");
    }
}

/// Mean µs per call of `f`. `cold` walks 64 MiB between calls (outside the timing), as MLflow's
/// own work does between two requests of a training loop on the same cores: each call then
/// starts with caches that hold none of the gateway's code or data, as a request does in the
/// deployment (and Spin gives each request a fresh instance).
fn per_call_us(n: usize, cold: bool, f: &mut impl FnMut()) -> f64 {
    let mut junk = if cold {
        vec![0u8; 64 << 20]
    } else {
        Vec::new()
    };
    let mut spent = std::time::Duration::ZERO;
    for i in 0..n {
        for j in (0..junk.len()).step_by(64) {
            junk[j] = junk[j].wrapping_add(i as u8);
        }
        let t = std::time::Instant::now();
        f();
        spent += t.elapsed();
    }
    std::hint::black_box(&junk);
    spent.as_secs_f64() * 1e6 / n as f64
}

// ---- grants ----

/// `/_gateway/v1/grants` in tag mode: only a MANAGE holder lists, sets and revokes; a grant is
/// a tag written to MLflow, the object's cached fact is dropped with it, and each change is one
/// audit line with the old and new level.
#[test]
fn grants_are_managed_by_manage_holders_and_audited() {
    use crate::mlflow::grants::tag_key;
    let mut host = MemoryHost::dev();
    let (exp_a, _, _) = mlflow(&mut host);
    let set = "/api/2.0/mlflow/experiments/set-experiment-tag";
    host.on("POST", set, Scripted::Answer(recorded("runs_log_metric")));
    let grant = |method: &str, roles: &str, body: &str| {
        Incoming::for_test(
            method,
            "/_gateway/v1/grants",
            "",
            &[
                ("x-tenant", "team-a"),
                ("x-roles", roles),
                ("x-subject", "root"),
            ],
            body.as_bytes(),
        )
    };
    let body =
        format!(r#"{{"resource":"experiments/{exp_a}","subject":"user:bob","level":"READ"}}"#);
    // An editor does not manage the experiment.
    let o = run_req(&mut host, grant("PUT", "editor", &body));
    assert_eq!((status(&o), o.audit.record().reason), (403, "rbac"));
    assert!(!host
        .calls()
        .iter()
        .any(|c| c.contains("set-experiment-tag")));
    // An admin does: the tag is written, the cached fact dropped, the change audited.
    let fact_key = format!("own:v2:exp:{exp_a}");
    host.kv.insert(fact_key.clone(), b"stale".to_vec());
    let o = run_req(&mut host, grant("PUT", "admin", &body));
    assert_eq!(status(&o), 200, "{:?}", body_json(&o));
    let sent = host.sent.last().expect("tag written");
    assert_eq!(sent.path_and_query, set);
    let tag: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(tag["key"], tag_key("tenant", "user:bob"));
    assert_eq!(tag["value"], "READ user:bob");
    assert!(!host.kv.contains_key(&fact_key));
    let rec = o.audit.record();
    assert_eq!((rec.route, rec.decision), (Some("grants.put"), "allow"));
    let change = rec.grant.clone().expect("grant change");
    assert_eq!(
        (change.subject.as_str(), change.from, change.to),
        ("user:bob", None, Some("READ"))
    );
    // Bad input is refused before MLflow is asked anything.
    for bad in [
        r#"{"resource":"experiments/1","subject":"bob","level":"READ"}"#,
        r#"{"resource":"experiments/1","subject":"user:bob","level":"OWNER"}"#,
        r#"{"resource":"runs/1","subject":"user:bob","level":"READ"}"#,
        r#"{"resource":"experiments/1","subject":"user:bob","level":"READ","extra":1}"#,
        r#"{"resource":"experiments/1","subject":"tenant:team-b","level":"READ"}"#,
    ] {
        let before = host.calls().len();
        let o = run_req(&mut host, grant("PUT", "admin", bad));
        assert_eq!(status(&o), 400, "{bad}");
        assert!(
            host.calls()[before..].iter().all(|c| c.starts_with("GET")),
            "{bad}: {:?}",
            &host.calls()[before..]
        );
    }
    // Another tenant's experiment is absent to the caller, whatever its role.
    let exp_b = recorded_meta("experiment_team_b");
    let other =
        format!(r#"{{"resource":"experiments/{exp_b}","subject":"user:bob","level":"READ"}}"#);
    let o = run_req(&mut host, grant("PUT", "admin", &other));
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (403, "tenant_mismatch")
    );
    let o = run_req(&mut host, grant("PATCH", "admin", &body));
    assert_eq!(status(&o), 405);
}

/// A DENY that covers the caller itself is refused (it would veto its own MANAGE), and a
/// deleted experiment's grants are changed by restoring it for the change and deleting it
/// again, whether the change went through or not.
#[test]
fn grants_cannot_lock_out_their_manager_and_reach_deleted_experiments() {
    let mut host = MemoryHost::dev();
    let (exp_a, _, _) = mlflow(&mut host);
    let grant = |body: String| {
        Incoming::for_test(
            "PUT",
            "/_gateway/v1/grants",
            "",
            &[
                ("x-tenant", "team-a"),
                ("x-roles", "admin"),
                ("x-subject", "root"),
                ("x-groups", "ops"),
            ],
            body.as_bytes(),
        )
    };
    for own in ["user:root", "group:ops", "tenant:team-a"] {
        let body =
            format!(r#"{{"resource":"experiments/{exp_a}","subject":"{own}","level":"DENY"}}"#);
        let o = run_req(&mut host, grant(body));
        assert_eq!(
            (status(&o), o.audit.record().reason),
            (400, "invalid_field"),
            "{own}"
        );
        assert!(body_json(&o)["message"]
            .as_str()
            .unwrap()
            .contains("covers you"));
    }
    assert!(!host.calls().iter().any(|c| c.starts_with("POST")));

    // MLflow refuses tag changes on a deleted experiment (400, "must be in the 'active'
    // state"); here it keeps refusing even once restored, so the grant fails, and the
    // experiment is deleted again all the same.
    let set = "/api/2.0/mlflow/experiments/set-experiment-tag";
    host.on(
        "POST",
        set,
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 400,
            headers: Vec::new(),
            body: br#"{"error_code":"INVALID_PARAMETER_VALUE"}"#.to_vec(),
        }),
    );
    let deleted = String::from_utf8(recorded("experiments_get_team_a").body)
        .unwrap()
        .replace("\"active\"", "\"deleted\"");
    assert!(deleted.contains("\"deleted\""));
    host.on(
        "GET",
        &format!("/api/2.0/mlflow/experiments/get?experiment_id={exp_a}"),
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: deleted.into_bytes(),
        }),
    );
    for action in ["restore", "delete"] {
        host.on(
            "POST",
            &format!("/api/2.0/mlflow/experiments/{action}"),
            Scripted::Answer(recorded("runs_log_metric")),
        );
    }
    host.sent.clear();
    let body =
        format!(r#"{{"resource":"experiments/{exp_a}","subject":"user:bob","level":"DENY"}}"#);
    let o = run_req(&mut host, grant(body));
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (502, "preflight_failed")
    );
    let posts: Vec<String> = host
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("POST"))
        .collect();
    assert_eq!(
        posts,
        vec![
            format!("POST {set}"),
            "POST /api/2.0/mlflow/experiments/restore".to_string(),
            format!("POST {set}"),
            "POST /api/2.0/mlflow/experiments/delete".to_string(),
        ]
    );
}

/// Grant tags decide (the pre-flight reads them) but are never shown: an experiment's answer
/// reaches the client without them.
#[test]
fn answers_do_not_show_grant_tags() {
    use crate::mlflow::grants::tag_key;
    let mut host = MemoryHost::dev();
    let (exp_a, _, _) = mlflow(&mut host);
    let key = tag_key("tenant", "user:alice");
    let body = String::from_utf8(recorded("experiments_get_team_a").body)
        .unwrap()
        .replace(
            r#""tags": ["#,
            &format!(r#""tags": [{{"key": "{key}", "value": "DENY user:mallory"}}, "#),
        );
    assert!(body.contains("DENY user:mallory"));
    host.on(
        "GET",
        &format!("/api/2.0/mlflow/experiments/get?experiment_id={exp_a}"),
        Scripted::Answer(crate::pipeline::host::UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: body.into_bytes(),
        }),
    );
    let o = run_req(
        &mut host,
        get(
            "/api/2.0/mlflow/experiments/get",
            &format!("experiment_id={exp_a}"),
            "team-a",
        ),
    );
    assert_eq!(status(&o), 200);
    let v = body_json(&o);
    assert_eq!(
        v["experiment"]["tags"],
        serde_json::json!([{"key": "tenant", "value": "team-a"}])
    );
}

// ---- misconfiguration reaches people fast (issue 35) ------------------------------------

/// A bearer request as the IdP of `signin::tests::idp_host` would sign it.
fn bearer_get(host: &MemoryHost, path: &str) -> Incoming {
    use super::signin::tests::{now, sign};
    let claims = serde_json::json!({"tenant_id": "team-a", "roles": ["editor"]});
    let token = format!("Bearer {}", sign(claims, "mlflow", None, now(host), 3600));
    Incoming::for_test("GET", path, "", &[("authorization", &token)], b"")
}

fn lines_with(host: &MemoryHost, needle: &str) -> Vec<String> {
    host.logs
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}

#[test]
fn an_idp_naming_another_issuer_is_a_lasting_config_error_and_not_ready() {
    use super::signin::tests::{answer, idp_host};
    let mut host = idp_host();
    host.set_var("jwks_uri", "");
    host.on("GET", "/health", Scripted::Answer(recorded("health")));
    // The IdP's own name for itself differs from oidc_issuer (127.0.0.1 vs a host name).
    host.on(
        "GET",
        "/realms/r/.well-known/openid-configuration",
        answer(
            200,
            serde_json::json!({"issuer": "http://127.0.0.1:8080/realms/r",
                "jwks_uri": "http://idp.test/realms/r/certs"}),
        ),
    );
    let search = bearer_get(&host, "/api/2.0/mlflow/experiments/search");
    let o = run_req(&mut host, search);
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (501, "config_invalid")
    );
    let named = lines_with(&host, "http://127.0.0.1:8080/realms/r");
    assert_eq!(named.len(), 1, "{:?}", host.logs);
    assert!(
        named[0].contains("oidc_issuer is `http://idp.test/realms/r`"),
        "{named:?}"
    );
    assert!(named[0].contains("\"level\":\"error\""), "{named:?}");
    // Until the next fetch the answer stays the same (not "keys unavailable", which clients
    // would retry), without asking the IdP again.
    let calls = host.sent.len();
    let search = bearer_get(&host, "/api/2.0/mlflow/experiments/search");
    let o = run_req(&mut host, search);
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (501, "config_invalid")
    );
    assert_eq!(host.sent.len(), calls);
    assert!(!host.calls().iter().any(|c| c.contains("/certs")));
    // Readiness says so, and logs one line naming the variable and both values.
    host.logs.clear();
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 503);
    assert_eq!(body_json(&o)["issuer"], "mismatch");
    assert_eq!(body_json(&o)["mlflow"], "ok");
    let not_ready = lines_with(&host, "not ready");
    assert_eq!(not_ready.len(), 1, "{:?}", host.logs);
    assert!(not_ready[0].contains("oidc_issuer"));
    assert!(not_ready[0].contains("http://127.0.0.1:8080/realms/r"));
    // Fixed at the IdP: ready.
    host.on(
        "GET",
        "/realms/r/.well-known/openid-configuration",
        answer(
            200,
            serde_json::json!({"issuer": "http://idp.test/realms/r",
                "jwks_uri": "http://idp.test/realms/r/certs"}),
        ),
    );
    host.now_ms += 31_000;
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 200, "{:?}", host.logs);
    assert_eq!(body_json(&o)["issuer"], "ok");
    assert_eq!(body_json(&o)["signing_keys"], "ok");
}

#[test]
fn not_ready_logs_one_line_naming_the_mlflow_url() {
    let mut host = MemoryHost::dev();
    host.on(
        "GET",
        "/health",
        Scripted::Fail(SendFailure::Unreachable("connection refused".into())),
    );
    let o = run_req(&mut host, get("/readyz", "", ""));
    assert_eq!(status(&o), 503);
    let lines = lines_with(&host, "not ready");
    assert_eq!(lines.len(), 1, "{:?}", host.logs);
    assert!(lines[0].contains("http://127.0.0.1:5000"), "{lines:?}");
    assert!(lines[0].contains("target_base_url"), "{lines:?}");
    assert!(lines[0].contains("connection refused"), "{lines:?}");
    // Ready again: nothing logged.
    host.logs.clear();
    host.on("GET", "/health", Scripted::Answer(recorded("health")));
    assert_eq!(status(&run_req(&mut host, get("/readyz", "", ""))), 200);
    assert!(host.logs.is_empty(), "{:?}", host.logs);
}

#[test]
fn upstream_unreachable_names_the_mlflow_url() {
    let mut host = MemoryHost::dev();
    let (_, _, run) = mlflow(&mut host);
    host.on(
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Scripted::Fail(SendFailure::Unreachable("connection refused".into())),
    );
    let o = run_req(&mut host, log_metric(&run, "team-a"));
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (502, "upstream_unreachable")
    );
    let lines = lines_with(&host, "upstream unreachable");
    assert_eq!(lines.len(), 1, "{:?}", host.logs);
    assert!(lines[0].contains("MLflow at http://127.0.0.1:5000 (target_base_url)"));
    // The client is told only that MLflow is unreachable.
    assert!(!body_json(&o).to_string().contains("127.0.0.1"));
}

#[test]
fn variables_that_cannot_be_read_are_a_503_clients_retry() {
    let mut host = MemoryHost::dev();
    host.vars_broken = true;
    let o = run_req(
        &mut host,
        get(
            "/api/2.0/mlflow/experiments/get",
            "experiment_id=1",
            "team-a",
        ),
    );
    assert_eq!(
        (status(&o), o.audit.record().reason),
        (503, "config_unreadable")
    );
    assert_eq!(body_json(&o)["error_code"], "TEMPORARILY_UNAVAILABLE");
    assert!(host.sent.is_empty());
}
