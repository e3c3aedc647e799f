//! The IdP's JSON Web Key Set as the gateway keeps it in the Spin key-value store: parsing,
//! the cached record, and the pure freshness rules (when to refetch, how long stale keys may
//! still be used, and the refetch rate limit that stops random `kid`s from amplifying traffic).

use crate::config::{parse_url, OidcConfig, Origin};
use crate::mlflow::json::parse_strict;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One public key from a JWKS. Only the members needed for verification are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Parses a JWKS document. Keys of unknown types or missing members are skipped; a document
/// with no usable key is an error, so a broken IdP answer never replaces good cached keys.
pub fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, String> {
    let v = parse_strict(bytes).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no `keys` array")?;
    let mut out = Vec::new();
    for k in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        let complete = match jwk.kty.as_str() {
            "RSA" => jwk.n.is_some() && jwk.e.is_some(),
            "EC" => jwk.crv.is_some() && jwk.x.is_some() && jwk.y.is_some(),
            "OKP" => jwk.crv.is_some() && jwk.x.is_some(),
            _ => false,
        };
        if complete && jwk.use_.as_deref().is_none_or(|u| u == "sig") {
            out.push(jwk);
        }
    }
    if out.is_empty() {
        return Err("JWKS contains no usable signing key".into());
    }
    Ok(JwkSet { keys: out })
}

/// Extracts `jwks_uri` from an OpenID discovery document and checks it lies inside the IdP
/// origin (the only origin Spin lets the component reach).
pub fn parse_discovery(bytes: &[u8], idp_origin: &Origin) -> Result<String, DiscoveryError> {
    let v = parse_strict(bytes)
        .map_err(|e| DiscoveryError::Malformed(format!("discovery document is not JSON: {e}")))?;
    let uri = v
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| DiscoveryError::Malformed("discovery document has no jwks_uri".into()))?;
    let (origin, _) =
        parse_url("jwks_uri", uri).map_err(|e| DiscoveryError::OutsideOrigin(e.to_string()))?;
    if &origin != idp_origin {
        return Err(DiscoveryError::OutsideOrigin(format!(
            "discovered jwks_uri origin {} is not idp_origin {}",
            origin.as_string(),
            idp_origin.as_string()
        )));
    }
    Ok(uri.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// The IdP answered with something unusable: a transient failure (keep cached keys).
    Malformed(String),
    /// The IdP points outside `idp_origin`: a configuration error.
    OutsideOrigin(String),
}

/// The discovery URL for an issuer.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// What the key-value store holds for one IdP: the last good key set and when it was fetched,
/// plus when a fetch was last attempted (successful or not) for the refetch rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JwksRecord {
    pub fetched_at: Option<u64>,
    pub keys: Option<JwkSet>,
    pub last_attempt_at: u64,
    /// The configuration error the last fetch found (e.g. the discovery document names another
    /// issuer), answered until the next fetch instead of "keys unavailable": it will not heal
    /// by retrying, and the operator's line names what to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

