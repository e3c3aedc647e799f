//! MLflow's wire formats, parsed exactly as MLflow parses them (or refused where MLflow's
//! parser would read something the gateway did not check): strict JSON bodies, query strings,
//! tags and the grants kept in them, search filters, artifact paths, and the ownership facts read
//! from pre-flight answers.
//! Pure: no I/O.

pub mod artifacts;
pub mod grants;
pub mod graphql;
pub mod json;
pub mod locations;
pub mod otlp;
pub mod ownership;
pub mod provider_errors;
pub mod query;
pub mod responses;
pub mod tags;
pub mod webhooks;

/// Largest JSON body the gateway parses (MLflow's own request limit is of the same order).
pub const MAX_JSON_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Longest user filter accepted before the tenant clause is prepended.
pub const MAX_FILTER_BYTES: usize = 4096;
