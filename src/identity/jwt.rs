//! Bearer JWT validation (RFC 8725): algorithm allow-list, key chosen by `kid` among JWKS keys
//! whose `kty`/`crv`/`alg`/`use` fit, signature and registered claims checked by jwt-simple,
//! `exp` required, unknown `crit` refused, keys never taken from the token (`jku`, `x5u`,
//! `jwk`, `x5c` are ignored). Each failure maps to its own audit reason.

use super::jwks::{Jwk, JwkSet};
use crate::config::OidcConfig;
use crate::error::{GatewayError, Reason};
use crate::mlflow::json::parse_strict;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::Value;

/// Tokens above this size are refused before any parsing (401 `token_too_large`).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

pub use crate::vocab::algorithm::Algorithm;

/// Whether a JWK's type (and curve) can carry this algorithm.
fn fits(alg: Algorithm, jwk: &Jwk) -> bool {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => jwk.kty == "RSA",
        ES256 => jwk.kty == "EC" && jwk.crv.as_deref() == Some("P-256"),
        ES384 => jwk.kty == "EC" && jwk.crv.as_deref() == Some("P-384"),
        EdDSA => jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519"),
    }
}

/// The parts of the (untrusted) JOSE header the gateway looks at before verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

fn unauth(reason: Reason, msg: &str) -> GatewayError {
    GatewayError::new(reason, msg)
}

fn decode_segment(seg: &str) -> Result<Vec<u8>, GatewayError> {
    if seg.is_empty()
        || !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unauth(
            Reason::TokenMalformed,
            "bearer token is not a compact JWS",
        ));
    }
    URL_SAFE_NO_PAD.decode(seg).map_err(|_| {
        unauth(
            Reason::TokenMalformed,
            "bearer token is not valid base64url",
        )
    })
}

/// Extracts the bearer token from the `Authorization` header values.
pub fn bearer_token(values: &[&[u8]]) -> Result<String, GatewayError> {
    let raw = match values {
        [] => return Err(unauth(Reason::TokenMissing, "missing bearer token")),
        [v] => *v,
        _ => {
            return Err(unauth(
                Reason::TokenMalformed,
                "more than one Authorization header",
            ))
        }
    };
    if raw.len() > MAX_TOKEN_BYTES + 16 {
        return Err(unauth(Reason::TokenTooLarge, "bearer token is too large"));
    }
    let s = std::str::from_utf8(raw)
        .map_err(|_| unauth(Reason::TokenMalformed, "Authorization header is not UTF-8"))?;
    let (scheme, token) = s.trim().split_once(' ').ok_or_else(|| {
        unauth(
            Reason::TokenMalformed,
            "Authorization must be `Bearer <jwt>`",
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauth(
            Reason::TokenMalformed,
            "Authorization must be `Bearer <jwt>`",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(unauth(Reason::TokenMissing, "missing bearer token"));
    }
    Ok(token.to_string())
}

/// Checks the token's shape and header before any key is looked up: size cap, three base64url
/// segments, JSON header, algorithm on the allow-list, no `crit`.
pub fn peek_header(token: &str, cfg: &OidcConfig) -> Result<Header, GatewayError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(unauth(Reason::TokenTooLarge, "bearer token is too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(unauth(
            Reason::TokenMalformed,
            "bearer token is not a compact JWS",
        ));
    }
    let header_bytes = decode_segment(parts[0])?;
    let header = parse_strict(&header_bytes)
        .map_err(|_| unauth(Reason::TokenMalformed, "token header is not a JSON object"))?;
    let Value::Object(h) = header else {
        return Err(unauth(
            Reason::TokenMalformed,
            "token header is not a JSON object",
        ));
    };
    let alg_name = h
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| unauth(Reason::TokenMalformed, "token header has no alg"))?;
    let alg = Algorithm::parse(alg_name)
        .filter(|a| cfg.allowed_algorithms.contains(a))
        .ok_or_else(|| unauth(Reason::AlgNotAllowed, "token algorithm is not allowed"))?;
    if let Some(crit) = h.get("crit") {
        // RFC 7515 §4.1.11: a recipient must reject extensions it does not understand; we
        // understand none.
        let empty = crit.as_array().is_some_and(|a| a.is_empty());
        if !empty {
            return Err(unauth(
                Reason::CritUnsupported,
                "token has unsupported critical headers",
            ));
        }
    }
    // Checked after `alg`, so an unsecured token (`alg: none`, empty signature segment) is
    // reported as `alg_not_allowed`, not `token_malformed`.
    decode_segment(parts[1])?;
    decode_segment(parts[2])?;
    let kid = match h.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(unauth(Reason::TokenMalformed, "token kid is not a string")),
    };
    Ok(Header { alg, kid })
}

/// Chooses the verification key: the JWKS entry with the token's `kid` whose type fits the
/// algorithm and whose `alg`/`use`, when present, agree. Without a `kid`, only an unambiguous
/// single fitting key is used.
pub fn select_key<'a>(header: &Header, keys: &'a JwkSet) -> Result<&'a Jwk, GatewayError> {
    let usable = |k: &&Jwk| {
        fits(header.alg, k)
            && k.alg.as_deref().is_none_or(|a| a == header.alg.name())
            && k.use_.as_deref().is_none_or(|u| u == "sig")
    };
    match &header.kid {
        Some(kid) => {
            let named: Vec<&Jwk> = keys
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return Err(unauth(
                    Reason::UnknownKid,
                    "token key id is not in the IdP's key set",
                ));
            }
            named.into_iter().find(usable).ok_or_else(|| {
                unauth(
                    Reason::AlgNotAllowed,
                    "token algorithm does not match the key it names",
                )
            })
        }
        None => {
            let fitting: Vec<&Jwk> = keys.keys.iter().filter(usable).collect();
            match fitting.as_slice() {
                [one] => Ok(one),
                _ => Err(unauth(
                    Reason::UnknownKid,
                    "token has no key id and no single key fits",
                )),
            }
        }
    }
}

