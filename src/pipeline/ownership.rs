//! Whose is it: the one place that establishes a resource's owner (from the key-value cache
//! when fresh, else by a pre-flight to MLflow) and judges it against the caller. Experiments
//! and registered models carry the tenant tag themselves; runs, logged models, traces and GenAI
//! objects belong to their experiment's tenant, a dataset to the tenant of all its
//! experiments. Also the plan's state checks (`Verify`), which read MLflow fresh.

use super::ctx::Ctx;
use super::host::Host;
use crate::config::Config;
use crate::error::{GatewayError, Reason};
use crate::identity::Principal;
use crate::mlflow::locations;
use crate::mlflow::ownership::{
    fact_from_body, valid_model_id, valid_model_name, valid_run_id, CachedFact, Fact, Resource,
};
use crate::mlflow::responses::registered_model_not_found;
use crate::policy::access::{self, Owned};
use crate::policy::plan::{keeps_an_experiment, Verify};
use crate::vocab::rbac::{Level, Role};

/// The owner of something linked to several experiments (an evaluation dataset): a tenant's
/// only when every experiment is that tenant's, with the grants of each (access to the dataset
/// needs access to every one of them); mixed owners belong to nobody; no experiments at all
/// reads as missing (MLflow answers an unknown dataset id with an empty list).
pub fn owner_of_all(owners: impl IntoIterator<Item = Owner>) -> Owner {
    let mut it = owners.into_iter();
    let Some(Owner::Tenant(mut all)) = it.next() else {
        return Owner::Missing;
    };
    for o in it {
        match o {
            Owner::Tenant(next) if next.tenant == all.tenant => {
                all.grant_sets.extend(next.grant_sets)
            }
            _ => return Owner::Nobody,
        }
    }
    Owner::Tenant(all)
}

/// The caller's roles in the acting tenant, for an `rbac` message.
fn roles_held(p: &Principal) -> String {
    if !p.member {
        return format!(
            "a visitor to tenant `{}`: grants give read at most",
            p.tenant
        );
    }
    if p.roles.is_empty() {
        return "no recognised role".to_string();
    }
    let names: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
    format!("role {}", names.join(", "))
}

/// What a level is for and who holds it, for an `rbac` message: the roles that reach it, or
/// a grant of it on the object.
fn needs(need: Level) -> String {
    let what = match need {
        Level::Read => "reading",
        Level::Edit => "a write",
        Level::Manage => "a delete or a change of settings",
    };
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| Level::of_role(**r) >= need)
        .map(|r| r.as_str())
        .collect();
    format!(
        "this needs {} ({what}: the {} role, or a grant of {} on it)",
        need.as_str(),
        roles.join(" or "),
        need.as_str()
    )
}

/// What pre-flights established about a resource's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The experiment (of the resource), or the registered model, carries this tenant tag,
    /// with the grants and aliases that go with it.
    Tenant(Owned),
    /// The experiment exists but carries no tenant tag (e.g. the Default experiment `0`).
    Nobody,
    /// The resource does not exist.
    Missing,
}

