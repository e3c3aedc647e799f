//! Ownership facts read from MLflow's pre-flight answers, and their cached form in the Spin
//! key-value store. A tenant owns an experiment when the experiment carries the tenant tag;
//! runs and logged models belong to their experiment's tenant. These facts cannot change
//! through the gateway (the tag is immutable here), which is what makes caching them safe.

use super::json::parse_strict;
use super::tags::tenant_of;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Something whose owner must be established before a request is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Experiment(String),
    Run(String),
    LoggedModel(String),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Experiment(_) => "experiment",
            Resource::Run(_) => "run",
            Resource::LoggedModel(_) => "logged model",
        }
    }
    pub fn id(&self) -> &str {
        match self {
            Resource::Experiment(i) | Resource::Run(i) | Resource::LoggedModel(i) => i,
        }
    }
    /// KV cache key. Ids are validated before they get here (digits / hex / `m-` prefixed).
    pub fn cache_key(&self) -> String {
        match self {
            Resource::Experiment(i) => format!("own:v1:exp:{i}"),
            Resource::Run(i) => format!("own:v1:run:{i}"),
            Resource::LoggedModel(i) => format!("own:v1:lm:{i}"),
        }
    }
    /// The MLflow pre-flight path (and query) that reveals the owner.
    pub fn preflight_path(&self) -> String {
        match self {
            Resource::Experiment(i) => format!("/api/2.0/mlflow/experiments/get?experiment_id={i}"),
            Resource::Run(i) => format!("/api/2.0/mlflow/runs/get?run_id={i}"),
            Resource::LoggedModel(i) => format!("/api/2.0/mlflow/logged-models/{i}"),
        }
    }
}

/// What a pre-flight established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// An experiment and the tenant tag it carries (`None`: untagged, belongs to nobody).
    ExperimentTenant(Option<String>),
    /// A run or logged model and the experiment it lives in.
    InExperiment(String),
}

/// A cached fact with the time it was learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFact {
    pub fact: Fact,
    pub at: u64,
}

impl CachedFact {
    pub fn decode(bytes: &[u8]) -> Option<CachedFact> {
        serde_json::from_slice(bytes).ok()
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn fresh(&self, now: u64, ttl: u64) -> bool {
        now.saturating_sub(self.at) < ttl
    }
}

/// Reads the fact from a successful pre-flight body; `None` if the body is not what MLflow
/// returns for that resource (the caller fails closed).
pub fn fact_from_body(resource: &Resource, body: &[u8], tenant_key: &str) -> Option<Fact> {
    let v: Value = parse_strict(body).ok()?;
    match resource {
        Resource::Experiment(id) => {
            let exp = v.get("experiment")?;
            if exp.get("experiment_id")?.as_str()? != id {
                return None;
            }
            Some(Fact::ExperimentTenant(tenant_of(
                exp.get("tags"),
                tenant_key,
            )))
        }
        Resource::Run(id) => {
            let info = v.get("run")?.get("info")?;
            if info.get("run_id")?.as_str()? != id {
                return None;
            }
            Some(Fact::InExperiment(
                info.get("experiment_id")?.as_str()?.to_string(),
            ))
        }
        Resource::LoggedModel(id) => {
            let info = v.get("model")?.get("info")?;
            if info.get("model_id")?.as_str()? != id {
                return None;
            }
            Some(Fact::InExperiment(
                info.get("experiment_id")?.as_str()?.to_string(),
            ))
        }
    }
}

/// Experiment ids are decimal; anything else is refused before a pre-flight is built.
pub fn valid_experiment_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Run ids are hex uuids without dashes; trace/model ids use a small safe charset.
pub fn valid_run_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Logged-model ids look like `m-<hex>`.
pub fn valid_model_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_fact() {
        let body = br#"{"experiment":{"experiment_id":"3","tags":[{"key":"tenant","value":"a"}]}}"#;
        assert_eq!(
            fact_from_body(&Resource::Experiment("3".into()), body, "tenant"),
            Some(Fact::ExperimentTenant(Some("a".into())))
        );
        // An answer about another id is not trusted.
        assert_eq!(
            fact_from_body(&Resource::Experiment("4".into()), body, "tenant"),
            None
        );
        let untagged = br#"{"experiment":{"experiment_id":"0"}}"#;
        assert_eq!(
            fact_from_body(&Resource::Experiment("0".into()), untagged, "tenant"),
            Some(Fact::ExperimentTenant(None))
        );
    }

    #[test]
    fn run_fact() {
        let body = br#"{"run":{"info":{"run_id":"abc","experiment_id":"7"}}}"#;
        assert_eq!(
            fact_from_body(&Resource::Run("abc".into()), body, "tenant"),
            Some(Fact::InExperiment("7".into()))
        );
        assert_eq!(
            fact_from_body(&Resource::Run("abc".into()), b"{}", "tenant"),
            None
        );
    }

    #[test]
    fn cache_roundtrip_and_ttl() {
        let c = CachedFact {
            fact: Fact::InExperiment("1".into()),
            at: 100,
        };
        assert_eq!(CachedFact::decode(&c.encode()), Some(c.clone()));
        assert!(c.fresh(399, 300));
        assert!(!c.fresh(400, 300));
        assert!(!c.fresh(100, 0));
    }

    #[test]
    fn id_charsets() {
        assert!(valid_experiment_id("12"));
        assert!(!valid_experiment_id("1 OR 1"));
        assert!(!valid_experiment_id(""));
        assert!(valid_run_id("0123abcdef"));
        assert!(!valid_run_id("../x"));
        assert!(valid_model_id("m-0123"));
    }
}
