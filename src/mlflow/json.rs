//! Strict JSON: duplicate keys are refused (MLflow keeps the last, a struct-based reader keeps
//! the first or errors: any disagreement is a bypass), bodies must be objects (MLflow decodes
//! a JSON *string* body a second time), and lowerCamelCase aliases (`experimentIds`, which
//! protobuf's ParseDict accepts) are refused so the gateway never checks one spelling while
//! MLflow acts on the other.

use crate::error::{GatewayError, Reason};
use serde_json::{Map, Value};

pub use crate::vocab::strict_json::{parse_strict, DUPLICATE};

/// Parses a request body into a JSON object: size cap, strict JSON (no duplicate keys), and a
/// top-level object (MLflow decodes a JSON *string* body a second time). An empty body is `{}`.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    if body.len() > super::MAX_JSON_BODY_BYTES {
        return Err(GatewayError::new(
            Reason::BodyTooLarge,
            "request body is larger than the gateway accepts",
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let v = parse_strict(body).map_err(|e| {
        if e.starts_with(DUPLICATE) {
            GatewayError::new(
                Reason::DuplicateKey,
                "request body has a duplicate JSON key",
            )
        } else {
            GatewayError::new(Reason::BadJson, "request body is not valid JSON")
        }
    })?;
    match v {
        Value::Object(map) => Ok(map),
        _ => Err(GatewayError::new(
            Reason::NonObjectBody,
            "request body must be a JSON object",
        )),
    }
}

/// Fields the gateway reads to decide (ids, scopes, names, sources, locations, tags, filters,
/// the fields it stamps). MLflow's handlers swallow a protobuf parse error and act on the
/// message filled *so far* (`_get_request_message`: `ParseDict` walks the JSON keys in body
/// order), so one mistyped field written before `experiment_id` would leave the id empty, and
/// an empty scope means "everything" to some handlers. Forwarded bodies therefore list these
/// fields first at every depth (`serialize_judged_first`): whatever MLflow fails to parse comes
/// after everything the gateway judged.
pub const JUDGED_FIELDS: &[&str] = &[
    "experiment_id",
    "experiment_ids",
    "run_id",
    "run_uuid",
    "trace_id",
    "request_id",
    "request_ids",
    "trace_ids",
    "model_id",
    "models",
    "metrics",
    "name",
    "new_name",
    "source",
    "source_run_id",
    "dataset_id",
    "schema_id",
    "queue_id",
    "issue_id",
    "scorer_ids",
    "prompt_versions",
    "key",
    "tags",
    "datasets",
    "filter",
    "locations",
    "trace",
    "trace_info",
    "trace_location",
    "type",
    "mlflow_experiment",
    "assessment",
    "artifact_location",
    "path",
    "status",
    "user_id",
    "created_by",
    "completed_by",
];

/// Serialises a JSON object with [`JUDGED_FIELDS`] first (in that order) at every depth, then
/// the other keys in their usual order. The values are unchanged.
pub fn serialize_judged_first(map: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_object(map, &mut out);
    out
}

/// Where a key stands in [`JUDGED_FIELDS`] (`None`: not judged). A `match` on the literal
/// names, which the compiler turns into a comparison by length and bytes: no table scan per key.
fn judged_rank(k: &str) -> Option<usize> {
    Some(match k {
        "experiment_id" => 0,
        "experiment_ids" => 1,
        "run_id" => 2,
        "run_uuid" => 3,
        "trace_id" => 4,
        "request_id" => 5,
        "request_ids" => 6,
        "trace_ids" => 7,
        "model_id" => 8,
        "models" => 9,
        "metrics" => 10,
        "name" => 11,
        "new_name" => 12,
        "source" => 13,
        "source_run_id" => 14,
        "dataset_id" => 15,
        "schema_id" => 16,
        "queue_id" => 17,
        "issue_id" => 18,
        "scorer_ids" => 19,
        "prompt_versions" => 20,
        "key" => 21,
        "tags" => 22,
        "datasets" => 23,
        "filter" => 24,
        "locations" => 25,
        "trace" => 26,
        "trace_info" => 27,
        "trace_location" => 28,
        "type" => 29,
        "mlflow_experiment" => 30,
        "assessment" => 31,
        "artifact_location" => 32,
        "path" => 33,
        "status" => 34,
        "user_id" => 35,
        "created_by" => 36,
        "completed_by" => 37,
        _ => return None,
    })
}

fn write_object(m: &Map<String, Value>, out: &mut Vec<u8>) {
    // Judged keys by rank, then the others in the map's order (stable sort).
    let mut members: Vec<(usize, &String, &Value)> = m
        .iter()
        .map(|(k, v)| (judged_rank(k).unwrap_or(usize::MAX), k, v))
        .collect();
    members.sort_by_key(|(rank, _, _)| *rank);
    out.push(b'{');
    for (i, (_, k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(k, out);
        out.push(b':');
        write_judged_first(v, out);
    }
    out.push(b'}');
}

fn write_judged_first(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => write_object(m, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_judged_first(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

/// Writes a key or a scalar straight into `out`, as serde_json prints it.
fn write_json<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// `parse_object`, plus the camelCase rule for MLflow's protobuf-backed routes.
/// `map_fields` names object-valued fields whose keys are user data (e.g. a tags map), which
/// are exempt from the camelCase rule: a dotted path from the top (`tags`,
/// `trace.trace_info.trace_metadata`); list elements do not add a path segment.
pub fn parse_object_body(
    body: &[u8],
    map_fields: &[&str],
) -> Result<Map<String, Value>, GatewayError> {
    let map = parse_object(body)?;
    check_object(&map, &mut String::new(), map_fields)?;
    Ok(map)
}

fn check_key(k: &str) -> Result<(), GatewayError> {
    if k.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(GatewayError::new(
            Reason::CamelCaseAlias,
            format!(
                "field `{k}` is not a snake_case MLflow field name; camelCase aliases are refused"
            ),
        ));
    }
    Ok(())
}

/// Checks every key of `m` (at the dotted path `at`, kept in one buffer: no allocation per key).
fn check_object(
    m: &Map<String, Value>,
    at: &mut String,
    exempt: &[&str],
) -> Result<(), GatewayError> {
    for (k, v) in m {
        check_key(k)?;
        if !matches!(v, Value::Object(_) | Value::Array(_)) {
            continue;
        }
        let len = at.len();
        if len > 0 {
            at.push('.');
        }
        at.push_str(k);
        if !exempt.contains(&at.as_str()) {
            check_nested(v, at, exempt)?;
        }
        at.truncate(len);
    }
    Ok(())
}

fn check_nested(v: &Value, at: &mut String, exempt: &[&str]) -> Result<(), GatewayError> {
    match v {
        Value::Object(m) => check_object(m, at, exempt),
        Value::Array(a) => a.iter().try_for_each(|i| check_nested(i, at, exempt)),
        _ => Ok(()),
    }
}

/// Reads an optional string field; any other JSON type is refused.
pub fn opt_str<'a>(
    m: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, GatewayError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(GatewayError::new(
            Reason::InvalidField,
            format!("field `{field}` must be a string"),
        )),
    }
}

/// Reads an optional list of strings.
pub fn opt_str_list(m: &Map<String, Value>, field: &str) -> Result<Vec<String>, GatewayError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    GatewayError::new(
                        Reason::InvalidField,
                        format!("field `{field}` must be a list of strings"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(GatewayError::new(
            Reason::InvalidField,
            format!("field `{field}` must be a list of strings"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn judged_rank_is_the_order_of_judged_fields() {
        for (i, k) in JUDGED_FIELDS.iter().enumerate() {
            assert_eq!(judged_rank(k), Some(i), "{k}");
        }
        assert_eq!(judged_rank("value"), None);
    }

    use super::*;

    /// Fuzzing finding (`fuzz::strict_json_round_trips_what_serde_writes`): without serde_json's
    /// `float_roundtrip` a float was read one ulp off, so a rewritten body (e.g. `runs/create`
    /// with the tenant tag injected) could reach MLflow with a different number than the client
    /// sent.
    #[test]
    fn floats_survive_a_rewrite_exactly() {
        for text in [
            "9.037880192512513e+148",
            "0.30000000000000004",
            "1.7976931348623157e+308",
        ] {
            let v = parse_strict(text.as_bytes()).unwrap();
            assert_eq!(v.to_string(), text);
        }
    }

    #[test]
    fn judged_fields_go_first_at_every_depth() {
        let m = parse_object(
            br#"{"max_results":"x","order_by":[1],"experiment_id":"7","trace":{"zz":1,"trace_info":{"a":[{"q":1,"run_id":"r"}],"trace_location":{}}}}"#,
        )
        .unwrap();
        let out = String::from_utf8(serialize_judged_first(&m)).unwrap();
        assert_eq!(
            out,
            r#"{"experiment_id":"7","trace":{"trace_info":{"trace_location":{},"a":[{"run_id":"r","q":1}]},"zz":1},"max_results":"x","order_by":[1]}"#
        );
        assert_eq!(parse_object(out.as_bytes()).unwrap(), m, "values unchanged");
    }

    #[test]
    fn duplicates_refused_at_any_depth() {
        let e = parse_object_body(br#"{"a":1,"a":2}"#, &[]).unwrap_err();
        assert_eq!(e.reason, Reason::DuplicateKey);
        let e = parse_object_body(br#"{"x":{"k":1,"k":1}}"#, &[]).unwrap_err();
        assert_eq!(e.reason, Reason::DuplicateKey);
    }

    #[test]
    fn non_object_and_double_encoded_refused() {
        for b in [&br#""{\"run_id\":\"x\"}""#[..], b"[1]", b"3", b"null"] {
            let e = parse_object_body(b, &[]).unwrap_err();
            assert_eq!(e.reason, Reason::NonObjectBody);
        }
        assert_eq!(
            parse_object_body(b"{", &[]).unwrap_err().reason,
            Reason::BadJson
        );
        assert_eq!(
            parse_object_body(b"{} x", &[]).unwrap_err().reason,
            Reason::BadJson
        );
    }

    #[test]
    fn camel_case_refused_except_in_map_fields() {
        let e = parse_object_body(br#"{"experimentIds":["1"]}"#, &[]).unwrap_err();
        assert_eq!(e.reason, Reason::CamelCaseAlias);
        let e = parse_object_body(br#"{"trace":{"traceInfo":{}}}"#, &[]).unwrap_err();
        assert_eq!(e.reason, Reason::CamelCaseAlias);
        assert!(parse_object_body(br#"{"tags":{"MyKey":"v"}}"#, &["tags"]).is_ok());
        let nested = br#"{"trace":{"trace_info":{"trace_metadata":{"mlflow.traceInputs":"x"}}}}"#;
        assert!(parse_object_body(nested, &["trace.trace_info.trace_metadata"]).is_ok());
        let e = parse_object_body(nested, &["trace_metadata"]).unwrap_err();
        assert_eq!(e.reason, Reason::CamelCaseAlias);
        let listed = br#"{"a":[{"meta":{"K":"v"}}]}"#;
        assert!(parse_object_body(listed, &["a.meta"]).is_ok());
    }

    #[test]
    fn empty_body_is_empty_object() {
        assert!(parse_object_body(b"  ", &[]).unwrap().is_empty());
    }
}
