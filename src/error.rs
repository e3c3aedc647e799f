//! Every way a request can fail, and the single place where a failure becomes an HTTP
//! response. Owns the status codes and MLflow's JSON error shape; never sees a token.
//!
//! Reason codes are snake_case strings shared by errors, audit lines and tests, so a denial can
//! be traced from the client's message to the audit trail to the test that covers it.

use serde_json::json;

/// Declares `Reason` with its stable code and `Reason::ALL`, so the list of reasons, their
/// codes and every table over them (`Reason::kind`, docs/audit.md, checked by a test) cannot
/// drift apart.
macro_rules! reasons {
    ($($variant:ident => $code:literal,)*) => {
        /// Why a request was denied or failed. `as_str` is the stable code written to audit lines.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($variant,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable snake_case code used in audit lines and asserted by tests.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $code,)*
                }
            }
        }
    };
}

reasons! {
    // --- identity ---
    TokenMissing => "token_missing",
    TokenMalformed => "token_malformed",
    TokenTooLarge => "token_too_large",
    TokenExpired => "token_expired",
    TokenNotYetValid => "token_not_yet_valid",
    BadSignature => "bad_signature",
    UnknownKid => "unknown_kid",
    AlgNotAllowed => "alg_not_allowed",
    WrongIssuer => "wrong_issuer",
    WrongAudience => "wrong_audience",
    MissingExp => "missing_exp",
    CritUnsupported => "crit_unsupported",
    TenantClaimInvalid => "tenant_claim_invalid",
    SubjectClaimInvalid => "subject_claim_invalid",
    JwksUnavailable => "jwks_unavailable",
    TenantHeaderMissing => "tenant_header_missing",
    TenantHeaderInvalid => "tenant_header_invalid",
    IdentityHeaderInOidcMode => "identity_header_in_oidc_mode",
    RolesHeaderInvalid => "roles_header_invalid",
    // --- browser sign-in ---
    SigninNotConfigured => "signin_not_configured",
    SigninStateInvalid => "signin_state_invalid",
    SigninRefusedByIdp => "signin_refused_by_idp",
    CodeExchangeRefused => "code_exchange_refused",
    NonceMismatch => "nonce_mismatch",
    ReturnPathInvalid => "return_path_invalid",
    SessionInvalid => "session_invalid",
    SessionExpired => "session_expired",
    SessionRefreshRefused => "session_refresh_refused",
    CsrfRefused => "csrf_refused",
    IdpUnavailable => "idp_unavailable",
    HeaderCookieRefused => "header_cookie_refused",
    CredentialsConflict => "credentials_conflict",
    MethodNotAllowed => "method_not_allowed",
    // --- request parsing (parser parity with MLflow) ---
    BadJson => "bad_json",
    DuplicateKey => "duplicate_key",
    CamelCaseAlias => "camel_case_alias",
    NonObjectBody => "non_object_body",
    BodyUnreadable => "body_unreadable",
    BodyOnRead => "body_on_read",
    QueryOnBodyMethod => "query_on_body_method",
    RepeatedQueryParam => "repeated_query_param",
    ConflictingIds => "conflicting_ids",
    MissingField => "missing_field",
    InvalidField => "invalid_field",
    BodyTooLarge => "body_too_large",
    InvalidPath => "invalid_path",
    // --- policy ---
    RouteNotAllowed => "route_not_allowed",
    RouteDenied => "route_denied",
    Rbac => "rbac",
    TenantMismatch => "tenant_mismatch",
    GrantDenied => "grant_denied",
    ResourceNotFound => "resource_not_found",
    ReservedTag => "reserved_tag",
    TagConflict => "tag_conflict",
    ArtifactLocationRefused => "artifact_location_refused",
    ScopeRequired => "scope_required",
    SourceRefused => "source_refused",
    LocationRefused => "location_refused",
    OrphanRefused => "orphan_refused",
    RootDeleteRefused => "root_delete_refused",
    WebhookUrlRefused => "webhook_url_refused",
    // --- workspace isolation ---
    WorkspaceHeaderInvalid => "workspace_header_invalid",
    WorkspaceNotMember => "workspace_not_member",
    WorkspaceNameInvalid => "workspace_name_invalid",
    WorkspaceMissing => "workspace_missing",
    WorkspacesDisabled => "workspaces_disabled",
    WorkspaceProvisioningFailed => "workspace_provisioning_failed",
    // --- load ---
    RateLimited => "rate_limited",
    // --- infrastructure ---
    ConfigInvalid => "config_invalid",
    ConfigUnreadable => "config_unreadable",
    KvUnavailable => "kv_unavailable",
    PreflightFailed => "preflight_failed",
    UpstreamUnreachable => "upstream_unreachable",
    UpstreamTimeout => "upstream_timeout",
    UpstreamReset => "upstream_reset",
    UpstreamTruncated => "upstream_truncated",
    DeadlineExceeded => "deadline_exceeded",
    Internal => "internal",
}

