use super::*;
use crate::config::tests::lookup_with;
use crate::config::Config;
use crate::identity::Identity;
use crate::vocab::rbac::Role;

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

fn browser(keys: &str) -> BrowserConfig {
    let cfg = Config::from_lookup(lookup_with(&[
        ("auth_mode", "oidc"),
        ("oidc_issuer", "https://idp.example.com/realms/r"),
        ("oidc_audience", "mlflow"),
        ("idp_origin", "https://idp.example.com"),
        ("oidc_client_id", "mlflow-gateway"),
        ("oidc_client_secret", "s3cret:&"),
        (
            "oidc_redirect_url",
            "https://mlflow.example.com/oauth2/callback",
        ),
        ("oidc_scopes", "openid  offline_access"),
        ("session_cookie_keys", keys),
    ]))
    .expect("config");
    cfg.oidc.and_then(|o| o.browser).expect("browser config")
}

fn session(rt: Option<&str>, it: Option<String>) -> Session {
    Session {
        identity: Identity::single("team-a", "alice", vec![Role::Editor]),
        access_issued_at: 1000,
        access_expires_at: 1300,
        ends_at: 5000,
        refresh_token: rt.map(str::to_string),
        id_token: it,
    }
}

fn distinct() -> [u8; 96] {
    std::array::from_fn(|i| i as u8)
}

fn value_of(set_cookie: &str) -> &str {
    let (_, rest) = set_cookie.split_once('=').expect("name=value");
    rest.split(';').next().expect("value")
}

#[test]
fn a_sealed_session_opens_with_its_key_and_shows_no_token() {
    let b = browser(KEY_A);
    let s = session(
        Some("refresh-secret-123"),
        Some("eyJhbGciOi.id.token".into()),
    );
    let cookie = seal_session(&b, [7; 12], &s, 1000).expect("fits");
    assert!(cookie.starts_with("__Host-mlflow-session="));
    for attr in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=4000",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let value = value_of(&cookie);
    assert!(
        !value.contains("refresh-secret") && !value.contains("eyJ") && !value.contains("alice")
    );
    assert_eq!(open_session(&b, value), Some(s));
}

#[test]
fn tampered_foreign_key_and_swapped_cookies_do_not_open() {
    let b = browser(KEY_A);
    let cookie = seal_session(&b, [1; 12], &session(Some("rt"), None), 1000).unwrap();
    let value = value_of(&cookie).to_string();
    // one bit flipped anywhere (nonce, body, tag)
    let raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
    for i in [0, raw.len() / 2, raw.len() - 1] {
        let mut bad = raw.clone();
        bad[i] ^= 1;
        assert_eq!(
            open_session(&b, &URL_SAFE_NO_PAD.encode(&bad)),
            None,
            "byte {i}"
        );
    }
    assert_eq!(open_session(&b, &value[..value.len() - 4]), None);
    assert_eq!(
        open_session(&browser(KEY_B), &value),
        None,
        "another gateway's key"
    );
    // a sign-in cookie's value is not a session (the cookie name is authenticated)
    let attempt = SignIn::new(&[9; 96], "/".into(), 1000);
    let signin = seal_signin(&b, [2; 12], &attempt).unwrap();
    assert_eq!(open_session(&b, value_of(&signin)), None);
    assert_eq!(open_signin(&b, value_of(&signin)), Some(attempt));
    assert_eq!(open_session(&b, "not base64 !"), None);
    assert_eq!(open_session(&b, &"A".repeat(9000)), None);
}

#[test]
fn key_rotation_opens_old_cookies_and_seals_with_the_first_key() {
    let old = browser(KEY_A);
    let cookie = seal_session(&old, [3; 12], &session(None, None), 1000).unwrap();
    let rotated = browser(&format!("{KEY_B}, {KEY_A}"));
    assert!(open_session(&rotated, value_of(&cookie)).is_some());
    let new_cookie = seal_session(&rotated, [4; 12], &session(None, None), 1000).unwrap();
    assert!(open_session(&browser(KEY_B), value_of(&new_cookie)).is_some());
    assert!(open_session(&old, value_of(&new_cookie)).is_none());
}

#[test]
fn an_id_token_that_does_not_fit_is_left_out_and_a_refresh_token_that_does_not_fit_fails() {
    let b = browser(KEY_A);
    let big_id = format!("eyJ{}", "x".repeat(3000));
    let cookie = seal_session(&b, [5; 12], &session(Some("rt"), Some(big_id)), 1000).unwrap();
    assert!(cookie.len() <= MAX_COOKIE_BYTES);
    let opened = open_session(&b, value_of(&cookie)).unwrap();
    assert_eq!(opened.id_token, None);
    assert_eq!(opened.refresh_token.as_deref(), Some("rt"));
    let huge_rt = "r".repeat(3000);
    assert_eq!(
        seal_session(&b, [5; 12], &session(Some(&huge_rt), None), 1000),
        None
    );
}

