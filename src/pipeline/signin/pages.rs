//! What the sign-in endpoints answer besides errors: redirects, the signed-out page, JSON.

use crate::error::HttpResponse;

pub fn redirect(location: &str, rid: &str) -> HttpResponse {
    HttpResponse {
        status: 302,
        headers: vec![
            ("location".into(), location.into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), rid.into()),
        ],
        body: Vec::new(),
    }
}

pub fn signed_out_page(rid: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), rid.into()),
        ],
        body: b"<!doctype html><title>Signed out</title><p>You are signed out of MLflow. <a href=\"/oauth2/sign_in\">Sign in again</a></p>\n".to_vec(),
    }
}

/// A JSON answer that no cache keeps.
pub fn private_json(body: &serde_json::Value, rid: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), rid.into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// The page script of `sign_in_page`: the fragment (`#/experiments/1`, where the MLflow UI
/// keeps its route) never reaches the server, so the browser adds it to the return path
/// itself. A constant, allowed by its hash in the page's CSP; it reads only `location.hash` and
/// the link the server wrote.
const SIGN_IN_SCRIPT: &str = "(function(){var a=document.getElementById(\"sign-in\"),h=location.hash;location.replace(h.length>1?\"/oauth2/sign_in?rd=\"+encodeURIComponent(a.getAttribute(\"data-back\")+h):a.getAttribute(\"href\"));})();";

/// What a browser navigation without credentials gets: 401 with a page that sends it to
/// `/oauth2/sign_in?rd=<back + the URL's fragment>` at once. `back` is the path and query the
/// browser asked for, already checked as a return path; without script the page still goes to
/// sign-in (a `noscript` refresh) and keeps the path and query. The policy denies everything
/// else: no other script, style, frame or form.
pub fn sign_in_page(back: &str, rid: &str) -> HttpResponse {
    use base64::Engine;
    use sha2::Digest;

    let target = if back == "/" {
        "/oauth2/sign_in".to_string()
    } else {
        let enc: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
        format!("/oauth2/sign_in?rd={enc}")
    };
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(SIGN_IN_SCRIPT.as_bytes()));
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to MLflow</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"0;url={target}\"></noscript></head>\
         <body><p><a id=\"sign-in\" href=\"{target}\" data-back=\"{back}\">Sign in to MLflow</a></p>\
         <script>{SIGN_IN_SCRIPT}</script></body></html>\n",
        back = html_attribute(back),
    );
    HttpResponse {
        status: 401,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
            (
                "content-security-policy".into(),
                format!(
                    "default-src 'none'; script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                ),
            ),
            ("referrer-policy".into(), "no-referrer".into()),
            (
                "www-authenticate".into(),
                "Bearer realm=\"mlflow\", error=\"invalid_token\"".into(),
            ),
            ("x-request-id".into(), rid.into()),
        ],
        body: body.into_bytes(),
    }
}

/// `s` for a double-quoted HTML attribute.
fn html_attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}
