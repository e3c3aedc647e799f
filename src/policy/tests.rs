//! Table-driven tests over the policy table.