#[test]
fn standing_follows_the_access_token_and_the_session_end() {
    let s = session(Some("rt"), None);
    assert_eq!(s.refresh_at(), 1200);
    assert_eq!(s.standing(1100), Standing::Valid);
    assert_eq!(
        s.standing(1200),
        Standing::RefreshDue { access_valid: true }
    );
    assert_eq!(
        s.standing(1300),
        Standing::RefreshDue {
            access_valid: false
        }
    );
    assert_eq!(s.standing(5000), Standing::Expired);
    let no_rt = session(None, None);
    assert_eq!(no_rt.standing(1250), Standing::Valid);
    assert_eq!(no_rt.standing(1300), Standing::Expired);
    assert_eq!(s.max_age(4990), 10);
}

#[test]
fn the_session_keeps_every_tenant_and_group() {
    let mut s = session(None, None);
    crate::identity::add_membership(&mut s.identity.memberships, "team-b", &[Role::Viewer]);
    s.identity.groups = vec!["ml-ops".into()];
    let cfg = browser(KEY_A);
    let sealed = seal_session(&cfg, [7; 12], &s, 1000).unwrap();
    let value = sealed.split(';').next().unwrap().split_once('=').unwrap().1;
    let opened = open_session(&cfg, value).unwrap();
    assert_eq!(opened.identity, s.identity);
    assert_eq!(opened.identity.first_tenant(), Some("team-a"));
}

#[test]
fn pkce_challenge_is_rfc7636_s256() {
    // RFC 7636 appendix B
    let mut a = SignIn::new(&[0; 96], "/".into(), 0);
    a.verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into();
    assert_eq!(a.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let b = SignIn::new(&distinct(), "/".into(), 0);
    assert_eq!(b.state.len(), 43);
    assert_ne!(b.state, b.nonce);
    assert!(!b.expired(SIGNIN_SECONDS - 1) && b.expired(SIGNIN_SECONDS));
}

#[test]
fn return_paths_stay_on_this_gateway() {
    assert_eq!(return_path(None).as_deref(), Some("/"));
    assert_eq!(return_path(Some("")).as_deref(), Some("/"));
    // The fragment (the MLflow UI's hash route) is kept as it is: it cannot leave the origin.
    for ok in [
        "/",
        "/#/experiments/1",
        "/static-files/x.js?a=b",
        "/#/experiments/1/runs/abc?workspace=team-a",
        "/?o=1#/models",
        "/#//evil.example",
    ] {
        assert_eq!(return_path(Some(ok)).as_deref(), Some(ok));
    }
    for bad in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/a\\b",
        "evil.example",
        "javascript:alert(1)",
        "/a\nLocation: x",
        "/a b",
        "/#/a\\b",
        "/#/a b",
        "/#/a\n",
        &format!("/{}", "a".repeat(3000)),
    ] {
        assert_eq!(return_path(Some(bad)), None, "{bad}");
    }
}

