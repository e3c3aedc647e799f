"""The end-to-end harness: real MLflow (pinned, from PyPI), the built component under real
`spin up`, the real MLflow Python client, plain HTTP, real identity providers.

Modules:
- `run`: the run's settings (REPO, the policy table, E2E_ISOLATION, E2E_KV, `pinned()`,
  `unique()`, `environment()`).
- `processes`: child processes in their own process group (`Proc`), free ports,
  `wait_until`, Spin, `RedisServer`.
- `upstream`: `MlflowServer` and `CapturingProxy` (what MLflow received).
- `gateway`: `Gateway` (`spin up` with its variables, key-value store and audit lines).
- `clients`: `Caller` (one identity at the gateway: HTTP, raw HTTP, the MLflow client).
- `idp`: one interface for identity providers, two providers: `IdP` (tokens and keys minted
  here, for token and signature tests) and `OidcProvider` (the real `oidc-provider` npm package).
- `signin`: browser sign-in without a browser (`SignIn`, `browser_sign_in`, cookies).
- `selection`: which tests run where (markers `spin_slice`, `fixed_kv`).

tests/e2e/conftest.py holds the fixtures and hooks and re-exports every name test modules
import (`from conftest import Caller`). Each test module ("group") starts its own MLflow and
gateway on free 127.0.0.1 ports with its own key-value store, and stops every process it
started (by process group) even when tests fail.
Waiting is always polling against a deadline, never a fixed sleep.
"""
