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
