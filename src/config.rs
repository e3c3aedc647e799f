//! Gateway configuration: one declaration (`SETTINGS`) of every setting, where it is given,
//! its default and its documentation (docs/configuration.md is generated from it). The
//! settings operators set per deployment, the secrets and the origins Spin templates into
//! `allowed_outbound_hosts` are Spin variables of their own; the rarely changed tuning shares
//! one variable, `settings`, one `name = value` a line. Spin resolves every declared variable
//! on every request, twice when the request calls out (docs/performance.md), so fewer variables
//! is less work per request; `settings` is parsed once per request.
//! Owns parsing and validation; a bad value is a `ConfigError` naming the setting, which the
//! shell turns into an error for every request (never a silent fallback to a weaker mode).

use crate::error::{GatewayError, Reason};
use crate::vocab::algorithm::Algorithm;
use crate::vocab::rbac::Role;
use std::collections::HashMap;

/// Where a setting is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Its own Spin variable, declared in `spin.toml` (`SPIN_VARIABLE_<NAME>`).
    Variable,
    /// A line of the `settings` variable.
    InSettings,
}

/// One setting: its name, where it is given, its default and what it does (the reference in
/// docs/configuration.md is made from these; a test keeps it, `spin.toml` and the manifests in
/// step).
pub struct Setting {
    pub name: &'static str,
    pub place: Place,
    /// As written in `spin.toml` for a variable; used when `settings` omits the name.
    pub default: &'static str,
    /// A secret variable (`secret = true` in `spin.toml`): never printed.
    pub secret: bool,
    pub description: &'static str,
    /// A value to show in the reference; empty for secrets.
    pub example: &'static str,
}

/// The variable that holds every `InSettings` setting.
pub const SETTINGS_VARIABLE: &str = "settings";

use Place::{InSettings, Variable};

