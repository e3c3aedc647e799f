//! `/_gateway/v1/grants`: the gateway's own endpoint to list, set and revoke grants on an
//! experiment, a registered model or a prompt of the caller's selected workspace. Only a
//! `MANAGE` holder of the object may do any of it. A grant is a tag on the object in MLflow
//! (`mlflow::grants`), written through a pinned call; the object's cached ownership fact is
//! dropped with it, so the next request on any replica sharing the key-value store decides on
//! the new grants. Each change is one audit line (who, what, old → new level). In workspace
//! mode the gateway also keeps an index of the workspaces where something is shared with a
//! subject, so the workspace list (the UI's picker) can show them.
//!
//!   GET    /_gateway/v1/grants?resource=<type>/<id>
//!   PUT    /_gateway/v1/grants  {"resource": "<type>/<id>", "subject": "…", "level": "…"}
//!   DELETE /_gateway/v1/grants  {"resource": "<type>/<id>", "subject": "…"}
//!
//! `<type>/<id>`: `experiments/<id>`, `registered-models/<name>` or `prompts/<name>`.

use super::ctx::Ctx;
use super::host::Host;
use super::ownership::{current_owner, judge, Owner};
use super::{identity, ratelimit, read_buffered, workspace};
use crate::audit::{GrantChange, Verdict};
use crate::config::Config;
use crate::error::{GatewayError, HttpResponse, Reason};
use crate::identity::Principal;
use crate::mlflow::grants::{self, Grant, GrantLevel};
use crate::mlflow::json::{opt_str, parse_object_body};
use crate::mlflow::ownership::{valid_experiment_id, valid_model_name, Resource};
use crate::mlflow::query::Query;
use crate::request::Incoming;
use crate::vocab::names::hex;
use crate::vocab::rbac::{Action, Level};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The endpoint's path.
pub const PATH: &str = "/_gateway/v1/grants";

/// Largest request body accepted (a resource, a subject, a level).
const MAX_BODY: u64 = 16 * 1024;

/// The experiment in MLflow's `default` workspace (never a tenant's) whose tags index the
/// workspaces where something is shared with a subject: `share.<subject digest>.<workspace>`.
const SHARE_INDEX: &str = "mlflow-gateway-share-index";

/// Answers a request to `PATH`.
pub fn endpoint<H: Host>(
    inc: &mut Incoming,
    cfg: &Config,
    ctx: &mut Ctx<H>,
    body: Option<H::ClientBody>,
) -> Result<HttpResponse, GatewayError> {
    let (route, action) = match inc.method.as_str() {
        "GET" => ("grants.list", Action::Read),
        "PUT" => ("grants.put", Action::Manage),
        "DELETE" => ("grants.delete", Action::Manage),
        m => {
            return Err(GatewayError::new(
                Reason::MethodNotAllowed,
                format!("{PATH} answers GET, PUT and DELETE, not {m}"),
            ))
        }
    };
    ctx.audit.route = Some(route);
    ctx.audit.action = Some(action.as_str());
    let (_, principal) = identity::identify(inc, cfg, ctx)?;
    ratelimit::charge_request(&principal, action, cfg, ctx)?;
    let asked = read_request(inc, body, ctx)?;
    workspace::settle(&principal, cfg, ctx)?;
    let owner = current_owner(&asked.resource, cfg, ctx)?;
    judge(&asked.resource, &owner, &principal, Level::Manage)?;
    let Owner::Tenant(owned) = owner else {
        return Err(GatewayError::internal("a managed object without an owner"));
    };
    let current: Vec<Grant> = owned.grant_sets.into_iter().flatten().collect();
    let held = |subject: &str| {
        current
            .iter()
            .find(|g| g.subject == subject)
            .map(|g| g.level)
    };
    let response = match (inc.method.as_str(), asked.subject.clone(), asked.level) {
        ("GET", _, _) => {
            let mut list: Vec<Value> = current
                .iter()
                .map(|g| json!({"subject": g.subject, "level": g.level.as_str()}))
                .collect();
            list.sort_by_key(|g| g["subject"].as_str().unwrap_or_default().to_string());
            json!({"resource": asked.text, "grants": list})
        }
        ("PUT", Some(subject), Some(level)) => {
            cross_tenant_rule(&subject, level, &owned.tenant, cfg)?;
            let before = held(&subject);
            let g = Grant { subject, level };
            write_tag(&asked.resource, Some(&g), &g.subject, cfg, ctx)?;
            changed(
                &asked,
                &g.subject,
                before,
                Some(level),
                &principal,
                cfg,
                ctx,
            )?;
            json!({"resource": asked.text, "grant": {"subject": g.subject, "level": level.as_str()},
                   "previous": before.map(GrantLevel::as_str)})
        }
        ("DELETE", Some(subject), None) => {
            let before = held(&subject);
            if before.is_some() {
                write_tag(&asked.resource, None, &subject, cfg, ctx)?;
            }
            changed(&asked, &subject, before, None, &principal, cfg, ctx)?;
            json!({"resource": asked.text, "revoked": {"subject": subject},
                   "previous": before.map(GrantLevel::as_str)})
        }
        _ => return Err(GatewayError::internal("grant request shape")),
    };
    ctx.audit.record(Verdict::Allowed);
    Ok(HttpResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
            ("x-request-id".into(), ctx.rid.clone()),
        ],
        body: response.to_string().into_bytes(),
    })
}

