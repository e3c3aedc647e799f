//! Route matching: the request path is checked for ambiguity first (MLflow's ASGI server
//! percent-decodes paths before routing, so `/api/2.0/mlflow/runs/%67et` *is* `runs/get`
//! upstream), then matched against the table by exact segments, never by substring.

use super::table::{Mount, Row, DENIED_FAMILIES, ROWS};
use crate::error::{GatewayError, Reason};

/// A request path matched to a row.
#[derive(Debug, Clone)]
pub struct Matched {
    pub row: &'static Row,
    /// The exact prefix the request used (`/api/2.0/mlflow/`, `/ajax-api/2.0/mlflow/`, …).
    pub prefix: &'static str,
    /// `{name}` segments and the `{name...}` tail (the tail still percent-encoded).
    pub params: Vec<(&'static str, String)>,
}

impl Matched {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

const PREFIXES: &[(&str, Mount, bool)] = &[
    // (prefix, mount family, is the ajax mirror)
    ("/api/2.0/mlflow-artifacts/", Mount::Artifacts, false),
    ("/ajax-api/2.0/mlflow-artifacts/", Mount::Artifacts, true),
    ("/api/2.0/mlflow/", Mount::Api2, false),
    ("/ajax-api/2.0/mlflow/", Mount::Api2, true),
    ("/api/3.0/mlflow/", Mount::Api3, false),
    ("/ajax-api/3.0/mlflow/", Mount::Api3, true),
    ("/", Mount::Root, false),
];

fn mount_accepts(row_mount: Mount, prefix_mount: Mount, ajax: bool) -> bool {
    match row_mount {
        Mount::Ajax2 => prefix_mount == Mount::Api2 && ajax,
        Mount::Ajax3 => prefix_mount == Mount::Api3 && ajax,
        m => m == prefix_mount,
    }
}

fn invalid(msg: &str) -> GatewayError {
    GatewayError::new(Reason::InvalidPath, msg.to_string())
}

/// Rejects paths MLflow would route differently from a literal reading. Only the tail of a
/// proxied-artifact path may carry percent-encoding; it is checked by `mlflow::artifacts`.
fn check_route_text(text: &str) -> Result<(), GatewayError> {
    if text.contains('%') {
        return Err(invalid("percent-encoded route paths are refused"));
    }
    if text.contains("//") || text.contains('\\') || text.chars().any(|c| c.is_control()) {
        return Err(invalid("request path is ambiguous"));
    }
    if text.split('/').any(|s| s == "." || s == "..") {
        return Err(invalid("request path has `.` or `..` segments"));
    }
    Ok(())
}

/// Matches a pattern like `logged-models/{model_id}/tags/{tag_key}` or `artifacts/{path...}`.
fn match_row(pattern: &'static str, rest: &str) -> Option<Vec<(&'static str, String)>> {
    let pat: Vec<&'static str> = if pattern.is_empty() {
        vec![]
    } else {
        pattern.split('/').collect()
    };
    let segs: Vec<&str> = if rest.is_empty() {
        vec![]
    } else {
        rest.split('/').collect()
    };
    let mut params = Vec::new();
    for (i, p) in pat.iter().enumerate() {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("...}")) {
            let tail = segs.get(i..)?.join("/");
            if tail.is_empty() {
                return None;
            }
            params.push((name, tail));
            return Some(params);
        }
        let seg = segs.get(i)?;
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            params.push((name, (*seg).to_string()));
        } else if p != seg {
            return None;
        }
    }
    (segs.len() == pat.len()).then_some(params)
}

