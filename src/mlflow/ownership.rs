//! Ownership facts read from MLflow's pre-flight answers, and their cached form in the Spin
//! key-value store. A tenant owns an experiment or a registered model (prompts included) when
//! it carries the tenant tag; runs, logged models and traces belong to their experiment's
//! tenant, and so do the GenAI objects kept per experiment (label schemas, review queues,
//! issues). An evaluation dataset can be linked to several experiments: it is a tenant's when
//! every one of them is. Experiment, run, model, trace and GenAI-object facts cannot change
//! through the gateway (the tag is immutable here, ids are never reused, and none of these
//! objects can move to another experiment), which is what makes caching them safe;
//! registered-model names can be deleted and taken again and a dataset's experiments can be
//! changed, so those two are never cached.

use super::grants::{grants_of, Grant};
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
    /// A registered model or prompt, by name.
    RegisteredModel(String),
    /// A trace (v3 `tr-…` id or v2 request id).
    Trace(String),
    /// An evaluation dataset (`d-…`), linked to one or more experiments.
    Dataset(String),
    /// A label schema (`ls-…`) of one experiment.
    LabelSchema(String),
    /// A review queue (`rq-…`) of one experiment.
    ReviewQueue(String),
    /// An issue (`iss-…`) of one experiment.
    Issue(String),
}

/// Where a pre-flight answer names a resource's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerIn {
    /// The object carries the tenant tag itself: `{<object>: {<id_field>: id, "tags": …}}`.
    OwnTag {
        object: &'static str,
        id_field: &'static str,
    },
    /// The object lives in one experiment: at `pointer`, `{<id_field>: id, "experiment_id": …}`.
    OneExperiment {
        pointer: &'static str,
        id_field: &'static str,
    },
    /// The object is linked to experiments: `{"experiment_ids": [...]}` (an evaluation dataset;
    /// the answer does not echo the id, and an absent list means none).
    Experiments,
}

/// Everything the gateway knows about one kind of resource, declared once per kind
/// (`Resource::spec`, an exhaustive match): the compiler asks a new kind for each.
#[derive(Debug)]
pub struct ResourceSpec {
    /// What messages call it.
    pub name: &'static str,
    /// The key-value cache key's kind (`own:v2:<kind>:<id>`), or `None` when the fact must not
    /// be cached: a registered-model name can be deleted and created again by another tenant,
    /// and a dataset's experiments can be added and removed.
    pub cache: Option<&'static str>,
    /// The MLflow pre-flight path (and query) that reveals the owner, for an id.
    pub preflight: fn(&str) -> String,
    /// Where the pre-flight's answer names the owner.
    pub owner: OwnerIn,
}