impl Reason {
    /// How a refusal for this reason is answered: the one table of reason → status. The only
    /// other answers are MLflow's own "absent" one (`GatewayError::as_absent`, for the named
    /// cases where a foreign object must look like a missing one) and 429 with its wait.
    pub fn kind(self) -> Kind {
        use Reason::*;
        match self {
            TokenMissing
            | TokenMalformed
            | TokenTooLarge
            | TokenExpired
            | TokenNotYetValid
            | BadSignature
            | UnknownKid
            | AlgNotAllowed
            | WrongIssuer
            | WrongAudience
            | MissingExp
            | CritUnsupported
            | SessionInvalid
            | SessionExpired
            | SessionRefreshRefused => Kind::Unauthenticated,
            TenantClaimInvalid
            | SubjectClaimInvalid
            | SigninStateInvalid
            | SigninRefusedByIdp
            | CodeExchangeRefused
            | NonceMismatch
            | CsrfRefused
            | HeaderCookieRefused
            | CredentialsConflict
            | RouteNotAllowed
            | RouteDenied
            | Rbac
            | TenantMismatch
            | GrantDenied
            | ResourceNotFound
            | ReservedTag
            | TagConflict
            | ArtifactLocationRefused
            | SourceRefused
            | LocationRefused
            | OrphanRefused
            | RootDeleteRefused
            | WebhookUrlRefused
            | WorkspaceNameInvalid
            | WorkspaceMissing
            | WorkspaceNotMember => Kind::Forbidden,
            TenantHeaderMissing
            | TenantHeaderInvalid
            | IdentityHeaderInOidcMode
            | RolesHeaderInvalid
            | ReturnPathInvalid
            | BadJson
            | DuplicateKey
            | CamelCaseAlias
            | NonObjectBody
            | BodyUnreadable
            | BodyOnRead
            | QueryOnBodyMethod
            | RepeatedQueryParam
            | ConflictingIds
            | MissingField
            | InvalidField
            | InvalidPath
            | ScopeRequired
            | WorkspaceHeaderInvalid => Kind::BadRequest,
            MethodNotAllowed => Kind::MethodNotAllowed,
            SigninNotConfigured => Kind::NotFound,
            BodyTooLarge => Kind::TooLarge,
            RateLimited => Kind::TooManyRequests,
            ConfigInvalid | WorkspacesDisabled => Kind::Config,
            Internal => Kind::Internal,
            PreflightFailed
            | UpstreamUnreachable
            | UpstreamReset
            | UpstreamTruncated
            | WorkspaceProvisioningFailed => Kind::BadGateway,
            JwksUnavailable | IdpUnavailable | ConfigUnreadable | KvUnavailable
            | DeadlineExceeded => Kind::Unavailable,
            UpstreamTimeout => Kind::GatewayTimeout,
        }
    }
}

/// The refusals `enforcement=report` forwards instead of enforcing (audited `would_deny`), and
/// only where they arise: the caller's role (`rbac`), and the owner of the object the request
/// itself acts on (`tenant_mismatch`, `resource_not_found`; also an answer check that would
/// have hidden a foreign row or object). The forward is the request enforce mode would have
/// sent, pinned to the caller's own workspace in workspace mode, so report mode never reaches
/// anything enforce mode could not. Every other refusal is enforced in every mode: missing or
/// invalid credentials (a request without an identity has no workspace to be pinned to), route
/// refusals (refused families such as the workspace API are server-wide), parsing, protected
/// tags, locations and sources, references to other objects (what a store cannot check:
/// a link from the caller's object to another tenant's), workspace and rate-limit refusals,
/// and every failed dependency. The same reasons raised anywhere else (a path naming another
/// workspace, a reference) stay enforced: see `pipeline::decision`.
pub const REPORTABLE: &[Reason] = &[
    Reason::Rbac,
    Reason::TenantMismatch,
    Reason::GrantDenied,
    Reason::ResourceNotFound,
];

