//! The browser sign-in step: the gateway as an OIDC relying party (authorization-code flow
//! with PKCE) for people who open the MLflow UI. Serves `/oauth2/sign_in`, `/oauth2/callback`,
//! `/oauth2/sign_out` and `/oauth2/userinfo` (oauth2-proxy's names), and turns a session
//! cookie into the caller's principal, refreshing it at the IdP when it is due. The cookie
//! rules, URLs and token answers are `identity::session`; the tokens are checked by the same
//! JWKS machinery as bearer tokens (`pipeline::identity`), and the principal comes from the
//! access token exactly as for a bearer token, so every policy row treats both alike.

use super::ctx::Ctx;
use super::host::{Host, SendFailure};
use super::identity::{current_keys, fetch_idp, FetchError};
use crate::audit::Verdict;
use crate::config::{BrowserConfig, Config, OidcConfig};
use crate::error::{GatewayError, HttpResponse, Kind, Reason};
use crate::forward::UpstreamRequest;
use crate::identity::session::{
    self, Endpoints, Grant, Session, SignIn, Standing, Tokens, SESSION_COOKIE, SIGNIN_COOKIE,
};
use crate::identity::{claims, jwks, jwt, Principal};
use crate::mlflow::query::Query;
use crate::request::Incoming;
use serde_json::{json, Map, Value};

/// The gateway's own sign-in paths.
pub const PREFIX: &str = "/oauth2/";

