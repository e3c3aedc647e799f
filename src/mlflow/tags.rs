//! Tags, and the tags no client may write. The tenant tag is the ownership record, so it is
//! written only by the gateway (on create) and can never be set, changed or deleted through it;
//! the grant tags (`<tenant tag>.grant.*`, `mlflow::grants`) only by its grants endpoint.
//! Some MLflow system tags are trusted later as a location or an identity (a trace's
//! `mlflow.artifactLocation` decides where `get-trace-artifact` reads from, a run's
//! `mlflow.user` is the author the UI and filters show), yet MLflow refuses client writes of
//! them only on some routes: [`Tagged::protected`] lists them per object kind and
//! [`guard`] is the one check every tag-writing strategy calls. Keys are compared after Unicode
//! NFKC normalisation and case folding, because some SQL backends compare keys
//! case-insensitively.

use crate::error::{GatewayError, Reason};
use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

/// Whether `key` addresses the reserved tenant tag (`tenant_key`) in any spelling.
pub fn is_reserved(key: &str, tenant_key: &str) -> bool {
    same_key(key, tenant_key)
}

/// `key` and `other` name the same tag on a backend that folds case and Unicode forms.
fn same_key(key: &str, other: &str) -> bool {
    let norm: String = key.nfkc().collect::<String>().trim().to_lowercase();
    norm == other.to_lowercase()
}

/// The kinds of MLflow object that carry tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    Experiment,
    Run,
    /// A run's dataset inputs (`log-inputs` `datasets[].tags`).
    RunInput,
    LoggedModel,
    RegisteredModel,
    ModelVersion,
    Trace,
    Dataset,
    /// An AI gateway endpoint (workspace mode).
    GatewayEndpoint,
}

/// MLflow's `IMMUTABLE_TAGS` (`mlflow/utils/mlflow_tags.py`): the author and the locations of
/// trace data. MLflow's own handlers block only the three archive tags, and only on the trace
/// tag routes; the start and end routes and `mlflow.artifactLocation` are not blocked.
const MLFLOW_SYSTEM_TAGS: &[&str] = &[
    // The author: the UI's "User" column and `tags.mlflow.user` filters trust it.
    "mlflow.user",
    // Where `get-trace-artifact` reads a trace's spans and attachments from.
    "mlflow.artifactLocation",
    // Whether spans are read from the tracking store, the artifact repo or the archive.
    "mlflow.trace.spansLocation",
    // Where archived spans are read from.
    "mlflow.trace.archiveLocation",
    // Set by MLflow's archival job; a forged value stops archival.
    "mlflow.trace.archivalFailure",
];

impl Tagged {
    /// System tags (besides the tenant tag) that no client may set or delete on this kind of
    /// object, because MLflow or its UI later trusts their value as a location or an identity.
    pub fn protected(self) -> &'static [&'static str] {
        match self {
            // A run's author, and (as on traces) the location tags MLflow trusts on the objects
            // it stores artifacts for.
            Tagged::Run | Tagged::Trace => MLFLOW_SYSTEM_TAGS,
            // The tenant tag is the only tag these kinds' ownership or reads depend on.
            Tagged::Experiment
            | Tagged::RunInput
            | Tagged::LoggedModel
            | Tagged::RegisteredModel
            | Tagged::ModelVersion
            | Tagged::Dataset
            | Tagged::GatewayEndpoint => &[],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tagged::Experiment => "experiment",
            Tagged::Run => "run",
            Tagged::RunInput => "dataset input",
            Tagged::LoggedModel => "logged model",
            Tagged::RegisteredModel => "registered model",
            Tagged::ModelVersion => "model version",
            Tagged::Trace => "trace",
            Tagged::Dataset => "dataset",
            Tagged::GatewayEndpoint => "AI gateway endpoint",
        }
    }
}

/// THE check for a client's tag write or delete on an object of `kind`: the tenant tag and the
/// kind's protected system tags are refused, in any spelling.
pub fn guard(kind: Tagged, key: &str, tenant_key: &str) -> Result<(), GatewayError> {
    refuse_reserved(key, tenant_key)?;
    if let Some(p) = kind.protected().iter().find(|p| same_key(key, p)) {
        return Err(GatewayError::new(
            Reason::ReservedTag,
            format!(
                "tag `{p}` is written only by MLflow on a {}: it cannot be set or deleted through the gateway",
                kind.as_str()
            ),
        ));
    }
    Ok(())
}

/// [`guard`] for every key of a tag list.
pub fn guard_all(
    kind: Tagged,
    tags: &[(String, String)],
    tenant_key: &str,
) -> Result<(), GatewayError> {
    tags.iter()
        .try_for_each(|(k, _)| guard(kind, k, tenant_key))
}

/// Whether `key` addresses one of the gateway's grant tags (`mlflow::grants`), in any spelling.
pub fn is_grant(key: &str, tenant_key: &str) -> bool {
    let norm: String = key.nfkc().collect::<String>().trim().to_lowercase();
    norm.starts_with(&super::grants::prefix(&tenant_key.to_lowercase()))
}

