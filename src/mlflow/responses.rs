//! Response checks (defence in depth, `POSTF`): after a scoped search is forwarded, every
//! returned row is re-checked and rows of another tenant are dropped (and reported as a policy
//! fault); single-object answers that reveal a foreign object are replaced by MLflow's own 404.

use super::grants::Reader;
use super::json::parse_strict;
use super::ownership::valid_experiment_id;
use super::tags::tenant_of;
use crate::error::{GatewayError, Reason};
use serde_json::Value;

/// What to check in a successful (200) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFilter {
    /// `experiments/search`: keep the experiments of the caller's tenant it may see (a `DENY`
    /// hides one from a member; a visitor sees only what is shared with it).
    Experiments,
    /// `experiments/get-by-name`: a foreign experiment answers like an absent one.
    ExperimentByName { name: String },
    /// `runs/search`: keep runs of the checked experiments that carry the tenant tag.
    Runs { experiment_ids: Vec<String> },
    /// `logged-models/search`: keep models of the checked experiments.
    LoggedModels { experiment_ids: Vec<String> },
    /// GraphQL `SearchRuns`: keep runs of the checked experiments.
    GraphqlRuns { experiment_ids: Vec<String> },
    /// `registered-models/search`: keep the models (and prompts) of the caller's tenant it may
    /// see, as for experiments.
    RegisteredModels,
    /// `model-versions/search`: keep versions tagged with the caller's tenant whose model the
    /// caller may see (`readable`: the models' names, learned from the answer and resolved by
    /// the pipeline, as for online configs).
    ModelVersions { readable: Vec<String> },
    /// `traces/search` (v3): keep traces located in the checked experiments.
    TracesV3 { experiment_ids: Vec<String> },
    /// `traces` (v2 search): keep traces of the checked experiments.
    TracesV2 { experiment_ids: Vec<String> },
    /// `scorers/online-configs`: the request names scorers by id only, so the experiments are
    /// learned from the answer (`online_config_experiments`), resolved by the pipeline, and only
    /// configs in `owned` experiments are kept. Dropping here is expected, not a fault; an
    /// unfilled `owned` drops everything (fails closed).
    OnlineConfigs { owned: Vec<String> },
    /// `workspaces` list (workspace mode): keep the workspaces the caller may enter
    /// (`allowed`: its tenants', the one it visits, and those where something is shared with
    /// it), and list its tenants' workspaces MLflow does not have yet (`members`: created on
    /// their first request) by name.
    WorkspaceList {
        allowed: Vec<String>,
        members: Vec<String>,
    },
}

/// A checked answer: the (possibly rewritten) body, how many rows of another tenant were
/// dropped (a policy fault: store isolation or the tenant clause should have kept them out),
/// how many rows of the caller's tenant its grants hide (expected), and, when the answer had
/// to be replaced by MLflow's own "absent" answer (404), the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAnswer {
    pub body: Option<Vec<u8>>,
    pub dropped: usize,
    pub hidden: usize,
    /// `Some(reason)` when a foreign object is answered as absent.
    pub replaced: Option<Reason>,
}

const UNCHANGED: CheckedAnswer = CheckedAnswer {
    body: None,
    dropped: 0,
    hidden: 0,
    replaced: None,
};

/// What becomes of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Keep,
    /// Of the caller's tenant, but its grants hide it.
    Hide,
    /// Of another tenant, or outside the checked scope.
    Drop,
}

/// A row of the caller's tenant is kept when the reader sees it, hidden otherwise; any other
/// row is dropped.
fn by_grants(reader: &Reader, tags: Option<&Value>) -> Row {
    if tenant_of(tags, &reader.tenant_key).as_deref() != Some(reader.tenant.as_str()) {
        Row::Drop
    } else if reader.sees_tags(tags) {
        Row::Keep
    } else {
        Row::Hide
    }
}

fn keep_if(ok: bool) -> Row {
    if ok {
        Row::Keep
    } else {
        Row::Drop
    }
}

