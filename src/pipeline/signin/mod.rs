//! Browser sign-in: the gateway as an OIDC relying party (authorization-code flow with PKCE)
//! for people who open the MLflow UI. Serves `/oauth2/sign_in`, `/oauth2/callback`,
//! `/oauth2/sign_out` and `/oauth2/userinfo` (oauth2-proxy's names) (`flow`), and turns a
//! session cookie into the caller's identity, refreshing it at the IdP when it is due
//! (`session`). The cookie rules, URLs and token answers are `identity::session`; tokens are
//! checked through `pipeline::idp` exactly as bearer tokens are, so every policy row treats
//! both alike.

mod flow;
mod pages;
pub mod session;

#[cfg(test)]
pub(super) mod tests;

use super::ctx::Ctx;
use super::host::Host;
use super::idp::Idp;
use crate::audit::Verdict;
use crate::config::Config;
use crate::error::{GatewayError, HttpResponse, Kind, Reason};
use crate::identity::session as rules;
use crate::identity::{Identified, Principal};
use crate::request::Incoming;
use session::RelyingParty;

/// The gateway's own sign-in paths.
pub const PREFIX: &str = "/oauth2/";

/// The identity step, as `userinfo` runs it: who, and acting as whom.
pub type Identify<H> =
    fn(&Incoming, &Config, &mut Ctx<H>) -> Result<(Identified, Principal), GatewayError>;

/// Answers a request to one of the `/oauth2/` paths. `identify` is the identity step (for
/// `userinfo`: the caller as any other request would be identified).
pub fn endpoint<H: Host>(
    inc: &Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
    identify: Identify<H>,
) -> Result<HttpResponse, GatewayError> {
    let name = inc.path.strip_prefix(PREFIX).unwrap_or_default();
    ctx.audit.route = Some(match name {
        "sign_in" => "oauth2.sign_in",
        "callback" => "oauth2.callback",
        "sign_out" => "oauth2.sign_out",
        "userinfo" => "oauth2.userinfo",
        _ => "oauth2.unknown",
    });
    let (Some(oidc), Some(browser)) = (
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
    let params = rules::query_params(&inc.query).map_err(|name| {
        GatewayError::new(
            Reason::RepeatedQueryParam,
            format!("query parameter `{name}` is given more than once"),
        )
    })?;
    let rp = RelyingParty {
        idp: Idp { oidc, cfg },
        browser,
    };
    let response = match name {
        "sign_in" => flow::sign_in(&params, &rp, ctx)?,
        "callback" => flow::callback(inc, &params, &rp, ctx)?,
        "sign_out" => flow::sign_out(inc, &rp, ctx),
        "userinfo" => {
            let (who, acting) = identify(inc, cfg, ctx)?;
            flow::userinfo(&who, &acting, cfg, ctx)
        }
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

/// Where a browser without credentials is sent: sign-in, returning to the page it asked for,
/// fragment included (`pages::sign_in_page`: the fragment is only known to the browser).
pub fn to_sign_in(inc: &Incoming, rid: &str) -> HttpResponse {
    let mut back = inc.path.clone();
    if !inc.query.is_empty() {
        back.push('?');
        back.push_str(&inc.query);
    }
    let back = rules::return_path(Some(&back))
        .filter(|b| !b.contains('#'))
        .unwrap_or_else(|| "/".to_string());
    pages::sign_in_page(&back, rid)
}

/// Whether a refusal of `inc` becomes a redirect to sign-in: a browser navigation to a UI page
/// that brought no usable credentials, on a gateway with sign-in configured.
pub fn redirects_to_sign_in(e: &GatewayError, inc: &Incoming, cfg: &Config) -> bool {
    let configured = cfg.oidc.as_ref().is_some_and(|o| o.browser.is_some());
    configured
        && e.kind() == Kind::Unauthenticated
        && !inc.has_header("authorization")
        && !rules::is_api_path(&inc.path)
        && rules::is_navigation(&inc.method, &inc.headers)
}
