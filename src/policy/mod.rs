//! The Policy Decision Point: one declarative table (`table::ROWS`) maps (method, MLflow route)
//! → action class → tenant strategy; anything not in it is refused (default deny). `plan`
//! turns an allowed request into the ownership checks to make, the rewritten upstream request
//! and the response filter to apply. Pure: pre-flights are performed by the shell.

pub mod plan;
pub mod route;
pub mod table;

pub use crate::vocab::rbac::{Action, Role};

/// Version of the policy table, written into every audit line.
pub const POLICY_VERSION: &str = "2026-11-22.1";

pub use plan::{plan, Plan};
pub use route::{match_route, Matched};
pub use table::{Mount, Row, Strategy, ROWS};

#[cfg(test)]
mod tests;