/// Applies `judge` to the rows at `pointer`: (dropped, hidden).
fn sort_rows(v: &mut Value, pointer: &str, judge: impl Fn(&Value) -> Row) -> (usize, usize) {
    let Some(items) = v.pointer_mut(pointer).and_then(Value::as_array_mut) else {
        return (0, 0);
    };
    let (mut dropped, mut hidden) = (0, 0);
    items.retain(|i| match judge(i) {
        Row::Keep => true,
        Row::Hide => {
            hidden += 1;
            false
        }
        Row::Drop => {
            dropped += 1;
            false
        }
    });
    (dropped, hidden)
}

fn unusable() -> GatewayError {
    GatewayError::new(
        Reason::PreflightFailed,
        "MLflow returned an answer the gateway could not check",
    )
}

pub use crate::vocab::mlflow_errors::{
    experiment_name_not_found, not_found_body, registered_model_not_found,
};

/// An experiment id as MLflow writes it in a row (a string, or a number in scorer answers).
fn experiment_of(item: &Value) -> Option<String> {
    match item.get("experiment_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The experiments named by a `scorers/online-configs` answer, each to be resolved.
pub fn online_config_experiments(body: &[u8]) -> Result<Vec<String>, GatewayError> {
    let v = parse_strict(body).map_err(|_| unusable())?;
    let configs = v
        .get("configs")
        .and_then(Value::as_array)
        .ok_or_else(unusable)?;
    let mut ids = Vec::new();
    for c in configs {
        let id = experiment_of(c)
            .filter(|e| valid_experiment_id(e))
            .ok_or_else(unusable)?;
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The registered models named by a `model-versions/search` answer, each to be resolved.
pub fn version_models(body: &[u8]) -> Result<Vec<String>, GatewayError> {
    let v = parse_strict(body).map_err(|_| unusable())?;
    let mut names = Vec::new();
    if let Some(versions) = v.get("model_versions") {
        for mv in versions.as_array().ok_or_else(unusable)? {
            let name = mv
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| super::ownership::valid_model_name(n))
                .ok_or_else(unusable)?;
            names.push(name.to_string());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn in_scope(item: &Value, pointer: &str, experiment_ids: &[String]) -> bool {
    item.pointer(pointer)
        .and_then(Value::as_str)
        .is_some_and(|e| experiment_ids.iter().any(|x| x == e))
}

/// Applies `filter` to a 200 answer. Non-200 answers pass unchanged (MLflow's own errors).
pub fn check(
    filter: &ResponseFilter,
    status: u16,
    body: &[u8],
    reader: &Reader,
) -> Result<CheckedAnswer, GatewayError> {
    if status != 200 {
        return Ok(UNCHANGED);
    }
    if rows::all_kept(filter, body, reader) == Some(true) {
        return Ok(UNCHANGED);
    }
    full_check(filter, body, reader)
}

/// The full check: the answer parsed strictly, rows of another tenant dropped, the body
/// rewritten when anything was dropped.
fn full_check(
    filter: &ResponseFilter,
    body: &[u8],
    reader: &Reader,
) -> Result<CheckedAnswer, GatewayError> {
    let mut v = parse_strict(body).map_err(|_| unusable())?;
    if !v.is_object() {
        return Err(unusable());
    }
    let own = |tags: Option<&Value>| {
        tenant_of(tags, &reader.tenant_key).as_deref() == Some(reader.tenant.as_str())
    };
    let (dropped, hidden) = match filter {
        ResponseFilter::WorkspaceList { allowed, members } => {
            let (dropped, hidden) = sort_rows(&mut v, "/workspaces", |w| {
                let name = w.get("name").and_then(Value::as_str).unwrap_or_default();
                if allowed.iter().any(|a| a == name) {
                    Row::Keep
                } else {
                    Row::Hide
                }
            });
            let listed: Vec<String> = v
                .pointer("/workspaces")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|w| w.get("name")?.as_str().map(str::to_string))
                .collect();
            let missing: Vec<Value> = members
                .iter()
                .filter(|m| !listed.contains(m))
                .map(|m| serde_json::json!({ "name": m }))
                .collect();
            if !missing.is_empty() {
                if let Some(list) = v.pointer_mut("/workspaces").and_then(Value::as_array_mut) {
                    list.extend(missing);
                } else {
                    v["workspaces"] = Value::Array(missing);
                }
                return Ok(CheckedAnswer {
                    body: Some(v.to_string().into_bytes()),
                    dropped: 0,
                    hidden: hidden + dropped,
                    replaced: None,
                });
            }
            (0, hidden + dropped)
        }
        ResponseFilter::Experiments => {
            sort_rows(&mut v, "/experiments", |e| by_grants(reader, e.get("tags")))
        }
        ResponseFilter::ExperimentByName { name } => {
            let exp = v.get("experiment").ok_or_else(unusable)?;
            if reader.sees_tags(exp.get("tags")) {
                return Ok(UNCHANGED);
            }
            return Ok(CheckedAnswer {
                body: Some(experiment_name_not_found(name)),
                dropped: 0,
                hidden: 0,
                replaced: Some(Reason::TenantMismatch),
            });
        }
        ResponseFilter::Runs { experiment_ids } => sort_rows(&mut v, "/runs", |r| {
            keep_if(
                in_scope(r, "/info/experiment_id", experiment_ids) && own(r.pointer("/data/tags")),
            )
        }),
        ResponseFilter::GraphqlRuns { experiment_ids } => {
            sort_rows(&mut v, "/data/mlflowSearchRuns/runs", |r| {
                keep_if(in_scope(r, "/info/experimentId", experiment_ids))
            })
        }
        ResponseFilter::LoggedModels { experiment_ids } => sort_rows(&mut v, "/models", |m| {
            keep_if(in_scope(m, "/info/experiment_id", experiment_ids))
        }),
        ResponseFilter::RegisteredModels => sort_rows(&mut v, "/registered_models", |m| {
            by_grants(reader, m.get("tags"))
        }),
        ResponseFilter::ModelVersions { readable } => sort_rows(&mut v, "/model_versions", |m| {
            if !own(m.get("tags")) {
                Row::Drop
            } else if m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| readable.iter().any(|r| r == n))
            {
                Row::Keep
            } else {
                Row::Hide
            }
        }),
        ResponseFilter::TracesV3 { experiment_ids } => sort_rows(&mut v, "/traces", |t| {
            keep_if(in_scope(
                t,
                "/trace_location/mlflow_experiment/experiment_id",
                experiment_ids,
            ))
        }),
        ResponseFilter::TracesV2 { experiment_ids } => sort_rows(&mut v, "/traces", |t| {
            keep_if(in_scope(t, "/experiment_id", experiment_ids))
        }),
        ResponseFilter::OnlineConfigs { owned } => {
            // Configs of experiments the caller may not read: expected, not a fault.
            let (dropped, hidden) = sort_rows(&mut v, "/configs", |c| {
                keep_if(experiment_of(c).is_some_and(|e| owned.contains(&e)))
            });
            (0, dropped + hidden)
        }
    };
    if dropped == 0 && hidden == 0 {
        return Ok(UNCHANGED);
    }
    Ok(CheckedAnswer {
        body: Some(v.to_string().into_bytes()),
        dropped,
        hidden,
        replaced: None,
    })
}

/// The fast path for the searches the UI sends all day (`runs/search`, `experiments/search`):
/// the rows are read into a typed projection (only the fields the check needs; every other
/// member is skipped without building a JSON tree), and when every row passes, the answer goes
/// out unchanged. `None` (an answer that is not a plain object of well-formed rows, a member
/// the projection sees twice, another filter) and `Some(false)` (a row to drop) take the full
/// path, which parses strictly and rewrites: the fast path never passes an answer the full
/// path would change.
mod rows {
    use super::ResponseFilter;
    use crate::mlflow::grants::Reader;
    use serde::Deserialize;
    use std::borrow::Cow;

    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(borrow, default)]
        key: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        value: Option<Cow<'a, str>>,
    }

    /// `tags::tenant_of` on the projection: the first tag with the key and a string value.
    fn tenant_of<'t>(tags: &'t Option<Vec<Tag<'_>>>, key: &str) -> Option<&'t str> {
        tags.as_ref()?.iter().find_map(|t| {
            (t.key.as_deref() == Some(key))
                .then_some(t.value.as_deref())
                .flatten()
        })
    }

    #[derive(Deserialize)]
    struct RunInfo<'a> {
        #[serde(borrow, default)]
        experiment_id: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize)]
    struct RunData<'a> {
        #[serde(borrow, default)]
        tags: Option<Vec<Tag<'a>>>,
    }

    #[derive(Deserialize)]
    struct Run<'a> {
        #[serde(borrow, default)]
        info: Option<RunInfo<'a>>,
        #[serde(borrow, default)]
        data: Option<RunData<'a>>,
    }

    #[derive(Deserialize)]
    struct Runs<'a> {
        #[serde(borrow, default)]
        runs: Option<Vec<Run<'a>>>,
    }

    #[derive(Deserialize)]
    struct Experiment<'a> {
        #[serde(borrow, default)]
        tags: Option<Vec<Tag<'a>>>,
    }

    #[derive(Deserialize)]
    struct Experiments<'a> {
        #[serde(borrow, default)]
        experiments: Option<Vec<Experiment<'a>>>,
    }

    /// `Reader::sees` on the projection.
    fn sees(reader: &Reader, tags: &Option<Vec<Tag<'_>>>) -> bool {
        tenant_of(tags, &reader.tenant_key) == Some(reader.tenant.as_str())
            && reader.sees(
                tags.iter()
                    .flatten()
                    .filter_map(|t| Some((t.key.as_deref()?, t.value.as_deref()?))),
            )
    }

    pub fn all_kept(filter: &ResponseFilter, body: &[u8], reader: &Reader) -> Option<bool> {
        let (tenant, key) = (reader.tenant.as_str(), reader.tenant_key.as_str());
        // A struct also deserializes from a JSON array; the full path requires an object.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        match filter {
            ResponseFilter::Runs { experiment_ids } => {
                let page: Runs = serde_json::from_slice(body).ok()?;
                Some(page.runs.unwrap_or_default().iter().all(|r| {
                    let exp = r.info.as_ref().and_then(|i| i.experiment_id.as_deref());
                    exp.is_some_and(|e| experiment_ids.iter().any(|x| x == e))
                        && r.data.as_ref().and_then(|d| tenant_of(&d.tags, key)) == Some(tenant)
                }))
            }
            ResponseFilter::Experiments => {
                let page: Experiments = serde_json::from_slice(body).ok()?;
                Some(
                    page.experiments
                        .unwrap_or_default()
                        .iter()
                        .all(|e| sees(reader, &e.tags)),
                )
            }
            _ => None,
        }
    }
}