/// A grants request, read and checked.
struct Asked {
    /// `<type>/<id>` as the caller wrote it.
    text: String,
    resource: Resource,
    subject: Option<String>,
    level: Option<GrantLevel>,
}

fn bad(reason: Reason, msg: impl Into<String>) -> GatewayError {
    GatewayError::new(reason, msg)
}

/// The resource (query on GET, body otherwise), the subject and the level, strictly: unknown
/// fields, a missing field, a bad subject or level are refused.
fn read_request<H: Host>(
    inc: &mut Incoming,
    body: Option<H::ClientBody>,
    ctx: &mut Ctx<H>,
) -> Result<Asked, GatewayError> {
    if inc.method == "GET" {
        let q = Query::parse(&inc.query, &[])?;
        let text = q
            .get("resource")
            .ok_or_else(|| bad(Reason::MissingField, "`resource` is required"))?;
        return Ok(Asked {
            resource: resource(text)?,
            text: text.to_string(),
            subject: None,
            level: None,
        });
    }
    if !inc.query.is_empty() {
        return Err(bad(
            Reason::QueryOnBodyMethod,
            format!("{} {PATH} takes its fields in a JSON body", inc.method),
        ));
    }
    let client_body =
        body.ok_or_else(|| bad(Reason::BodyUnreadable, "request body unavailable"))?;
    let declared = crate::forward::declared_length(&inc.headers);
    inc.body = read_buffered(ctx, client_body, declared, MAX_BODY)?;
    let map = parse_object_body(&inc.body, &[])?;
    let put = inc.method == "PUT";
    let allowed: &[&str] = if put {
        &["resource", "subject", "level"]
    } else {
        &["resource", "subject"]
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(
            Reason::InvalidField,
            format!(
                "unknown field `{k}`: {} takes {}",
                inc.method,
                allowed.join(", ")
            ),
        ));
    }
    let field = |name: &str| -> Result<String, GatewayError> {
        opt_str(&map, name)?
            .map(str::to_string)
            .ok_or_else(|| bad(Reason::MissingField, format!("`{name}` is required")))
    };
    let text = field("resource")?;
    let subject = field("subject")?;
    if !grants::valid_subject(&subject) {
        return Err(bad(
            Reason::InvalidField,
            "`subject` must be user:<subject>, group:<group> or tenant:<tenant>",
        ));
    }
    let level = if put {
        Some(GrantLevel::parse(&field("level")?).ok_or_else(|| {
            bad(
                Reason::InvalidField,
                "`level` must be READ, EDIT, MANAGE or DENY",
            )
        })?)
    } else {
        None
    };
    Ok(Asked {
        resource: resource(&text)?,
        text,
        subject: Some(subject),
        level,
    })
}

/// `experiments/<id>`, `registered-models/<name>` or `prompts/<name>`.
fn resource(text: &str) -> Result<Resource, GatewayError> {
    let invalid = || {
        bad(
            Reason::InvalidField,
            "`resource` must be experiments/<id>, registered-models/<name> or prompts/<name>",
        )
    };
    let (kind, id) = text.split_once('/').ok_or_else(invalid)?;
    match kind {
        "experiments" if valid_experiment_id(id) => Ok(Resource::Experiment(id.to_string())),
        "registered-models" | "prompts" if valid_model_name(id) => {
            Ok(Resource::RegisteredModel(id.to_string()))
        }
        _ => Err(invalid()),
    }
}

