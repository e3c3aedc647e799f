//! Query strings, decoded as Werkzeug decodes them (`+` is a space) and re-encoded from the
//! parsed pairs before forwarding, so MLflow reads exactly what the gateway checked.
//! A repeated parameter is refused unless the route declares it a list: MLflow reads the
//! *first* value of a scalar, a naive checker the last.

use crate::error::{GatewayError, Reason};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str, list_fields: &[&str]) -> Result<Query, GatewayError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if !list_fields.contains(&k.as_ref()) && pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(GatewayError::new(
                    Reason::RepeatedQueryParam,
                    format!("query parameter `{k}` is repeated"),
                ));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Query { pairs })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The value of a scalar parameter (empty values read as absent, as MLflow's
    /// `run_id or run_uuid` does).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Replaces (or adds) a scalar parameter.
    pub fn set(&mut self, key: &str, value: String) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_string(), value));
    }

    pub fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_scalar_refused_lists_allowed() {
        let e = Query::parse("run_id=a&run_id=b", &[]).unwrap_err();
        assert_eq!(e.reason, Reason::RepeatedQueryParam);
        let q = Query::parse("run_ids=a&run_ids=b&metric_key=m", &["run_ids"]).unwrap();
        assert_eq!(q.get_all("run_ids"), vec!["a", "b"]);
    }

    #[test]
    fn plus_is_space_and_reencoding_roundtrips() {
        let mut q = Query::parse("filter=a+b%27c", &[]).unwrap();
        assert_eq!(q.get("filter"), Some("a b'c"));
        q.set("filter", "tags.`t` = 'x' AND a".into());
        let again = Query::parse(&q.encode(), &[]).unwrap();
        assert_eq!(again.get("filter"), Some("tags.`t` = 'x' AND a"));
    }
}
