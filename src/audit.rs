//! One JSON audit line per request, written once at the end whatever happened. The record has
//! no field that could hold a token or a header value: identity appears only as tenant,
//! subject and canonical roles.

use crate::error::Reason;
use serde::Serialize;

/// The audit line. Field meanings are documented in `docs/audit.md`.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct AuditRecord {
    pub ts: String,
    pub request_id: String,
    pub auth_mode: &'static str,
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub roles: Vec<&'static str>,
    pub method: String,
    pub path: String,
    pub route: Option<&'static str>,
    pub action: Option<&'static str>,
    pub decision: &'static str,
    pub reason: &'static str,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub duration_ms: u64,
    pub policy_version: &'static str,
    /// The MLflow workspace the request was pinned to (`tenant_isolation=workspace`); absent in
    /// `tag` mode and for requests refused before the workspace was settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Which credential identified the caller in oidc mode: `bearer` (an `Authorization`
    /// header) or `session` (the browser's sealed session cookie); never the credential itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'static str>,
    /// How the bearer token was accepted: `verified` (signature checked now) or `cached` (an
    /// earlier full check reused, `identity::token_cache`); absent without a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_check: Option<&'static str>,
    /// Rows of another tenant dropped from a search answer (a policy fault upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_fault: Option<String>,
    /// A grant change made through `/_gateway/v1/grants`: what, whose, old and new level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantChange>,
}

/// One grant change, as the audit line records it (`null`: no grant before, or revoked).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrantChange {
    pub resource: String,
    pub subject: String,
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
}

/// Longest path written to an audit line.
const MAX_PATH: usize = 512;

/// How a request ended, as the audit line records it (`decision`, `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded (or piped) to MLflow.
    Allowed,
    /// A health or readiness probe answered by the gateway itself.
    Health,
    /// A step of browser sign-in answered by the gateway itself (`/oauth2/*`).
    SignIn,
    /// Refused, or failed closed, for this reason.
    Denied(Reason),
    /// `enforcement=report`: forwarded although the policy refuses it for this reason.
    WouldDeny(Reason),
}

impl AuditRecord {
    /// Records the request's verdict: the only way `decision` and `reason` are set.
    pub fn record(&mut self, v: Verdict) {
        (self.decision, self.reason) = match v {
            Verdict::Allowed => ("allow", "allowed"),
            Verdict::Health => ("allow", "health"),
            Verdict::SignIn => ("allow", "sign_in"),
            Verdict::Denied(r) => ("deny", r.as_str()),
            Verdict::WouldDeny(r) => ("would_deny", r.as_str()),
        };
    }

    pub fn set_path(&mut self, path: &str) {
        let mut end = path.len().min(MAX_PATH);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        self.path = path[..end].to_string();
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"audit\":\"unserialisable\"}".into())
    }
}

/// Longest operator line (bytes, newline included): one write to the host's stderr stream
/// takes at most 4096 bytes, so a line under this leaves in one write and concurrent instances
/// cannot interleave inside it.
pub const MAX_LOG_LINE: usize = 4000;

/// One operator log line (stderr), newline included: JSON with `ts`, `level`, `request_id`,
/// `msg`. An overlong message is cut at a character boundary (marked `…`) until the line fits
/// `MAX_LOG_LINE`, escapes included.
pub fn operator_line(ts: &str, level: &str, request_id: &str, msg: &str) -> String {
    let mut cut = msg.len();
    loop {
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        let shown = if cut < msg.len() {
            format!("{}…", &msg[..cut])
        } else {
            msg.to_string()
        };
        let mut line =
            serde_json::json!({"ts": ts, "level": level, "request_id": request_id, "msg": shown})
                .to_string();
        line.push('\n');
        if line.len() <= MAX_LOG_LINE || cut == 0 {
            return line;
        }
        cut /= 2;
    }
}

/// RFC 3339 UTC timestamp with milliseconds, from Unix milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let ms = unix_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_lines_are_one_json_line_of_bounded_size() {
        let rid = "r".repeat(128);
        for msg in [
            "plain",
            "quote \" and\nnewline",
            &"é".repeat(5000),
            &"\u{1}".repeat(3000),
        ] {
            let line = operator_line("2026-01-01T00:00:00.000Z", "warn", &rid, msg);
            assert!(line.len() <= MAX_LOG_LINE, "{} bytes", line.len());
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
            assert_eq!(v["level"], "warn");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_305_600_123), "2026-11-22T00:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn line_has_every_field_and_no_token_field() {
        let mut r = AuditRecord {
            request_id: "r".into(),
            decision: "deny",
            reason: "rbac",
            ..Default::default()
        };
        r.set_path(&"/x".repeat(600));
        let v: serde_json::Value = serde_json::from_str(&r.to_line()).unwrap();
        for f in [
            "ts",
            "request_id",
            "auth_mode",
            "tenant",
            "subject",
            "roles",
            "method",
            "path",
            "route",
            "action",
            "decision",
            "reason",
            "status",
            "upstream_status",
            "duration_ms",
            "policy_version",
        ] {
            assert!(v.get(f).is_some(), "{f}");
        }
        assert_eq!(v["path"].as_str().unwrap().len(), 512);
        for f in ["token", "authorization"] {
            assert!(v.get(f).is_none());
        }
    }
}
