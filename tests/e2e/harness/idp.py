"""Identity providers: one interface, two providers.

Every test IdP is an `IdentityProvider`: a free 127.0.0.1 port it keeps across `stop()` and
`start()` (so an outage and a recovery look the same to the gateway), its `origin` and `issuer`,
`discovery()`, `restart()`, and `gateway_vars()`, the Spin variables that point a gateway at it
in auth_mode=oidc. `start()` returns once its discovery document answers.

- `IdP` mints the tokens itself: keys of any algorithm chosen by the test (`SigningKey`),
  tokens with any claims (`mint`), the JWKS it serves changed, rotated or made malformed at will,
  and its fetches counted. For the token, signature, algorithm and key-rotation tests.
- `OidcProvider` is the OpenID-certified `oidc-provider` (npm; tests/idp/oidc_provider.mjs,
  installed by scripts/lib.sh ensure_idp_tools as IDP_NODE_PATH): it issues its own tokens through
  real grants (client credentials, device code, authorization code with its login, consent and
  logout pages, refresh tokens). For machines, long runs and browser sign-in.
"""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import re
import threading
import time

import jwt as pyjwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .processes import Proc, free_port, wait_until
from .run import REPO

AUDIENCE = "mlflow"
# The issuer path of `IdP` (Keycloak's shape: the issuer is not the origin).
ISSUER_PATH = "/realms/test"
# The resource indicator oidc-provider issues JWT access tokens for (RFC 8707).
OIDC_RESOURCE = "urn:mlflow:gateway"


class IdentityProvider:
    """What every test IdP offers (see the module docstring). Subclasses implement `start()`
    and `stop()`."""

    issuer_path = ""

    def __init__(self):
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.issuer = self.origin + self.issuer_path

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def restart(self):
        self.stop()
        return self.start()

    def gateway_vars(self, **extra) -> dict[str, str]:
        return {"auth_mode": "oidc", "oidc_issuer": self.issuer, "oidc_audience": AUDIENCE,
                "idp_origin": self.origin, **extra}

    def discovery(self) -> dict:
        return requests.get(self.issuer + "/.well-known/openid-configuration", timeout=10).json()

    def _wait_for_discovery(self, what: str, proc: Proc | None = None, timeout: float = 60):
        def ready():
            return requests.get(self.issuer + "/.well-known/openid-configuration", timeout=2).status_code == 200
        if proc is None:
            wait_until(ready, what, timeout=timeout)
        else:
            proc.wait_ready(ready, what, timeout=timeout)


# ---------------------------------------------------------------- IdP: keys and tokens minted here

class SigningKey:
    def __init__(self, kid: str, alg: str = "RS256"):
        self.kid, self.alg = kid, alg
        if alg.startswith(("RS", "PS")):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algo = pyjwt.algorithms.RSAAlgorithm
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            algo = pyjwt.algorithms.ECAlgorithm
        elif alg == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            algo = pyjwt.algorithms.ECAlgorithm
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            algo = pyjwt.algorithms.OKPAlgorithm
        else:
            raise ValueError(alg)
        jwk = json.loads(algo.to_jwk(self.private.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": alg})
        self.jwk = jwk


class IdP(IdentityProvider):
    """OpenID discovery and a JWKS served from this process (a real HTTP endpoint), with tokens
    minted here. `keys` is what the JWKS publishes (change it to rotate), `jwks_body` overrides
    the JWKS (malformed JWKS tests), `fetches` counts JWKS fetches."""

    issuer_path = ISSUER_PATH

    def __init__(self):
        super().__init__()
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.jwks_body: bytes | None = None
        self.server: http.server.ThreadingHTTPServer | None = None

    def handler(self):
        idp = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == ISSUER_PATH + "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": idp.issuer,
                                       "jwks_uri": idp.issuer + "/protocol/openid-connect/certs"}).encode()
                elif self.path == ISSUER_PATH + "/protocol/openid-connect/certs":
                    idp.fetches += 1
                    body = idp.jwks_body if idp.jwks_body is not None else json.dumps(
                        {"keys": [k.jwk for k in idp.keys]}).encode()
                else:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        return H

    def start(self):
        # HTTPServer sets SO_REUSEADDR: the same port again right after stop().
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._wait_for_discovery("IdP discovery", timeout=10)
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def mint(self, key: SigningKey, tenant: str | None = "team-a", sub: str = "alice",
             roles=("admin",), lifetime: int = 3600, **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now,
                   "nbf": now - 5, "exp": now + lifetime, "roles": list(roles)}
        if tenant is not None:
            payload["tenant_id"] = tenant
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return pyjwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})


# ---------------------------------------------------------------- OidcProvider: oidc-provider (npm)