/// Sharing across the tenant wall is read-only, and only where tenants are workspaces: a grant
/// to another tenant must be `READ` (or a `DENY`), and tag mode takes none.
fn cross_tenant_rule(
    subject: &str,
    level: GrantLevel,
    owner: &str,
    cfg: &Config,
) -> Result<(), GatewayError> {
    let Some(other) = subject.strip_prefix("tenant:").filter(|t| *t != owner) else {
        return Ok(());
    };
    if cfg.isolation.workspace().is_none() {
        return Err(bad(
            Reason::InvalidField,
            format!("tenant:{other} is another tenant: sharing across tenants needs tenant_isolation=workspace"),
        ));
    }
    if !matches!(level, GrantLevel::Read | GrantLevel::Deny) {
        return Err(bad(
            Reason::InvalidField,
            format!("tenant:{other} is another tenant: a share across tenants is READ only"),
        ));
    }
    Ok(())
}

/// Sets (`grant`) or deletes `subject`'s grant tag on the object, through a pinned call, and
/// drops the object's cached fact.
fn write_tag<H: Host>(
    res: &Resource,
    grant: Option<&Grant>,
    subject: &str,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let key = grants::tag_key(&cfg.tenant_tag_key, subject);
    let value = grant.map(grants::tag_value);
    let (method, path, body) = match (res, &value) {
        (Resource::Experiment(id), Some(v)) => (
            "POST",
            "/api/2.0/mlflow/experiments/set-experiment-tag",
            json!({"experiment_id": id, "key": key, "value": v}),
        ),
        (Resource::Experiment(id), None) => (
            "POST",
            "/api/2.0/mlflow/experiments/delete-experiment-tag",
            json!({"experiment_id": id, "key": key}),
        ),
        (Resource::RegisteredModel(name), Some(v)) => (
            "POST",
            "/api/2.0/mlflow/registered-models/set-tag",
            json!({"name": name, "key": key, "value": v}),
        ),
        (Resource::RegisteredModel(name), None) => (
            "DELETE",
            "/api/2.0/mlflow/registered-models/delete-tag",
            json!({"name": name, "key": key}),
        ),
        _ => return Err(GatewayError::internal("grants on this kind of object")),
    };
    let answer = ctx.pinned_call(cfg, method, path, body.to_string().into_bytes())?;
    if answer.status != 200 {
        return Err(
            GatewayError::new(Reason::PreflightFailed, "MLflow did not store the grant")
                .with_log_detail(format!("{method} {path} answered {}", answer.status)),
        );
    }
    if let Some(k) = res.cache_key() {
        ctx.kv_delete(&k)?;
    }
    Ok(())
}

/// After a change: the audit line's record of it, and (workspace mode) the share index.
fn changed<H: Host>(
    asked: &Asked,
    subject: &str,
    before: Option<GrantLevel>,
    after: Option<GrantLevel>,
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    ctx.audit.grant = Some(GrantChange {
        resource: asked.text.clone(),
        subject: subject.to_string(),
        from: before.map(GrantLevel::as_str),
        to: after.map(GrantLevel::as_str),
    });
    if before != after {
        ctx.log(
            "info",
            &format!(
                "grant on {} for {subject}: {} -> {} (by {})",
                asked.text,
                before.map_or("none", GrantLevel::as_str),
                after.map_or("none", GrantLevel::as_str),
                principal.subject
            ),
        );
    }
    if let Some(w) = cfg.isolation.workspace() {
        if subject != format!("tenant:{}", principal.tenant) {
            let ws = w.workspace_of(&principal.tenant)?;
            index_share(subject, &ws, cfg, ctx)?;
        }
    }
    Ok(())
}

/// The tag key of the share index entry for `subject` in `workspace`.
fn index_key(subject: &str, workspace: &str) -> String {
    format!("{}{workspace}", index_prefix(subject))
}

fn index_prefix(subject: &str) -> String {
    format!("share.{}.", hex(&Sha256::digest(subject.as_bytes())[..12]))
}

