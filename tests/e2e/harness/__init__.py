"""The end-to-end harness: real MLflow (pinned, from PyPI), the built component under real
`spin up`, the real MLflow Python client, plain HTTP, real identity providers.

Modules:
- `run`: the run's settings (REPO, the policy table, E2E_ISOLATION, E2E_KV, E2E_ARTIFACTS,
  `pinned()`, `unique()`, `environment()`).
- `processes`: child processes in their own process group (`Proc`), free ports (E2E_PORTS),
  `wait_until`, Spin, `RedisServer`.
- `upstream`: `MlflowServer` and `CapturingProxy` (what MLflow received).
- `gateway`: `Gateway` (`spin up` with its variables, key-value store and audit lines).
- `shim`: with E2E_RUNTIME=shim, every `Gateway` runs under containerd + containerd-shim-spin
  from the OCI artifact instead of `spin up` (scripts/spinkube_local.sh slice; issue 33).
- `clients`: `Caller` (one identity at the gateway: HTTP, raw HTTP, the MLflow client).
- `idp`: one interface for identity providers, two providers: `IdP` (tokens and keys minted
  here, for token and signature tests) and `OidcProvider` (the real `oidc-provider` npm package).
- `signin`: browser sign-in without a browser (`SignIn`, `browser_sign_in`, cookies).
- `selection`: which tests run where (markers `spin_slice`, `fixed_kv`, `mode_independent`).

tests/e2e/conftest.py holds the fixtures and hooks and re-exports every name test modules
import (`from conftest import Caller`). Each test module ("group") starts its own MLflow and
gateway on free 127.0.0.1 ports with its own key-value store, and stops every process it
started (by process group) even when tests fail or the run is stopped (SIGINT or SIGTERM).
Waiting is always polling against a deadline, never a fixed sleep.

Isolation modes. scripts/test.sh runs the suite in both modes (E2E_ISOLATION=workspace and
tag, side by side, each on its own block of ports); a test marked `mode_independent` runs in the
workspace run only. The rule: a test is mode-independent only when its outcome cannot depend on the mode,
that is when

- it reads files only (manifests, docs, the policy table, the installed MLflow's routes); or
- every request it sends is answered by the gateway itself before its workspace step (the
  pipeline's order is identity, route, rate limit, body size, then the workspace step, which
  may call MLflow in workspace mode): refused at identity (missing, malformed, expired or badly
  signed tokens, identity headers in oidc mode, an invalid tenant claim), refused by the route
  table, refused for a configuration error, or one of the gateway's own sign-in endpoints
  (/oauth2/sign_in's redirects, the callback's refusals, expired sessions); or
- it never reaches the gateway (the auth plugin refused by the IdP);

and, in every case, it does not use the `isolation` fixture, WORKSPACES or `pinned()`, does not
look at MLflow's data, sends no request that the gateway forwards to MLflow (even a plain search
is tenant data: the gateway pins the workspace or adds the tenant clause on the way), does not
call /readyz (which checks MLflow as the mode needs it), and no other test relies on what it
leaves behind (test_signin.py's last test reads the refusals of earlier tests on its gateway).
When in doubt, a test is mode-dependent. The list is `selection.MODE_INDEPENDENT`; a listed
test that asks for the `isolation` fixture is a collection error.
"""