/// Every setting the component reads.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    Setting { name: "auth_mode", place: Variable, default: "oidc", secret: false,
        description: r#"`oidc`: identity from a validated bearer JWT. `off`: dev mode, identity from the `X-Tenant` / `X-Subject` / `X-Roles` headers ([identity.md](identity.md#dev-mode-auth_modeoff)); never expose it. Any other value (also `OFF`, `none`) is a configuration error."#,
        example: r#"off"# },
    Setting { name: "upstream_origin", place: Variable, default: "http://127.0.0.1:5000", secret: false,
        description: r#"Origin of the internal MLflow (`scheme://host[:port]`, no path). It is templated into `allowed_outbound_hosts`, so Spin lets the component call nothing else but the IdP."#,
        example: r#"http://mlflow.mlflow.svc.cluster.local:5000"# },
    Setting { name: "target_base_url", place: InSettings, default: "", secret: false,
        description: r#"Base URL requests are forwarded to; empty: `upstream_origin` itself. Its origin must equal `upstream_origin`; a path, if any, is prepended to every forwarded path (only the root is tested, see [operations.md](operations.md#running-mlflow-behind-the-gateway))."#,
        example: r#"http://mlflow:5000"# },
    Setting { name: "tenant_tag_key", place: InSettings, default: "tenant", secret: false,
        description: r#"Tag key that records the owning tenant on experiments and runs; 1-250 characters of `[A-Za-z0-9._-]`. Clients can never set, change or delete it (any case or Unicode spelling). Never change it once data exists ([operations.md](operations.md#settings-that-must-not-change))."#,
        example: r#"mlflow.gateway.tenant"# },
    Setting { name: "request_timeout_seconds", place: InSettings, default: "30", secret: false,
        description: r#"Connect, first-byte and between-bytes timeout (1-3600) of every call to MLflow (forward and pre-flights) and to the IdP. MLflow too slow: 504 `upstream_timeout`. Also each request's deadline: a request still waiting on the key-value store this long after it arrived is answered 503 `deadline_exceeded` and never forwarded ([operations.md](operations.md#timeouts))."#,
        example: r#"60"# },
    Setting { name: "model_source_prefixes", place: InSettings, default: "", secret: false,
        description: r#"Comma list of extra URI prefixes a model version's `source` may use, each `scheme://host-or-bucket/path/` with a trailing `/`; `{tenant}` is replaced by the caller's tenant, so `s3://models/{tenant}/` gives each tenant its own subtree. `file:`, `runs:`, `models:` and `mlflow-artifacts:` cannot be listed (the gateway checks those itself). A prefix without `{tenant}` is shared by all tenants: use it only for read-only, non-sensitive locations."#,
        example: r#"s3://models/{tenant}/"# },
    Setting { name: "ownership_cache_seconds", place: InSettings, default: "300", secret: false,
        description: r#"How long an ownership fact (experiment → tenant, run, logged model or trace → experiment) is reused from the key-value store (0-86400; `0` disables the cache and every check asks MLflow)."#,
        example: r#"600"# },
    Setting { name: "oidc_issuer", place: Variable, default: "", secret: false,
        description: r#"Expected `iss`, compared exactly. Required when `auth_mode=oidc`. With `jwks_uri` empty, keys are discovered from `<issuer>/.well-known/openid-configuration`, so the issuer must then lie inside `idp_origin`."#,
        example: r#"https://sso.example.com/realms/mlflow"# },
    Setting { name: "oidc_audience", place: Variable, default: "", secret: false,
        description: r#"Audience that must appear in `aud` (string or array). Required when `auth_mode=oidc`."#,
        example: r#"mlflow"# },
    Setting { name: "jwks_uri", place: InSettings, default: "", secret: false,
        description: r#"JWKS URL. Empty: discovery from the issuer. Must lie inside `idp_origin`."#,
        example: r#"https://sso.example.com/realms/mlflow/protocol/openid-connect/certs"# },
    Setting { name: "idp_origin", place: Variable, default: "https://idp.invalid", secret: false,
        description: r#"Origin of the IdP (`scheme://host[:port]`), templated into `allowed_outbound_hosts`. The JWKS URL (configured or discovered) must lie inside it."#,
        example: r#"https://login.microsoftonline.com"# },
    Setting { name: "tenant_claim", place: InSettings, default: "tenant_id", secret: false,
        description: r#"Dotted claim path of the tenant id: one string, or a list of them (a member of several tenants; the roles of `role_claim` apply in each, the first is the default), each 1-63 characters `[A-Za-z0-9._-]` starting with a letter or digit, else 403 `tenant_claim_invalid`."#,
        example: r#"tid"# },
    Setting { name: "subject_claim", place: InSettings, default: "sub", secret: false,
        description: r#"Dotted claim path of the subject (audit `subject`, MLflow `user_id` and `mlflow.user` of new runs). Must be a printable string of at most 256 characters."#,
        example: r#"preferred_username"# },
    Setting { name: "role_claim", place: InSettings, default: "roles,groups", secret: false,
        description: r#"Comma list of dotted claim paths; their string or array-of-string values are unioned into role names."#,
        example: r#"resource_access.mlflow.roles,realm_access.roles"# },
    Setting { name: "group_claim", place: InSettings, default: "groups", secret: false,
        description: r#"Comma list of dotted claim paths; their string or array-of-string values are the caller's groups, the subjects of `group:` grants and the input of `tenant_group_pattern` ([authorization.md](authorization.md))."#,
        example: r#"groups,realm_access.groups"# },
    Setting { name: "tenant_group_pattern", place: InSettings, default: "", secret: false,
        description: r#"Groups that make the caller a member of a tenant with a role: `{tenant}` and `{role}` (each one path segment, the role through `role_aliases`) between literal text. Empty: tenants come from `tenant_claim` only. A caller may belong to several tenants ([authorization.md](authorization.md#several-tenants-per-person))."#,
        example: r#"/mlflow/{tenant}/{role}"# },
    Setting { name: "role_aliases", place: InSettings, default: "viewer=viewer,editor=editor,admin=admin", secret: false,
        description: r#"Comma list `idp-name=canonical-role` (`viewer`, `editor`, `admin`); exact, case-sensitive; unknown names are ignored ([rbac.md](rbac.md))."#,
        example: r#"mlflow-viewer=viewer,mlflow-editor=editor,mlflow-admin=admin"# },
    Setting { name: "default_role", place: InSettings, default: "none", secret: false,
        description: r#"Canonical role for a principal with no recognised role; `none` denies everything but `/healthz` and `/readyz`."#,
        example: r#"viewer"# },
    Setting { name: "dev_default_role", place: InSettings, default: "admin", secret: false,
        description: r#"Role in `auth_mode=off` when the request has no `X-Roles` header (`none` allowed)."#,
        example: r#"viewer"# },
    Setting { name: "allowed_algorithms", place: InSettings, default: "RS256,RS384,RS512,PS256,ES256,ES384,EdDSA", secret: false,
        description: r#"JWS algorithms accepted, from RS256/384/512, PS256/384/512, ES256/384, EdDSA. `none` and any `HS*` are configuration errors (never accepted)."#,
        example: r#"ES256"# },
    Setting { name: "clock_skew_seconds", place: InSettings, default: "60", secret: false,
        description: r#"Leeway (0-600) for `exp`, `nbf` and `iat`."#,
        example: r#"30"# },
    Setting { name: "jwks_cache_seconds", place: InSettings, default: "300", secret: false,
        description: r#"Keys older than this are refetched (0-86400)."#,
        example: r#"600"# },
    Setting { name: "jwks_min_refresh_seconds", place: InSettings, default: "30", secret: false,
        description: r#"At most one JWKS fetch per this many seconds (0-86400), whatever the tokens say: random `kid`s cannot make the gateway hammer the IdP."#,
        example: r#"60"# },
    Setting { name: "jwks_max_stale_seconds", place: InSettings, default: "3600", secret: false,
        description: r#"How long cached keys keep working past `jwks_cache_seconds` while the IdP is unreachable (0-604800); then 503 `jwks_unavailable`."#,
        example: r#"7200"# },
    Setting { name: "protected_aliases", place: InSettings, default: "", secret: false,
        description: r#"Comma list of registered-model alias names (compared without regard to case) that only `MANAGE` may set, move or delete; a model version carrying one cannot be deleted, have its tags changed or be transitioned below `MANAGE`. Ordinary aliases are edit-class ([authorization.md](authorization.md#protected-aliases))."#,
        example: r#"champion,production"# },
    Setting { name: "webhook_allowed_hosts", place: InSettings, default: "", secret: false,
        description: r#"Workspace mode: the hosts MLflow webhooks may target, as a comma list of exact hosts (optionally with the one port admitted, `hooks.example.com:8443`, `[fd00::5]:9000`), `*.` domain suffixes or CIDR networks. A loopback, link-local, private or unspecified address, `localhost`, and MLflow's own host pass only when an entry names them exactly; `http` only to an exactly named host. Empty: no webhook can be created or repointed. Before listing anything, run MLflow with `MLFLOW_WEBHOOK_CACHE_TTL=0` ([genai.md](genai.md#webhooks))."#,
        example: r#"hooks.example.com,*.ci.example.org"# },
    Setting { name: "enforcement", place: Variable, default: "enforce", secret: false,
        description: r#"`enforce`: refusals are refusals. `report`: a phased rollout ([operations.md](operations.md#report-only-rollout)); a request refused only for the caller's role (`rbac`) or for the owner of the object it acts on (`tenant_mismatch`, `resource_not_found`) is forwarded exactly as enforce mode would have sent it (rewritten, pinned to the caller's own workspace) and audited `decision: would_deny` with the reason, a `warn` line each; everything else (credentials, routes, references to other objects, protected tags, parsing, locations, workspace and rate limits, failed dependencies) stays enforced. `/readyz` reports the mode. Never leave it on."#,
        example: r#"report"# },
    Setting { name: "tenant_isolation", place: Variable, default: "workspace", secret: false,
        description: r#"How tenants are kept apart ([isolation.md](isolation.md)). `workspace`: each tenant is an MLflow workspace, pinned by the gateway on every call to MLflow (MLflow 3.10+ started with `--enable-workspaces`, SQL backend); the gateway refuses to serve (readiness 503, 501 `workspaces_disabled`) while MLflow does not report workspaces enabled. `tag`: tenant tags checked by the gateway, for an older MLflow or a file store."#,
        example: r#"tag"# },
    Setting { name: "workspace_provisioning", place: InSettings, default: "auto", secret: false,
        description: r#"`workspace` mode: `auto` creates a tenant's workspace on its first request (through MLflow's workspace API; remembered in the key-value store for `ownership_cache_seconds`); `manual` leaves creating workspaces to an operator, and a tenant without one gets 403 `workspace_missing`."#,
        example: r#"manual"# },
    Setting { name: "workspace_prefix", place: InSettings, default: "", secret: false,
        description: r#"`workspace` mode: the workspace of tenant `t` is this prefix + `t`, unchanged (lowercase letters, digits and `-`, at most 40 characters). A tenant id that does not form a valid MLflow workspace name (2-63 lowercase letters, digits, `-`; not `default`, `api`, …) gets 403 `workspace_name_invalid`; never rewritten, so two tenants never share a workspace."#,
        example: r#"mlflow-"# },
    Setting { name: "rate_limit_window_seconds", place: InSettings, default: "60", secret: false,
        description: r#"Length (1-86400) of the fixed window the limits below count in ([operations.md](operations.md#rate-limits))."#,
        example: r#"60"# },
    Setting { name: "rate_limit_tenant_reads", place: InSettings, default: "0", secret: false,
        description: r#"Read requests per window for one tenant, all its subjects together; `0` = no limit. The UI shell and capability probes (static files, `version`, `server-info`) are not counted."#,
        example: r#"6000"# },
    Setting { name: "rate_limit_tenant_writes", place: InSettings, default: "0", secret: false,
        description: r#"Write, delete and manage requests per window for one tenant; `0` = no limit."#,
        example: r#"3000"# },
    Setting { name: "rate_limit_subject_reads", place: InSettings, default: "0", secret: false,
        description: r#"Read requests per window for one subject (per tenant); `0` = no limit."#,
        example: r#"1200"# },
    Setting { name: "rate_limit_subject_writes", place: InSettings, default: "0", secret: false,
        description: r#"Write, delete and manage requests per window for one subject (per tenant); `0` = no limit. Over a limit: 429 `REQUEST_LIMIT_EXCEEDED` with `Retry-After` (the seconds left in the window), which the MLflow client retries."#,
        example: r#"600"# },
    Setting { name: "rate_limit_store_failure", place: InSettings, default: "deny", secret: false,
        description: r#"What a limited request gets when the key-value store cannot count it: `deny` (503 `kv_unavailable`, fail closed, as every other store failure) or `allow` (forwarded uncounted, a `warn` line per request). Only requests that a limit applies to are affected."#,
        example: r#"allow"# },
    Setting { name: "token_cache_seconds", place: InSettings, default: "300", secret: false,
        description: r#"How long (0-86400) the principal of a fully verified bearer token is reused from the key-value store instead of a new signature check (~3 ms of WebAssembly per RS256 token). A cached verdict only stands while the token's own `exp`/`nbf` window holds, the key it selects in the current JWKS is the one that verified it, and the claim mapping is unchanged; anything else is checked in full ([identity.md](identity.md#verified-token-cache)). `0` verifies every request."#,
        example: r#"60"# },
    Setting { name: "oidc_client_id", place: Variable, default: "", secret: false,
        description: r#"Browser sign-in ([identity.md](identity.md#browser-sign-in)): the gateway's confidential client at the IdP (authorization-code flow with PKCE). Empty: browser sign-in is off, `/oauth2/*` answers 404 and only bearer tokens are accepted."#,
        example: r#"mlflow-gateway"# },
    Setting { name: "oidc_client_secret", place: Variable, default: "", secret: true,
        description: r#"Browser sign-in: the client's secret, sent with `client_secret_basic` to the token endpoint. Required with `oidc_client_id`."#,
        example: r#""# },
    Setting { name: "oidc_redirect_url", place: Variable, default: "", secret: false,
        description: r#"Browser sign-in: the gateway's `/oauth2/callback` exactly as browsers reach it and as registered at the IdP. Its origin is the gateway's own origin: cookie-borne POSTs must carry it in `Origin`, and the IdP's logout returns to `<origin>/`. Must be `https` (the session cookie is `Secure`) except on `127.0.0.1`, `localhost`, `[::1]`. Required with `oidc_client_id`."#,
        example: r#"https://mlflow.example.com/oauth2/callback"# },
    Setting { name: "oidc_scopes", place: InSettings, default: "openid", secret: false,
        description: r#"Browser sign-in: space-separated scopes; must include `openid`. Together they must yield an ID token, a JWT access token whose `aud` is `oidc_audience` and that carries the tenant claim and roles as bearer tokens do, and a refresh token (Okta, Entra ID: `offline_access`; Entra ID: the API scope that makes the token's audience the gateway's)."#,
        example: r#"openid offline_access api://mlflow/access"# },
    Setting { name: "session_cookie_keys", place: Variable, default: "", secret: true,
        description: r#"Browser sign-in: comma list of 32-byte keys in base64 (`openssl rand -base64 32`) sealing the session cookie (AES-256-GCM). The first key seals; every listed key opens: rotate by putting a new key first and dropping the old one after `session_max_seconds`. Required with `oidc_client_id`."#,
        example: r#""# },
    Setting { name: "session_max_seconds", place: InSettings, default: "43200", secret: false,
        description: r#"Browser sign-in: a session ends this long (1-2592000) after sign-in whatever its refreshes; the browser is then sent to sign in again."#,
        example: r#"28800"# },
    Setting { name: "settings", place: Variable, default: "", secret: false,
        description: r#"The settings below this table, one `name = value` a line (or separated by `;`); blank lines and lines starting with `#` are ignored. A name given twice, a name that is not a setting of this table, or a variable's name is a configuration error (a typo never goes unnoticed). Names left out keep their defaults."#,
        example: r#"rate_limit_tenant_writes = 3000; protected_aliases = champion,production"# },
];

/// The setting called `name` (every name the parser asks for is declared).
fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The `settings` variable read: each `InSettings` name given, with its value. Refuses a line
/// without `=`, an unknown or repeated name, and a variable's name.
pub fn parse_settings(raw: &str) -> Result<HashMap<&'static str, String>, ConfigError> {
    let mut out = HashMap::new();
    for (i, entry) in raw.split(['\n', ';']).enumerate() {
        let entry = entry.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let at = |why: String| {
            err(
                SETTINGS_VARIABLE,
                format!("entry {} (`{entry}`): {why}", i + 1),
            )
        };
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| at("must look like `name = value`".into()))?;
        let name = name.trim();
        let spec = setting(name).ok_or_else(|| at(format!("`{name}` is not a setting")))?;
        if spec.place == Variable {
            return Err(at(format!(
                "`{name}` is a variable of its own: set it as SPIN_VARIABLE_{}",
                name.to_ascii_uppercase()
            )));
        }
        if out.insert(spec.name, value.trim().to_string()).is_some() {
            return Err(at(format!("`{name}` is given twice")));
        }
    }
    Ok(out)
}

/// Which identity source is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer JWTs validated against the IdP's JWKS (production).
    Oidc,
    /// Development: identity from `X-Tenant` / `X-Subject` / `X-Roles` headers.
    Off,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Oidc => "oidc",
            AuthMode::Off => "off",
        }
    }
}

/// A parsed `scheme://authority` plus optional base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    /// `host[:port]`, lowercase host.
    pub authority: String,
}

impl Origin {
    pub fn as_string(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.authority
        )
    }
}

/// A dotted claim path, split (`resource_access.mlflow.roles`).
pub type ClaimPath = Vec<String>;
/// An IdP role name and the canonical role it stands for.
pub type RoleAlias = (String, Role);

/// Where allowed requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    pub origin: Origin,
    /// Path prefix without trailing slash ("" for none).
    pub base_path: String,
}

impl UpstreamTarget {
    /// MLflow's host, without port or IPv6 brackets (lowercase).
    pub fn host(&self) -> &str {
        let a = self.origin.authority.as_str();
        if let Some(v6) = a.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        a.rsplit_once(':').map_or(a, |(h, _)| h)
    }
}

/// OIDC settings, present only in `auth_mode=oidc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    /// Explicit JWKS URL, or `None` for discovery.
    pub jwks_uri: Option<String>,
    pub idp_origin: Origin,
    pub allowed_algorithms: Vec<Algorithm>,
    pub clock_skew_seconds: u64,
    pub jwks_cache_seconds: u64,
    pub jwks_min_refresh_seconds: u64,
    pub jwks_max_stale_seconds: u64,
    /// See `identity::token_cache`; 0 disables it.
    pub token_cache_seconds: u64,
    /// Browser sign-in (`identity::session`), when `oidc_client_id` is set.
    pub browser: Option<BrowserConfig>,
}

/// A secret variable's value: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Browser sign-in settings (docs/identity.md, "Browser sign-in").
#[derive(Clone, PartialEq, Eq)]
pub struct BrowserConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// `/oauth2/callback` as browsers reach it.
    pub redirect_url: String,
    /// The gateway's own origin, from `redirect_url`.
    pub public_origin: Origin,
    pub scopes: String,
    /// The first seals; all open.
    pub cookie_keys: Vec<[u8; 32]>,
    pub session_max_seconds: u64,
}

impl std::fmt::Debug for BrowserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserConfig")
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("cookie_keys", &self.cookie_keys.len())
            .field("session_max_seconds", &self.session_max_seconds)
            .finish_non_exhaustive()
    }
}

/// How tenants are kept apart (`tenant_isolation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// Tenant tags on MLflow's objects, checked by the gateway on every route.
    Tag,
    /// Each tenant an MLflow workspace, pinned by the gateway on every request to MLflow; the
    /// tag checks stay on as a second wall (docs/isolation.md).
    Workspace(WorkspaceConfig),
}

impl Isolation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Isolation::Tag => "tag",
            Isolation::Workspace(_) => "workspace",
        }
    }

    pub fn workspace(&self) -> Option<&WorkspaceConfig> {
        match self {
            Isolation::Workspace(w) => Some(w),
            Isolation::Tag => None,
        }
    }
}

/// `workspace` mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceConfig {
    /// Prepended to the tenant id (`vocab::workspace_name::for_tenant`).
    pub prefix: String,
    /// Create a missing workspace on the tenant's first request (`auto`), or refuse (`manual`).
    pub auto_provision: bool,
}

impl WorkspaceConfig {
    /// The tenant's workspace name, or 403 `workspace_name_invalid` when the tenant id cannot
    /// be one: the pipeline pins it, the planner compares paths and sources with it.
    pub fn workspace_of(&self, tenant: &str) -> Result<String, GatewayError> {
        crate::vocab::workspace_name::for_tenant(&self.prefix, tenant)
            .map_err(|why| GatewayError::new(Reason::WorkspaceNameInvalid, why))
    }
}

/// Requests allowed per window for one holder (0 = no limit), split by action class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    pub reads: u64,
    pub writes: u64,
}

/// The rate limits (`rate_limit_*`), counted in the key-value store (`pipeline::ratelimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub window_seconds: u64,
    pub tenant: Quota,
    pub subject: Quota,
    /// Forward uncounted when the store fails (`allow`); else 503 (`deny`, the default).
    pub fail_open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub auth_mode: AuthMode,
    pub isolation: Isolation,
    /// `enforcement=report`: authorization refusals are forwarded and audited as `would_deny`.
    pub report_only: bool,
    pub rate_limits: RateLimits,
    pub upstream: UpstreamTarget,
    pub tenant_tag_key: String,
    pub request_timeout_seconds: u64,
    pub ownership_cache_seconds: u64,
    /// Extra model-version source prefixes; `{tenant}` is expanded per request.
    pub model_source_prefixes: Vec<String>,
    pub oidc: Option<OidcConfig>,
    pub tenant_claim: Vec<String>,
    pub subject_claim: Vec<String>,
    pub role_claims: Vec<Vec<String>>,
    pub group_claims: Vec<ClaimPath>,
    pub tenant_group_pattern: Option<crate::vocab::group_pattern::GroupPattern>,
    /// Alias names only MANAGE may set, move or delete (`protected_aliases`).
    pub protected_aliases: Vec<String>,
    /// Hosts webhooks may target (`webhook_allowed_hosts`); empty: none.
    pub webhook_allowed_hosts: Vec<crate::mlflow::webhooks::AllowedHost>,
    pub role_aliases: Vec<(String, Role)>,
    pub default_role: Option<Role>,
    pub dev_default_role: Option<Role>,
}

/// A variable with an unusable value. `Display` names the variable (for the operator log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match setting(self.variable).map(|s| s.place) {
            Some(InSettings) => "setting",
            _ => "variable",
        };
        write!(f, "invalid {kind} `{}`: {}", self.variable, self.reason)
    }
}

fn err(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

/// Parses `scheme://host[:port]` with nothing after it (a trailing `/` is tolerated, as Spin's
/// `allowed_outbound_hosts` does).
pub fn parse_origin(variable: &'static str, raw: &str) -> Result<Origin, ConfigError> {
    let (url, path) = parse_url(variable, raw)?;
    if !path.is_empty() && path != "/" {
        return Err(err(
            variable,
            "must be an origin (scheme://host[:port]) without a path",
        ));
    }
    Ok(url)
}

/// Splits an absolute http(s) URL into origin and path; refuses query, fragment, userinfo.
pub fn parse_url(variable: &'static str, raw: &str) -> Result<(Origin, String), ConfigError> {
    let raw = raw.trim();
    let (https, rest) = if let Some(r) = raw.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = raw.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(err(variable, "must start with http:// or https://"));
    };
    if rest.contains(['?', '#', '@', '\\', ' ']) {
        return Err(err(
            variable,
            "must not contain a query, fragment, userinfo or spaces",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(err(variable, "has no host"));
    }
    let valid = authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !valid {
        return Err(err(variable, "host contains invalid characters"));
    }
    if let Some((_, port)) = authority.rsplit_once(':') {
        if !authority.starts_with('[') && port.parse::<u16>().is_err() {
            return Err(err(variable, "port is not a number"));
        }
    }
    Ok((
        Origin {
            https,
            authority: authority.to_ascii_lowercase(),
        },
        path.to_string(),
    ))
}

fn parse_u64(variable: &'static str, raw: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let v: u64 = raw
        .trim()
        .parse()
        .map_err(|_| err(variable, "must be a whole number"))?;
    if v < min || v > max {
        return Err(err(variable, format!("must be between {min} and {max}")));
    }
    Ok(v)
}

/// A dotted claim path: non-empty segments of `[A-Za-z0-9_:-]`.
/// A comma list of dotted claim paths.
fn claim_paths(variable: &'static str, raw: &str) -> Result<Vec<ClaimPath>, ConfigError> {
    raw.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| parse_claim_path(variable, part))
        .collect()
}

fn parse_claim_path(variable: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    let raw = raw.trim();
    let segs: Vec<String> = raw.split('.').map(str::to_string).collect();
    if raw.is_empty()
        || segs.iter().any(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
        })
    {
        return Err(err(
            variable,
            "must be a dotted claim path such as `tenant_id` or `org.tenant`",
        ));
    }
    Ok(segs)
}

fn parse_role_opt(variable: &'static str, raw: &str) -> Result<Option<Role>, ConfigError> {
    match raw.trim() {
        "none" | "" => Ok(None),
        other => Role::parse(other)
            .map(Some)
            .ok_or_else(|| err(variable, "must be one of none, viewer, editor, admin")),
    }
}

/// The tenant tag key goes into filter strings inside backticks: keep it to a safe charset.
fn parse_tag_key(raw: &str) -> Result<String, ConfigError> {
    let k = raw.trim();
    let ok = !k.is_empty()
        && k.len() <= 250
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(err(
            "tenant_tag_key",
            "must be 1-250 characters of [A-Za-z0-9._-]",
        ));
    }
    Ok(k.to_string())
}

/// `scheme://authority/...` prefixes ending in `/`, so a prefix can never match a sibling
/// (`s3://b/team-a` would also match `s3://b/team-ab`). Local schemes are refused: a local
/// path source reads the MLflow server's own disk.
fn parse_source_prefixes(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| err("model_source_prefixes", format!("`{p}`: {why}"));
        let (scheme, rest) = p
            .split_once("://")
            .ok_or_else(|| bad("must look like scheme://bucket/path/"))?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(bad("invalid scheme"));
        }
        if matches!(
            scheme.to_ascii_lowercase().as_str(),
            "file" | "runs" | "models" | "mlflow-artifacts"
        ) {
            return Err(bad(
                "this scheme is checked by the gateway itself and cannot be allowed wholesale",
            ));
        }
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() || authority.contains('{') || !p.ends_with('/') {
            return Err(bad(
                "needs a host or bucket, no placeholder in it, and a trailing `/`",
            ));
        }
        if p.contains("..")
            || p.contains('%')
            || p.contains('\\')
            || p.contains('?')
            || p.contains('#')
        {
            return Err(bad("must not contain `..`, `%`, `\\`, `?` or `#`"));
        }
        let without = p.replace("{tenant}", "");
        if without.contains(['{', '}']) {
            return Err(bad("the only placeholder is `{tenant}`"));
        }
        out.push(p.to_string());
    }
    Ok(out)
}

impl Config {
    /// Reads every variable through `lookup` (the pipeline passes the component variables it read
    /// with one `wasi:config/store.get-all` call).
    /// A lookup failure is a configuration error naming that variable.
    pub fn from_lookup<F>(lookup: F) -> Result<Config, ConfigError>
    where
        F: Fn(&str) -> Result<String, String>,
    {
        let settings = parse_settings(
            &lookup(SETTINGS_VARIABLE)
                .map_err(|e| err(SETTINGS_VARIABLE, format!("cannot be read: {e}")))?,
        )?;
        let get = |name: &'static str| -> Result<String, ConfigError> {
            match setting(name) {
                Some(s) if s.place == InSettings => Ok(settings
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| s.default.to_string())),
                _ => lookup(name).map_err(|e| err(name, format!("cannot be read: {e}"))),
            }
        };

        let auth_mode = match get("auth_mode")?.trim() {
            "oidc" => AuthMode::Oidc,
            "off" => AuthMode::Off,
            _ => return Err(err("auth_mode", "must be `oidc` or `off`")),
        };

        let upstream = Self::upstream_from(&get)?;

        let tenant_tag_key = parse_tag_key(&get("tenant_tag_key")?)?;
        let request_timeout_seconds = parse_u64(
            "request_timeout_seconds",
            &get("request_timeout_seconds")?,
            1,
            3600,
        )?;
        let ownership_cache_seconds = parse_u64(
            "ownership_cache_seconds",
            &get("ownership_cache_seconds")?,
            0,
            86_400,
        )?;

        let model_source_prefixes = parse_source_prefixes(&get("model_source_prefixes")?)?;

        let tenant_claim = parse_claim_path("tenant_claim", &get("tenant_claim")?)?;
        let subject_claim = parse_claim_path("subject_claim", &get("subject_claim")?)?;
        let (role_claims, role_aliases) = Self::roles_from(&get)?;
        let group_claims = claim_paths("group_claim", &get("group_claim")?)?;
        let tenant_group_pattern = match get("tenant_group_pattern")?.trim() {
            "" => None,
            raw => Some(
                crate::vocab::group_pattern::GroupPattern::parse(raw)
                    .map_err(|why| err("tenant_group_pattern", why))?,
            ),
        };
        let protected_aliases = get("protected_aliases")?
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        let webhook_allowed_hosts = get("webhook_allowed_hosts")?
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(crate::mlflow::webhooks::AllowedHost::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| err("webhook_allowed_hosts", why))?;
        let default_role = parse_role_opt("default_role", &get("default_role")?)?;
        let dev_default_role = parse_role_opt("dev_default_role", &get("dev_default_role")?)?;

        let isolation = Self::isolation_from(&get)?;

        let report_only = match get("enforcement")?.trim() {
            "enforce" => false,
            "report" => true,
            _ => return Err(err("enforcement", "must be `enforce` or `report`")),
        };
        let rate_limits = Self::rate_limits_from(&get)?;

        let oidc = match auth_mode {
            AuthMode::Off => None,
            AuthMode::Oidc => Some(Self::oidc_from(&get)?),
        };

        Ok(Config {
            auth_mode,
            isolation,
            report_only,
            rate_limits,
            upstream,
            tenant_tag_key,
            request_timeout_seconds,
            ownership_cache_seconds,
            model_source_prefixes,
            oidc,
            tenant_claim,
            subject_claim,
            role_claims,
            group_claims,
            tenant_group_pattern,
            protected_aliases,
            webhook_allowed_hosts,
            role_aliases,
            default_role,
            dev_default_role,
        })
    }

    /// Where allowed requests go: `upstream_origin` and `target_base_url` inside it.
    fn upstream_from(
        get: &dyn Fn(&'static str) -> Result<String, ConfigError>,
    ) -> Result<UpstreamTarget, ConfigError> {
        let upstream_origin = parse_origin("upstream_origin", &get("upstream_origin")?)?;
        let target = get("target_base_url")?;
        let target = if target.trim().is_empty() {
            get("upstream_origin")?
        } else {
            target
        };
        let (target_origin, base_path) = parse_url("target_base_url", &target)?;
        if target_origin != upstream_origin {
            return Err(err(
                "target_base_url",
                format!(
                    "origin {} is not `upstream_origin` ({}); Spin would refuse the outbound call",
                    target_origin.as_string(),
                    upstream_origin.as_string()
                ),
            ));
        }
        let base_path = base_path.trim_end_matches('/').to_string();
        Ok(UpstreamTarget {
            origin: upstream_origin,
            base_path,
        })
    }

    /// The role claims and the IdP-name → role aliases.
    fn roles_from(
        get: &dyn Fn(&'static str) -> Result<String, ConfigError>,
    ) -> Result<(Vec<ClaimPath>, Vec<RoleAlias>), ConfigError> {
        let role_claims = claim_paths("role_claim", &get("role_claim")?)?;

        let mut role_aliases = Vec::new();
        for pair in get("role_aliases")?
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let (name, role) = pair
                .split_once('=')
                .ok_or_else(|| err("role_aliases", "entries must look like `idp-name=viewer`"))?;
            let role = Role::parse(role.trim()).ok_or_else(|| {
                err(
                    "role_aliases",
                    "the role after `=` must be viewer, editor or admin",
                )
            })?;
            if name.trim().is_empty() {
                return Err(err("role_aliases", "an entry has an empty IdP name"));
            }
            role_aliases.push((name.trim().to_string(), role));
        }
        Ok((role_claims, role_aliases))
    }

    /// `tenant_isolation` and, in workspace mode, provisioning and the name prefix.
    fn isolation_from(
        get: &dyn Fn(&'static str) -> Result<String, ConfigError>,
    ) -> Result<Isolation, ConfigError> {
        Ok(match get("tenant_isolation")?.trim() {
            "tag" => Isolation::Tag,
            "workspace" => {
                let auto_provision = match get("workspace_provisioning")?.trim() {
                    "auto" => true,
                    "manual" => false,
                    _ => return Err(err("workspace_provisioning", "must be `auto` or `manual`")),
                };
                let prefix = get("workspace_prefix")?.trim().to_string();
                crate::vocab::workspace_name::check_prefix(&prefix)
                    .map_err(|why| err("workspace_prefix", why))?;
                Isolation::Workspace(WorkspaceConfig {
                    prefix,
                    auto_provision,
                })
            }
            _ => return Err(err("tenant_isolation", "must be `workspace` or `tag`")),
        })
    }

    /// The rate limits (`rate_limit_*`).
    fn rate_limits_from(
        get: &dyn Fn(&'static str) -> Result<String, ConfigError>,
    ) -> Result<RateLimits, ConfigError> {
        let limit = |name: &'static str| -> Result<u64, ConfigError> {
            parse_u64(name, &get(name)?, 0, 1_000_000_000)
        };
        Ok(RateLimits {
            window_seconds: parse_u64(
                "rate_limit_window_seconds",
                &get("rate_limit_window_seconds")?,
                1,
                86_400,
            )?,
            tenant: Quota {
                reads: limit("rate_limit_tenant_reads")?,
                writes: limit("rate_limit_tenant_writes")?,
            },
            subject: Quota {
                reads: limit("rate_limit_subject_reads")?,
                writes: limit("rate_limit_subject_writes")?,
            },
            fail_open: match get("rate_limit_store_failure")?.trim() {
                "deny" => false,
                "allow" => true,
                _ => return Err(err("rate_limit_store_failure", "must be `deny` or `allow`")),
            },
        })
    }

    fn oidc_from(
        get: &dyn Fn(&'static str) -> Result<String, ConfigError>,
    ) -> Result<OidcConfig, ConfigError> {
        let idp_origin = parse_origin("idp_origin", &get("idp_origin")?)?;
        let issuer = get("oidc_issuer")?.trim().to_string();
        if issuer.is_empty() {
            return Err(err("oidc_issuer", "is required when auth_mode=oidc"));
        }
        let (issuer_origin, _) = parse_url("oidc_issuer", &issuer)?;
        let audience = get("oidc_audience")?.trim().to_string();
        if audience.is_empty() {
            return Err(err("oidc_audience", "is required when auth_mode=oidc"));
        }
        let jwks_raw = get("jwks_uri")?.trim().to_string();
        let jwks_uri = if jwks_raw.is_empty() {
            // Discovery fetches from the issuer, so the issuer must be reachable.
            if issuer_origin != idp_origin {
                return Err(err(
                    "oidc_issuer",
                    format!(
                        "discovery needs the issuer inside `idp_origin` ({}); set idp_origin or jwks_uri",
                        idp_origin.as_string()
                    ),
                ));
            }
            None
        } else {
            let (jwks_origin, _) = parse_url("jwks_uri", &jwks_raw)?;
            if jwks_origin != idp_origin {
                return Err(err(
                    "jwks_uri",
                    format!("must lie inside `idp_origin` ({})", idp_origin.as_string()),
                ));
            }
            Some(jwks_raw)
        };
        let mut allowed_algorithms = Vec::new();
        for name in get("allowed_algorithms")?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let upper = name.to_ascii_uppercase();
            if upper == "NONE" || upper.starts_with("HS") {
                return Err(err(
                    "allowed_algorithms",
                    format!(
                        "`{name}` is never allowed (RFC 8725: no `none`, no HMAC with public keys)"
                    ),
                ));
            }
            let alg = Algorithm::parse(name)
                .ok_or_else(|| err("allowed_algorithms", format!("unknown algorithm `{name}`")))?;
            allowed_algorithms.push(alg);
        }
        if allowed_algorithms.is_empty() {
            return Err(err(
                "allowed_algorithms",
                "must name at least one algorithm",
            ));
        }
        let browser = Self::browser_from(get)?;
        Ok(OidcConfig {
            browser,
            issuer,
            audience,
            jwks_uri,
            idp_origin,
            allowed_algorithms,
            clock_skew_seconds: parse_u64(
                "clock_skew_seconds",
                &get("clock_skew_seconds")?,
                0,
                600,
            )?,
            jwks_cache_seconds: parse_u64(
                "jwks_cache_seconds",
                &get("jwks_cache_seconds")?,
                0,
                86_400,
            )?,
            jwks_min_refresh_seconds: parse_u64(
                "jwks_min_refresh_seconds",
                &get("jwks_min_refresh_seconds")?,
                0,
                86_400,
            )?,
            token_cache_seconds: parse_u64(
                "token_cache_seconds",
                &get("token_cache_seconds")?,
                0,
                86_400,
            )?,
            jwks_max_stale_seconds: parse_u64(
                "jwks_max_stale_seconds",
                &get("jwks_max_stale_seconds")?,
                0,
                7 * 86_400,
            )?,
        })
    }

    /// Browser sign-in settings; `None` when `oidc_client_id` is empty.
    fn browser_from(
        get: &dyn Fn(&'static str) -> Result<String, ConfigError>,
    ) -> Result<Option<BrowserConfig>, ConfigError> {
        let client_id = get("oidc_client_id")?.trim().to_string();
        if client_id.is_empty() {
            return Ok(None);
        }
        let client_secret = get("oidc_client_secret")?.trim().to_string();
        if client_secret.is_empty() {
            return Err(err(
                "oidc_client_secret",
                "is required when oidc_client_id is set (browser sign-in)",
            ));
        }
        let redirect_url = get("oidc_redirect_url")?.trim().to_string();
        if redirect_url.is_empty() {
            return Err(err(
                "oidc_redirect_url",
                "is required when oidc_client_id is set (browser sign-in)",
            ));
        }
        let (public_origin, path) = parse_url("oidc_redirect_url", &redirect_url)?;
        if path != "/oauth2/callback" {
            return Err(err(
                "oidc_redirect_url",
                "must be the gateway's `/oauth2/callback` (e.g. https://mlflow.example.com/oauth2/callback)",
            ));
        }
        let host = public_origin
            .authority
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(public_origin.authority.as_str(), |(h, _)| h);
        if !public_origin.https && !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(err(
                "oidc_redirect_url",
                "must be https (the session cookie is `Secure`); plain http only on loopback hosts",
            ));
        }
        let scopes = get("oidc_scopes")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !scopes.split(' ').any(|s| s == "openid") {
            return Err(err("oidc_scopes", "must include `openid`"));
        }
        let mut cookie_keys = Vec::new();
        for k in get("session_cookie_keys")?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            use base64::Engine;
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE,
            ];
            let key = engines
                .iter()
                .find_map(|e| e.decode(k).ok())
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| {
                    err(
                        "session_cookie_keys",
                        "each key must be 32 bytes in base64 (openssl rand -base64 32)",
                    )
                })?;
            cookie_keys.push(key);
        }
        if cookie_keys.is_empty() {
            return Err(err(
                "session_cookie_keys",
                "is required when oidc_client_id is set (browser sign-in)",
            ));
        }
        Ok(Some(BrowserConfig {
            client_id,
            client_secret: Secret(client_secret),
            redirect_url,
            public_origin,
            scopes,
            cookie_keys,
            session_max_seconds: parse_u64(
                "session_max_seconds",
                &get("session_max_seconds")?,
                1,
                30 * 86_400,
            )?,
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The Spin variables that give `pairs` (setting name, value): a variable's own value, and
    /// every `InSettings` setting folded into `settings`, one a line (what an operator writes).
    pub(crate) fn as_variables(pairs: &[(String, String)]) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = Vec::new();
        let mut lines = Vec::new();
        for (k, v) in pairs {
            match setting(k).map(|s| s.place) {
                Some(InSettings) => lines.push(format!("{k} = {v}")),
                _ => {
                    vars.retain(|(n, _)| n != k);
                    vars.push((k.clone(), v.clone()));
                }
            }
        }
        if !lines.is_empty() {
            let given = vars
                .iter()
                .find(|(n, _)| n == SETTINGS_VARIABLE)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            vars.retain(|(n, _)| n != SETTINGS_VARIABLE);
            let mut all: Vec<String> = given.lines().map(str::to_string).collect();
            // A later value for a name replaces an earlier one, as `set_var` callers expect.
            for l in lines {
                let name = l.split(" = ").next().unwrap_or_default().to_string();
                all.retain(|x| x.split(" = ").next() != Some(name.as_str()));
                all.push(l);
            }
            vars.push((SETTINGS_VARIABLE.to_string(), all.join("\n")));
        }
        vars
    }

    /// Variables at their defaults, with the settings of `over`.
    pub(crate) fn lookup_with(over: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, String> {
        let pairs: Vec<(String, String)> = over
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut m: HashMap<String, String> = SETTINGS
            .iter()
            .filter(|s| s.place == Variable)
            .map(|s| (s.name.to_string(), s.default.to_string()))
            .collect();
        m.extend(as_variables(&pairs));
        move |k: &str| m.get(k).cloned().ok_or_else(|| format!("undefined {k}"))
    }

    /// Dev mode, tag isolation: the planning tests judge tag-mode rules.
    pub(crate) fn dev_config() -> Config {
        Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("tenant_isolation", "tag"),
        ]))
        .unwrap()
    }

    /// Dev mode, workspace isolation (spin.toml's default).
    pub(crate) fn workspace_config() -> Config {
        Config::from_lookup(lookup_with(&[("auth_mode", "off")])).unwrap()
    }

    #[test]
    fn isolation_settings() {
        let c = workspace_config();
        assert_eq!(
            c.isolation,
            Isolation::Workspace(WorkspaceConfig {
                prefix: String::new(),
                auto_provision: true
            })
        );
        for (var, bad) in [
            ("tenant_isolation", "workspaces"),
            ("workspace_provisioning", "lazy"),
            ("workspace_prefix", "Team-"),
        ] {
            let e =
                Config::from_lookup(lookup_with(&[("auth_mode", "off"), (var, bad)])).unwrap_err();
            assert_eq!(e.variable, var);
        }
        // Workspace settings are not read in tag mode.
        let c = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("tenant_isolation", "tag"),
            ("workspace_prefix", "Team-"),
        ]))
        .unwrap();
        assert_eq!(c.isolation, Isolation::Tag);
    }

    pub(crate) fn oidc_config() -> Config {
        Config::from_lookup(lookup_with(&[
            ("oidc_issuer", "https://idp.example.com/realms/r"),
            ("oidc_audience", "mlflow"),
            ("idp_origin", "https://idp.example.com"),
        ]))
        .unwrap()
    }

    #[test]
    fn defaults_in_oidc_mode_name_the_missing_issuer() {
        let e = Config::from_lookup(lookup_with(&[])).unwrap_err();
        assert_eq!(e.variable, "oidc_issuer");
    }

    #[test]
    fn dev_mode_defaults_parse() {
        let c = dev_config();
        assert_eq!(c.auth_mode, AuthMode::Off);
        assert_eq!(c.upstream.origin.authority, "127.0.0.1:5000");
        assert_eq!(c.tenant_tag_key, "tenant");
        assert_eq!(c.dev_default_role, Some(Role::Admin));
        assert_eq!(c.default_role, None);
    }

    #[test]
    fn bad_target_base_url_is_named() {
        for bad in ["ftp://x", "http://", "http://h:99999", "http://a b"] {
            let e = Config::from_lookup(lookup_with(&[
                ("auth_mode", "off"),
                ("target_base_url", bad),
            ]))
            .unwrap_err();
            assert_eq!(e.variable, "target_base_url", "{bad}");
        }
        let e = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("target_base_url", "http://10.0.0.1:5000"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "target_base_url");
    }

    #[test]
    fn upstream_origin_must_be_an_origin() {
        let e = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("upstream_origin", "http://127.0.0.1:5000/mlflow"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "upstream_origin");
    }

    #[test]
    fn base_path_is_kept_without_trailing_slash() {
        let c = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("target_base_url", "http://127.0.0.1:5000/mlflow/"),
        ]))
        .unwrap();
        assert_eq!(c.upstream.base_path, "/mlflow");
    }

    #[test]
    fn unknown_auth_mode_is_refused_not_downgraded() {
        let e = Config::from_lookup(lookup_with(&[("auth_mode", "OFF ")])).unwrap_err();
        assert_eq!(e.variable, "auth_mode");
        let e = Config::from_lookup(lookup_with(&[("auth_mode", "none")])).unwrap_err();
        assert_eq!(e.variable, "auth_mode");
    }

    #[test]
    fn hmac_and_none_algorithms_are_config_errors() {
        for alg in ["HS256", "none", "RS256,HS512"] {
            let e = Config::from_lookup(lookup_with(&[
                ("oidc_issuer", "https://idp.example.com"),
                ("oidc_audience", "a"),
                ("idp_origin", "https://idp.example.com"),
                ("allowed_algorithms", alg),
            ]))
            .unwrap_err();
            assert_eq!(e.variable, "allowed_algorithms", "{alg}");
        }
    }

    #[test]
    fn jwks_outside_idp_origin_is_refused() {
        let e = Config::from_lookup(lookup_with(&[
            ("oidc_issuer", "https://idp.example.com"),
            ("oidc_audience", "a"),
            ("idp_origin", "https://idp.example.com"),
            ("jwks_uri", "https://evil.example.net/jwks"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "jwks_uri");
        let e = Config::from_lookup(lookup_with(&[
            ("oidc_issuer", "https://other.example.com"),
            ("oidc_audience", "a"),
            ("idp_origin", "https://idp.example.com"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "oidc_issuer");
    }

    #[test]
    fn oidc_config_parses() {
        let c = oidc_config();
        let o = c.oidc.unwrap();
        assert_eq!(o.clock_skew_seconds, 60);
        assert_eq!(o.allowed_algorithms.len(), 7);
        assert!(o.jwks_uri.is_none());
    }

    #[test]
    fn role_aliases_and_claims_parse() {
        let c = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            (
                "role_aliases",
                "mlflow-readers=viewer, ml-engineers=editor,mlflow-admins=admin",
            ),
            ("role_claim", "roles, realm_access.roles"),
        ]))
        .unwrap();
        assert_eq!(
            c.role_aliases[1],
            ("ml-engineers".to_string(), Role::Editor)
        );
        assert_eq!(
            c.role_claims[1],
            vec!["realm_access".to_string(), "roles".to_string()]
        );
        let e = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("role_aliases", "x=root"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "role_aliases");
    }

    #[test]
    fn tenant_tag_key_charset_is_enforced() {
        let e = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("tenant_tag_key", "a`b"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "tenant_tag_key");
    }

    #[test]
    fn model_source_prefixes_are_strict() {
        let c = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            (
                "model_source_prefixes",
                " s3://models/{tenant}/ , gs://shared-ro/ ",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.model_source_prefixes,
            vec!["s3://models/{tenant}/", "gs://shared-ro/"]
        );
        for bad in [
            "s3://models/{tenant}",
            "file:///srv/",
            "mlflow-artifacts://x/",
            "s3://{tenant}/",
            "s3://b/../",
            "s3://b/{team}/",
            "/local/",
        ] {
            let e = Config::from_lookup(lookup_with(&[
                ("auth_mode", "off"),
                ("model_source_prefixes", bad),
            ]))
            .unwrap_err();
            assert_eq!(e.variable, "model_source_prefixes", "{bad}");
        }
    }

    #[test]
    fn settings_are_lines_of_known_names() {
        let m = parse_settings(
            "# tuning\nrate_limit_tenant_reads = 10\n\n role_aliases = a=viewer,b=admin ; protected_aliases=champion",
        )
        .unwrap();
        assert_eq!(m["rate_limit_tenant_reads"], "10");
        assert_eq!(m["role_aliases"], "a=viewer,b=admin");
        assert_eq!(m["protected_aliases"], "champion");
        for (bad, why) in [
            ("rate_limit_tenant_read = 10", "is not a setting"),
            (
                "clock_skew_seconds = 1\nclock_skew_seconds = 2",
                "given twice",
            ),
            ("auth_mode = off", "SPIN_VARIABLE_AUTH_MODE"),
            ("just words", "name = value"),
        ] {
            let e = parse_settings(bad).unwrap_err();
            assert_eq!(e.variable, SETTINGS_VARIABLE, "{bad}");
            assert!(e.reason.contains(why), "{bad}: {}", e.reason);
        }
        // A setting's bad value names the setting, not the variable that carries it.
        let e = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("request_timeout_seconds", "9999"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "request_timeout_seconds");
        assert!(e
            .to_string()
            .starts_with("invalid setting `request_timeout_seconds`"));
        // An empty target_base_url is upstream_origin itself.
        let c = Config::from_lookup(lookup_with(&[
            ("auth_mode", "off"),
            ("upstream_origin", "http://mlflow:5000"),
        ]))
        .unwrap();
        assert_eq!(c.upstream.origin.as_string(), "http://mlflow:5000");
        assert_eq!(c.upstream.base_path, "");
    }

    /// The lines of a `spin.toml` table, up to the next table.
    fn table<'a>(manifest: &'a str, header: &str) -> Vec<&'a str> {
        let body = manifest.split(header).nth(1).expect("table exists");
        body.lines()
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn spin_toml_declares_exactly_the_variables() {
        let manifest = include_str!("../spin.toml");
        let declared = table(manifest, "\n[variables]");
        let mapped = table(manifest, "\n[component.gateway.variables]");
        let expected: Vec<&Setting> = SETTINGS.iter().filter(|s| s.place == Variable).collect();
        assert_eq!(declared.len(), expected.len(), "{declared:?}");
        assert_eq!(mapped.len(), expected.len(), "{mapped:?}");
        for s in expected {
            let line = declared
                .iter()
                .find(|l| l.starts_with(&format!("{} = ", s.name)))
                .unwrap_or_else(|| panic!("{} not declared", s.name));
            assert!(
                line.contains(&format!("default = \"{}\"", s.default)),
                "{line}"
            );
            assert_eq!(line.contains("secret = true"), s.secret, "{line}");
            assert!(
                mapped.contains(&format!("{0} = \"{{{{ {0} }}}}\"", s.name).as_str()),
                "{} not mapped",
                s.name
            );
        }
    }

    /// The reference tables of docs/configuration.md, as the declaration makes them.
    fn reference(place: Place) -> String {
        let mut out = String::from(if place == Variable {
            "| Variable | Default | Description | Example |\n|---|---|---|---|\n"
        } else {
            "| Setting | Default | Description | Example |\n|---|---|---|---|\n"
        });
        for s in SETTINGS.iter().filter(|s| s.place == place) {
            let default = if s.default.is_empty() {
                "*(empty)*".to_string()
            } else {
                format!("`{}`", s.default)
            };
            let example = if s.secret {
                "*(from a secret)*".to_string()
            } else if s.example.is_empty() {
                String::new()
            } else {
                format!("`{}`", s.example)
            };
            out.push_str(&format!(
                "| `{}` | {default} | {}{} | {example} |\n",
                s.name,
                s.description,
                if s.secret { " A secret variable (`secret = true`): set it from a Kubernetes Secret or Vault, never in a manifest." } else { "" }
            ));
        }
        out
    }

    #[test]
    fn docs_configuration_md_is_the_declaration() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let mut doc = std::fs::read_to_string(path).expect("docs/configuration.md exists");
        let mut stale = false;
        for (place, tag) in [(Variable, "VARIABLES"), (InSettings, "SETTINGS")] {
            let begin = format!(
                "<!-- BEGIN {tag} (generated from src/config.rs: UPDATE_DOCS=1 cargo test) -->\n"
            );
            let end = format!("<!-- END {tag} -->");
            let start = doc.find(&begin).expect("BEGIN marker") + begin.len();
            let stop = doc.find(&end).expect("END marker");
            let want = reference(place);
            if doc[start..stop] != want {
                stale = true;
                doc = format!("{}{}{}", &doc[..start], want, &doc[stop..]);
            }
        }
        if stale {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                std::fs::write(path, doc).expect("write docs/configuration.md");
            } else {
                panic!("docs/configuration.md is out of date with src/config.rs SETTINGS; run UPDATE_DOCS=1 cargo test");
            }
        }
    }
}