/// Refuses a tag write or delete that addresses the reserved key or a grant.
fn refuse_reserved(key: &str, tenant_key: &str) -> Result<(), GatewayError> {
    if is_grant(key, tenant_key) {
        return Err(GatewayError::new(
            Reason::ReservedTag,
            format!("tags `{}*` hold grants: they are changed only through the gateway's grants endpoint (/_gateway/v1/grants)", super::grants::prefix(tenant_key)),
        ));
    }
    if is_reserved(key, tenant_key) {
        return Err(GatewayError::new(
            Reason::ReservedTag,
            format!("tag `{tenant_key}` is reserved for the gateway and cannot be set or deleted"),
        ));
    }
    Ok(())
}

/// Reads tags given as a list of `{key, value}` objects (MLflow's shape) or as a map.
pub fn parse_tags(v: Option<&Value>) -> Result<Vec<(String, String)>, GatewayError> {
    let bad = || {
        GatewayError::new(
            Reason::InvalidField,
            "`tags` must be a list of {key, value} objects or a map of strings",
        )
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                let o = t.as_object().ok_or_else(bad)?;
                let key = o.get("key").and_then(Value::as_str).ok_or_else(bad)?;
                let value = match o.get("value") {
                    None | Some(Value::Null) => "",
                    Some(Value::String(s)) => s.as_str(),
                    Some(_) => return Err(bad()),
                };
                Ok((key.to_string(), value.to_string()))
            })
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(bad)?.to_string())))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// The keys of a `tags` field in any shape MLflow accepts: a list of `{key, value}`, a map, or
/// (evaluation datasets) a string holding a JSON object, which MLflow decodes with
/// `json.loads`. Values are not looked at; a string that is not a JSON object is refused.
pub fn keys_of(v: Option<&Value>) -> Result<Vec<String>, GatewayError> {
    match v {
        Some(Value::String(s)) => match super::json::parse_strict(s.as_bytes()) {
            Ok(Value::Object(m)) => Ok(m.keys().cloned().collect()),
            _ => Err(GatewayError::new(
                Reason::InvalidField,
                "`tags` given as a string must hold a JSON object",
            )),
        },
        Some(Value::Object(m)) => Ok(m.keys().cloned().collect()),
        other => Ok(parse_tags(other)?.into_iter().map(|(k, _)| k).collect()),
    }
}

/// Adds the tenant tag to `tags`: an identical tenant tag is accepted, any other spelling or
/// value of the reserved key is a conflict (403).
pub fn with_tenant(
    tags: Vec<(String, String)>,
    tenant_key: &str,
    tenant: &str,
) -> Result<Vec<(String, String)>, GatewayError> {
    let mut out = Vec::with_capacity(tags.len() + 1);
    for (k, v) in tags {
        if is_reserved(&k, tenant_key) {
            if k == tenant_key && v == tenant {
                continue;
            }
            return Err(GatewayError::new(
                Reason::TagConflict,
                format!("tag `{tenant_key}` conflicts with the caller's tenant"),
            ));
        }
        out.push((k, v));
    }
    out.push((tenant_key.to_string(), tenant.to_string()));
    Ok(out)
}

/// Serialises tags in MLflow's list shape.
pub fn to_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// Finds the value of the tenant tag in an MLflow `tags` list of a response (exact key).
pub fn tenant_of(tags: Option<&Value>, tenant_key: &str) -> Option<String> {
    tags?.as_array()?.iter().find_map(|t| {
        (t.get("key")?.as_str()? == tenant_key)
            .then(|| t.get("value")?.as_str().map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_key_any_spelling() {
        for k in ["tenant", "TENANT", " Tenant ", "ｔｅｎａｎｔ"] {
            assert!(is_reserved(k, "tenant"), "{k}");
        }
        assert!(!is_reserved("tenant2", "tenant"));
    }

    #[test]
    fn list_and_map_shapes() {
        let l = parse_tags(Some(&json!([{"key": "a", "value": "1"}, {"key": "b"}]))).unwrap();
        assert_eq!(l, vec![("a".into(), "1".into()), ("b".into(), "".into())]);
        let m = parse_tags(Some(&json!({"a": "1"}))).unwrap();
        assert_eq!(m, vec![("a".into(), "1".into())]);
        assert!(parse_tags(Some(&json!("a=1"))).is_err());
        assert!(parse_tags(Some(&json!({"a": 1}))).is_err());
    }

    #[test]
    fn inject_merges_and_detects_conflicts() {
        let t = with_tenant(vec![("a".into(), "1".into())], "tenant", "team-a").unwrap();
        assert_eq!(
            to_json(&t),
            json!([{"key":"a","value":"1"},{"key":"tenant","value":"team-a"}])
        );
        let same =
            with_tenant(vec![("tenant".into(), "team-a".into())], "tenant", "team-a").unwrap();
        assert_eq!(same.len(), 1);
        let e =
            with_tenant(vec![("tenant".into(), "team-b".into())], "tenant", "team-a").unwrap_err();
        assert_eq!(e.reason, Reason::TagConflict);
        let e =
            with_tenant(vec![("Tenant".into(), "team-a".into())], "tenant", "team-a").unwrap_err();
        assert_eq!(e.reason, Reason::TagConflict);
    }

    #[test]
    fn tenant_of_reads_exact_key() {
        let tags = json!([{"key": "x", "value": "1"}, {"key": "tenant", "value": "a"}]);
        assert_eq!(tenant_of(Some(&tags), "tenant"), Some("a".into()));
        assert_eq!(tenant_of(Some(&tags), "other"), None);
        assert_eq!(tenant_of(None, "tenant"), None);
    }
}
