//! The Policy Decision Point: one declarative table (`table::ROWS`) maps (method, MLflow route)
//! → action class → tenant strategy; anything not in it is refused (default deny). `plan`
//! turns an allowed request into the ownership checks to make, the rewritten upstream request
//! and the response filter to apply. Pure: pre-flights are performed by the pipeline (`pipeline::ownership`).

pub mod access;
pub mod plan;
pub mod route;
pub mod table;
mod version;

pub use crate::vocab::rbac::{Action, Role};
pub use version::POLICY_VERSION;

pub use plan::{plan, Plan};
pub use route::{match_route, Matched};
pub use table::{Mount, Row, Strategy, ROWS};

#[cfg(test)]
mod tests;
