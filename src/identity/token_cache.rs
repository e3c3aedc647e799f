//! The verified-token cache: what the gateway remembers in the key-value store about a bearer
//! token it has fully verified, and the pure rules for when that memory may stand in for a new
//! signature check.
//!
//! Why: an RS256 signature check in WebAssembly costs ~3 ms, and a training loop sends the same
//! token thousands of times. A cached verdict is only ever an *allow* for the exact token
//! (SHA-256 over the configuration that shaped the verdict and the token), while the key that
//! verified it is still the key the token selects in the current JWKS, inside the token's own
//! `exp`/`nbf` window (with the same clock skew) and at most `token_cache_seconds` after the
//! check. Anything else — a miss, a stale or foreign entry, an unreadable record — falls back
//! to the full check, which alone produces every refusal. Only the resulting principal (tenant,
//! subject, roles) is stored, never the token or its other claims.
//!
//! Entries live in 4096 slots (`tok:v1:<3 hex digits>`), so the store holds a bounded number of
//! them however many tokens an IdP issues; two live tokens sharing a slot only cost each other
//! the cache.

use super::jwks::Jwk;
use super::{hex, Identity};
use crate::config::{Config, OidcConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Hex digits of the token digest used as the slot name (16^3 = 4096 slots).
const SLOT_HEX_DIGITS: usize = 3;

/// Where a token's entry lives and the digest that identifies it inside the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    digest: String,
}

impl Slot {
    /// The digest covers every setting that shapes a verdict (issuer, audience, algorithms,
    /// skew, claim mapping), so a configuration change never reuses an older verdict.
    pub fn for_token(token: &str, oidc: &OidcConfig, cfg: &Config) -> Slot {
        let mut h = Sha256::new();
        let settings = format!(
            "v2\n{}\n{}\n{:?}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n",
            oidc.issuer,
            oidc.audience,
            oidc.allowed_algorithms,
            oidc.clock_skew_seconds,
            cfg.tenant_claim,
            cfg.subject_claim,
            cfg.role_claims,
            cfg.role_aliases,
            cfg.default_role,
            cfg.group_claims,
            cfg.tenant_group_pattern,
        );
        h.update(settings.as_bytes());
        h.update(token.as_bytes());
        let digest = hex(&h.finalize());
        Slot {
            key: format!("tok:v1:{}", &digest[..SLOT_HEX_DIGITS]),
            digest,
        }
    }

    /// The record to store after a full, successful check at `now`; `None` when the claims
    /// carry no numeric `exp` (such a token never verifies, so this is defensive).
    pub fn entry(
        &self,
        claims: &Map<String, Value>,
        jwk: &Jwk,
        identity: &Identity,
        now: u64,
    ) -> Option<Vec<u8>> {
        let exp = claims.get("exp").and_then(Value::as_f64)?;
        let nbf = match claims.get("nbf") {
            None => None,
            Some(v) => Some(v.as_f64()?),
        };
        let entry = Entry {
            digest: self.digest.clone(),
            key: key_fingerprint(jwk),
            // Rounded inwards: the cached window is never wider than the token's.
            exp: exp.floor().max(0.0) as u64,
            nbf: nbf.map(|n| n.ceil().max(0.0) as u64),
            at: now,
            id: identity.clone(),
            ws: None,
        };
        serde_json::to_vec(&entry).ok()
    }

    /// The identity of a cached verdict, when the entry in this slot is this token's, was made
    /// with `jwk` (the key the token selects now), is younger than `ttl` and the token's time
    /// window still holds at `now`; with the workspace the entry remembers as confirmed (read
    /// in the same pass). `None` means: verify in full.
    pub fn verdict(
        &self,
        stored: &[u8],
        jwk: &Jwk,
        now: u64,
        ttl: u64,
        skew: u64,
    ) -> Option<CachedVerdict> {
        let e: Entry = serde_json::from_slice(stored).ok()?;
        let fresh = e.at <= now && now < e.at.saturating_add(ttl);
        let in_window = now <= e.exp.saturating_add(skew)
            && e.nbf.is_none_or(|nbf| nbf <= now.saturating_add(skew));
        if e.digest != self.digest || !fresh || !in_window || e.key != key_fingerprint(jwk) {
            return None;
        }
        Some(CachedVerdict {
            identity: e.id,
            workspace: e.ws,
        })
    }
}