const EXPERIMENT: ResourceSpec = ResourceSpec {
    name: "experiment",
    cache: Some("exp"),
    preflight: |i| format!("/api/2.0/mlflow/experiments/get?experiment_id={i}"),
    owner: OwnerIn::OwnTag {
        object: "experiment",
        id_field: "experiment_id",
    },
};
const RUN: ResourceSpec = ResourceSpec {
    name: "run",
    cache: Some("run"),
    preflight: |i| format!("/api/2.0/mlflow/runs/get?run_id={i}"),
    owner: OwnerIn::OneExperiment {
        pointer: "/run/info",
        id_field: "run_id",
    },
};
const LOGGED_MODEL: ResourceSpec = ResourceSpec {
    name: "logged model",
    cache: Some("lm"),
    preflight: |i| format!("/api/2.0/mlflow/logged-models/{i}"),
    owner: OwnerIn::OneExperiment {
        pointer: "/model/info",
        id_field: "model_id",
    },
};
const REGISTERED_MODEL: ResourceSpec = ResourceSpec {
    name: "registered model",
    cache: None,
    preflight: |n| {
        let name: String = form_urlencoded::byte_serialize(n.as_bytes()).collect();
        format!("/api/2.0/mlflow/registered-models/get?name={name}")
    },
    owner: OwnerIn::OwnTag {
        object: "registered_model",
        id_field: "name",
    },
};
const TRACE: ResourceSpec = ResourceSpec {
    name: "trace",
    cache: Some("tr"),
    // The v2 info route answers with the experiment id and never loads spans.
    preflight: |i| format!("/api/2.0/mlflow/traces/{i}/info"),
    owner: OwnerIn::OneExperiment {
        pointer: "/trace_info",
        id_field: "request_id",
    },
};
const DATASET: ResourceSpec = ResourceSpec {
    name: "dataset",
    cache: None,
    // An unknown dataset answers 200 with no ids (read as "missing").
    preflight: |i| format!("/api/3.0/mlflow/datasets/{i}/experiment-ids"),
    owner: OwnerIn::Experiments,
};
const LABEL_SCHEMA: ResourceSpec = ResourceSpec {
    name: "label schema",
    cache: Some("ls"),
    preflight: |i| format!("/api/3.0/mlflow/label-schemas/get?schema_id={i}"),
    owner: OwnerIn::OneExperiment {
        pointer: "/label_schema",
        id_field: "schema_id",
    },
};
const REVIEW_QUEUE: ResourceSpec = ResourceSpec {
    name: "review queue",
    cache: Some("rq"),
    preflight: |i| format!("/api/3.0/mlflow/review-queues/get?queue_id={i}"),
    owner: OwnerIn::OneExperiment {
        pointer: "/review_queue",
        id_field: "queue_id",
    },
};
const ISSUE: ResourceSpec = ResourceSpec {
    name: "issue",
    cache: Some("iss"),
    preflight: |i| format!("/api/3.0/mlflow/issues/{i}"),
    owner: OwnerIn::OneExperiment {
        pointer: "/issue",
        id_field: "issue_id",
    },
};

impl Resource {
    /// The resource's kind and its id: the one match over the kinds.
    pub fn spec(&self) -> (&'static ResourceSpec, &str) {
        match self {
            Resource::Experiment(i) => (&EXPERIMENT, i),
            Resource::Run(i) => (&RUN, i),
            Resource::LoggedModel(i) => (&LOGGED_MODEL, i),
            Resource::RegisteredModel(n) => (&REGISTERED_MODEL, n),
            Resource::Trace(i) => (&TRACE, i),
            Resource::Dataset(i) => (&DATASET, i),
            Resource::LabelSchema(i) => (&LABEL_SCHEMA, i),
            Resource::ReviewQueue(i) => (&REVIEW_QUEUE, i),
            Resource::Issue(i) => (&ISSUE, i),
        }
    }
    pub fn kind(&self) -> &'static str {
        self.spec().0.name
    }
    pub fn id(&self) -> &str {
        self.spec().1
    }
    /// KV cache key, or `None` when the fact must not be cached (`ResourceSpec::cache`). Ids
    /// are validated before they get here (digits / hex / `m-` / `tr-` / … ).
    pub fn cache_key(&self) -> Option<String> {
        let (spec, id) = self.spec();
        spec.cache.map(|kind| format!("own:v2:{kind}:{id}"))
    }
    /// The MLflow pre-flight path (and query) that reveals the owner.
    pub fn preflight_path(&self) -> String {
        let (spec, id) = self.spec();
        (spec.preflight)(id)
    }
    /// Whether the resource carries its own tenant tag (rather than living in an experiment).
    pub fn tagged_itself(&self) -> bool {
        matches!(self.spec().0.owner, OwnerIn::OwnTag { .. })
    }
}

/// An alias of a registered model and the version it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    #[serde(rename = "a")]
    pub alias: String,
    #[serde(rename = "v")]
    pub version: String,
}