#[test]
fn cookie_values_are_found_and_duplicates_refused() {
    let h: Vec<&[u8]> = vec![b"a=1; __Host-mlflow-session=abc; b=2"];
    assert_eq!(cookie_value(&h, SESSION_COOKIE), Ok(Some("abc".into())));
    assert_eq!(cookie_value(&h, SIGNIN_COOKIE), Ok(None));
    let two: Vec<&[u8]> = vec![b"__Host-mlflow-session=abc", b"__Host-mlflow-session=def"];
    assert_eq!(cookie_value(&two, SESSION_COOKIE), Err(DuplicateCookie));
    let empty: Vec<&[u8]> = vec![b"__Host-mlflow-session="];
    assert_eq!(cookie_value(&empty, SESSION_COOKIE), Ok(None));
    // a prefix of the name is another cookie
    let other: Vec<&[u8]> = vec![b"x__Host-mlflow-session=abc"];
    assert_eq!(cookie_value(&other, SESSION_COOKIE), Ok(None));
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn navigations_are_told_from_api_calls() {
    assert!(is_navigation(
        "GET",
        &headers(&[("sec-fetch-mode", "navigate")])
    ));
    assert!(is_navigation(
        "GET",
        &headers(&[("accept", "text/html,application/xhtml+xml")])
    ));
    assert!(!is_navigation(
        "GET",
        &headers(&[("sec-fetch-mode", "cors"), ("accept", "text/html")])
    ));
    assert!(!is_navigation(
        "GET",
        &headers(&[("accept", "application/json")])
    ));
    assert!(!is_navigation("GET", &headers(&[])));
    assert!(!is_navigation(
        "POST",
        &headers(&[("sec-fetch-mode", "navigate")])
    ));
    assert!(is_api_path("/api/2.0/mlflow/runs/get") && is_api_path("/ajax-api/2.0/x"));
    assert!(is_api_path("/graphql") && !is_api_path("/") && !is_api_path("/static-files/a.js"));
}

#[test]
fn state_changes_with_the_cookie_must_come_from_the_own_origin() {
    let own = browser(KEY_A).public_origin;
    assert!(same_origin_or_safe(
        "GET",
        &headers(&[("origin", "https://evil.example")]),
        &own
    ));
    let same = headers(&[("origin", "https://mlflow.example.com")]);
    assert!(same_origin_or_safe("POST", &same, &own));
    assert!(same_origin_or_safe(
        "DELETE",
        &headers(&[("sec-fetch-site", "same-origin")]),
        &own
    ));
    for bad in [
        headers(&[("origin", "https://evil.example")]),
        headers(&[("origin", "https://mlflow.example.com.evil.example")]),
        headers(&[("origin", "null")]),
        headers(&[("sec-fetch-site", "cross-site")]),
        headers(&[("sec-fetch-site", "same-site")]),
        headers(&[
            ("origin", "https://mlflow.example.com"),
            ("sec-fetch-site", "cross-site"),
        ]),
        headers(&[]),
    ] {
        assert!(!same_origin_or_safe("POST", &bad, &own), "{bad:?}");
    }
}

#[test]
fn the_idp_urls_and_token_requests_carry_what_the_flow_needs() {
    let b = browser(KEY_A);
    let doc = br#"{"issuer":"https://idp.example.com/realms/r","authorization_endpoint":"https://idp.example.com/auth","token_endpoint":"https://idp.example.com/token","end_session_endpoint":"https://idp.example.com/logout","jwks_uri":"https://idp.example.com/certs"}"#;
    let ep = parse_endpoints(
        doc,
        &crate::config::parse_url("x", "https://idp.example.com")
            .unwrap()
            .0,
    )
    .unwrap();
    let a = SignIn::new(&distinct(), "/".into(), 0);
    let url = authorize_url(&ep, &b, &a);
    let (base, q) = url.split_once('?').unwrap();
    assert_eq!(base, "https://idp.example.com/auth");
    let q: std::collections::HashMap<String, String> =
        form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "mlflow-gateway");
    assert_eq!(
        q["redirect_uri"],
        "https://mlflow.example.com/oauth2/callback"
    );
    assert_eq!(q["scope"], "openid offline_access");
    assert_eq!(
        (q["state"].as_str(), q["nonce"].as_str()),
        (a.state.as_str(), a.nonce.as_str())
    );
    assert_eq!(q["code_challenge"], a.challenge());
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!url.contains(&a.verifier));

    let body = String::from_utf8(token_request_body(
        &b,
        &Grant::Code {
            code: "c&d",
            verifier: "v",
        },
    ))
    .unwrap();
    assert_eq!(body, "grant_type=authorization_code&code=c%26d&redirect_uri=https%3A%2F%2Fmlflow.example.com%2Foauth2%2Fcallback&code_verifier=v");
    // client_secret_basic: id and secret form-encoded, then base64
    let basic = client_auth_header(&b);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"mlflow-gateway:s3cret%3A%26");

    let out = logout_url(ep.end_session.as_deref().unwrap(), &b, Some("idt"));
    assert!(out.starts_with("https://idp.example.com/logout?client_id=mlflow-gateway&post_logout_redirect_uri=https%3A%2F%2Fmlflow.example.com%2F&id_token_hint=idt"), "{out}");

    // a token endpoint outside idp_origin would make the gateway call elsewhere
    let elsewhere = br#"{"authorization_endpoint":"https://idp.example.com/auth","token_endpoint":"https://evil.example/token"}"#;
    assert!(parse_endpoints(
        elsewhere,
        &crate::config::parse_url("x", "https://idp.example.com")
            .unwrap()
            .0
    )
    .is_err());
}

