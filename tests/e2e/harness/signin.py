"""Browser sign-in (authorization code + PKCE) without a browser: the gateway as an OIDC client
(/oauth2/sign_in, /oauth2/callback, /oauth2/sign_out) with its session in a sealed cookie, at an
`OidcProvider`. Its cookies are `__Host-` (Secure), so python-requests would never send them over
http://127.0.0.1: tests carry them by hand in a Cookie header (as a browser on a loopback origin
does: Chromium accepts and sends them there)."""

from __future__ import annotations

import base64
import os
import pathlib
from urllib.parse import parse_qsl, urlsplit

import requests

from .gateway import Gateway
from .idp import OidcProvider

SESSION_COOKIE = "__Host-mlflow-session"
SIGNIN_COOKIE = "__Host-mlflow-signin"
SIGNIN_SCOPES = "openid mlflow"


def session_cookie_key() -> str:
    """A value for session_cookie_keys: 32 random bytes, base64 (openssl rand -base64 32)."""
    return base64.b64encode(os.urandom(32)).decode()


def signin_gateway(workdir: pathlib.Path, upstream: str, idp: OidcProvider, client_id: str,
                   secret: str, **extra: str) -> Gateway:
    """A gateway (not started) with browser sign-in at `idp`: its redirect URL uses the port
    the gateway chose, so register `signin_client(gw, ...)` at the IdP before signing in."""
    g = Gateway(workdir, upstream, {})
    g.variables.update(idp.gateway_vars(
        oidc_client_id=client_id, oidc_client_secret=secret,
        oidc_redirect_url=g.url + "/oauth2/callback", oidc_scopes=SIGNIN_SCOPES,
        session_cookie_keys=session_cookie_key(), **extra))
    return g


def signin_client(gw: Gateway, client_id: str, secret: str) -> dict:
    """The gateway's registration at oidc-provider: confidential (client_secret_basic),
    authorization code (+PKCE) and refresh tokens, RP-initiated logout back to the gateway."""
    return {"client_id": client_id, "client_secret": secret,
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "redirect_uris": [gw.url + "/oauth2/callback"],
            "post_logout_redirect_uris": [gw.url + "/"],
            "token_endpoint_auth_method": "client_secret_basic"}


def set_cookies(r: requests.Response) -> dict[str, dict]:
    """The response's Set-Cookie headers, each as {"value", "attrs" (lower-case names)}."""
    out = {}
    for header in r.raw.headers.getlist("Set-Cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        attrs = {}
        for a in rest:
            k, _, v = a.partition("=")
            attrs[k.strip().lower()] = v.strip()
        out[name.strip()] = {"value": value, "attrs": attrs, "header": header}
    return out


def cookie_header(**cookies: str) -> dict[str, str]:
    """A Cookie header for `__Host-` cookies given as session=..., signin=..."""
    names = {"session": SESSION_COOKIE, "signin": SIGNIN_COOKIE}
    return {"Cookie": "; ".join(f"{names.get(k, k)}={v}" for k, v in cookies.items() if v is not None)}


class SignIn:
    """One browser sign-in at a gateway, step by step (no browser: requests, cookies by hand).

    `start()` calls /oauth2/sign_in and keeps the authorization URL and the signin cookie;
    `at_idp(idp, login)` is the person at the IdP and yields the callback URL (not followed);
    `callback()` delivers it to the gateway with the signin cookie, as the browser would."""

    def __init__(self, gw: Gateway, rd: str | None = None):
        self.gw, self.rd = gw, rd
        self.authorize_url = self.signin_cookie = self.callback_url = None
        self.idp_session = requests.Session()

    def start(self) -> SignIn:
        params = {"rd": self.rd} if self.rd is not None else None
        r = requests.get(self.gw.url + "/oauth2/sign_in", params=params, allow_redirects=False,
                         timeout=30, headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
        assert r.status_code == 302, (r.status_code, r.text[:2000])
        self.authorize_url = r.headers["location"]
        cookies = set_cookies(r)
        assert SIGNIN_COOKIE in cookies, r.headers
        self.signin_cookie = cookies[SIGNIN_COOKIE]["value"]
        self.start_response = r
        return self

    def authorize_params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.authorize_url).query))

    def at_idp(self, idp: OidcProvider, login: str, authorize_url: str | None = None) -> str:
        self.callback_url = idp.authorize(authorize_url or self.authorize_url, login, self.idp_session)
        return self.callback_url

    def callback_params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.callback_url).query))

    def callback(self, url: str | None = None, signin_cookie: str | None = "default") -> requests.Response:
        """GET the callback URL at the gateway with the signin cookie (None: without it)."""
        cookie = self.signin_cookie if signin_cookie == "default" else signin_cookie
        url = url or self.callback_url
        assert url.startswith(self.gw.url + "/oauth2/callback?"), url
        return requests.get(url, allow_redirects=False, timeout=30,
                            headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate",
                                     **(cookie_header(signin=cookie) if cookie else {})})


def browser_sign_in(gw: Gateway, idp: OidcProvider, login: str, rd: str | None = None) -> str:
    """The whole browser sign-in without a browser; returns the session cookie's value."""
    flow = SignIn(gw, rd).start()
    flow.at_idp(idp, login)
    r = flow.callback()
    assert r.status_code == 302, (r.status_code, r.text[:2000])
    cookies = set_cookies(r)
    assert cookies.get(SESSION_COOKIE, {}).get("value"), r.headers
    return cookies[SESSION_COOKIE]["value"]
