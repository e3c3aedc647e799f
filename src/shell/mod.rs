//! The thin shell: the only module that talks to Spin (variables, key-value store, outbound
//! HTTP, stdout/stderr). It runs the pipeline request → identity → decision → pre-flights →
//! forward → response check → audit, and maps every failure through
//! `GatewayError::to_response`; it never returns an error to spin-sdk (which would answer 500
//! with the raw error text).

use crate::audit::{operator_line, rfc3339, AuditRecord};
use crate::config::{AuthMode, Config, OidcConfig};
use crate::error::{GatewayError, HttpResponse, Kind, Reason};
use crate::forward::{
    body_intake, body_too_large, declared_length, next_read, response_headers, streamed,
    upstream_request, BodyIntake, UpstreamRequest,
};
use crate::identity::jwks::{self, DiscoveryError, JwksRecord};
use crate::identity::token_cache::Slot;
use crate::identity::{claims, dev, jwt, Principal};
use crate::mlflow::locations;
use crate::mlflow::ownership::{fact_from_body, CachedFact, Fact, Resource};
use crate::mlflow::responses::{self, ResponseFilter};
use crate::policy::plan::{judge, keeps_an_experiment, owner_of_all, Owner, Verify};
use crate::policy::{self, POLICY_VERSION};
use crate::request::{request_id, Incoming};

