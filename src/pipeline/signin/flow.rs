//! The sign-in endpoints' work: `/oauth2/sign_in` starts an attempt, `/oauth2/callback` checks
//! the IdP's answer against it and turns the tokens into a session, `/oauth2/sign_out` ends the
//! session here and at the IdP, `/oauth2/userinfo` shows the caller as the gateway sees it.

use super::super::ctx::Ctx;
use super::super::host::Host;
use super::super::idp::TokenRefusal;
use super::pages::{private_json, redirect, signed_out_page};
use super::session::{nonce, store_session, CookieSession, RelyingParty};
use crate::config::Config;
use crate::error::{GatewayError, HttpResponse, Reason};
use crate::identity::session::{
    self, Endpoints, Grant, Session, SignIn, SESSION_COOKIE, SIGNIN_COOKIE,
};
use crate::identity::{Credential, Identified, Identity, Principal};
use crate::request::Incoming;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A sign-in endpoint's query parameters.
pub type Params = HashMap<String, String>;

/// `/oauth2/sign_in`: a new attempt sealed into the sign-in cookie, and the browser sent to the
/// IdP's authorization endpoint.
pub fn sign_in<H: Host>(
    params: &Params,
    rp: &RelyingParty,
    ctx: &mut Ctx<H>,
) -> Result<HttpResponse, GatewayError> {
    let back = session::return_path(params.get("rd").map(String::as_str)).ok_or_else(|| {
        GatewayError::new(
            Reason::ReturnPathInvalid,
            "rd must be a path on this gateway (starting with a single /)",
        )
    })?;
    let ep = rp.idp.endpoints(ctx)?;
    let mut random = [0u8; 96];
    for chunk in random.chunks_mut(8) {
        chunk.copy_from_slice(&ctx.random_u64().to_le_bytes());
    }
    let attempt = SignIn::new(&random, back, ctx.now_s());
    let cookie = session::seal_signin(rp.browser, nonce(ctx), &attempt)
        .ok_or_else(|| GatewayError::internal("sealing the sign-in cookie failed"))?;
    ctx.cookies.push(cookie);
    Ok(redirect(
        &session::authorize_url(&ep, rp.browser, &attempt),
        &ctx.rid,
    ))
}