/// What a pre-flight established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// An experiment or registered model: the tenant tag it carries (`None`: untagged, belongs
    /// to nobody), its grants (`mlflow::grants`), and a registered model's aliases.
    Tagged {
        #[serde(rename = "t")]
        tenant: Option<String>,
        #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
        grants: Vec<Grant>,
        #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
        aliases: Vec<Alias>,
    },
    /// A run, logged model, trace or GenAI object and the experiment it lives in.
    InExperiment(String),
    /// An evaluation dataset and the experiments it is linked to (empty: unknown dataset).
    InExperiments(Vec<String>),
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
    let (spec, id) = resource.spec();
    match spec.owner {
        OwnerIn::OwnTag { object, id_field } => {
            let obj = v.get(object)?;
            if obj.get(id_field)?.as_str()? != id {
                return None;
            }
            let aliases = match obj.get("aliases") {
                None => Vec::new(),
                Some(list) => list
                    .as_array()?
                    .iter()
                    .map(|a| {
                        Some(Alias {
                            alias: a.get("alias")?.as_str()?.to_string(),
                            version: a.get("version")?.as_str()?.to_string(),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?,
            };
            Some(Fact::Tagged {
                tenant: tenant_of(obj.get("tags"), tenant_key),
                grants: grants_of(obj.get("tags"), tenant_key),
                aliases,
            })
        }
        OwnerIn::OneExperiment { pointer, id_field } => {
            in_experiment(v.pointer(pointer)?, id_field, id)
        }
        OwnerIn::Experiments => {
            let ids = match v.get("experiment_ids") {
                None => Vec::new(),
                Some(list) => list
                    .as_array()?
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .filter(|e| valid_experiment_id(e))
                            .map(str::to_string)
                    })
                    .collect::<Option<Vec<_>>>()?,
            };
            Some(Fact::InExperiments(ids))
        }
    }
}

/// `{<id_field>: <id>, "experiment_id": …}`: the object's experiment, if the answer is about `id`.
fn in_experiment(obj: &Value, id_field: &str, id: &str) -> Option<Fact> {
    if obj.get(id_field)?.as_str()? != id {
        return None;
    }
    let exp = obj.get("experiment_id")?.as_str()?;
    valid_experiment_id(exp).then(|| Fact::InExperiment(exp.to_string()))
}

/// Registered-model (and prompt) names: MLflow accepts almost anything; the gateway refuses
/// empty, over-long and control-character names before building a pre-flight.
pub fn valid_model_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 512 && !s.chars().any(char::is_control)
}

