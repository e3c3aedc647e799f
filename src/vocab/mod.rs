//! The gateway's leaf vocabulary: words every other module uses and that import nothing of the
//! gateway themselves (roles and actions, JWS algorithms, strict JSON, MLflow's error bodies,
//! origins and URLs). Keeping them here is what keeps the module graph free of cycles.

pub mod algorithm;
pub mod mlflow_errors;
pub mod names;
pub mod rbac;
pub mod strict_json;
pub mod workspace_name;