pub mod outbound;
use crate::policy::table::Strategy;
use outbound::{send_to, start, OutBody, SendFailure, Upstream, UpstreamResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::key_value::Store;
use spin_sdk::wit::wasi::http0_2_0::types as wt;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasi::io::streams::{InputStream, StreamError};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn fresh_request_id() -> String {
    let a = wasi::random::random::get_random_u64();
    let b = wasi::random::random::get_random_u64();
    format!("{a:016x}{b:016x}")
}

/// Operator log lines (stderr; stdout carries only audit lines). Each line leaves in one
/// write to the host: `eprintln!` of a JSON value writes it piece by piece, and concurrent
/// instances' pieces interleaved in Spin's stderr (measured: 1,814 of 22,044 lines broken).
fn log(level: &str, request_id: &str, msg: &str) {
    let line = operator_line(&rfc3339(now_ms()), level, request_id, msg);
    write_line(&wasi::cli::stderr::get_stderr(), &line);
}

/// Writes a line to a host stream in one write when it fits the 4096 bytes a write takes
/// (operator lines always do; an audit line is bounded well below).
fn write_line(stream: &wasi::io::streams::OutputStream, line: &str) {
    for chunk in line.as_bytes().chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}

/// Copies the request head out of Spin's type; the body is read by the caller.
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

/// The client's body, still unread in its connection: nothing is read before identity, route
/// and size limit are decided from the head. Then it is read with a cap (`read_capped`) or,
/// for a large artifact upload, piped upstream once the request is allowed. Fields drop stream
/// first, as wasi-http requires.
struct ClientBody {
    stream: InputStream,
    _body: wt::IncomingBody,
}

/// Reads the client's body into memory, holding at most `limit + 1` bytes: a body over the
/// limit is refused with 413 however it is framed (declared length or chunked).
fn read_capped(
    body: Option<ClientBody>,
    declared: Option<u64>,
    limit: u64,
) -> Result<Vec<u8>, GatewayError> {
    let unreadable = |detail: String| {
        GatewayError::bad_request(Reason::BodyUnreadable, "the request body could not be read")
            .with_log_detail(detail)
    };
    let body = body.ok_or_else(|| unreadable("request body unavailable".into()))?;
    // Sized once, so the buffer never reallocates (a doubling would hold old and new copies):
    // by the declared length (already checked against the limit), else by the limit itself;
    // pages of linear memory count towards the process's RSS only once written.
    let cap = declared.map_or(limit.saturating_add(1), |n| n.min(limit));
    let mut buf = Vec::with_capacity(usize::try_from(cap).unwrap_or(usize::MAX));
    loop {
        let want = next_read(buf.len() as u64, limit, outbound::PIPE_CHUNK);
        if want == 0 {
            return Err(body_too_large(limit));
        }
        match body.stream.blocking_read(want) {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(buf),
            Err(e) => return Err(unreadable(format!("request body: {e:?}"))),
        }
    }
}

/// What the pipeline answers: a complete response, or an upstream answer piped through.
enum Reply {
    Full(HttpResponse),
    Piped {
        status: u16,
        headers: Vec<(String, String)>,
        upstream: Upstream,
    },
}

/// Sends the reply to the client; a failure mid-stream can only be logged (the status is out).
fn respond(out: ResponseOutparam, reply: Reply, rid: &str) {
    let sent = match reply {
        Reply::Full(r) => outbound::respond_full(out.into_inner(), r.status, &r.headers, &r.body),
        Reply::Piped {
            status,
            headers,
            upstream,
        } => outbound::respond_piped(out.into_inner(), status, &headers, upstream),
    };
    if let Err(e) = sent {
        log("warn", rid, &format!("response not completed: {e}"));
    }
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

/// Per-request state shared by the pipeline steps (Pingora's CTX).
struct Ctx {
    rid: String,
    audit: AuditRecord,
    store: Option<Store>,
    started: Instant,
    /// Request start + `request_timeout_seconds`, once the configuration is read.
    deadline: Option<Instant>,
}

impl Ctx {
    /// Refuses to act late. A host call the component cannot interrupt (Spin's Redis store has
    /// no timeout) may return long after the client gave up; whatever it returned, a request
    /// past its deadline is answered 503 and never forwarded, so an abandoned (and perhaps
    /// retried) write is not applied behind the client's back. Checked after every key-value
    /// call and before every outgoing call.
    fn check_deadline(&self, after: &str) -> Result<(), GatewayError> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(GatewayError::unavailable(
                Reason::DeadlineExceeded,
                "the gateway could not complete its checks in time; the request was not forwarded",
            )
            .with_log_detail(format!(
                "deadline exceeded after {after}: {} ms since the request started",
                self.started.elapsed().as_millis()
            ))),
            _ => Ok(()),
        }
    }

    /// Opens the key-value store lazily; failure denies the request (fail closed).
    fn store(&mut self) -> Result<&Store, GatewayError> {
        if self.store.is_none() {
            let s = Store::open_default()
                .map_err(|e| GatewayError::kv_unavailable(format!("kv open: {e}")))?;
            self.store = Some(s);
        }
        self.store
            .as_ref()
            .ok_or_else(|| GatewayError::internal("kv store missing after open"))
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, GatewayError> {
        let got = self
            .store()?
            .get(key)
            .map_err(|e| GatewayError::kv_unavailable(format!("kv get: {e}")));
        self.check_deadline("a key-value read")?;
        got
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), GatewayError> {
        let set = self
            .store()?
            .set(key, value)
            .map_err(|e| GatewayError::kv_unavailable(format!("kv set: {e}")));
        self.check_deadline("a key-value write")?;
        set
    }
}

/// The component's entry point.
pub async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let started = now_ms();
    let started_at = Instant::now();
    let mut inc = incoming(&req);
    let rid = request_id(&inc.header_values("x-request-id"), fresh_request_id);
    let mut ctx = Ctx {
        rid: rid.clone(),
        audit: AuditRecord {
            request_id: rid.clone(),
            method: inc.method.clone(),
            policy_version: POLICY_VERSION,
            auth_mode: "unknown",
            decision: "deny",
            reason: "internal",
            ..Default::default()
        },
        store: None,
        started: started_at,
        deadline: None,
    };
    ctx.audit.set_path(&inc.path);

    // The body stays in the client's connection: `run` decides from the head how (and whether)
    // to read it.
    let body = req.consume().ok().and_then(|b| {
        b.stream()
            .ok()
            .map(|stream| ClientBody { stream, _body: b })
    });
    let reply = match run(&mut inc, &mut ctx, body) {
        Ok(r) => r,
        Err(e) => {
            if let Some(detail) = &e.log_detail {
                let level = if e.kind == Kind::Config {
                    "error"
                } else {
                    "warn"
                };
                log(level, &rid, detail);
            }
            ctx.audit.decision = "deny";
            ctx.audit.reason = e.reason.as_str();
            Reply::Full(e.to_response(&rid))
        }
    };
    ctx.audit.status = match &reply {
        Reply::Full(r) => r.status,
        Reply::Piped { status, .. } => *status,
    };
    respond(out, reply, &rid);
    ctx.audit.ts = rfc3339(started);
    ctx.audit.duration_ms = now_ms().saturating_sub(started);
    let mut line = ctx.audit.to_line();
    line.push('\n');
    write_line(&wasi::cli::stdout::get_stdout(), &line);
}

