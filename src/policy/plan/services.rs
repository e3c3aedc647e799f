//! MLflow 3's server-side GenAI services, governed per tenant: OTLP span ingestion, the AI
//! gateway (its configuration and its invocation routes), server-side jobs (judges, evaluation,
//! issue detection, prompt optimisation), webhooks and the MCP server registry. MLflow 3.17.2
//! keeps every one of their objects per workspace (ids and names alike answer 404 from another
//! workspace), so with the caller's workspace pinned the gateway decides the role, checks the
//! ids that name tenant data (experiments, runs, traces, prompts, datasets) as everywhere, and
//! refuses what MLflow leaves server-wide: `GLOBAL` budgets, webhook targets off the operator's
//! allow-list. Tag mode has no workspaces to keep these objects apart, so only OTLP (whose
//! spans the gateway decodes and checks) is open there.

use super::fields::*;
use super::{BodyPlan, Claim, Draft};
use crate::error::{GatewayError, Reason};
use crate::mlflow::json::opt_str;
use crate::mlflow::otlp;
use crate::mlflow::ownership::{valid_experiment_id, valid_model_id, valid_run_id, Resource};
use crate::mlflow::webhooks;
use crate::policy::table::WsRule;

/// A tenant's own service: refused in tag mode (nothing would keep its objects apart) and to
/// a visitor (a workspace where only something is shared with the caller: sharing is of
/// experiments and models, never of the tenant's services, secrets or jobs).
fn tenant_service(d: &Draft) -> Result<(), GatewayError> {
    if d.cfg.isolation.workspace().is_none() {
        return Err(GatewayError::new(
            Reason::RouteDenied,
            format!(
                "the gateway policy does not permit this route: {} keeps its objects per MLflow workspace, and tenant_isolation=tag does not use workspaces",
                d.m.row.id
            ),
        ));
    }
    if !d.principal.member {
        return Err(GatewayError::new(
            Reason::Rbac,
            format!(
                "you have no role in tenant `{}` (its workspace is only visited: what is shared with you there is read-only); {} is the tenant's own",
                d.tenant(),
                d.m.row.id
            ),
        ));
    }
    Ok(())
}

/// One value of a request header; a header sent twice is refused (MLflow would read one of
/// them, and the gateway must judge the same one).
fn one_header(d: &Draft, name: &str) -> Result<Option<String>, GatewayError> {
    let values = d.req.header_values(name);
    match values.as_slice() {
        [] => Ok(None),
        [v] => std::str::from_utf8(v)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|_| invalid(name)),
        _ => Err(GatewayError::new(
            Reason::ConflictingIds,
            format!("header {name} must appear at most once"),
        )),
    }
}

/// `POST /v1/traces`: the header's experiment (new traces are created there) and run (the
/// traces are linked to it) must be the caller's; every span's trace, as MLflow will name it,
/// must be absent (it is then created in the header's experiment) or one the caller may write.
/// A compressed body is inflated and sent on inflated, so MLflow stores what was checked.
pub(super) fn otlp(d: &mut Draft) -> Result<(), GatewayError> {
    let exp = one_header(d, "x-mlflow-experiment-id")?
        .ok_or_else(|| missing("x-mlflow-experiment-id header"))?;
    if !valid_experiment_id(&exp) {
        return Err(invalid("x-mlflow-experiment-id header"));
    }
    d.checks.push(Resource::Experiment(exp));
    if let Some(run) = one_header(d, "x-mlflow-run-id")? {
        if !run.is_empty() {
            if !valid_run_id(&run) {
                return Err(invalid("x-mlflow-run-id header"));
            }
            d.refer(Resource::Run(run));
        }
    }
    let content_type = one_header(d, "content-type")?.unwrap_or_default();
    let encoding = otlp::Encoding::of(&content_type)?;
    let compressed = one_header(d, "content-encoding")?;
    let limit = crate::mlflow::MAX_JSON_BODY_BYTES as u64;
    let body = otlp::inflate(&d.req.body, compressed.as_deref(), limit)?;
    for id in otlp::trace_ids(&body, encoding)? {
        d.absent_or_own.push(Resource::Trace(id));
    }
    if compressed.is_some_and(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity")) {
        d.body_override = Some(BodyPlan::Inflated(body));
    }
    Ok(())
}

