"""`mlflow-request-header-*` cookies (issue 29, item 3). The MLflow UI copies every cookie named
`mlflow-request-header-<Name>` into a `<Name>` header of its API calls. Such a cookie has no
`__Host-` prefix, so a sibling host or any plain-http response can plant one: a planted
`mlflow-request-header-Authorization=Bearer <team-b token>` must never switch a signed-in
person (or a browser without a session) to team-b. The gateway (auth_mode=oidc with browser
sign-in) refuses every request carrying such a cookie (403 PERMISSION_DENIED, audit reason
`header_cookie_refused`) and deletes the cookie in its answer (same name, Max-Age=0 or a past
Expires, Path=/), so the browser recovers: alice's UI works again as alice.

One test drives headless Chromium through the real MLflow UI (tests/ui/header_cookie_check.cjs)
against the real `oidc-provider`; the other sends the variants with plain HTTP (the
gateway's `__Host-` session cookie carried by hand, as in test_signin.py)."""

from __future__ import annotations

import email.utils
import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import (ARTIFACTS, REPO, SESSION_COOKIE, Caller, OidcProvider, browser_sign_in,
                      set_cookies, signin_client, signin_gateway, unique)

SECRET = "gateway-cookie-secret-0123456789abcdef"
MACHINE_SECRETS = {"svc-team-a": "team-a-machine-secret-0123456789abcdef",
                   "svc-team-b": "team-b-machine-secret-0123456789abcdef"}
MACHINES = [{"client_id": cid, "client_secret": secret, "grant_types": ["client_credentials"],
             "response_types": [], "redirect_uris": [], "tenant_id": cid.removeprefix("svc-"),
             "roles": ["editor"]} for cid, secret in MACHINE_SECRETS.items()]
ACCOUNTS = {"alice": {"tenant_id": "team-a", "roles": ["editor"]},
            "bob": {"tenant_id": "team-b", "roles": ["editor"]}}
SEARCH = "/api/2.0/mlflow/experiments/search"
CREATE = "/api/2.0/mlflow/experiments/create"
PLANTED = "mlflow-request-header-Authorization"


@pytest.fixture(scope="module")
def idp(workdir):
    # Tokens outlive the module: no refresh happens in the middle of a check.
    p = OidcProvider(workdir / "idp", [], ACCOUNTS, ttl=600)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server, idp):
    g = signin_gateway(workdir / "gw", mlflow_server.url, idp, "gw-cookie", SECRET)
    idp.clients = MACHINES + [signin_client(g, "gw-cookie", SECRET)]
    idp.start()
    g.start()
    yield g
    g.stop()


def bearer(idp: OidcProvider, client_id: str) -> str:
    return idp.client_credentials(client_id, MACHINE_SECRETS[client_id])


def deletes(set_cookie: str | None, name: str) -> bool:
    """Whether one of the Set-Cookie lines (newline-joined, as a browser reports them) deletes
    cookie `name` at Path=/: Max-Age=0 or an Expires in the past."""
    for line in (set_cookie or "").split("\n"):
        first, *rest = [part.strip() for part in line.split(";")]
        if first.partition("=")[0].strip() != name:
            continue
        attrs = {k.strip().lower(): v.strip() for k, _, v in (a.partition("=") for a in rest)}
        expired = attrs.get("max-age") == "0"
        if "expires" in attrs:
            when = email.utils.parsedate_to_datetime(attrs["expires"])
            expired = expired or when.timestamp() < time.time()
        if expired and attrs.get("path") == "/":
            return True
    return False