/// Finds the row for `method` + raw `path`, or explains why there is none.
pub fn match_route(method: &str, path: &str) -> Result<Matched, GatewayError> {
    if !path.starts_with('/') {
        return Err(invalid("request path must be absolute"));
    }
    let (prefix, mount, ajax) = PREFIXES
        .iter()
        .find(|(p, _, _)| path.starts_with(p))
        .copied()
        .ok_or_else(|| invalid("request path must be absolute"))?;
    let rest = &path[prefix.len()..];
    // For artifact routes only the `{path...}` tail may be encoded; check the head here.
    let head_end = if mount == Mount::Artifacts {
        ["artifacts/", "mpu/create/", "mpu/complete/", "mpu/abort/"]
            .iter()
            .find(|h| rest.starts_with(*h))
            .map_or(rest.len(), |h| h.len())
    } else {
        rest.len()
    };
    check_route_text(&path[..prefix.len() + head_end])?;
    if mount != Mount::Artifacts && rest.ends_with('/') {
        return Err(invalid("request path has a trailing slash"));
    }

    let mut method_mismatch = false;
    // A literal segment wins over a `{param}` (as in Flask): the match with fewest parameters.
    let mut best: Option<Matched> = None;
    for row in ROWS {
        if !mount_accepts(row.mount, mount, ajax) {
            continue;
        }
        if let Some(params) = match_row(row.path, rest) {
            if row.method != method {
                method_mismatch = true;
            } else if best.as_ref().is_none_or(|b| params.len() < b.params.len()) {
                let literal = params.is_empty();
                best = Some(Matched {
                    row,
                    prefix,
                    params,
                });
                // An all-literal match cannot be beaten: stop scanning (the hot path).
                if literal {
                    break;
                }
            }
        }
    }
    if let Some(m) = best {
        return Ok(m);
    }
    if let Some((_, why)) = DENIED_FAMILIES.iter().find(|(f, _)| rest.starts_with(f)) {
        return Err(GatewayError::new(
            Reason::RouteDenied,
            format!("the gateway policy does not permit this route: {why}"),
        ));
    }
    let message = if method_mismatch {
        format!("the gateway policy does not permit {method} on this route")
    } else {
        "the gateway policy does not permit this route".to_string()
    };
    Err(GatewayError::new(Reason::RouteNotAllowed, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_match_the_same_row() {
        for p in ["/api/2.0/mlflow/runs/get", "/ajax-api/2.0/mlflow/runs/get"] {
            assert_eq!(match_route("GET", p).unwrap().row.id, "runs.get");
        }
    }

    #[test]
    fn ajax_only_rows_need_the_ajax_prefix() {
        assert!(match_route("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk").is_ok());
        let e = match_route("GET", "/api/2.0/mlflow/metrics/get-history-bulk").unwrap_err();
        assert_eq!(e.reason, Reason::RouteNotAllowed);
    }

    #[test]
    fn unknown_routes_and_methods_are_denied() {
        for (m, p) in [
            ("GET", "/api/2.0/mlflow/registered-models/get-everything"),
            ("DELETE", "/api/2.0/mlflow/runs/get"),
            ("HEAD", "/api/2.0/mlflow/runs/get"),
            ("OPTIONS", "/api/2.0/mlflow/runs/search"),
            ("POST", "/api/2.0/mlflow/webhooks/1/deliveries"),
            ("POST", "/ajax-api/3.0/jobs/search"),
            ("POST", "/ajax-api/3.0/mlflow/assistant/message"),
            ("GET", "/admin"),
            ("GET", "/api/3.0/mlflow/runs/get"),
        ] {
            let e = match_route(m, p).unwrap_err();
            assert!(
                matches!(e.reason, Reason::RouteNotAllowed | Reason::RouteDenied),
                "{m} {p}"
            );
            assert_eq!(e.status(), 403);
        }
        let e = match_route("POST", "/ajax-api/3.0/mlflow/assistant/message").unwrap_err();
        assert_eq!(e.reason, Reason::RouteDenied);
        assert!(e.message.contains("assistant"));
        // Generic job submission has no row; a job's status has one.
        let e = match_route("POST", "/ajax-api/3.0/jobs/search").unwrap_err();
        assert_eq!(e.reason, Reason::RouteDenied);
        assert_eq!(
            match_route("GET", "/ajax-api/3.0/jobs/abc").unwrap().row.id,
            "jobs.get"
        );
        assert_eq!(
            match_route("GET", "/admin").unwrap_err().reason,
            Reason::RouteNotAllowed
        );
    }

    #[test]
    fn encoded_or_ambiguous_route_paths_are_refused() {
        for p in [
            "/api/2.0/mlflow/runs/%67et",
            "/api/2.0/mlflow%2Fruns/get",
            "/api/2.0/mlflow//runs/get",
            "/api/2.0/mlflow/runs/get/",
            "/api/2.0/mlflow/./runs/get",
            "/api/2.0/mlflow/x/../runs/get",
            "/api/2.0/mlflow-artifacts/artif%61cts/1/r/a",
        ] {
            let e = match_route("GET", p).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidPath, "{p}");
        }
    }

    #[test]
    fn params_and_tails() {
        let m = match_route("DELETE", "/api/2.0/mlflow/logged-models/m-1/tags/k").unwrap();
        assert_eq!(m.row.id, "logged_models.delete_tag");
        assert_eq!(m.param("model_id"), Some("m-1"));
        assert_eq!(m.param("tag_key"), Some("k"));
        let m = match_route(
            "GET",
            "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a%20b",
        )
        .unwrap();
        assert_eq!(m.row.id, "mlflow_artifacts.download");
        assert_eq!(m.param("path"), Some("1/r/artifacts/a%20b"));
        let m = match_route("GET", "/api/2.0/mlflow-artifacts/artifacts").unwrap();
        assert_eq!(m.row.id, "mlflow_artifacts.list");
        assert_eq!(match_route("GET", "/").unwrap().row.id, "ui.index");
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        for (m, p, id) in [
            ("GET", "/api/3.0/mlflow/traces/batchGet", "traces.batch_get"),
            ("GET", "/api/3.0/mlflow/traces/get", "traces.get_info_v3"),
            ("GET", "/api/3.0/mlflow/traces/tr-1", "traces.get_v3"),
            ("POST", "/api/3.0/mlflow/traces/search", "traces.search_v3"),
            (
                "POST",
                "/api/2.0/mlflow/traces/delete-traces",
                "traces.delete_v2",
            ),
            ("PATCH", "/api/2.0/mlflow/traces/tr-1", "traces.end_v2"),
            (
                "GET",
                "/ajax-api/3.0/mlflow/get-trace-artifact",
                "traces.get_artifact_v3",
            ),
        ] {
            assert_eq!(match_route(m, p).unwrap().row.id, id, "{m} {p}");
        }
        // A literal path with another method is not read as a trace id.
        assert!(match_route("DELETE", "/api/3.0/mlflow/traces/search").is_err());
        assert!(match_route("GET", "/api/3.0/mlflow/get-trace-artifact").is_err());
    }
}
