//! The identity step: who is calling, and by which credential. Dev mode trusts the `X-Tenant`
//! headers. OIDC mode refuses cookies that would smuggle in a header and a session cookie sent
//! with a bearer token, then takes the browser's session cookie (`pipeline::signin::session`)
//! when no `Authorization` header is sent, and otherwise checks the bearer token through the
//! IdP's keys (`pipeline::idp`), reusing an earlier full check when `identity::token_cache`
//! says it still stands.

use super::ctx::{Ctx, TokenEntry};
use super::host::Host;
use super::idp::Idp;
use super::signin::session::{session_principal, RelyingParty};
use crate::config::{AuthMode, Config, OidcConfig};
use crate::error::{GatewayError, Reason};
use crate::identity::jwks::Jwk;
use crate::identity::session::{self, SESSION_COOKIE};
use crate::identity::token_cache::Slot;
use crate::identity::{claims, dev, jwt, select, Credential, Identified, Identity, Principal};
use crate::request::Incoming;

pub fn authenticate<H: Host>(
    inc: &Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Identified, GatewayError> {
    let oidc = match (&cfg.auth_mode, &cfg.oidc) {
        (AuthMode::Off, _) => {
            if inc.has_header("authorization") {
                ctx.log(
                    "warn",
                    "auth_mode=off: Authorization header ignored and not forwarded",
                );
            }
            let identity = dev::authenticate(inc, cfg)?;
            return Ok(Identified {
                identity,
                credential: Credential::Headers,
            });
        }
        (AuthMode::Oidc, Some(oidc)) => oidc,
        (AuthMode::Oidc, None) => {
            return Err(GatewayError::internal("oidc mode without oidc config"))
        }
    };
    refuse_header_cookies(inc, oidc, ctx)?;
    for h in ["x-tenant", "x-subject", "x-roles"] {
        if inc.has_header(h) {
            return Err(GatewayError::new(
                Reason::IdentityHeaderInOidcMode,
                format!("header {h} is not accepted: in oidc mode identity comes only from the bearer token"),
            ));
        }
    }
    let idp = Idp { oidc, cfg };
    if inc.has_header("authorization") {
        // A browser's session and a bearer token in one request: one of them is not the
        // caller's choice (an extension or a planted header), so neither is used.
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
        ctx.audit.auth = Credential::Bearer.audit_name();
    } else if let Some(browser) = &oidc.browser {
        let rp = RelyingParty { idp, browser };
        if let Some(found) = session_principal(inc, &rp, ctx)? {
            return Ok(found);
        }
    }
    let token = jwt::bearer_token(&inc.header_values("authorization"))?;
    let (header, jwk) = idp.signing_key(&token, ctx)?;
    let identity = verified_identity(&token, &header, &jwk, oidc, cfg, ctx)?;
    Ok(Identified {
        identity,
        credential: Credential::Bearer,
    })
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
fn verified_identity<H: Host>(
    token: &str,
    header: &jwt::Header,
    jwk: &Jwk,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Identity, GatewayError> {
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
                return Ok(v.identity);
            }
        }
    }
    let claims = jwt::verify(token, header, jwk, oidc, now)?;
    let identity = claims::identity_from_claims(&claims, cfg)?;
    ctx.audit.token_check = Some("verified");
    if let Some(s) = slot {
        if let Some(entry) = s.entry(&claims, jwk, &identity, now) {
            ctx.kv_set(&s.key, &entry)?;
            ctx.token_entry = Some(TokenEntry {
                key: s.key,
                stored: entry,
                workspace: None,
            });
        }
    }
    Ok(identity)
}

/// The identity step and the tenant the request acts in (`identity::select`), recorded in the
/// audit: what every later step sees.
pub fn identify<H: Host>(
    inc: &Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(Identified, Principal), GatewayError> {
    let who = authenticate(inc, cfg, ctx)?;
    ctx.record_identity(&who.identity);
    let selector = select::selector(&inc.headers)?;
    let acting = select::acting(&who.identity, selector.as_deref(), cfg)?;
    ctx.record_principal(&acting);
    Ok((who, acting))
}
