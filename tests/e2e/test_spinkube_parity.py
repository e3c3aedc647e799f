"""Runtime-config parity (issue 23): the runtime configs the Compose stack and the SpinKube
manifests mount are loaded by `spin up` (whichever Spin runs the suite; scripts/test.sh runs
this module under Spin 4.0.2 and 3.6.3, the runtime of containerd-shim-spin v0.24), with only
the hosts, ports and file paths rewritten to local services. A typo in a key, a store type or a
provider fails here rather than in a cluster.

* deploy/compose/runtime-config.toml: the SQLite store, at a local path.
* deploy/spinkube/spinapp.yaml `runtimeConfig.keyValueStores`: rendered into a runtime config
  the way spin-operator does it (`[key_value_store.<name>]` with `type` and each option, values
  from deploy/spinkube/secret.yaml), the Redis URL pointed at a local redis-server that requires
  the same password.
* deploy/spinkube/runtime-config-vault.toml (mounted whole with `loadFromSecret`): its Redis store
  as above; its Vault provider pointed at a local port where nothing listens. Spin builds the
  provider at start but first contacts Vault on a variable read (spinframework/spin
  crates/variables-vault: the client is made inside `get`), so `spin up` must start and answer
  /healthz, and every request that reads configuration must fail closed. Not checked (no Vault
  server in the test environment): Vault's token authentication and its KV v2 answers.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
import uuid
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml

from conftest import REPO, CapturingProxy, Caller, Gateway, RedisServer, free_port, unique

COMPOSE_RC = REPO / "deploy" / "compose" / "runtime-config.toml"
SPINKUBE = REPO / "deploy" / "spinkube"


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for the values used here
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    """The two shapes runtime configs use: tables of scalars (`[a.b]`) and arrays of tables."""
    out = []

    def table(path: list[str], t: dict):
        scalars = {k: v for k, v in t.items() if not isinstance(v, (dict, list))}
        if scalars:
            out.append(f"[{'.'.join(path)}]")
            out.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for k, v in t.items():
            if isinstance(v, dict):
                table(path + [k], v)
            elif isinstance(v, list):
                for item in v:
                    out.append(f"[[{'.'.join(path + [k])}]]")
                    out.extend(f"{ik} = {toml_value(iv)}" for ik, iv in item.items())

    for k, v in doc.items():
        if isinstance(v, dict):
            table([k], v)
        elif isinstance(v, list):
            for item in v:
                out.append(f"[[{k}]]")
                out.extend(f"{ik} = {toml_value(iv)}" for ik, iv in item.items())
        else:
            out.insert(0, f"{k} = {toml_value(v)}")
    return "\n".join(out) + "\n"


def local_redis_for(url: str, workdir) -> tuple[RedisServer, str]:
    """A local redis-server with the URL's password, and the URL pointed at it (scheme, user,
    password and path kept)."""
    u = urlsplit(url)
    assert u.scheme in ("redis", "rediss") and u.hostname, url
    redis = RedisServer(workdir, password=u.password).start()
    userinfo = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
    return redis, urlunsplit((u.scheme, f"{userinfo}127.0.0.1:{redis.port}", u.path, u.query, u.fragment))


def redis_key_count(redis: RedisServer) -> int:
    args = ["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port)]
    if redis.password:
        args += ["--no-auth-warning", "-a", redis.password]
    out = subprocess.run(args + ["--scan"], capture_output=True, text=True, timeout=30).stdout
    return len(out.split())


def gateway_with(workdir, name: str, upstream: str, rc: str, variables: dict | None = None) -> Gateway:
    g = Gateway(workdir / name, upstream, variables or {"auth_mode": "off"}, kv="spin")
    g.runtime_config.write_text(rc)
    return g


def exercise_store(gw: Gateway):
    """Requests that need the key-value store (ownership facts are cached there)."""
    c = Caller(gw, tenant="team-a", subject="alice")
    r = c.post("/api/2.0/mlflow/experiments/create", {"name": unique("parity")})
    assert r.status_code == 200, r.text
    exp = r.json()["experiment_id"]
    r = c.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp})
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]
    assert c.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).status_code == 200
    other = Caller(gw, tenant="team-b", subject="bob")
    assert other.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).status_code == 403


def spinapp() -> dict:
    docs = [d for d in yaml.safe_load_all((SPINKUBE / "spinapp.yaml").read_text()) if d]
    return next(d for d in docs if d["kind"] == "SpinApp")


def secret_data() -> dict[str, dict[str, str]]:
    docs = [d for d in yaml.safe_load_all((SPINKUBE / "secret.yaml").read_text()) if d]
    return {d["metadata"]["name"]: {**d.get("data", {}), **d.get("stringData", {})}
            for d in docs if d["kind"] == "Secret"}


def operator_runtime_config(app: dict) -> dict:
    """spin-operator's rendering of `runtimeConfig.keyValueStores` (its runtimeconfig package:
    `[key_value_store.<name>]` holding `type` and every option by name)."""
    secrets = secret_data()
    stores = {}
    for s in app["spec"]["runtimeConfig"]["keyValueStores"]:
        opts = {"type": s["type"]}
        for o in s.get("options", []):
            if "value" in o:
                opts[o["name"]] = o["value"]
            else:
                ref = o["valueFrom"]["secretKeyRef"]
                opts[o["name"]] = secrets[ref["name"]][ref["key"]]
        stores[s["name"]] = opts
    return {"key_value_store": stores}


def test_compose_runtime_config_is_loaded_by_spin_up(workdir, mlflow_server):
    rc = tomllib.loads(COMPOSE_RC.read_text())
    store = rc["key_value_store"]["default"]
    assert store["type"] == "spin"
    local = workdir / "compose-data" / "gateway-kv.db"
    local.parent.mkdir(parents=True)
    store["path"] = str(local)  # /data/gateway-kv.db in the container
    gw = gateway_with(workdir, "gw-compose-rc", mlflow_server.url, to_toml(rc)).start()
    try:
        exercise_store(gw)
        assert local.stat().st_size > 0, "the store is not the file the runtime config names"
    finally:
        gw.stop()


def test_spinapp_key_value_stores_are_loaded_by_spin_up(workdir, mlflow_server):
    rc = operator_runtime_config(spinapp())
    assert set(rc["key_value_store"]) == {"default"}
    store = rc["key_value_store"]["default"]
    redis, store["url"] = local_redis_for(store["url"], workdir)
    gw = gateway_with(workdir, "gw-spinapp-rc", mlflow_server.url, to_toml(rc))
    try:
        gw.start()
        assert f"Redis at 127.0.0.1:{redis.port}" in gw.log_text(), gw.log_text()[-3000:]
        assert redis_key_count(redis) == 0
        exercise_store(gw)
        assert redis_key_count(redis) > 0, "nothing reached the Redis the SpinApp names"
    finally:
        gw.stop()
        redis.stop()


def test_vault_runtime_config_is_loaded_by_spin_up(workdir, mlflow_server):
    rc = tomllib.loads((SPINKUBE / "runtime-config-vault.toml").read_text())
    (vault,) = [p for p in rc["config_provider"] if p["type"] == "vault"]
    nothing_listens = free_port()
    vault["url"] = f"http://127.0.0.1:{nothing_listens}"
    store = rc["key_value_store"]["default"]
    redis, store["url"] = local_redis_for(store["url"], workdir)
    proxy = CapturingProxy(mlflow_server.port)
    gw = gateway_with(workdir, "gw-vault-rc", proxy.url, to_toml(rc))
    try:
        gw.start()  # waits for /healthz: no variable read, so Vault is not needed to start
        # Every variable is read from Vault first (file order, then the environment): with
        # Vault unreachable the gateway cannot read its configuration and refuses (fail closed),
        # with a status clients retry: it heals when Vault answers again.
        marker = uuid.uuid4().hex
        c = Caller(gw, tenant="team-a", subject="alice")
        r = c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1", "filter": f"name = '{marker}'"})
        assert r.status_code == 503, r.text
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE", r.text
        assert requests.get(gw.url + "/readyz", timeout=30).status_code != 200
        assert not [x for x in proxy.records if marker in x["path"]]
        assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "config_unreadable"
        # Spin's own lines: the file's Redis store is in use, and the Vault client tried to call.
        assert f"Redis at 127.0.0.1:{redis.port}" in gw.log_text(), gw.log_text()[-3000:]
        assert "Error sending HTTP request" in gw.log_text(), gw.log_text()[-3000:]
    finally:
        gw.stop()
        proxy.stop()
        redis.stop()