fn run(inc: &mut Incoming, ctx: &mut Ctx, body: Option<ClientBody>) -> Result<Reply, GatewayError> {
    if inc.path == "/healthz" && inc.method == "GET" {
        ctx.audit.decision = "allow";
        ctx.audit.reason = "health";
        ctx.audit.auth_mode = "none";
        return Ok(Reply::Full(json_response(
            200,
            serde_json::json!({"status": "ok"}),
            &ctx.rid,
        )));
    }
    let vars = component_variables()?;
    let cfg = Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| "not defined for the component in spin.toml".to_string())
    })
    .map_err(|e| GatewayError::config(e.to_string()))?;
    ctx.deadline = ctx
        .started
        .checked_add(std::time::Duration::from_secs(cfg.request_timeout_seconds));
    ctx.audit.auth_mode = cfg.auth_mode.as_str();
    if inc.path == "/readyz" && inc.method == "GET" {
        return readyz(&cfg, ctx).map(Reply::Full);
    }

    // identity
    let principal = authenticate(inc, &cfg, ctx)?;
    ctx.audit.tenant = Some(principal.tenant.clone());
    ctx.audit.subject = Some(principal.subject.clone());
    ctx.audit.roles = principal.roles.iter().map(|r| r.as_str()).collect();

    // decision
    let matched = policy::match_route(&inc.method, &inc.path)?;
    ctx.audit.route = Some(matched.row.id);
    ctx.audit.action = Some(matched.row.action.as_str());

    // body: identity and route are settled; the size limit is the route's
    let declared = declared_length(&inc.headers);
    let pending = match body_intake(&inc.method, matched.row, declared)? {
        BodyIntake::Stream(len) => Some((
            body.ok_or_else(|| {
                GatewayError::bad_request(
                    Reason::BodyUnreadable,
                    "the request body could not be read",
                )
                .with_log_detail("request body unavailable")
            })?,
            len,
        )),
        BodyIntake::Buffer { limit } => {
            inc.body = read_capped(body, declared, limit)?;
            None
        }
    };
    let plan = policy::plan(inc, &matched, &principal, &cfg)?;
    for res in &plan.checks {
        let owner = resolve_owner(res, &cfg, ctx)?;
        judge(res, &owner, &principal)?;
    }
    for res in &plan.absent_or_own {
        let owner = resolve_owner(res, &cfg, ctx)?;
        if owner != Owner::Missing {
            judge(res, &owner, &principal)?;
        }
    }
    for v in &plan.verify {
        verify(v, &cfg, ctx)?;
    }

    // forward
    // The body is moved, not copied: artifact uploads can be large.
    let body = std::mem::take(&mut inc.body);
    let mut up = upstream_request(inc, &plan, body, &cfg.upstream.base_path, &ctx.rid);
    let upstream = match &pending {
        Some((p, len)) => {
            up.set_length(*len);
            start_send(&cfg, &up, OutBody::Stream(&p.stream), ctx)?
        }
        None => start_send(&cfg, &up, OutBody::Bytes(&up.body), ctx)?,
    };
    drop(pending);
    ctx.audit.upstream_status = Some(upstream.status);
    // Large downloads are piped through: nothing in the answer is checked for these routes.
    if inc.method == "GET"
        && plan.row.strategy == Strategy::ArtifactPath
        && plan.filter.is_none()
        && declared_length(&upstream.headers).is_none_or(|n| streamed(Some(n)))
    {
        ctx.audit.decision = "allow";
        ctx.audit.reason = "allowed";
        return Ok(Reply::Piped {
            status: upstream.status,
            headers: response_headers(&upstream.headers, &ctx.rid),
            upstream,
        });
    }
    let resp = upstream.read_all().map_err(|e| send_error(&cfg, e, ctx))?;

    // response check
    let mut body = resp.body;
    let mut filter = plan.filter.clone();
    if let Some(ResponseFilter::OnlineConfigs { owned }) = &mut filter {
        if resp.status == 200 {
            for e in responses::online_config_experiments(&body)? {
                let res = Resource::Experiment(e);
                if resolve_owner(&res, &cfg, ctx)? == Owner::Tenant(principal.tenant.clone()) {
                    owned.push(res.id().to_string());
                }
            }
        }
    }
    if let Some(filter) = &filter {
        let checked = responses::check(
            filter,
            resp.status,
            &body,
            &principal.tenant,
            &cfg.tenant_tag_key,
        )?;
        if checked.dropped > 0 {
            let fault = format!(
                "{} foreign row(s) dropped from {}",
                checked.dropped, plan.row.id
            );
            log("error", &ctx.rid, &format!("policy fault: {fault}"));
            ctx.audit.policy_fault = Some(fault);
        }
        if let Some(b) = checked.body {
            body = b;
        }
        if let Some((replaced_status, reason)) = checked.replaced {
            // A foreign object answered exactly as MLflow answers an absent one.
            ctx.audit.decision = "deny";
            ctx.audit.reason = reason.as_str();
            return Ok(Reply::Full(HttpResponse {
                status: replaced_status,
                headers: response_headers(&resp.headers, &ctx.rid),
                body,
            }));
        }
    }
    ctx.audit.decision = "allow";
    ctx.audit.reason = "allowed";
    Ok(Reply::Full(HttpResponse {
        status: resp.status,
        headers: response_headers(&resp.headers, &ctx.rid),
        body,
    }))
}

