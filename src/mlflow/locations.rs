//! Where MLflow reads a trace's data from, and whether that is the trace's own place.
//!
//! MLflow's `get-trace-artifact` handler serves whatever the trace's tags name: spans from
//! `mlflow.artifactLocation` (or, when `mlflow.trace.spansLocation` is `ARCHIVE_REPO`, from
//! `mlflow.trace.archiveLocation`). Those tags are stored data, and MLflow lets clients write
//! them on some routes, so a trace could point at another tenant's spans or a directory on the
//! MLflow host. Before forwarding such a read the gateway requires the location to be exactly
//! the one MLflow gives a trace when it is created: `<experiment artifact location>/traces/
//! <trace id>/artifacts`, compared as parsed URIs (scheme, authority, path segments), never
//! as string prefixes. Pure: the pipeline fetches the two answers.

use super::json::parse_strict;
use crate::error::{GatewayError, Reason};
use serde_json::Value;

const ARTIFACT_LOCATION: &str = "mlflow.artifactLocation";
const SPANS_LOCATION: &str = "mlflow.trace.spansLocation";
const ARCHIVE_LOCATION: &str = "mlflow.trace.archiveLocation";

/// A URI reduced to what decides where it points. Anything that could be read two ways
/// (dot segments, percent escapes, query, fragment, backslashes, control characters) does not
/// parse, so it never equals a canonical location.
#[derive(Debug, PartialEq, Eq)]
struct Location {
    scheme: String,
    /// `None` and an empty authority (`file:/x` and `file:///x`) are the same place.
    authority: String,
    segments: Vec<String>,
}

fn parse_location(uri: &str) -> Option<Location> {
    let (scheme, rest) = uri.split_once(':')?;
    let scheme_ok = scheme.chars().next()?.is_ascii_alphabetic()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.contains(['?', '#', '%', '\\']) || rest.chars().any(char::is_control) {
        return None;
    }
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => r.split_once('/').unwrap_or((r, "")),
        None => ("", rest),
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if segments.iter().any(|s| s == "." || s == "..") {
        return None;
    }
    Some(Location {
        scheme: scheme.to_ascii_lowercase(),
        authority: authority.to_ascii_lowercase(),
        segments,
    })
}

fn refused(detail: &str) -> GatewayError {
    GatewayError::new(
        Reason::LocationRefused,
        format!(
            "the trace's data location is not its own ({detail}); the gateway does not serve it"
        ),
    )
}

fn unexpected() -> GatewayError {
    GatewayError::new(
        Reason::PreflightFailed,
        "a location check could not be completed",
    )
}

/// The experiment a v2 `traces/<id>/info` answer says the trace lives in.
pub fn trace_experiment(info_body: &[u8], trace_id: &str) -> Result<String, GatewayError> {
    let v = parse_strict(info_body).map_err(|_| unexpected())?;
    let info = v.get("trace_info").ok_or_else(unexpected)?;
    if info.get("request_id").and_then(Value::as_str) != Some(trace_id) {
        return Err(unexpected());
    }
    info.get("experiment_id")
        .and_then(Value::as_str)
        .filter(|e| super::ownership::valid_experiment_id(e))
        .map(str::to_string)
        .ok_or_else(unexpected)
}

