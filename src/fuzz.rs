//! Property-based fuzzing (proptest) of every parser of untrusted input outside GraphQL:
//! the bearer token header and its claims (`identity::jwt`, `identity::claims`), strict JSON
//! (`mlflow::json`), query strings (`mlflow::query`), proxied-artifact paths
//! (`mlflow::artifacts`) and route matching (`policy::route`). GraphQL (`mlflow::graphql`) gets
//! its harness with the parser crate replacing the hand-written lexer there.
//!
//! Each property holds for arbitrary input: no panic, and what the gateway accepts is stable
//! (re-parsing what it forwards gives back what it checked). `cargo test` runs a bounded number
//! of cases (256 per property, built from the seed corpus below plus random input);
//! `PROPTEST_CASES=20000 cargo test fuzz::` runs longer (docs/reliability.md).
//! A finding becomes a named unit test next to the parser it broke.

use crate::config::tests::{dev_config, oidc_config};
use crate::identity::{claims, jwt};
use crate::mlflow::{artifacts, json, query::Query};
use crate::policy;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::Config as RunnerConfig;

/// Cases per property: `PROPTEST_CASES` when set (the long run), else 256.
fn cases() -> RunnerConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    RunnerConfig {
        cases: n,
        failure_persistence: None,
        ..RunnerConfig::default()
    }
}

/// Seeds mixed into the generated strings: the shapes attacks use.
const SEEDS: &[&str] = &[
    "",
    "%",
    "%2",
    "%25",
    "%2e%2e",
    "%252e",
    "%2F",
    "..",
    ".",
    "/",
    "//",
    "\\",
    "?",
    "#",
    "&",
    "=",
    "+",
    "%00",
    "\u{0}",
    "é",
    "\u{202e}",
    "{",
    "}",
    "\"",
    "[",
    "]",
    ":",
    ",",
    "1",
    "-1",
    "1e999",
    "null",
    "true",
    "api/2.0/mlflow/",
    "ajax-api/2.0/mlflow/",
    "api/2.0/mlflow-artifacts/artifacts/",
    "runs/get",
    "experiments/search",
    "eyJhbGciOiJub25lIn0",
    "Bearer ",
    ".",
];

/// Strings assembled from seeds and arbitrary characters.
fn hostile_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(SEEDS).prop_map(str::to_string),
            any::<char>().prop_map(|c| c.to_string()),
            "[a-z0-9_.-]{1,8}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// Arbitrary JSON values, bounded in depth and width.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

proptest! {
    #![proptest_config(cases())]

    // ---- token header and claims ------------------------------------------------------

    #[test]
    fn bearer_header_never_panics(raw in prop::collection::vec(any::<u8>(), 0..256),
                                  s in hostile_string()) {
        for v in [raw.clone(), format!("Bearer {s}").into_bytes(), s.into_bytes()] {
            if let Ok(t) = jwt::bearer_token(&[&v]) {
                prop_assert!(!t.is_empty());
                prop_assert_eq!(t.trim(), t.as_str());
            }
        }
    }

    #[test]
    fn token_header_never_panics(header in json_value(), raw_header in hostile_string(),
                                 payload in prop::collection::vec(any::<u8>(), 0..64),
                                 sig in hostile_string()) {
        let cfg = oidc_config();
        let oidc = cfg.oidc.as_ref().expect("oidc config");
        for h in [b64u(header.to_string().as_bytes()), b64u(raw_header.as_bytes()), raw_header] {
            let token = format!("{h}.{}.{sig}", b64u(&payload));
            if let Ok(parsed) = jwt::peek_header(&token, oidc) {
                prop_assert!(oidc.allowed_algorithms.contains(&parsed.alg));
            }
        }
    }

    #[test]
    fn claims_never_panic(claims in json_value()) {
        let cfg = oidc_config();
        if let serde_json::Value::Object(m) = claims {
            if let Ok(id) = claims::identity_from_claims(&m, &cfg) {
                prop_assert!(id.first_tenant().is_some_and(|t| !t.is_empty()));
            }
        }
    }

    // ---- strict JSON ------------------------------------------------------------------

    #[test]
    fn strict_json_round_trips_what_serde_writes(v in json_value()) {
        let text = v.to_string();
        prop_assert_eq!(json::parse_strict(text.as_bytes()), Ok(v));
    }

    #[test]
    fn strict_json_never_panics_and_refuses_duplicates(bytes in prop::collection::vec(any::<u8>(), 0..256),
                                                       s in hostile_string(), key in hostile_string()) {
        let _ = json::parse_object(&bytes);
        let _ = json::parse_object(s.as_bytes());
        let k = serde_json::Value::from(key).to_string();
        let dup = format!("{{{k}:1,{k}:2}}");
        prop_assert!(json::parse_object(dup.as_bytes()).is_err());
        let nested = format!("{{\"a\":[{{{k}:1,{k}:2}}]}}");
        prop_assert!(json::parse_object(nested.as_bytes()).is_err());
    }

    // ---- query strings ----------------------------------------------------------------

    #[test]
    fn query_reencoding_is_read_back_identically(raw in hostile_string()) {
        for lists in [&[][..], &["run_ids", "experiment_ids"][..]] {
            if let Ok(q) = Query::parse(&raw, lists) {
                let again = Query::parse(&q.encode(), lists);
                prop_assert_eq!(again, Ok(q));
            }
        }
    }

    // ---- proxied artifact paths ---------------------------------------------------------

    #[test]
    fn artifact_paths_are_canonical(raw in hostile_string()) {
        if let Ok(p) = artifacts::from_url_path(&raw) {
            prop_assert!(!p.segments.is_empty());
            for s in &p.segments {
                prop_assert!(!s.is_empty() && s != "." && s != "..");
                prop_assert!(!s.contains('/') && !s.contains('\\'));
            }
            // What is forwarded is read back as exactly the segments that were checked.
            prop_assert_eq!(artifacts::from_url_path(&p.encoded()), Ok(p.clone()));
            prop_assert_eq!(artifacts::from_decoded(&p.plain()), Ok(p));
        }
        let _ = artifacts::from_decoded(&raw);
        let _ = artifacts::check_file_name(&raw);
    }

    // ---- route matching -----------------------------------------------------------------

    #[test]
    fn route_matching_never_panics(method in prop::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "TRACE"][..]),
                                   prefix in prop::sample::select(&["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/", "/", "", "/graphql", "/static-files/"][..]),
                                   rest in hostile_string()) {
        let path = format!("{prefix}{rest}");
        if let Ok(m) = policy::match_route(method, &path) {
            prop_assert_eq!(m.row.method, method);
            prop_assert!(path.starts_with(m.prefix));
        }
    }

    #[test]
    fn dev_identity_headers_never_panic(tenant in prop::collection::vec(any::<u8>(), 0..80),
                                        roles in hostile_string()) {
        let cfg = dev_config();
        let mut inc = crate::request::Incoming::for_test("GET", "/", "", &[("x-roles", &roles)], b"");
        inc.headers.push(("x-tenant".into(), tenant));
        let _ = crate::identity::dev::authenticate(&inc, &cfg);
    }
}