def assert_rows(got: list[tuple], want: list[tuple]):
    """Compares two tables of outcomes row by row; the message lists every differing row."""
    assert len(got) == len(want)
    bad = [f"\n  got  {g}\n  want {w}" for g, w in zip(got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(got)} rows differ:" + "".join(bad)


def test_planted_bearer_cookie_never_switches_the_browser(gw, idp, isolation):
    node = shutil.which("node")
    node_path = os.environ.get("UI_NODE_PATH")
    if not node or not node_path or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("node, playwright-core (UI_NODE_PATH) and /usr/bin/chromium are required "
                    "(scripts/test.sh installs them)")
    a_exp, b_exp = unique("cookie-a"), unique("cookie-b")
    r = Caller(gw, token=bearer(idp, "svc-team-a")).post(CREATE, {"name": a_exp})
    assert r.status_code == 200, r.text
    r = Caller(gw, token=bearer(idp, "svc-team-b")).post(CREATE, {"name": b_exp})
    assert r.status_code == 200, r.text
    token_b = bearer(idp, "svc-team-b")
    out = ARTIFACTS / "ui"
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "header-cookie-config.json"
    cfg.write_text(json.dumps({
        "gw": gw.url, "idp": idp.issuer, "out": str(out), "isolation": isolation,
        "cookie": PLANTED, "token": token_b,
        "a": {"login": "alice", "tenant": "team-a", "exp_name": a_exp},
        "b": {"tenant": "team-b", "exp_name": b_exp}}))
    first_line = len(gw.audit_lines_settled())
    proc = subprocess.run([node, str(REPO / "tests/ui/header_cookie_check.cjs"), str(cfg)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NODE_PATH": node_path})
    cfg.unlink()  # it holds a live token
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    (out / "header-cookie-result.json").write_text(json.dumps(
        {k: v for k, v in r.items() if k != "responses"}, indent=1))

    # Control: signed in as alice, the list shows team-a's experiment only.
    assert r["before"] == {"own": True, "other": False}, r["before"]
    assert r["planted"], r
    # Planted: the UI never shows team-b's experiment ...
    assert not r["planted_list"]["other"], (r["planted_list"], r["responses"][:20])
    # ... because every request that carried the cookie was refused, none carrying team-b's
    # bearer was answered, and every refusal deleted the cookie (audited header_cookie_refused).
    carrying = [x for x in r["responses"] if x.get("cookie")]
    assert carrying, r["responses"]
    assert [x for x in carrying if x["status"] != 403] == []
    assert [x for x in r["responses"] if x.get("bearer") and x["status"] < 400] == []
    for x in carrying:
        assert "PERMISSION_DENIED" in (x.get("body") or ""), x
        assert deletes(x.get("set_cookie"), PLANTED), x
        line = gw.audit_for(x["request_id"])[0]
        assert (line["decision"], line["reason"]) == ("deny", "header_cookie_refused"), line
    # The browser applied the deletion: alice's UI works again, as alice, team-a only.
    assert r["cleared"], r
    assert r["after_list"] == {"own": True, "other": False}, r["after_list"]
    info = r["after_userinfo"]
    assert info["status"] == 200 and (info["body"]["tenant"], info["body"]["subject"]) == ("team-a", "alice"), info
    # /oauth2/userinfo with the cookie planted again: refused, never team-b; the cookie deleted.
    for key in ("planted_userinfo", "planted_userinfo_plain"):
        info = r[key]
        assert info["status"] == 403 and (info["body"] or {}).get("error_code") == "PERMISSION_DENIED", (key, info)
        assert "team-b" not in json.dumps(info["body"]), (key, info)
    assert r["cleared_by_userinfo"], r
    # Nothing the browser sent was served as team-b.
    lines = gw.audit_lines_settled()[first_line:]
    assert lines and [a for a in lines if a.get("tenant") == "team-b"] == []
    for shot in ("header-cookie-before", "header-cookie-planted", "header-cookie-after"):
        assert (out / f"{shot}.png").stat().st_size > 0


def test_header_cookies_are_refused_and_deleted(gw, idp):
    """Every spelling of the cookie the UI would turn into a header (the header name after the
    prefix in any case, `_` for `-`), with or without a session, with or without the header the
    UI would derive from it, at the API and at /oauth2/userinfo: 403 `header_cookie_refused`,
    the cookie deleted, the session cookie left alone, nothing answered as team-b. The prefix
    itself in capitals (`MLFLOW-REQUEST-HEADER-`) is not copied by today's UI; it is refused all
    the same (a cookie of that family has no legitimate use at the gateway)."""
    alice = browser_sign_in(gw, idp, "alice")
    token_b = bearer(idp, "svc-team-b")
    enc = "Bearer%20" + token_b
    auth = {"Authorization": f"Bearer {token_b}"}
    cookies = [
        ("mlflow-request-header-Authorization", enc, auth),
        ("mlflow-request-header-authorization", enc, auth),
        ("mlflow-request-header-AUTHORIZATION", enc, auth),
        ("mlflow-request-header-X-Tenant", "team-b", {"X-Tenant": "team-b"}),
        ("mlflow-request-header-x_tenant", "team-b", {"x_tenant": "team-b"}),
        ("mlflow-request-header-X-MLFLOW-WORKSPACE", "team-b", {"X-MLFLOW-WORKSPACE": "team-b"}),
        ("mlflow-request-header-x-mlflow-workspace", "team-b", {"x-mlflow-workspace": "team-b"}),
        ("mlflow-request-header-X_MLFLOW_WORKSPACE", "team-b", {"X_MLFLOW_WORKSPACE": "team-b"}),
        ("MLFLOW-REQUEST-HEADER-Authorization", enc, {}),
    ]
    got, want = [], []
    for name, value, derived in cookies:
        for session in (alice, None):
            for headers in ({}, derived):
                for path in (SEARCH + "?max_results=5", "/oauth2/userinfo"):
                    jar = f"{name}={value}" + (f"; {SESSION_COOKIE}={session}" if session else "")
                    r = requests.get(gw.url + path, headers={"Cookie": jar, **headers},
                                     allow_redirects=False, timeout=30)
                    line = gw.audit_for(r.headers["x-request-id"])[0]
                    try:
                        code = r.json().get("error_code")
                    except ValueError:
                        code = None
                    case = (name, "session" if session else "no session", sorted(headers), path)
                    got.append(case + (r.status_code, code, line["decision"], line["reason"],
                                       deletes("\n".join(r.raw.headers.getlist("Set-Cookie")), name),
                                       SESSION_COOKIE in set_cookies(r), "team-b" in r.text))
                    want.append(case + (403, "PERMISSION_DENIED", "deny", "header_cookie_refused",
                                        True, False, False))
    # Two planted cookies at once: both deleted.
    jar = f"{PLANTED}={enc}; mlflow-request-header-X-Tenant=team-b; {SESSION_COOKIE}={alice}"
    r = requests.get(gw.url + SEARCH, headers={"Cookie": jar, **auth}, timeout=30)
    both = "\n".join(r.raw.headers.getlist("Set-Cookie"))
    got.append(("both", r.status_code, deletes(both, PLANTED), deletes(both, "mlflow-request-header-X-Tenant")))
    want.append(("both", 403, True, True))
    assert_rows(got, want)
    # Control: the same session without a planted cookie is alice.
    r = requests.get(gw.url + "/oauth2/userinfo", headers={"Cookie": f"{SESSION_COOKIE}={alice}"}, timeout=30)
    assert r.status_code == 200 and r.json()["tenant"] == "team-a", r.text