/// A route whose objects MLflow keeps per workspace: the role decides, and `rule` adds what
/// MLflow leaves unchecked.
pub(super) fn workspaced(d: &mut Draft, rule: WsRule) -> Result<(), GatewayError> {
    tenant_service(d)?;
    match rule {
        WsRule::Plain | WsRule::Opaque | WsRule::EndpointTag => Ok(()),
        WsRule::GatewayEndpoint => {
            // The experiment the endpoint's usage traces go to is written by every
            // invocation: the caller must hold the row's level on it. One MLflow creates by
            // itself (`gateway/<name>`) is claimed with the tenant tag after the answer.
            match d
                .input
                .str_field("experiment_id")?
                .filter(|e| !e.is_empty())
            {
                Some(exp) => {
                    if !valid_experiment_id(&exp) {
                        return Err(invalid("experiment_id"));
                    }
                    d.checks.push(Resource::Experiment(exp));
                }
                None => d.claim = Some(Claim::EndpointExperiment),
            }
            Ok(())
        }
        WsRule::Budget => {
            let scope = d.input.str_field("target_scope")?;
            if scope.is_some_and(|s| s.eq_ignore_ascii_case("GLOBAL")) {
                return Err(GatewayError::new(
                    Reason::RouteDenied,
                    "a GLOBAL budget applies to every tenant of the server: set it as an operator, or use target_scope WORKSPACE or ENDPOINT",
                ));
            }
            Ok(())
        }
        WsRule::Webhook => {
            if let Some(url) = d.input.str_field("url")? {
                webhooks::check_url(&url, &d.cfg.webhook_allowed_hosts, d.cfg.upstream.host())?;
            }
            Ok(())
        }
    }
}

/// An AI gateway invocation: the endpoint is looked up in the pinned workspace; nothing in
/// the body names tenant data.
pub(super) fn invocation(d: &mut Draft) -> Result<(), GatewayError> {
    tenant_service(d)
}

/// Judges, evaluation and issue detection started from the UI (`scorer/invoke`,
/// `genai/evaluate/invoke`, `issues/invoke`): the experiment and every trace the job writes
/// assessments on must be the caller's to write. The run evaluation and issue detection create
/// is claimed with the tenant tag (MLflow creates it untagged, and run searches keep only
/// tagged runs).
pub(super) fn judge_job(d: &mut Draft) -> Result<(), GatewayError> {
    tenant_service(d)?;
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    let body = d.input.body_mut().ok_or_else(|| missing("trace_ids"))?;
    let ids = crate::mlflow::json::opt_str_list(body, "trace_ids")?;
    if ids.is_empty() {
        return Err(missing("trace_ids"));
    }
    d.checks.extend(trace_ids(&ids, "trace_ids")?);
    d.claim = Some(Claim::Run);
    Ok(())
}

/// `prompt-optimization/jobs`: the experiment (a run is created there) must be the caller's;
/// the source prompt and the dataset are references.
pub(super) fn prompt_optimization(d: &mut Draft) -> Result<(), GatewayError> {
    tenant_service(d)?;
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    let body = d
        .input
        .body_mut()
        .ok_or_else(|| missing("source_prompt_uri"))?;
    let uri = opt_str(body, "source_prompt_uri")?
        .ok_or_else(|| missing("source_prompt_uri"))?
        .to_string();
    let name = uri
        .strip_prefix("prompts:/")
        .and_then(|rest| rest.rsplit_once('/').map(|(n, _)| n).or(Some(rest)))
        .filter(|n| crate::mlflow::ownership::valid_model_name(n))
        .ok_or_else(|| invalid("source_prompt_uri"))?
        .to_string();
    let dataset = body
        .get("config")
        .and_then(|c| c.get("dataset_id"))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid("config.dataset_id"))
        })
        .transpose()?;
    d.refer(Resource::RegisteredModel(name));
    if let Some(ds) = dataset.filter(|s| !s.is_empty()) {
        if !valid_model_id(&ds) {
            return Err(invalid("config.dataset_id"));
        }
        d.refer(Resource::Dataset(ds));
    }
    d.claim = Some(Claim::Run);
    Ok(())
}