/// Every component variable in one host call (`wasi:config/store.get-all`): reading the ~20
/// settings one `variables::get` at a time cost ~0.2 ms per request (measured: 222 µs vs 80 µs). A provider failure fails
/// the whole read, so no setting silently falls back.
fn component_variables() -> Result<Vec<(String, String)>, GatewayError> {
    spin_sdk::wit::wasi::config::store::get_all()
        .map_err(|e| GatewayError::config(format!("reading the component's variables: {e:?}")))
}

fn authenticate(inc: &Incoming, cfg: &Config, ctx: &mut Ctx) -> Result<Principal, GatewayError> {
    match (&cfg.auth_mode, &cfg.oidc) {
        (AuthMode::Off, _) => {
            if inc.has_header("authorization") {
                log(
                    "warn",
                    &ctx.rid,
                    "auth_mode=off: Authorization header ignored and not forwarded",
                );
            }
            dev::authenticate(inc, cfg)
        }
        (AuthMode::Oidc, Some(oidc)) => {
            for h in ["x-tenant", "x-subject", "x-roles"] {
                if inc.has_header(h) {
                    return Err(GatewayError::bad_request(
                        Reason::IdentityHeaderInOidcMode,
                        format!("header {h} is not accepted: in oidc mode identity comes only from the bearer token"),
                    ));
                }
            }
            let token = jwt::bearer_token(&inc.header_values("authorization"))?;
            let header = jwt::peek_header(&token, oidc)?;
            let keys = current_keys(oidc, cfg, header.kid.as_deref(), ctx)?;
            let jwk = jwt::select_key(&header, &keys)?;
            verified_principal(&token, &header, jwk, oidc, cfg, ctx)
        }
        (AuthMode::Oidc, None) => Err(GatewayError::internal("oidc mode without oidc config")),
    }
}

/// The signature and claims checks, or the verdict of an earlier full check of the same token
/// from the key-value store when `identity::token_cache` says it still stands.
fn verified_principal(
    token: &str,
    header: &jwt::Header,
    jwk: &jwks::Jwk,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx,
) -> Result<Principal, GatewayError> {
    let now = now_ms() / 1000;
    let ttl = oidc.token_cache_seconds;
    let slot = (ttl > 0).then(|| Slot::for_token(token, oidc, cfg));
    if let Some(s) = &slot {
        let cached = ctx
            .kv_get(&s.key)?
            .and_then(|b| s.principal(&b, jwk, now, ttl, oidc.clock_skew_seconds));
        if let Some(p) = cached {
            ctx.audit.token_check = Some("cached");
            return Ok(p);
        }
    }
    let claims = jwt::verify(token, header, jwk, oidc, now)?;
    let principal = claims::principal_from_claims(&claims, cfg)?;
    ctx.audit.token_check = Some("verified");
    if let Some(s) = slot {
        if let Some(entry) = s.entry(&claims, jwk, &principal, now) {
            ctx.kv_set(&s.key, &entry)?;
        }
    }
    Ok(principal)
}

