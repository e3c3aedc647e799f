//! The request pipeline, pure: request → identity → decision (plan, ownership, state checks)
//! → forward → response check → audit, written against the platform interface in [`host`].
//! `shell` implements that interface for Spin and does nothing else; the tests implement it
//! in memory, so every step, fail-closed paths included, runs under `cargo test`.
//!
//! Every failure is a `GatewayError`, turned into MLflow's error shape in one place
//! (`GatewayError::to_response`), and every request leaves exactly one audit record.

pub mod claim;
pub mod ctx;
pub mod decision;
pub mod grants;
pub mod host;
pub mod identity;
pub mod idp;
pub mod ownership;
pub mod ratelimit;
pub mod signin;
pub mod workspace;

#[cfg(test)]
mod memory;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;

use crate::audit::{rfc3339, AuditRecord, Verdict};
use crate::config::Config;
use crate::error::{GatewayError, HttpResponse, Kind, Reason};
use crate::forward::{
    body_intake, body_too_large, declared_length, response_headers, streamed, BodyIntake,
};
use crate::mlflow::ownership::Resource;
use crate::mlflow::provider_errors;
use crate::mlflow::responses::{self, ResponseFilter};
use crate::policy::{self, access, POLICY_VERSION};
use crate::request::{request_id, Incoming};
use ctx::Ctx;
use decision::{decide, Permit};
use host::{Answer, BodyError, Host, OutBody};

/// What the pipeline answers: a complete response, or an upstream answer piped through.
pub enum Reply<A> {
    Full(HttpResponse),
    Piped {
        status: u16,
        headers: Vec<(String, String)>,
        answer: A,
    },
}

impl<A> Reply<A> {
    pub fn status(&self) -> u16 {
        match self {
            Reply::Full(r) => r.status,
            Reply::Piped { status, .. } => *status,
        }
    }
}

/// The pipeline's result for one request: the reply, and the audit record to write once the
/// reply is sent.
pub struct Outcome<A> {
    pub reply: Reply<A>,
    pub audit: PendingAudit,
}

/// The request's audit record, complete but for its timing.
pub struct PendingAudit {
    rid: String,
    record: AuditRecord,
    started_ms: u64,
}

impl PendingAudit {
    pub fn rid(&self) -> &str {
        &self.rid
    }

    pub fn record(&self) -> &AuditRecord {
        &self.record
    }

    /// The audit line (newline included), timed from the request's start to `now_ms`.
    pub fn line(mut self, now_ms: u64) -> String {
        self.record.ts = rfc3339(self.started_ms);
        self.record.duration_ms = now_ms.saturating_sub(self.started_ms);
        let mut line = self.record.to_line();
        line.push('\n');
        line
    }
}

/// Runs the pipeline for one request. `body` is the client's body, still unread: nothing is
/// read before identity, route and the size limit are decided from the head.
pub fn handle<H: Host>(
    host: &mut H,
    mut inc: Incoming,
    body: Option<H::ClientBody>,
) -> Outcome<H::Answer> {
    let rid = request_id(&inc.header_values("x-request-id"), || {
        format!("{:016x}{:016x}", host.random_u64(), host.random_u64())
    });
    let audit = AuditRecord {
        request_id: rid.clone(),
        method: inc.method.clone(),
        policy_version: POLICY_VERSION,
        auth_mode: "unknown",
        decision: "deny",
        reason: "internal",
        ..Default::default()
    };
    let mut ctx = Ctx::new(host, rid, audit);
    ctx.audit.set_path(&inc.path);
    let reply = match run(&mut inc, &mut ctx, body) {
        Ok(r) => r,
        Err(e) => {
            if let Some(detail) = &e.log_detail {
                let level = if e.kind() == Kind::Config {
                    "error"
                } else {
                    "warn"
                };
                ctx.log(level, detail);
            }
            ctx.audit.record(Verdict::Denied(e.reason));
            Reply::Full(e.to_response(&ctx.rid))
        }
    };
    let mut reply = reply;
    if !ctx.cookies.is_empty() {
        let headers = match &mut reply {
            Reply::Full(r) => &mut r.headers,
            Reply::Piped { headers, .. } => headers,
        };
        headers.extend(ctx.cookies.drain(..).map(|c| ("set-cookie".to_string(), c)));
    }
    ctx.audit.status = reply.status();
    Outcome {
        reply,
        audit: PendingAudit {
            rid: ctx.rid,
            record: ctx.audit,
            started_ms: ctx.started_ms,
        },
    }
}