class OidcProvider(IdentityProvider):
    """`node tests/idp/oidc_provider.mjs` on a free 127.0.0.1 port. `clients` and `accounts` are
    rewritten by `restart()` (the same port and signing keys), e.g. to revoke a client."""

    def __init__(self, workdir: pathlib.Path, clients: list[dict], accounts: dict | None = None,
                 ttl: int = 4):
        super().__init__()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.clients, self.accounts, self.ttl = clients, accounts or {}, ttl
        self.proc: Proc | None = None
        # One JSON line per token response (tests/idp/oidc_provider.mjs token_log): every
        # access, refresh and ID token this IdP issued, for leak checks (issued_tokens()).
        self.token_log = workdir / "tokens.jsonl"

    def start(self):
        node_path = os.environ.get("IDP_NODE_PATH")
        if not node_path:
            raise RuntimeError("IDP_NODE_PATH not set: run through scripts/test.sh (ensure_idp_tools)")
        cfg = self.workdir / "idp.json"
        cfg.write_text(json.dumps({
            "port": self.port, "audience": AUDIENCE, "resource": OIDC_RESOURCE, "ttl": self.ttl,
            "keys_path": str(self.workdir / "keys.json"), "clients": self.clients,
            "accounts": self.accounts, "token_log": str(self.token_log)}))
        self.proc = Proc("oidc-provider", ["node", str(REPO / "tests/idp/oidc_provider.mjs"), str(cfg)],
                         self.workdir / "idp.log", env={**os.environ, "IDP_NODE_PATH": node_path})
        self._wait_for_discovery("oidc-provider discovery", proc=self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def restart(self, clients: list[dict] | None = None):
        if clients is not None:
            self.clients = clients
        return super().restart()

    def plugin_env(self, client_id: str, secret: str | None = None, grant: str = "client_credentials",
                   **extra: str) -> dict[str, str]:
        """The environment that selects the project's MLflow auth plugin (clients/python)."""
        env = {"MLFLOW_TRACKING_AUTH": "gateway-oidc", "MLFLOW_GATEWAY_OIDC_ISSUER": self.issuer,
               "MLFLOW_GATEWAY_OIDC_CLIENT_ID": client_id, "MLFLOW_GATEWAY_OIDC_GRANT": grant,
               "MLFLOW_GATEWAY_OIDC_RESOURCE": OIDC_RESOURCE}
        if secret:
            env["MLFLOW_GATEWAY_OIDC_CLIENT_SECRET"] = secret
        env.update({f"MLFLOW_GATEWAY_OIDC_{k.upper()}": v for k, v in extra.items()})
        return env

    def issued_tokens(self) -> list[str]:
        """Every access, refresh and ID token this IdP has issued so far (all restarts)."""
        if not self.token_log.exists():
            return []
        out = []
        for line in self.token_log.read_text().splitlines():
            rec = json.loads(line)
            out += [rec[k] for k in ("access_token", "refresh_token", "id_token") if rec.get(k)]
        return out

    def client_credentials(self, client_id: str, secret: str) -> str:
        """An access token (JWT for the gateway's resource) for a machine client."""
        r = requests.post(self.issuer + "/token", auth=(client_id, secret), timeout=10,
                          data={"grant_type": "client_credentials", "resource": OIDC_RESOURCE})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def _form(self, html: str) -> tuple[str, dict[str, str]]:
        """The first form of one of the provider's pages: its absolute action URL and hidden
        fields."""
        action = re.search(r'<form[^>]*action="([^"]+)"', html)
        assert action, html[:2000]
        fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
        return requests.compat.urljoin(self.issuer + "/", action.group(1).replace("&amp;", "&")), fields

    def authorize(self, authorize_url: str, login: str, session: requests.Session | None = None,
                  password: str = "any") -> str:
        """A person at the IdP's own pages (devInteractions): from an authorization request to
        the redirect back to the client. Signs in as `login` (any password), consents, and
        returns the final Location that leaves the IdP (the client's redirect_uri with
        code/state, or with error=...), without following it. IdP cookies live in `session`
        (a fresh one unless given: pass one to reuse the IdP sign-in, as a browser would)."""
        s = session or requests.Session()
        url, method, data = authorize_url, "GET", None
        for _ in range(12):
            r = s.request(method, url, data=data, allow_redirects=False, timeout=10)
            if r.status_code in (301, 302, 303, 307, 308):
                nxt = requests.compat.urljoin(url, r.headers["location"])
                if not nxt.startswith(self.origin + "/"):
                    return nxt
                url, method, data = nxt, "GET", None
                continue
            assert r.status_code == 200, (r.status_code, r.text[:2000])
            url, fields = self._form(r.text)
            if fields.get("prompt") == "login":
                fields.update({"login": login, "password": password})
            method, data = "POST", fields
        raise AssertionError(f"the IdP did not redirect back: {r.status_code} {r.text[:2000]}")

    def end_session(self, end_session_url: str, session: requests.Session) -> str:
        """Confirms RP-initiated logout on the IdP's own page ("Yes, sign me out") and returns
        the Location the IdP sends the browser to (the post_logout_redirect_uri)."""
        r = session.get(end_session_url, allow_redirects=False, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text[:2000])
        url, fields = self._form(r.text)
        fields["logout"] = "yes"
        r = session.post(url, data=fields, allow_redirects=False, timeout=10)
        assert r.status_code in (302, 303), (r.status_code, r.text[:2000])
        return requests.compat.urljoin(url, r.headers["location"])

    def approve_device_code(self, verification_uri_complete: str, login: str) -> None:
        """The person's part of the device flow, through the provider's own pages: confirm the
        user code, sign in (devInteractions accepts any password), consent."""
        s = requests.Session()
        r = s.get(verification_uri_complete, timeout=10)
        for _ in range(6):
            assert r.status_code == 200, (r.status_code, r.text[:2000])
            if "Sign-in Success" in r.text or "successfully" in r.text.lower():
                return
            url, fields = self._form(r.text)
            if fields.get("prompt") == "login":
                fields.update({"login": login, "password": "any"})
            elif "user_code" in r.text and "prompt" not in fields:
                fields.setdefault("confirm", "yes")
            r = s.post(url, data=fields, timeout=10)
        raise AssertionError(f"device approval did not finish: {r.text[:2000]}")