/// `/oauth2/callback`: the IdP's answer, checked against the attempt in the sign-in cookie,
/// exchanged for tokens, and turned into a session.
pub fn callback<H: Host>(
    inc: &Incoming,
    params: &Params,
    rp: &RelyingParty,
    ctx: &mut Ctx<H>,
) -> Result<HttpResponse, GatewayError> {
    let attempt = attempt_of(inc, params, rp, ctx)?;
    if let Some(error) = params.get("error") {
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
    let code = params
        .get("code")
        .ok_or_else(|| GatewayError::new(Reason::MissingField, "the callback has no `code`"))?;
    let ep = rp.idp.endpoints(ctx)?;
    let session = exchange(&ep, code, &attempt, rp, ctx)?;
    store_session(rp.browser, &session, ctx.now_s(), ctx)?;
    ctx.audit.auth = Some("session");
    ctx.record_identity(&session.identity);
    let back = landing(&attempt.return_path, &session.identity, rp.idp.cfg);
    Ok(redirect(&back, &ctx.rid))
}

/// Where the browser goes after sign-in: the page it asked for. In workspace mode, a person
/// in one tenant who asked for a UI page without a workspace (`/`, or a deep link such as
/// `/#/experiments/12` the MLflow client printed) lands in that tenant's workspace: the UI
/// takes it from the route's `workspace` parameter, and would otherwise show its workspace
/// chooser and drop the deep link. People in several tenants choose.
fn landing(back: &str, who: &Identity, cfg: &Config) -> String {
    let (Some(w), [only]) = (cfg.isolation.workspace(), who.memberships.as_slice()) else {
        return back.to_string();
    };
    let Ok(workspace) = w.workspace_of(&only.tenant) else {
        return back.to_string();
    };
    let (page, route) = back.split_once('#').unwrap_or((back, ""));
    if page.split('?').next() != Some("/") {
        return back.to_string();
    }
    let route = if route.is_empty() { "/" } else { route };
    let (_, query) = route.split_once('?').unwrap_or((route, ""));
    if query
        .split('&')
        .any(|kv| kv.split('=').next() == Some("workspace"))
    {
        return back.to_string();
    }
    let sep = if route.contains('?') { '&' } else { '?' };
    format!("{page}#{route}{sep}workspace={workspace}")
}

/// The attempt this callback answers: the one sealed in the browser's sign-in cookie, with the
/// same `state`, not older than ten minutes. The cookie is used up whatever happens next, so a
/// replayed callback finds no attempt.
fn attempt_of<H: Host>(
    inc: &Incoming,
    params: &Params,
    rp: &RelyingParty,
    ctx: &mut Ctx<H>,
) -> Result<SignIn, GatewayError> {
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
        .and_then(|v| session::open_signin(rp.browser, &v))
        .filter(|a| !a.expired(now))
        .ok_or_else(state_refused)?;
    let state = params.get("state").map(String::as_str).unwrap_or_default();
    if !constant_time_eq(state, &attempt.state) {
        return Err(state_refused());
    }
    Ok(attempt)
}

/// The code redeemed with the attempt's PKCE verifier, the ID token checked for this attempt's
/// nonce, and the access token checked as a bearer token: the new session.
fn exchange<H: Host>(
    ep: &Endpoints,
    code: &str,
    attempt: &SignIn,
    rp: &RelyingParty,
    ctx: &mut Ctx<H>,
) -> Result<Session, GatewayError> {
    let grant = Grant::Code {
        code,
        verifier: &attempt.verifier,
    };
    let tokens = match rp.idp.token_call(ep, rp.browser, &grant, ctx) {
        Ok(t) => t,
        Err(TokenRefusal::Refused(detail)) => {
            return Err(GatewayError::new(
                Reason::CodeExchangeRefused,
                "the identity provider refused the sign-in code (used twice, expired, or not for this browser); start again at /oauth2/sign_in",
            )
            .with_log_detail(format!("code exchange refused: {detail}")))
        }
        Err(TokenRefusal::Failed(e)) => return Err(e),
    };
    let id_token = tokens.id_token.as_deref().ok_or_else(|| {
        GatewayError::new(
            Reason::CodeExchangeRefused,
            "the identity provider returned no ID token",
        )
        .with_log_detail("token response without id_token: oidc_scopes must include openid")
    })?;
    let id_claims = rp.idp.verify(id_token, &rp.browser.client_id, ctx)?;
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
    let (identity, lifetime) = rp.idp.access_identity(&tokens.access_token, ctx)?;
    let now = ctx.now_s();
    Ok(Session::new(
        &identity,
        lifetime,
        now.saturating_add(rp.browser.session_max_seconds),
        tokens.refresh_token,
        tokens.id_token,
    ))
}

/// `/oauth2/sign_out`: the session cookie is cleared, then the IdP's session is ended when the
/// IdP offers RP-initiated logout. Without one (or with the IdP unreachable) the browser gets a
/// page saying it is signed out here.
pub fn sign_out<H: Host>(inc: &Incoming, rp: &RelyingParty, ctx: &mut Ctx<H>) -> HttpResponse {
    let id_token = CookieSession::of(inc, rp.browser).open().and_then(|s| {
        ctx.audit.auth = Some("session");
        ctx.record_identity(&s.identity);
        s.id_token
    });
    ctx.cookies.push(session::clear_cookie(SESSION_COOKIE));
    match rp.idp.endpoints(ctx) {
        Ok(Endpoints {
            end_session: Some(end),
            ..
        }) => redirect(
            &session::logout_url(&end, rp.browser, id_token.as_deref()),
            &ctx.rid,
        ),
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

/// `/oauth2/userinfo`: the caller as the identity step found it (a bearer token or the
/// session), acting in the tenant the request selects, with every tenant it belongs to.
pub fn userinfo<H: Host>(
    who: &Identified,
    p: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> HttpResponse {
    let tenants: Vec<Value> = who
        .identity
        .memberships
        .iter()
        .map(|m| {
            json!({
                "tenant": m.tenant,
                "roles": m.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut body = json!({
        "tenant": p.tenant,
        "subject": p.subject,
        "roles": p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "member": p.member,
        "tenants": tenants,
        "groups": who.identity.groups,
        "auth": who.credential.audit_name().unwrap_or("bearer"),
    });
    if let Credential::Session { ends_at } = who.credential {
        body["session_expires_at"] = json!(ends_at);
    }
    if let Some(w) = cfg.isolation.workspace() {
        body["workspace"] = json!(w.workspace_of(&p.tenant).ok());
    }
    private_json(&body, &ctx.rid)
}

/// Compares secrets without an early exit on the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