/// Records whether anything in the caller's (pinned) `workspace` is still shared with
/// `subject` (a non-`DENY` grant on an experiment or a registered model), recomputed from
/// MLflow so the index heals itself.
fn index_share<H: Host>(
    subject: &str,
    workspace: &str,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let key = grants::tag_key(&cfg.tenant_tag_key, subject);
    let filter = format!("tags.`{key}` LIKE '%'");
    let exps = ctx.pinned_call(
        cfg,
        "POST",
        "/api/2.0/mlflow/experiments/search",
        json!({"filter": filter, "max_results": 1000})
            .to_string()
            .into_bytes(),
    )?;
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", &filter)
        .append_pair("max_results", "1000")
        .finish();
    let models = ctx.pinned_call(
        cfg,
        "GET",
        &format!("/api/2.0/mlflow/registered-models/search?{q}"),
        Vec::new(),
    )?;
    let shares = |body: &[u8], list: &str| -> Result<bool, GatewayError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| index_failed("search"))?;
        Ok(v.get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|o| grants::grants_of(o.get("tags"), &cfg.tenant_tag_key))
            .any(|g| g.subject == subject && g.level != GrantLevel::Deny))
    };
    if exps.status != 200 || models.status != 200 {
        return Err(index_failed("search"));
    }
    let shared = shares(&exps.body, "experiments")? || shares(&models.body, "registered_models")?;
    let id = index_experiment(cfg, ctx, shared)?;
    let Some(id) = id else {
        return Ok(());
    };
    let k = index_key(subject, workspace);
    let (path, body) = if shared {
        (
            "/api/2.0/mlflow/experiments/set-experiment-tag",
            json!({"experiment_id": id, "key": k, "value": subject}),
        )
    } else {
        (
            "/api/2.0/mlflow/experiments/delete-experiment-tag",
            json!({"experiment_id": id, "key": k}),
        )
    };
    let r = ctx.own_call(cfg, "POST", path, body.to_string().into_bytes())?;
    // Deleting an index entry that was never written answers 404: nothing to do.
    if r.status == 200 || (!shared && r.status == 404) {
        Ok(())
    } else {
        Err(index_failed("write"))
    }
}

fn index_failed(what: &str) -> GatewayError {
    GatewayError::new(
        Reason::PreflightFailed,
        "the grant is stored, but the list of shared workspaces could not be updated; repeat the request",
    )
    .with_log_detail(format!("share index {what} failed"))
}

/// The share index experiment's id (created when `create` and missing); `None` when it does
/// not exist and need not.
fn index_experiment<H: Host>(
    cfg: &Config,
    ctx: &mut Ctx<H>,
    create: bool,
) -> Result<Option<String>, GatewayError> {
    let found = ctx.own_call(
        cfg,
        "GET",
        &format!("/api/2.0/mlflow/experiments/get-by-name?experiment_name={SHARE_INDEX}"),
        Vec::new(),
    )?;
    let id_of = |body: &[u8], ptr: &str| -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        v.pointer(ptr)?.as_str().map(str::to_string)
    };
    match found.status {
        200 => Ok(Some(
            id_of(&found.body, "/experiment/experiment_id").ok_or_else(|| index_failed("read"))?,
        )),
        404 if !create => Ok(None),
        404 => {
            let made = ctx.own_call(
                cfg,
                "POST",
                "/api/2.0/mlflow/experiments/create",
                json!({"name": SHARE_INDEX}).to_string().into_bytes(),
            )?;
            // Another request may have created it a moment ago.
            if made.status == 200 {
                return Ok(Some(
                    id_of(&made.body, "/experiment_id").ok_or_else(|| index_failed("create"))?,
                ));
            }
            index_experiment(cfg, ctx, false)?
                .ok_or_else(|| index_failed("create"))
                .map(Some)
        }
        _ => Err(index_failed("read")),
    }
}

/// The workspaces where something is shared with one of `subjects` (workspace mode), from the
/// share index.
pub fn shared_workspaces<H: Host>(
    subjects: &[String],
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Vec<String>, GatewayError> {
    let found = ctx.own_call(
        cfg,
        "GET",
        &format!("/api/2.0/mlflow/experiments/get-by-name?experiment_name={SHARE_INDEX}"),
        Vec::new(),
    )?;
    if found.status == 404 {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_slice(&found.body).map_err(|_| index_failed("read"))?;
    let prefixes: Vec<String> = subjects.iter().map(|s| index_prefix(s)).collect();
    let mut out = Vec::new();
    for t in v
        .pointer("/experiment/tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(key) = t.get("key").and_then(Value::as_str) else {
            continue;
        };
        if let Some(ws) = prefixes.iter().find_map(|p| key.strip_prefix(p.as_str())) {
            if !out.iter().any(|o| o == ws) {
                out.push(ws.to_string());
            }
        }
    }
    Ok(out)
}
