//! The policy version every audit line carries: a fingerprint of the policy table (every row
//! with its full strategy, and the denied families), so an audit line names the exact table
//! that decided it. The test `policy_version_tracks_the_table` recomputes it and fails when the
//! table changed and this did not; `UPDATE_DOCS=1 cargo test` rewrites the line below.

/// `p-` and the first 12 hex digits of SHA-256 over the table's canonical description
/// (`policy::tests::table_fingerprint`).
pub const POLICY_VERSION: &str = "p-4962beeae03e";
