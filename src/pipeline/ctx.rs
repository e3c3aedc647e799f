//! Per-request state shared by the pipeline's steps (Pingora's CTX): the platform, the request
//! id, the audit record being filled in, and the deadline. Every key-value call and every
//! outgoing call goes through here, so the deadline is checked in one place.

use super::host::{Answer, Host, OutBody, SendFailure, UpstreamResponse};
use crate::audit::{operator_line, rfc3339, AuditRecord};
use crate::config::{Config, Origin};
use crate::error::{GatewayError, Reason};
use crate::forward::{pin_workspace, UpstreamRequest};

/// A verified-token cache entry as this request found or wrote it.
pub struct TokenEntry {
    pub key: String,
    pub stored: Vec<u8>,
    /// The workspace the entry remembers as confirmed, with the time (`Verdict::workspace`).
    pub workspace: Option<(String, u64)>,
}

pub struct Ctx<'h, H: Host> {
    pub host: &'h mut H,
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

    /// Whether calls to MLflow are pinned to a workspace (workspace mode, once settled).
    pub fn pinned(&self) -> bool {
        self.workspace.is_some()
    }

    /// Pins every later request to MLflow to the caller's workspace (once provisioned).
    pub fn pin(&mut self, workspace: String) {
        self.audit.workspace = Some(workspace.clone());
        self.workspace = Some(workspace);
    }

    /// Sends to MLflow and returns once its head is in (the body unread). Every request to
    /// MLflow on a tenant's behalf leaves here, so this is where the workspace is pinned: any
    /// workspace header in `req` is dropped and the caller's added; in `workspace` mode a
    /// request without a pin is never sent (it would act in MLflow's `default` workspace).
    pub fn start(
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
        pin_workspace(&mut req.headers, self.workspace.as_deref());
        self.start_unpinned(cfg, &req, body)
    }

    /// Sends to MLflow outside any workspace: only for the gateway's own calls that are not
    /// on a tenant's data (health, `server-info`, the workspace API while provisioning).
    pub fn start_unpinned(
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

    /// Sends to MLflow (pinned, as `start`) and reads the whole answer.
    pub fn send(
        &mut self,
        cfg: &Config,
        req: UpstreamRequest,
    ) -> Result<UpstreamResponse, GatewayError> {
        let answer = self.start(cfg, req, OutBody::Bytes)?;
        answer.read_all().map_err(|e| self.send_error(cfg, e))
    }

    /// Sends to MLflow outside any workspace (as `start_unpinned`) and reads the whole answer.
    pub fn send_unpinned(
        &mut self,
        cfg: &Config,
        req: &UpstreamRequest,
    ) -> Result<UpstreamResponse, GatewayError> {
        let answer = self.start_unpinned(cfg, req, OutBody::Bytes)?;
        answer.read_all().map_err(|e| self.send_error(cfg, e))
    }

    /// A complete GET to another origin (the IdP), without MLflow's error mapping.
    pub fn fetch(
        &mut self,
        origin: &Origin,
        req: &UpstreamRequest,
        timeout_secs: u64,
    ) -> Result<UpstreamResponse, SendFailure> {
        self.host
            .send(origin, req, OutBody::Bytes, timeout_secs)?
            .read_all()
    }

    /// Maps a transport failure to 502/504 without upstream internals.
    pub fn send_error(&self, cfg: &Config, e: SendFailure) -> GatewayError {
        let rid = &self.rid;
        match e {
            SendFailure::Denied => GatewayError::config("the platform refused the outbound call to MLflow: upstream_origin must be in allowed_outbound_hosts"),
            SendFailure::Timeout => GatewayError::new(Reason::UpstreamTimeout,
                "the MLflow server did not answer in time",
            )
            .with_log_detail(format!("upstream timeout ({}s) for request {rid}", cfg.request_timeout_seconds)),
            SendFailure::Unreachable(d) => GatewayError::new(Reason::UpstreamUnreachable,
                "the MLflow server is unreachable",
            )
            .with_log_detail(format!("upstream unreachable: {d} (request {rid})")),
            SendFailure::Reset(d) => GatewayError::new(Reason::UpstreamReset,
                "the connection to the MLflow server broke before its answer was complete",
            )
            .with_log_detail(format!("upstream connection broke: {d} (request {rid})")),
            SendFailure::Truncated { got, expected } => GatewayError::new(Reason::UpstreamTruncated,
                "the MLflow server's answer was cut off",
            )
            .with_log_detail(format!(
                "upstream answer truncated: {got} of {expected} bytes (request {rid})"
            )),
        }
    }
}
