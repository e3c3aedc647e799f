//! Proxied-artifact paths (`<experiment_id>/<run_id>/artifacts/...`, or with workspaces on,
//! `workspaces/<workspace>/<experiment_id>/...`, the form of an experiment's artifact location
//! in a workspace; MLflow roots an unprefixed path in the request's workspace). MLflow decodes these
//! repeatedly until stable (`%2532` → `2`), so the gateway refuses anything that a second
//! decode would change, encoded slashes, `.`/`..`/empty segments, backslashes and fragments,
//! and forwards a canonical re-encoding of exactly the segments it checked.

use crate::error::{GatewayError, Reason};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters re-encoded in a forwarded path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b';');

/// A checked artifact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath {
    pub segments: Vec<String>,
    /// The workspace a `workspaces/<workspace>/…` path names (its first two segments); the
    /// caller checks it is the request's own.
    pub workspace: Option<String>,
}

impl ArtifactPath {
    /// Where the experiment id sits: after `workspaces/<workspace>/`, if present.
    fn start(&self) -> usize {
        if self.workspace.is_some() {
            2
        } else {
            0
        }
    }
    /// The experiment that owns this subtree.
    pub fn experiment_id(&self) -> &str {
        &self.segments[self.start()]
    }
    /// Whether the path stays in the caller's workspace: unprefixed (MLflow roots it in the
    /// request's workspace), or prefixed with exactly `own` (`None` in tag mode: no prefix
    /// names anything of the caller's there).
    pub fn in_workspace(&self, own: Option<&str>) -> bool {
        self.workspace.is_none() || self.workspace.as_deref() == own
    }
    /// Segments from the experiment id on (`<experiment>/<run>/…`).
    pub fn within_workspace(&self) -> &[String] {
        &self.segments[self.start()..]
    }
    /// Percent-encoded form for the upstream URL path.
    pub fn encoded(&self) -> String {
        self.segments
            .iter()
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/")
    }
    /// Plain form for a query parameter (the query encoder escapes it).
    pub fn plain(&self) -> String {
        self.segments.join("/")
    }
}

fn invalid(msg: &str) -> GatewayError {
    GatewayError::new(Reason::InvalidPath, msg.to_string())
}

/// Checks an artifact path given still percent-encoded (from the URL path).
pub fn from_url_path(raw: &str) -> Result<ArtifactPath, GatewayError> {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(invalid("artifact path contains an encoded slash"));
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("artifact path is not UTF-8"))?;
    from_decoded(&decoded)
}

/// Checks an artifact path that has already been decoded once (a query parameter).
pub fn from_decoded(path: &str) -> Result<ArtifactPath, GatewayError> {
    if path.is_empty() {
        return Err(invalid(
            "artifact path is required; listing the artifact root is refused",
        ));
    }
    if path.contains('%') {
        return Err(invalid("artifact path is encoded more than once"));
    }
    if path.contains('\\') || path.contains('#') || path.chars().any(char::is_control) {
        return Err(invalid("artifact path contains a forbidden character"));
    }
    if path.starts_with('/') {
        return Err(invalid("artifact path must be relative"));
    }
    let segments: Vec<String> = path.split('/').map(str::to_string).collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(invalid("artifact path has an empty, `.` or `..` segment"));
    }
    let workspace =
        match segments.as_slice() {
            [w, ws, _, ..] if w == "workspaces" => Some(ws.clone()),
            [w, ..] if w == "workspaces" => return Err(invalid(
                "artifact path `workspaces/<workspace>/…` must name a workspace and an experiment",
            )),
            _ => None,
        };
    let ap = ArtifactPath {
        segments,
        workspace,
    };
    if !ap.experiment_id().bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("artifact path must start with an experiment id"));
    }
    Ok(ap)
}