/// Allows a resource when the caller's access to it (`policy::access::level`) reaches `need`.
/// No access at all (absent, untagged, foreign, denied, or not shared with a visitor) gets
/// the same answer, so the response reveals nothing about other tenants or vetoed objects;
/// the audit reason differs. Registry names are answered with MLflow's own 404 for an absent
/// model: clients probe a name before creating it (`register_prompt`), and the answer must not
/// tell "taken" from "free". An object the caller may see but not change gets `rbac`.
pub fn judge(
    res: &Resource,
    owner: &Owner,
    principal: &Principal,
    need: Level,
) -> Result<(), GatewayError> {
    let reason = match owner {
        Owner::Tenant(o) => match access::level(principal, o) {
            Some(held) if held >= need => return Ok(()),
            Some(held) => {
                return Err(GatewayError::new(
                    Reason::Rbac,
                    format!(
                        "your access to {} {} is {} ({} and any grants); {}",
                        res.kind(),
                        res.id(),
                        held.as_str(),
                        roles_held(principal),
                        needs(need)
                    ),
                ))
            }
            None if o.tenant == principal.tenant && access::denied(principal, o) => {
                Reason::GrantDenied
            }
            // A member of the object's own tenant whose claims carry no role the gateway
            // knows: say so, rather than answer as for another tenant's object.
            None if o.tenant == principal.tenant
                && principal.member
                && principal.roles.is_empty() =>
            {
                return Err(GatewayError::new(
                    Reason::Rbac,
                    format!(
                        "you have no recognised role in tenant `{}` and no grant on {} {}; {}",
                        principal.tenant,
                        res.kind(),
                        res.id(),
                        needs(need)
                    ),
                ));
            }
            None => Reason::TenantMismatch,
        },
        Owner::Nobody => Reason::TenantMismatch,
        Owner::Missing => Reason::ResourceNotFound,
    };
    if matches!(res, Resource::Experiment(id) if id == "0") {
        // The client's fallback when no experiment is set; say how to fix it.
        return Err(GatewayError::new(
            reason,
            "experiment 0 is MLflow's Default experiment, which belongs to no tenant: choose an experiment of your own first (mlflow.set_experiment(\"<name>\") or MLFLOW_EXPERIMENT_NAME)",
        ));
    }
    if let Resource::RegisteredModel(name) = res {
        return Err(GatewayError::as_absent(
            reason,
            registered_model_not_found(name),
        ));
    }
    Err(GatewayError::new(
        reason,
        format!(
            "{} {} does not exist or belongs to another tenant",
            res.kind(),
            res.id()
        ),
    ))
}

