//! Per-request state shared by the pipeline's steps (Pingora's CTX): the platform, the request
//! id, the audit record being filled in, and the deadline. The platform is private: every
//! key-value call and every outgoing call goes through a method here, so the deadline is
//! checked in one place, and there are exactly four doors out, each named for whose call it is:
//!
//! * `forward`: a client's request to MLflow, only as a `ClientRequest` (which only a
//!   `decision::Permit` makes), pinned to the caller's workspace;
//! * `preflight` / `pinned_call`: the gateway's own calls about the caller's data (ownership
//!   pre-flights, grants written by the grants endpoint), pinned the same way;
//! * `own_call`: the gateway's own calls outside any workspace (MLflow's health, `server-info`,
//!   the workspace API while provisioning), never with a client's header or body;
//! * `call_idp`: the identity provider (keys, discovery, token endpoint).

use super::host::{Answer, BodyError, Host, OutBody, SendFailure, UpstreamResponse};
use crate::audit::{operator_line, rfc3339, AuditRecord};
use crate::config::{Config, Origin};
use crate::error::{GatewayError, Reason};
use crate::forward::{ClientRequest, UpstreamRequest};
use crate::identity::{Identity, Principal};

/// A verified-token cache entry as this request found or wrote it.
pub struct TokenEntry {
    pub key: String,
    pub stored: Vec<u8>,
    /// The workspace the entry remembers as confirmed, with the time (`Verdict::workspace`).
    pub workspace: Option<(String, u64)>,
}

pub struct Ctx<'h, H: Host> {
    host: &'h mut H,
    pub rid: String,
    pub audit: AuditRecord,
    /// Wall-clock start (the audit line's `ts`).
    pub started_ms: u64,
    started_mono: u64,
    /// Request start + `request_timeout_seconds`, once the configuration is read.
    deadline_mono: Option<u64>,
    /// The workspace every request to MLflow is pinned to (`tenant_isolation=workspace`), once
    /// it is provisioned.
    workspace: Option<String>,
    /// The verified-token cache entry this request's principal came from or went to: the
    /// workspace step reads and remembers the tenant's workspace in it.
    pub token_entry: Option<TokenEntry>,
    /// `Set-Cookie` values for the response, whatever it turns out to be (a refreshed session
    /// on a forwarded answer, a cleared one on a refusal).
    pub cookies: Vec<String>,
}

impl<'h, H: Host> Ctx<'h, H> {
    pub fn new(host: &'h mut H, rid: String, audit: AuditRecord) -> Self {
        let started_ms = host.now_ms();
        let started_mono = host.monotonic_ms();
        Ctx {
            host,
            rid,
            audit,
            started_ms,
            started_mono,
            deadline_mono: None,
            workspace: None,
            cookies: Vec::new(),
            token_entry: None,
        }
    }

    /// Starts the deadline clock: the request must be decided and forwarded within
    /// `request_timeout_seconds` of its start.
    pub fn set_deadline(&mut self, cfg: &Config) {
        self.deadline_mono = Some(
            self.started_mono
                .saturating_add(cfg.request_timeout_seconds.saturating_mul(1000)),
        );
    }

    /// One operator log line (stderr).
    pub fn log(&mut self, level: &str, msg: &str) {
        let line = operator_line(&rfc3339(self.host.now_ms()), level, &self.rid, msg);
        self.host.log(&line);
    }

    /// Unix seconds now (token and cache times).
    pub fn now_s(&self) -> u64 {
        self.host.now_ms() / 1000
    }

    /// Refuses to act late. A host call the component cannot interrupt (Spin's Redis store has
    /// no timeout) may return long after the client gave up; whatever it returned, a request
    /// past its deadline is answered 503 and never forwarded, so an abandoned (and perhaps
    /// retried) write is not applied behind the client's back. Checked after every key-value
    /// call and before every outgoing call.
    pub fn check_deadline(&self, after: &str) -> Result<(), GatewayError> {
        let now = self.host.monotonic_ms();
        match self.deadline_mono {
            Some(d) if now > d => Err(GatewayError::new(
                Reason::DeadlineExceeded,
                "the gateway could not complete its checks in time; the request was not forwarded",
            )
            .with_log_detail(format!(
                "deadline exceeded after {after}: {} ms since the request started",
                now.saturating_sub(self.started_mono)
            ))),
            _ => Ok(()),
        }
    }