/// Checks the `path` of the proxied listing. For `list_artifacts(run_id, ".")` and
/// `download_artifacts(run_id=…, artifact_path=".")` the MLflow client lists
/// `<run's artifact root>/.`, and while downloading `<root>/./model`, … (it joins the run's
/// artifact URI and the relative path it was given); MLflow reads `.` as the root. Exactly
/// that case, one `.` segment right after `[workspaces/<ws>/]<experiment>/<run>/artifacts`, is
/// dropped; every other `.` or `..` segment is still refused.
pub fn listing_from_decoded(path: &str) -> Result<ArtifactPath, GatewayError> {
    let segments: Vec<&str> = path.split('/').collect();
    let root = if segments.first() == Some(&"workspaces") {
        5
    } else {
        3
    };
    if segments.len() > root && segments[root] == "." && segments[root - 1] == "artifacts" {
        let mut rest = segments.clone();
        rest.remove(root);
        return from_decoded(&rest.join("/"));
    }
    from_decoded(path)
}

/// A multipart-upload body `path` must be a bare file name.
pub fn check_file_name(name: &str) -> Result<(), GatewayError> {
    if name.is_empty()
        || name.contains(['/', '\\', '%', '#'])
        || name == "."
        || name == ".."
        || name.chars().any(char::is_control)
    {
        return Err(invalid("multipart `path` must be a bare file name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_accepted_and_reencoded() {
        let p = from_url_path("2/abc/artifacts/my%20file.txt").unwrap();
        assert_eq!(p.experiment_id(), "2");
        assert_eq!(p.segments[3], "my file.txt");
        assert_eq!(p.encoded(), "2/abc/artifacts/my%20file.txt");
    }

    #[test]
    fn ambiguous_encodings_refused() {
        for raw in [
            "%2532/r/artifacts/x",
            "%252532/r/artifacts/x",
            "2%2Fr/artifacts/x",
            "2%2fr/artifacts/x",
            "./2/r/x",
            "2/./r/x",
            "2/../3/r",
            "2//r",
            "",
            "/2/r",
            "2/r/x%",
            "2/r\\x",
            "2/r/a#b",
            "x/r/a",
            "%2e%2e/2/r",
            "workspaces",
            "workspaces/team-a",
            "workspaces/team-a/x/r",
            "workspaces//2/r",
        ] {
            assert!(from_url_path(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn a_dot_right_after_a_runs_artifact_root_names_the_root() {
        for (raw, root) in [
            ("2/abc/artifacts/.", "2/abc/artifacts"),
            ("2/abc/artifacts/./model", "2/abc/artifacts/model"),
            ("2/abc/artifacts/./model/sub", "2/abc/artifacts/model/sub"),
            (
                "workspaces/team-a/2/abc/artifacts/.",
                "workspaces/team-a/2/abc/artifacts",
            ),
            (
                "workspaces/team-a/2/abc/artifacts/./m",
                "workspaces/team-a/2/abc/artifacts/m",
            ),
        ] {
            assert_eq!(listing_from_decoded(raw), from_decoded(root), "{raw}");
            assert!(
                from_decoded(raw).is_err(),
                "{raw}: only the listing reads it so"
            );
        }
        for raw in [
            "2/abc/artifacts/model/.",
            "2/abc/artifacts/model/./x",
            "2/abc/artifacts/./.",
            "2/abc/artifacts/././x",
            "2/abc/artifacts/./..",
            "2/abc/artifacts/./../x",
            "2/abc/.",
            "2/./artifacts",
            "2/.",
            "2/abc/other/.",
            "2/abc/artifacts/..",
            "2/abc/artifacts//.",
            "2/abc/artifacts/.//x",
            "workspaces/team-a/.",
            "workspaces/team-a/2/abc/./x",
            "workspaces/./2/abc/artifacts/.",
            ".",
            "./2/abc/artifacts",
        ] {
            assert!(listing_from_decoded(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn workspace_rooted_paths_name_their_workspace_and_experiment() {
        let p = from_url_path("workspaces/team-a/2/abc/artifacts/f").unwrap();
        assert_eq!(p.workspace.as_deref(), Some("team-a"));
        assert_eq!(p.experiment_id(), "2");
        assert_eq!(p.within_workspace().len(), 4);
        assert_eq!(p.encoded(), "workspaces/team-a/2/abc/artifacts/f");
        assert_eq!(from_url_path("2/abc").unwrap().workspace, None);
    }

    #[test]
    fn file_names() {
        assert!(check_file_name("model.pkl").is_ok());
        for bad in ["", "a/b", "..", "a%2f", "a\\b"] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
    }
}
