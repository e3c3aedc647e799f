"""Route inventory: every route of the installed (pinned) MLflow — Flask url_map and the native
FastAPI routers — must be either a row of the policy table or explicitly denied. A route the
gateway does not know at all (`route_not_allowed`) fails the test, so an MLflow upgrade can never
open or forget a route silently. Each route is sent through the real gateway and judged by its
audit line."""

import importlib
import json
import os
import re
import uuid
import warnings


from conftest import POLICY_TABLE, REPO, ROW_IDS, Caller

ROW_IDS = set(ROW_IDS)

# The MLflow this inventory is checked against: the pinned one (tests/e2e/requirements.txt) in
# the test command; scripts/check_versions.sh sets E2E_MLFLOW_VERSION to run it against another.
EXPECTED_MLFLOW_VERSION = os.environ.get("E2E_MLFLOW_VERSION", "3.17.2")

# MLflow's native FastAPI routers (module, attribute). One that an older MLflow lacks is listed
# by `missing_routers()` (and fails test_inventory_is_the_pinned_mlflow); its rows then match no
# route.
ROUTERS = [("mlflow.server.otel_api", "otel_router"), ("mlflow.server.job_api", "job_api_router"),
           ("mlflow.server.gateway_api", "gateway_router"),
           ("mlflow.server.assistant.api", "assistant_router"),
           ("mlflow.server.artifact_router", "artifact_router"),
           ("mlflow.server.server_info_api", "server_info_router")]
MCP_ROUTER = ("mlflow.server.mcp_server_api", "mcp_server_router")


def _router(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def missing_routers() -> list[str]:
    warnings.filterwarnings("ignore")
    return [f"{m}.{n}" for m, n in ROUTERS + [MCP_ROUTER] if _router(m, n) is None]


def mlflow_routes() -> list[tuple[str, str]]:
    warnings.filterwarnings("ignore")
    from mlflow.server import app

    routes = set()
    for r in app.url_map.iter_rules():
        for m in r.methods - {"HEAD", "OPTIONS"}:
            routes.add((m, r.rule))

    def add(router, prefix=""):
        for r in router.routes:
            for m in (getattr(r, "methods", None) or set()) - {"HEAD", "OPTIONS"}:
                routes.add((m, (prefix + r.path).replace("{", "<").replace("}", ">")))

    for module, name in ROUTERS:
        if (router := _router(module, name)) is not None:
            add(router)
    if (mcp := _router(*MCP_ROUTER)) is not None:
        for prefix in importlib.import_module(MCP_ROUTER[0]).get_mcp_server_api_route_prefixes():
            add(mcp, prefix)
    return sorted(routes, key=lambda x: (x[1], x[0]))


def mlflow_version() -> str:
    import mlflow

    return mlflow.__version__


def concrete(rule: str) -> str:
    """A request path for a route rule: path parameters get harmless sample values."""
    def sub(m):
        conv, name = (m.group(1) or ""), m.group(2)
        if conv.startswith("path") or name == "path":
            return "1/0123456789abcdef0123456789abcdef/artifacts/f.txt"
        return "x1"
    return re.sub(r"<(?:([a-z]+):)?([A-Za-z_]+)>", sub, rule)


def test_inventory_is_the_pinned_mlflow():
    import mlflow

    assert mlflow.__version__ == EXPECTED_MLFLOW_VERSION
    assert not missing_routers(), f"MLflow routers this MLflow does not have: {missing_routers()}"
    assert len(mlflow_routes()) > 400


def test_every_mlflow_route_is_a_row_or_explicitly_denied(gw):
    # A tenant that owns nothing: allowed rows stop at ownership checks or MLflow's validation.
    caller = Caller(gw, tenant="inventory-probe")
    unknown, seen_rows = [], set()
    for method, rule in mlflow_routes():
        rid = "inv-" + uuid.uuid4().hex
        path = concrete(rule)
        kw = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        caller.request(method, path, headers={"X-Request-ID": rid}, **kw)
        line = gw.audit_for(rid)[0]
        if line["route"] in ROW_IDS:
            seen_rows.add(line["route"])
        elif line["reason"] == "invalid_path" and rule.endswith("/"):
            pass  # trailing-slash routes are refused as ambiguous paths before routing
        elif line["reason"] != "route_denied":
            unknown.append(f"{method} {rule} -> {line['reason']}")
    # Stale rows: every row must correspond to a route MLflow actually has.
    stale = sorted(ROW_IDS - seen_rows)
    if os.environ.get("E2E_INVENTORY_REPORT"):  # read by scripts/check_versions.sh
        with open(os.environ["E2E_INVENTORY_REPORT"], "w") as f:
            json.dump({"mlflow_version": mlflow_version(), "unknown_routes": unknown,
                       "rows_matching_no_route": stale, "missing_routers": missing_routers()}, f,
                      indent=1)
    assert not unknown and not stale, "\n".join(
        (["MLflow routes with neither a policy row nor an explicit deny:", *unknown] if unknown else [])
        + ([f"rows matching no MLflow route: {stale}"] if stale else []))


def test_tag_writing_routes_file_is_the_pinned_mlflow():
    """`tests/data/tag_writing_routes.json` (read by the Rust test that every tag-writing row goes
    through the protected-tag guard) lists exactly the installed MLflow's routes with tags."""
    import json

    from mlflow_tag_routes import tag_writing_routes

    listed = json.loads((REPO / "tests/data/tag_writing_routes.json").read_text())
    assert listed == tag_writing_routes(), (
        "MLflow's tag-writing routes changed: refresh tests/data/tag_writing_routes.json with "
        "`python tests/e2e/mlflow_tag_routes.py` and give every new route a guarded row")


MOUNTS = ["/api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/2.0/mlflow/", "/ajax-api/3.0/mlflow/",
          "/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/", "/"]


def stale_deny_families() -> list[str]:
    rests = {concrete(rule)[len(m):] for _, rule in mlflow_routes() for m in MOUNTS
             if concrete(rule).startswith(m)}
    return [f["prefix"] for f in POLICY_TABLE["denied_families"]
            if not any(r.startswith(f["prefix"]) for r in rests)]


def test_every_denied_family_still_names_an_mlflow_route():
    """A deny family that matches no route of the installed MLflow is stale: it would silently
    refuse a future route that happens to share its prefix, instead of leaving it to the
    inventory test."""
    stale = stale_deny_families()
    assert not stale, f"deny families matching no MLflow route: {stale}"


if __name__ == "__main__":
    # The installed MLflow's routes as JSON (scripts/check_versions.sh compares two MLflows).
    print(json.dumps({"mlflow_version": mlflow_version(), "missing_routers": missing_routers(),
                      "stale_deny_families": stale_deny_families(),
                      "routes": [f"{m} {r}" for m, r in mlflow_routes()]}, indent=1))