fn run<H: Host>(
    inc: &mut Incoming,
    ctx: &mut Ctx<H>,
    body: Option<H::ClientBody>,
) -> Result<Reply<H::Answer>, GatewayError> {
    if inc.path == "/healthz" && inc.method == "GET" {
        ctx.audit.record(Verdict::Health);
        ctx.audit.auth_mode = "none";
        return Ok(Reply::Full(json_response(
            200,
            serde_json::json!({"status": "ok"}),
            &ctx.rid,
        )));
    }
    let cfg = config(ctx)?;
    ctx.set_deadline(&cfg);
    ctx.audit.auth_mode = cfg.auth_mode.as_str();
    if inc.path == "/readyz" && inc.method == "GET" {
        return readyz(&cfg, ctx).map(Reply::Full);
    }
    if inc.path.starts_with(signin::PREFIX) {
        return signin::endpoint(inc, &cfg, ctx, identity::identify).map(Reply::Full);
    }
    if inc.path == grants::PATH {
        return grants::endpoint(inc, &cfg, ctx, body).map(Reply::Full);
    }
    match checked(inc, &cfg, ctx, body) {
        // A browser without a session, loading a page: sent to sign-in.
        Err(e) if signin::redirects_to_sign_in(&e, inc, &cfg) => {
            ctx.audit.record(Verdict::Denied(e.reason));
            Ok(Reply::Full(signin::to_sign_in(inc, &ctx.rid)))
        }
        result => result,
    }
}

/// The request's checks and, when they pass, its forward and response check.
fn checked<H: Host>(
    inc: &mut Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
    mut body: Option<H::ClientBody>,
) -> Result<Reply<H::Answer>, GatewayError> {
    // identity, and the tenant the request acts in
    let (_, principal) = identity::identify(inc, cfg, ctx)?;

    // route
    let matched = policy::match_route(&inc.method, &inc.path)?;
    ctx.audit.route = Some(matched.row.id);
    ctx.audit.action = Some(matched.row.action.as_str());

    // rate limits: before the body is read or MLflow is asked anything
    ratelimit::check(&principal, matched.row, cfg, ctx)?;

    // body: identity and route are settled; the size limit is the route's
    let declared = declared_length(&inc.headers);
    let pending = match body_intake(&inc.method, matched.row, declared)? {
        BodyIntake::Stream(len) => {
            if body.is_none() {
                return Err(unreadable("request body unavailable".into()));
            }
            Some(len)
        }
        BodyIntake::Buffer { limit } => {
            let client_body = body
                .take()
                .ok_or_else(|| unreadable("request body unavailable".into()))?;
            inc.body = read_buffered(ctx, client_body, declared, limit)?;
            None
        }
    };

    // workspace (workspace mode): settled and pinned before anything reads MLflow
    workspace::settle(&principal, cfg, ctx)?;

    // decision
    let permit = decide(inc, &matched, principal, cfg, ctx)?;
    if let Some(refusal) = permit.would_deny() {
        ctx.log(
            "warn",
            &format!(
                "enforcement=report: forwarding a request the policy refuses ({}: {})",
                refusal.reason.as_str(),
                refusal.message
            ),
        );
    }

    // forward
    let pending = match (pending, body.take()) {
        (Some(len), Some(client_body)) => Some((client_body, len)),
        _ => None,
    };
    let answer = forward(inc, &permit, pending, cfg, ctx)?;
    ctx.audit.upstream_status = Some(answer.status());

    // response check
    check_answer(&permit, answer, cfg, ctx)
}

/// Reads the client's body into memory, refusing it with 413 past `limit`.
pub(super) fn read_buffered<H: Host>(
    ctx: &mut Ctx<H>,
    body: H::ClientBody,
    declared: Option<u64>,
    limit: u64,
) -> Result<Vec<u8>, GatewayError> {
    ctx.read_body(body, declared, limit).map_err(|e| match e {
        BodyError::TooLarge => body_too_large(limit),
        BodyError::Unreadable(d) => unreadable(format!("request body: {d}")),
    })
}

fn unreadable(detail: String) -> GatewayError {
    GatewayError::new(Reason::BodyUnreadable, "the request body could not be read")
        .with_log_detail(detail)
}

/// The configuration, from the component's variables in one read; an invalid value fails the
/// request (500, the log names the variable) rather than falling back to a weaker mode.
fn config<H: Host>(ctx: &mut Ctx<H>) -> Result<Config, GatewayError> {
    let vars = ctx.variables().map_err(|e| {
        GatewayError::config_unreadable(format!("reading the component's variables: {e}"))
    })?;
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| "not defined for the component in spin.toml".to_string())
    })
    .map_err(|e| GatewayError::config(e.to_string()))
}

