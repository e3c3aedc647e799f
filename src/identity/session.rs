//! Browser sessions (OIDC authorization-code flow with PKCE), pure: the sealed cookies, the
//! sign-in state, the URLs sent to the IdP, the IdP's answers, and the browser-facing rules
//! (which requests are navigations, which cookie-borne requests are same-origin, which return
//! paths are safe). `pipeline::signin` does the I/O.
//!
//! The session lives in the cookie, not in the key-value store: the gateway stays stateless
//! across instances, a session costs no key-value read per request, and nothing grows in the
//! store for sessions nobody ends. The cookie is sealed with AES-256-GCM (key from the secret
//! variable `session_cookie_keys`), so the page, the browser's storage and anyone who copies it
//! see only ciphertext. It holds the principal as verified from the access token, the access
//! token's lifetime, the refresh token and, when it fits, the ID token for the IdP's logout;
//! never the access token itself (the gateway does not forward it).

use super::Identity;
use crate::config::{BrowserConfig, Origin};
use crate::mlflow::json::parse_strict;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The session cookie. `__Host-`: Secure, `Path=/`, no `Domain`, so no sibling host can set
/// or read it.
pub const SESSION_COOKIE: &str = "__Host-mlflow-session";
/// The sign-in cookie: state, nonce, PKCE verifier and return path of one sign-in attempt.
pub const SIGNIN_COOKIE: &str = "__Host-mlflow-signin";
/// How long a sign-in attempt may take at the IdP.
pub const SIGNIN_SECONDS: u64 = 600;
/// Browsers keep cookies of up to 4096 bytes (name, value and attributes); the ID token (only
/// a logout hint) is left out when the cookie would pass this.
pub const MAX_COOKIE_BYTES: usize = 3800;
/// Longest cookie value accepted before any decryption is tried.
const MAX_SEALED_BYTES: usize = 8192;
/// Longest return path (`rd`) kept.
const MAX_RETURN_PATH: usize = 2048;
const NONCE_BYTES: usize = 12;

/// A browser session, as sealed into `SESSION_COOKIE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The identity as verified from the access token.
    #[serde(rename = "id")]
    pub identity: Identity,
    /// The access token's `iat` (or the time it was received) and `exp`: the refresh point.
    #[serde(rename = "ai")]
    pub access_issued_at: u64,
    #[serde(rename = "ae")]
    pub access_expires_at: u64,
    /// When the session ends whatever the refreshes: sign-in + `session_max_seconds`.
    #[serde(rename = "e")]
    pub ends_at: u64,
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(rename = "it", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// What a session allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Use it as it is.
    Valid,
    /// Two thirds of the access token's lifetime have passed: refresh now; the current
    /// principal still holds while the access token is unexpired.
    RefreshDue { access_valid: bool },
    /// Past `ends_at`, or the access token expired with no refresh token.
    Expired,
}

impl Session {
    /// A session for `identity`, whose access token was issued at `issued_at` and expires at
    /// `expires_at`, keeping the IdP's refresh token and ID token.
    pub fn new(
        identity: &Identity,
        (issued_at, expires_at): (u64, u64),
        ends_at: u64,
        refresh_token: Option<String>,
        id_token: Option<String>,
    ) -> Session {
        Session {
            identity: identity.clone(),
            access_issued_at: issued_at,
            access_expires_at: expires_at.min(ends_at),
            ends_at,
            refresh_token,
            id_token,
        }
    }

    /// The refresh point: two thirds into the access token's lifetime.
    pub fn refresh_at(&self) -> u64 {
        let life = self.access_expires_at.saturating_sub(self.access_issued_at);
        self.access_expires_at.saturating_sub(life / 3)
    }

    pub fn standing(&self, now: u64) -> Standing {
        let access_valid = now < self.access_expires_at;
        if now >= self.ends_at || (!access_valid && self.refresh_token.is_none()) {
            Standing::Expired
        } else if now >= self.refresh_at() && self.refresh_token.is_some() {
            Standing::RefreshDue { access_valid }
        } else {
            Standing::Valid
        }
    }

    /// Seconds until the cookie should disappear from the browser.
    pub fn max_age(&self, now: u64) -> u64 {
        self.ends_at.saturating_sub(now)
    }
}

