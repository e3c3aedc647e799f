"""Which tests run where: the representative slice rerun under Spin 3.6.3 and on Redis
(marker `spin_slice`, with `fixed_kv` for slice tests that bring their own store), and the tests
whose outcome cannot depend on the isolation mode (marker `mode_independent`, run in the first
mode only: the rule is in the package docstring). Both lists name modules and test functions; a
name that no longer exists in a collected module is an error, so neither list can shrink (or
grow) silently."""

from __future__ import annotations

import pytest

from .run import POLICY_TABLE

# ---------------------------------------------------------------- the Spin 3 / Redis slice
# (issue 23) The representative slice scripts/test.sh reruns under Spin 3.6.3 and on Redis
# (`pytest -m spin_slice`): module -> test functions (None: the whole module). A name that no
# longer exists in a collected module is an error, so the slice cannot shrink silently.
SPIN_SLICE: dict[str, tuple[str, ...] | None] = {
    # dev mode end to end with the real client, audit, upstream faults, the demo script
    "test_skeleton.py": None,
    # OIDC: the client with a token, each signature family, refusals, and the key-value
    # dependent paths (JWKS and verified tokens cached in the store, IdP outage, cold cache)
    "test_oidc.py": (
        "test_client_with_tracking_token_and_tenant_isolation",
        "test_each_algorithm_verifies_in_the_component",
        "test_missing_and_bad_tokens_are_401_with_reason",
        "test_key_rotation_and_refresh_rate_limit",
        "test_verified_token_cache_never_outlives_token_or_key",
        "test_keys_live_in_kv_idp_outage_and_cold_cache",
    ),
    # one owner/other case per strategy family: chosen below from the policy table
    "test_policy_rows.py": ("test_every_row_has_a_case",),
    # the realistic session with the real MLflow client (params, metrics, artifacts, a model)
    "test_client_session.py": None,
    # Redis killed mid-run and restarted: fail closed, then recover (always on Redis). The
    # frozen-Redis and stopped-Redis tests (test_hostile.py, test_oidc.py) stay in the first
    # stage only: this one covers the same client code (redis-rs 0.32.5 in Spin 3.6.3 and 4.0.2).
    "test_kv_redis.py": None,
    # the runtime configs the Compose and SpinKube manifests mount, loaded by `spin up`
    "test_spinkube_parity.py": None,
    # workspace mode (the stage runs in the default mode, workspace): provisioning with the
    # fact in the store, pinning, the workspace API
    # rate limits counted with atomic increments (on Redis in the Spin 3 stage)
    "test_ratelimit.py": ("test_over_the_limit_is_429_with_retry_after",),
    "test_workspaces.py": (
        "test_a_client_chosen_workspace_selects_but_never_opens_another_tenants_data",
        "test_the_workspace_api_shows_only_the_own_workspace",
    ),
    # browser sign-in: the code exchange, the sealed cookie, the CSRF rule and a refresh at the
    # real oidc-provider (Set-Cookie and redirects through Spin 3's HTTP trigger)
    "test_signin.py": (
        "test_callback_sets_the_session_and_returns_to_rd",
        "test_csrf_cross_origin_post_refused_same_origin_allowed",
        "test_refresh_renews_the_session",
    ),
}


# Slice tests that bring their own key-value store (an explicit Redis or runtime config), so
# E2E_KV does not change them: marked fixed_kv (`-m "spin_slice and not fixed_kv"` is the slice
# for a run that only changes the store).
FIXED_KV: dict[str, tuple[str, ...] | None] = {
    "test_kv_redis.py": None,
    "test_spinkube_parity.py": None,
}


def slice_policy_rows() -> set[str]:
    """The first row (by id) of each strategy family in the policy table."""
    first: dict[str, str] = {}
    for row in sorted(POLICY_TABLE["rows"], key=lambda r: r["id"]):
        first.setdefault(row["strategy"], row["id"])
    return set(first.values())


