//! The one place a request's tag writes are checked: every tag key it carries, wherever
//! MLflow's request messages put one, goes through `mlflow::tags::guard` for the row's tagged
//! kind (`Strategy::tags`).

use super::fields::Input;
use crate::error::GatewayError;
use crate::mlflow::tags::{self, Tagged};
use crate::policy::route::Matched;
use crate::policy::table::Strategy;
use serde_json::Value;

/// Every tag key the request sets or deletes, wherever MLflow's request messages carry one: a
/// single-tag route's `key` (body or query) or `{tag_key}` / `{key}` path segment, a `tags`
/// list or map, StartTraceV3's `trace.trace_info.tags`, log-inputs' `datasets[].tags`.
pub(super) fn tag_keys(m: &Matched, input: &Input) -> Result<Vec<String>, GatewayError> {
    let mut keys: Vec<String> = ["tag_key", "key"]
        .iter()
        .filter_map(|p| m.param(p))
        .map(str::to_string)
        .collect();
    keys.extend(input.str_field("key")?);
    if let Input::Body(body) = input {
        keys.extend(tags::keys_of(body.get("tags"))?);
        let trace_tags = body
            .get("trace")
            .and_then(|t| t.get("trace_info"))
            .and_then(|i| i.get("tags"));
        keys.extend(tags::keys_of(trace_tags)?);
        if let Some(inputs) = body.get("datasets").and_then(Value::as_array) {
            for d in inputs {
                keys.extend(tags::keys_of(d.get("tags"))?);
            }
        }
    }
    Ok(keys)
}
/// The one place a request's tag writes are checked (`mlflow::tags::guard`), for every row
/// whose strategy declares a tagged kind. On creates the gateway writes the tenant tag itself
/// (`with_tenant` accepts an identical one and refuses any other), and on `runs/create` it
/// replaces `mlflow.user` with the authenticated subject, so those two are left to the rewrite.
pub(super) fn guard_tags(
    strategy: Strategy,
    kind: Tagged,
    m: &Matched,
    input: &Input,
    tenant_key: &str,
) -> Result<(), GatewayError> {
    let shape = strategy.shape();
    for k in tag_keys(m, input)? {
        let rewritten = shape.injects_tenant && tags::is_reserved(&k, tenant_key)
            || shape.sets_author && k == RUN_AUTHOR_TAG;
        if !rewritten {
            tags::guard(kind, &k, tenant_key)?;
        }
    }
    Ok(())
}
/// The run tag MLflow's UI shows as the author; the gateway sets it to the subject.
pub(super) const RUN_AUTHOR_TAG: &str = "mlflow.user";