/// Sends the permitted request to MLflow: the planned path, query, headers and body (the
/// client's body moved, or piped for a large upload). Returns once the answer's head is in.
fn forward<H: Host>(
    inc: &mut Incoming,
    permit: &Permit,
    pending: Option<(H::ClientBody, u64)>,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<H::Answer, GatewayError> {
    // The body is moved, not copied: artifact uploads can be large.
    let body = std::mem::take(&mut inc.body);
    let mut up = permit.request(inc, body, cfg, &ctx.rid);
    match pending {
        Some((client_body, len)) => {
            up.set_length(len);
            ctx.forward(cfg, up, OutBody::Stream(client_body))
        }
        None => ctx.forward(cfg, up, OutBody::Bytes),
    }
}

/// Checks MLflow's answer where the plan says so (foreign rows dropped, foreign objects
/// answered like absent ones); large artifact downloads and successful model invocations
/// (streamed tokens) are piped through unread, an invocation's error is scrubbed of
/// credentials; objects MLflow created for the request are claimed for the tenant.
fn check_answer<H: Host>(
    permit: &Permit,
    answer: H::Answer,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Reply<H::Answer>, GatewayError> {
    let plan = permit.plan();
    let status = answer.status();
    let shape = plan.row.strategy.shape();
    let download = shape.streams
        && plan.row.method == "GET"
        && plan.filter.is_none()
        && declared_length(answer.headers()).is_none_or(|n| streamed(Some(n)));
    let generated = shape.pipes_answers && (200..300).contains(&status);
    if download || generated {
        ctx.audit.record(permitted(permit));
        return Ok(Reply::Piped {
            status,
            headers: response_headers(answer.headers(), &ctx.rid),
            answer,
        });
    }
    let resp = answer.read_all().map_err(|e| ctx.send_error(cfg, e))?;
    let headers = response_headers(&resp.headers, &ctx.rid);
    let mut body = resp.body;
    if shape.pipes_answers {
        // A model provider's error, relayed by MLflow, may echo the tenant's key.
        body = provider_errors::scrub(&body);
    }
    if let (Some(c), 200) = (plan.claim, status) {
        claim::claim(c, &body, permit.principal(), cfg, ctx);
    }
    let mut filter = plan.filter.clone();
    if let Some(f) = &mut filter {
        if status == 200 {
            learn_from_answer(f, &body, permit, cfg, ctx)?;
        }
    }
    if let Some(filter) = &filter {
        let reader = access::reader(permit.principal(), &cfg.tenant_tag_key);
        let checked = responses::check(filter, status, &body, &reader)?;
        if checked.dropped > 0 {
            let fault = format!(
                "{} foreign row(s) dropped from {}",
                checked.dropped, plan.row.id
            );
            ctx.log("error", &format!("policy fault: {fault}"));
            ctx.audit.policy_fault = Some(fault);
        }
        if let (Some(reason), true) = (checked.replaced, cfg.report_only) {
            // Report mode: MLflow's real answer, audited as what the check would have done.
            hide_grants(plan, &mut body, cfg);
            ctx.audit.record(Verdict::WouldDeny(reason));
            return Ok(Reply::Full(HttpResponse {
                status,
                headers,
                body,
            }));
        }
        if let Some(b) = checked.body {
            body = b;
        }
        if let Some(reason) = checked.replaced {
            // A foreign object answered exactly as MLflow answers an absent one.
            ctx.audit.record(Verdict::Denied(reason));
            return Ok(Reply::Full(HttpResponse {
                status: Kind::NotFound.status(),
                headers,
                body,
            }));
        }
    }
    hide_grants(plan, &mut body, cfg);
    ctx.audit.record(permitted(permit));
    Ok(Reply::Full(HttpResponse {
        status,
        headers,
        body,
    }))
}

/// Takes the gateway's grant tags out of an answer that shows experiments or registered models
/// (after the response check, which reads them): grants are listed through the grants endpoint.
fn hide_grants(plan: &policy::Plan, body: &mut Vec<u8>, cfg: &Config) {
    if plan.row.shows_object_tags() {
        if let Some(b) = crate::mlflow::grants::hide_grant_tags(body, &cfg.tenant_tag_key) {
            *body = b;
        }
    }
}

/// Fills in what a response check can only learn from the answer: which of the experiments of
/// online-scoring configs, and which of the registered models of model versions, the caller
/// may read (each resolved as any owner is), and the workspaces shared with it.
fn learn_from_answer<H: Host>(
    filter: &mut ResponseFilter,
    body: &[u8],
    permit: &Permit,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let (objects, readable) = match filter {
        ResponseFilter::OnlineConfigs { owned } => (
            responses::online_config_experiments(body)?
                .into_iter()
                .map(Resource::Experiment)
                .collect::<Vec<_>>(),
            owned,
        ),
        ResponseFilter::ModelVersions { readable } => (
            responses::version_models(body)?
                .into_iter()
                .map(Resource::RegisteredModel)
                .collect(),
            readable,
        ),
        ResponseFilter::WorkspaceList { allowed, .. } => {
            let subjects = access::subjects(permit.principal());
            for ws in grants::shared_workspaces(&subjects, cfg, ctx)? {
                if !allowed.contains(&ws) {
                    allowed.push(ws);
                }
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    for res in objects {
        if ownership::readable(&res, permit.principal(), cfg, ctx)? {
            readable.push(res.id().to_string());
        }
    }
    Ok(())
}

/// The verdict of a forwarded request: allowed, or in report mode what enforce would have said.
fn permitted(permit: &Permit) -> Verdict {
    permit
        .would_deny()
        .map_or(Verdict::Allowed, |e| Verdict::WouldDeny(e.reason))
}

fn json_response(status: u16, body: serde_json::Value, rid: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-request-id".into(), rid.into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// `/readyz`: MLflow answers its health check (with workspaces on, in workspace mode) and, in
/// OIDC mode, the IdP's discovery document names `oidc_issuer` as its issuer and its keys are
/// usable. Not ready: 503, and one operator line naming each check that failed, with the URL
/// or variable at fault.
fn readyz<H: Host>(cfg: &Config, ctx: &mut Ctx<H>) -> Result<HttpResponse, GatewayError> {
    ctx.audit.record(Verdict::Health);
    let mut problems: Vec<String> = Vec::new();
    let mlflow_url = format!(
        "{}{}/health",
        cfg.upstream.origin.as_string(),
        cfg.upstream.base_path
    );
    let mlflow_ok = match ctx.own_call(cfg, "GET", "/health", Vec::new()) {
        Ok(r) if r.status == 200 => true,
        Ok(r) => {
            problems.push(format!(
                "MLflow at {mlflow_url} (target_base_url) answered {}",
                r.status
            ));
            false
        }
        Err(e) => {
            problems.push(e.log_detail.unwrap_or(e.message));
            false
        }
    };
    ctx.audit.upstream_status = None;
    // Workspace mode in front of an MLflow without workspaces would pin a header MLflow
    // ignores or refuses: not ready, and the log says what to fix.
    let workspaces_ok = match cfg.isolation.workspace() {
        Some(_) if mlflow_ok => match workspace::workspaces_enabled(cfg, ctx) {
            Ok(true) => Some(true),
            Ok(false) => {
                problems.push(format!(
                    "{} (MLflow at {})",
                    workspace::DISABLED_HINT,
                    cfg.upstream.origin.as_string()
                ));
                Some(false)
            }
            Err(e) => {
                problems.push(e.log_detail.unwrap_or(e.message));
                Some(false)
            }
        },
        Some(_) => Some(false),
        None => None,
    };
    let (issuer, keys_ok) = match cfg.oidc.as_ref() {
        Some(oidc) => {
            let idp = idp::Idp { oidc, cfg };
            let issuer = idp.issuer_check(ctx);
            if let Some(p) = issuer.problem() {
                problems.push(p.to_string());
            }
            let keys = match idp.keys(None, ctx) {
                Ok(_) => true,
                Err(e) => {
                    let detail = e.log_detail.unwrap_or(e.message);
                    if !problems.contains(&detail) {
                        problems.push(format!("signing keys: {detail}"));
                    }
                    false
                }
            };
            (Some(issuer), Some(keys))
        }
        None => (None, None),
    };
    let ready = mlflow_ok
        && keys_ok.unwrap_or(true)
        && workspaces_ok.unwrap_or(true)
        && issuer.as_ref().is_none_or(|i| i.problem().is_none());
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "mlflow": if mlflow_ok { "ok" } else { "unavailable" },
        "isolation": cfg.isolation.as_str(),
        "enforcement": if cfg.report_only { "report" } else { "enforce" },
    });
    if let Some(on) = workspaces_ok {
        body["workspaces"] = serde_json::Value::from(if on { "enabled" } else { "unavailable" });
    }
    if let Some(i) = &issuer {
        body["issuer"] = serde_json::Value::from(i.as_str());
    }
    if let Some(k) = keys_ok {
        body["signing_keys"] = serde_json::Value::from(if k { "ok" } else { "unavailable" });
    }
    if !ready {
        ctx.log("error", &format!("not ready: {}", problems.join("; ")));
    }
    Ok(json_response(if ready { 200 } else { 503 }, body, &ctx.rid))
}
