//! Gateway configuration: every setting is a Spin variable declared in `spin.toml`.
//! Owns parsing and validation; a bad value is a `ConfigError` naming the variable, which the
//! shell turns into a 500 for every request (never a silent fallback to a weaker mode).

use crate::error::{GatewayError, Reason};
use crate::vocab::algorithm::Algorithm;
use crate::vocab::rbac::Role;

/// One Spin variable the component reads: its name, default (as written in `spin.toml`) and
/// what it does. Tests check `spin.toml` and README against this list.
pub struct VarSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every variable the component reads, with its default. `spin.toml` must declare exactly these.
pub const VARIABLES: &[VarSpec] = &[
    VarSpec { name: "auth_mode", default: "oidc", description: "`oidc` (validate bearer JWTs) or `off` (dev mode: trust `X-Tenant`/`X-Subject`/`X-Roles` headers)." },
    VarSpec { name: "upstream_origin", default: "http://127.0.0.1:5000", description: "Origin (`scheme://host[:port]`, no path) of the internal MLflow; used in `allowed_outbound_hosts`." },
    VarSpec { name: "target_base_url", default: "http://127.0.0.1:5000", description: "Base URL requests are forwarded to; must lie inside `upstream_origin`." },
    VarSpec { name: "tenant_tag_key", default: "tenant", description: "Tag key that records the owning tenant on experiments, runs, registered models (prompts) and model versions. Immutable through the gateway." },
    VarSpec { name: "request_timeout_seconds", default: "30", description: "Connect / first-byte / between-bytes timeout for calls to MLflow and the IdP (1-3600)." },
    VarSpec { name: "model_source_prefixes", default: "", description: "Comma list of extra URI prefixes a model version's `source` may use (e.g. `s3://models/{tenant}/`); `{tenant}` is replaced by the caller's tenant, so each tenant gets its own subtree. Empty: only the tenant's own runs, logged models and experiments." },
    VarSpec { name: "ownership_cache_seconds", default: "300", description: "How long an ownership fact (experiment → tenant, run → experiment) is reused from the key-value store (0 disables the cache)." },
    VarSpec { name: "oidc_issuer", default: "", description: "Expected `iss` of tokens (required in oidc mode); discovery uses `<issuer>/.well-known/openid-configuration`." },
    VarSpec { name: "oidc_audience", default: "", description: "Audience that must appear in `aud` (required in oidc mode)." },
    VarSpec { name: "jwks_uri", default: "", description: "JWKS URL; empty means discovery from the issuer. Must lie inside `idp_origin`." },
    VarSpec { name: "idp_origin", default: "https://idp.invalid", description: "Origin of the IdP (`scheme://host[:port]`); used in `allowed_outbound_hosts`. Issuer and JWKS URLs must lie inside it." },
    VarSpec { name: "tenant_claim", default: "tenant_id", description: "Dotted claim path holding the tenant id, or a list of tenant ids (e.g. `tenant_id`, `org.tenant`); the roles of `role_claim` apply in each." },
    VarSpec { name: "subject_claim", default: "sub", description: "Dotted claim path holding the subject (e.g. `sub`, `preferred_username`, `email`)." },
    VarSpec { name: "role_claim", default: "roles,groups", description: "Comma list of dotted claim paths whose string or array values are unioned into role names." },
    VarSpec { name: "group_claim", default: "groups", description: "Comma list of dotted claim paths whose string or array values are the caller's groups (for `group:` grants and `tenant_group_pattern`)." },
    VarSpec { name: "tenant_group_pattern", default: "", description: "Groups that make the caller a member of a tenant with a role, e.g. `mlflow/{tenant}/{role}` (the role through `role_aliases`); empty: tenants come from `tenant_claim` only." },
    VarSpec { name: "role_aliases", default: "viewer=viewer,editor=editor,admin=admin", description: "Comma list `idp-name=canonical-role` (viewer, editor, admin); exact, case-sensitive; unknown names ignored." },
    VarSpec { name: "default_role", default: "none", description: "Canonical role for a principal with no recognised role (`none` = denied everything)." },
    VarSpec { name: "dev_default_role", default: "admin", description: "Role in `auth_mode=off` when no `X-Roles` header is sent." },
    VarSpec { name: "allowed_algorithms", default: "RS256,RS384,RS512,PS256,ES256,ES384,EdDSA", description: "JWS algorithms accepted. `none` and HMAC algorithms are always refused." },
    VarSpec { name: "clock_skew_seconds", default: "60", description: "Leeway for `exp`/`nbf`/`iat` (0-600)." },
    VarSpec { name: "jwks_cache_seconds", default: "300", description: "JWKS older than this is refreshed." },
    VarSpec { name: "jwks_min_refresh_seconds", default: "30", description: "At most one JWKS fetch per this many seconds (unknown `kid`s cannot amplify requests)." },
    VarSpec { name: "jwks_max_stale_seconds", default: "3600", description: "Cached keys keep working this long past `jwks_cache_seconds` while the IdP is unreachable; then 503." },
    VarSpec { name: "protected_aliases", default: "", description: "Comma list of registered-model alias names (e.g. `champion,production`) that only MANAGE may set, move or delete; a version carrying one cannot be deleted, re-tagged or transitioned below MANAGE." },
    VarSpec { name: "webhook_allowed_hosts", default: "", description: "Workspace mode: comma list of hosts MLflow webhooks may target: `hooks.example.com` (optionally `:port`), `*.example.com`, or a CIDR network. Loopback, link-local, private and MLflow's own host pass only when named exactly. Empty: no webhook can be created or pointed anywhere. Set `MLFLOW_WEBHOOK_CACHE_TTL=0` on MLflow first (docs/genai.md)." },
    VarSpec { name: "enforcement", default: "enforce", description: "`enforce` refuses what the policy refuses; `report` (phased rollout) forwards, as enforce mode would have sent them (pinned to the caller's workspace), requests refused only for the caller's role or the owner of the object they act on, and audits them as `would_deny`. Credentials, routes, references, protected tags and parsing stay enforced. See docs/operations.md." },
    VarSpec { name: "tenant_isolation", default: "workspace", description: "How tenants are kept apart: `workspace` (each tenant an MLflow workspace pinned by the gateway; MLflow 3.10+ started with `--enable-workspaces`) or `tag` (tenant tags checked by the gateway; any MLflow 3.x, file stores included). See docs/isolation.md." },
    VarSpec { name: "workspace_provisioning", default: "auto", description: "`workspace` mode: `auto` creates a tenant's workspace on its first request; `manual` requires an operator to have created it (403 otherwise)." },
    VarSpec { name: "workspace_prefix", default: "", description: "`workspace` mode: prepended to the tenant id to form its workspace name (lowercase letters, digits, `-`; at most 40 characters). Tenant ids that are not valid workspace names get 403." },
    VarSpec { name: "rate_limit_window_seconds", default: "60", description: "Length of a rate-limit window (1-86400); limits count requests per window." },
    VarSpec { name: "rate_limit_tenant_reads", default: "0", description: "Read requests per window for one tenant, all its subjects together (0 = no limit)." },
    VarSpec { name: "rate_limit_tenant_writes", default: "0", description: "Write, delete and manage requests per window for one tenant (0 = no limit)." },
    VarSpec { name: "rate_limit_subject_reads", default: "0", description: "Read requests per window for one subject of a tenant (0 = no limit)." },
    VarSpec { name: "rate_limit_subject_writes", default: "0", description: "Write, delete and manage requests per window for one subject of a tenant (0 = no limit)." },
    VarSpec { name: "rate_limit_store_failure", default: "deny", description: "When the key-value store cannot count a limited request: `deny` (503, fail closed) or `allow` (forward it uncounted, with a warning)." },
    VarSpec { name: "token_cache_seconds", default: "300", description: "How long a fully verified bearer token's principal is reused from the key-value store instead of a new signature check; never past the token's `exp`, only while the same key is in the JWKS (0 disables)." },
    VarSpec { name: "oidc_client_id", default: "", description: "Browser sign-in (oidc mode): the gateway's confidential client at the IdP. Empty: browser sign-in is off and only bearer tokens are accepted. See docs/identity.md." },
    VarSpec { name: "oidc_client_secret", default: "", description: "Browser sign-in: the client's secret (a secret variable), sent with `client_secret_basic` to the token endpoint." },
    VarSpec { name: "oidc_redirect_url", default: "", description: "Browser sign-in: the gateway's `/oauth2/callback` as browsers reach it (e.g. `https://mlflow.example.com/oauth2/callback`); its origin is the gateway's own origin for the CSRF check. `https` except on loopback hosts." },
    VarSpec { name: "oidc_scopes", default: "openid", description: "Browser sign-in: space-separated scopes requested; they must yield an ID token, a JWT access token for `oidc_audience` with the tenant claim, and a refresh token (Okta and Entra ID: `offline_access`)." },
    VarSpec { name: "session_cookie_keys", default: "", description: "Browser sign-in: comma list of base64 keys of 32 bytes (a secret variable; `openssl rand -base64 32`) sealing the session cookie with AES-256-GCM. The first seals, all open: rotate by adding a new key in front." },
    VarSpec { name: "session_max_seconds", default: "43200", description: "Browser sign-in: a session ends this long after sign-in whatever its refreshes (1-2592000)." },
];

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
    pub tenant_group_pattern: Option<crate::identity::claims::GroupPattern>,
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
        write!(f, "invalid variable `{}`: {}", self.variable, self.reason)
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
        let get = |name: &'static str| -> Result<String, ConfigError> {
            lookup(name).map_err(|e| err(name, format!("cannot be read: {e}")))
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
                crate::identity::claims::GroupPattern::parse(raw)
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
        let (target_origin, base_path) = parse_url("target_base_url", &get("target_base_url")?)?;
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

    /// Defaults from `VARIABLES`, overridden by `over`.
    pub(crate) fn lookup_with(over: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, String> {
        let mut m: HashMap<String, String> = VARIABLES
            .iter()
            .map(|v| (v.name.to_string(), v.default.to_string()))
            .collect();
        for (k, v) in over {
            m.insert(k.to_string(), v.to_string());
        }
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
}