fn map_jwt_error(e: &jwt_simple::Error) -> GatewayError {
    use jwt_simple::JWTError as J;
    let (reason, msg) = match e.downcast_ref::<J>() {
        Some(J::InvalidSignature) => (Reason::BadSignature, "token signature is invalid"),
        Some(J::TokenHasExpired) => (Reason::TokenExpired, "token has expired"),
        Some(J::TokenNotValidYet) | Some(J::ClockDrift) => {
            (Reason::TokenNotYetValid, "token is not valid yet")
        }
        Some(J::RequiredIssuerMismatch) | Some(J::RequiredIssuerMissing) => {
            (Reason::WrongIssuer, "token issuer is not accepted")
        }
        Some(J::RequiredAudienceMismatch) | Some(J::RequiredAudienceMissing) => {
            (Reason::WrongAudience, "token audience is not accepted")
        }
        Some(J::UnknownCriticalExtension) => (
            Reason::CritUnsupported,
            "token has unsupported critical headers",
        ),
        Some(J::AlgorithmMismatch) => (Reason::AlgNotAllowed, "token algorithm is not allowed"),
        Some(J::TokenTooLong) => (Reason::TokenTooLarge, "bearer token is too large"),
        Some(J::WeakKey) | Some(J::InvalidPublicKey) | Some(J::UnsupportedRSAModulus) => {
            (Reason::BadSignature, "token key is unusable")
        }
        _ => (Reason::TokenMalformed, "bearer token is malformed"),
    };
    unauth(reason, msg)
}

fn b64(field: &Option<String>) -> Result<Vec<u8>, GatewayError> {
    let s = field
        .as_deref()
        .ok_or_else(|| unauth(Reason::BadSignature, "token key is unusable"))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| unauth(Reason::BadSignature, "token key is unusable"))
}

fn ec_point(jwk: &Jwk) -> Result<Vec<u8>, GatewayError> {
    let mut p = vec![0x04u8];
    p.extend(b64(&jwk.x)?);
    p.extend(b64(&jwk.y)?);
    Ok(p)
}

/// Verifies signature and registered claims with the chosen key, then requires `exp` and
/// returns the payload as JSON (parsed strictly: duplicate claim names are refused).
pub fn verify(
    token: &str,
    header: &Header,
    jwk: &Jwk,
    cfg: &OidcConfig,
    now_secs: u64,
) -> Result<serde_json::Map<String, Value>, GatewayError> {
    verify_for(token, header, jwk, cfg, &cfg.audience, now_secs)
}

/// `verify` with another expected audience: an ID token's is the gateway's client id.
pub fn verify_for(
    token: &str,
    header: &Header,
    jwk: &Jwk,
    cfg: &OidcConfig,
    audience: &str,
    now_secs: u64,
) -> Result<serde_json::Map<String, Value>, GatewayError> {
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&[cfg.issuer.as_str()])),
        allowed_audiences: Some(HashSet::from_strings(&[audience])),
        time_tolerance: Some(Duration::from_secs(cfg.clock_skew_seconds)),
        artificial_time: Some(UnixTimeStamp::from_secs(now_secs)),
        max_token_length: Some(MAX_TOKEN_BYTES),
        accept_future: false,
        ..Default::default()
    };
    let unusable = |_| unauth(Reason::BadSignature, "token key is unusable");
    let claims: JWTClaims<NoCustomClaims> = match header.alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            let (n, e) = (b64(&jwk.n)?, b64(&jwk.e)?);
            let r = match header.alg {
                Algorithm::RS256 => RS256PublicKey::from_components(&n, &e)
                    .map_err(unusable)?
                    .verify_token(token, Some(options)),
                Algorithm::RS384 => RS384PublicKey::from_components(&n, &e)
                    .map_err(unusable)?
                    .verify_token(token, Some(options)),
                Algorithm::RS512 => RS512PublicKey::from_components(&n, &e)
                    .map_err(unusable)?
                    .verify_token(token, Some(options)),
                Algorithm::PS256 => PS256PublicKey::from_components(&n, &e)
                    .map_err(unusable)?
                    .verify_token(token, Some(options)),
                Algorithm::PS384 => PS384PublicKey::from_components(&n, &e)
                    .map_err(unusable)?
                    .verify_token(token, Some(options)),
                _ => PS512PublicKey::from_components(&n, &e)
                    .map_err(unusable)?
                    .verify_token(token, Some(options)),
            };
            r.map_err(|e| map_jwt_error(&e))?
        }
        Algorithm::ES256 => ES256PublicKey::from_bytes(&ec_point(jwk)?)
            .map_err(unusable)?
            .verify_token(token, Some(options))
            .map_err(|e| map_jwt_error(&e))?,
        Algorithm::ES384 => ES384PublicKey::from_bytes(&ec_point(jwk)?)
            .map_err(unusable)?
            .verify_token(token, Some(options))
            .map_err(|e| map_jwt_error(&e))?,
        Algorithm::EdDSA => Ed25519PublicKey::from_bytes(&b64(&jwk.x)?)
            .map_err(unusable)?
            .verify_token(token, Some(options))
            .map_err(|e| map_jwt_error(&e))?,
    };
    if claims.expires_at.is_none() {
        return Err(unauth(Reason::MissingExp, "token has no exp claim"));
    }
    let payload_seg = token.split('.').nth(1).unwrap_or_default();
    let payload = decode_segment(payload_seg)?;
    match parse_strict(&payload) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(unauth(
            Reason::TokenMalformed,
            "token claims are not a JSON object",
        )),
    }
}