/// A cached verdict that stands: the principal, and the tenant's workspace with the time it
/// was last confirmed to exist, when the entry remembers one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedVerdict {
    pub identity: Identity,
    pub workspace: Option<(String, u64)>,
}

/// SHA-256 over the key's JSON form: a rotated or replaced key (even under the same `kid`)
/// never matches an entry made with its predecessor.
fn key_fingerprint(jwk: &Jwk) -> String {
    hex(&Sha256::digest(serde_json::to_vec(jwk).unwrap_or_default()))
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    digest: String,
    key: String,
    exp: u64,
    nbf: Option<u64>,
    at: u64,
    /// The identity the token proved (tenants with roles, groups, subject).
    id: Identity,
    /// `tenant_isolation=workspace`: the tenant's workspace and when it was last confirmed to
    /// exist (a copy of `ws:v1:<name>`), so a cached token settles its workspace without a
    /// second key-value read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ws: Option<(String, u64)>,
}

/// `stored` with the workspace `name` remembered as confirmed at `at`; `None` when `stored`
/// is not an entry.
pub fn with_workspace(stored: &[u8], name: &str, at: u64) -> Option<Vec<u8>> {
    let mut e: Entry = serde_json::from_slice(stored).ok()?;
    e.ws = Some((name.to_string(), at));
    serde_json::to_vec(&e).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::oidc_config;
    use crate::config::OidcConfig;
    use crate::vocab::rbac::Role;
    use serde_json::json;

    fn oidc(cfg: &Config) -> OidcConfig {
        cfg.oidc.clone().expect("oidc mode")
    }

    fn jwk(n: &str) -> Jwk {
        Jwk {
            kid: Some("k1".into()),
            kty: "RSA".into(),
            alg: Some("RS256".into()),
            use_: None,
            crv: None,
            n: Some(n.into()),
            e: Some("AQAB".into()),
            x: None,
            y: None,
        }
    }

    impl Slot {
        fn identity(
            &self,
            stored: &[u8],
            jwk: &Jwk,
            now: u64,
            ttl: u64,
            skew: u64,
        ) -> Option<Identity> {
            self.verdict(stored, jwk, now, ttl, skew)
                .map(|v| v.identity)
        }
    }

    fn principal() -> Identity {
        Identity::single("team-a", "alice", vec![Role::Editor])
    }

    fn claims(exp: u64, nbf: Option<u64>) -> Map<String, Value> {
        let mut m = json!({"exp": exp, "sub": "alice"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        if let Some(n) = nbf {
            m.insert("nbf".into(), json!(n));
        }
        m
    }

    fn slot(token: &str) -> Slot {
        let cfg = oidc_config();
        Slot::for_token(token, &oidc(&cfg), &cfg)
    }

    const NOW: u64 = 1_000_000;

    /// The record `s` stores for `claims`, made with key `n1` and `principal()` at `NOW`.
    fn verdict(s: &Slot, claims: &Map<String, Value>) -> Vec<u8> {
        s.entry(claims, &jwk("n1"), &principal(), NOW)
            .expect("entry")
    }

    #[test]
    fn a_stored_verdict_returns_its_principal() {
        let s = slot("a.b.c");
        let stored = verdict(&s, &claims(NOW + 3600, Some(NOW - 10)));
        assert_eq!(
            s.identity(&stored, &jwk("n1"), NOW + 5, 300, 60),
            Some(principal())
        );
        // Nothing of the token itself is kept.
        assert!(!String::from_utf8_lossy(&stored).contains("a.b.c"));
    }

    #[test]
    fn slots_are_bounded_and_digests_distinguish_tokens() {
        let (a, b) = (slot("token-one"), slot("token-two"));
        assert!(a.key.starts_with("tok:v1:") && a.key.len() == "tok:v1:".len() + 3);
        assert_ne!(a.digest, b.digest);
        // Another token's entry in the same slot is not this token's verdict.
        let other = Slot {
            key: a.key.clone(),
            digest: b.digest.clone(),
        };
        let stored = verdict(&other, &claims(NOW + 3600, None));
        assert_eq!(a.identity(&stored, &jwk("n1"), NOW, 300, 60), None);
    }

    #[test]
    fn configuration_that_shapes_the_verdict_changes_the_digest() {
        let base = slot("t");
        let cfg = oidc_config();
        let mut o = oidc(&cfg);
        o.audience = "other".into();
        assert_ne!(Slot::for_token("t", &o, &cfg), base);
        let mut o = oidc(&cfg);
        o.issuer = "https://idp.example.com/other".into();
        assert_ne!(Slot::for_token("t", &o, &cfg), base);
        let mut o = oidc(&cfg);
        o.clock_skew_seconds += 1;
        assert_ne!(Slot::for_token("t", &o, &cfg), base);
        let mut c = oidc_config();
        c.tenant_claim = vec!["org".into()];
        assert_ne!(Slot::for_token("t", &oidc(&c), &c), base);
        let mut c = oidc_config();
        c.role_aliases.push(("ops".into(), Role::Admin));
        assert_ne!(Slot::for_token("t", &oidc(&c), &c), base);
        let mut c = oidc_config();
        c.default_role = Some(Role::Viewer);
        assert_ne!(Slot::for_token("t", &oidc(&c), &c), base);
        // Settings that do not shape a verdict keep the digest.
        let mut c = oidc_config();
        c.request_timeout_seconds += 1;
        assert_eq!(Slot::for_token("t", &oidc(&c), &c), base);
    }

    #[test]
    fn a_different_key_never_reuses_the_verdict() {
        let s = slot("t");
        let stored = verdict(&s, &claims(NOW + 3600, None));
        assert_eq!(s.identity(&stored, &jwk("n2"), NOW, 300, 60), None);
    }

    #[test]
    fn time_bounds_fall_back_to_a_full_check() {
        let s = slot("t");
        let stored = verdict(&s, &claims(NOW + 100, Some(NOW + 50)));
        let at = |now, ttl, skew| s.identity(&stored, &jwk("n1"), now, ttl, skew).is_some();
        // Cache age: younger than ttl only, and never from the future.
        assert!(at(NOW + 60, 300, 60));
        assert!(!at(NOW + 60, 60, 60));
        assert!(!at(NOW - 1, 300, 60));
        assert!(!at(NOW, 0, 60));
        // exp + skew, as jwt-simple checks it.
        assert!(at(NOW + 160, 300, 60));
        assert!(!at(NOW + 161, 300, 60));
        // nbf - skew.
        assert!(!at(NOW, 300, 0));
        assert!(at(NOW + 50, 300, 0));
    }

    #[test]
    fn fractional_times_are_rounded_inwards() {
        let s = slot("t");
        let c = json!({"exp": (NOW + 10) as f64 + 0.9, "nbf": (NOW - 10) as f64 + 0.1});
        let stored = verdict(&s, c.as_object().expect("map"));
        assert!(s.identity(&stored, &jwk("n1"), NOW + 10, 300, 0).is_some());
        assert!(s.identity(&stored, &jwk("n1"), NOW + 11, 300, 0).is_none());
    }

    #[test]
    fn unusable_records_are_misses() {
        let s = slot("t");
        assert_eq!(s.identity(b"", &jwk("n1"), NOW, 300, 60), None);
        assert_eq!(
            s.identity(b"{\"digest\":1}", &jwk("n1"), NOW, 300, 60),
            None
        );
        let stored = verdict(&s, &claims(NOW + 3600, None));
        let tampered = String::from_utf8_lossy(&stored).replace("editor", "root");
        assert_eq!(
            s.identity(tampered.as_bytes(), &jwk("n1"), NOW, 300, 60),
            None
        );
        // Claims without a numeric exp are never cached.
        let no_exp = json!({"sub": "alice"});
        assert!(s
            .entry(
                no_exp.as_object().expect("map"),
                &jwk("n1"),
                &principal(),
                NOW
            )
            .is_none());
    }
}
