//! Proxied artifacts: the experiment is the first segment of the artifact path; paths are
//! decoded once and re-encoded canonically before forwarding (`mlflow::artifacts`).

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
    if req.method == "DELETE" && ap.segments.len() < 2 {
        return Err(GatewayError::forbidden(
            Reason::InvalidPath,
            "deleting an experiment's whole artifact root is refused",
        ));
    }
    if let Some(body) = d.input.body_mut() {
        let name = opt_str(body, "path")?.ok_or_else(|| missing("path"))?;
        artifacts::check_file_name(name)?;
    }
    d.checks
        .push(Resource::Experiment(ap.experiment_id().to_string()));
    let head = &req.path[..req.path.len() - tail.len()];
    d.path = format!("{head}{}", ap.encoded());
    Ok(())
}

/// The proxied listing: `path` required and its experiment owned (the root lists everything).
pub(super) fn artifact_list(d: &mut Draft) -> Result<(), GatewayError> {
    let Input::Query(q) = &mut d.input else {
        return Err(missing("path"));
    };
    let ap = artifacts::from_decoded(q.get("path").unwrap_or(""))?;
    d.checks
        .push(Resource::Experiment(ap.experiment_id().to_string()));
    q.set("path", ap.plain());
    Ok(())
}