impl JwksRecord {
    /// A corrupt record reads as empty: the gateway then behaves as with a cold cache.
    pub fn decode(bytes: &[u8]) -> JwksRecord {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The KV key for an IdP's record: derived from issuer and JWKS source, so changing either
/// never reuses keys fetched for another configuration.
pub fn record_key(cfg: &OidcConfig) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(cfg.issuer.as_bytes());
    h.update(b"\n");
    h.update(cfg.jwks_uri.as_deref().unwrap_or("discovery").as_bytes());
    let digest = h.finalize();
    format!("jwks:v1:{}", super::hex(&digest[..12]))
}

/// Whether to fetch the JWKS now: never more than once per `jwks_min_refresh_seconds`;
/// otherwise when there are no keys, when they are older than `jwks_cache_seconds`, or when
/// the token names a `kid` the cached set does not have.
pub fn should_fetch(record: &JwksRecord, kid: Option<&str>, now: u64, cfg: &OidcConfig) -> bool {
    let rate_limited = record.last_attempt_at > 0
        && now
            < record
                .last_attempt_at
                .saturating_add(cfg.jwks_min_refresh_seconds);
    if rate_limited {
        return false;
    }
    match (&record.keys, record.fetched_at) {
        (Some(keys), Some(at)) => {
            now.saturating_sub(at) >= cfg.jwks_cache_seconds
                || kid.is_some_and(|k| !keys.has_kid(k))
        }
        _ => true,
    }
}

/// The keys that may be used now: cached keys stay usable up to `jwks_cache_seconds +
/// jwks_max_stale_seconds` after their fetch (the IdP may be down); after that, none (503).
pub fn usable_keys<'a>(record: &'a JwksRecord, now: u64, cfg: &OidcConfig) -> Option<&'a JwkSet> {
    let at = record.fetched_at?;
    let limit = cfg
        .jwks_cache_seconds
        .saturating_add(cfg.jwks_max_stale_seconds);
    if now.saturating_sub(at) <= limit {
        record.keys.as_ref()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::oidc_config;

    fn cfg() -> OidcConfig {
        oidc_config().oidc.unwrap()
    }

    #[test]
    fn record_key_is_a_hex_digest_of_issuer_and_source() {
        // SHA-256 of "https://idp.example.com/realms/r\ndiscovery", first 12 bytes.
        assert_eq!(record_key(&cfg()), "jwks:v1:772067a269a7c6c942c864f3");
    }

    fn record(fetched_at: u64, last_attempt: u64) -> JwksRecord {
        JwksRecord {
            fetched_at: Some(fetched_at),
            keys: Some(JwkSet {
                keys: vec![Jwk {
                    kid: Some("k1".into()),
                    kty: "OKP".into(),
                    alg: None,
                    use_: None,
                    crv: Some("Ed25519".into()),
                    n: None,
                    e: None,
                    x: Some("AA".into()),
                    y: None,
                }],
            }),
            last_attempt_at: last_attempt,
            config_error: None,
        }
    }

    #[test]
    fn cold_cache_fetches() {
        assert!(should_fetch(&JwksRecord::default(), None, 1000, &cfg()));
    }

    #[test]
    fn fresh_cache_does_not_fetch_for_known_kid() {
        let r = record(1000, 1000);
        assert!(!should_fetch(&r, Some("k1"), 1100, &cfg()));
    }

    #[test]
    fn old_cache_fetches() {
        let r = record(1000, 1000);
        assert!(should_fetch(&r, Some("k1"), 1000 + 300, &cfg()));
    }

    #[test]
    fn unknown_kid_fetches_but_only_once_per_min_refresh() {
        let r = record(1000, 1000);
        assert!(!should_fetch(&r, Some("zz"), 1010, &cfg()));
        assert!(should_fetch(&r, Some("zz"), 1030, &cfg()));
        let cold = JwksRecord {
            last_attempt_at: 1000,
            ..Default::default()
        };
        assert!(!should_fetch(&cold, None, 1029, &cfg()));
    }

    #[test]
    fn stale_keys_usable_until_max_stale() {
        let r = record(1000, 1000);
        let c = cfg();
        assert!(usable_keys(&r, 1000 + 300 + 3600, &c).is_some());
        assert!(usable_keys(&r, 1000 + 300 + 3601, &c).is_none());
        assert!(usable_keys(&JwksRecord::default(), 1, &c).is_none());
    }

    #[test]
    fn malformed_jwks_is_an_error() {
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
        assert!(parse_jwks(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#).is_err());
        assert!(
            parse_jwks(br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","use":"enc"}]}"#).is_err()
        );
        let ok = parse_jwks(
            br#"{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"},{"kty":"oct"}]}"#,
        )
        .unwrap();
        assert_eq!(ok.keys.len(), 1);
    }

    #[test]
    fn discovery_must_stay_inside_idp_origin() {
        let c = cfg();
        let ok = parse_discovery(
            br#"{"jwks_uri":"https://idp.example.com/certs"}"#,
            &c.idp_origin,
        );
        assert_eq!(ok.unwrap(), "https://idp.example.com/certs");
        let bad = parse_discovery(
            br#"{"jwks_uri":"https://evil.example.net/certs"}"#,
            &c.idp_origin,
        );
        assert!(matches!(bad, Err(DiscoveryError::OutsideOrigin(_))));
        assert!(matches!(
            parse_discovery(b"[]", &c.idp_origin),
            Err(DiscoveryError::Malformed(_))
        ));
    }

    #[test]
    fn record_roundtrip_and_corruption() {
        let r = record(5, 6);
        assert_eq!(JwksRecord::decode(&r.encode()), r);
        assert_eq!(JwksRecord::decode(b"garbage"), JwksRecord::default());
    }
}
