//! Tags and the reserved tenant tag. The tenant tag is the ownership record, so it is written
//! only by the gateway (on create) and can never be set, changed or deleted through it: keys
//! are compared after Unicode NFKC normalisation and case folding, because some SQL backends
//! compare keys case-insensitively.

use crate::error::{GatewayError, Reason};
use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

/// Whether `key` addresses the reserved tenant tag (`tenant_key`) in any spelling.
pub fn is_reserved(key: &str, tenant_key: &str) -> bool {
    let norm: String = key.nfkc().collect::<String>().trim().to_lowercase();
    norm == tenant_key.to_lowercase()
}

/// Refuses a tag write or delete that addresses the reserved key.
pub fn refuse_reserved(key: &str, tenant_key: &str) -> Result<(), GatewayError> {
    if is_reserved(key, tenant_key) {
        return Err(GatewayError::forbidden(
            Reason::ReservedTag,
            format!("tag `{tenant_key}` is reserved for the gateway and cannot be set or deleted"),
        ));
    }
    Ok(())
}

/// Reads tags given as a list of `{key, value}` objects (MLflow's shape) or as a map.
pub fn parse_tags(v: Option<&Value>) -> Result<Vec<(String, String)>, GatewayError> {
    let bad = || {
        GatewayError::bad_request(
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
            return Err(GatewayError::forbidden(
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