/// The class of a failure; it alone decides the HTTP status and MLflow error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400 `INVALID_PARAMETER_VALUE`: the request is malformed or ambiguous.
    BadRequest,
    /// 401 `UNAUTHENTICATED` with an RFC 6750 `WWW-Authenticate` challenge.
    Unauthenticated,
    /// 403 `PERMISSION_DENIED`: policy refuses the request.
    Forbidden,
    /// 404 `RESOURCE_DOES_NOT_EXIST` in exactly MLflow's body: a registry object of another
    /// tenant is answered as an absent one (no existence oracle, and clients that probe for a
    /// name before creating it keep working).
    NotFound,
    /// 405 `BAD_REQUEST`: the gateway's own endpoints answer one method.
    MethodNotAllowed,
    /// 413 `INVALID_PARAMETER_VALUE`: body over the gateway's parse limit.
    TooLarge,
    /// 429 `REQUEST_LIMIT_EXCEEDED` with `Retry-After` (seconds): a rate limit is used up. The
    /// MLflow client retries 429 with backoff, honouring `Retry-After`.
    TooManyRequests,
    /// 501 `INTERNAL_ERROR`: a configuration that cannot work until an operator changes it (an
    /// invalid variable, an IdP whose issuer is not `oidc_issuer`, MLflow without workspaces
    /// in workspace mode); the log line names the variable or URL at fault, and for
    /// `config_invalid` the client sees only the error id. Not 500: the MLflow client retries
    /// 408, 429, 500, 502, 503 and 504 with backoff for about four minutes
    /// (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`), which would hide the message that long; 501 is
    /// MLflow's own status for what a server cannot do (`NOT_IMPLEMENTED`), so the client
    /// shows it at once. Never cached (`Cache-Control: no-store`).
    Config,
    /// 500 `INTERNAL_ERROR`: a bug; no details leave the gateway.
    Internal,
    /// 502 `BAD_GATEWAY`-like `TEMPORARILY_UNAVAILABLE`: MLflow could not be reached or a
    /// pre-flight answer could not be used.
    BadGateway,
    /// 503 `TEMPORARILY_UNAVAILABLE`: a dependency of the check itself (keys, KV) is down.
    Unavailable,
    /// 504: MLflow did not answer in `request_timeout_seconds`.
    GatewayTimeout,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest => 400,
            Kind::Unauthenticated => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::TooLarge => 413,
            Kind::TooManyRequests => 429,
            Kind::Config => 501,
            Kind::Internal => 500,
            Kind::BadGateway => 502,
            Kind::Unavailable => 503,
            Kind::GatewayTimeout => 504,
        }
    }

    fn error_code(self) -> &'static str {
        match self {
            Kind::BadRequest | Kind::TooLarge => "INVALID_PARAMETER_VALUE",
            Kind::MethodNotAllowed => "BAD_REQUEST",
            Kind::Unauthenticated => "UNAUTHENTICATED",
            Kind::Forbidden => "PERMISSION_DENIED",
            Kind::NotFound => "RESOURCE_DOES_NOT_EXIST",
            Kind::TooManyRequests => "REQUEST_LIMIT_EXCEEDED",
            Kind::Config | Kind::Internal => "INTERNAL_ERROR",
            Kind::BadGateway | Kind::Unavailable | Kind::GatewayTimeout => {
                "TEMPORARILY_UNAVAILABLE"
            }
        }
    }
}

/// A denied or failed request. `message` is safe to show to the client: it never contains a
/// token, a header value, upstream internals or the principal's claim set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub reason: Reason,
    pub message: String,
    /// Operator-only detail (e.g. the name of a bad variable); goes to the log, never the client.
    pub log_detail: Option<String>,
    /// Answered exactly as MLflow answers an absent object (`as_absent`).
    absent: bool,
    /// Seconds to wait before retrying (`rate_limited`).
    retry_after: Option<u64>,
}