/// `runs/create-promptlab-run` (both modes): the experiment must be the caller's to write, the
/// run's `user_id` is the subject. MLflow 3.17.2's handler hands the request's `tags` to the
/// store as plain objects and fails (500) on any, so the gateway cannot add the tenant tag
/// there: `tags` must be absent or empty, and the run is claimed after the answer.
pub(super) fn prompt_lab_run(d: &mut Draft) -> Result<(), GatewayError> {
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    let subject = d.principal.subject.clone();
    let body = d.input.body_mut().ok_or_else(|| missing("experiment_id"))?;
    match body.get("tags") {
        None => {}
        Some(serde_json::Value::Array(t)) if t.is_empty() => {}
        Some(_) => {
            return Err(GatewayError::new(
                Reason::InvalidField,
                "field `tags` must be empty: MLflow 3.17.2 cannot store tags given to create-promptlab-run (set them afterwards with runs/set-tag)",
            ))
        }
    }
    body.insert("user_id".into(), serde_json::Value::String(subject));
    d.claim = Some(Claim::Run);
    Ok(())
}

/// A job listing by experiment (`prompt-optimization/jobs/search`): the experiment owned.
pub(super) fn job_scope(d: &mut Draft) -> Result<(), GatewayError> {
    tenant_service(d)?;
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::lookup_with;
    use crate::config::Config;
    use crate::error::{GatewayError, Reason};
    use crate::identity::Principal;
    use crate::mlflow::ownership::Resource;
    use crate::policy::plan::{plan, BodyPlan, Claim, Plan};
    use crate::policy::{match_route, Role};
    use crate::request::Incoming;
    use std::io::Write;

    fn member(role: Role) -> Principal {
        Principal {
            tenant: "t".into(),
            subject: "s".into(),
            roles: vec![role],
            member: true,
            tenants: vec!["t".into()],
            ..Principal::default()
        }
    }

    fn config(over: &[(&str, &str)]) -> Config {
        let mut all = vec![("auth_mode", "off")];
        all.extend_from_slice(over);
        Config::from_lookup(lookup_with(&all)).unwrap()
    }

    fn plan_with(
        cfg: &Config,
        who: &Principal,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Plan, GatewayError> {
        let req = Incoming::for_test(method, path, "", headers, body);
        plan(&req, &match_route(method, path)?, who, cfg)
    }

    /// In workspace mode, as an admin member of tenant `t`.
    fn ws(method: &str, path: &str, body: &str) -> Result<Plan, GatewayError> {
        plan_with(
            &config(&[]),
            &member(Role::Admin),
            method,
            path,
            &[],
            body.as_bytes(),
        )
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "000102030405060708090a0b0c0d0e0f";

    fn otlp_json(traces: &[&str]) -> Vec<u8> {
        let spans: Vec<String> = traces
            .iter()
            .map(|t| format!(r#"{{"traceId":"{t}","spanId":"0101010101010101","name":"x"}}"#))
            .collect();
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        )
        .into_bytes()
    }

    fn otlp(cfg: &Config, headers: &[(&str, &str)], body: &[u8]) -> Result<Plan, GatewayError> {
        plan_with(
            cfg,
            &member(Role::Editor),
            "POST",
            "/v1/traces",
            headers,
            body,
        )
    }

    #[test]
    fn otlp_checks_the_header_experiment_run_and_every_span_trace_in_both_modes() {
        for cfg in [config(&[]), config(&[("tenant_isolation", "tag")])] {
            let h = [
                ("content-type", "application/json"),
                ("x-mlflow-experiment-id", "7"),
                ("x-mlflow-run-id", "0123456789abcdef0123456789abcdef"),
            ];
            let p = otlp(&cfg, &h, &otlp_json(&[A, B, A])).unwrap();
            assert_eq!(
                p.checks,
                vec![
                    Resource::Experiment("7".into()),
                    Resource::Run("0123456789abcdef0123456789abcdef".into())
                ]
            );
            assert_eq!(
                p.references,
                vec![Resource::Run("0123456789abcdef0123456789abcdef".into())]
            );
            assert_eq!(
                p.absent_or_own,
                vec![
                    Resource::Trace(format!("tr-{A}")),
                    Resource::Trace("tr-000102030405060708090a0b0c0d0e0f".into())
                ]
            );
            // The client's bytes go on: nothing was rewritten.
            assert_eq!(p.body, BodyPlan::Original);
        }
    }

    #[test]
    fn otlp_refuses_what_it_cannot_judge() {
        let cfg = config(&[]);
        let json = ("content-type", "application/json");
        let exp = ("x-mlflow-experiment-id", "7");
        let body = otlp_json(&[A]);
        let cases: Vec<(Vec<(&str, &str)>, Reason)> = vec![
            (vec![json], Reason::MissingField),
            (
                vec![json, ("x-mlflow-experiment-id", "7 OR 1")],
                Reason::InvalidField,
            ),
            (
                vec![json, exp, ("x-mlflow-experiment-id", "8")],
                Reason::ConflictingIds,
            ),
            (
                vec![json, exp, ("x-mlflow-run-id", "../x")],
                Reason::InvalidField,
            ),
            (
                vec![("content-type", "text/plain"), exp],
                Reason::InvalidField,
            ),
            (
                vec![json, exp, ("content-encoding", "br")],
                Reason::InvalidField,
            ),
        ];
        for (headers, reason) in cases {
            let e = otlp(&cfg, &headers, &body).unwrap_err();
            assert_eq!(e.reason, reason, "{headers:?}");
        }
        // Spans nobody can attribute: none, or an empty trace id.
        let e = otlp(&cfg, &[json, exp], br#"{"resourceSpans":[]}"#).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidField);
        // A viewer may not write spans: the experiment is judged at the row's level (Write).
        let viewer = member(Role::Viewer);
        let p = plan_with(&cfg, &viewer, "POST", "/v1/traces", &[json, exp], &body).unwrap();
        assert_eq!(p.row.action, crate::vocab::rbac::Action::Write);
    }

    #[test]
    fn compressed_otlp_is_sent_on_as_checked() {
        let body = otlp_json(&[A]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        let h = [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("x-mlflow-experiment-id", "7"),
        ];
        let p = otlp(&config(&[]), &h, &gz).unwrap();
        assert_eq!(p.body, BodyPlan::Inflated(body));
        assert_eq!(p.absent_or_own, vec![Resource::Trace(format!("tr-{A}"))]);
    }

    #[test]
    fn services_are_for_members_in_workspace_mode_only() {
        let path = "/api/3.0/mlflow/gateway/endpoints/list";
        assert!(ws("GET", path, "").is_ok());
        let tag = config(&[("tenant_isolation", "tag")]);
        let e = plan_with(&tag, &member(Role::Admin), "GET", path, &[], b"").unwrap_err();
        assert_eq!(e.reason, Reason::RouteDenied);
        assert!(e.message.contains("tenant_isolation=tag"));
        // A visitor (something shared with it in `t`) may not even list the tenant's endpoints.
        let visitor = Principal {
            member: false,
            roles: vec![],
            ..member(Role::Admin)
        };
        for (method, path, body) in [
            ("GET", path, ""),
            ("GET", "/ajax-api/3.0/jobs/j-1", ""),
            ("GET", "/api/3.0/mlflow/mcp-servers", ""),
            ("POST", "/gateway/x/mlflow/invocations", "{}"),
        ] {
            let e =
                plan_with(&config(&[]), &visitor, method, path, &[], body.as_bytes()).unwrap_err();
            assert_eq!(e.reason, Reason::Rbac, "{path}");
        }
    }

    #[test]
    fn global_budgets_are_refused() {
        for path in ["gateway/budgets/create", "gateway/budgets/update"] {
            let path = format!("/api/3.0/mlflow/{path}");
            for scope in ["GLOBAL", "global"] {
                let body = format!(r#"{{"budget_policy_id":"bp-1","target_scope":"{scope}"}}"#);
                let e = ws("POST", &path, &body).unwrap_err();
                assert_eq!(e.reason, Reason::RouteDenied, "{path} {scope}");
            }
            assert!(ws("POST", &path, r#"{"target_scope":"WORKSPACE"}"#).is_ok());
            let e = ws("POST", &path, r#"{"target_scope":0}"#).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidField);
        }
    }

    #[test]
    fn webhook_targets_pass_the_allow_list() {
        let create = "/api/2.0/mlflow/webhooks";
        let body = |url: &str| format!(r#"{{"name":"h","url":"{url}","events":[]}}"#);
        // Nothing listed: no webhook can be created.
        let e = ws("POST", create, &body("https://hooks.example.com/x")).unwrap_err();
        assert_eq!(e.reason, Reason::WebhookUrlRefused);
        let cfg = config(&[("webhook_allowed_hosts", "hooks.example.com,127.0.0.1:9000")]);
        let admin = member(Role::Admin);
        for (method, path) in [("POST", create), ("PATCH", "/api/2.0/mlflow/webhooks/w-1")] {
            let ok = |url: &str| {
                plan_with(&cfg, &admin, method, path, &[], body(url).as_bytes()).map(|_| ())
            };
            assert!(ok("https://hooks.example.com/x").is_ok());
            assert!(ok("http://127.0.0.1:9000/hook").is_ok());
            for bad in [
                "http://127.0.0.1:5000/api/2.0/mlflow/experiments/search",
                "https://169.254.169.254/latest/meta-data",
                "https://evil.example.net/x",
            ] {
                assert_eq!(
                    ok(bad).unwrap_err().reason,
                    Reason::WebhookUrlRefused,
                    "{bad}"
                );
            }
        }
        // A PATCH that leaves the URL alone is not judged for it.
        let p = plan_with(
            &cfg,
            &admin,
            "PATCH",
            "/api/2.0/mlflow/webhooks/w-1",
            &[],
            br#"{"status":"DISABLED"}"#,
        );
        assert!(p.is_ok());
    }

    #[test]
    fn endpoint_experiments_are_checked_or_claimed() {
        let create = "/api/3.0/mlflow/gateway/endpoints/create";
        let p = ws(
            "POST",
            create,
            r#"{"name":"e","model_configs":[],"experiment_id":"7"}"#,
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("7".into())]);
        assert_eq!(p.claim, None);
        let p = ws("POST", create, r#"{"name":"e","model_configs":[]}"#).unwrap();
        assert!(p.checks.is_empty());
        assert_eq!(p.claim, Some(Claim::EndpointExperiment));
        let e = ws("POST", create, r#"{"name":"e","experiment_id":"x"}"#).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidField);
        // Endpoint tags go through the tag guard like every object's.
        let e = ws(
            "POST",
            "/api/3.0/mlflow/gateway/endpoints/set-tag",
            r#"{"endpoint_id":"e-1","key":"tenant","value":"u"}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ReservedTag);
    }

    #[test]
    fn judge_jobs_check_the_experiment_and_every_trace() {
        for path in ["scorer/invoke", "genai/evaluate/invoke", "issues/invoke"] {
            let path = format!("/ajax-api/3.0/mlflow/{path}");
            let p = ws(
                "POST",
                &path,
                r#"{"experiment_id":"7","trace_ids":["tr-1","tr-2"],"serialized_scorer":"{}"}"#,
            )
            .unwrap();
            assert_eq!(
                p.checks,
                vec![
                    Resource::Experiment("7".into()),
                    Resource::Trace("tr-1".into()),
                    Resource::Trace("tr-2".into())
                ]
            );
            assert!(p.references.is_empty(), "the job writes on them");
            assert_eq!(p.claim, Some(Claim::Run));
            for bad in [
                r#"{"experiment_id":"7"}"#,
                r#"{"experiment_id":"7","trace_ids":[]}"#,
            ] {
                assert_eq!(
                    ws("POST", &path, bad).unwrap_err().reason,
                    Reason::MissingField
                );
            }
            // Only under /ajax-api, as MLflow serves them.
            let api = path.replace("/ajax-api/", "/api/");
            assert!(ws("POST", &api, "{}").is_err());
        }
    }

    #[test]
    fn prompt_optimization_reads_its_prompt_and_dataset() {
        let p = ws(
            "POST",
            "/api/3.0/mlflow/prompt-optimization/jobs",
            r#"{"experiment_id":"7","source_prompt_uri":"prompts:/qa/3","config":{"dataset_id":"d-1"}}"#,
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Experiment("7".into()),
                Resource::RegisteredModel("qa".into()),
                Resource::Dataset("d-1".into())
            ]
        );
        assert_eq!(
            p.references,
            vec![
                Resource::RegisteredModel("qa".into()),
                Resource::Dataset("d-1".into())
            ]
        );
        for bad in ["models:/qa/3", "prompts:/", "qa"] {
            let body =
                format!(r#"{{"experiment_id":"7","source_prompt_uri":"{bad}","config":{{}}}}"#);
            let e = ws("POST", "/api/3.0/mlflow/prompt-optimization/jobs", &body).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidField, "{bad}");
        }
        let p = ws("GET", "/api/3.0/mlflow/prompt-optimization/jobs/search", "");
        assert_eq!(p.unwrap_err().reason, Reason::MissingField);
    }

    #[test]
    fn invocations_are_forwarded_unread_and_piped() {
        let p = ws("POST", "/gateway/e/mlflow/invocations", "not json at all").unwrap();
        assert_eq!(p.body, BodyPlan::Original);
        assert!(p.checks.is_empty());
        assert!(p.row.strategy.shape().pipes_answers);
        assert!(p.row.strategy.shape().rate_limited);
        let p = ws("POST", "/gateway/proxy/e/chat/completions", "{}").unwrap();
        assert_eq!(p.row.id, "ai_gateway.proxy");
    }

    #[test]
    fn prompt_lab_runs_carry_no_tags_and_are_claimed() {
        let path = "/ajax-api/2.0/mlflow/runs/create-promptlab-run";
        for cfg in [config(&[]), config(&[("tenant_isolation", "tag")])] {
            let who = member(Role::Editor);
            let body =
                br#"{"experiment_id":"7","prompt_template":"t","user_id":"mallory","tags":[]}"#;
            let p = plan_with(&cfg, &who, "POST", path, &[], body).unwrap();
            assert_eq!(p.checks, vec![Resource::Experiment("7".into())]);
            assert_eq!(p.claim, Some(Claim::Run));
            let BodyPlan::Replace(sent) = &p.body else {
                panic!("rewritten")
            };
            let v: serde_json::Value = serde_json::from_slice(sent).unwrap();
            assert_eq!(v["user_id"], "s");
            let tagged = br#"{"experiment_id":"7","tags":[{"key":"a","value":"b"}]}"#;
            let e = plan_with(&cfg, &who, "POST", path, &[], tagged).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidField);
        }
    }
}