/// Answers a request to one of the `/oauth2/` paths.
pub fn endpoint<H: Host>(
    inc: &Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<HttpResponse, GatewayError> {
    let name = inc.path.strip_prefix(PREFIX).unwrap_or_default();
    ctx.audit.route = Some(match name {
        "sign_in" => "oauth2.sign_in",
        "callback" => "oauth2.callback",
        "sign_out" => "oauth2.sign_out",
        "userinfo" => "oauth2.userinfo",
        _ => "oauth2.unknown",
    });
    let (Some(oidc), Some(b)) = (
        cfg.oidc.as_ref(),
        cfg.oidc.as_ref().and_then(|o| o.browser.as_ref()),
    ) else {
        return Err(GatewayError::new(
            Reason::SigninNotConfigured,
            "browser sign-in is not configured on this gateway (oidc_client_id); use a bearer token",
        ));
    };
    if inc.method != "GET" {
        return Err(GatewayError::new(
            Reason::MethodNotAllowed,
            format!("{} answers GET only", inc.path),
        ));
    }
    let query = Query::parse(&inc.query, &[])?;
    let response = match name {
        "sign_in" => sign_in(&query, oidc, b, cfg, ctx)?,
        "callback" => callback(inc, &query, oidc, b, cfg, ctx)?,
        "sign_out" => sign_out(inc, oidc, b, cfg, ctx),
        "userinfo" => userinfo(inc, b, cfg, ctx)?,
        _ => {
            return Err(GatewayError::new(
                Reason::RouteNotAllowed,
                format!(
                    "no such sign-in endpoint {}: /oauth2/sign_in, /oauth2/callback, /oauth2/sign_out, /oauth2/userinfo",
                    inc.path
                ),
            ))
        }
    };
    ctx.audit.record(Verdict::SignIn);
    Ok(response)
}

/// The principal from the browser's session cookie, or `None` without one. Refuses a
/// cookie-borne request that changes state from another origin, refreshes a session whose
/// access token is due, and ends (clears) a session that is invalid, expired or refused.
pub fn session_principal<H: Host>(
    inc: &Incoming,
    oidc: &OidcConfig,
    b: &BrowserConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Option<Principal>, GatewayError> {
    let Some(session) = current_session(inc, b, ctx)? else {
        return Ok(None);
    };
    if !session::same_origin_or_safe(&inc.method, &inc.headers, &b.public_origin) {
        return Err(GatewayError::new(
            Reason::CsrfRefused,
            "a request that changes state with the session cookie must come from the gateway's own pages",
        ));
    }
    let now = ctx.now_s();
    match session.standing(now) {
        Standing::Valid => Ok(Some(session.principal())),
        Standing::Expired => Err(end_session(
            ctx,
            Reason::SessionExpired,
            "the browser session has ended; sign in again at /oauth2/sign_in",
        )),
        Standing::RefreshDue { access_valid } => match refresh(&session, oidc, b, cfg, ctx) {
            Ok(renewed) => {
                let principal = renewed.principal();
                store_session(b, &renewed, now, ctx)?;
                Ok(Some(principal))
            }
            // Several requests of one page may refresh at once; an IdP that allows each
            // refresh token once refuses all but the first. While the access token holds, a
            // refusal keeps the session: the browser gets the first refresh's cookie, and an
            // IdP that really ended the session is heard once the access token expires.
            Err(Refresh::Refused(detail)) if access_valid => {
                ctx.log(
                    "info",
                    &format!("session refresh refused, current session kept until its access token expires: {detail}"),
                );
                Ok(Some(session.principal()))
            }
            Err(Refresh::Refused(detail)) => {
                ctx.log("info", &format!("session refresh refused: {detail}"));
                Err(end_session(
                    ctx,
                    Reason::SessionRefreshRefused,
                    "the identity provider ended the browser session; sign in again at /oauth2/sign_in",
                ))
            }
            Err(Refresh::Failed(e)) if access_valid => {
                let detail = e.log_detail.clone().unwrap_or_else(|| e.message.clone());
                ctx.log(
                    "warn",
                    &format!("session refresh failed, current session kept until its access token expires: {detail}"),
                );
                Ok(Some(session.principal()))
            }
            Err(Refresh::Failed(e)) => Err(e),
        },
    }
}

/// The session cookie of a request, as found.
enum CookieSession {
    Absent,
    /// Sent, but it does not open (tampered, sealed with an unknown key) or was sent twice.
    Unusable,
    Open(Session),
}

impl CookieSession {
    fn of(inc: &Incoming, b: &BrowserConfig) -> CookieSession {
        match session::cookie_value(&inc.header_values("cookie"), SESSION_COOKIE) {
            Ok(None) => CookieSession::Absent,
            Ok(Some(v)) => {
                session::open_session(b, &v).map_or(CookieSession::Unusable, CookieSession::Open)
            }
            Err(session::DuplicateCookie) => CookieSession::Unusable,
        }
    }

    fn open(self) -> Option<Session> {
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

fn store_session<H: Host>(
    b: &BrowserConfig,
    s: &Session,
    now: u64,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let cookie = session::seal_session(b, nonce(ctx), s, now).ok_or_else(|| {
        GatewayError::new(Reason::CodeExchangeRefused,
            "the identity provider's tokens do not fit a browser cookie",
        )
        .with_log_detail("the refresh token alone makes the session cookie longer than 3800 bytes; see docs/identity.md (Browser sign-in)")
    })?;
    ctx.cookies.push(cookie);
    Ok(())
}

fn nonce<H: Host>(ctx: &mut Ctx<H>) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&ctx.host.random_u64().to_le_bytes());
    n[8..].copy_from_slice(&ctx.host.random_u64().to_le_bytes()[..4]);
    n
}

/// `/oauth2/sign_in`: a new attempt sealed into the sign-in cookie, and the browser sent to the
/// IdP's authorization endpoint.
fn sign_in<H: Host>(
    query: &Query,
    oidc: &OidcConfig,
    b: &BrowserConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<HttpResponse, GatewayError> {
    let back = session::return_path(query.get("rd")).ok_or_else(|| {
        GatewayError::new(
            Reason::ReturnPathInvalid,
            "rd must be a path on this gateway (starting with a single /)",
        )
    })?;
    let ep = endpoints(oidc, cfg, ctx)?;
    let mut random = [0u8; 96];
    for chunk in random.chunks_mut(8) {
        chunk.copy_from_slice(&ctx.host.random_u64().to_le_bytes());
    }
    let attempt = SignIn::new(&random, back, ctx.now_s());
    let cookie = session::seal_signin(b, nonce(ctx), &attempt)
        .ok_or_else(|| GatewayError::internal("sealing the sign-in cookie failed"))?;
    ctx.cookies.push(cookie);
    Ok(redirect(
        &session::authorize_url(&ep, b, &attempt),
        &ctx.rid,
    ))
}

/// `/oauth2/callback`: the IdP's answer, checked against the attempt in the sign-in cookie,
/// exchanged for tokens, and turned into a session.
fn callback<H: Host>(
    inc: &Incoming,
    query: &Query,
    oidc: &OidcConfig,
    b: &BrowserConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<HttpResponse, GatewayError> {
    // The attempt is used up whatever happens next: a replayed callback finds no attempt.
    ctx.cookies.push(session::clear_cookie(SIGNIN_COOKIE));
    let now = ctx.now_s();
    let state_refused = || {
        GatewayError::new(
            Reason::SigninStateInvalid,
            "this sign-in was not started in this browser, was already used, or took longer than 10 minutes; start again at /oauth2/sign_in",
        )
    };
    let attempt = session::cookie_value(&inc.header_values("cookie"), SIGNIN_COOKIE)
        .ok()
        .flatten()
        .and_then(|v| session::open_signin(b, &v))
        .filter(|a| !a.expired(now))
        .ok_or_else(state_refused)?;
    if !constant_time_eq(query.get("state").unwrap_or_default(), &attempt.state) {
        return Err(state_refused());
    }
    if let Some(error) = query.get("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(GatewayError::new(
            Reason::SigninRefusedByIdp,
            format!(
                "the identity provider did not sign you in ({code}); try again at /oauth2/sign_in"
            ),
        ));
    }
    let code = query
        .get("code")
        .ok_or_else(|| GatewayError::new(Reason::MissingField, "the callback has no `code`"))?;
    let ep = endpoints(oidc, cfg, ctx)?;
    let grant = Grant::Code {
        code,
        verifier: &attempt.verifier,
    };
    let tokens = match token_call(&ep, b, &grant, oidc, cfg, ctx) {
        Ok(t) => t,
        Err(Refresh::Refused(detail)) => {
            return Err(GatewayError::new(
                Reason::CodeExchangeRefused,
                "the identity provider refused the sign-in code (used twice, expired, or not for this browser); start again at /oauth2/sign_in",
            )
            .with_log_detail(format!("code exchange refused: {detail}")))
        }
        Err(Refresh::Failed(e)) => return Err(e),
    };
    let id_token = tokens.id_token.as_deref().ok_or_else(|| {
        GatewayError::new(
            Reason::CodeExchangeRefused,
            "the identity provider returned no ID token",
        )
        .with_log_detail("token response without id_token: oidc_scopes must include openid")
    })?;
    let id_claims = verify_jwt(id_token, &b.client_id, oidc, cfg, ctx)?;
    let nonce_ok = id_claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| constant_time_eq(n, &attempt.nonce));
    if !nonce_ok {
        return Err(GatewayError::new(
            Reason::NonceMismatch,
            "the ID token was not issued for this sign-in; start again at /oauth2/sign_in",
        ));
    }
    let (principal, lifetime) = access_principal(&tokens.access_token, oidc, cfg, ctx)?;
    let s = Session::new(
        &principal,
        lifetime,
        now.saturating_add(b.session_max_seconds),
        tokens.refresh_token,
        tokens.id_token,
    );
    store_session(b, &s, now, ctx)?;
    ctx.audit.auth = Some("session");
    record_principal(ctx, &principal);
    Ok(redirect(&attempt.return_path, &ctx.rid))
}

/// `/oauth2/sign_out`: the session cookie is cleared, then the IdP's session is ended when the
/// IdP offers RP-initiated logout. Without one (or with the IdP unreachable) the browser gets a
/// page saying it is signed out here.
fn sign_out<H: Host>(
    inc: &Incoming,
    oidc: &OidcConfig,
    b: &BrowserConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> HttpResponse {
    let id_token = CookieSession::of(inc, b).open().and_then(|s| {
        ctx.audit.auth = Some("session");
        record_principal(ctx, &s.principal());
        s.id_token
    });
    ctx.cookies.push(session::clear_cookie(SESSION_COOKIE));
    match endpoints(oidc, cfg, ctx) {
        Ok(Endpoints {
            end_session: Some(end),
            ..
        }) => redirect(&session::logout_url(&end, b, id_token.as_deref()), &ctx.rid),
        Ok(_) => signed_out_page(&ctx.rid),
        Err(e) => {
            let detail = e.log_detail.unwrap_or(e.message);
            ctx.log(
                "warn",
                &format!("signed out here only; the IdP's session was not ended: {detail}"),
            );
            signed_out_page(&ctx.rid)
        }
    }
}

/// `/oauth2/userinfo`: the caller as the gateway sees it, from a bearer token or the session.
fn userinfo<H: Host>(
    inc: &Incoming,
    b: &BrowserConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<HttpResponse, GatewayError> {
    let principal = super::identity::authenticate(inc, cfg, ctx)?;
    record_principal(ctx, &principal);
    let mut body = json!({
        "tenant": principal.tenant,
        "subject": principal.subject,
        "roles": principal.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "auth": ctx.audit.auth.unwrap_or("bearer"),
    });
    if ctx.audit.auth == Some("session") {
        let ends = CookieSession::of(inc, b).open().map(|s| s.ends_at);
        body["session_expires_at"] = json!(ends);
    }
    if let Some(w) = cfg.isolation.workspace() {
        body["workspace"] = json!(w.workspace_of(&principal.tenant).ok());
    }
    Ok(HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), ctx.rid.clone()),
        ],
        body: body.to_string().into_bytes(),
    })
}

