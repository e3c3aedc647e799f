//! mlflow-enterprise-gateway: a multi-tenancy and RBAC Policy Enforcement Point (PEP) in front
//! of an unmodified MLflow tracking server, as a Spin (WASI HTTP) component.
//!
//! Data flows one way: request → [`identity`] → [`policy`] decision (route table, RBAC, tenant
//! strategy) → pre-flight ownership checks → [`mlflow`] rewrite → [`forward`] → response check
//! → [`audit`]. Everything except `shell` is pure Rust without host calls and is unit-tested
//! natively; `shell` is the only module that imports `spin_sdk`.

pub mod audit;
pub mod config;
pub mod error;
pub mod forward;
#[cfg(test)]
mod fuzz;
pub mod identity;
pub mod mlflow;
pub mod policy;
pub mod request;
/// Compiled for the component only: natively, spin-sdk's export names cannot be linked into
/// the test cdylib, and host calls would panic anyway.
#[cfg(target_arch = "wasm32")]
pub mod shell;
pub mod vocab;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
/// Spin entry point: never fails (every error becomes a response in `error::to_response`).
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    shell::handle(req, out).await
}
