//! OIDC bearer-token validation, end to end through the pure functions the pipeline calls:
//! `jwt::bearer_token` → `jwt::peek_header` → `jwt::select_key` → `jwt::verify` →
//! `claims::identity_from_claims`.
//!
//! Every key is generated here (RSA once per test binary: it is slow in debug builds), the
//! JWKS is built from the public key components the way an IdP publishes it, and every token
//! carries explicit `iat`/`nbf`/`exp` relative to the fixed `NOW` passed to `verify`, so no
//! test depends on the wall clock. Tokens jwt-simple cannot produce (custom or malicious
//! headers) are assembled by hand and, where a real signature matters, signed with the raw
//! Ed25519 key.

use super::claims::identity_from_claims;
use super::jwks::{self, Jwk, JwkSet};
use super::jwt::{self, Algorithm, Header, MAX_TOKEN_BYTES};
use super::Identity;
use crate::config::tests::{lookup_with, oidc_config};
use crate::config::{Config, OidcConfig};
use crate::error::{GatewayError, Reason};
use crate::policy::Role;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The fixed "now" every token is minted around and verified at.
const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example.com/realms/r";
const AUD: &str = "mlflow";

// ---------------------------------------------------------------------------------------------
// Keys and the JWKS built from them
// ---------------------------------------------------------------------------------------------

/// The IdP's RSA signing key (kid `rsa-1`, published with `alg: RS256`, and again as `rsa-any`
/// without `alg`/`use` so RS384/RS512/PS256 tokens can use the same modulus).
fn rsa() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"))
}

/// A second RSA key the IdP never published (an attacker's, or another IdP's).
fn rsa_other() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-2"))
}

fn es256() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec-256"))
}

fn es384() -> &'static ES384KeyPair {
    static KEY: OnceLock<ES384KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES384KeyPair::generate().with_key_id("ec-384"))
}

fn ed() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| Ed25519KeyPair::generate().with_key_id("ed-1"))
}

fn b64u(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ts(secs: u64) -> UnixTimeStamp {
    UnixTimeStamp::from_secs(secs)
}

fn jwk(kid: &str, kty: &str) -> Jwk {
    Jwk {
        kid: Some(kid.to_string()),
        kty: kty.to_string(),
        alg: None,
        use_: None,
        crv: None,
        n: None,
        e: None,
        x: None,
        y: None,
    }
}

fn rsa_jwk(kid: &str, key: &RS256KeyPair, alg: Option<&str>, use_: Option<&str>) -> Jwk {
    let c = key.public_key().to_components();
    Jwk {
        alg: alg.map(str::to_string),
        use_: use_.map(str::to_string),
        n: Some(b64u(&c.n)),
        e: Some(b64u(&c.e)),
        ..jwk(kid, "RSA")
    }
}

/// `point` is the SEC1 uncompressed point `04 || x || y`.
fn ec_jwk(kid: &str, crv: &str, alg: &str, point: &[u8]) -> Jwk {
    assert_eq!(point[0], 0x04, "uncompressed SEC1 point");
    let coords = &point[1..];
    let (x, y) = coords.split_at(coords.len() / 2);
    Jwk {
        crv: Some(crv.to_string()),
        alg: Some(alg.to_string()),
        use_: Some("sig".to_string()),
        x: Some(b64u(x)),
        y: Some(b64u(y)),
        ..jwk(kid, "EC")
    }
}

fn es256_jwk() -> Jwk {
    let point = es256().public_key().public_key().to_bytes_uncompressed();
    assert_eq!(point.len(), 65);
    ec_jwk("ec-256", "P-256", "ES256", &point)
}

fn es384_jwk() -> Jwk {
    let point = es384().public_key().public_key().to_bytes_uncompressed();
    assert_eq!(point.len(), 97);
    ec_jwk("ec-384", "P-384", "ES384", &point)
}

fn ed_jwk() -> Jwk {
    Jwk {
        crv: Some("Ed25519".to_string()),
        x: Some(b64u(ed().public_key().to_bytes())),
        ..jwk("ed-1", "OKP")
    }
}

/// The IdP's published key set.
fn jwks() -> JwkSet {
    JwkSet {
        keys: vec![
            rsa_jwk("rsa-1", rsa(), Some("RS256"), Some("sig")),
            rsa_jwk("rsa-any", rsa(), None, None),
            es256_jwk(),
            es384_jwk(),
            ed_jwk(),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

type Custom = Map<String, Value>;

fn obj(v: Value) -> Custom {
    match v {
        Value::Object(m) => m,
        other => panic!("expected a JSON object, got {other}"),
    }
}

/// Claims valid at `NOW` for `iss`/`aud`, subject `alice`, plus `custom`.
fn claims_for(iss: &str, aud: &str, custom: Value) -> JWTClaims<Custom> {
    let mut c = Claims::with_custom_claims(obj(custom), Duration::from_secs(600))
        .with_issuer(iss)
        .with_audience(aud)
        .with_subject("alice");
    c.issued_at = Some(ts(NOW - 10));
    c.invalid_before = Some(ts(NOW - 10));
    c.expires_at = Some(ts(NOW + 600));
    c
}

fn claims(custom: Value) -> JWTClaims<Custom> {
    claims_for(ISS, AUD, custom)
}

/// The default claim set: tenant `team-a`, roles `editor` (from `roles`) and `viewer` (from
/// `groups`, next to a group no alias knows).
fn std_claims() -> JWTClaims<Custom> {
    claims(json!({
        "tenant_id": "team-a",
        "roles": ["editor"],
        "groups": ["viewer", "staff"],
    }))
}

/// The first tenant and its roles, as single-tenant tokens give them.
trait FirstTenant {
    fn tenant(&self) -> &str;
    fn roles(&self) -> Vec<Role>;
}

impl FirstTenant for Identity {
    fn tenant(&self) -> &str {
        self.first_tenant().unwrap_or_default()
    }
    fn roles(&self) -> Vec<Role> {
        self.memberships
            .first()
            .map(|m| m.roles.clone())
            .unwrap_or_default()
    }
}

fn std_principal() -> Identity {
    Identity {
        groups: vec!["viewer".into(), "staff".into()],
        ..Identity::single("team-a", "alice", vec![Role::Viewer, Role::Editor])
    }
}

fn rs256(c: JWTClaims<Custom>) -> String {
    rsa().sign(c).unwrap()
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_string).collect()
}

fn decode_json(seg: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

/// The payload every hand-built token carries unless a test says otherwise.
fn raw_payload() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "tenant_id": "team-a",
        "roles": ["editor"],
    })
}

/// `header.payload` from raw JSON text (so duplicate names can be expressed).
fn signing_input(header: &str, payload: &str) -> String {
    format!("{}.{}", b64u(header), b64u(payload))
}

/// A compact JWS over any header and payload text, genuinely signed by the published
/// Ed25519 key: whatever the gateway refuses, it refuses for the header or claims, not for a
/// broken signature.
fn ed_signed(header: &str, payload: &str) -> String {
    let input = signing_input(header, payload);
    let sig = ed().key_pair().as_ref().sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64u(sig.as_slice()))
}

