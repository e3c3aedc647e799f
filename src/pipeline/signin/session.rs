//! A signed-in browser's session: the sealed cookie opened into the caller's identity, refused
//! for a cross-origin state change, refreshed at the IdP when its access token is due, and ended
//! (cleared) when it is invalid, expired or refused. The identity step asks here when a request
//! brings no `Authorization` header.

use super::super::ctx::Ctx;
use super::super::host::Host;
use super::super::idp::{Idp, TokenRefusal};
use crate::config::BrowserConfig;
use crate::error::{GatewayError, Reason};
use crate::identity::session::{self, Grant, Session, Standing, SESSION_COOKIE};
use crate::identity::{Credential, Identified};
use crate::request::Incoming;

/// The gateway as an OIDC relying party: its IdP and its browser client's settings.
#[derive(Clone, Copy)]
pub struct RelyingParty<'a> {
    pub idp: Idp<'a>,
    pub browser: &'a BrowserConfig,
}

/// The caller from the browser's session cookie, or `None` without one. Refuses a cookie-borne
/// request that changes state from another origin, refreshes a session whose access token is
/// due, and ends (clears) a session that is invalid, expired or refused.
pub fn session_principal<H: Host>(
    inc: &Incoming,
    rp: &RelyingParty,
    ctx: &mut Ctx<H>,
) -> Result<Option<Identified>, GatewayError> {
    let Some(session) = current_session(inc, rp.browser, ctx)? else {
        return Ok(None);
    };
    if !session::same_origin_or_safe(&inc.method, &inc.headers, &rp.browser.public_origin) {
        return Err(GatewayError::new(
            Reason::CsrfRefused,
            "a request that changes state with the session cookie must come from the gateway's own pages",
        ));
    }
    let identified = |s: &Session| Identified {
        identity: s.identity.clone(),
        credential: Credential::Session { ends_at: s.ends_at },
    };
    let now = ctx.now_s();
    match session.standing(now) {
        Standing::Valid => Ok(Some(identified(&session))),
        Standing::Expired => Err(end_session(
            ctx,
            Reason::SessionExpired,
            "the browser session has ended; sign in again at /oauth2/sign_in",
        )),
        Standing::RefreshDue { access_valid } => match refresh(&session, rp, ctx) {
            Ok(renewed) => {
                store_session(rp.browser, &renewed, now, ctx)?;
                Ok(Some(identified(&renewed)))
            }
            // Several requests of one page may refresh at once; an IdP that allows each
            // refresh token once refuses all but the first. While the access token holds, a
            // refusal keeps the session: the browser gets the first refresh's cookie, and an
            // IdP that really ended the session is heard once the access token expires.
            Err(TokenRefusal::Refused(detail)) if access_valid => {
                ctx.log(
                    "info",
                    &format!("session refresh refused, current session kept until its access token expires: {detail}"),
                );
                Ok(Some(identified(&session)))
            }
            Err(TokenRefusal::Refused(detail)) => {
                ctx.log("info", &format!("session refresh refused: {detail}"));
                Err(end_session(
                    ctx,
                    Reason::SessionRefreshRefused,
                    "the identity provider ended the browser session; sign in again at /oauth2/sign_in",
                ))
            }
            Err(TokenRefusal::Failed(e)) if access_valid => {
                let detail = e.log_detail.clone().unwrap_or_else(|| e.message.clone());
                ctx.log(
                    "warn",
                    &format!("session refresh failed, current session kept until its access token expires: {detail}"),
                );
                Ok(Some(identified(&session)))
            }
            Err(TokenRefusal::Failed(e)) => Err(e),
        },
    }
}

/// The session cookie of a request, as found.
pub enum CookieSession {
    Absent,
    /// Sent, but it does not open (tampered, sealed with an unknown key) or was sent twice.
    Unusable,
    Open(Session),
}

impl CookieSession {
    pub fn of(inc: &Incoming, b: &BrowserConfig) -> CookieSession {
        match session::cookie_value(&inc.header_values("cookie"), SESSION_COOKIE) {
            Ok(None) => CookieSession::Absent,
            Ok(Some(v)) => {
                session::open_session(b, &v).map_or(CookieSession::Unusable, CookieSession::Open)
            }
            Err(session::DuplicateCookie) => CookieSession::Unusable,
        }
    }

    pub fn open(self) -> Option<Session> {
        match self {
            CookieSession::Open(s) => Some(s),
            _ => None,
        }
    }
}

/// The sealed session from the request's cookie; a cookie that does not open ends the session.
fn current_session<H: Host>(
    inc: &Incoming,
    b: &BrowserConfig,
    ctx: &mut Ctx<H>,
) -> Result<Option<Session>, GatewayError> {
    let found = CookieSession::of(inc, b);
    if !matches!(found, CookieSession::Absent) {
        ctx.audit.auth = Some("session");
    }
    match found {
        CookieSession::Absent => Ok(None),
        CookieSession::Open(s) => Ok(Some(s)),
        CookieSession::Unusable => Err(end_session(
            ctx,
            Reason::SessionInvalid,
            "the session cookie is not valid here; sign in again at /oauth2/sign_in",
        )),
    }
}

/// A refusal that also removes the session cookie from the browser.
fn end_session<H: Host>(ctx: &mut Ctx<H>, reason: Reason, msg: &str) -> GatewayError {
    ctx.cookies.push(session::clear_cookie(SESSION_COOKIE));
    GatewayError::new(reason, msg)
}

/// Seals `s` into the response's session cookie.
pub fn store_session<H: Host>(
    b: &BrowserConfig,
    s: &Session,
    now: u64,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let cookie = session::seal_session(b, nonce(ctx), s, now).ok_or_else(|| {
        GatewayError::new(
            Reason::CodeExchangeRefused,
            "the identity provider's tokens do not fit a browser cookie",
        )
        .with_log_detail("the refresh token alone makes the session cookie longer than 3800 bytes; see docs/identity.md (Browser sign-in)")
    })?;
    ctx.cookies.push(cookie);
    Ok(())
}

/// A fresh AES-GCM nonce.
pub fn nonce<H: Host>(ctx: &mut Ctx<H>) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&ctx.random_u64().to_le_bytes());
    n[8..].copy_from_slice(&ctx.random_u64().to_le_bytes()[..4]);
    n
}

/// A session renewed with its refresh token: the new access token checked as a bearer token
/// would be, the session's end unchanged.
fn refresh<H: Host>(
    s: &Session,
    rp: &RelyingParty,
    ctx: &mut Ctx<H>,
) -> Result<Session, TokenRefusal> {
    let Some(refresh_token) = s.refresh_token.as_deref() else {
        return Err(TokenRefusal::Refused(
            "the session holds no refresh token".into(),
        ));
    };
    let ep = rp.idp.endpoints(ctx)?;
    let tokens = rp
        .idp
        .token_call(&ep, rp.browser, &Grant::Refresh { refresh_token }, ctx)?;
    // A refreshed access token that no longer passes (tenant claim removed, …) ends the session.
    let (identity, lifetime) = rp
        .idp
        .access_identity(&tokens.access_token, ctx)
        .map_err(|e| {
            TokenRefusal::Refused(format!(
                "refreshed access token refused: {}",
                e.reason.as_str()
            ))
        })?;
    Ok(Session::new(
        &identity,
        lifetime,
        s.ends_at,
        tokens.refresh_token.or_else(|| s.refresh_token.clone()),
        tokens.id_token.or_else(|| s.id_token.clone()),
    ))
}