fn record_principal<H: Host>(ctx: &mut Ctx<H>, p: &Principal) {
    ctx.audit.tenant = Some(p.tenant.clone());
    ctx.audit.subject = Some(p.subject.clone());
    ctx.audit.roles = p.roles.iter().map(|r| r.as_str()).collect();
}

/// Where a browser without credentials is sent: sign-in, returning to the page it asked for.
pub fn to_sign_in(inc: &Incoming, rid: &str) -> HttpResponse {
    let mut back = inc.path.clone();
    if !inc.query.is_empty() {
        back.push('?');
        back.push_str(&inc.query);
    }
    let target = match session::return_path(Some(&back)) {
        Some(rd) if rd != "/" => {
            let enc: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
            format!("/oauth2/sign_in?rd={enc}")
        }
        _ => "/oauth2/sign_in".to_string(),
    };
    redirect(&target, rid)
}

/// Whether a refusal of `inc` becomes a redirect to sign-in: a browser navigation to a UI page
/// that brought no usable credentials, on a gateway with sign-in configured.
pub fn redirects_to_sign_in(e: &GatewayError, inc: &Incoming, cfg: &Config) -> bool {
    let configured = cfg.oidc.as_ref().is_some_and(|o| o.browser.is_some());
    configured
        && e.kind() == Kind::Unauthenticated
        && !inc.has_header("authorization")
        && !session::is_api_path(&inc.path)
        && session::is_navigation(&inc.method, &inc.headers)
}

