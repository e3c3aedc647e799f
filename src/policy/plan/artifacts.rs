//! Proxied artifacts: the experiment is the first segment of the artifact path (after
//! `workspaces/<own workspace>/` in workspace mode); paths are decoded once and re-encoded
//! canonically before forwarding (`mlflow::artifacts`).

use super::fields::*;
use super::Draft;
use crate::error::{GatewayError, Reason};
use crate::mlflow::artifacts::{self, ArtifactPath};
use crate::mlflow::json::opt_str;
use crate::mlflow::ownership::Resource;

/// A proxied artifact path: its experiment (first segment) owned; multipart bodies name a
/// bare file; the path is re-encoded canonically.
pub(super) fn artifact_path(d: &mut Draft) -> Result<(), GatewayError> {
    let req = d.req;
    let m = d.m;
    let tail = m.param("path").ok_or_else(|| missing("path"))?;
    let ap: ArtifactPath = artifacts::from_url_path(tail)?;
    in_own_workspace(d, &ap)?;
    if req.method == "DELETE" && ap.within_workspace().len() < 2 {
        return Err(GatewayError::new(
            Reason::RootDeleteRefused,
            "deleting an experiment's whole artifact root is refused",
        ));
    }
    if let Some(body) = d.input.body_mut() {
        let name = opt_str(body, "path")?.ok_or_else(|| missing("path"))?;
        artifacts::check_file_name(name)?;
    }
    d.checks
        .push(Resource::Experiment(ap.experiment_id().to_string()));
    if req.method == "GET" {
        d.artifact_read = Some(ap.within_workspace().to_vec());
    }
    let head = &req.path[..req.path.len() - tail.len()];
    d.path = format!("{head}{}", ap.encoded());
    Ok(())
}

/// The proxied listing: `path` required and its experiment owned (the root lists everything);
/// a `.` right after a run's artifact root names that root (`listing_from_decoded`: the
/// client's `artifact_path="."`), and is forwarded without the dot.
pub(super) fn artifact_list(d: &mut Draft) -> Result<(), GatewayError> {
    let Input::Query(q) = &d.input else {
        return Err(missing("path"));
    };
    let ap = artifacts::listing_from_decoded(q.get("path").unwrap_or(""))?;
    in_own_workspace(d, &ap)?;
    d.checks
        .push(Resource::Experiment(ap.experiment_id().to_string()));
    d.artifact_read = Some(ap.within_workspace().to_vec());
    if let Input::Query(q) = &mut d.input {
        q.set("path", ap.plain());
    }
    Ok(())
}

/// A `workspaces/<name>/…` path must name the caller's own workspace (MLflow refuses another
/// too, but only when the request is pinned; the gateway does not rely on that), and exists
/// only in workspace mode.
fn in_own_workspace(d: &Draft, ap: &ArtifactPath) -> Result<(), GatewayError> {
    if ap.in_workspace(d.own_workspace()?.as_deref()) {
        return Ok(());
    }
    Err(GatewayError::new(
        Reason::TenantMismatch,
        "artifact path names a workspace that is not the caller's",
    ))
}
