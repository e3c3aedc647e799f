//! The identity step: who is calling. Dev mode trusts the `X-Tenant` headers; OIDC mode takes
//! a browser's session cookie through `pipeline::signin` when no `Authorization` header is
//! sent, and otherwise checks the bearer token against the IdP's keys, kept in the key-value store and refreshed by the
//! rules of `identity::jwks`, and reuses an earlier full check when `identity::token_cache`
//! says it still stands.

use super::ctx::{Ctx, TokenEntry};
use super::host::{Host, SendFailure};
use crate::config::{AuthMode, Config, OidcConfig};
use crate::error::{GatewayError, Reason};
use crate::forward::UpstreamRequest;
use crate::identity::jwks::{self, DiscoveryError, JwksRecord};
use crate::identity::session::{self, SESSION_COOKIE};
use crate::identity::token_cache::Slot;
use crate::identity::{claims, dev, jwt, Principal};
use crate::request::Incoming;

pub fn authenticate<H: Host>(
    inc: &Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Principal, GatewayError> {
    match (&cfg.auth_mode, &cfg.oidc) {
        (AuthMode::Off, _) => {
            if inc.has_header("authorization") {
                ctx.log(
                    "warn",
                    "auth_mode=off: Authorization header ignored and not forwarded",
                );
            }
            dev::authenticate(inc, cfg)
        }
        (AuthMode::Oidc, Some(oidc)) => {
            refuse_header_cookies(inc, oidc, ctx)?;
            for h in ["x-tenant", "x-subject", "x-roles"] {
                if inc.has_header(h) {
                    return Err(GatewayError::new(
                        Reason::IdentityHeaderInOidcMode,
                        format!("header {h} is not accepted: in oidc mode identity comes only from the bearer token"),
                    ));
                }
            }
            if inc.has_header("authorization") {
                // A browser's session and a bearer token in one request: one of them is not
                // the caller's choice (an extension or a planted header), so neither is used.
                let with_session = oidc.browser.is_some()
                    && !matches!(
                        session::cookie_value(&inc.header_values("cookie"), SESSION_COOKIE),
                        Ok(None)
                    );
                if with_session {
                    return Err(GatewayError::new(
                        Reason::CredentialsConflict,
                        "the request carries both the browser's session cookie and an Authorization header; send one of them: the session (the MLflow UI) or a bearer token (clients)",
                    ));
                }
                ctx.audit.auth = Some("bearer");
            } else if let Some(b) = &oidc.browser {
                if let Some(p) = super::signin::session_principal(inc, oidc, b, cfg, ctx)? {
                    return Ok(p);
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

/// Refuses a request that carries cookies the MLflow UI turns into request headers
/// (`mlflow-request-header-*`): the gateway never sets them, so they were planted (a sibling
/// host, any plain-http answer) and would put another principal's token, tenant or workspace
/// into a signed-in person's every call. The answer deletes them from the browser.
fn refuse_header_cookies<H: Host>(
    inc: &Incoming,
    oidc: &OidcConfig,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let planted = session::header_cookies(&inc.header_values("cookie"));
    if planted.is_empty() {
        return Ok(());
    }
    let host = oidc.browser.as_ref().map(|b| {
        let a = b.public_origin.authority.as_str();
        a.rsplit_once(':')
            .filter(|(h, _)| !h.starts_with('['))
            .map_or(a, |(h, _)| h)
    });
    for name in &planted {
        ctx.cookies.extend(session::delete_everywhere(name, host));
    }
    Err(GatewayError::new(
        Reason::HeaderCookieRefused,
        format!(
            "the browser sent cookies the MLflow UI turns into request headers ({}); the gateway never sets them, so another site may have planted them: they were deleted, reload the page",
            planted.join(", ")
        ),
    )
    .with_log_detail(format!("refused planted header cookies: {}", planted.join(", "))))
}

/// The signature and claims checks, or the verdict of an earlier full check of the same token
/// from the key-value store when `identity::token_cache` says it still stands.
fn verified_principal<H: Host>(
    token: &str,
    header: &jwt::Header,
    jwk: &jwks::Jwk,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Principal, GatewayError> {
    let now = ctx.now_s();
    let ttl = oidc.token_cache_seconds;
    let slot = (ttl > 0).then(|| Slot::for_token(token, oidc, cfg));
    if let Some(s) = &slot {
        if let Some(stored) = ctx.kv_get(&s.key)? {
            if let Some(v) = s.verdict(&stored, jwk, now, ttl, oidc.clock_skew_seconds) {
                ctx.audit.token_check = Some("cached");
                ctx.token_entry = Some(TokenEntry {
                    key: s.key.clone(),
                    stored,
                    workspace: v.workspace,
                });
                return Ok(v.principal);
            }
        }
    }
    let claims = jwt::verify(token, header, jwk, oidc, now)?;
    let principal = claims::principal_from_claims(&claims, cfg)?;
    ctx.audit.token_check = Some("verified");
    if let Some(s) = slot {
        if let Some(entry) = s.entry(&claims, jwk, &principal, now) {
            ctx.kv_set(&s.key, &entry)?;
            ctx.token_entry = Some(TokenEntry {
                key: s.key,
                stored: entry,
                workspace: None,
            });
        }
    }
    Ok(principal)
}

/// The IdP's keys from the KV store, refreshed per the rules in `identity::jwks`.
pub fn current_keys<H: Host>(
    oidc: &OidcConfig,
    cfg: &Config,
    kid: Option<&str>,
    ctx: &mut Ctx<H>,
) -> Result<jwks::JwkSet, GatewayError> {
    let key = jwks::record_key(oidc);
    let now = ctx.now_s();
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
                ctx.log("warn", &format!("JWKS refresh failed: {detail}"));
            }
        }
        ctx.kv_set(&key, &record.encode())?;
    }
    jwks::usable_keys(&record, now, oidc)
        .cloned()
        .ok_or_else(|| {
            GatewayError::new(
                Reason::JwksUnavailable,
                "the identity provider's signing keys are unavailable; try again later",
            )
        })
}

pub(super) enum FetchError {
    Config(String),
    Transient(String),
}

fn fetch_jwks<H: Host>(
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<jwks::JwkSet, FetchError> {
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
pub(super) fn fetch_idp<H: Host>(
    url: &str,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
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
    match ctx.fetch(&origin, &req, cfg.request_timeout_seconds) {
        Ok(r) if r.status == 200 => Ok(r.body),
        Ok(r) => Err(FetchError::Transient(format!(
            "IdP answered {} for {url}",
            r.status
        ))),
        Err(SendFailure::Denied) => Err(FetchError::Config(format!(
            "the platform refused the outbound call to {url}: is idp_origin in allowed_outbound_hosts?"
        ))),
        Err(e) => Err(FetchError::Transient(format!(
            "{e:?} fetching {url} (request {})",
            ctx.rid
        ))),
    }
}