/// The IdP's keys from the KV store, refreshed per the rules in `identity::jwks`.
fn current_keys(
    oidc: &OidcConfig,
    cfg: &Config,
    kid: Option<&str>,
    ctx: &mut Ctx,
) -> Result<jwks::JwkSet, GatewayError> {
    let key = jwks::record_key(oidc);
    let now = now_ms() / 1000;
    let mut record = ctx
        .kv_get(&key)?
        .map(|b| JwksRecord::decode(&b))
        .unwrap_or_default();
    if jwks::should_fetch(&record, kid, now, oidc) {
        record.last_attempt_at = now;
        match fetch_jwks(oidc, cfg, ctx) {
            Ok(set) => {
                record.keys = Some(set);
                record.fetched_at = Some(now);
            }
            Err(FetchError::Config(detail)) => {
                ctx.kv_set(&key, &record.encode())?;
                return Err(GatewayError::config(detail));
            }
            Err(FetchError::Transient(detail)) => {
                log("warn", &ctx.rid, &format!("JWKS refresh failed: {detail}"));
            }
        }
        ctx.kv_set(&key, &record.encode())?;
    }
    jwks::usable_keys(&record, now, oidc)
        .cloned()
        .ok_or_else(|| {
            GatewayError::unavailable(
                Reason::JwksUnavailable,
                "the identity provider's signing keys are unavailable; try again later",
            )
        })
}

enum FetchError {
    Config(String),
    Transient(String),
}

fn fetch_jwks(oidc: &OidcConfig, cfg: &Config, ctx: &mut Ctx) -> Result<jwks::JwkSet, FetchError> {
    let uri = match &oidc.jwks_uri {
        Some(u) => u.clone(),
        None => {
            let body = fetch_idp(&jwks::discovery_url(&oidc.issuer), oidc, cfg, ctx)?;
            jwks::parse_discovery(&body, &oidc.idp_origin).map_err(|e| match e {
                DiscoveryError::Malformed(m) => FetchError::Transient(m),
                DiscoveryError::OutsideOrigin(m) => FetchError::Config(m),
            })?
        }
    };
    let body = fetch_idp(&uri, oidc, cfg, ctx)?;
    jwks::parse_jwks(&body).map_err(FetchError::Transient)
}

/// GET from the IdP; the URL's origin is `idp_origin` (checked in config / discovery).
fn fetch_idp(
    url: &str,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx,
) -> Result<Vec<u8>, FetchError> {
    let (origin, path) =
        crate::config::parse_url("jwks_uri", url).map_err(|e| FetchError::Config(e.to_string()))?;
    if origin != oidc.idp_origin {
        return Err(FetchError::Config(format!("{url} is outside idp_origin")));
    }
    ctx.check_deadline("the JWKS read")
        .map_err(|e| FetchError::Transient(e.log_detail.unwrap_or_default()))?;
    let req = UpstreamRequest {
        method: "GET".into(),
        path_and_query: if path.is_empty() { "/".into() } else { path },
        headers: vec![("accept".into(), b"application/json".to_vec())],
        body: Vec::new(),
    };
    match send_to(
        origin.https,
        &origin.authority,
        &req,
        cfg.request_timeout_seconds,
    ) {
        Ok(r) if r.status == 200 => Ok(r.body),
        Ok(r) => Err(FetchError::Transient(format!(
            "IdP answered {} for {url}",
            r.status
        ))),
        Err(SendFailure::Denied) => Err(FetchError::Config(format!(
            "Spin refused the outbound call to {url}: is idp_origin in allowed_outbound_hosts?"
        ))),
        Err(e) => Err(FetchError::Transient(format!(
            "{e:?} fetching {url} (request {})",
            ctx.rid
        ))),
    }
}

/// Establishes who owns `res`: from the KV cache when fresh, else by pre-flight to MLflow.
/// Experiments and registered models carry the tenant tag themselves; runs, logged models,
/// traces and GenAI objects belong to their experiment's tenant, a dataset to the tenant of
/// all its experiments.
fn resolve_owner(res: &Resource, cfg: &Config, ctx: &mut Ctx) -> Result<Owner, GatewayError> {
    if res.tagged_itself() {
        return tag_owner(fact(res, cfg, ctx)?);
    }
    let experiments = match fact(res, cfg, ctx)? {
        None => return Ok(Owner::Missing),
        Some(Fact::InExperiment(e)) => vec![e],
        Some(Fact::InExperiments(list)) => list,
        Some(Fact::TenantTag(_)) => return Err(GatewayError::internal("fact kind mismatch")),
    };
    let mut owners = Vec::with_capacity(experiments.len());
    for e in experiments {
        owners.push(tag_owner(fact(&Resource::Experiment(e), cfg, ctx)?)?);
    }
    Ok(owner_of_all(owners))
}