// ---------------------------------------------------------------------------------------------
// The flow the pipeline runs
// ---------------------------------------------------------------------------------------------

fn config_with(extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("oidc_issuer", ISS),
        ("oidc_audience", AUD),
        ("idp_origin", "https://idp.example.com"),
    ];
    vars.extend_from_slice(extra);
    Config::from_lookup(lookup_with(&vars)).unwrap()
}

fn oidc() -> OidcConfig {
    oidc_config().oidc.unwrap()
}

/// `Authorization` header values → principal, chained exactly as `shell::run` does in oidc mode.
fn run(
    authorization: &[&[u8]],
    keys: &JwkSet,
    cfg: &Config,
    now: u64,
) -> Result<Identity, GatewayError> {
    let oidc = cfg.oidc.as_ref().unwrap();
    let token = jwt::bearer_token(authorization)?;
    let header = jwt::peek_header(&token, oidc)?;
    let jwk = jwt::select_key(&header, keys)?;
    let claims = jwt::verify(&token, &header, jwk, oidc, now)?;
    identity_from_claims(&claims, cfg)
}

fn auth_with(token: &str, keys: &JwkSet, cfg: &Config, now: u64) -> Result<Identity, GatewayError> {
    let value = format!("Bearer {token}");
    run(&[value.as_bytes()], keys, cfg, now)
}

fn auth(token: &str) -> Result<Identity, GatewayError> {
    auth_with(token, &jwks(), &oidc_config(), NOW)
}

/// Asserts the failure's reason and status, and that no token material leaks into what is
/// shown to the client or logged.
#[track_caller]
fn assert_denied(result: Result<Identity, GatewayError>, reason: Reason, status: u16) {
    let err = match result {
        Ok(p) => panic!("expected {} ({status}), got {p:?}", reason.as_str()),
        Err(e) => e,
    };
    assert_eq!(err.reason, reason, "{err}");
    assert_eq!(err.status(), status, "{err}");
    for text in std::iter::once(err.message.as_str()).chain(err.log_detail.as_deref()) {
        assert!(
            !text.contains("eyJ"),
            "token material in error text: {text}"
        );
    }
}

#[track_caller]
fn assert_unauth(result: Result<Identity, GatewayError>, reason: Reason) {
    assert_denied(result, reason, 401);
}

#[track_caller]
fn assert_forbidden(result: Result<Identity, GatewayError>, reason: Reason) {
    assert_denied(result, reason, 403);
}

// ---------------------------------------------------------------------------------------------
// Valid tokens, one per algorithm
// ---------------------------------------------------------------------------------------------

#[test]
fn rs256_token_passes() {
    assert_eq!(auth(&rs256(std_claims())).unwrap(), std_principal());
}

#[test]
fn rs384_token_passes() {
    let key = RS384KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("rsa-any");
    assert_eq!(
        auth(&key.sign(std_claims()).unwrap()).unwrap(),
        std_principal()
    );
}

#[test]
fn rs512_token_passes() {
    let key = RS512KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("rsa-any");
    assert_eq!(
        auth(&key.sign(std_claims()).unwrap()).unwrap(),
        std_principal()
    );
}

#[test]
fn ps256_token_passes() {
    let key = PS256KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("rsa-any");
    let token = key.sign(std_claims()).unwrap();
    assert_eq!(decode_json(&segments(&token)[0])["alg"], "PS256");
    assert_eq!(auth(&token).unwrap(), std_principal());
}

#[test]
fn es256_token_passes() {
    assert_eq!(
        auth(&es256().sign(std_claims()).unwrap()).unwrap(),
        std_principal()
    );
}

#[test]
fn es384_token_passes() {
    assert_eq!(
        auth(&es384().sign(std_claims()).unwrap()).unwrap(),
        std_principal()
    );
}

#[test]
fn eddsa_token_passes() {
    assert_eq!(
        auth(&ed().sign(std_claims()).unwrap()).unwrap(),
        std_principal()
    );
}

#[test]
fn hand_built_token_passes() {
    // Guards the helper the malicious-header tests rely on: with a plain header, it verifies.
    let token = ed_signed(
        r#"{"alg":"EdDSA","kid":"ed-1","typ":"JWT"}"#,
        &raw_payload().to_string(),
    );
    let p = auth(&token).unwrap();
    assert_eq!((p.tenant(), p.subject.as_str()), ("team-a", "alice"));
    assert_eq!(p.roles(), vec![Role::Editor]);
}