# Tests whose outcome cannot depend on the isolation mode (the rule is in the package docstring):
# marked mode_independent, run in the first mode only (scripts/test.sh: `-m "not
# mode_independent"` in the second). module -> test functions (None: the whole module).
MODE_INDEPENDENT: dict[str, tuple[str, ...] | None] = {
    # files only: the manifests, the docs, spin.toml
    "test_manifests.py": None,
    # the installed MLflow's routes and the policy table, no gateway
    "test_route_inventory.py": (
        "test_inventory_is_the_pinned_mlflow",
        "test_tag_writing_routes_file_is_the_pinned_mlflow",
        "test_every_denied_family_still_names_an_mlflow_route",
    ),
    # refused by the route table, or for a configuration error, before anything reaches MLflow
    "test_skeleton.py": (
        "test_unknown_routes_refused_and_never_reach_mlflow",
        "test_oidc_mode_without_issuer_never_allows",
    ),
    # refused at identity (tokens, identity headers, the tenant claim) or a configuration error
    "test_oidc.py": (
        "test_missing_and_bad_tokens_are_401_with_reason",
        "test_identity_headers_refused_in_oidc_mode",
        "test_tenant_claim_must_be_valid",
        "test_jwks_uri_outside_idp_origin_is_a_config_error",
    ),
    # the sign-in endpoints and session refusals at identity; not the tests whose refusals the
    # module's last test counts (tampered cookie, CSRF, sign-out)
    "test_signin.py": (
        "test_api_without_credentials_is_401_json_even_for_navigation",
        "test_navigation_without_credentials_goes_to_sign_in",
        "test_userinfo_without_credentials_is_401",
        "test_sign_in_sends_the_browser_to_the_idp_with_pkce",
        "test_rd_off_origin_is_refused_without_redirect",
        "test_rd_unencoded_backslash_and_slashes_are_refused",
        "test_rd_same_origin_path_is_kept",
        "test_bad_or_missing_state_is_refused",
        "test_replayed_code_is_refused",
        "test_idp_error_is_refused",
        "test_wrong_nonce_is_refused",
        "test_wrong_pkce_is_refused",
        "test_session_expires_after_session_max_seconds",
        "test_refresh_refused_ends_the_session",
    ),
    # refused by the IdP: the auth plugin never reaches the gateway
    "test_machines.py": ("test_wrong_secret_is_a_clear_error",),
    # the grants endpoint's input is refused before the workspace step; the coverage check reads
    # the policy table only
    "test_grants.py": (
        "test_the_grants_endpoint_takes_strict_input",
        "test_every_experiment_and_registry_row_has_a_grant_case",
    ),
    # scripts/up.sh runs its own MLflow, IdP and gateway in its own mode (workspace)
    "test_quickstart.py": None,
    # gateways pinned to tenant_isolation=tag; refused at identity, or MLflow unreachable
    "test_misconfiguration.py": None,
}

MARKERS = {
    "spin_slice": "the representative slice rerun under Spin 3.6.3 and on Redis "
                  "(tests/e2e/harness/selection.py SPIN_SLICE)",
    "fixed_kv": "a slice test with its own key-value store, unchanged by E2E_KV",
    "mode_independent": "a test whose outcome cannot depend on E2E_ISOLATION, run in one mode "
                        "only (tests/e2e/harness/selection.py MODE_INDEPENDENT)",
}


def configure(config):
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def _listed(table: dict[str, tuple[str, ...] | None], module: str, name: str) -> bool:
    return module in table and (table[module] is None or name in table[module])


def mark(config, items):
    """Adds the markers to the collected items (before `-m` selects); refuses lists naming tests
    that do not exist and a mode-independent test that asks for the isolation mode."""
    rows = slice_policy_rows()
    seen: dict[str, set[str]] = {}
    for item in items:
        module = item.path.name
        name = getattr(item, "originalname", item.name)
        seen.setdefault(module, set()).add(name)
        row = getattr(item, "callspec", None) and item.callspec.params.get("row_id")
        if _listed(SPIN_SLICE, module, name) or (
                module in SPIN_SLICE and name == "test_row_owner_allowed_other_refused" and row in rows):
            item.add_marker(pytest.mark.spin_slice)
            if _listed(FIXED_KV, module, name):
                item.add_marker(pytest.mark.fixed_kv)
        if _listed(MODE_INDEPENDENT, module, name):
            if "isolation" in getattr(item, "fixturenames", ()):
                raise pytest.UsageError(f"{module}::{name} uses the isolation fixture: it cannot be "
                                        "mode_independent")
            item.add_marker(pytest.mark.mode_independent)
    if config.getoption("keyword"):
        return
    for module, names in seen.items():
        for label, table in (("SPIN_SLICE", SPIN_SLICE), ("MODE_INDEPENDENT", MODE_INDEPENDENT)):
            missing = set(table.get(module) or ()) - names
            if missing:
                raise pytest.UsageError(f"{label} names tests that {module} no longer has: {sorted(missing)}")
