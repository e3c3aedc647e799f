//! Browser sign-in through the whole pipeline on the in-memory platform: the IdP's discovery
//! document, JWKS and token endpoint are answers of the memory host; tokens are signed here
//! with a real key. The same flows run against the real `oidc-provider` and Chromium in
//! `tests/e2e/test_signin.py`.

use super::super::host::UpstreamResponse;
use super::super::memory::{MemoryAnswer, MemoryHost, Scripted};
use super::super::{handle, Outcome, Reply};
use crate::identity::session::{SESSION_COOKIE, SIGNIN_COOKIE};
use crate::request::Incoming;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

const ISSUER: &str = "http://idp.test/realms/r";
const TOKEN_PATH: &str = "/realms/r/token";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn key() -> &'static ES256KeyPair {
    static K: OnceLock<ES256KeyPair> = OnceLock::new();
    K.get_or_init(|| ES256KeyPair::generate().with_key_id("ec-1"))
}

pub(in crate::pipeline) fn now(h: &MemoryHost) -> u64 {
    h.now_ms / 1000
}

pub(in crate::pipeline) fn answer(status: u16, body: serde_json::Value) -> Scripted {
    Scripted::Answer(UpstreamResponse {
        status,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: body.to_string().into_bytes(),
    })
}

pub(in crate::pipeline) fn idp_host() -> MemoryHost {
    let mut h = MemoryHost::dev();
    for (k, v) in [
        ("auth_mode", "oidc"),
        ("oidc_issuer", ISSUER),
        ("oidc_audience", "mlflow"),
        ("idp_origin", "http://idp.test"),
        ("jwks_uri", "http://idp.test/realms/r/certs"),
        ("oidc_client_id", "mlflow-gateway"),
        ("oidc_client_secret", "client-secret-value"),
        ("oidc_redirect_url", "http://127.0.0.1:3000/oauth2/callback"),
        ("oidc_scopes", "openid mlflow"),
        ("session_cookie_keys", KEY),
        ("token_cache_seconds", "0"),
    ] {
        h.set_var(k, v);
    }
    h.on(
        "GET",
        "/realms/r/.well-known/openid-configuration",
        answer(
            200,
            serde_json::json!({
                "issuer": ISSUER,
                "authorization_endpoint": "http://idp.test/realms/r/auth",
                "token_endpoint": "http://idp.test/realms/r/token",
                "end_session_endpoint": "http://idp.test/realms/r/logout",
                "jwks_uri": "http://idp.test/realms/r/certs",
            }),
        ),
    );
    let point = key().public_key().public_key().to_bytes_uncompressed();
    let (x, y) = point[1..].split_at(32);
    h.on(
        "GET",
        "/realms/r/certs",
        answer(
            200,
            serde_json::json!({"keys": [{"kid": "ec-1", "kty": "EC", "crv": "P-256", "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]}),
        ),
    );
    h
}

pub(in crate::pipeline) fn sign(
    custom: serde_json::Value,
    aud: &str,
    nonce: Option<&str>,
    iat: u64,
    life: u64,
) -> String {
    let mut c = Claims::with_custom_claims(custom, Duration::from_secs(life))
        .with_issuer(ISSUER)
        .with_audience(aud)
        .with_subject("alice");
    if let Some(n) = nonce {
        c = c.with_nonce(n);
    }
    c.issued_at = Some(UnixTimeStamp::from_secs(iat));
    c.invalid_before = None;
    c.expires_at = Some(UnixTimeStamp::from_secs(iat + life));
    key().sign(c).expect("sign")
}

/// The IdP's token answer: an ID token for `nonce`, an access token for team-a (editor) living
/// `life` seconds from `iat`, and a refresh token.
fn tokens(nonce: &str, iat: u64, life: u64, refresh: &str) -> Scripted {
    let claims = serde_json::json!({"tenant_id": "team-a", "roles": ["editor"]});
    answer(
        200,
        serde_json::json!({
            "access_token": sign(claims, "mlflow", None, iat, life),
            "id_token": sign(serde_json::json!({}), "mlflow-gateway", Some(nonce), iat, life),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": life,
        }),
    )
}

fn run(h: &mut MemoryHost, inc: Incoming) -> Outcome<MemoryAnswer> {
    handle(h, inc, Some(Vec::new()))
}

fn headers_of(o: &Outcome<MemoryAnswer>) -> Vec<(String, String)> {
    match &o.reply {
        Reply::Full(r) => r.headers.clone(),
        Reply::Piped { headers, .. } => headers.clone(),
    }
}

fn header(o: &Outcome<MemoryAnswer>, name: &str) -> Option<String> {
    headers_of(o)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `name=value` of the `Set-Cookie` for `name`, if the response sets it.
fn set_cookie(o: &Outcome<MemoryAnswer>, name: &str) -> Option<String> {
    headers_of(o)
        .into_iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v)
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_pair(set: &str) -> String {
    set.split(';').next().unwrap_or_default().to_string()
}

fn body(o: &Outcome<MemoryAnswer>) -> serde_json::Value {
    match &o.reply {
        Reply::Full(r) => serde_json::from_slice(&r.body).expect("JSON body"),
        Reply::Piped { .. } => panic!("piped"),
    }
}

/// The sign-in page a navigation without credentials gets (`pages::sign_in_page`): its link
/// (path and query only) and the return path its script completes with the URL's fragment.
fn sign_in_page(o: &Outcome<MemoryAnswer>) -> (String, String) {
    assert_eq!(o.reply.status(), 401);
    assert_eq!(
        header(o, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(o, "location"), None);
    let Reply::Full(r) = &o.reply else {
        panic!("piped")
    };
    let page = String::from_utf8(r.body.clone()).expect("UTF-8 page");
    let attr = |name: &str| {
        let start = page.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        page[start..start + page[start..].find('"').expect("closing quote")].to_string()
    };
    let (href, back) = (attr("href"), attr("data-back"));
    assert!(
        page.contains(&format!("content=\"0;url={href}\"")),
        "{page}"
    );
    // The one script is the one the policy allows by its hash.
    let csp = header(o, "content-security-policy").expect("CSP");
    let script = &page[page.find("<script>").expect("script") + 8..page.find("</script>").unwrap()];
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
    assert!(
        csp.starts_with(&format!("default-src 'none'; script-src 'sha256-{hash}';")),
        "{csp}"
    );
    assert_eq!(page.matches("<script").count(), 1);
    let back = back
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    (href, back)
}

fn reason(o: &Outcome<MemoryAnswer>) -> &'static str {
    o.audit.record().reason
}

fn get(path: &str, query: &str, headers: &[(&str, &str)]) -> Incoming {
    Incoming::for_test("GET", path, query, headers, b"")
}

fn query_of(location: &str) -> HashMap<String, String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// `/oauth2/sign_in`: the authorization request's parameters and the sign-in cookie.
fn start(h: &mut MemoryHost, rd: &str) -> (HashMap<String, String>, String) {
    let o = run(h, get("/oauth2/sign_in", rd, &[]));
    assert_eq!(o.reply.status(), 302, "{:?}", headers_of(&o));
    let location = header(&o, "location").expect("location");
    assert!(
        location.starts_with("http://idp.test/realms/r/auth?"),
        "{location}"
    );
    let signin = cookie_pair(&set_cookie(&o, SIGNIN_COOKIE).expect("sign-in cookie"));
    (query_of(&location), signin)
}

/// A whole sign-in; returns the session cookie (`name=value`).
fn sign_in(h: &mut MemoryHost, life: u64) -> String {
    let (q, signin) = start(h, "rd=%2F%23%2Fexperiments");
    let n = now(h);
    h.on(
        "POST",
        TOKEN_PATH,
        tokens(&q["nonce"], n, life, "refresh-token-1"),
    );
    let state = format!("code=the-code&state={}", q["state"]);
    let o = run(h, get("/oauth2/callback", &state, &[("cookie", &signin)]));
    assert_eq!(o.reply.status(), 302, "{:?} {:?}", headers_of(&o), h.logs);
    assert_eq!(header(&o, "location").as_deref(), Some("/#/experiments"));
    assert!(set_cookie(&o, SIGNIN_COOKIE).unwrap().contains("Max-Age=0"));
    cookie_pair(&set_cookie(&o, SESSION_COOKIE).expect("session cookie"))
}

#[test]
fn sign_in_sends_pkce_and_exchanges_the_code_with_the_verifier() {
    let mut h = idp_host();
    let (q, signin) = start(&mut h, "");
    assert_eq!(q["client_id"], "mlflow-gateway");
    assert_eq!(q["redirect_uri"], "http://127.0.0.1:3000/oauth2/callback");
    assert_eq!(q["scope"], "openid mlflow");
    assert_eq!(q["code_challenge_method"], "S256");
    let n = now(&h);
    h.on("POST", TOKEN_PATH, tokens(&q["nonce"], n, 300, "rt"));
    let cb = format!("code=c-1&state={}", q["state"]);
    let o = run(&mut h, get("/oauth2/callback", &cb, &[("cookie", &signin)]));
    assert_eq!(o.reply.status(), 302);
    assert_eq!(header(&o, "location").as_deref(), Some("/"));
    let sent = h
        .sent
        .iter()
        .find(|r| r.path_and_query == TOKEN_PATH)
        .expect("token call");
    let form: HashMap<String, String> = form_urlencoded::parse(&sent.body).into_owned().collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "c-1");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    assert_eq!(
        challenge, q["code_challenge"],
        "the verifier answers the challenge sent"
    );
    assert!(sent
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v.starts_with(b"Basic ")));
    let rec = o.audit.record();
    assert_eq!(
        (rec.decision, rec.reason, rec.auth),
        ("allow", "sign_in", Some("session"))
    );
    assert_eq!(rec.tenant.as_deref(), Some("team-a"));
}

#[test]
fn the_session_identifies_the_caller_as_a_bearer_token_would() {
    let mut h = idp_host();
    let session = sign_in(&mut h, 300);
    let o = run(&mut h, get("/oauth2/userinfo", "", &[("cookie", &session)]));
    assert_eq!(o.reply.status(), 200);
    let v = body(&o);
    assert_eq!(
        (v["tenant"].as_str(), v["subject"].as_str()),
        (Some("team-a"), Some("alice"))
    );
    assert_eq!(v["roles"], serde_json::json!(["editor"]));
    assert_eq!(v["auth"], "session");
    assert!(v["session_expires_at"].as_u64().unwrap() > now(&h));
    // A bearer token sent with the cookie: neither is used (the header may have been put
    // there by something other than the person, issue 29).
    let o = run(
        &mut h,
        get(
            "/oauth2/userinfo",
            "",
            &[("cookie", &session), ("authorization", "Bearer x.y.z")],
        ),
    );
    assert_eq!(
        (o.reply.status(), reason(&o)),
        (403, "credentials_conflict")
    );
    assert_eq!(o.audit.record().tenant, None);
}

/// A cookie the MLflow UI turns into a request header (`mlflow-request-header-*`), planted by
/// another site, never switches who the caller is: refused whether or not a session comes
/// with it, and deleted from the browser by the answer.
#[test]
fn planted_header_cookies_are_refused_and_deleted() {
    let mut h = idp_host();
    let session = sign_in(&mut h, 300);
    let other = sign(
        serde_json::json!({"tenant_id": "team-b", "roles": ["admin"]}),
        "mlflow",
        None,
        now(&h),
        300,
    );
    let planted_bearer = format!("mlflow-request-header-Authorization=Bearer {other}");
    let bearer = format!("Bearer {other}");
    let cases: [(&str, Option<&str>); 4] = [
        (&planted_bearer, Some(&bearer)),
        ("mlflow-request-header-X-Tenant=team-b", None),
        ("mlflow-request-header-X-MLFLOW-WORKSPACE=team-b", None),
        ("MLFLOW-REQUEST-HEADER-x_roles=admin", None),
    ];
    for (planted, authorization) in cases {
        let name = planted.split('=').next().unwrap_or_default();
        for cookie in [format!("{session}; {planted}"), planted.to_string()] {
            for path in ["/api/2.0/mlflow/experiments/search", "/oauth2/userinfo"] {
                let mut headers = vec![("cookie", cookie.as_str())];
                if let Some(a) = authorization {
                    headers.push(("authorization", a));
                }
                let sent = h.calls().len();
                let o = run(&mut h, get(path, "max_results=1", &headers));
                assert_eq!(
                    (o.reply.status(), reason(&o)),
                    (403, "header_cookie_refused"),
                    "{planted} {path}"
                );
                assert_ne!(o.audit.record().tenant.as_deref(), Some("team-b"));
                let cleared = set_cookie(&o, name).expect("the planted cookie is deleted");
                assert!(cleared.contains("Max-Age=0") && cleared.contains("Path=/"));
                assert_eq!(h.calls().len(), sent, "nothing reaches MLflow");
                assert!(!body(&o).to_string().contains(&other));
            }
        }
    }
    // Dev mode's identity headers are the caller's word anyway: the rule is oidc mode's.
    let mut dev = MemoryHost::dev();
    let o = run(
        &mut dev,
        get(
            "/api/2.0/mlflow/experiments/search",
            "",
            &[("cookie", "mlflow-request-header-X-Tenant=team-a")],
        ),
    );
    assert_ne!(reason(&o), "header_cookie_refused");
}

#[test]
fn a_callback_without_the_browsers_attempt_or_with_another_state_is_refused() {
    let mut h = idp_host();
    let (q, signin) = start(&mut h, "");
    let n = now(&h);
    h.on("POST", TOKEN_PATH, tokens(&q["nonce"], n, 300, "rt"));
    let cases = [
        (format!("code=c&state={}", q["state"]), String::new()),
        ("code=c&state=forged".to_string(), signin.clone()),
        ("code=c".to_string(), signin.clone()),
    ];
    for (query, cookie) in cases {
        let o = run(
            &mut h,
            get("/oauth2/callback", &query, &[("cookie", &cookie)]),
        );
        assert_eq!(
            (o.reply.status(), reason(&o)),
            (403, "signin_state_invalid"),
            "{query}"
        );
        assert!(set_cookie(&o, SESSION_COOKIE).is_none());
    }
    assert!(
        !h.calls().iter().any(|c| c.contains(TOKEN_PATH)),
        "no code was exchanged"
    );
    // an attempt older than ten minutes
    h.now_ms += 601_000;
    let o = run(
        &mut h,
        get(
            "/oauth2/callback",
            &format!("code=c&state={}", q["state"]),
            &[("cookie", &signin)],
        ),
    );
    assert_eq!(reason(&o), "signin_state_invalid");
}

#[test]
fn an_id_token_for_another_sign_in_is_refused() {
    let mut h = idp_host();
    let (q, signin) = start(&mut h, "");
    let n = now(&h);
    h.on("POST", TOKEN_PATH, tokens("another-nonce", n, 300, "rt"));
    let o = run(
        &mut h,
        get(
            "/oauth2/callback",
            &format!("code=c&state={}", q["state"]),
            &[("cookie", &signin)],
        ),
    );
    assert_eq!((o.reply.status(), reason(&o)), (403, "nonce_mismatch"));
    assert!(set_cookie(&o, SESSION_COOKIE).is_none());
}

#[test]
fn a_code_the_idp_refuses_and_an_idp_error_are_refused() {
    let mut h = idp_host();
    let (q, signin) = start(&mut h, "");
    h.on(
        "POST",
        TOKEN_PATH,
        answer(400, serde_json::json!({"error": "invalid_grant"})),
    );
    let cb = format!("code=used&state={}", q["state"]);
    let o = run(&mut h, get("/oauth2/callback", &cb, &[("cookie", &signin)]));
    assert_eq!(
        (o.reply.status(), reason(&o)),
        (403, "code_exchange_refused")
    );
    let cb = format!("error=access_denied&state={}", q["state"]);
    let o = run(&mut h, get("/oauth2/callback", &cb, &[("cookie", &signin)]));
    assert_eq!(
        (o.reply.status(), reason(&o)),
        (403, "signin_refused_by_idp")
    );
    // a wrong client secret is the operator's problem, not the user's
    h.on(
        "POST",
        TOKEN_PATH,
        answer(401, serde_json::json!({"error": "invalid_client"})),
    );
    let cb = format!("code=c&state={}", q["state"]);
    let o = run(&mut h, get("/oauth2/callback", &cb, &[("cookie", &signin)]));
    assert_eq!((o.reply.status(), reason(&o)), (501, "config_invalid"));
}

#[test]
fn return_paths_off_the_gateway_are_refused() {
    let mut h = idp_host();
    for rd in [
        "rd=https%3A%2F%2Fevil.example",
        "rd=%2F%2Fevil.example",
        "rd=%2F%5Cevil.example",
    ] {
        let o = run(&mut h, get("/oauth2/sign_in", rd, &[]));
        assert_eq!(
            (o.reply.status(), reason(&o)),
            (400, "return_path_invalid"),
            "{rd}"
        );
        assert!(header(&o, "location").is_none());
    }
}

#[test]
fn navigations_without_credentials_go_to_sign_in_and_api_calls_get_401() {
    let mut h = idp_host();
    let nav = get(
        "/",
        "",
        &[("accept", "text/html"), ("sec-fetch-mode", "navigate")],
    );
    let o = run(&mut h, nav);
    assert_eq!(sign_in_page(&o), ("/oauth2/sign_in".into(), "/".into()));
    assert_eq!(reason(&o), "token_missing");
    let deep = get("/static-files/x", "a=1", &[("sec-fetch-mode", "navigate")]);
    let o = run(&mut h, deep);
    assert_eq!(
        sign_in_page(&o),
        (
            "/oauth2/sign_in?rd=%2Fstatic-files%2Fx%3Fa%3D1".into(),
            "/static-files/x?a=1".into()
        )
    );
    let api = get(
        "/api/2.0/mlflow/experiments/search",
        "",
        &[("accept", "text/html")],
    );
    let o = run(&mut h, api);
    assert_eq!(o.reply.status(), 401);
    assert_eq!(body(&o)["error_code"], "UNAUTHENTICATED");
}

/// The page writes the path it was asked for into an attribute: escaped, and never a path that
/// would leave the gateway (those fall back to `/`).
#[test]
fn the_sign_in_page_escapes_what_it_repeats_and_drops_unusable_paths() {
    let mut h = idp_host();
    let nav = [("sec-fetch-mode", "navigate")];
    let o = run(&mut h, get("/x\"><script>", "a='b'&c=<d>", &nav));
    let (href, back) = sign_in_page(&o);
    assert_eq!(back, "/x\"><script>?a='b'&c=<d>");
    assert_eq!(
        href,
        "/oauth2/sign_in?rd=%2Fx%22%3E%3Cscript%3E%3Fa%3D%27b%27%26c%3D%3Cd%3E"
    );
    let Reply::Full(r) = &o.reply else {
        panic!("piped")
    };
    let page = String::from_utf8(r.body.clone()).unwrap();
    assert!(page.contains("data-back=\"/x&quot;&gt;&lt;script&gt;?a=&#39;b&#39;&amp;c=&lt;d&gt;\""));
    for path in ["//evil.example/x", "/a\\b", "/a#b"] {
        let o = run(&mut h, get(path, "", &nav));
        assert_eq!(
            sign_in_page(&o),
            ("/oauth2/sign_in".into(), "/".into()),
            "{path}"
        );
    }
}

/// A deep link into the UI's hash route survives the round trip: the page's script sends
/// `rd=<path + fragment>`, the sign-in keeps it in the sealed attempt, the callback returns there.
#[test]
fn a_deep_link_with_a_fragment_comes_back_after_sign_in() {
    let mut h = idp_host();
    let (_, back) = sign_in_page(&run(
        &mut h,
        get("/", "", &[("sec-fetch-mode", "navigate")]),
    ));
    // what the script builds from data-back and location.hash
    let rd = format!("{back}#/experiments/12/runs/abc?workspace=team-a");
    let enc: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let (q, signin) = start(&mut h, &format!("rd={enc}"));
    let n = now(&h);
    h.on("POST", TOKEN_PATH, tokens(&q["nonce"], n, 300, "rt"));
    let cb = format!("code=c-1&state={}", q["state"]);
    let o = run(&mut h, get("/oauth2/callback", &cb, &[("cookie", &signin)]));
    assert_eq!(o.reply.status(), 302);
    assert_eq!(
        header(&o, "location").as_deref(),
        Some("/#/experiments/12/runs/abc?workspace=team-a")
    );
}

/// Workspace mode: a person in one tenant lands in its workspace (the UI's `workspace` route
/// parameter), also from a deep link without one; a route naming a workspace, a page other
/// than the UI's, and a person in several tenants keep the return path as it was.
#[test]
fn after_sign_in_a_person_in_one_tenant_lands_in_its_workspace() {
    let cases = [
        ("", "/#/?workspace=team-a"),
        (
            "rd=%2F%23%2Fexperiments%2F12",
            "/#/experiments/12?workspace=team-a",
        ),
        (
            "rd=%2F%3Fx%3D1%23%2Fexperiments%3Fo%3D1",
            "/?x=1#/experiments?o=1&workspace=team-a",
        ),
        (
            "rd=%2F%23%2Fmodels%3Fworkspace%3Dteam-b",
            "/#/models?workspace=team-b",
        ),
        ("rd=%2Fstatic-files%2Fx.js", "/static-files/x.js"),
    ];
    for (tenants, expect_landing) in [
        (serde_json::json!("team-a"), true),
        (serde_json::json!(["team-a", "team-b"]), false),
    ] {
        for (rd, landing) in cases {
            let mut h = idp_host();
            h.set_var("tenant_isolation", "workspace");
            let (q, signin) = start(&mut h, rd);
            let n = now(&h);
            let claims = serde_json::json!({"tenant_id": tenants, "roles": ["editor"]});
            h.on(
                "POST",
                TOKEN_PATH,
                answer(
                    200,
                    serde_json::json!({
                        "access_token": sign(claims, "mlflow", None, n, 300),
                        "id_token": sign(serde_json::json!({}), "mlflow-gateway", Some(&q["nonce"]), n, 300),
                        "refresh_token": "rt",
                        "token_type": "Bearer",
                        "expires_in": 300,
                    }),
                ),
            );
            let cb = format!("code=c&state={}", q["state"]);
            let o = run(&mut h, get("/oauth2/callback", &cb, &[("cookie", &signin)]));
            assert_eq!(o.reply.status(), 302, "{rd}: {:?}", h.logs);
            let asked: String = form_urlencoded::parse(rd.as_bytes())
                .find(|(k, _)| k == "rd")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| "/".into());
            let want = if expect_landing {
                landing
            } else {
                asked.as_str()
            };
            assert_eq!(
                header(&o, "location").as_deref(),
                Some(want),
                "{tenants} {rd}"
            );
        }
    }
}

#[test]
fn a_cross_origin_state_change_with_the_cookie_is_refused() {
    let mut h = idp_host();
    let session = sign_in(&mut h, 300);
    for origin in ["http://evil.example", "null"] {
        let inc = Incoming::for_test(
            "POST",
            "/api/2.0/mlflow/experiments/create",
            "",
            &[
                ("cookie", &session),
                ("origin", origin),
                ("content-type", "application/json"),
            ],
            b"{\"name\":\"x\"}",
        );
        let o = run(&mut h, inc);
        assert_eq!(
            (o.reply.status(), reason(&o)),
            (403, "csrf_refused"),
            "{origin}"
        );
    }
    let before = h.sent.len();
    let inc = Incoming::for_test(
        "POST",
        "/api/2.0/mlflow/experiments/create",
        "",
        &[("cookie", &session)],
        b"{}",
    );
    assert_eq!(reason(&run(&mut h, inc)), "csrf_refused");
    assert_eq!(h.sent.len(), before, "nothing reached MLflow");
}

#[test]
fn a_due_session_is_refreshed_and_a_refused_refresh_ends_it_once_the_access_token_expired() {
    let mut h = idp_host();
    let session = sign_in(&mut h, 300);
    // two thirds in: refreshed, a new cookie on the answer
    h.now_ms += 201_000;
    let n = now(&h);
    h.on(
        "POST",
        TOKEN_PATH,
        tokens("unused", n, 300, "refresh-token-2"),
    );
    let o = run(&mut h, get("/oauth2/userinfo", "", &[("cookie", &session)]));
    assert_eq!(o.reply.status(), 200);
    let renewed = cookie_pair(&set_cookie(&o, SESSION_COOKIE).expect("refreshed cookie"));
    assert_ne!(renewed, session);
    let sent = h
        .sent
        .iter()
        .rev()
        .find(|r| r.path_and_query == TOKEN_PATH)
        .unwrap();
    let form: HashMap<String, String> = form_urlencoded::parse(&sent.body).into_owned().collect();
    assert_eq!(
        (form["grant_type"].as_str(), form["refresh_token"].as_str()),
        ("refresh_token", "refresh-token-1")
    );
    // the IdP refuses the next refresh: while the access token holds, the session is kept
    h.on(
        "POST",
        TOKEN_PATH,
        answer(400, serde_json::json!({"error": "invalid_grant"})),
    );
    h.now_ms += 250_000;
    let o = run(&mut h, get("/oauth2/userinfo", "", &[("cookie", &renewed)]));
    assert_eq!(o.reply.status(), 200);
    assert!(set_cookie(&o, SESSION_COOKIE).is_none());
    // past its expiry the session ends: cookie cleared, API 401, a page goes to sign-in
    h.now_ms += 60_000;
    let o = run(
        &mut h,
        get(
            "/api/2.0/mlflow/experiments/search",
            "",
            &[("cookie", &renewed)],
        ),
    );
    assert_eq!(
        (o.reply.status(), reason(&o)),
        (401, "session_refresh_refused")
    );
    assert!(set_cookie(&o, SESSION_COOKIE)
        .unwrap()
        .contains("Max-Age=0"));
    let nav = get(
        "/",
        "",
        &[("cookie", &renewed), ("sec-fetch-mode", "navigate")],
    );
    let o = run(&mut h, nav);
    assert_eq!(sign_in_page(&o).0, "/oauth2/sign_in");
}

#[test]
fn sessions_end_at_session_max_seconds_and_forged_cookies_are_refused() {
    let mut h = idp_host();
    h.set_var("session_max_seconds", "60");
    let session = sign_in(&mut h, 300);
    h.now_ms += 61_000;
    let o = run(&mut h, get("/oauth2/userinfo", "", &[("cookie", &session)]));
    assert_eq!((o.reply.status(), reason(&o)), (401, "session_expired"));
    let forged = format!("{SESSION_COOKIE}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let o = run(&mut h, get("/oauth2/userinfo", "", &[("cookie", &forged)]));
    assert_eq!((o.reply.status(), reason(&o)), (401, "session_invalid"));
    assert_eq!(o.audit.record().auth, Some("session"));
}

#[test]
fn sign_out_clears_the_cookie_and_ends_the_idp_session() {
    let mut h = idp_host();
    let session = sign_in(&mut h, 300);
    let o = run(&mut h, get("/oauth2/sign_out", "", &[("cookie", &session)]));
    assert_eq!(o.reply.status(), 302);
    let location = header(&o, "location").unwrap();
    assert!(
        location.starts_with("http://idp.test/realms/r/logout?"),
        "{location}"
    );
    let q = query_of(&location);
    assert_eq!(q["post_logout_redirect_uri"], "http://127.0.0.1:3000/");
    assert!(q.contains_key("id_token_hint"));
    assert!(set_cookie(&o, SESSION_COOKIE)
        .unwrap()
        .contains("Max-Age=0"));
}

#[test]
fn no_token_cookie_or_code_reaches_an_audit_line_or_the_log() {
    let mut h = idp_host();
    let (q, signin) = start(&mut h, "");
    let n = now(&h);
    let answer_tokens = tokens(&q["nonce"], n, 300, "refresh-token-secret");
    let Scripted::Answer(a) = &answer_tokens else {
        unreachable!()
    };
    let t: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    h.on("POST", TOKEN_PATH, answer_tokens.clone());
    let o = run(
        &mut h,
        get(
            "/oauth2/callback",
            &format!("code=the-secret-code&state={}", q["state"]),
            &[("cookie", &signin)],
        ),
    );
    let session = cookie_pair(&set_cookie(&o, SESSION_COOKIE).unwrap());
    let mut lines = vec![o.audit.line(0)];
    lines.push(
        run(&mut h, get("/oauth2/userinfo", "", &[("cookie", &session)]))
            .audit
            .line(0),
    );
    lines.extend(h.logs.iter().cloned());
    let secrets = [
        t["access_token"].as_str().unwrap(),
        t["id_token"].as_str().unwrap(),
        "refresh-token-secret",
        "the-secret-code",
        "client-secret-value",
        session.split_once('=').unwrap().1,
        signin.split_once('=').unwrap().1,
        &q["state"],
    ];
    for line in &lines {
        for s in secrets {
            assert!(!line.contains(s), "{line}");
        }
    }
    // and the cookie itself holds no token in clear
    assert!(!session.contains("eyJ") && !session.contains("refresh-token-secret"));
}

#[test]
fn sign_in_paths_answer_404_when_browser_sign_in_is_off() {
    let mut h = idp_host();
    h.set_var("oidc_client_id", "");
    let o = run(&mut h, get("/oauth2/sign_in", "", &[]));
    assert_eq!(
        (o.reply.status(), reason(&o)),
        (404, "signin_not_configured")
    );
    let nav = get("/", "", &[("sec-fetch-mode", "navigate")]);
    assert_eq!(run(&mut h, nav).reply.status(), 401);
}