/// The run an answer says MLflow created (`run_id` of `genai/evaluate/invoke` and
/// `issues/invoke`, `job.run_id` of `prompt-optimization/jobs`, `run.info.run_id` of
/// `create-promptlab-run`), if it is a run id.
pub fn created_run(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v
        .get("run_id")
        .or_else(|| v.pointer("/job/run_id"))
        .or_else(|| v.pointer("/run/info/run_id"))?
        .as_str()?;
    crate::mlflow::ownership::valid_run_id(id).then(|| id.to_string())
}

/// The experiment an AI gateway endpoint's answer says its usage traces go to.
pub fn endpoint_experiment(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v.pointer("/endpoint/experiment_id")?.as_str()?;
    crate::mlflow::ownership::valid_experiment_id(id).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(t: &str) -> Value {
        json!([{"key": "tenant", "value": t}])
    }

    /// A member of tenant `a` with no grants.
    fn a() -> Reader {
        Reader {
            tenant: "a".into(),
            tenant_key: "tenant".into(),
            member: true,
            keys: vec![],
        }
    }

    /// Checks `body` as tenant `a` answered 200.
    fn checked(filter: ResponseFilter, body: Value) -> CheckedAnswer {
        check(&filter, 200, body.to_string().as_bytes(), &a()).unwrap()
    }

    #[test]
    fn registry_and_trace_rows_filtered() {
        let c = checked(
            ResponseFilter::RegisteredModels,
            json!({"registered_models": [
                {"name": "a", "tags": tags("a")}, {"name": "b", "tags": tags("b")}, {"name": "old"}
            ]}),
        );
        assert_eq!(c.dropped, 2);
        let v: Value = serde_json::from_slice(&c.body.unwrap()).unwrap();
        assert_eq!(v["registered_models"].as_array().unwrap().len(), 1);
        let versions = json!({"model_versions": [{"name": "a", "tags": tags("a")}, {"name": "a"},
            {"name": "denied", "tags": tags("a")}]});
        let readable = ResponseFilter::ModelVersions {
            readable: vec!["a".into()],
        };
        let c = checked(readable, versions);
        assert_eq!((c.dropped, c.hidden), (1, 1));

        let loc = |e: &str| json!({"trace_id": "tr-1", "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}}});
        let v3 = || ResponseFilter::TracesV3 {
            experiment_ids: vec!["1".into()],
        };
        assert_eq!(
            checked(v3(), json!({"traces": [loc("1"), loc("2")]})).dropped,
            1
        );
        let v2 = ResponseFilter::TracesV2 {
            experiment_ids: vec!["1".into()],
        };
        let body = json!({"traces": [{"request_id": "x", "experiment_id": "1"}, {"request_id": "y", "experiment_id": "3"}]});
        assert_eq!(checked(v2, body).dropped, 1);
        // Nothing foreign: the body is forwarded untouched.
        assert_eq!(checked(v3(), json!({"traces": [loc("1")]})), UNCHANGED);
    }

    #[test]
    fn experiments_filtered_by_tag() {
        let body = json!({"experiments": [
            {"experiment_id": "1", "tags": tags("a")},
            {"experiment_id": "2", "tags": tags("b")},
            {"experiment_id": "0"}
        ]});
        let c = check(
            &ResponseFilter::Experiments,
            200,
            body.to_string().as_bytes(),
            &a(),
        )
        .unwrap();
        assert_eq!(c.dropped, 2);
        let v: Value = serde_json::from_slice(&c.body.unwrap()).unwrap();
        assert_eq!(v["experiments"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn clean_answers_pass_unchanged() {
        let body = json!({"runs": [{"info": {"experiment_id": "1"}, "data": {"tags": tags("a")}}]});
        let f = ResponseFilter::Runs {
            experiment_ids: vec!["1".into()],
        };
        let c = check(&f, 200, body.to_string().as_bytes(), &a()).unwrap();
        assert_eq!(c, UNCHANGED);
        let c = check(&f, 400, b"not json", &a()).unwrap();
        assert_eq!(c.body, None);
    }

    #[test]
    fn foreign_run_rows_dropped() {
        let body = json!({"runs": [
            {"info": {"experiment_id": "1"}, "data": {"tags": tags("a")}},
            {"info": {"experiment_id": "9"}, "data": {"tags": tags("a")}},
            {"info": {"experiment_id": "1"}, "data": {"tags": tags("b")}}
        ]});
        let f = ResponseFilter::Runs {
            experiment_ids: vec!["1".into()],
        };
        assert_eq!(
            check(&f, 200, body.to_string().as_bytes(), &a())
                .unwrap()
                .dropped,
            2
        );
    }

    #[test]
    fn foreign_experiment_by_name_is_mlflows_404() {
        let body = json!({"experiment": {"experiment_id": "2", "tags": tags("b")}});
        let f = ResponseFilter::ExperimentByName {
            name: "x\u{e9}\"".into(),
        };
        let c = check(&f, 200, body.to_string().as_bytes(), &a()).unwrap();
        assert_eq!(c.replaced, Some(Reason::TenantMismatch));
        // Byte-identical to MLflow 3.17.2's own answer for an absent name.
        assert_eq!(
            String::from_utf8(c.body.unwrap()).unwrap(),
            r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Could not find experiment with name 'x\u00e9\"'", "sqlstate": "KAM00", "error_class": "RESOURCE_NOT_FOUND"}"#
        );
    }

    #[test]
    fn online_configs_keep_only_owned_experiments() {
        let body = json!({"configs": [
            {"scorer_id": "s1", "experiment_id": "1"}, {"scorer_id": "s2", "experiment_id": 2}
        ]});
        let bytes = body.to_string().into_bytes();
        assert_eq!(
            online_config_experiments(&bytes).unwrap(),
            vec!["1".to_string(), "2".to_string()]
        );
        let owned = |ids: &[&str]| ResponseFilter::OnlineConfigs {
            owned: ids.iter().map(|s| s.to_string()).collect(),
        };
        let c = checked(owned(&["1"]), body.clone());
        assert_eq!(c.dropped, 0, "expected filtering, not a policy fault");
        let v: Value = serde_json::from_slice(&c.body.unwrap()).unwrap();
        assert_eq!(v["configs"].as_array().unwrap().len(), 1);
        assert_eq!(checked(owned(&["1", "2"]), body.clone()), UNCHANGED);
        let v: Value = serde_json::from_slice(&checked(owned(&[]), body).body.unwrap()).unwrap();
        assert_eq!(v["configs"], json!([]));
        assert!(online_config_experiments(br#"{"configs":[{"experiment_id":"x"}]}"#).is_err());
        assert!(online_config_experiments(b"{}").is_err());
    }

    #[test]
    fn unparsable_success_fails_closed() {
        let e = check(&ResponseFilter::Experiments, 200, b"<html>", &a()).unwrap_err();
        assert_eq!(e.status(), 502);
    }

    /// The fast path answers "unchanged" only where the full check would: for answers that
    /// keep every row, drop some, or are odd in the ways MLflow's answers are not.
    #[test]
    fn the_fast_path_never_passes_what_the_full_check_changes() {
        let runs = ResponseFilter::Runs {
            experiment_ids: vec!["1".into(), "2".into()],
        };
        let run = |exp: serde_json::Value, tags: serde_json::Value| json!({"info": {"run_id": "r", "experiment_id": exp}, "data": {"metrics": [{"key": "m", "value": 1.0}], "tags": tags}});
        let bodies = vec![
            json!({"runs": [run(json!("1"), tags("a")), run(json!("2"), tags("a"))], "next_page_token": "x"}).to_string(),
            json!({"runs": [run(json!("1"), tags("a")), run(json!("3"), tags("a"))]}).to_string(),
            json!({"runs": [run(json!("1"), tags("b"))]}).to_string(),
            json!({"runs": [run(json!("1"), json!([]))]}).to_string(),
            json!({"runs": [run(json!("1"), json!([{"key": "tenant"}, {"key": "tenant", "value": "a"}]))]}).to_string(),
            json!({"runs": [run(json!("1"), json!([{"key": "tenant", "value": 7}]))]}).to_string(),
            json!({"runs": [run(json!(1), tags("a"))]}).to_string(),
            json!({"runs": [{"info": {"experiment_id": "1"}}]}).to_string(),
            json!({}).to_string(),
            json!({"runs": "x"}).to_string(),
            r#"{"runs": [{"info": {"experiment_id": "1", "experiment_id": "1"}, "data": {"tags": [{"key": "tenant", "value": "a"}]}}]}"#.to_string(),
            r#"{"runs": [{"info": {"experiment_id": "1"}, "data": {"tags": [{"key": "tenant", "value": "b", "value": "a"}]}}]}"#.to_string(),
            r#"{"runs": [], "runs": [{"info": {"experiment_id": "9"}}]}"#.to_string(),
            r#"[{"runs": []}]"#.to_string(),
            r#"{"runs": [{"info": {"experiment_id": "1"}, "data": {"tags": [{"key": "tenant", "value": "a\u0062"}]}}]}"#.to_string(),
        ];
        for body in &bodies {
            let fast = check(&runs, 200, body.as_bytes(), &a());
            let full = full_check(&runs, body.as_bytes(), &a());
            assert_eq!(fast, full, "{body}");
        }
        assert_eq!(
            rows::all_kept(&runs, bodies[0].as_bytes(), &a()),
            Some(true),
            "the common answer takes the fast path"
        );
        let exps = [
            json!({"experiments": [{"experiment_id": "1", "tags": tags("a")}]}).to_string(),
            json!({"experiments": [{"experiment_id": "1", "tags": tags("a")}, {"experiment_id": "0"}]}).to_string(),
            json!({"experiments": [{"experiment_id": "2", "tags": tags("b")}]}).to_string(),
        ];
        for body in &exps {
            let fast = check(&ResponseFilter::Experiments, 200, body.as_bytes(), &a());
            let full = full_check(&ResponseFilter::Experiments, body.as_bytes(), &a());
            assert_eq!(fast, full, "{body}");
        }
        assert_eq!(
            rows::all_kept(&ResponseFilter::Experiments, exps[0].as_bytes(), &a()),
            Some(true)
        );
    }
}