/// A complete response produced by the pure core; the shell turns it into a Spin response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl GatewayError {
    /// A refusal for `reason`, answered with the reason's status (`Reason::kind`).
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        GatewayError {
            reason,
            message: message.into(),
            log_detail: None,
            absent: false,
            retry_after: None,
        }
    }
    /// A foreign object answered exactly as MLflow answers an absent one (404, MLflow's body,
    /// `message` its own text), so that "another tenant's" and "none" cannot be told apart: a
    /// registry name, a workspace name, an experiment looked up by name.
    pub fn as_absent(reason: Reason, mlflow_message: impl Into<String>) -> Self {
        GatewayError {
            absent: true,
            ..Self::new(reason, mlflow_message)
        }
    }
    /// A rate limit used up: 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64, message: impl Into<String>) -> Self {
        GatewayError {
            retry_after: Some(retry_after),
            ..Self::new(Reason::RateLimited, message)
        }
    }
    /// Invalid configuration: the client sees only the error id, `detail` (naming the variable)
    /// goes to the operator log.
    pub fn config(detail: impl Into<String>) -> Self {
        Self::new(Reason::ConfigInvalid, "gateway configuration is invalid").with_log_detail(detail)
    }
    /// The configuration could not be read at all (a variables provider such as Vault is
    /// unreachable): 503, which heals when the provider is back.
    pub fn config_unreadable(detail: impl Into<String>) -> Self {
        Self::new(
            Reason::ConfigUnreadable,
            "the gateway cannot read its configuration; try again later",
        )
        .with_log_detail(detail)
    }
    /// The key-value store failed: fail closed with 503.
    pub fn kv_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            Reason::KvUnavailable,
            "the gateway's key-value store is unavailable",
        )
        .with_log_detail(detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(Reason::Internal, "internal gateway error").with_log_detail(detail)
    }
    pub fn with_log_detail(mut self, detail: impl Into<String>) -> Self {
        self.log_detail = Some(detail.into());
        self
    }

    /// How this refusal is answered.
    pub fn kind(&self) -> Kind {
        if self.absent {
            Kind::NotFound
        } else {
            self.reason.kind()
        }
    }

    pub fn status(&self) -> u16 {
        self.kind().status()
    }

    fn error_code(&self) -> &'static str {
        self.kind().error_code()
    }

    /// The one place where a failure becomes a response. Every body is MLflow's JSON error
    /// shape and every response carries the request id (header and body).
    pub fn to_response(&self, request_id: &str) -> HttpResponse {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-request-id".to_string(), request_id.to_string()),
        ];
        let kind = self.kind();
        if kind == Kind::Unauthenticated {
            headers.push((
                "www-authenticate".to_string(),
                "Bearer realm=\"mlflow\", error=\"invalid_token\"".to_string(),
            ));
        }
        if kind == Kind::MethodNotAllowed {
            headers.push(("allow".to_string(), "GET".to_string()));
        }
        if let Some(wait) = self.retry_after {
            headers.push(("retry-after".to_string(), wait.to_string()));
        }
        if kind == Kind::Config {
            headers.push(("cache-control".to_string(), "no-store".to_string()));
        }
        if kind == Kind::NotFound {
            // Byte-identical to MLflow's own answer for an absent object: no request id in the
            // body (it is in the header), so foreign and absent cannot be told apart.
            return HttpResponse {
                status: 404,
                headers,
                body: crate::vocab::mlflow_errors::not_found_body(&self.message),
            };
        }
        let body = match self.reason {
            Reason::ConfigInvalid => json!({
                "error_code": self.error_code(),
                "message": format!(
                    "gateway configuration is invalid; operators: see the gateway log for error id {request_id}"
                ),
                "request_id": request_id,
            }),
            _ => json!({
                "error_code": self.error_code(),
                "message": format!("{} (request id: {request_id})", self.message),
                "request_id": request_id,
            }),
        };
        HttpResponse {
            status: self.status(),
            headers,
            body: body.to_string().into_bytes(),
        }
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_renders_mlflow_error_shape_with_request_id() {
        let e = GatewayError::new(Reason::TenantMismatch, "run belongs to another tenant");
        let r = e.to_response("req-1");
        assert_eq!(r.status, 403);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error_code"], "PERMISSION_DENIED");
        assert_eq!(v["request_id"], "req-1");
        assert!(v["message"].as_str().unwrap().contains("req-1"));
        assert!(r.headers.contains(&("x-request-id".into(), "req-1".into())));
    }

    #[test]
    fn unauthenticated_carries_rfc6750_challenge() {
        let r = GatewayError::new(Reason::TokenMissing, "missing bearer token").to_response("r");
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(k, v)| k == "www-authenticate"
            && v == "Bearer realm=\"mlflow\", error=\"invalid_token\""));
    }

    #[test]
    fn too_many_requests_is_429_with_retry_after() {
        let e = GatewayError::rate_limited(7, "slow down");
        let r = e.to_response("r");
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after".into(), "7".into())));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error_code"], "REQUEST_LIMIT_EXCEEDED");
    }

    #[test]
    fn one_status_per_reason_and_named_absent_answers() {
        // Absent answers are MLflow's own 404 body, whatever the reason's usual status.
        let absent = GatewayError::as_absent(Reason::TenantMismatch, "Workspace 'x' not found");
        let r = absent.to_response("r");
        assert_eq!(r.status, 404);
        assert!(!String::from_utf8(r.body).unwrap().contains("request id"));
        assert_eq!(GatewayError::new(Reason::TenantMismatch, "m").status(), 403);
        let m = GatewayError::new(Reason::MethodNotAllowed, "GET only").to_response("r");
        assert_eq!(m.status, 405);
        assert!(m.headers.contains(&("allow".into(), "GET".into())));
    }

    /// docs/audit.md's reason tables list every reason once, with the status `Reason::kind`
    /// answers (the leading number of its status column).
    #[test]
    fn audit_md_lists_every_reason_with_its_status() {
        let doc = include_str!("../docs/audit.md");
        for r in Reason::ALL {
            let row = format!("| `{}` | ", r.as_str());
            let found: Vec<&str> = doc.lines().filter(|l| l.starts_with(&row)).collect();
            assert_eq!(found.len(), 1, "docs/audit.md: one row for {}", r.as_str());
            let status: String = found[0][row.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            assert_eq!(
                status,
                r.kind().status().to_string(),
                "docs/audit.md: status of {}",
                r.as_str()
            );
        }
    }

    /// What cannot heal without an operator is answered with a status MLflow's client does not
    /// retry (its list: mlflow/utils/request_utils.py `_TRANSIENT_FAILURE_RESPONSE_CODES`), so
    /// people see the message at once; what can heal keeps a retried one.
    #[test]
    fn lasting_configuration_errors_are_not_retried_by_the_mlflow_client() {
        const RETRIED: [u16; 6] = [408, 429, 500, 502, 503, 504];
        for r in [Reason::ConfigInvalid, Reason::WorkspacesDisabled] {
            assert!(!RETRIED.contains(&r.kind().status()), "{}", r.as_str());
            assert!(r.kind().status() >= 500, "{}: a server fault", r.as_str());
        }
        for r in [
            Reason::ConfigUnreadable,
            Reason::JwksUnavailable,
            Reason::IdpUnavailable,
            Reason::KvUnavailable,
            Reason::UpstreamUnreachable,
            Reason::UpstreamTimeout,
        ] {
            assert!(RETRIED.contains(&r.kind().status()), "{}", r.as_str());
        }
        let w = GatewayError::new(Reason::WorkspacesDisabled, "no workspaces").to_response("r");
        assert_eq!(w.status, 501);
        assert!(String::from_utf8(w.body).unwrap().contains("no workspaces"));
        assert!(w
            .headers
            .contains(&("cache-control".into(), "no-store".into())));
    }

    #[test]
    fn config_error_hides_detail_from_client() {
        let e = GatewayError::new(Reason::ConfigInvalid, "bad")
            .with_log_detail("variable target_base_url: secret-ish detail");
        let r = e.to_response("id-9");
        let body = String::from_utf8(r.body).unwrap();
        assert_eq!(r.status, 501);
        assert!(body.contains("id-9"));
        assert!(!body.contains("target_base_url"));
    }
}