/// One sign-in attempt, as sealed into `SIGNIN_COOKIE` between `/oauth2/sign_in` and
/// `/oauth2/callback`: the browser that started it is the only one that can finish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub return_path: String,
    pub started_at: u64,
}

impl SignIn {
    /// A fresh attempt from 96 random bytes (state, nonce and verifier 32 bytes each).
    pub fn new(random: &[u8; 96], return_path: String, now: u64) -> SignIn {
        SignIn {
            state: URL_SAFE_NO_PAD.encode(&random[..32]),
            nonce: URL_SAFE_NO_PAD.encode(&random[32..64]),
            verifier: URL_SAFE_NO_PAD.encode(&random[64..]),
            return_path,
            started_at: now,
        }
    }

    pub fn expired(&self, now: u64) -> bool {
        now >= self.started_at.saturating_add(SIGNIN_SECONDS)
    }

    /// The PKCE S256 challenge for this attempt's verifier (RFC 7636 §4.2).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// Seals `plain` for the cookie `name` (the name is the associated data, so one cookie's value
/// cannot be replayed as another's): base64url(nonce ‖ ciphertext ‖ tag).
pub fn seal(key: &[u8; 32], nonce: [u8; NONCE_BYTES], name: &str, plain: &[u8]) -> Option<String> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plain,
                aad: name.as_bytes(),
            },
        )
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens a value sealed by `seal` with any of `keys` (the first seals; the others are still
/// accepted during a rotation). `None` for anything tampered, truncated, or sealed with an
/// unknown key.
pub fn open(keys: &[[u8; 32]], name: &str, value: &str) -> Option<Vec<u8>> {
    if value.len() > MAX_SEALED_BYTES {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
    if raw.len() < NONCE_BYTES + 16 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
    keys.iter().find_map(|key| {
        Aes256Gcm::new_from_slice(key)
            .ok()?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .ok()
    })
}

/// Seals a session, leaving the ID token out when the cookie would not fit a browser.
pub fn seal_session(
    cfg: &BrowserConfig,
    nonce: [u8; NONCE_BYTES],
    session: &Session,
    now: u64,
) -> Option<String> {
    let key = cfg.cookie_keys.first()?;
    let seal_one = |s: &Session| {
        let json = serde_json::to_vec(s).ok()?;
        let value = seal(key, nonce, SESSION_COOKIE, &json)?;
        Some(set_cookie(SESSION_COOKIE, &value, s.max_age(now)))
    };
    let cookie = seal_one(session)?;
    if cookie.len() <= MAX_COOKIE_BYTES || session.id_token.is_none() {
        return (cookie.len() <= MAX_COOKIE_BYTES).then_some(cookie);
    }
    let lean = Session {
        id_token: None,
        ..session.clone()
    };
    seal_one(&lean).filter(|c| c.len() <= MAX_COOKIE_BYTES)
}

pub fn open_session(cfg: &BrowserConfig, value: &str) -> Option<Session> {
    let plain = open(&cfg.cookie_keys, SESSION_COOKIE, value)?;
    serde_json::from_slice(&plain).ok()
}

pub fn seal_signin(cfg: &BrowserConfig, nonce: [u8; NONCE_BYTES], s: &SignIn) -> Option<String> {
    let key = cfg.cookie_keys.first()?;
    let value = seal(key, nonce, SIGNIN_COOKIE, &serde_json::to_vec(s).ok()?)?;
    Some(set_cookie(SIGNIN_COOKIE, &value, SIGNIN_SECONDS))
}

pub fn open_signin(cfg: &BrowserConfig, value: &str) -> Option<SignIn> {
    let plain = open(&cfg.cookie_keys, SIGNIN_COOKIE, value)?;
    serde_json::from_slice(&plain).ok()
}

/// A `Set-Cookie` value for one of the gateway's cookies.
pub fn set_cookie(name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// A cookie sent more than once: a `__Host-` cookie cannot legitimately be, so it is refused
/// rather than one of the values picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateCookie;

/// The value of cookie `name` from the request's `Cookie` headers.
pub fn cookie_value(headers: &[&[u8]], name: &str) -> Result<Option<String>, DuplicateCookie> {
    let mut found: Option<String> = None;
    for h in headers {
        let Ok(s) = std::str::from_utf8(h) else {
            continue;
        };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k.trim() == name {
                    if found.is_some() {
                        return Err(DuplicateCookie);
                    }
                    found = Some(v.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// A sign-in endpoint's query (`rd`, and the IdP's `code`, `state`, `error` on the callback),
/// form-decoded; a name given twice is refused (`Err` names it) rather than one value picked.
pub fn query_params(raw: &str) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(k.to_string());
        }
    }
    Ok(out)
}

/// The MLflow UI copies every cookie whose name starts with this into a request header of the
/// rest of the name (`mlflow-request-header-Authorization` → `Authorization`), on every call it
/// makes. Such a cookie needs no `__Host-` prefix, so a sibling host or any plain-http answer
/// can plant one: the gateway never sets them and refuses requests that carry them.
pub const HEADER_COOKIE_PREFIX: &str = "mlflow-request-header-";

/// The names of the request's cookies that the MLflow UI would turn into request headers (the
/// prefix matched without regard to case, a superset of what the UI matches).
pub fn header_cookies(headers: &[&[u8]]) -> Vec<String> {
    let mut found = Vec::new();
    for h in headers {
        let Ok(s) = std::str::from_utf8(h) else {
            continue;
        };
        for part in s.split(';') {
            let name = part.split_once('=').map_or(part, |(k, _)| k).trim();
            let planted = name
                .get(..HEADER_COOKIE_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(HEADER_COOKIE_PREFIX));
            if planted && !found.iter().any(|f: &String| f == name) {
                found.push(name.to_string());
            }
        }
    }
    found
}

/// `Set-Cookie` values that delete cookie `name` wherever this gateway's answers can reach it:
/// host-only, and with `Domain=` set to `host` and to each parent domain of it (a sibling host
/// plants its cookie on a shared parent). Path `/` only: a cookie planted on another path keeps
/// being refused, never honoured.
pub fn delete_everywhere(name: &str, host: Option<&str>) -> Vec<String> {
    let clear = |domain: Option<&str>| {
        let domain = domain.map(|d| format!("; Domain={d}")).unwrap_or_default();
        format!("{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{domain}")
    };
    let mut out = vec![clear(None)];
    let named = host.filter(|h| {
        h.contains('.')
            && !h.starts_with('[')
            && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    });
    if let Some(h) = named {
        let labels: Vec<&str> = h.split('.').collect();
        for i in 0..labels.len().saturating_sub(1) {
            out.push(clear(Some(&labels[i..].join("."))));
        }
    }
    out
}

/// The return path after sign-in: a path on this gateway, never another origin. `None`
/// refuses it: absolute URLs, scheme-relative `//host`, `/\host` (browsers read `\` as `/`),
/// controls and whitespace.
pub fn return_path(rd: Option<&str>) -> Option<String> {
    let rd = match rd {
        None | Some("") => return Some("/".into()),
        Some(r) => r,
    };
    let b = rd.as_bytes();
    let ok = rd.len() <= MAX_RETURN_PATH
        && b[0] == b'/'
        && !matches!(b.get(1), Some(b'/') | Some(b'\\'))
        && !rd.contains('\\')
        && !rd.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then(|| rd.to_string())
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
}

/// A browser loading a page (not a script's fetch): `Sec-Fetch-Mode: navigate`, or, from a
/// browser that does not send fetch metadata, an `Accept` that asks for HTML. Only GET/HEAD.
pub fn is_navigation(method: &str, headers: &[(String, Vec<u8>)]) -> bool {
    if method != "GET" && method != "HEAD" {
        return false;
    }
    match header(headers, "sec-fetch-mode") {
        Some(mode) => mode.eq_ignore_ascii_case("navigate"),
        None => header(headers, "accept").is_some_and(|a| a.contains("text/html")),
    }
}

/// Paths that only API clients call: they answer 401, never a redirect to sign-in.
pub fn is_api_path(path: &str) -> bool {
    ["/api/", "/ajax-api/", "/graphql", "/oauth2/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Whether a cookie-borne request may change state: safe methods always; others only from the
/// gateway's own origin (`Origin`, or without it `Sec-Fetch-Site: same-origin`). A request with
/// neither is refused: a browser always sends one of them on a POST.
pub fn same_origin_or_safe(method: &str, headers: &[(String, Vec<u8>)], own: &Origin) -> bool {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return true;
    }
    match (header(headers, "origin"), header(headers, "sec-fetch-site")) {
        (Some(origin), site) => {
            origin.eq_ignore_ascii_case(&own.as_string())
                && site.is_none_or(|s| s.eq_ignore_ascii_case("same-origin"))
        }
        (None, Some(site)) => site.eq_ignore_ascii_case("same-origin"),
        (None, None) => false,
    }
}

/// The IdP's endpoints from its discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub end_session: Option<String>,
}

/// Reads the endpoints from a discovery document. The token endpoint is called by the gateway,
/// so it must lie inside `idp_origin`; the others are only sent to the browser.
pub fn parse_endpoints(bytes: &[u8], idp_origin: &Origin) -> Result<Endpoints, String> {
    let v = parse_strict(bytes).map_err(|e| format!("discovery document is not JSON: {e}"))?;
    let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let authorization = field("authorization_endpoint")
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or("discovery document has no usable authorization_endpoint")?;
    let token = field("token_endpoint").ok_or("discovery document has no token_endpoint")?;
    let (origin, _) =
        crate::config::parse_url("token_endpoint", &token).map_err(|e| e.to_string())?;
    if &origin != idp_origin {
        return Err(format!(
            "discovered token_endpoint origin {} is not idp_origin {}",
            origin.as_string(),
            idp_origin.as_string()
        ));
    }
    let end_session = field("end_session_endpoint")
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    Ok(Endpoints {
        authorization,
        token,
        end_session,
    })
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", q.finish())
}

/// Where `/oauth2/sign_in` sends the browser.
pub fn authorize_url(ep: &Endpoints, cfg: &BrowserConfig, s: &SignIn) -> String {
    with_query(
        &ep.authorization,
        &[
            ("response_type", "code"),
            ("client_id", &cfg.client_id),
            ("redirect_uri", &cfg.redirect_url),
            ("scope", &cfg.scopes),
            ("state", &s.state),
            ("nonce", &s.nonce),
            ("code_challenge", &s.challenge()),
            ("code_challenge_method", "S256"),
        ],
    )
}

/// Where `/oauth2/sign_out` sends the browser (RP-initiated logout): back to the gateway's root
/// afterwards, which starts a new sign-in.
pub fn logout_url(end_session: &str, cfg: &BrowserConfig, id_token: Option<&str>) -> String {
    let back = format!("{}/", cfg.public_origin.as_string());
    let mut pairs = vec![
        ("client_id", cfg.client_id.as_str()),
        ("post_logout_redirect_uri", back.as_str()),
    ];
    if let Some(t) = id_token {
        pairs.push(("id_token_hint", t));
    }
    with_query(end_session, &pairs)
}

/// The form body of a token request: the code exchange (with the PKCE verifier) or a refresh.
pub enum Grant<'a> {
    Code { code: &'a str, verifier: &'a str },
    Refresh { refresh_token: &'a str },
}

pub fn token_request_body(cfg: &BrowserConfig, grant: &Grant) -> Vec<u8> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::Code { code, verifier } => {
            q.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &cfg.redirect_url)
                .append_pair("code_verifier", verifier);
        }
        Grant::Refresh { refresh_token } => {
            q.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh_token);
        }
    }
    q.finish().into_bytes()
}

/// `client_secret_basic` (RFC 6749 §2.3.1: both parts form-urlencoded first).
pub fn client_auth_header(cfg: &BrowserConfig) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        enc(&cfg.client_id),
        enc(cfg.client_secret.expose())
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The token endpoint's answer (the parts the gateway uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

pub fn parse_tokens(bytes: &[u8]) -> Result<Tokens, String> {
    let v = parse_strict(bytes).map_err(|_| "token response is not JSON".to_string())?;
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(t) = field("token_type") {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err(format!("token_type {t} is not Bearer"));
        }
    }
    Ok(Tokens {
        access_token: field("access_token").ok_or("token response has no access_token")?,
        id_token: field("id_token"),
        refresh_token: field("refresh_token"),
    })
}

/// The OAuth error code of a refused token request (`invalid_grant`, …), for the log.
pub fn oauth_error(bytes: &[u8]) -> String {
    parse_strict(bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "unrecognised answer".into())
}

#[cfg(test)]
mod tests;