    /// One key-value call: a store failure denies the request (fail closed), and the deadline
    /// is checked after it, whatever it returned.
    fn kv<T>(
        &mut self,
        op: &str,
        after: &str,
        call: impl FnOnce(&mut H) -> Result<T, String>,
    ) -> Result<T, GatewayError> {
        let done =
            call(self.host).map_err(|e| GatewayError::kv_unavailable(format!("kv {op}: {e}")));
        self.check_deadline(after)?;
        done
    }

    pub fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, GatewayError> {
        self.kv("get", "a key-value read", |h| h.kv_get(key))
    }

    pub fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), GatewayError> {
        self.kv("set", "a key-value write", |h| h.kv_set(key, value))
    }

    pub fn kv_delete(&mut self, key: &str) -> Result<(), GatewayError> {
        self.kv("delete", "a key-value delete", |h| h.kv_delete(key))
    }

    /// An atomic counter increment (`Host::kv_increment`).
    pub fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, GatewayError> {
        self.kv("increment", "a key-value increment", |h| {
            h.kv_increment(key, delta)
        })
    }

    /// The caller, acting in its tenant, in the audit record.
    pub fn record_principal(&mut self, p: &Principal) {
        self.audit.tenant = Some(p.tenant.clone());
        self.audit.subject = Some(p.subject.clone());
        self.audit.roles = p.roles.iter().map(|r| r.as_str()).collect();
    }

    /// The caller as its credentials prove it (no tenant selected: its first).
    pub fn record_identity(&mut self, id: &Identity) {
        self.audit.subject = Some(id.subject.clone());
        if let Some(m) = id.memberships.first() {
            self.audit.tenant = Some(m.tenant.clone());
            self.audit.roles = m.roles.iter().map(|r| r.as_str()).collect();
        }
    }

    /// Whether calls to MLflow are pinned to a workspace (workspace mode, once settled).
    pub fn pinned(&self) -> bool {
        self.workspace.is_some()
    }

    /// Pins every later request to MLflow to the caller's workspace (once provisioned).
    pub fn pin(&mut self, workspace: String) {
        self.audit.workspace = Some(workspace.clone());
        self.workspace = Some(workspace);
    }

    /// Wall-clock milliseconds now.
    pub fn now_ms(&self) -> u64 {
        self.host.now_ms()
    }

    pub fn random_u64(&mut self) -> u64 {
        self.host.random_u64()
    }

    /// Every component variable, in one read.
    pub fn variables(&mut self) -> Result<Vec<(String, String)>, String> {
        self.host.variables()
    }

    /// Reads the client's body, holding at most `limit + 1` bytes.
    pub fn read_body(
        &mut self,
        body: H::ClientBody,
        declared: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, BodyError> {
        self.host.read_body(body, declared, limit)
    }

    /// The door for a client's request: the permitted request, sent once its head is in (the
    /// body unread). Pinned to the caller's workspace; in `workspace` mode nothing is sent
    /// without a pin (it would act in MLflow's `default` workspace).
    pub fn forward(
        &mut self,
        cfg: &Config,
        req: ClientRequest,
        body: OutBody<H::ClientBody>,
    ) -> Result<H::Answer, GatewayError> {
        self.start_pinned(cfg, req.into_request(), body)
    }

    /// The gateway's own `GET` about the caller's data (ownership pre-flights, state checks),
    /// pinned like a forward, read whole.
    pub fn preflight(
        &mut self,
        cfg: &Config,
        path: &str,
    ) -> Result<UpstreamResponse, GatewayError> {
        self.pinned_call(cfg, "GET", path, Vec::new())
    }

    /// The gateway's own call on the caller's data (a pre-flight, a grant written by the grants
    /// endpoint), pinned like a forward, read whole. `body` is JSON or empty.
    pub fn pinned_call(
        &mut self,
        cfg: &Config,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamResponse, GatewayError> {
        let req =
            UpstreamRequest::to_mlflow(method, &cfg.upstream.base_path, path, body, &self.rid);
        let answer = self.start_pinned(cfg, req, OutBody::Bytes)?;
        answer.read_all().map_err(|e| self.send_error(cfg, e))
    }

    /// The gateway's own call outside any workspace, read whole: only for calls that are not
    /// on a tenant's data (MLflow's health, `server-info`, the workspace API while
    /// provisioning). `body` is JSON or empty.
    pub fn own_call(
        &mut self,
        cfg: &Config,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamResponse, GatewayError> {
        let req =
            UpstreamRequest::to_mlflow(method, &cfg.upstream.base_path, path, body, &self.rid);
        let answer = self.send(cfg, &req, OutBody::Bytes)?;
        answer.read_all().map_err(|e| self.send_error(cfg, e))
    }

    /// A complete call to the identity provider, without MLflow's error mapping.
    pub fn call_idp(
        &mut self,
        origin: &Origin,
        req: &UpstreamRequest,
        timeout_secs: u64,
    ) -> Result<UpstreamResponse, SendFailure> {
        self.host
            .send(origin, req, OutBody::Bytes, timeout_secs)?
            .read_all()
    }

    /// Pins `req` (any workspace header in it dropped, the caller's added) and sends it.
    fn start_pinned(
        &mut self,
        cfg: &Config,
        mut req: UpstreamRequest,
        body: OutBody<H::ClientBody>,
    ) -> Result<H::Answer, GatewayError> {
        if cfg.isolation.workspace().is_some() && self.workspace.is_none() {
            return Err(GatewayError::internal(format!(
                "request to MLflow {} without a workspace pin",
                req.path_and_query
            )));
        }
        req.pin_workspace(self.workspace.as_deref());
        self.send(cfg, &req, body)
    }

    fn send(
        &mut self,
        cfg: &Config,
        req: &UpstreamRequest,
        body: OutBody<H::ClientBody>,
    ) -> Result<H::Answer, GatewayError> {
        self.check_deadline("the checks")?;
        self.host
            .send(&cfg.upstream.origin, req, body, cfg.request_timeout_seconds)
            .map_err(|e| self.send_error(cfg, e))
    }

    /// Maps a transport failure to 502/504 without upstream internals; the operator's line
    /// names the MLflow URL the gateway tried (`target_base_url`).
    pub fn send_error(&self, cfg: &Config, e: SendFailure) -> GatewayError {
        let rid = &self.rid;
        let url = format!(
            "{}{}",
            cfg.upstream.origin.as_string(),
            cfg.upstream.base_path
        );
        match e {
            SendFailure::Denied => GatewayError::config(format!("the platform refused the outbound call to MLflow at {url}: upstream_origin must be in allowed_outbound_hosts")),
            SendFailure::Timeout => GatewayError::new(Reason::UpstreamTimeout,
                "the MLflow server did not answer in time",
            )
            .with_log_detail(format!("upstream timeout ({}s, request_timeout_seconds) from MLflow at {url} (target_base_url) for request {rid}", cfg.request_timeout_seconds)),
            SendFailure::Unreachable(d) => GatewayError::new(Reason::UpstreamUnreachable,
                "the MLflow server is unreachable",
            )
            .with_log_detail(format!("upstream unreachable: MLflow at {url} (target_base_url): {d} (request {rid})")),
            SendFailure::Reset(d) => GatewayError::new(Reason::UpstreamReset,
                "the connection to the MLflow server broke before its answer was complete",
            )
            .with_log_detail(format!("upstream connection to MLflow at {url} (target_base_url) broke: {d} (request {rid})")),
            SendFailure::Truncated { got, expected } => GatewayError::new(Reason::UpstreamTruncated,
                "the MLflow server's answer was cut off",
            )
            .with_log_detail(format!(
                "upstream answer from MLflow at {url} (target_base_url) truncated: {got} of {expected} bytes (request {rid})"
            )),
        }
    }
}