#[test]
fn jwks_document_as_published_by_an_idp_verifies() {
    // The same keys serialised by an independent JWK encoder (jwt-simple's `to_jwk`), read
    // through `parse_jwks` as the pipeline does with the IdP's answer.
    let doc = format!(
        r#"{{"keys":[{},{},{},{}]}}"#,
        rsa().public_key().to_jwk(),
        es256().public_key().to_jwk(),
        es384().public_key().to_jwk(),
        ed().public_key().to_jwk(),
    );
    let keys = jwks::parse_jwks(doc.as_bytes()).unwrap();
    assert_eq!(keys.keys.len(), 4);
    let cfg = oidc_config();
    for token in [
        rs256(std_claims()),
        es256().sign(std_claims()).unwrap(),
        es384().sign(std_claims()).unwrap(),
        ed().sign(std_claims()).unwrap(),
    ] {
        assert_eq!(
            auth_with(&token, &keys, &cfg, NOW).unwrap(),
            std_principal()
        );
    }
    // And the hand-built JWKs used everywhere else carry the same key material.
    let own = jwks();
    for published in &keys.keys {
        let kid = published.kid.as_deref().unwrap();
        let mine = own
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .unwrap();
        assert_eq!(
            (
                &published.n,
                &published.e,
                &published.x,
                &published.y,
                &published.crv
            ),
            (&mine.n, &mine.e, &mine.x, &mine.y, &mine.crv),
            "{kid}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Algorithm attacks
// ---------------------------------------------------------------------------------------------

#[test]
fn alg_none_is_refused() {
    let payload = raw_payload().to_string();
    let valid_sig = segments(&ed_signed(r#"{"alg":"EdDSA","kid":"ed-1"}"#, &payload))[2].clone();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        // The unsecured JWS form (RFC 7515 A.5): empty signature segment.
        let unsecured = format!("{}.", signing_input(&header, &payload));
        assert_unauth(auth(&unsecured), Reason::AlgNotAllowed);
        // Same with a kid the JWKS knows and a leftover (valid-looking) signature.
        let header = format!(r#"{{"alg":"{alg}","kid":"ed-1"}}"#);
        let kept = format!("{}.{valid_sig}", signing_input(&header, &payload));
        assert_unauth(auth(&kept), Reason::AlgNotAllowed);
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // Classic key confusion: an HMAC "signed" with the RSA public key, which anyone can fetch.
    let public = rsa().public_key();
    let secrets = [
        public.to_pem().unwrap().into_bytes(),
        public.to_der().unwrap(),
        rsa_jwk("rsa-1", rsa(), Some("RS256"), Some("sig"))
            .n
            .unwrap()
            .into_bytes(),
    ];
    for secret in secrets {
        for kid in ["rsa-1", "rsa-any"] {
            let key = HS256Key::from_bytes(&secret).with_key_id(kid);
            let token = key.authenticate(std_claims()).unwrap();
            assert_eq!(decode_json(&segments(&token)[0])["alg"], "HS256");
            assert_unauth(auth(&token), Reason::AlgNotAllowed);
        }
    }
    for alg in ["HS384", "HS512", "ES256K", "PS384X", "RS1", ""] {
        let header = format!(r#"{{"alg":"{alg}","kid":"rsa-1"}}"#);
        assert_unauth(
            auth(&ed_signed(&header, &raw_payload().to_string())),
            Reason::AlgNotAllowed,
        );
    }
}

#[test]
fn alg_outside_configured_allow_list_is_refused() {
    let cfg = config_with(&[("allowed_algorithms", "ES256,EdDSA")]);
    assert_unauth(
        auth_with(&rs256(std_claims()), &jwks(), &cfg, NOW),
        Reason::AlgNotAllowed,
    );
    let token = es256().sign(std_claims()).unwrap();
    assert_eq!(
        auth_with(&token, &jwks(), &cfg, NOW).unwrap(),
        std_principal()
    );
}

#[test]
fn rs256_token_naming_an_ec_key_is_refused() {
    let key = RS256KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("ec-256");
    assert_unauth(
        auth(&key.sign(std_claims()).unwrap()),
        Reason::AlgNotAllowed,
    );
    // ES256 token naming the P-384 key, EdDSA token naming an RSA key.
    let key = ES256KeyPair::from_bytes(&es256().to_bytes())
        .unwrap()
        .with_key_id("ec-384");
    assert_unauth(
        auth(&key.sign(std_claims()).unwrap()),
        Reason::AlgNotAllowed,
    );
    let token = ed_signed(
        r#"{"alg":"EdDSA","kid":"rsa-1"}"#,
        &raw_payload().to_string(),
    );
    assert_unauth(auth(&token), Reason::AlgNotAllowed);
}

#[test]
fn jwk_alg_pins_the_algorithm() {
    // `rsa-1` is published with alg RS256: the same modulus under RS512 is refused.
    let key = RS512KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("rsa-1");
    assert_unauth(
        auth(&key.sign(std_claims()).unwrap()),
        Reason::AlgNotAllowed,
    );
}

// ---------------------------------------------------------------------------------------------
// Time claims
// ---------------------------------------------------------------------------------------------

fn with_times(iat: Option<u64>, nbf: Option<u64>, exp: Option<u64>) -> JWTClaims<Custom> {
    let mut c = std_claims();
    c.issued_at = iat.map(ts);
    c.invalid_before = nbf.map(ts);
    c.expires_at = exp.map(ts);
    c
}

#[test]
fn expired_token_is_refused() {
    let token = rs256(with_times(Some(NOW - 3600), None, Some(NOW - 61)));
    assert_unauth(auth(&token), Reason::TokenExpired);
    let token = rs256(with_times(Some(NOW - 7200), None, Some(NOW - 3600)));
    assert_unauth(auth(&token), Reason::TokenExpired);
}

#[test]
fn expired_within_clock_skew_passes() {
    for exp in [NOW - 30, NOW - 60, NOW] {
        let token = rs256(with_times(Some(NOW - 3600), None, Some(exp)));
        assert_eq!(
            auth(&token).unwrap(),
            std_principal(),
            "exp = now - {}",
            NOW - exp
        );
    }
}

#[test]
fn not_yet_valid_token_is_refused() {
    let token = rs256(with_times(Some(NOW - 10), Some(NOW + 61), Some(NOW + 3600)));
    assert_unauth(auth(&token), Reason::TokenNotYetValid);
    let token = rs256(with_times(
        Some(NOW - 10),
        Some(NOW + 1800),
        Some(NOW + 3600),
    ));
    assert_unauth(auth(&token), Reason::TokenNotYetValid);
    // Within the skew, nbf is tolerated.
    let token = rs256(with_times(Some(NOW - 10), Some(NOW + 60), Some(NOW + 3600)));
    assert_eq!(auth(&token).unwrap(), std_principal());
}

#[test]
fn issued_in_the_future_is_refused() {
    let token = rs256(with_times(Some(NOW + 600), None, Some(NOW + 3600)));
    assert_unauth(auth(&token), Reason::TokenNotYetValid);
    let token = rs256(with_times(Some(NOW + 30), None, Some(NOW + 3600)));
    assert_eq!(auth(&token).unwrap(), std_principal());
}

#[test]
fn missing_exp_is_refused() {
    let token = rs256(with_times(Some(NOW - 10), Some(NOW - 10), None));
    assert!(decode_json(&segments(&token)[1]).get("exp").is_none());
    assert_unauth(auth(&token), Reason::MissingExp);
    let token = rs256(with_times(None, None, None));
    assert_unauth(auth(&token), Reason::MissingExp);
}

#[test]
fn verify_uses_the_time_it_is_given() {
    // A token valid at NOW is expired an hour later and not yet valid an hour earlier: `verify`
    // judges time only by `now_secs`, never the wall clock.
    let token = rs256(std_claims());
    let cfg = oidc_config();
    assert_unauth(
        auth_with(&token, &jwks(), &cfg, NOW + 3600),
        Reason::TokenExpired,
    );
    assert_unauth(
        auth_with(&token, &jwks(), &cfg, NOW - 3600),
        Reason::TokenNotYetValid,
    );
}

// ---------------------------------------------------------------------------------------------
// Issuer and audience
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_issuer_is_refused() {
    for iss in [
        "https://evil.example.net/realms/r",
        "https://idp.example.com/realms/other",
        "https://idp.example.com/realms/r/",
        "http://idp.example.com/realms/r",
        "",
    ] {
        let token = rs256(claims_for(iss, AUD, json!({"tenant_id": "team-a"})));
        assert_unauth(auth(&token), Reason::WrongIssuer);
    }
    let mut c = std_claims();
    c.issuer = None;
    assert_unauth(auth(&rs256(c)), Reason::WrongIssuer);
}

#[test]
fn wrong_audience_is_refused() {
    for aud in ["other-app", "MLFLOW", "mlflow ", ""] {
        let token = rs256(claims_for(ISS, aud, json!({"tenant_id": "team-a"})));
        assert_unauth(auth(&token), Reason::WrongAudience);
    }
    let mut c = std_claims();
    c.audiences = None;
    assert_unauth(auth(&rs256(c)), Reason::WrongAudience);
    let c = std_claims().with_audiences(HashSet::from_strings(&["account", "other-app"]));
    assert_unauth(auth(&rs256(c)), Reason::WrongAudience);
}

#[test]
fn audience_array_containing_mlflow_passes() {
    let c = std_claims().with_audiences(HashSet::from_strings(&["account", AUD, "broker"]));
    let token = rs256(c);
    assert!(decode_json(&segments(&token)[1])["aud"].is_array());
    assert_eq!(auth(&token).unwrap(), std_principal());
}

// ---------------------------------------------------------------------------------------------
// Key selection
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_kid_is_refused() {
    let key = RS256KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("rotated-away");
    assert_unauth(auth(&key.sign(std_claims()).unwrap()), Reason::UnknownKid);
}

#[test]
fn token_from_a_key_outside_the_jwks_is_refused() {
    // Perfectly valid token, signed by a key the IdP never published.
    assert_unauth(
        auth(&rsa_other().sign(std_claims()).unwrap()),
        Reason::UnknownKid,
    );
}

#[test]
fn jku_header_is_ignored() {
    // The attacker points `jku` (and embeds `jwk`) at their own key; the gateway only ever
    // uses the configured JWKS.
    let metadata = || {
        KeyMetadata::default()
            .with_key_set_url("https://evil.example.net/.well-known/jwks.json")
            .with_public_key(rsa_other().public_key().to_jwk())
    };
    let mut attacker = rsa_other().clone();
    attacker.attach_metadata(metadata()).unwrap();
    let token = attacker.sign(std_claims()).unwrap();
    let header = decode_json(&segments(&token)[0]);
    assert_eq!(
        header["jku"],
        "https://evil.example.net/.well-known/jwks.json"
    );
    assert_eq!(header["kid"], "rsa-2");
    assert_unauth(auth(&token), Reason::UnknownKid);

    // Same attacker key claiming the IdP's kid: the IdP's key does not verify it.
    let mut attacker = rsa_other().clone().with_key_id("rsa-1");
    attacker.attach_metadata(metadata()).unwrap();
    let token = attacker.sign(std_claims()).unwrap();
    assert_unauth(auth(&token), Reason::BadSignature);
}

#[test]
fn token_without_kid_needs_exactly_one_fitting_key() {
    // The only OKP key in the set: a kid-less EdDSA token is checked against it.
    let token = ed_signed(r#"{"alg":"EdDSA"}"#, &raw_payload().to_string());
    assert_eq!(auth(&token).unwrap().tenant(), "team-a");
    // Two RSA entries fit a kid-less RS256 token: ambiguous, refused.
    let kidless = RS256KeyPair::from_der(&rsa().to_der().unwrap()).unwrap();
    let token = kidless.sign(std_claims()).unwrap();
    assert!(decode_json(&segments(&token)[0]).get("kid").is_none());
    assert_unauth(auth(&token), Reason::UnknownKid);
    // With a single RSA key published, the same token verifies, and a foreign one does not.
    let single = JwkSet {
        keys: vec![rsa_jwk("rsa-1", rsa(), None, None), ed_jwk()],
    };
    let cfg = oidc_config();
    assert_eq!(
        auth_with(&token, &single, &cfg, NOW).unwrap(),
        std_principal()
    );
    let foreign = RS256KeyPair::from_der(&rsa_other().to_der().unwrap()).unwrap();
    let token = foreign.sign(std_claims()).unwrap();
    assert_unauth(auth_with(&token, &single, &cfg, NOW), Reason::BadSignature);
}

#[test]
fn key_with_use_enc_is_ignored() {
    let token = RS256KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("rsa-enc")
        .sign(std_claims())
        .unwrap();
    let cfg = oidc_config();
    let with_enc = JwkSet {
        keys: vec![
            rsa_jwk("rsa-enc", rsa(), None, Some("enc")),
            rsa_jwk("rsa-1", rsa(), Some("RS256"), Some("sig")),
        ],
    };
    // Named directly, an encryption key is never used for signatures.
    assert_unauth(
        auth_with(&token, &with_enc, &cfg, NOW),
        Reason::AlgNotAllowed,
    );
    // As the pipeline gets it (through `parse_jwks`), the key is not even kept.
    let parsed = jwks::parse_jwks(&serde_json::to_vec(&with_enc).unwrap()).unwrap();
    assert_eq!(parsed.keys.len(), 1);
    assert_unauth(auth_with(&token, &parsed, &cfg, NOW), Reason::UnknownKid);
    // Without a kid, the enc key does not make the choice ambiguous.
    let header = jwt::Header {
        alg: Algorithm::RS256,
        kid: None,
    };
    assert_eq!(
        jwt::select_key(&header, &with_enc).unwrap().kid.as_deref(),
        Some("rsa-1")
    );
}

// ---------------------------------------------------------------------------------------------
// Tampering and malformed tokens
// ---------------------------------------------------------------------------------------------

fn tamper_payload(token: &str) -> String {
    let seg = segments(token);
    let mut payload = decode_json(&seg[1]);
    payload["tenant_id"] = json!("team-b");
    payload["roles"] = json!(["admin"]);
    format!("{}.{}.{}", seg[0], b64u(payload.to_string()), seg[2])
}

fn tamper_signature(token: &str) -> String {
    let seg = segments(token);
    let mut sig = URL_SAFE_NO_PAD.decode(&seg[2]).unwrap();
    sig[10] ^= 0x01;
    format!("{}.{}.{}", seg[0], seg[1], b64u(sig))
}

#[test]
fn tampered_payload_is_refused() {
    for token in [
        rs256(std_claims()),
        es256().sign(std_claims()).unwrap(),
        es384().sign(std_claims()).unwrap(),
        ed().sign(std_claims()).unwrap(),
    ] {
        assert_unauth(auth(&tamper_payload(&token)), Reason::BadSignature);
    }
}

#[test]
fn tampered_signature_is_refused() {
    for token in [
        rs256(std_claims()),
        es256().sign(std_claims()).unwrap(),
        es384().sign(std_claims()).unwrap(),
        ed().sign(std_claims()).unwrap(),
    ] {
        assert_unauth(auth(&tamper_signature(&token)), Reason::BadSignature);
    }
    // Signature of another token, and a signature cut short.
    let a = segments(&rs256(std_claims()));
    let b = segments(&rs256(claims(json!({"tenant_id": "team-b"}))));
    assert_unauth(
        auth(&format!("{}.{}.{}", a[0], a[1], b[2])),
        Reason::BadSignature,
    );
    let sig = URL_SAFE_NO_PAD.decode(&a[2]).unwrap();
    let short = b64u(&sig[..sig.len() - 3]);
    assert_unauth(
        auth(&format!("{}.{}.{short}", a[0], a[1])),
        Reason::BadSignature,
    );
}

#[test]
fn truncated_token_is_malformed() {
    let seg = segments(&rs256(std_claims()));
    for token in [
        format!("{}.{}", seg[0], seg[1]),
        seg[0].clone(),
        format!("{}.{}.{}.{}", seg[0], seg[1], seg[2], seg[2]),
        format!("{}..{}", seg[0], seg[2]),
        format!(".{}.{}", seg[1], seg[2]),
        "..".to_string(),
    ] {
        assert_unauth(auth(&token), Reason::TokenMalformed);
    }
}

#[test]
fn non_base64url_characters_are_malformed() {
    let token = rs256(std_claims());
    let seg = segments(&token);
    for bad in ["+", "/", "=", "%", "!", "\u{e9}"] {
        for i in 0..3 {
            let mut parts = seg.clone();
            parts[i].insert_str(4, bad);
            assert_unauth(auth(&parts.join(".")), Reason::TokenMalformed);
        }
    }
    // Standard base64 padding on an otherwise valid token.
    assert_unauth(auth(&format!("{token}==")), Reason::TokenMalformed);
}

#[test]
fn header_and_payload_must_be_json_objects() {
    let payload = raw_payload().to_string();
    for header in [
        "not json",
        "[]",
        r#""RS256""#,
        r#"{"alg":"EdDSA","alg":"EdDSA"}"#,
    ] {
        assert_unauth(auth(&ed_signed(header, &payload)), Reason::TokenMalformed);
    }
    assert_unauth(
        auth(&ed_signed(r#"{"typ":"JWT"}"#, &payload)),
        Reason::TokenMalformed,
    );
    assert_unauth(
        auth(&ed_signed(r#"{"alg":"EdDSA","kid":7}"#, &payload)),
        Reason::TokenMalformed,
    );
    let header = r#"{"alg":"EdDSA","kid":"ed-1"}"#;
    for payload in ["not json", "[]", "42"] {
        assert_unauth(auth(&ed_signed(header, payload)), Reason::TokenMalformed);
    }
}

#[test]
fn duplicate_claim_names_are_malformed() {
    // A parser differential: one JSON reader sees team-a, another team-b. Refused outright.
    let header = r#"{"alg":"EdDSA","kid":"ed-1"}"#;
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":{},"tenant_id":"team-a","tenant_id":"team-b"}}"#,
        NOW + 600
    );
    assert_unauth(auth(&ed_signed(header, &payload)), Reason::TokenMalformed);
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":{},"exp":{},"tenant_id":"team-a"}}"#,
        NOW - 3600,
        NOW + 600
    );
    assert_unauth(auth(&ed_signed(header, &payload)), Reason::TokenMalformed);
}

#[test]
fn oversized_token_is_refused() {
    let seg = segments(&rs256(std_claims()));
    // Just over the limit: passes the header-size guard in `bearer_token`, caught by
    // `peek_header` before any decoding.
    let pad = MAX_TOKEN_BYTES + 1 - (seg[0].len() + seg[2].len() + 2);
    let token = format!("{}.{}.{}", seg[0], "A".repeat(pad), seg[2]);
    assert_eq!(token.len(), MAX_TOKEN_BYTES + 1);
    assert_unauth(auth(&token), Reason::TokenTooLarge);
    // Far over: refused while reading the header value.
    let token = format!("{}.{}.{}", seg[0], "A".repeat(64 * 1024), seg[2]);
    assert_unauth(auth(&token), Reason::TokenTooLarge);
    // A genuinely signed token carrying a huge claim is refused the same way.
    let big = claims(json!({"tenant_id": "team-a", "blob": "x".repeat(MAX_TOKEN_BYTES)}));
    assert_unauth(auth(&rs256(big)), Reason::TokenTooLarge);
    // At exactly the limit, size is not the objection.
    let pad = MAX_TOKEN_BYTES - (seg[0].len() + seg[2].len() + 2);
    let token = format!("{}.{}.{}", seg[0], "A".repeat(pad), seg[2]);
    assert_eq!(token.len(), MAX_TOKEN_BYTES);
    let err = auth(&token).unwrap_err();
    assert_ne!(err.reason, Reason::TokenTooLarge);
}

#[test]
fn crit_header_is_refused() {
    let payload = raw_payload().to_string();
    for header in [
        r#"{"alg":"EdDSA","kid":"ed-1","crit":["exp"],"exp":1}"#,
        r#"{"alg":"EdDSA","kid":"ed-1","crit":["b64"],"b64":false}"#,
        r#"{"alg":"EdDSA","kid":"ed-1","crit":"exp"}"#,
    ] {
        assert_unauth(auth(&ed_signed(header, &payload)), Reason::CritUnsupported);
    }
    // Defence in depth: `verify` alone (jwt-simple) refuses it too.
    let token = ed_signed(
        r#"{"alg":"EdDSA","kid":"ed-1","crit":["exp"],"exp":1}"#,
        &payload,
    );
    let header = Header {
        alg: Algorithm::EdDSA,
        kid: Some("ed-1".to_string()),
    };
    let err = jwt::verify(&token, &header, &ed_jwk(), &oidc(), NOW).unwrap_err();
    assert_eq!((err.reason, err.status()), (Reason::CritUnsupported, 401));
}

#[test]
fn verify_refuses_a_header_alg_other_than_the_one_checked() {
    // If a caller ever verified with a `Header` that disagrees with the token, jwt-simple's own
    // algorithm check still refuses it.
    let token = rs256(std_claims());
    let header = Header {
        alg: Algorithm::RS384,
        kid: Some("rsa-any".to_string()),
    };
    let jwk = rsa_jwk("rsa-any", rsa(), None, None);
    let err = jwt::verify(&token, &header, &jwk, &oidc(), NOW).unwrap_err();
    assert_eq!((err.reason, err.status()), (Reason::AlgNotAllowed, 401));
}

// ---------------------------------------------------------------------------------------------
// The Authorization header
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_authorization_is_token_missing() {
    assert_unauth(run(&[], &jwks(), &oidc_config(), NOW), Reason::TokenMissing);
}

#[test]
fn non_bearer_schemes_are_malformed() {
    let token = rs256(std_claims());
    let cfg = oidc_config();
    for value in [
        "Basic dXNlcjpwYXNz".to_string(),
        format!("Token {token}"),
        format!("Bearer{token}"),
        token.clone(),
        "Bearer".to_string(),
    ] {
        assert_unauth(
            run(&[value.as_bytes()], &jwks(), &cfg, NOW),
            Reason::TokenMalformed,
        );
    }
    // Two Authorization headers are ambiguous.
    let v = format!("Bearer {token}");
    assert_unauth(
        run(&[v.as_bytes(), v.as_bytes()], &jwks(), &cfg, NOW),
        Reason::TokenMalformed,
    );
    // Not UTF-8.
    assert_unauth(
        run(&[&b"Bearer \xff\xfe"[..]], &jwks(), &cfg, NOW),
        Reason::TokenMalformed,
    );
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let token = rs256(std_claims());
    for value in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("  Bearer {token}  "),
    ] {
        let p = run(&[value.as_bytes()], &jwks(), &oidc_config(), NOW).unwrap();
        assert_eq!(p, std_principal());
    }
}

// ---------------------------------------------------------------------------------------------
// Claims → principal
// ---------------------------------------------------------------------------------------------

fn claims_map(v: Value) -> Custom {
    obj(v)
}

#[test]
fn tenant_claim_missing_is_forbidden() {
    let cfg = oidc_config();
    let c = claims_map(json!({"sub": "alice", "roles": ["admin"]}));
    assert_forbidden(identity_from_claims(&c, &cfg), Reason::TenantClaimInvalid);
    // Through the whole flow: a valid token without a tenant is a 403, not a 401.
    let token = rs256(claims(json!({"roles": ["admin"]})));
    assert_forbidden(auth(&token), Reason::TenantClaimInvalid);
}

#[test]
fn tenant_claim_not_a_string_or_a_list_of_strings_is_forbidden() {
    let cfg = oidc_config();
    for tenant in [
        json!(42),
        json!(["team-a", 7]),
        json!(["team-a", "bad tenant"]),
        json!([]),
        json!({"id": "team-a"}),
        json!(null),
        json!(true),
    ] {
        let c = claims_map(json!({"sub": "alice", "tenant_id": tenant}));
        assert_forbidden(identity_from_claims(&c, &cfg), Reason::TenantClaimInvalid);
    }
}

#[test]
fn tenant_claim_bad_charset_is_forbidden() {
    let cfg = oidc_config();
    let long = "t".repeat(64);
    for tenant in [
        "",
        "team a",
        "team-a'",
        "a%",
        "-team",
        "t\u{e9}am",
        "a`b",
        long.as_str(),
    ] {
        let c = claims_map(json!({"sub": "alice", "tenant_id": tenant}));
        assert_forbidden(identity_from_claims(&c, &cfg), Reason::TenantClaimInvalid);
    }
    let token = rs256(claims(json!({"tenant_id": "x' OR '1'='1"})));
    assert_forbidden(auth(&token), Reason::TenantClaimInvalid);
}

#[test]
fn subject_claim_invalid_is_forbidden() {
    let cfg = oidc_config();
    let long = "s".repeat(257);
    for sub in [json!(""), json!("a\nb"), json!(long), json!(7), json!(null)] {
        let c = claims_map(json!({"sub": sub, "tenant_id": "team-a"}));
        assert_forbidden(identity_from_claims(&c, &cfg), Reason::SubjectClaimInvalid);
    }
    let c = claims_map(json!({"tenant_id": "team-a"}));
    assert_forbidden(identity_from_claims(&c, &cfg), Reason::SubjectClaimInvalid);
}

#[test]
fn nested_tenant_claim_path() {
    let cfg = config_with(&[("tenant_claim", "org.tenant")]);
    let token = rs256(claims(
        json!({"org": {"tenant": "acme", "name": "Acme"}, "roles": ["viewer"]}),
    ));
    let p = auth_with(&token, &jwks(), &cfg, NOW).unwrap();
    assert_eq!(p, Identity::single("acme", "alice", vec![Role::Viewer]));
    // The path is followed, not matched as a flat name.
    let c = claims_map(json!({"sub": "alice", "org.tenant": "acme"}));
    assert_forbidden(identity_from_claims(&c, &cfg), Reason::TenantClaimInvalid);
    let c = claims_map(json!({"sub": "alice", "org": "acme"}));
    assert_forbidden(identity_from_claims(&c, &cfg), Reason::TenantClaimInvalid);
}

#[test]
fn realm_access_roles_map_through_aliases() {
    let cfg = config_with(&[
        ("role_claim", "realm_access.roles"),
        ("role_aliases", "mlflow-admins=admin"),
    ]);
    let c = claims_map(json!({
        "sub": "alice",
        "tenant_id": "team-a",
        "realm_access": {"roles": ["offline_access", "mlflow-admins"]},
        // Not a configured role claim: ignored even though the name is canonical.
        "roles": ["viewer"],
    }));
    let p = identity_from_claims(&c, &cfg).unwrap();
    assert_eq!(p.roles(), vec![Role::Admin]);
}

#[test]
fn unknown_groups_only_give_no_roles() {
    let cfg = oidc_config();
    assert_eq!(cfg.default_role, None);
    let c = claims_map(json!({
        "sub": "alice",
        "tenant_id": "team-a",
        "roles": ["Admin", "ADMIN", "administrator", " admin"],
        "groups": ["staff", "mlflow-admins"],
    }));
    let p = identity_from_claims(&c, &cfg).unwrap();
    assert!(p.roles().is_empty(), "{:?}", p.roles());
    // With a default role, it applies only when nothing was recognised.
    let cfg = config_with(&[("default_role", "viewer")]);
    assert_eq!(
        identity_from_claims(&c, &cfg).unwrap().roles(),
        vec![Role::Viewer]
    );
    let c = claims_map(json!({"sub": "alice", "tenant_id": "team-a", "roles": "admin"}));
    assert_eq!(
        identity_from_claims(&c, &cfg).unwrap().roles(),
        vec![Role::Admin]
    );
}

// ---------------------------------------------------------------------------------------------
// Claim shapes of common IdPs (referenced from the docs)
// ---------------------------------------------------------------------------------------------

/// Keycloak access token: realm roles under `realm_access.roles`, client roles under
/// `resource_access.<client>.roles`, a readable `preferred_username`, and a `tenant_id` claim
/// added by a protocol mapper (user attribute → token claim).
#[test]
fn keycloak_shape() {
    let cfg = config_with(&[
        ("subject_claim", "preferred_username"),
        (
            "role_claim",
            "realm_access.roles,resource_access.mlflow.roles",
        ),
        (
            "role_aliases",
            "mlflow-viewers=viewer,mlflow-editors=editor,mlflow-admins=admin",
        ),
    ]);
    let c = claims(json!({
        "typ": "Bearer",
        "azp": "mlflow",
        "sid": "5f9e3a2c-7d41-4d7b-9c1e-0b8f6a2d4e10",
        "acr": "1",
        "scope": "openid profile email",
        "email_verified": true,
        "preferred_username": "alice",
        "email": "alice@example.com",
        "tenant_id": "team-a",
        "realm_access": {
            "roles": ["offline_access", "uma_authorization", "mlflow-editors", "default-roles-r"]
        },
        "resource_access": {
            "mlflow": {"roles": ["mlflow-admins"]},
            "account": {"roles": ["manage-account", "view-profile"]}
        },
    }))
    .with_subject("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0")
    .with_audiences(HashSet::from_strings(&[AUD, "account"]));
    let token = rs256(c);
    assert_eq!(
        auth_with(&token, &jwks(), &cfg, NOW).unwrap(),
        Identity::single("team-a", "alice", vec![Role::Editor, Role::Admin])
    );
}

/// Microsoft Entra ID v2.0 access token: app roles in `roles`, the directory tenant in `tid`,
/// the stable user object id in `oid` (`sub` is pairwise per application).
#[test]
fn entra_shape() {
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let issuer = format!("https://login.microsoftonline.com/{tid}/v2.0");
    let client_id = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    let cfg = config_with(&[
        ("oidc_issuer", issuer.as_str()),
        ("oidc_audience", client_id),
        ("idp_origin", "https://login.microsoftonline.com"),
        ("tenant_claim", "tid"),
        ("subject_claim", "oid"),
        ("role_claim", "roles"),
        (
            "role_aliases",
            "MLflow.Read=viewer,MLflow.Write=editor,MLflow.Admin=admin",
        ),
    ]);
    let c = claims_for(
        &issuer,
        client_id,
        json!({
            "ver": "2.0",
            "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "azpacr": "0",
            "name": "Alice Example",
            "oid": "00000000-0000-0000-66f3-3332eca7ea81",
            "preferred_username": "alice@contoso.com",
            "rh": "0.AAAA",
            "roles": ["MLflow.Read", "MLflow.Write"],
            "scp": "access_as_user",
            "tid": tid,
            "uti": "AbCdEf123456",
        }),
    )
    .with_subject("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ");
    let token = rs256(c);
    assert_eq!(
        auth_with(&token, &jwks(), &cfg, NOW).unwrap(),
        Identity::single(
            tid,
            "00000000-0000-0000-66f3-3332eca7ea81",
            vec![Role::Viewer, Role::Editor]
        )
    );
    // The same token against the default issuer (another Entra tenant's config) is refused.
    assert_unauth(auth(&token), Reason::WrongIssuer);
}

/// Okta custom authorization server access token: group membership in a `groups` claim (added
/// with a groups claim filter), the user's `email`, and a `tenant` claim from a profile
/// attribute.
#[test]
fn okta_shape() {
    let issuer = "https://example.okta.com/oauth2/default";
    let cfg = config_with(&[
        ("oidc_issuer", issuer),
        ("oidc_audience", "api://mlflow"),
        ("idp_origin", "https://example.okta.com"),
        ("tenant_claim", "tenant"),
        ("subject_claim", "email"),
        ("role_claim", "groups"),
        (
            "role_aliases",
            "MLflow-Users=viewer,MLflow-Engineers=editor,MLflow-Admins=admin",
        ),
    ]);
    let c = claims_for(
        issuer,
        "api://mlflow",
        json!({
            "ver": 1,
            "jti": "AT.8bJNkJv0tK9Yp3w5e7s0bqXw",
            "cid": "0oa1b2c3d4e5f6g7h8i9",
            "uid": "00u1a2b3c4d5e6f7g8h9",
            "scp": ["openid", "email", "profile"],
            "auth_time": NOW - 300,
            "email": "alice@example.com",
            "groups": ["Everyone", "MLflow-Engineers"],
            "tenant": "acme",
        }),
    )
    .with_subject("alice@example.com");
    let token = rs256(c);
    assert_eq!(
        auth_with(&token, &jwks(), &cfg, NOW).unwrap(),
        Identity {
            groups: vec!["Everyone".into(), "MLflow-Engineers".into()],
            ..Identity::single("acme", "alice@example.com", vec![Role::Editor])
        }
    );
}

/// Several tenants: a list-valued tenant claim (the roles apply in each) and groups that fit
/// `tenant_group_pattern` (each with the role it names), in claim order, the first first.
#[test]
fn several_tenants_from_a_list_claim_and_from_groups() {
    let cfg = config_with(&[
        ("tenant_group_pattern", "/mlflow/{tenant}/{role}"),
        (
            "role_aliases",
            "viewer=viewer,editor=editor,admin=admin,mlflow-admin=admin",
        ),
    ]);
    let c = claims_map(json!({
        "sub": "alice",
        "tenant_id": ["team-a", "team-b"],
        "roles": ["viewer"],
        "groups": ["/mlflow/team-c/editor", "/mlflow/team-a/mlflow-admin", "/mlflow/x/unknown",
                   "/other/team-d/admin", "/mlflow/team-e/editor/extra", "staff"],
    }));
    let id = identity_from_claims(&c, &cfg).unwrap();
    let got: Vec<(&str, Vec<Role>)> = id
        .memberships
        .iter()
        .map(|m| (m.tenant.as_str(), m.roles.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("team-a", vec![Role::Viewer, Role::Admin]),
            ("team-b", vec![Role::Viewer]),
            ("team-c", vec![Role::Editor]),
        ]
    );
    assert_eq!(id.groups.len(), 6);
    // Groups alone may make a member; without either, no tenant.
    let c = claims_map(json!({"sub": "bob", "groups": ["/mlflow/team-b/viewer"]}));
    assert_eq!(identity_from_claims(&c, &cfg).unwrap().tenant(), "team-b");
    let c = claims_map(json!({"sub": "bob", "groups": ["staff"]}));
    assert_forbidden(identity_from_claims(&c, &cfg), Reason::TenantClaimInvalid);
}

#[test]
fn group_patterns_need_both_placeholders_apart() {
    use super::claims::GroupPattern;
    for bad in [
        "mlflow/{tenant}",
        "{role}",
        "{tenant}{role}",
        "a/{tenant}/{tenant}/{role}",
    ] {
        assert!(GroupPattern::parse(bad).is_err(), "{bad}");
    }
    let p = GroupPattern::parse("{role}@{tenant}.mlflow").unwrap();
    assert_eq!(
        p.captures("editor@team-a.mlflow"),
        Some(("team-a", "editor"))
    );
    assert_eq!(p.captures("editor@team-a.mlflow.x"), None);
    assert_eq!(p.captures("@team-a.mlflow"), None);
}