fn tag_owner(tagged: Option<Fact>) -> Result<Owner, GatewayError> {
    Ok(match tagged {
        None => Owner::Missing,
        Some(Fact::TenantTag(Some(t))) => Owner::Tenant(t),
        Some(Fact::TenantTag(None)) => Owner::Nobody,
        Some(_) => return Err(GatewayError::internal("fact kind mismatch")),
    })
}

fn fact(res: &Resource, cfg: &Config, ctx: &mut Ctx) -> Result<Option<Fact>, GatewayError> {
    let ttl = cfg.ownership_cache_seconds;
    let now = now_ms() / 1000;
    let cache_key = res.cache_key().filter(|_| ttl > 0);
    if let Some(k) = &cache_key {
        if let Some(c) = ctx.kv_get(k)?.and_then(|b| CachedFact::decode(&b)) {
            if c.fresh(now, ttl) {
                return Ok(Some(c.fact));
            }
        }
    }
    let req = UpstreamRequest {
        method: "GET".into(),
        path_and_query: format!("{}{}", cfg.upstream.base_path, res.preflight_path()),
        headers: vec![
            ("accept".into(), b"application/json".to_vec()),
            ("x-request-id".into(), ctx.rid.as_bytes().to_vec()),
        ],
        body: Vec::new(),
    };
    let resp = send(cfg, &req, ctx)?;
    let failed = |detail: String| {
        GatewayError::new(
            Kind::BadGateway,
            Reason::PreflightFailed,
            "an ownership check could not be completed",
        )
        .with_log_detail(detail)
    };
    match resp.status {
        200 => {
            let f = fact_from_body(res, &resp.body, &cfg.tenant_tag_key).ok_or_else(|| {
                failed(format!(
                    "unexpected pre-flight answer for {} {}",
                    res.kind(),
                    res.id()
                ))
            })?;
            // Only facts that cannot change through the gateway are cached: a tenant tag
            // (immutable here) and a run's / model's / trace's experiment; never "untagged".
            if let Some(k) = cache_key.filter(|_| !matches!(f, Fact::TenantTag(None))) {
                let entry = CachedFact {
                    fact: f.clone(),
                    at: now,
                };
                ctx.kv_set(&k, &entry.encode())?;
            }
            Ok(Some(f))
        }
        400 | 404 => Ok(None),
        s => Err(failed(format!(
            "pre-flight for {} {} answered {s}",
            res.kind(),
            res.id()
        ))),
    }
}

/// Runs one of the plan's state checks; the answers are fetched fresh, never from the cache.
fn verify(v: &Verify, cfg: &Config, ctx: &mut Ctx) -> Result<(), GatewayError> {
    match v {
        Verify::TraceLocation(id) => {
            let info = preflight_body(cfg, ctx, &format!("/api/2.0/mlflow/traces/{id}/info"))?;
            let exp = locations::trace_experiment(&info, id)?;
            let path = format!("/api/2.0/mlflow/experiments/get?experiment_id={exp}");
            let exp_body = preflight_body(cfg, ctx, &path)?;
            locations::check_trace_location(id, &info, &exp_body)
        }
        Verify::KeepsAnExperiment { dataset, removed } => {
            match fact(&Resource::Dataset(dataset.clone()), cfg, ctx)? {
                Some(Fact::InExperiments(linked)) => keeps_an_experiment(dataset, &linked, removed),
                _ => Err(GatewayError::internal(
                    "dataset fact missing after its ownership check",
                )),
            }
        }
    }
}