/// Establishes who owns `res`: its own tags (experiments, registered models), its
/// experiment's, or all of a dataset's experiments'. The experiment's fact is read on every
/// request (from the cache when fresh): it carries the grants, which a change through the
/// gateway rewrites at once, so a child never decides on a copy of them.
pub fn resolve_owner<H: Host>(
    res: &Resource,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Owner, GatewayError> {
    if res.tagged_itself() {
        return tag_owner(fact(res, cfg, ctx)?);
    }
    let experiments = match fact(res, cfg, ctx)? {
        None => return Ok(Owner::Missing),
        Some(Fact::InExperiment(e)) => vec![e],
        Some(Fact::InExperiments(list)) => list,
        Some(Fact::Tagged { .. }) => return Err(GatewayError::internal("fact kind mismatch")),
    };
    let mut owners = Vec::with_capacity(experiments.len());
    for e in experiments {
        owners.push(tag_owner(fact(&Resource::Experiment(e), cfg, ctx)?)?);
    }
    Ok(owner_of_all(owners))
}

/// The owner of an experiment or registered model as MLflow has it now (never the cache): for
/// the grants endpoint, which changes what the cached fact holds.
pub fn current_owner<H: Host>(
    res: &Resource,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Owner, GatewayError> {
    let resp = ctx.preflight(cfg, &res.preflight_path())?;
    match resp.status {
        200 => tag_owner(Some(
            fact_from_body(res, &resp.body, &cfg.tenant_tag_key).ok_or_else(|| {
                preflight_failed(format!("unexpected answer for {} {}", res.kind(), res.id()))
            })?,
        )),
        400 | 404 => Ok(Owner::Missing),
        s => Err(preflight_failed(format!(
            "pre-flight for {} {} answered {s}",
            res.kind(),
            res.id()
        ))),
    }
}

fn tag_owner(tagged: Option<Fact>) -> Result<Owner, GatewayError> {
    Ok(match tagged {
        None => Owner::Missing,
        Some(Fact::Tagged {
            tenant: Some(tenant),
            grants,
            aliases,
        }) => Owner::Tenant(Owned {
            tenant,
            grant_sets: vec![grants],
            aliases,
        }),
        Some(Fact::Tagged { tenant: None, .. }) => Owner::Nobody,
        Some(_) => return Err(GatewayError::internal("fact kind mismatch")),
    })
}

fn preflight_failed(detail: String) -> GatewayError {
    GatewayError::new(
        Reason::PreflightFailed,
        "an ownership check could not be completed",
    )
    .with_log_detail(detail)
}

/// What MLflow says about `res` (cached facts only when they cannot change through the
/// gateway); `None` when it does not exist.
fn fact<H: Host>(
    res: &Resource,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Option<Fact>, GatewayError> {
    let found = lookup(res, cfg, ctx)?;
    let Some(found) = found else {
        return Ok(None);
    };
    if let (Some(key), true) = (&found.key, found.fetched) {
        ctx.kv_set(key, &found.entry.encode())?;
    }
    Ok(Some(found.entry.fact))
}

/// A fact, from the cache or just fetched.
struct Found {
    entry: CachedFact,
    /// Where it is cached; `None` when it must not be (a dataset's links, "untagged", or the
    /// cache is off).
    key: Option<String>,
    /// Fetched from MLflow now (not yet in the cache).
    fetched: bool,
}

/// The fact from the cache when fresh, else from a pre-flight (not written back: the caller
/// writes it, once, with anything it learns on top).
fn lookup<H: Host>(
    res: &Resource,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Option<Found>, GatewayError> {
    let ttl = cfg.ownership_cache_seconds;
    let now = ctx.now_s();
    let cache_key = res.cache_key().filter(|_| ttl > 0);
    if let Some(k) = &cache_key {
        if let Some(c) = ctx.kv_get(k)?.and_then(|b| CachedFact::decode(&b)) {
            if c.fresh(now, ttl) {
                return Ok(Some(Found {
                    entry: c,
                    key: cache_key,
                    fetched: false,
                }));
            }
        }
    }
    let resp = ctx.preflight(cfg, &res.preflight_path())?;
    match resp.status {
        200 => {
            let f = fact_from_body(res, &resp.body, &cfg.tenant_tag_key).ok_or_else(|| {
                preflight_failed(format!(
                    "unexpected pre-flight answer for {} {}",
                    res.kind(),
                    res.id()
                ))
            })?;
            // Only facts that cannot change through the gateway behind its back are cached: a
            // tenant tag (immutable here) with its grants (the grants endpoint rewrites the
            // cached fact when it changes them) and a run's / model's / trace's experiment;
            // never "untagged".
            let key = cache_key.filter(|_| !matches!(f, Fact::Tagged { tenant: None, .. }));
            Ok(Some(Found {
                entry: CachedFact { fact: f, at: now },
                key,
                fetched: true,
            }))
        }
        400 | 404 => Ok(None),
        s => Err(preflight_failed(format!(
            "pre-flight for {} {} answered {s}",
            res.kind(),
            res.id()
        ))),
    }
}

/// Runs one of the plan's state checks; the answers are fetched fresh, never from the cache.
pub fn verify<H: Host>(v: &Verify, cfg: &Config, ctx: &mut Ctx<H>) -> Result<(), GatewayError> {
    match v {
        Verify::TraceLocation(id) => {
            let info = preflight_body(cfg, ctx, &format!("/api/2.0/mlflow/traces/{id}/info"))?;
            let exp = locations::trace_experiment(&info, id)?;
            let path = format!("/api/2.0/mlflow/experiments/get?experiment_id={exp}");
            let exp_body = preflight_body(cfg, ctx, &path)?;
            locations::check_trace_location(id, &info, &exp_body)
        }
        Verify::KeepsAnExperiment { dataset, removed } => {
            match fact(&Resource::Dataset(dataset.clone()), cfg, ctx)? {
                Some(Fact::InExperiments(linked)) => keeps_an_experiment(dataset, &linked, removed),
                _ => Err(GatewayError::internal(
                    "dataset fact missing after its ownership check",
                )),
            }
        }
    }
}

/// A pre-flight GET that must answer 200 (the resource was found by the ownership checks).
fn preflight_body<H: Host>(
    cfg: &Config,
    ctx: &mut Ctx<H>,
    path: &str,
) -> Result<Vec<u8>, GatewayError> {
    let resp = ctx.preflight(cfg, path)?;
    if resp.status != 200 {
        return Err(preflight_failed(format!(
            "pre-flight {path} answered {}",
            resp.status
        )));
    }
    Ok(resp.body)
}

/// Whether the artifact at `path` (from the experiment on: `<experiment>/models/<model>/…` or
/// `<experiment>/<run>/artifacts/…`) lies inside the files of a model version whose registered
/// model the caller may read: sharing a model version shares the files the MLflow client loads
/// it from. The versions come from MLflow fresh (a pinned search by logged model or run), each
/// model's grants too, so a revoked share stops the next download.
pub fn shared_through_version<H: Host>(
    path: &[String],
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<bool, GatewayError> {
    let segs: Vec<&str> = path.iter().map(String::as_str).collect();
    let filter = match segs.as_slice() {
        [exp, "models", model, "artifacts", ..] if valid_model_id(model) => {
            // The logged model's files are in its own experiment only.
            let home = fact(&Resource::LoggedModel(model.to_string()), cfg, ctx)?;
            if home != Some(Fact::InExperiment(exp.to_string())) {
                return Ok(false);
            }
            format!("source_path = 'models:/{model}'")
        }
        [_, run, "artifacts", ..] if valid_run_id(run) => format!("run_id = '{run}'"),
        _ => return Ok(false),
    };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", &filter)
        .append_pair("max_results", "200")
        .finish();
    let found = ctx.preflight(cfg, &format!("/api/2.0/mlflow/model-versions/search?{q}"))?;
    if found.status != 200 {
        return Ok(false);
    }
    let v: serde_json::Value = serde_json::from_slice(&found.body)
        .map_err(|_| preflight_failed("model-versions/search answer".into()))?;
    let versions = v
        .get("model_versions")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for mv in versions {
        let (Some(name), Some(source)) = (
            mv.get("name").and_then(serde_json::Value::as_str),
            mv.get("source").and_then(serde_json::Value::as_str),
        ) else {
            continue;
        };
        let covered = version_files(source, &segs).is_some_and(|root| segs.starts_with(&root));
        if covered
            && valid_model_name(name)
            && readable(
                &Resource::RegisteredModel(name.to_string()),
                principal,
                cfg,
                ctx,
            )?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where a version's files are, from the experiment on, given its `source`: a logged model
/// (`models:/<id>`: `<experiment>/models/<id>/artifacts`, the experiment taken from the path
/// asked for), a run's artifacts (`runs:/<run>/<sub>`), or a proxied artifact URI.
fn version_files<'a>(source: &'a str, asked: &[&'a str]) -> Option<Vec<&'a str>> {
    if let Some(model) = source.strip_prefix("models:/") {
        return Some(vec![asked.first()?, "models", model, "artifacts"]);
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let mut root = vec![*asked.first()?, "artifacts"];
        let mut parts = rest.split('/').filter(|s| !s.is_empty());
        root.insert(1, parts.next()?);
        root.extend(parts);
        return Some(root);
    }
    let rest = source.strip_prefix("mlflow-artifacts:/")?;
    let mut parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if parts.first() == Some(&"workspaces") {
        parts.drain(..2.min(parts.len()));
    }
    (!parts.is_empty() && !parts.iter().any(|p| *p == "." || *p == "..")).then_some(parts)
}

/// Whether `principal` may read `res` (the response checks that learn objects from an answer).
pub fn readable<H: Host>(
    res: &Resource,
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<bool, GatewayError> {
    Ok(match resolve_owner(res, cfg, ctx)? {
        Owner::Tenant(o) => access::level(principal, &o).is_some(),
        Owner::Nobody | Owner::Missing => false,
    })
}

#[cfg(test)]
mod tests {
    use super::version_files;

    #[test]
    fn a_versions_files_are_found_from_each_kind_of_source() {
        let asked = ["7", "models", "m-1", "artifacts", "MLmodel"];
        assert_eq!(
            version_files("models:/m-1", &asked),
            Some(vec!["7", "models", "m-1", "artifacts"])
        );
        let run = ["7", "r1", "artifacts", "model", "MLmodel"];
        assert_eq!(
            version_files("runs:/r1/model", &run),
            Some(vec!["7", "r1", "artifacts", "model"])
        );
        assert_eq!(
            version_files(
                "mlflow-artifacts:/workspaces/team-a/7/r1/artifacts/model",
                &run
            ),
            Some(vec!["7", "r1", "artifacts", "model"])
        );
        assert_eq!(version_files("mlflow-artifacts:/7/../8/x", &run), None);
        assert_eq!(version_files("s3://bucket/x", &run), None);
    }
}