/// Trace ids: `tr-<hex>` (v3) or a bare hex request id (v2).
pub fn valid_trace_id(s: &str) -> bool {
    valid_model_id(s)
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

    fn tagged(tenant: Option<&str>) -> Fact {
        Fact::Tagged {
            tenant: tenant.map(str::to_string),
            grants: Vec::new(),
            aliases: Vec::new(),
        }
    }

    #[test]
    fn registered_model_fact_keeps_grants_and_aliases() {
        let g = crate::mlflow::grants::Grant {
            subject: "group:ops".into(),
            level: crate::mlflow::grants::GrantLevel::Deny,
        };
        let key = crate::mlflow::grants::tag_key("tenant", &g.subject);
        let body = serde_json::json!({"registered_model": {"name": "m", "tags": [
            {"key": "tenant", "value": "a"},
            {"key": key, "value": crate::mlflow::grants::tag_value(&g)}],
            "aliases": [{"alias": "champion", "version": "3"}]}});
        let f = fact_from_body(
            &Resource::RegisteredModel("m".into()),
            body.to_string().as_bytes(),
            "tenant",
        );
        assert_eq!(
            f,
            Some(Fact::Tagged {
                tenant: Some("a".into()),
                grants: vec![g],
                aliases: vec![Alias {
                    alias: "champion".into(),
                    version: "3".into()
                }],
            })
        );
    }

    #[test]
    fn experiment_fact() {
        let body = br#"{"experiment":{"experiment_id":"3","tags":[{"key":"tenant","value":"a"}]}}"#;
        assert_eq!(
            fact_from_body(&Resource::Experiment("3".into()), body, "tenant"),
            Some(tagged(Some("a")))
        );
        // An answer about another id is not trusted.
        assert_eq!(
            fact_from_body(&Resource::Experiment("4".into()), body, "tenant"),
            None
        );
        let untagged = br#"{"experiment":{"experiment_id":"0"}}"#;
        assert_eq!(
            fact_from_body(&Resource::Experiment("0".into()), untagged, "tenant"),
            Some(tagged(None))
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
    fn registered_model_and_trace_facts() {
        let rm = br#"{"registered_model":{"name":"m 1","tags":[{"key":"tenant","value":"a"}]}}"#;
        let res = Resource::RegisteredModel("m 1".into());
        assert_eq!(fact_from_body(&res, rm, "tenant"), Some(tagged(Some("a"))));
        assert_eq!(
            fact_from_body(&Resource::RegisteredModel("m".into()), rm, "tenant"),
            None
        );
        assert_eq!(res.cache_key(), None, "names are reusable: never cached");
        assert_eq!(
            res.preflight_path(),
            "/api/2.0/mlflow/registered-models/get?name=m+1"
        );
        let tr = br#"{"trace_info":{"request_id":"tr-1","experiment_id":"4"}}"#;
        assert_eq!(
            fact_from_body(&Resource::Trace("tr-1".into()), tr, "tenant"),
            Some(Fact::InExperiment("4".into()))
        );
        assert_eq!(
            fact_from_body(&Resource::Trace("tr-2".into()), tr, "tenant"),
            None
        );
    }

    #[test]
    fn genai_object_and_dataset_facts() {
        let ls = br#"{"label_schema":{"schema_id":"ls-1","experiment_id":"2"}}"#;
        let res = Resource::LabelSchema("ls-1".into());
        assert_eq!(
            fact_from_body(&res, ls, "tenant"),
            Some(Fact::InExperiment("2".into()))
        );
        assert_eq!(res.cache_key().as_deref(), Some("own:v2:ls:ls-1"));
        assert_eq!(
            fact_from_body(&Resource::LabelSchema("ls-2".into()), ls, "tenant"),
            None
        );
        let rq = br#"{"review_queue":{"queue_id":"rq-1","experiment_id":"x"}}"#;
        assert_eq!(
            fact_from_body(&Resource::ReviewQueue("rq-1".into()), rq, "tenant"),
            None,
            "a non-numeric experiment id is not trusted"
        );
        let iss = br#"{"issue":{"issue_id":"iss-1","experiment_id":"3"}}"#;
        assert_eq!(
            fact_from_body(&Resource::Issue("iss-1".into()), iss, "tenant"),
            Some(Fact::InExperiment("3".into()))
        );
        let ds = Resource::Dataset("d-1".into());
        assert_eq!(
            fact_from_body(&ds, br#"{"experiment_ids":["1","4"]}"#, "tenant"),
            Some(Fact::InExperiments(vec!["1".into(), "4".into()]))
        );
        assert_eq!(
            fact_from_body(&ds, b"{}", "tenant"),
            Some(Fact::InExperiments(vec![])),
            "MLflow answers an unknown dataset with an empty object"
        );
        assert_eq!(
            fact_from_body(&ds, br#"{"experiment_ids":["1","../2"]}"#, "tenant"),
            None
        );
        assert_eq!(ds.cache_key(), None, "links can change: never cached");
        assert_eq!(
            ds.preflight_path(),
            "/api/3.0/mlflow/datasets/d-1/experiment-ids"
        );
    }

    /// Facts cached before grants (`own:v1:`, no grants in them) are never read as facts
    /// that have none: their keys are not read any more, and their shape does not decode.
    #[test]
    fn facts_without_grants_are_not_read() {
        for old in [
            &br#"{"fact":{"ExperimentTenant":"a"},"at":1}"#[..],
            br#"{"fact":{"TenantTag":"a"},"at":1}"#,
        ] {
            assert_eq!(CachedFact::decode(old), None);
        }
        assert!(Resource::Experiment("1".into())
            .cache_key()
            .is_some_and(|k| k.starts_with("own:v2:")));
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
