//! The identity provider as the pipeline reaches it: its signing keys (kept in the key-value
//! store and refreshed by the rules of `identity::jwks`), the one chain that finds the key a
//! token names and verifies the token against it, its discovery document, and its token
//! endpoint. Bearer tokens (`pipeline::identity`) and browser sign-in (`pipeline::signin`)
//! both go through here, so a token is checked the same way whichever door it came in by.

use super::ctx::Ctx;
use super::host::{Host, SendFailure};
use crate::config::{BrowserConfig, Config, OidcConfig};
use crate::error::{GatewayError, Reason};
use crate::forward::UpstreamRequest;
use crate::identity::jwks::{self, DiscoveryError, JwksRecord};
use crate::identity::session::{self, Endpoints, Grant, Tokens};
use crate::identity::{claims, jwt, Identity};
use serde_json::{Map, Value};

/// The IdP of an oidc-mode gateway, with the configuration its calls need.
#[derive(Clone, Copy)]
pub struct Idp<'a> {
    pub oidc: &'a OidcConfig,
    pub cfg: &'a Config,
}

/// Why an IdP call did not give an answer to use.
pub enum FetchError {
    /// A configuration error (a URL outside `idp_origin`, the platform refusing the host).
    Config(String),
    /// The IdP may be fine a moment later (unreachable, 5xx, malformed).
    Transient(String),
}

/// Why a token call did not give tokens: the IdP refused the grant (the session or code is no
/// good), or the call itself failed.
pub enum TokenRefusal {
    Refused(String),
    Failed(GatewayError),
}

impl From<GatewayError> for TokenRefusal {
    fn from(e: GatewayError) -> Self {
        TokenRefusal::Failed(e)
    }
}

impl<'a> Idp<'a> {
    /// The key a token names, from the IdP's current key set: the first half of every token
    /// check (the token cache needs the key before it can trust an earlier verdict).
    pub fn signing_key<H: Host>(
        &self,
        token: &str,
        ctx: &mut Ctx<H>,
    ) -> Result<(jwt::Header, jwks::Jwk), GatewayError> {
        let header = jwt::peek_header(token, self.oidc)?;
        let keys = self.keys(header.kid.as_deref(), ctx)?;
        let jwk = jwt::select_key(&header, &keys)?.clone();
        Ok((header, jwk))
    }

    /// A token's signature and claims, for `audience`.
    pub fn verify<H: Host>(
        &self,
        token: &str,
        audience: &str,
        ctx: &mut Ctx<H>,
    ) -> Result<Map<String, Value>, GatewayError> {
        let (header, jwk) = self.signing_key(token, ctx)?;
        jwt::verify_for(token, &header, &jwk, self.oidc, audience, ctx.now_s())
    }

    /// The identity from an access token, checked exactly as a bearer token is (audience,
    /// issuer, signature, tenant and role claims), with the token's `iat` and `exp`.
    pub fn access_identity<H: Host>(
        &self,
        token: &str,
        ctx: &mut Ctx<H>,
    ) -> Result<(Identity, (u64, u64)), GatewayError> {
        let claims = self.verify(token, &self.oidc.audience, ctx)?;
        let identity = claims::identity_from_claims(&claims, self.cfg)?;
        let now = ctx.now_s();
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
        let iat = claims
            .get("iat")
            .and_then(Value::as_u64)
            .filter(|i| *i <= exp)
            .unwrap_or(now);
        Ok((identity, (iat, exp)))
    }

    /// The IdP's keys from the key-value store, refreshed per the rules in `identity::jwks`.
    pub fn keys<H: Host>(
        &self,
        kid: Option<&str>,
        ctx: &mut Ctx<H>,
    ) -> Result<jwks::JwkSet, GatewayError> {
        let key = jwks::record_key(self.oidc);
        let now = ctx.now_s();
        let mut record = ctx
            .kv_get(&key)?
            .map(|b| JwksRecord::decode(&b))
            .unwrap_or_default();
        if jwks::should_fetch(&record, kid, now, self.oidc) {
            record.last_attempt_at = now;
            match self.fetch_jwks(ctx) {
                Ok(set) => {
                    record.keys = Some(set);
                    record.fetched_at = Some(now);
                    record.config_error = None;
                }
                Err(FetchError::Config(detail)) => {
                    record.config_error = Some(detail.clone());
                    ctx.kv_set(&key, &record.encode())?;
                    return Err(GatewayError::config(detail));
                }
                Err(FetchError::Transient(detail)) => {
                    record.config_error = None;
                    ctx.log("warn", &format!("JWKS refresh failed: {detail}"));
                }
            }
            ctx.kv_set(&key, &record.encode())?;
        }
        if let Some(keys) = jwks::usable_keys(&record, now, self.oidc) {
            return Ok(keys.clone());
        }
        // Until the next fetch, a configuration error stays one (not retried by clients).
        Err(match record.config_error {
            Some(detail) => GatewayError::config(detail),
            None => GatewayError::new(
                Reason::JwksUnavailable,
                "the identity provider's signing keys are unavailable; try again later",
            ),
        })
    }