fn redirect(location: &str, rid: &str) -> HttpResponse {
    HttpResponse {
        status: 302,
        headers: vec![
            ("location".into(), location.into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), rid.into()),
        ],
        body: Vec::new(),
    }
}

fn signed_out_page(rid: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), rid.into()),
        ],
        body: b"<!doctype html><title>Signed out</title><p>You are signed out of MLflow. <a href=\"/oauth2/sign_in\">Sign in again</a></p>\n".to_vec(),
    }
}

/// Why a token call did not give tokens: the IdP refused the grant (the session or code is
/// no good), or the call itself failed (the IdP may be fine a moment later).
enum Refresh {
    Refused(String),
    Failed(GatewayError),
}

impl From<GatewayError> for Refresh {
    fn from(e: GatewayError) -> Self {
        Refresh::Failed(e)
    }
}

fn refresh<H: Host>(
    s: &Session,
    oidc: &OidcConfig,
    b: &BrowserConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Session, Refresh> {
    let Some(refresh_token) = s.refresh_token.as_deref() else {
        return Err(Refresh::Refused(
            "the session holds no refresh token".into(),
        ));
    };
    let ep = endpoints(oidc, cfg, ctx)?;
    let tokens = token_call(&ep, b, &Grant::Refresh { refresh_token }, oidc, cfg, ctx)?;
    // A refreshed access token that no longer passes (tenant claim removed, …) ends the session.
    let (principal, lifetime) =
        access_principal(&tokens.access_token, oidc, cfg, ctx).map_err(|e| {
            Refresh::Refused(format!(
                "refreshed access token refused: {}",
                e.reason.as_str()
            ))
        })?;
    Ok(Session::new(
        &principal,
        lifetime,
        s.ends_at,
        tokens.refresh_token.or_else(|| s.refresh_token.clone()),
        tokens.id_token.or_else(|| s.id_token.clone()),
    ))
}

/// The principal from an access token, checked exactly as a bearer token is (audience, issuer,
/// signature, tenant and role claims), with the token's `iat` and `exp`.
fn access_principal<H: Host>(
    token: &str,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(Principal, (u64, u64)), GatewayError> {
    let claims = verify_jwt(token, &oidc.audience, oidc, cfg, ctx)?;
    let principal = claims::principal_from_claims(&claims, cfg)?;
    let now = ctx.now_s();
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .filter(|i| *i <= exp)
        .unwrap_or(now);
    Ok((principal, (iat, exp)))
}

fn verify_jwt<H: Host>(
    token: &str,
    audience: &str,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Map<String, Value>, GatewayError> {
    let header = jwt::peek_header(token, oidc)?;
    let keys = current_keys(oidc, cfg, header.kid.as_deref(), ctx)?;
    let jwk = jwt::select_key(&header, &keys)?;
    jwt::verify_for(token, &header, jwk, oidc, audience, ctx.now_s())
}

/// The IdP's endpoints from its discovery document (read when a browser signs in, out, or
/// refreshes: never on the path of an ordinary request).
fn endpoints<H: Host>(
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Endpoints, GatewayError> {
    let url = jwks::discovery_url(&oidc.issuer);
    let body = fetch_idp(&url, oidc, cfg, ctx).map_err(|e| idp_failure(e, &url))?;
    session::parse_endpoints(&body, &oidc.idp_origin)
        .map_err(|d| idp_failure(FetchError::Transient(d), &url))
}

fn idp_failure(e: FetchError, what: &str) -> GatewayError {
    match e {
        FetchError::Config(d) => GatewayError::config(d),
        FetchError::Transient(d) => GatewayError::new(
            Reason::IdpUnavailable,
            "the identity provider cannot be reached for sign-in; try again later",
        )
        .with_log_detail(format!("{what}: {d}")),
    }
}

/// One call to the token endpoint with the client's credentials.
fn token_call<H: Host>(
    ep: &Endpoints,
    b: &BrowserConfig,
    grant: &Grant,
    oidc: &OidcConfig,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Tokens, Refresh> {
    let (origin, path) = crate::config::parse_url("token_endpoint", &ep.token)
        .map_err(|e| GatewayError::config(e.to_string()))?;
    let body = session::token_request_body(b, grant);
    let req = UpstreamRequest {
        method: "POST".into(),
        path_and_query: path,
        headers: vec![
            ("accept".into(), b"application/json".to_vec()),
            (
                "content-type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            ("content-length".into(), body.len().to_string().into_bytes()),
            (
                "authorization".into(),
                session::client_auth_header(b).into_bytes(),
            ),
        ],
        body,
    };
    ctx.check_deadline("the token request")?;
    let answer = match ctx.fetch(&oidc.idp_origin, &req, cfg.request_timeout_seconds) {
        Ok(a) => a,
        Err(SendFailure::Denied) => {
            return Err(GatewayError::config(format!(
                "the platform refused the outbound call to {}: is idp_origin in allowed_outbound_hosts?",
                origin.as_string()
            ))
            .into())
        }
        Err(e) => {
            return Err(idp_failure(
                FetchError::Transient(format!("{e:?} (request {})", ctx.rid)),
                &ep.token,
            )
            .into())
        }
    };
    match answer.status {
        200 => session::parse_tokens(&answer.body)
            .map_err(|d| idp_failure(FetchError::Transient(d), &ep.token).into()),
        400 | 401 => {
            let error = session::oauth_error(&answer.body);
            if matches!(error.as_str(), "invalid_client" | "unauthorized_client") {
                return Err(GatewayError::config(format!(
                    "the IdP refused the gateway's client ({error}): check oidc_client_id and oidc_client_secret"
                ))
                .into());
            }
            Err(Refresh::Refused(format!(
                "token endpoint answered {} {error}",
                answer.status
            )))
        }
        s => Err(idp_failure(
            FetchError::Transient(format!("token endpoint answered {s}")),
            &ep.token,
        )
        .into()),
    }
}

/// Compares secrets without an early exit on the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