#[test]
fn token_answers_are_read_strictly() {
    let t = parse_tokens(br#"{"access_token":"a","id_token":"i","refresh_token":"r","token_type":"Bearer","expires_in":300}"#).unwrap();
    assert_eq!(
        (
            t.access_token.as_str(),
            t.id_token.as_deref(),
            t.refresh_token.as_deref()
        ),
        ("a", Some("i"), Some("r"))
    );
    assert!(parse_tokens(br#"{"id_token":"i"}"#).is_err());
    assert!(parse_tokens(br#"{"access_token":"a","token_type":"mac"}"#).is_err());
    assert!(parse_tokens(br#"{"access_token":"a","access_token":"b"}"#).is_err());
    assert_eq!(
        oauth_error(br#"{"error":"invalid_grant","error_description":"x"}"#),
        "invalid_grant"
    );
    assert_eq!(oauth_error(b"<html>"), "unrecognised answer");
}

#[test]
fn browser_config_is_checked() {
    let base = [
        ("auth_mode", "oidc"),
        ("oidc_issuer", "https://idp.example.com/realms/r"),
        ("oidc_audience", "mlflow"),
        ("idp_origin", "https://idp.example.com"),
        ("oidc_client_id", "gw"),
        ("oidc_client_secret", "s"),
        (
            "oidc_redirect_url",
            "https://mlflow.example.com/oauth2/callback",
        ),
        ("session_cookie_keys", KEY_A),
    ];
    let with = |k: &str, v: &str| {
        let mut over: Vec<(&str, &str)> = base.iter().copied().filter(|(n, _)| *n != k).collect();
        over.push((k, v));
        Config::from_lookup(lookup_with(&over)).map(|c| c.oidc.unwrap().browser)
    };
    assert!(
        with("oidc_client_id", "").unwrap().is_none(),
        "off without a client id"
    );
    let ok = with("oidc_scopes", "openid").unwrap().unwrap();
    assert_eq!(ok.public_origin.as_string(), "https://mlflow.example.com");
    for (var, value) in [
        ("oidc_client_secret", ""),
        ("oidc_redirect_url", ""),
        ("oidc_redirect_url", "https://mlflow.example.com/callback"),
        (
            "oidc_redirect_url",
            "http://mlflow.example.com/oauth2/callback",
        ),
        ("oidc_scopes", "profile"),
        ("session_cookie_keys", ""),
        ("session_cookie_keys", "c2hvcnQ="),
        ("session_max_seconds", "0"),
    ] {
        let e = with(var, value).expect_err(&format!("{var}={value}"));
        assert_eq!(e.variable, var);
    }
    assert!(with("oidc_redirect_url", "http://127.0.0.1:3000/oauth2/callback").is_ok());
    assert!(with("oidc_redirect_url", "http://localhost/oauth2/callback").is_ok());
}

#[test]
fn secrets_never_show_in_debug_output() {
    let b = browser(KEY_A);
    let shown = format!("{b:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains(KEY_A),
        "{shown}"
    );
}

#[test]
fn header_cookies_are_found_by_prefix_whatever_the_case() {
    let headers: Vec<&[u8]> = vec![
        b"a=1; mlflow-request-header-Authorization=Bearer x; __Host-mlflow-session=s",
        b"MLFLOW-REQUEST-HEADER-x_tenant=t;mlflow-request-header-Authorization=again",
        b"mlflow-request-header-X-MLFLOW-WORKSPACE",
    ];
    assert_eq!(
        header_cookies(&headers),
        vec![
            "mlflow-request-header-Authorization",
            "MLFLOW-REQUEST-HEADER-x_tenant",
            "mlflow-request-header-X-MLFLOW-WORKSPACE"
        ]
    );
    let clean: Vec<&[u8]> = vec![b"__Host-mlflow-session=s; mlflow_user=x; mlflow-request-header"];
    assert!(header_cookies(&clean).is_empty());
}

#[test]
fn planted_cookies_are_deleted_host_only_and_on_every_parent_domain() {
    let all = delete_everywhere(
        "mlflow-request-header-Authorization",
        Some("ml.corp.example.com"),
    );
    assert_eq!(all.len(), 4);
    assert!(all[0].starts_with("mlflow-request-header-Authorization=; Path=/; Max-Age=0"));
    assert!(!all[0].contains("Domain"));
    for d in ["ml.corp.example.com", "corp.example.com", "example.com"] {
        assert!(
            all.iter().any(|c| c.ends_with(&format!("; Domain={d}"))),
            "{d}"
        );
    }
    for host in [None, Some("localhost"), Some("127.0.0.1"), Some("[::1]")] {
        assert_eq!(delete_everywhere("n", host).len(), 1, "{host:?}");
    }
}

#[test]
fn sign_in_queries_are_form_decoded_and_a_repeated_name_refused() {
    let q = query_params("code=a%2Bb&state=s+1&rd=%2F%23%2Fexperiments").unwrap();
    assert_eq!(q["code"], "a+b");
    assert_eq!(q["state"], "s 1");
    assert_eq!(q["rd"], "/#/experiments");
    assert_eq!(query_params("state=a&state=b"), Err("state".to_string()));
    assert!(query_params("").unwrap().is_empty());
}