    fn fetch_jwks<H: Host>(&self, ctx: &mut Ctx<H>) -> Result<jwks::JwkSet, FetchError> {
        let uri = match &self.oidc.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let body = self.discovery(ctx)?;
                jwks::parse_discovery(&body, &self.oidc.idp_origin).map_err(|e| match e {
                    DiscoveryError::Malformed(m) => FetchError::Transient(m),
                    DiscoveryError::OutsideOrigin(m) => FetchError::Config(m),
                })?
            }
        };
        let body = self.get(&uri, ctx)?;
        jwks::parse_jwks(&body).map_err(FetchError::Transient)
    }

    /// The IdP's discovery document, which must name `oidc_issuer` as its issuer exactly
    /// (OpenID Connect Discovery 1.0 §4.3): otherwise every token would be refused as
    /// `wrong_issuer`, or, worse, keys would be taken from a document for another issuer.
    fn discovery<H: Host>(&self, ctx: &mut Ctx<H>) -> Result<Vec<u8>, FetchError> {
        let url = jwks::discovery_url(&self.oidc.issuer);
        let body = self.get(&url, ctx)?;
        match discovered_issuer(&body) {
            Some(named) if named == self.oidc.issuer => Ok(body),
            Some(named) => Err(FetchError::Config(issuer_mismatch(
                &self.oidc.issuer,
                &url,
                &named,
            ))),
            None => Err(FetchError::Transient(format!(
                "the discovery document at {url} names no issuer"
            ))),
        }
    }

    /// Readiness: whether the discovery document names `oidc_issuer`. Checked when the
    /// gateway uses discovery (no `jwks_uri`, or browser sign-in); otherwise only when the
    /// document can be read.
    pub fn issuer_check<H: Host>(&self, ctx: &mut Ctx<H>) -> IssuerCheck {
        let needed = self.oidc.jwks_uri.is_none() || self.oidc.browser.is_some();
        match self.discovery(ctx) {
            Ok(_) => IssuerCheck::Ok,
            Err(FetchError::Config(d)) if d.starts_with(MISMATCH) => IssuerCheck::Mismatch(d),
            Err(FetchError::Config(d)) if needed => IssuerCheck::Invalid(d),
            Err(FetchError::Transient(d)) if needed => IssuerCheck::Unavailable(d),
            Err(_) => IssuerCheck::Unchecked,
        }
    }

    /// GET from the IdP; the URL's origin must be `idp_origin`.
    fn get<H: Host>(&self, url: &str, ctx: &mut Ctx<H>) -> Result<Vec<u8>, FetchError> {
        let (origin, path) = crate::config::parse_url("jwks_uri", url)
            .map_err(|e| FetchError::Config(e.to_string()))?;
        if origin != self.oidc.idp_origin {
            return Err(FetchError::Config(format!(
                "{url} is outside idp_origin ({})",
                self.oidc.idp_origin.as_string()
            )));
        }
        ctx.check_deadline("the JWKS read")
            .map_err(|e| FetchError::Transient(e.log_detail.unwrap_or_default()))?;
        let req = UpstreamRequest::to_idp("GET", path, Vec::new(), Vec::new());
        match ctx.call_idp(&origin, &req, self.cfg.request_timeout_seconds) {
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

    /// The IdP's endpoints from its discovery document (read when a browser signs in, out, or
    /// refreshes: never on the path of an ordinary request).
    pub fn endpoints<H: Host>(&self, ctx: &mut Ctx<H>) -> Result<Endpoints, GatewayError> {
        let url = jwks::discovery_url(&self.oidc.issuer);
        let body = self.discovery(ctx).map_err(|e| unavailable(e, &url))?;
        session::parse_endpoints(&body, &self.oidc.idp_origin)
            .map_err(|d| unavailable(FetchError::Transient(d), &url))
    }

    /// One call to the token endpoint with the browser client's credentials.
    pub fn token_call<H: Host>(
        &self,
        ep: &Endpoints,
        b: &BrowserConfig,
        grant: &Grant,
        ctx: &mut Ctx<H>,
    ) -> Result<Tokens, TokenRefusal> {
        let (origin, path) = crate::config::parse_url("token_endpoint", &ep.token)
            .map_err(|e| GatewayError::config(e.to_string()))?;
        let body = session::token_request_body(b, grant);
        let headers = vec![
            (
                "content-type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            (
                "authorization".into(),
                session::client_auth_header(b).into_bytes(),
            ),
        ];
        let req = UpstreamRequest::to_idp("POST", path, headers, body);
        ctx.check_deadline("the token request")?;
        let answer = match ctx.call_idp(
            &self.oidc.idp_origin,
            &req,
            self.cfg.request_timeout_seconds,
        ) {
            Ok(a) => a,
            Err(SendFailure::Denied) => {
                return Err(GatewayError::config(format!(
                    "the platform refused the outbound call to {}: is idp_origin in allowed_outbound_hosts?",
                    origin.as_string()
                ))
                .into())
            }
            Err(e) => {
                return Err(unavailable(
                    FetchError::Transient(format!("{e:?} (request {})", ctx.rid)),
                    &ep.token,
                )
                .into())
            }
        };
        match answer.status {
            200 => session::parse_tokens(&answer.body)
                .map_err(|d| unavailable(FetchError::Transient(d), &ep.token).into()),
            400 | 401 => {
                let error = session::oauth_error(&answer.body);
                if matches!(error.as_str(), "invalid_client" | "unauthorized_client") {
                    return Err(GatewayError::config(format!(
                        "the IdP refused the gateway's client ({error}): check oidc_client_id and oidc_client_secret"
                    ))
                    .into());
                }
                Err(TokenRefusal::Refused(format!(
                    "token endpoint answered {} {error}",
                    answer.status
                )))
            }
            s => Err(unavailable(
                FetchError::Transient(format!("token endpoint answered {s}")),
                &ep.token,
            )
            .into()),
        }
    }
}

/// What readiness found about the IdP's issuer.
pub enum IssuerCheck {
    /// The discovery document names `oidc_issuer`.
    Ok,
    /// It names another issuer (the operator line has both).
    Mismatch(String),
    /// Discovery cannot be used as configured (e.g. the platform refuses the call).
    Invalid(String),
    /// The IdP did not answer usefully, and the gateway needs discovery.
    Unavailable(String),
    /// The gateway does not need discovery (`jwks_uri` set, no browser sign-in) and could not
    /// read it.
    Unchecked,
}

impl IssuerCheck {
    pub fn as_str(&self) -> &'static str {
        match self {
            IssuerCheck::Ok => "ok",
            IssuerCheck::Mismatch(_) => "mismatch",
            IssuerCheck::Invalid(_) => "invalid",
            IssuerCheck::Unavailable(_) => "unavailable",
            IssuerCheck::Unchecked => "unchecked",
        }
    }

    /// The operator's line for a failed check.
    pub fn problem(&self) -> Option<&str> {
        match self {
            IssuerCheck::Mismatch(d) | IssuerCheck::Invalid(d) | IssuerCheck::Unavailable(d) => {
                Some(d)
            }
            IssuerCheck::Ok | IssuerCheck::Unchecked => None,
        }
    }
}

const MISMATCH: &str = "oidc_issuer is ";

fn issuer_mismatch(configured: &str, url: &str, named: &str) -> String {
    format!(
        "{MISMATCH}`{configured}` but the IdP's discovery document at {url} names the issuer `{named}`: tokens from this IdP carry iss `{named}`; set oidc_issuer (SPIN_VARIABLE_OIDC_ISSUER) to exactly that"
    )
}

fn discovered_issuer(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("issuer")?
        .as_str()
        .map(str::to_string)
}

/// A failed call during sign-in: a configuration error, or the IdP unavailable for now.
pub fn unavailable(e: FetchError, what: &str) -> GatewayError {
    match e {
        FetchError::Config(d) => GatewayError::config(d),
        FetchError::Transient(d) => GatewayError::new(
            Reason::IdpUnavailable,
            "the identity provider cannot be reached for sign-in; try again later",
        )
        .with_log_detail(format!("{what}: {d}")),
    }
}
