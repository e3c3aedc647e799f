"""Browser sign-in (OIDC authorization code + PKCE, session in a sealed cookie) under real
`spin up`, against the real `oidc-provider` (npm; tests/idp/oidc_provider.mjs) with its own
login, consent and logout pages, in front of the real MLflow and its UI.

One test drives headless Chromium through the whole story (tests/ui/signin_check.cjs); the
others drive the same flow with plain HTTP (conftest.SignIn: the gateway's `__Host-` cookies
carried by hand, the IdP's in a requests.Session) to reach every refusal. Timing: nothing is
asserted to be still valid close to an expiry; expiries are waited past with a margin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import uuid

import jwt as pyjwt
import pytest
import requests

from conftest import (ARTIFACTS, REPO, SESSION_COOKIE, SIGNIN_COOKIE, Caller, OidcProvider,
                      SignIn, browser_sign_in, cookie_header, set_cookies, signin_client,
                      signin_gateway, unique)

TTL = 10          # access-token lifetime at the main IdP (s)
SHORT_TTL = 6     # at the IdP of the refresh tests
SESSION_MAX = 10  # session_max_seconds of the gateway of the expiry test
SECRET = "gateway-signin-secret-0123456789abcdef"
MACHINE_SECRETS = {"svc-team-a": "team-a-machine-secret-0123456789abcdef",
                   "svc-team-b": "team-b-machine-secret-0123456789abcdef"}
MACHINES = [{"client_id": cid, "client_secret": secret, "grant_types": ["client_credentials"],
             "response_types": [], "redirect_uris": [], "tenant_id": cid.removeprefix("svc-"),
             "roles": ["editor"]} for cid, secret in MACHINE_SECRETS.items()]
ACCOUNTS = {"alice": {"tenant_id": "team-a", "roles": ["editor"]},
            "bob": {"tenant_id": "team-b", "roles": ["editor"]}}
TENANT = {"alice": "team-a", "bob": "team-b"}

NAV = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}
SEARCH = "/api/2.0/mlflow/experiments/search"

# Every secret value a test saw (cookies, codes): none may show up in a gateway log (last test).
SEEN: list[str] = []


class Stack:
    """The module's IdPs and gateways. Gateways choose their ports when built, so their
    redirect URLs are registered at the IdPs before anything starts; they start on first use."""

    def __init__(self, workdir, upstream: str):
        self.idp = OidcProvider(workdir / "idp", [], ACCOUNTS, ttl=TTL)
        self.short_idp = OidcProvider(workdir / "idp-short", [], ACCOUNTS, ttl=SHORT_TTL)
        self.gateways = {
            "main": signin_gateway(workdir / "gw", upstream, self.idp, "gw-main", SECRET),
            "expiring": signin_gateway(workdir / "gw-expiring", upstream, self.idp, "gw-expiring",
                                       SECRET, session_max_seconds=str(SESSION_MAX)),
            "refreshing": signin_gateway(workdir / "gw-refresh", upstream, self.short_idp,
                                         "gw-refresh", SECRET),
        }
        self.idp.clients = MACHINES + [signin_client(self.gateways["main"], "gw-main", SECRET),
                                       signin_client(self.gateways["expiring"], "gw-expiring", SECRET)]
        self.short_idp.clients = [signin_client(self.gateways["refreshing"], "gw-refresh", SECRET)]
        self.started: list = []

    def gateway(self, name: str):
        g = self.gateways[name]
        if g.proc is None:
            g.start()
            self.started.append(g)
        return g

    def stop(self):
        for g in self.started:
            g.stop()
        self.idp.stop()
        self.short_idp.stop()


@pytest.fixture(scope="module")
def stack(workdir, proxy):
    s = Stack(workdir, proxy.url)
    try:
        s.idp.start()
        s.short_idp.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def idp(stack):
    return stack.idp


@pytest.fixture(scope="module")
def gw(stack):
    return stack.gateway("main")


def bearer(idp: OidcProvider, client_id: str) -> str:
    return idp.client_credentials(client_id, MACHINE_SECRETS[client_id])


def with_cookie(gw, cookie: str, method: str = "GET", path: str = SEARCH, headers=None, **kw):
    """A request carrying the session cookie (no Authorization header)."""
    return requests.request(method, gw.url + path, allow_redirects=False, timeout=60,
                            headers={**cookie_header(session=cookie), **(headers or {})}, **kw)


def reason(gw, r: requests.Response) -> str | None:
    return gw.audit_for(r.headers["x-request-id"])[0].get("reason")


def audit(gw, r: requests.Response) -> dict:
    return gw.audit_for(r.headers["x-request-id"])[0]


def sign_in(gw, idp, login: str = "alice", rd: str | None = None) -> str:
    cookie = browser_sign_in(gw, idp, login, rd)
    SEEN.append(cookie)
    return cookie


def assert_to_sign_in(gw, r: requests.Response, rd: str):
    """r sends the browser to the gateway's own /oauth2/sign_in with rd=`rd`: a 401 page whose
    script adds the URL's fragment (which only the browser knows) to `rd` and whose link (and
    noscript refresh) go to sign-in with the path and query."""
    import html
    import re

    assert r.status_code == 401, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html"), r.headers
    assert "location" not in r.headers, r.headers
    if r.request.method == "HEAD":
        return
    href = html.unescape(re.search(r'<a id="sign-in" href="([^"]*)"', r.text).group(1))
    back = html.unescape(re.search(r'data-back="([^"]*)"', r.text).group(1))
    assert back == rd, r.text
    loc = urllib.parse.urljoin(gw.url + "/", href)
    u = urllib.parse.urlsplit(loc)
    assert f"{u.scheme}://{u.netloc}" == gw.url and u.path == "/oauth2/sign_in", loc
    # rd absent means "/" (the sign-in default)
    assert dict(urllib.parse.parse_qsl(u.query)).get("rd", "/") == rd, loc


def assert_session_cleared(r: requests.Response):
    c = set_cookies(r).get(SESSION_COOKIE)
    assert c is not None, r.headers
    assert c["value"] == "" or c["attrs"].get("max-age") == "0", c["header"]
    assert c["attrs"].get("max-age") == "0" or "expires" in c["attrs"], c["header"]


def assert_no_session_set(r: requests.Response):
    c = set_cookies(r).get(SESSION_COOKIE)
    assert c is None or c["value"] == "", r.headers


def assert_error(r: requests.Response, status: int, error_code: str):
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.json()["error_code"] == error_code, r.text[:500]
    assert "location" not in r.headers


def wait_past(t: float):
    """Sleeps until the wall clock is past `t` (plus the margin the caller added)."""
    while time.time() <= t:
        time.sleep(min(0.5, max(0.05, t - time.time())))


def assert_no_token_inside(idp: OidcProvider, value: str):
    """A cookie value holds no JWT and no token the IdP issued, in clear."""
    assert "eyJ" not in value
    for token in idp.issued_tokens():
        assert token not in value
        # the opaque refresh token, also in its parts (no piece of it may be readable)
        if not token.startswith("eyJ"):
            assert token[:16] not in value and token[-16:] not in value


# ---------------------------------------------------------------- the browser, end to end

def test_browser_sign_in_ui_per_tenant_and_sign_out(gw, idp, isolation):
    node = shutil.which("node")
    node_path = os.environ.get("UI_NODE_PATH")
    if not node or not node_path or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("node, playwright-core (UI_NODE_PATH) and /usr/bin/chromium are required "
                    "(scripts/test.sh installs them)")
    a_exp, a_run, b_exp = unique("signin-a"), unique("signin-run"), unique("signin-b")
    with Caller(gw, token=bearer(idp, "svc-team-a")).mlflow() as mlflow:
        a_exp_id = mlflow.set_experiment(a_exp).experiment_id
        with mlflow.start_run(run_name=a_run) as run:
            mlflow.log_param("lr", "0.01")
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    with Caller(gw, token=bearer(idp, "svc-team-b")).mlflow() as mlflow:
        mlflow.set_experiment(b_exp)
    out = ARTIFACTS / "ui"
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "signin-config.json"
    cfg.write_text(json.dumps({
        "gw": gw.url, "idp": idp.issuer, "out": str(out), "isolation": isolation,
        "a": {"login": "alice", "tenant": "team-a", "exp_id": a_exp_id, "exp_name": a_exp,
              "run_id": run.info.run_id, "run_name": a_run},
        "b": {"login": "bob", "tenant": "team-b", "exp_name": b_exp}}))
    proc = subprocess.run([node, str(REPO / "tests/ui/signin_check.cjs"), str(cfg)],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "NODE_PATH": node_path})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    (out / "signin-result.json").write_text(json.dumps(r, indent=1))

    # No credentials: "/" -> the gateway's sign-in -> the IdP's login page.
    nav = r["a_first_navigations"]
    assert nav[0] == gw.url + "/", nav
    assert any(u.startswith(gw.url + "/oauth2/sign_in") for u in nav), nav
    assert any(u.startswith(idp.issuer + "/auth?") for u in nav), nav
    assert r["a_landed_at_idp_login"], r
    # Signed in: back through the callback, in the real MLflow UI with team-a's data only.
    assert any(u.startswith(gw.url + "/oauth2/callback?") for u in r["a_signin_navigations"]), r
    assert r["a_back_at"].startswith(gw.url + "/"), r
    if isolation == "workspace":
        assert r["a_landed_in_workspace"], r  # one tenant: straight into its workspace
        assert r["a_home_shows_own"] and not r["a_home_shows_other"], r
    assert r["a_list_shows_own_experiment"] and not r["a_list_shows_other_experiment"], r
    assert r["a_experiment_shows_run"], r
    assert r["a_run_shows_name"] and r["a_run_shows_metric"], r
    info = r["a_userinfo"]
    assert info["status"] == 200, info
    assert info["body"]["tenant"] == "team-a" and info["body"]["subject"] == "alice", info
    assert info["body"]["auth"] == "session" and "editor" in info["body"]["roles"], info
    assert info["body"]["session_expires_at"] > time.time(), info
    # The page's own POST (same origin: the browser sends Origin) passes the CSRF check.
    post = r["a_same_origin_post"]
    assert post["status"] == 200 and a_exp in post["body"] and b_exp not in post["body"], post
    # The session cookie: HttpOnly (invisible to scripts), Secure, SameSite=Lax, host-only.
    assert SESSION_COOKIE not in r["a_document_cookie"], r["a_document_cookie"]
    (session,) = [c for c in r["a_cookies"] if c["name"] == SESSION_COOKIE]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax", session
    assert session["path"] == "/", session
    for c in r["a_cookies"] + r["b_cookies"]:
        if c["name"].startswith("__Host-"):
            assert_no_token_inside(idp, c["value"])
    # Sign-out: the cookie is gone as soon as the gateway answers; the IdP asks to confirm;
    # then the browser is sent back to sign in and the IdP (session ended) asks for a login.
    assert r["a_signout_confirm_shown"], r
    assert not [c for c in r["a_cookies_at_confirm"] if c["name"] == SESSION_COOKIE], r
    assert any(u.startswith(gw.url + "/oauth2/sign_in") for u in r["a_signout_navigations"]), r
    assert r["a_after_signout_at_idp_login"], r
    assert not [c for c in r["a_cookies_after_signout"] if c["name"] == SESSION_COOKIE], r

    # team-b: its own sign-in, its own workspace and experiments; team-a's run is not shown.
    assert r["b_landed_at_idp_login"], r
    if isolation == "workspace":
        assert r["b_landed_in_workspace"], r
        assert r["b_home_shows_own"] and not r["b_home_shows_other"], r
    assert r["b_list_shows_own_experiment"] and not r["b_list_shows_other_experiment"], r
    assert r["b_userinfo"]["body"]["tenant"] == "team-b", r["b_userinfo"]
    assert not r["b_run_of_a_shows_name"] and r["b_run_of_a_shows_error"], r
    for shot in ["signin-a-idp-login", "signin-a-experiments", "signin-a-run",
                 "signin-a-signout-confirm", "signin-a-after-signout", "signin-b-experiments",
                 "signin-b-run-of-a"]:
        assert (out / f"{shot}.png").stat().st_size > 0

    # A copy of the signed-out cookie: its refresh token ended with the IdP session, so once
    # its access token has expired (it was issued before the sign-out) the gateway's refresh
    # is refused and the session ends.
    old = r["a_session_cookie_before_signout"]
    assert old
    SEEN.append(old)
    wait_past(r["a_signout_at"] + TTL + 2)
    resp = with_cookie(gw, old)
    assert_error(resp, 401, "UNAUTHENTICATED")
    assert reason(gw, resp) == "session_refresh_refused"
    assert_session_cleared(resp)


# ---------------------------------------------------------------- no credentials

@pytest.mark.parametrize("path", [SEARCH + "?max_results=1", "/ajax-api/2.0/mlflow/experiments/search?max_results=1"])
def test_api_without_credentials_is_401_json_even_for_navigation(gw, path):
    for headers in ({}, NAV):
        r = requests.get(gw.url + path, headers=headers, allow_redirects=False, timeout=30)
        assert_error(r, 401, "UNAUTHENTICATED")
        assert r.headers["content-type"].startswith("application/json")
        assert reason(gw, r) == "token_missing"


def test_navigation_without_credentials_goes_to_sign_in(gw):
    cases = [("/", {"Sec-Fetch-Mode": "navigate"}, "/"),
             ("/?x=1&y=a%20b", {"Accept": "text/html"}, "/?x=1&y=a%20b"),
             ("/static-files/index.html", NAV, "/static-files/index.html")]
    for path, headers, rd in cases:
        r = requests.get(gw.url + path, headers=headers, allow_redirects=False, timeout=30)
        assert_to_sign_in(gw, r, rd)
    r = requests.head(gw.url + "/", headers=NAV, allow_redirects=False, timeout=30)
    assert_to_sign_in(gw, r, "/")
    # Not a navigation (a script's fetch): 401 as today, no redirect.
    r = requests.get(gw.url + "/", headers={"Accept": "application/json"}, allow_redirects=False,
                     timeout=30)
    assert_error(r, 401, "UNAUTHENTICATED")


def test_userinfo_without_credentials_is_401(gw):
    r = requests.get(gw.url + "/oauth2/userinfo", allow_redirects=False, timeout=30)
    assert_error(r, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- the flow

def test_sign_in_sends_the_browser_to_the_idp_with_pkce(gw, idp):
    flow = SignIn(gw).start()
    disc = idp.discovery()
    assert flow.authorize_url.startswith(disc["authorization_endpoint"] + "?"), flow.authorize_url
    p = flow.authorize_params()
    assert p["response_type"] == "code" and p["client_id"] == "gw-main", p
    assert p["redirect_uri"] == gw.url + "/oauth2/callback", p
    assert set(p["scope"].split()) == {"openid", "mlflow"}, p
    assert p["code_challenge_method"] == "S256" and len(p["code_challenge"]) == 43, p
    assert len(p["state"]) >= 16 and len(p["nonce"]) >= 16 and p["state"] != p["nonce"], p
    c = set_cookies(flow.start_response)[SIGNIN_COOKIE]
    assert {"secure", "httponly"} <= set(c["attrs"]) and c["attrs"].get("path") == "/", c
    assert c["attrs"].get("samesite", "").lower() == "lax" and "domain" not in c["attrs"], c
    assert 0 < int(c["attrs"]["max-age"]) <= 600, c
    # The cookie is sealed: neither state, nonce nor anything readable is inside it.
    assert p["state"] not in c["value"] and p["nonce"] not in c["value"]
    # Each attempt is new.
    other = SignIn(gw).start().authorize_params()
    assert (other["state"], other["nonce"], other["code_challenge"]) != (p["state"], p["nonce"], p["code_challenge"])


def test_callback_sets_the_session_and_returns_to_rd(gw, idp):
    flow = SignIn(gw, rd="/some/page?x=1").start()
    flow.at_idp(idp, "alice")
    code = flow.callback_params()["code"]
    SEEN.extend([code, flow.signin_cookie])
    t0 = time.time()
    r = flow.callback()
    assert r.status_code == 302, (r.status_code, r.text[:500])
    loc = urllib.parse.urljoin(gw.url + "/", r.headers["location"])
    assert loc == gw.url + "/some/page?x=1", r.headers["location"]
    cookies = set_cookies(r)
    s = cookies[SESSION_COOKIE]
    assert s["value"], s
    SEEN.append(s["value"])
    assert {"secure", "httponly"} <= set(s["attrs"]) and s["attrs"].get("path") == "/", s
    assert s["attrs"].get("samesite", "").lower() == "lax" and "domain" not in s["attrs"], s
    # The sign-in cookie is spent.
    assert cookies[SIGNIN_COOKIE]["value"] == "" or cookies[SIGNIN_COOKIE]["attrs"].get("max-age") == "0"
    assert len(s["header"]) < 4096
    assert_no_token_inside(idp, s["value"])
    # The cookie is the caller: team-a's alice, from the session (no Authorization header).
    info = with_cookie(gw, s["value"], path="/oauth2/userinfo")
    assert info.status_code == 200, info.text
    body = info.json()
    assert (body["tenant"], body["subject"], body["auth"]) == ("team-a", "alice", "session"), body
    assert body["roles"] == ["editor"], body
    # Max-Age and session_expires_at: the default session_max_seconds, 12 h from sign-in.
    assert t0 + 43200 - 5 <= body["session_expires_at"] <= time.time() + 43200 + 1, body
    assert abs(int(s["attrs"]["max-age"]) - (body["session_expires_at"] - t0)) <= 10, (s, body)
    api = with_cookie(gw, s["value"], params={"max_results": 1})
    assert api.status_code == 200, api.text
    line = audit(gw, api)
    assert (line["auth"], line["tenant"], line["subject"]) == ("session", "team-a", "alice"), line


@pytest.mark.parametrize("rd", ["https://evil.example/", "//evil.example", "/\\evil.example",
                                "\\\\evil.example", "http:/evil.example", "javascript:alert(1)",
                                "evil.example", "/\r\nSet-Cookie:x=1"])
def test_rd_off_origin_is_refused_without_redirect(gw, rd):
    r = requests.get(gw.url + "/oauth2/sign_in", params={"rd": rd}, headers=NAV,
                     allow_redirects=False, timeout=30)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert reason(gw, r) == "return_path_invalid"
    assert SIGNIN_COOKIE not in set_cookies(r)


def test_rd_unencoded_backslash_and_slashes_are_refused(gw):
    """The same, byte for byte as a hostile link would send them (no client-side encoding)."""
    import http.client

    for rd in ["/\\evil.example", "//evil.example", "/%5Cevil.example", "%2F%2Fevil.example"]:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        conn.request("GET", f"/oauth2/sign_in?rd={rd}", headers=NAV)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 400, rd
        assert resp.getheader("location") is None, rd


def test_rd_same_origin_path_is_kept(gw):
    for rd in ["/", "/#/experiments", "/path/x?y=1&z=%2F", "/oauth2/userinfo"]:
        r = requests.get(gw.url + "/oauth2/sign_in", params={"rd": rd}, headers=NAV,
                         allow_redirects=False, timeout=30)
        assert r.status_code == 302, (rd, r.text[:300])
        assert SIGNIN_COOKIE in set_cookies(r)


def test_bad_or_missing_state_is_refused(gw, idp):
    flow = SignIn(gw).start()
    flow.at_idp(idp, "alice")
    p = flow.callback_params()
    SEEN.extend([p["code"], flow.signin_cookie])
    tampered = gw.url + "/oauth2/callback?" + urllib.parse.urlencode({**p, "state": p["state"][::-1] + "x"})
    cases = {
        "tampered state": (tampered, "default"),
        "no signin cookie": (flow.callback_url, None),
        "another attempt's cookie": (flow.callback_url, SignIn(gw).start().signin_cookie),
        "garbage cookie": (flow.callback_url, "not-a-sealed-cookie"),
    }
    for what, (url, cookie) in cases.items():
        r = flow.callback(url, signin_cookie=cookie)
        assert_error(r, 403, "PERMISSION_DENIED")
        assert reason(gw, r) == "signin_state_invalid", what
        assert_no_session_set(r)
    no_state = gw.url + "/oauth2/callback?" + urllib.parse.urlencode({"code": p["code"]})
    r = flow.callback(no_state)
    assert r.status_code == 403 and reason(gw, r) == "signin_state_invalid"
    # Control: the untouched callback (the code was never exchanged) signs in.
    r = flow.callback()
    assert r.status_code == 302 and set_cookies(r)[SESSION_COOKIE]["value"], r.text[:500]
    SEEN.append(set_cookies(r)[SESSION_COOKIE]["value"])


def test_replayed_code_is_refused(gw, idp):
    flow = SignIn(gw).start()
    flow.at_idp(idp, "alice")
    SEEN.extend([flow.callback_params()["code"], flow.signin_cookie])
    first = flow.callback()
    assert first.status_code == 302 and set_cookies(first)[SESSION_COOKIE]["value"]
    SEEN.append(set_cookies(first)[SESSION_COOKIE]["value"])
    again = flow.callback()  # the same URL and the same (copied) sign-in cookie
    assert_error(again, 403, "PERMISSION_DENIED")
    assert reason(gw, again) in ("code_exchange_refused", "signin_state_invalid")
    assert_no_session_set(again)


def test_idp_error_is_refused(gw, idp):
    """The IdP answers the authorization request with an error (prompt=none, nobody signed
    in there): the callback carries error=login_required and the gateway refuses."""
    flow = SignIn(gw).start()
    p = {**flow.authorize_params(), "prompt": "none"}
    url = idp.discovery()["authorization_endpoint"] + "?" + urllib.parse.urlencode(p)
    flow.at_idp(idp, "alice", authorize_url=url)
    assert flow.callback_params().get("error") == "login_required", flow.callback_url
    r = flow.callback()
    assert_error(r, 403, "PERMISSION_DENIED")
    assert reason(gw, r) == "signin_refused_by_idp"
    assert_no_session_set(r)


def test_wrong_nonce_is_refused(gw, idp):
    """An authorization request with the real state and code challenge but another nonce: the
    code exchange works (PKCE matches), the ID token's nonce does not match the cookie's."""
    flow = SignIn(gw).start()
    p = flow.authorize_params()
    p["nonce"] = "other-" + uuid.uuid4().hex
    url = idp.discovery()["authorization_endpoint"] + "?" + urllib.parse.urlencode(p)
    flow.at_idp(idp, "alice", authorize_url=url)
    SEEN.extend([flow.callback_params()["code"], flow.signin_cookie])
    r = flow.callback()
    assert_error(r, 403, "PERMISSION_DENIED")
    assert reason(gw, r) == "nonce_mismatch"
    assert_no_session_set(r)


def test_wrong_pkce_is_refused(gw, idp):
    """Another code challenge at the IdP: the gateway's verifier does not match it, the IdP
    refuses the exchange."""
    import base64
    import hashlib

    flow = SignIn(gw).start()
    p = flow.authorize_params()
    p["code_challenge"] = base64.urlsafe_b64encode(
        hashlib.sha256(uuid.uuid4().hex.encode()).digest()).rstrip(b"=").decode()
    url = idp.discovery()["authorization_endpoint"] + "?" + urllib.parse.urlencode(p)
    flow.at_idp(idp, "alice", authorize_url=url)
    SEEN.extend([flow.callback_params()["code"], flow.signin_cookie])
    r = flow.callback()
    assert_error(r, 403, "PERMISSION_DENIED")
    assert reason(gw, r) == "code_exchange_refused"
    assert_no_session_set(r)


def test_tampered_or_foreign_cookie_is_session_invalid(stack, gw, idp):
    cookie = sign_in(gw, idp)
    flipped = cookie[:-6] + ("A" if cookie[-6] != "A" else "B") + cookie[-5:]
    foreign = sign_in(stack.gateway("expiring"), idp)  # sealed with another gateway's key
    for value in (flipped, foreign, "garbage"):
        r = with_cookie(gw, value)
        assert_error(r, 401, "UNAUTHENTICATED")
        assert reason(gw, r) == "session_invalid"
        assert_session_cleared(r)
        assert_to_sign_in(gw, with_cookie(gw, value, path="/", headers=NAV), "/")


# ---------------------------------------------------------------- using the session

def test_csrf_cross_origin_post_refused_same_origin_allowed(gw, idp):
    cookie = sign_in(gw, idp)
    body = {"max_results": 1}
    refused = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {},
               {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
               {"Origin": gw.url.replace("127.0.0.1", "localhost")}]
    for headers in refused:
        r = with_cookie(gw, cookie, "POST", json=body, headers=headers)
        assert_error(r, 403, "PERMISSION_DENIED")
        assert reason(gw, r) == "csrf_refused", headers
    for headers in ({"Origin": gw.url}, {"Sec-Fetch-Site": "same-origin"},
                    {"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}):
        r = with_cookie(gw, cookie, "POST", json=body, headers=headers)
        assert r.status_code == 200, (headers, r.text[:300])
        assert audit(gw, r)["auth"] == "session"
    # Reads are not state-changing: a cross-origin GET is not a CSRF refusal.
    r = with_cookie(gw, cookie, params={"max_results": 1}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 200, r.text[:300]
    # Bearer requests are not affected.
    b = Caller(gw, token=bearer(idp, "svc-team-a"))
    assert b.post(SEARCH, body, headers={"Origin": "http://evil.example"}).status_code == 200


def test_session_with_another_principals_bearer_is_refused(gw, idp):
    """A request that carries the session cookie may not also carry a bearer token of another
    principal (issue 29: a planted cookie made the UI send one): refused 403
    `credentials_conflict`, neither identity is used, nothing reaches MLflow."""
    cookie = sign_in(gw, idp, "alice")  # team-a
    for client_id in ("svc-team-b", "svc-team-a"):  # another tenant; the same tenant, another subject
        both = {**cookie_header(session=cookie), "Authorization": f"Bearer {bearer(idp, client_id)}"}
        r = requests.get(gw.url + "/oauth2/userinfo", headers=both, timeout=30)
        assert_error(r, 403, "PERMISSION_DENIED")
        assert reason(gw, r) == "credentials_conflict", client_id
        assert "svc-team" not in r.text and "team-b" not in r.text, r.text
        r = requests.get(gw.url + SEARCH, params={"max_results": 1}, headers=both, timeout=30)
        assert_error(r, 403, "PERMISSION_DENIED")
        line = audit(gw, r)
        assert (line["decision"], line["reason"]) == ("deny", "credentials_conflict"), line
        assert line.get("upstream_status") is None and line.get("tenant") != "team-b", line
        # A cross-origin POST with both: refused too (whichever check speaks first).
        r = requests.post(gw.url + SEARCH, json={"max_results": 1}, timeout=30,
                          headers={**both, "Origin": "http://evil.example"})
        assert r.status_code == 403 and reason(gw, r) in ("credentials_conflict", "csrf_refused"), r.text
        assert audit(gw, r).get("upstream_status") is None
    # A bad bearer token with a good cookie: refused, the cookie is no fallback.
    bad = {**cookie_header(session=cookie), "Authorization": "Bearer not-a-token"}
    r = requests.get(gw.url + SEARCH, params={"max_results": 1}, headers=bad, timeout=30)
    assert r.status_code in (401, 403), r.text
    assert audit(gw, r).get("auth") != "session" and audit(gw, r).get("upstream_status") is None
    # Control: each credential alone is its own principal.
    info = requests.get(gw.url + "/oauth2/userinfo", timeout=30,
                        headers={"Authorization": f"Bearer {bearer(idp, 'svc-team-b')}"}).json()
    assert (info["tenant"], info["auth"]) == ("team-b", "bearer"), info
    info = with_cookie(gw, cookie, path="/oauth2/userinfo").json()
    assert (info["tenant"], info["subject"], info["auth"]) == ("team-a", "alice", "session"), info


def test_session_is_confined_to_its_tenant_like_a_bearer(gw, idp):
    b = Caller(gw, token=bearer(idp, "svc-team-b"))
    with b.mlflow() as mlflow:
        b_exp = unique("signin-b-private")
        b_exp_id = mlflow.set_experiment(b_exp).experiment_id
        with mlflow.start_run() as run:
            mlflow.log_metric("acc", 0.5)
    a_bearer = Caller(gw, token=bearer(idp, "svc-team-a"))
    a_cookie = sign_in(gw, idp, "alice")
    b_cookie = sign_in(gw, idp, "bob")
    for path in (f"/api/2.0/mlflow/experiments/get?experiment_id={b_exp_id}",
                 f"/api/2.0/mlflow/runs/get?run_id={run.info.run_id}"):
        expected = a_bearer.get(path).status_code
        assert expected in (403, 404), expected
        r = with_cookie(gw, a_cookie, path=path)
        assert r.status_code == expected, (path, r.status_code, r.text[:300])
        assert b_exp not in r.text
        # control: team-b's own session reads it
        assert with_cookie(gw, b_cookie, path=path).status_code == 200
    listed = with_cookie(gw, a_cookie, params={"max_results": 1000}).json()
    assert b_exp not in [e["name"] for e in listed.get("experiments", [])]
    listed = with_cookie(gw, b_cookie, params={"max_results": 1000}).json()
    assert b_exp in [e["name"] for e in listed.get("experiments", [])]


def test_sign_out_clears_the_cookie_and_ends_the_idp_session(gw, idp):
    flow = SignIn(gw).start()
    flow.at_idp(idp, "alice")
    r = flow.callback()
    cookie = set_cookies(r)[SESSION_COOKIE]["value"]
    SEEN.extend([cookie, flow.callback_params()["code"]])
    t_issued = time.time()
    out = with_cookie(gw, cookie, path="/oauth2/sign_out", headers=NAV)
    assert out.status_code == 302, out.text[:300]
    assert_session_cleared(out)
    end = idp.discovery()["end_session_endpoint"]
    assert out.headers["location"].startswith(end + "?"), out.headers["location"]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(out.headers["location"]).query))
    assert q["client_id"] == "gw-main" and q["post_logout_redirect_uri"] == gw.url + "/", q
    hint = pyjwt.decode(q["id_token_hint"], options={"verify_signature": False})
    assert (hint["aud"], hint["sub"], hint["iss"]) == ("gw-main", "alice", idp.issuer), hint
    # The person confirms at the IdP and is sent back to the gateway, which has no session
    # for them any more and sends them to sign in.
    back = idp.end_session(out.headers["location"], flow.idp_session)
    assert back == gw.url + "/", back
    assert_to_sign_in(gw, requests.get(back, headers=NAV, allow_redirects=False, timeout=30), "/")
    # The IdP session has ended: a new sign-in shows its login page again.
    again = SignIn(gw).start()
    page = flow.idp_session.get(again.authorize_url, timeout=10)
    assert page.status_code == 200 and 'name="login"' in page.text
    # Signing out without a session still reaches the IdP's logout, without a hint.
    r = requests.get(gw.url + "/oauth2/sign_out", headers=NAV, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["location"].startswith(end + "?")
    assert "id_token_hint" not in r.headers["location"]
    # A copy of the old cookie: refused once its access token is due for refresh.
    wait_past(t_issued + TTL + 2)
    r = with_cookie(gw, cookie)
    assert_error(r, 401, "UNAUTHENTICATED")
    assert reason(gw, r) == "session_refresh_refused"


# ---------------------------------------------------------------- lifetimes

def test_session_expires_after_session_max_seconds(stack, idp):
    g = stack.gateway("expiring")
    t0 = time.time()
    cookie = sign_in(g, idp)
    t1 = time.time()
    info = with_cookie(g, cookie, path="/oauth2/userinfo")
    assert info.status_code == 200, info.text
    ends = info.json()["session_expires_at"]
    assert t0 + SESSION_MAX - 2 <= ends <= t1 + SESSION_MAX + 1, (t0, ends, t1)
    wait_past(ends + 2)
    r = with_cookie(g, cookie)
    assert_error(r, 401, "UNAUTHENTICATED")
    assert reason(g, r) == "session_expired"
    assert_session_cleared(r)
    assert_to_sign_in(g, with_cookie(g, cookie, path="/?p=1", headers=NAV), "/?p=1")


def test_refresh_renews_the_session(stack):
    idp = stack.short_idp
    g = stack.gateway("refreshing")
    cookie = sign_in(g, idp)
    t1 = time.time()
    refreshes = lambda: sum(1 for line in idp.token_log.read_text().splitlines()  # noqa: E731
                            if json.loads(line)["grant_type"] == "refresh_token")
    before = refreshes()
    wait_past(t1 + SHORT_TTL + 2)  # the access token behind the cookie has expired
    r = with_cookie(g, cookie, params={"max_results": 1})
    assert r.status_code == 200, r.text[:300]
    line = audit(g, r)
    assert (line["auth"], line["tenant"], line["subject"]) == ("session", "team-a", "alice"), line
    renewed = set_cookies(r).get(SESSION_COOKIE)
    assert renewed and renewed["value"] and renewed["value"] != cookie, r.headers
    SEEN.append(renewed["value"])
    assert {"secure", "httponly"} <= set(renewed["attrs"])
    assert_no_token_inside(idp, renewed["value"])
    assert refreshes() > before
    # The renewed cookie is the same person.
    info = with_cookie(g, renewed["value"], path="/oauth2/userinfo").json()
    assert (info["tenant"], info["subject"], info["auth"]) == ("team-a", "alice", "session"), info


def test_refresh_refused_ends_the_session(stack):
    idp = stack.short_idp
    g = stack.gateway("refreshing")
    cookie = sign_in(g, idp)
    t1 = time.time()
    idp.restart()  # in-memory grants and refresh tokens are gone; the signing keys stay
    wait_past(t1 + SHORT_TTL + 2)
    r = with_cookie(g, cookie)
    assert_error(r, 401, "UNAUTHENTICATED")
    assert reason(g, r) == "session_refresh_refused"
    assert_session_cleared(r)
    nav = with_cookie(g, cookie, path="/?view=runs", headers=NAV)
    assert_to_sign_in(g, nav, "/?view=runs")
    assert_session_cleared(nav)
    # Signing in again works at once.
    fresh = sign_in(g, idp)
    assert with_cookie(g, fresh, path="/oauth2/userinfo").status_code == 200


# ---------------------------------------------------------------- what is written down

def test_no_secret_reaches_a_log_or_mlflow(stack, gw, idp, proxy):
    """Runs last: every cookie, code and token the module's tests saw or the IdPs issued is
    absent from every gateway's log (audit lines included) and from what MLflow received."""
    cookie = sign_in(gw, idp)
    r = with_cookie(gw, cookie, params={"max_results": 1})
    assert r.status_code == 200
    assert audit(gw, r)["auth"] == "session"
    secrets = [s for s in SEEN if s] + idp.issued_tokens() + stack.short_idp.issued_tokens() + [SECRET]
    assert len(secrets) > 10
    logs = {g.log_path.name + ":" + str(g.port): g.log_text() for g in stack.started}
    for d in (g.workdir / "spin-logs" for g in stack.started):
        if d.exists():
            for f in d.iterdir():
                logs[str(f)] = f.read_text(errors="replace")
    for name, text in logs.items():
        assert "eyJ" not in text, name
        for s in secrets:
            assert s not in text, (name, s[:12])
    for rec in proxy.records:
        raw = json.dumps(rec["header_list"]) + rec["body"].decode(errors="replace")
        assert SESSION_COOKIE not in raw and SIGNIN_COOKIE not in raw
        for s in secrets:
            assert s not in raw
    # Audit lines of session requests say so.
    lines = [a for a in gw.audit_lines_settled() if a.get("auth") == "session"]
    allowed = [a for a in lines if a["reason"] == "allowed"]  # forwarded to MLflow
    assert allowed and all(a["tenant"] in ("team-a", "team-b") for a in allowed)
    assert {a["reason"] for a in lines} >= {"session_invalid", "csrf_refused", "session_refresh_refused"}
