"""Report-only mode (issue 22, `enforcement=report`): a phased rollout. The gateway forwards
what it would refuse for authorization reasons and audits it as `would_deny` with the reason;
protected-tag refusals stay enforced; `enforce` (the default) refuses the same request. In
workspace mode a forwarded cross-tenant read still lands in the caller's own workspace, where
MLflow itself answers 404: report mode cannot undo store-level isolation."""

import uuid

from conftest import Caller, Gateway

R2 = "/api/2.0/mlflow"


def test_report_mode_forwards_would_deny_and_enforce_refuses(workdir, mlflow_server, gw, isolation):
    report = Gateway(workdir / "gw-report", mlflow_server.url,
                     {"auth_mode": "off", "enforcement": "report"}).start()
    try:
        a = Caller(report, tenant="team-a", subject="alice")
        r = a.post(f"{R2}/experiments/create", {"name": f"report-{uuid.uuid4().hex[:8]}"})
        assert r.status_code == 200, r.text
        exp = r.json()["experiment_id"]
        assert report.audit_lines()[-1]["decision"] == "allow"

        # Another tenant's read: forwarded, audited as what enforce would have refused.
        rid = "report-" + uuid.uuid4().hex
        r = Caller(report, tenant="team-b", subject="bob").get(
            f"{R2}/experiments/get", params={"experiment_id": exp}, headers={"X-Request-ID": rid})
        line = report.audit_for(rid)[0]
        # (In workspace mode the gateway's own pre-flight, pinned to team-b's workspace, finds
        # no such experiment: the reason it would give is `resource_not_found`.)
        reason = "tenant_mismatch" if isolation == "tag" else "resource_not_found"
        assert (line["decision"], line["reason"], line["tenant"]) == ("would_deny", reason, "team-b")
        if isolation == "tag":
            assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == exp, r.text
        else:
            # Pinned to team-b's workspace: MLflow answers the foreign id as absent.
            assert r.status_code == 404 and line["upstream_status"] == 404, r.text
        assert "enforcement=report" in report.log_text()

        # No credentials at all: forwarded too, and the audit line says so.
        rid = "report-anon-" + uuid.uuid4().hex
        r = Caller(report).get(f"{R2}/experiments/search", params={"max_results": 5},
                               headers={"X-Request-ID": rid})
        assert r.status_code == 200, r.text
        line = report.audit_for(rid)[0]
        assert (line["decision"], line["reason"], line["tenant"]) == ("would_deny", "tenant_header_missing", None)

        # Protected tags stay enforced in report mode.
        r = a.post(f"{R2}/experiments/set-experiment-tag",
                   {"experiment_id": exp, "key": "tenant", "value": "team-b"})
        assert r.status_code == 403 and "reserved" in r.json()["message"], r.text
        assert report.audit_lines()[-1]["decision"] == "deny"
        assert Caller(report).get("/readyz").json()["enforcement"] == "report"

        # enforce (the module's gateway, default settings): the same read is refused.
        r = Caller(gw, tenant="team-b").get(f"{R2}/experiments/get", params={"experiment_id": exp})
        assert r.status_code == 403, r.text
    finally:
        report.stop()