/// A pre-flight GET that must answer 200 (the resource was found by the ownership checks).
fn preflight_body(cfg: &Config, ctx: &mut Ctx, path: &str) -> Result<Vec<u8>, GatewayError> {
    let req = UpstreamRequest {
        method: "GET".into(),
        path_and_query: format!("{}{path}", cfg.upstream.base_path),
        headers: vec![
            ("accept".into(), b"application/json".to_vec()),
            ("x-request-id".into(), ctx.rid.as_bytes().to_vec()),
        ],
        body: Vec::new(),
    };
    let resp = send(cfg, &req, ctx)?;
    if resp.status != 200 {
        return Err(GatewayError::new(
            Kind::BadGateway,
            Reason::PreflightFailed,
            "a pre-flight check could not be completed",
        )
        .with_log_detail(format!("pre-flight {path} answered {}", resp.status)));
    }
    Ok(resp.body)
}

fn readyz(cfg: &Config, ctx: &mut Ctx) -> Result<HttpResponse, GatewayError> {
    ctx.audit.decision = "allow";
    ctx.audit.reason = "health";
    let req = UpstreamRequest {
        method: "GET".into(),
        path_and_query: format!("{}/health", cfg.upstream.base_path),
        headers: vec![("x-request-id".into(), ctx.rid.as_bytes().to_vec())],
        body: Vec::new(),
    };
    let mlflow_ok = matches!(send(cfg, &req, ctx), Ok(r) if r.status == 200);
    ctx.audit.upstream_status = None;
    let keys_ok = cfg
        .oidc
        .as_ref()
        .map(|oidc| current_keys(oidc, cfg, None, ctx).is_ok());
    let ready = mlflow_ok && keys_ok.unwrap_or(true);
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "mlflow": if mlflow_ok { "ok" } else { "unavailable" },
    });
    if let Some(k) = keys_ok {
        body["signing_keys"] = serde_json::Value::from(if k { "ok" } else { "unavailable" });
    }
    Ok(json_response(if ready { 200 } else { 503 }, body, &ctx.rid))
}

/// Maps a transport failure to 502/504 without upstream internals.
fn send_error(cfg: &Config, e: SendFailure, ctx: &Ctx) -> GatewayError {
    match e {
        SendFailure::Denied => GatewayError::config("Spin refused the outbound call to MLflow: upstream_origin must be in allowed_outbound_hosts"),
        SendFailure::Timeout => GatewayError::new(
            Kind::GatewayTimeout,
            Reason::UpstreamTimeout,
            "the MLflow server did not answer in time",
        )
        .with_log_detail(format!("upstream timeout ({}s) for request {}", cfg.request_timeout_seconds, ctx.rid)),
        SendFailure::Unreachable(d) => GatewayError::new(
            Kind::BadGateway,
            Reason::UpstreamUnreachable,
            "the MLflow server is unreachable",
        )
        .with_log_detail(format!("upstream unreachable: {d} (request {})", ctx.rid)),
        SendFailure::Reset(d) => GatewayError::new(
            Kind::BadGateway,
            Reason::UpstreamReset,
            "the connection to the MLflow server broke before its answer was complete",
        )
        .with_log_detail(format!("upstream connection broke: {d} (request {})", ctx.rid)),
        SendFailure::Truncated { got, expected } => GatewayError::new(
            Kind::BadGateway,
            Reason::UpstreamTruncated,
            "the MLflow server's answer was cut off",
        )
        .with_log_detail(format!(
            "upstream answer truncated: {got} of {expected} bytes (request {})",
            ctx.rid
        )),
    }
}

/// Sends to MLflow and reads the whole answer.
fn send(
    cfg: &Config,
    req: &UpstreamRequest,
    ctx: &mut Ctx,
) -> Result<UpstreamResponse, GatewayError> {
    ctx.check_deadline("the checks")?;
    let o = &cfg.upstream.origin;
    send_to(o.https, &o.authority, req, cfg.request_timeout_seconds)
        .map_err(|e| send_error(cfg, e, ctx))
}

/// Sends to MLflow and returns once its status and headers are in (the body unread).
fn start_send(
    cfg: &Config,
    req: &UpstreamRequest,
    body: OutBody<'_>,
    ctx: &mut Ctx,
) -> Result<Upstream, GatewayError> {
    ctx.check_deadline("the checks")?;
    let o = &cfg.upstream.origin;
    start(
        o.https,
        &o.authority,
        req,
        body,
        cfg.request_timeout_seconds,
    )
    .map_err(|e| send_error(cfg, e, ctx))
}