/// Allows the read only when the trace's data locations are its canonical ones.
/// `info_body` is MLflow's v2 `traces/<id>/info` answer, `experiment_body` its
/// `experiments/get` answer for the trace's experiment.
pub fn check_trace_location(
    trace_id: &str,
    info_body: &[u8],
    experiment_body: &[u8],
) -> Result<(), GatewayError> {
    let exp_id = trace_experiment(info_body, trace_id)?;
    let info = parse_strict(info_body).map_err(|_| unexpected())?;
    let exp = parse_strict(experiment_body).map_err(|_| unexpected())?;
    let exp = exp.get("experiment").ok_or_else(unexpected)?;
    if exp.get("experiment_id").and_then(Value::as_str) != Some(exp_id.as_str()) {
        return Err(unexpected());
    }
    let root = exp
        .get("artifact_location")
        .and_then(Value::as_str)
        .and_then(parse_location)
        .ok_or_else(|| refused("the experiment's artifact location is not a plain URI"))?;
    let own_tail = ["traces", trace_id, "artifacts"].map(str::to_string);
    let tag = |key: &str| -> Option<&str> {
        info.get("trace_info")?
            .get("tags")?
            .as_array()?
            .iter()
            .find(|t| t.get("key").and_then(Value::as_str) == Some(key))?
            .get("value")?
            .as_str()
    };

    let canonical = Location {
        segments: root.segments.iter().chain(&own_tail).cloned().collect(),
        ..root
    };
    let stored = tag(ARTIFACT_LOCATION).and_then(parse_location);
    if stored.as_ref() != Some(&canonical) {
        return Err(refused("mlflow.artifactLocation"));
    }
    match tag(SPANS_LOCATION) {
        None | Some("TRACKING_STORE" | "ARTIFACT_REPO") => Ok(()),
        // Archived spans live under the server's archival root (server configuration the
        // gateway does not know): the path must end in the trace's own `<experiment>/traces/
        // <id>/artifacts`, as MLflow's archival job writes it.
        Some("ARCHIVE_REPO") => {
            let archive = tag(ARCHIVE_LOCATION)
                .and_then(parse_location)
                .ok_or_else(|| refused("mlflow.trace.archiveLocation"))?;
            let mut tail = vec![exp_id];
            tail.extend(own_tail);
            if archive.segments.ends_with(&tail) {
                Ok(())
            } else {
                Err(refused("mlflow.trace.archiveLocation"))
            }
        }
        Some(_) => Err(refused("mlflow.trace.spansLocation")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(tags: &[(&str, &str)]) -> Vec<u8> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
            .collect();
        serde_json::json!({"trace_info": {"request_id": "tr-1", "experiment_id": "4", "tags": tags}})
            .to_string()
            .into_bytes()
    }
    const EXP: &[u8] =
        br#"{"experiment":{"experiment_id":"4","artifact_location":"mlflow-artifacts:/4"}}"#;

    #[test]
    fn only_the_canonical_location_is_served() {
        for ok in [
            "mlflow-artifacts:/4/traces/tr-1/artifacts",
            "mlflow-artifacts:///4/traces/tr-1/artifacts",
            "MLFLOW-ARTIFACTS:/4//traces/tr-1/artifacts/",
        ] {
            let body = info(&[(ARTIFACT_LOCATION, ok)]);
            assert!(check_trace_location("tr-1", &body, EXP).is_ok(), "{ok}");
        }
        for bad in [
            "mlflow-artifacts:/5/traces/tr-9/artifacts",
            "mlflow-artifacts:/4/traces/tr-1/artifacts/../../../5/traces/tr-9/artifacts",
            "mlflow-artifacts:/4/traces/tr-1/artifacts/x",
            "mlflow-artifacts:/4/traces/tr-1/%2e%2e",
            "mlflow-artifacts://evil/4/traces/tr-1/artifacts",
            "file:///4/traces/tr-1/artifacts",
            "file:///etc",
            "mlflow-artifacts:/4/traces/tr-1/artifacts?x",
            "",
        ] {
            let body = info(&[(ARTIFACT_LOCATION, bad)]);
            let e = check_trace_location("tr-1", &body, EXP).unwrap_err();
            assert_eq!(e.reason, Reason::LocationRefused, "{bad}");
            assert_eq!(e.status(), 403);
        }
        let e = check_trace_location("tr-1", &info(&[]), EXP).unwrap_err();
        assert_eq!(e.reason, Reason::LocationRefused, "missing tag");
    }

    #[test]
    fn archived_spans_must_be_the_traces_own() {
        let own = (
            ARTIFACT_LOCATION,
            "mlflow-artifacts:/4/traces/tr-1/artifacts",
        );
        let arch = |loc| {
            info(&[
                own,
                (SPANS_LOCATION, "ARCHIVE_REPO"),
                (ARCHIVE_LOCATION, loc),
            ])
        };
        assert!(
            check_trace_location("tr-1", &arch("s3://b/root/4/traces/tr-1/artifacts"), EXP).is_ok()
        );
        for bad in [
            "s3://b/root/5/traces/tr-9/artifacts",
            "file:///etc",
            "s3://b/4/traces/tr-1/artifacts/..",
        ] {
            assert!(
                check_trace_location("tr-1", &arch(bad), EXP).is_err(),
                "{bad}"
            );
        }
        let odd = info(&[own, (SPANS_LOCATION, "SOMEWHERE")]);
        assert!(check_trace_location("tr-1", &odd, EXP).is_err());
        let store = info(&[own, (SPANS_LOCATION, "TRACKING_STORE")]);
        assert!(check_trace_location("tr-1", &store, EXP).is_ok());
    }

    #[test]
    fn answers_about_another_object_are_not_trusted() {
        let body = info(&[(
            ARTIFACT_LOCATION,
            "mlflow-artifacts:/4/traces/tr-1/artifacts",
        )]);
        let e = check_trace_location("tr-2", &body, EXP).unwrap_err();
        assert_eq!(e.reason, Reason::PreflightFailed);
        let other_exp =
            br#"{"experiment":{"experiment_id":"5","artifact_location":"mlflow-artifacts:/4"}}"#;
        let e = check_trace_location("tr-1", &body, other_exp).unwrap_err();
        assert_eq!(e.reason, Reason::PreflightFailed);
        assert_eq!(trace_experiment(&body, "tr-1").unwrap(), "4");
    }
}
