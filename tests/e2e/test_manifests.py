"""Static checks of the deployment files against spin.toml and against each other: no Docker
engine or Kubernetes cluster is needed, and each test fails when an invariant breaks.

* runtime-compose.yml: only the gateway and Keycloak publish ports; pinned images; healthchecks;
  `depends_on` with conditions; every SPIN_VARIABLE_* is declared in spin.toml; MLflow accepts
  the Host the gateway sends; the Keycloak realm's roles and claims match the gateway's settings.
* deploy/spinkube/: SpinApp variables declared in spin.toml (and every required one set);
  pinned image; executor; key-value store labels; Secret keys; probes; the NetworkPolicy selects
  the MLflow pods and admits only the SpinApp's pods; the Ingress targets the SpinApp's Service.
* Issue 22 item 4 (manifests that deploy today): no image from a repository known to be gone
  (Docker Hub's minio/*, bitnami/*); subject_claim=preferred_username in Compose and SpinKube;
  the realm's groups and `roles`/`groups` mappers; deploy/spinkube/redis.yaml's Redis requires
  the password the gateway's URLs carry and admits only the gateway's pods; the HTTPRoute
  example targets the SpinApp's Service and sets no total-request timeout.
* spin.toml itself, docs/configuration.md and README.md: every variable has a default or is
  required, reaches the component, and is documented with its default.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import tomllib
from urllib.parse import urlsplit

import yaml

from conftest import REPO

COMPOSE = REPO / "runtime-compose.yml"
SPINKUBE = REPO / "deploy" / "spinkube"
REALM = REPO / "deploy" / "keycloak" / "realm-mlflow.json"
COMPONENT = "gateway"

# Services of the compose stack that must never be reachable from the host.
PRIVATE_SERVICES = ("mlflow", "postgres", "minio", "minio-init")
HEALTHCHECKED = ("mlflow", "postgres", "minio", "keycloak", "gateway")
COMPOSE_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# ------------------------------------------------------------------ loaders

def spin_manifest() -> dict:
    return tomllib.loads((REPO / "spin.toml").read_text())


def spin_variables() -> dict[str, dict]:
    return spin_manifest().get("variables", {})


def compose() -> dict:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), "no services"
    return doc


def service(name: str) -> dict:
    services = compose()["services"]
    assert name in services, f"runtime-compose.yml has no `{name}` service"
    return services[name]


def env_of(svc: dict) -> dict[str, str]:
    """A service's `environment`, in either of Compose's two forms."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def yaml_docs(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(path: pathlib.Path, kind: str) -> dict:
    found = [d for d in yaml_docs(path) if d.get("kind") == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def spinapp() -> dict:
    app = one(SPINKUBE / "spinapp.yaml", "SpinApp")
    assert app.get("apiVersion") == "core.spinkube.dev/v1alpha1"
    return app


def spinapp_vars() -> list[dict]:
    return spinapp()["spec"].get("variables") or []


def spinapp_value(name: str) -> str:
    """A SpinApp variable given as a literal `value` (not from a Secret)."""
    entries = [v for v in spinapp_vars() if v["name"] == name]
    assert len(entries) == 1 and "value" in entries[0], f"SpinApp must set {name} as a value"
    return str(entries[0]["value"])


def documented_settings() -> dict[str, str]:
    """The settings given as lines of `settings`, with their defaults (docs/configuration.md,
    generated from src/config.rs and checked there)."""
    md = (REPO / "docs" / "configuration.md").read_text()
    part = md.split("<!-- BEGIN SETTINGS")[1].split("<!-- END SETTINGS -->")[0]
    return {name: cells[0].strip("`").replace("*(empty)*", "") for name, cells in table_rows(part).items()}


def settings_of(text: str) -> dict[str, str]:
    """A `settings` value: `name = value` lines (or `;`-separated), `#` comments."""
    out = {}
    for entry in re.split(r"[\n;]", text):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        name, eq, value = entry.partition("=")
        assert eq, f"settings entry without `=`: {entry!r}"
        assert name.strip() not in out, f"setting {name.strip()} given twice"
        out[name.strip()] = value.strip()
    return out


def compose_setting(name: str) -> str:
    """A setting of the Compose gateway: its variable, or its line of `settings` (else its
    default)."""
    env = env_of(service("gateway"))
    if name in spin_variables():
        return env[f"SPIN_VARIABLE_{name.upper()}"]
    return settings_of(env.get("SPIN_VARIABLE_SETTINGS", "")).get(name, documented_settings()[name])


def spinapp_setting(name: str) -> str:
    """A setting of the SpinApp: its variable (a literal value), or its line of `settings`."""
    if name in spin_variables():
        return spinapp_value(name)
    return settings_of(spinapp_value("settings")).get(name, documented_settings()[name])


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None when it has none (a port is not a tag)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def authority(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.netloc, url
    return parts.netloc


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def compose_default(value: str) -> str:
    """A Compose value with every `${NAME:-default}` (nested too) replaced by its default, as
    Compose v2 reads it when NAME is unset."""
    pattern = re.compile(r"\$\{[A-Z_][A-Z0-9_]*:-([^${}]*)\}")
    while pattern.search(value):
        value = pattern.sub(lambda m: m.group(1), value)
    return value


def test_compose_ports_and_redirect_url_come_from_the_environment():
    services = compose()["services"]
    assert services["gateway"]["ports"] == ["127.0.0.1:${GATEWAY_PORT:-3000}:3000"]
    assert services["keycloak"]["ports"] == ["127.0.0.1:${KEYCLOAK_PORT:-8080}:8080"]
    cb = env_of(services["gateway"])["SPIN_VARIABLE_OIDC_REDIRECT_URL"]
    assert cb == "${OIDC_REDIRECT_URL:-http://localhost:${GATEWAY_PORT:-3000}/oauth2/callback}"
    assert compose_default(cb) == "http://localhost:3000/oauth2/callback"
    assert "Compose v2" in COMPOSE.read_text()


def published_container_ports(svc: dict) -> set[int]:
    out = set()
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.add(int(p["target"]))
        else:
            out.add(int(str(p).split("/")[0].rsplit(":", 1)[-1]))
    return out


def template_names(text: str) -> list[str]:
    return [m.strip() for m in re.findall(r"\{\{(.*?)\}\}", text)]


# ------------------------------------------------------------------ runtime-compose.yml

def test_compose_parses_with_every_service():
    services = compose()["services"]
    for name in ("postgres", "minio", "minio-init", "mlflow", "keycloak", "gateway"):
        assert name in services, name


def test_compose_publishes_only_the_gateway_and_keycloak():
    services = compose()["services"]
    for name in PRIVATE_SERVICES:
        svc = services[name]
        assert "ports" not in svc, f"{name} must not publish ports: the gateway is the only way in"
        assert svc.get("network_mode") != "host", f"{name} must not use the host network"
    assert 3000 in published_container_ports(services["gateway"])
    assert 8080 in published_container_ports(services["keycloak"])
    published = {n for n, s in services.items() if s.get("ports")}
    assert published == {"gateway", "keycloak"}, published
    assert not [n for n, s in services.items() if s.get("network_mode") == "host"]


def test_compose_images_are_pinned_by_tag():
    for name, svc in compose()["services"].items():
        image = svc.get("image")
        assert image, f"{name} has no image (builds are not allowed here)"
        tag = image_tag(image)
        assert tag, f"{name}: image {image} has no explicit tag"
        assert tag != "latest", f"{name}: image {image} uses latest"
        assert "$" not in image, f"{name}: image {image} is interpolated"


def test_compose_depends_on_always_names_a_condition():
    for name, svc in compose()["services"].items():
        deps = svc.get("depends_on")
        if deps is None:
            continue
        assert isinstance(deps, dict), f"{name}: depends_on must use the long form with conditions"
        for dep, spec in deps.items():
            assert isinstance(spec, dict) and spec.get("condition") in COMPOSE_CONDITIONS, (
                f"{name} -> {dep}: depends_on needs a condition")
            assert dep in compose()["services"], f"{name} depends on unknown {dep}"
    assert service("mlflow")["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service("mlflow")["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert service("gateway")["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert service("gateway")["depends_on"]["keycloak"]["condition"] == "service_healthy"


def test_compose_services_have_healthchecks():
    for name in HEALTHCHECKED:
        hc = service(name).get("healthcheck")
        assert hc and not hc.get("disable") and hc.get("test"), f"{name} needs a healthcheck"
        assert hc["test"] not in (["NONE"], "NONE"), name


def test_compose_gateway_variables_are_declared_in_spin_toml():
    declared = spin_variables()
    env = env_of(service("gateway"))
    names = [k for k in env if k.startswith("SPIN_VARIABLE_")]
    assert names, "the gateway sets no SPIN_VARIABLE_*"
    for key in names:
        var = key.removeprefix("SPIN_VARIABLE_").lower()
        assert var in declared, f"{key} sets `{var}`, which spin.toml does not declare"
    assert env["SPIN_VARIABLE_AUTH_MODE"] == "oidc"
    unknown = set(settings_of(env.get("SPIN_VARIABLE_SETTINGS", ""))) - set(documented_settings())
    assert not unknown, f"SPIN_VARIABLE_SETTINGS names settings that do not exist: {unknown}"


def test_compose_gateway_runs_the_built_component_with_a_runtime_config():
    gw = service("gateway")
    source = spin_manifest()["component"][COMPONENT]["source"]
    mounts = [str(v).split(":") for v in gw.get("volumes") or []]
    by_target = {m[1]: m[0] for m in mounts if len(m) >= 2}
    manifest_targets = [t for t, s in by_target.items() if s == "./spin.toml"]
    assert len(manifest_targets) == 1, "spin.toml must be mounted once"
    app_dir = pathlib.PurePosixPath(manifest_targets[0]).parent
    assert by_target.get(str(app_dir / source)) == f"./{source}", (
        f"the component must be mounted where spin.toml's source points: {app_dir / source}")
    cmd = [str(c) for c in gw["command"]]
    assert cmd[0] == "up" or cmd[:2] == ["spin", "up"], cmd
    assert cmd[cmd.index("--listen") + 1] == "0.0.0.0:3000"
    assert cmd[cmd.index("-f") + 1] == manifest_targets[0]
    rc_target = cmd[cmd.index("--runtime-config-file") + 1]
    rc_source = by_target.get(rc_target)
    assert rc_source == "./deploy/compose/runtime-config.toml", rc_source
    rc = tomllib.loads((REPO / rc_source).read_text())
    store = rc["key_value_store"]["default"]
    assert store["type"] == "spin"
    volume_targets = [t for t, s in by_target.items() if not s.startswith(".")]
    assert any(store["path"].startswith(t.rstrip("/") + "/") for t in volume_targets), (
        f"the KV file {store['path']} must live on a volume")


def test_compose_mlflow_accepts_the_gateway_host_and_origins_are_consistent():
    env = env_of(service("gateway"))
    upstream = env["SPIN_VARIABLE_UPSTREAM_ORIGIN"]
    assert origin(compose_setting("target_base_url") or upstream) == upstream
    allowed = env_of(service("mlflow"))["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert authority(upstream) in allowed, (
        f"MLflow would answer 403 Invalid Host header to the gateway's {authority(upstream)}")
    host = urlsplit(upstream).hostname
    assert host in compose()["services"], f"upstream {host} is not a compose service"
    # Discovery needs the issuer inside idp_origin.
    issuer, idp = env["SPIN_VARIABLE_OIDC_ISSUER"], env["SPIN_VARIABLE_IDP_ORIGIN"]
    assert origin(issuer) == idp, (issuer, idp)
    assert urlsplit(idp).hostname in compose()["services"]
    # Keycloak's frontend URL (the token issuer) is the origin the gateway expects.
    kc_hostname = env_of(service("keycloak")).get("KC_HOSTNAME")
    assert kc_hostname and origin(kc_hostname) == idp, kc_hostname
    cmd = " ".join(str(c) for c in service("mlflow")["command"])
    assert "--artifacts-destination" in cmd and "--static-prefix" not in cmd
    assert "--app-name" not in cmd


def test_keycloak_realm_matches_the_gateway_settings():
    realm = json.loads(REALM.read_text())
    env = env_of(service("gateway"))
    assert env["SPIN_VARIABLE_OIDC_ISSUER"].endswith("/realms/" + realm["realm"])
    audience = env["SPIN_VARIABLE_OIDC_AUDIENCE"]
    clients = {c["clientId"]: c for c in realm["clients"]}
    client = clients[audience]
    assert client["directAccessGrantsEnabled"] is True
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    aud = mappers["oidc-audience-mapper"]
    assert aud["included.client.audience"] == audience and aud["access.token.claim"] == "true"
    attr = mappers["oidc-usermodel-attribute-mapper"]
    tenant_claim = compose_setting("tenant_claim")
    assert attr["claim.name"] == tenant_claim and attr["access.token.claim"] == "true"
    assert attr["jsonType.label"] == "String" and attr["multivalued"] == "false"
    # Client roles land in resource_access.<client>.roles, which the gateway must read.
    role_paths = [p.strip() for p in compose_setting("role_claim").split(",")]
    assert f"resource_access.{audience}.roles" in role_paths
    aliases = dict(pair.split("=", 1) for pair in compose_setting("role_aliases").split(","))
    client_roles = {r["name"] for r in realm["roles"]["client"][audience]}
    assert client_roles == set(aliases), (client_roles, aliases)
    users = {u["username"]: u for u in realm["users"]}
    expected = {"alice": ("team-a", "admin"), "anna": ("team-a", "viewer"),
                "bob": ("team-b", "editor"), "bert": ("team-b", "viewer")}
    for name, (tenant, role) in expected.items():
        u = users[name]
        assert u["attributes"][attr["user.attribute"]] == [tenant], name
        assert [aliases[r] for r in u["clientRoles"][audience]] == [role], name
        assert u["credentials"][0]["value"].endswith("demo-only-password"), name


# ------------------------------------------------------------------ deploy/spinkube

def test_spinapp_variables_are_declared_in_spin_toml():
    declared = spin_variables()
    names = [v["name"] for v in spinapp_vars()]
    assert names, "the SpinApp sets no variables"
    assert len(names) == len(set(names)), "a variable is set twice"
    for entry in spinapp_vars():
        assert entry["name"] in declared, f"SpinApp sets undeclared variable {entry['name']}"
        assert ("value" in entry) != ("valueFrom" in entry), entry["name"]
    unknown = set(settings_of(spinapp_value("settings"))) - set(documented_settings())
    assert not unknown, f"the SpinApp's settings name settings that do not exist: {unknown}"


def test_spinapp_sets_every_required_variable():
    required = [n for n, spec in spin_variables().items() if spec.get("required") is True]
    names = {v["name"] for v in spinapp_vars()}
    missing = [n for n in required if n not in names]
    assert not missing, f"spin.toml requires {missing}; the SpinApp does not set them"


def test_spinapp_image_executor_and_replicas():
    app = spinapp()
    spec = app["spec"]
    tag = image_tag(spec["image"])
    assert tag and tag != "latest", spec["image"]
    assert spec["executor"] == "containerd-shim-spin"
    assert spec.get("replicas", 1) >= 2 or spec.get("enableAutoscaling") is True
    # The operator looks the executor up in the SpinApp's own namespace.
    executor = one(SPINKUBE / "executor.yaml", "SpinAppExecutor")
    assert executor["metadata"]["name"] == spec["executor"]
    assert executor["metadata"]["namespace"] == app["metadata"]["namespace"]
    config = executor["spec"]["deploymentConfig"]
    assert config["runtimeClassName"] and "spinImage" not in config


def test_spinapp_key_value_store_is_the_components_and_shared():
    granted = spin_manifest()["component"][COMPONENT].get("key_value_stores", [])
    stores = spinapp()["spec"]["runtimeConfig"]["keyValueStores"]
    for store in stores:
        assert store["name"] in granted, f"store {store['name']} is not granted in spin.toml"
    default = [s for s in stores if s["name"] == "default"]
    assert default and default[0]["type"] == "redis", "replicas must share a Redis store"


def test_spinapp_secret_references_exist():
    secret = one(SPINKUBE / "secret.yaml", "Secret")
    app = spinapp()
    assert secret["metadata"]["namespace"] == app["metadata"]["namespace"]
    keys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
    refs = [v["valueFrom"]["secretKeyRef"] for v in spinapp_vars() if "valueFrom" in v]
    for store in app["spec"]["runtimeConfig"]["keyValueStores"]:
        refs += [o["valueFrom"]["secretKeyRef"] for o in store.get("options", []) if "valueFrom" in o]
    assert {"oidc_issuer", "idp_origin"} <= {v["name"] for v in spinapp_vars() if "valueFrom" in v}
    for ref in refs:
        assert ref["name"] == secret["metadata"]["name"], ref
        assert ref["key"] in keys, f"Secret {secret['metadata']['name']} has no key {ref['key']}"


def test_spinapp_probes():
    checks = spinapp()["spec"]["checks"]
    assert checks["readiness"]["httpGet"]["path"] == "/readyz"
    assert checks["liveness"]["httpGet"]["path"] == "/healthz"


def test_spinapp_upstream_is_the_mlflow_service_and_mlflow_accepts_its_host():
    upstream = spinapp_value("upstream_origin")
    assert origin(spinapp_setting("target_base_url") or upstream) == upstream
    svc = one(SPINKUBE / "mlflow-service.yaml", "Service")
    dep = one(SPINKUBE / "mlflow-service.yaml", "Deployment")
    host, port = urlsplit(upstream).hostname, urlsplit(upstream).port
    ns = svc["metadata"]["namespace"]
    assert host in (svc["metadata"]["name"] + f".{ns}.svc.cluster.local",
                    svc["metadata"]["name"] + f".{ns}.svc", svc["metadata"]["name"] + f".{ns}")
    assert port in [p["port"] for p in svc["spec"]["ports"]]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    assert authority(upstream) in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(","), (
        "MLflow would answer 403 Invalid Host header to the gateway")
    args = " ".join(container.get("command", []) + container.get("args", []))
    assert "--artifacts-destination" in args and "--static-prefix" not in args
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_networkpolicy_selects_mlflow_and_admits_only_the_gateway():
    pol = one(SPINKUBE / "networkpolicy.yaml", "NetworkPolicy")
    dep = one(SPINKUBE / "mlflow-service.yaml", "Deployment")
    app = spinapp()
    spec = pol["spec"]
    assert pol["metadata"]["namespace"] == dep["metadata"]["namespace"]
    selector = spec["podSelector"]["matchLabels"]
    assert selector, "an empty podSelector would select every pod of the namespace"
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items(), (selector, pod_labels)
    assert "Ingress" in spec["policyTypes"]
    port = dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert len(spec["ingress"]) == 1
    rule = spec["ingress"][0]
    assert [p["port"] for p in rule["ports"]] == [port]
    assert len(rule["from"]) == 1, "one peer entry: namespace AND pod selector together"
    peer = rule["from"][0]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": app["metadata"]["namespace"]}
    assert peer["podSelector"]["matchLabels"] == {
        "core.spinkube.dev/app-name": app["metadata"]["name"]}


def test_ingress_targets_the_spinapp_service_with_tls():
    ing = one(SPINKUBE / "ingress.yaml", "Ingress")
    app = spinapp()
    assert ing["apiVersion"] == "networking.k8s.io/v1"
    assert ing["metadata"]["namespace"] == app["metadata"]["namespace"]
    assert ing["spec"]["tls"], "TLS is required: bearer tokens travel in every request"
    hosts = {h for t in ing["spec"]["tls"] for h in t["hosts"]}
    for rule in ing["spec"]["rules"]:
        assert rule["host"] in hosts
        for p in rule["http"]["paths"]:
            backend = p["backend"]["service"]
            assert backend["name"] == app["metadata"]["name"]
            assert backend["port"]["number"] == 80


def test_vault_runtime_config_is_complete():
    rc = tomllib.loads((SPINKUBE / "runtime-config-vault.toml").read_text())
    providers = rc["config_provider"]
    vault = [p for p in providers if p["type"] == "vault"]
    assert len(vault) == 1 and {"url", "token", "mount"} <= set(vault[0])
    assert set(vault[0]) <= {"type", "url", "token", "mount", "prefix"}, "Spin refuses unknown keys"
    # loadFromSecret replaces the whole runtime config: the shared store must be in it too.
    assert rc["key_value_store"]["default"]["type"] == "redis"


# ------------------------------------------------------------------ spin.toml and docs

def test_spin_toml_variables_have_a_default_or_are_required():
    for name, spec in spin_variables().items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*[a-z0-9]", name) and "__" not in name, name
        has_default = "default" in spec
        required = spec.get("required") is True
        assert has_default != required, f"{name}: needs exactly one of default / required = true"


def test_every_application_variable_reaches_the_component():
    declared = spin_variables()
    mapped = spin_manifest()["component"][COMPONENT].get("variables", {})
    for name in declared:
        assert mapped.get(name) == f"{{{{ {name} }}}}", f"{name} is not mapped into the component"
    for name, value in mapped.items():
        for ref in template_names(value):
            assert ref in declared, f"component variable {name} uses undeclared {ref}"


def test_allowed_outbound_hosts_use_declared_variables():
    declared = spin_variables()
    hosts = spin_manifest()["component"][COMPONENT].get("allowed_outbound_hosts", [])
    assert hosts
    for entry in hosts:
        refs = template_names(entry)
        for ref in refs:
            assert ref in declared, f"allowed_outbound_hosts uses undeclared {ref}"
        assert "*" not in entry, f"{entry}: no wildcards"


def table_rows(md: str) -> dict[str, list[str]]:
    """`| `name` | cell | ... |` rows, keyed by the backticked first cell."""
    rows = {}
    for line in md.splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_configuration_md_lists_every_variable_with_its_default():
    rows = table_rows((REPO / "docs" / "configuration.md").read_text())
    for name, spec in spin_variables().items():
        assert name in rows, f"docs/configuration.md has no row for {name}"
        default = spec.get("default")
        cell = rows[name][0]
        if spec.get("required") is True:
            assert cell == "*(required)*", (name, cell)
        elif default == "":
            assert cell == "*(empty)*", (name, cell)
        else:
            assert cell == f"`{default}`", f"{name}: default documented as {cell}, spin.toml says {default!r}"
        assert len(rows[name]) >= 2 and rows[name][1], f"{name} has no description"
    # The settings inside `settings` are documented from the same declaration
    # (config::tests::docs_configuration_md_is_the_declaration).
    assert documented_settings() and not set(documented_settings()) & set(spin_variables())


def test_readme_configuration_table_lists_every_variable():
    rows = table_rows((REPO / "README.md").read_text())
    missing = [n for n in spin_variables() if n not in rows]
    assert not missing, f"README.md's configuration table lacks {missing}"


# `test_file.py::test_name` (end-to-end) or `module::tests::name` / `identity::token_tests::name`
# (unit tests live in modules whose name ends in `tests`); an optional `[param]` suffix.
DOC_TEST_REF = re.compile(
    r"`((?:[\w/]+\.py)::\w+|(?:[a-z_]+::)*[a-z_]*tests::[a-z_0-9]+)(?:\[[^\]`]*\])?`")


def test_tests_named_in_the_docs_exist():
    """A doc that names a test (`test_x.py::test_y`, `module::tests::name`) stays true to it."""
    rust = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.rs"))
    for doc in sorted((REPO / "docs").glob("*.md")):
        for ref in DOC_TEST_REF.findall(doc.read_text()):
            if ".py::" in ref:
                file, name = ref.split("::")
                path = REPO / "tests" / "e2e" / pathlib.PurePosixPath(file).name
                assert path.exists() and re.search(rf"\bdef {name}\(", path.read_text()), (
                    f"{doc.name} names {ref}, which does not exist")
            else:
                name = ref.rsplit("::", 1)[1]
                assert re.search(rf"\bfn {name}\(", rust), f"{doc.name} names {ref}, which does not exist"


def test_relative_links_in_docs_resolve():
    for doc in sorted((REPO / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_keycloak_realm_has_a_service_identity_per_example_tenant():
    """Issue 21: machines use the client credentials grant of a confidential client whose
    service account carries the tenant (hardcoded claim) and an MLflow client role."""
    realm = json.loads(REALM.read_text())
    env = env_of(service("gateway"))
    audience, tenant_claim = env["SPIN_VARIABLE_OIDC_AUDIENCE"], compose_setting("tenant_claim")
    aliases = dict(pair.split("=", 1) for pair in compose_setting("role_aliases").split(","))
    clients = {c["clientId"]: c for c in realm["clients"]}
    users = {u["username"]: u for u in realm["users"]}
    for tenant in ("team-a", "team-b"):
        c = clients[f"svc-{tenant}"]
        assert c["enabled"] and c["serviceAccountsEnabled"] is True
        assert c["publicClient"] is False and c["clientAuthenticatorType"] == "client-secret"
        assert c["secret"].endswith("demo-only-secret")
        # client credentials only: no browser, password or implicit flow for a machine
        assert not (c["standardFlowEnabled"] or c["directAccessGrantsEnabled"] or c["implicitFlowEnabled"])
        mappers = {m["protocolMapper"]: m["config"] for m in c["protocolMappers"]}
        aud = mappers["oidc-audience-mapper"]
        assert aud["included.client.audience"] == audience and aud["access.token.claim"] == "true"
        claim = mappers["oidc-hardcoded-claim-mapper"]
        assert (claim["claim.name"], claim["claim.value"]) == (tenant_claim, tenant)
        assert claim["access.token.claim"] == "true" and claim["jsonType.label"] == "String"
        # the service account's MLflow client role lands in resource_access.<audience>.roles
        sa = users[f"service-account-svc-{tenant}"]
        assert sa["serviceAccountClientId"] == c["clientId"] and sa["enabled"]
        assert [aliases[r] for r in sa["clientRoles"][audience]] == ["editor"]
    # people at a terminal use the device flow of the public client (clients/python plugin)
    assert clients[audience]["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"


# ------------------------------------------------------------------ issue 22 item 4: manifests that deploy today

# Image repositories that no longer serve pulls (or no longer publish new tags): Docker Hub's
# minio/minio and minio/mc, and Bitnami's legacy Docker Hub catalog (bitnami/*, moved to
# bitnamilegacy/* and frozen). A manifest naming one of them fails on the first `pull`.
GONE_REPOSITORIES = ("minio/minio", "minio/mc", "bitnami/", "bitnamilegacy/")


def normalized_repository(image: str) -> str:
    """`registry/path` without tag or digest, Docker Hub spelled out (`docker.io/library/x`)."""
    ref = image.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    ref = (head + "/" if head else "") + last.split(":", 1)[0]
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        ref = "docker.io/library/" + ref
    elif not ("." in first or ":" in first or first == "localhost"):
        ref = "docker.io/" + ref
    return ref.removeprefix("index.").replace("registry-1.docker.io/", "docker.io/")


def gone(image: str) -> bool:
    repo = normalized_repository(image)
    if not repo.startswith("docker.io/"):
        return False
    path = repo.removeprefix("docker.io/")
    return any(path == g or (g.endswith("/") and path.startswith(g)) for g in GONE_REPOSITORIES)


def all_images() -> list[tuple[str, str]]:
    out = [(f"runtime-compose.yml:{n}", s["image"]) for n, s in compose()["services"].items()]
    for path in sorted(SPINKUBE.glob("*.yaml")):
        for doc in yaml_docs(path):
            spec = doc.get("spec") or {}
            if doc.get("kind") == "SpinApp":
                out.append((path.name, spec["image"]))
            pod = ((spec.get("template") or {}).get("spec") or {})
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                out.append((f"{path.name}:{c['name']}", c["image"]))
    return out


def test_gone_registry_detection():
    for image in ("minio/minio:RELEASE.2024-10-13T13-34-11Z", "docker.io/minio/mc:x",
                  "index.docker.io/minio/minio:x", "bitnami/redis:7.4", "docker.io/bitnami/minio:1"):
        assert gone(image), image
    for image in ("quay.io/minio/minio:RELEASE.2024-10-13T13-34-11Z", "quay.io/minio/mc:x",
                  "postgres:16.4", "redis:7.4.1", "ghcr.io/mlflow/mlflow:v3.17.2"):
        assert not gone(image), image


def test_no_image_comes_from_a_registry_known_to_be_gone():
    images = all_images()
    assert len(images) >= 7, images
    bad = [(where, image) for where, image in images if gone(image)]
    assert not bad, f"images that can no longer be pulled: {bad}"
    for where, image in images:
        tag = image_tag(image)
        assert (tag and tag != "latest") or "@sha256:" in image, f"{where}: {image} is not pinned"
    minio = {n: s["image"] for n, s in compose()["services"].items() if n.startswith("minio")}
    assert all(normalized_repository(i).startswith("quay.io/minio/") for i in minio.values()), minio


def test_subject_claim_is_readable_in_compose_and_spinkube():
    """MLflow's "User" column shows the subject: a login name, not Keycloak's `sub` UUID."""
    assert compose_setting("subject_claim") == "preferred_username"
    assert spinapp_setting("subject_claim") == "preferred_username"
    # Both deployments map the same claims and aliases (the SpinApp's IdP is a Keycloak too).
    env = env_of(service("gateway"))
    assert spinapp_setting("role_claim") == compose_setting("role_claim")
    assert spinapp_setting("role_aliases") == compose_setting("role_aliases")


def test_keycloak_realm_emits_groups_and_roles_claims_the_gateway_reads():
    realm = json.loads(REALM.read_text())
    env = env_of(service("gateway"))
    audience = env["SPIN_VARIABLE_OIDC_AUDIENCE"]
    role_paths = [p.strip() for p in compose_setting("role_claim").split(",")]
    # spin.toml's default role_claim (`roles,groups`) stays part of the setting.
    defaults = documented_settings()["role_claim"].split(",")
    assert set(defaults) <= set(role_paths), (defaults, role_paths)
    aliases = dict(pair.split("=", 1) for pair in compose_setting("role_aliases").split(","))
    assert set(aliases.values()) == {"viewer", "editor", "admin"}
    client = {c["clientId"]: c for c in realm["clients"]}[audience]
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    groups_mapper = mappers["oidc-group-membership-mapper"]
    assert groups_mapper["claim.name"] == "groups" and groups_mapper["access.token.claim"] == "true"
    assert groups_mapper["full.path"] == "false", "group names, not /paths, match the aliases"
    roles_mapper = mappers["oidc-usermodel-realm-role-mapper"]
    assert roles_mapper["claim.name"] == "roles" and roles_mapper["access.token.claim"] == "true"
    assert roles_mapper["multivalued"] == "true" and not roles_mapper.get("usermodel.realmRoleMapping.rolePrefix")
    # Every group and realm role is an alias; each group grants the realm role of its name.
    groups = {g["name"]: g for g in realm["groups"]}
    realm_roles = {r["name"] for r in realm["roles"]["realm"]}
    assert set(groups) == realm_roles == set(aliases), (set(groups), realm_roles, set(aliases))
    for name, g in groups.items():
        assert g["path"] == "/" + name and g["realmRoles"] == [name]
    # People: group, realm role (via the group) and client role agree on one canonical role.
    users = {u["username"]: u for u in realm["users"]}
    for name in ("alice", "anna", "bob", "bert"):
        (path,) = users[name]["groups"]
        group = path.removeprefix("/")
        assert group in groups, (name, path)
        assert {aliases[r] for r in groups[group]["realmRoles"]} == {
            aliases[r] for r in users[name]["clientRoles"][audience]}, name


def test_redis_requires_a_password_and_the_gateway_url_carries_it():
    secret = one(SPINKUBE / "secret.yaml", "Secret")
    data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
    svc = one(SPINKUBE / "redis.yaml", "Service")
    dep = one(SPINKUBE / "redis.yaml", "Deployment")
    assert svc["metadata"]["namespace"] == spinapp()["metadata"]["namespace"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    args = [str(a) for a in container.get("args", [])]
    assert "--requirepass" in args, "Redis must require a password"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    env = {e["name"]: e for e in container["env"]}
    ref = env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    password = data[ref["key"]]
    assert password
    # The SpinApp's store URL (from the Secret) and the Vault runtime config's URL both name
    # this Service and carry the password.
    (store,) = [s for s in spinapp()["spec"]["runtimeConfig"]["keyValueStores"] if s["name"] == "default"]
    (url_opt,) = [o for o in store["options"] if o["name"] == "url"]
    urls = {"spinapp": data[url_opt["valueFrom"]["secretKeyRef"]["key"]],
            "vault runtime config": tomllib.loads(
                (SPINKUBE / "runtime-config-vault.toml").read_text())["key_value_store"]["default"]["url"]}
    ns = svc["metadata"]["namespace"]
    for where, url in urls.items():
        u = urlsplit(url)
        assert u.scheme in ("redis", "rediss"), (where, url)
        assert u.password == password, f"{where}: the Redis URL must carry the Redis password"
        assert u.hostname in (f"{svc['metadata']['name']}.{ns}.svc.cluster.local", f"{svc['metadata']['name']}.{ns}.svc")
        assert u.port in [p["port"] for p in svc["spec"]["ports"]], (where, url)


def test_redis_networkpolicy_admits_only_the_gateway():
    pol = one(SPINKUBE / "redis.yaml", "NetworkPolicy")
    dep = one(SPINKUBE / "redis.yaml", "Deployment")
    app = spinapp()
    spec = pol["spec"]
    assert pol["metadata"]["namespace"] == dep["metadata"]["namespace"] == app["metadata"]["namespace"]
    selector = spec["podSelector"]["matchLabels"]
    assert selector and selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert "Ingress" in spec["policyTypes"]
    (rule,) = spec["ingress"]
    port = dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert [p["port"] for p in rule["ports"]] == [port]
    (peer,) = rule["from"]
    # Same namespace (no namespaceSelector), and only the SpinApp's pods.
    assert set(peer) == {"podSelector"}, peer
    assert peer["podSelector"]["matchLabels"] == {"core.spinkube.dev/app-name": app["metadata"]["name"]}


def test_httproute_example_targets_the_spinapp_service():
    route = one(SPINKUBE / "httproute.yaml", "HTTPRoute")
    app = spinapp()
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == app["metadata"]["namespace"]
    spec = route["spec"]
    assert spec["parentRefs"] and all(p.get("kind", "Gateway") == "Gateway" for p in spec["parentRefs"])
    ing = one(SPINKUBE / "ingress.yaml", "Ingress")
    assert set(spec["hostnames"]) == {r["host"] for r in ing["spec"]["rules"]}
    assert spec["rules"]
    for rule in spec["rules"]:
        for b in rule["backendRefs"]:
            assert b.get("group", "") == "" and b.get("kind", "Service") == "Service", b
            assert b["name"] == app["metadata"]["name"] and b["port"] == 80, b
            assert b.get("namespace", route["metadata"]["namespace"]) == app["metadata"]["namespace"]
        # No total-request limit that would cut off a streamed artifact transfer.
        assert (rule.get("timeouts") or {}).get("request", "0s") == "0s", rule.get("timeouts")
    # The Ingress streams uploads too (ingress-nginx spools request bodies by default).
    annotations = ing["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"


def test_mlflow_runs_with_workspaces_wherever_the_gateway_pins_them():
    """tenant_isolation=workspace (spin.toml's default, docs/isolation.md) needs an MLflow started
    with --enable-workspaces: the Compose stack, the SpinKube manifests and scripts/up.sh start
    MLflow so, and set (or keep) workspace mode; a tenant id the Keycloak realm accepts is a
    valid workspace name."""
    assert spin_variables()["tenant_isolation"]["default"] == "workspace"
    compose_mode = env_of(service("gateway")).get("SPIN_VARIABLE_TENANT_ISOLATION", "workspace")
    mlflow_cmd = service("mlflow")["command"]
    compose_cmd = " ".join(mlflow_cmd) if isinstance(mlflow_cmd, list) else str(mlflow_cmd)
    assert compose_mode == "workspace" and "--enable-workspaces" in compose_cmd
    dep = one(SPINKUBE / "mlflow-service.yaml", "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert spinapp_value("tenant_isolation") == "workspace"
    assert "--enable-workspaces" in container.get("command", []) + container.get("args", [])
    assert spinapp_setting("workspace_provisioning") in ("auto", "manual")
    up = (REPO / "scripts" / "up.sh").read_text()
    assert "--enable-workspaces" in up and "SPIN_VARIABLE_TENANT_ISOLATION" in up
    # The realm validates the tenant_id attribute with MLflow's workspace-name grammar.
    realm = json.loads((REPO / "deploy" / "keycloak" / "realm-mlflow.json").read_text())
    profile = json.loads(next(v for c in realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
                              for k, v in c["config"].items() if k == "kc.user.profile.config")[0])
    attr = next(a for a in profile["attributes"] if a["name"] == "tenant_id")
    pattern = re.compile(attr["validations"]["pattern"]["pattern"])
    for ok in ["team-a", "t1", "a" * 63]:
        assert pattern.match(ok), ok
    for bad in ["Team-A", "team_a", "a", "-a", "a-", "a" * 64]:
        assert not pattern.match(bad), bad


def test_telemetry_is_wired_in_compose_and_spinkube():
    """Spin's OpenTelemetry exporter (tests/e2e/test_telemetry.py shows what it sends): the
    SpinKube executor names a collector, the Compose gateway passes the endpoint through (empty:
    off) and names the service."""
    executor = one(SPINKUBE / "executor.yaml", "SpinAppExecutor")
    endpoint = executor["spec"]["deploymentConfig"]["otel"]["exporter_otlp_endpoint"]
    assert urlsplit(endpoint).scheme == "http" and urlsplit(endpoint).port == 4318
    env = env_of(service("gateway"))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
    assert env["OTEL_SERVICE_NAME"] == "mlflow-gateway"


# ------------------------------------------------------------------ browser sign-in

def test_browser_signin_client_matches_compose_and_spinkube():
    realm = json.loads(REALM.read_text())
    env = env_of(service("gateway"))
    audience, tenant_claim = env["SPIN_VARIABLE_OIDC_AUDIENCE"], compose_setting("tenant_claim")
    clients = {c["clientId"]: c for c in realm["clients"]}
    c = clients[env["SPIN_VARIABLE_OIDC_CLIENT_ID"]]
    assert spinapp_value("oidc_client_id") == c["clientId"]
    # confidential, authorization code flow with PKCE S256 only
    assert c["enabled"] and c["publicClient"] is False and c["clientAuthenticatorType"] == "client-secret"
    assert c["standardFlowEnabled"] is True
    assert not (c["directAccessGrantsEnabled"] or c["implicitFlowEnabled"] or c["serviceAccountsEnabled"])
    assert c["attributes"]["pkce.code.challenge.method"] == "S256"
    assert c["secret"].endswith("demo-only-secret")
    assert env["SPIN_VARIABLE_OIDC_CLIENT_SECRET"] == "${OIDC_CLIENT_SECRET:-" + c["secret"] + "}"
    # exact redirect URIs (no wildcard) for Compose and the SpinKube example; post-logout = origin + "/"
    compose_cb, kube_cb = compose_default(env["SPIN_VARIABLE_OIDC_REDIRECT_URL"]), spinapp_value("oidc_redirect_url")
    assert all("*" not in u for u in c["redirectUris"])
    post_logout = c["attributes"]["post.logout.redirect.uris"].split("##")
    for cb in (compose_cb, kube_cb):
        assert urlsplit(cb).path == "/oauth2/callback" and cb in c["redirectUris"], cb
        assert origin(cb) + "/" in post_logout, cb
    # the SpinKube callback is on the Ingress host; Compose's on the published port, on localhost
    ing = one(SPINKUBE / "ingress.yaml", "Ingress")
    assert urlsplit(kube_cb).scheme == "https" and urlsplit(kube_cb).hostname in {r["host"] for r in ing["spec"]["rules"]}
    assert urlsplit(compose_cb).hostname == "localhost" and urlsplit(compose_cb).port == 3000
    # access tokens carry what bearer tokens carry: aud, tenant, roles, groups
    mappers = {m["protocolMapper"]: m["config"] for m in c["protocolMappers"]}
    assert mappers["oidc-audience-mapper"]["included.client.audience"] == audience
    assert mappers["oidc-usermodel-attribute-mapper"]["claim.name"] == tenant_claim
    assert mappers["oidc-usermodel-realm-role-mapper"]["claim.name"] == "roles"
    assert mappers["oidc-group-membership-mapper"]["claim.name"] == "groups"
    assert mappers["oidc-group-membership-mapper"]["full.path"] == "false"
    assert all(m["access.token.claim"] == "true" for m in mappers.values())
    # secrets come from the Secret in SpinKube, from the environment (with demo defaults) in Compose
    secret = one(SPINKUBE / "secret.yaml", "Secret")
    keys = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
    for name in ("oidc_client_secret", "session_cookie_keys"):
        (entry,) = [v for v in spinapp_vars() if v["name"] == name]
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys
    assert env["SPIN_VARIABLE_SESSION_COOKIE_KEYS"].startswith("${SESSION_COOKIE_KEYS:-")
    demo_key = env["SPIN_VARIABLE_SESSION_COOKIE_KEYS"].removeprefix("${SESSION_COOKIE_KEYS:-").removesuffix("}")
    assert len(base64.b64decode(demo_key)) == 32
    assert spinapp_setting("session_max_seconds") == compose_setting("session_max_seconds")
