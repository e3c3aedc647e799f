//! Roles and actions: the RBAC vocabulary shared by identity (what a principal holds) and
//! policy (what a route needs). A leaf.

use serde::{Deserialize, Serialize};

/// What a route does, for RBAC. The split is documented in `docs/rbac.md`, which a test keeps
/// in step with the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Reads: get, search, list, history, artifact download, capability probes, UI shell.
    Read,
    /// Creates and logs: create, log-*, update of run fields, tags, artifact upload.
    Write,
    /// Delete and restore of experiments, runs, logged models; artifact deletion.
    Delete,
    /// Renames and other changes to what a shared object is called or how it is promoted.
    Manage,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Manage => "manage",
        }
    }
}

/// Canonical roles. IdP names map to these through `role_aliases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// viewer → read; editor → read, write; admin → every class.
    pub fn permits(self, action: Action) -> bool {
        match self {
            Role::Viewer => action == Action::Read,
            Role::Editor => matches!(action, Action::Read | Action::Write),
            Role::Admin => true,
        }
    }

    /// The least role that permits `action` (named in denials).
    pub fn least_for(action: Action) -> Role {
        Role::ALL
            .into_iter()
            .find(|r| r.permits(action))
            .unwrap_or(Role::Admin)
    }
}

/// Access to one object, as MLflow's own auth and the peers name it: `READ` < `EDIT` < `MANAGE`.
/// A tenant role is this level on everything of its tenant; a grant gives it on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Read,
    Edit,
    Manage,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "READ",
            Level::Edit => "EDIT",
            Level::Manage => "MANAGE",
        }
    }

    /// What a tenant role gives on every object of its tenant.
    pub fn of_role(role: Role) -> Level {
        match role {
            Role::Viewer => Level::Read,
            Role::Editor => Level::Edit,
            Role::Admin => Level::Manage,
        }
    }

    /// What an action class needs on the object it acts on (as the roles: viewer reads,
    /// editor writes, admin deletes and manages).
    pub fn for_action(action: Action) -> Level {
        match action {
            Action::Read => Level::Read,
            Action::Write => Level::Edit,
            Action::Delete | Action::Manage => Level::Manage,
        }
    }
}
