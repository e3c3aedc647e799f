//! mlflow-enterprise-gateway: a multi-tenancy and RBAC Policy Enforcement Point (PEP) in front
//! of an unmodified MLflow tracking server, as a Spin (WASI HTTP) component.
//!
//! Data flows one way, through [`pipeline`]: request → [`identity`] → decision ([`policy`]:
//! route table, RBAC, tenant strategy; ownership pre-flights; [`mlflow`] parsing and rewrites)
//! → [`forward`] → response check → [`audit`]. The pipeline is written against a small platform
//! interface (`pipeline::host::Host`); [`shell`] implements it for Spin and is the only module
//! that imports `spin_sdk` (a test keeps it so). Everything else is pure Rust, unit-tested
//! natively, the whole pipeline included. [`vocab`] holds the leaf words (roles, algorithms,
//! strict JSON, MLflow's error bodies) that keep the module graph free of cycles.

pub mod audit;
pub mod config;
pub mod error;
pub mod forward;
#[cfg(test)]
mod fuzz;
pub mod identity;
#[cfg(test)]
mod layering;
pub mod mlflow;
pub mod pipeline;
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
