//! The decision: a permit to forward, granted only when the plan for the request holds (RBAC,
//! strict parsing, the row's strategy) and every resource it names is the caller's. `Permit`
//! has no public constructor, and forwarding takes one: "forward without a decision" cannot be
//! written.
//!
//! `enforcement=report` goes through the same door: a report-mode permit carries the refusal
//! it waived (`Permit::would_deny`), and only two kinds are waived, where they arise: the
//! caller's role, and the owner of an object the request acts on (`error::REPORTABLE`). The
//! request it forwards is the planned one (rewritten, pinned to the caller's workspace);
//! references to other objects, and every other refusal, are enforced in both modes.

use super::ctx::Ctx;
use super::host::Host;
use super::ownership::{judge, resolve_owner, shared_through_version, verify, Owner};
use crate::config::Config;
use crate::error::GatewayError;
use crate::forward::{client_request, ClientRequest};
use crate::identity::Principal;
use crate::policy::access;
use crate::policy::plan::Protect;
use crate::policy::{self, Matched, Plan};
use crate::request::Incoming;
use crate::vocab::rbac::Level;

/// A positive decision for one request: the checked plan, who it was checked for, and in
/// report mode the refusal enforce mode would have given.
pub struct Permit {
    plan: Plan,
    principal: Principal,
    would_deny: Option<GatewayError>,
}

impl Permit {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    /// The refusal report mode waived for this request, if any.
    pub fn would_deny(&self) -> Option<&GatewayError> {
        self.would_deny.as_ref()
    }
    /// The client's request as this permit allows it: the planned path, query, headers and
    /// body (`body` is the client's, moved in; sent unless the plan rewrote it). The only
    /// maker of a `ClientRequest`, the only thing `Ctx::forward` sends.
    pub fn request(&self, inc: &Incoming, body: Vec<u8>, cfg: &Config, rid: &str) -> ClientRequest {
        client_request(inc, &self.plan, body, &cfg.upstream.base_path, rid)
    }
}

/// Plans the request and makes every check the plan names; a permit only if all pass (in
/// report mode: all but a waivable one, which the permit carries). Each object the request acts
/// on needs the level of the row's action (`MANAGE` where a protected alias is involved), each
/// object it links to `READ`; a request that names no object of its own needs the caller's
/// role in the acting tenant (`policy::access::check_role`).
pub fn decide<H: Host>(
    inc: &Incoming,
    matched: &Matched,
    principal: Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Permit, GatewayError> {
    let plan = policy::plan(inc, matched, &principal, cfg)?;
    let mut would_deny = None;
    // Report mode forwards a request refused only for the caller's role or level on the
    // object it acts on, planned as enforce mode would have sent it; never a visitor's (one
    // with no role in the acting tenant): its request is pinned to the visited tenant's
    // workspace, and forwarding it would act inside another tenant.
    let member = principal.member;
    let mut waive = |e: GatewayError, waivable: bool| {
        if cfg.report_only && waivable && member {
            would_deny.get_or_insert(e);
            Ok(())
        } else {
            Err(e)
        }
    };
    let acts_on_objects = plan.checks.iter().any(|r| !plan.references.contains(r));
    if !acts_on_objects {
        if let Err(e) = access::check_role(plan.row, &principal) {
            waive(e, true)?;
        }
    }
    let action = Level::for_action(plan.row.action);
    for res in &plan.checks {
        let owner = resolve_owner(res, cfg, ctx)?;
        let reference = plan.references.contains(res);
        let need = if reference {
            Level::Read
        } else {
            protected_level(action, plan.protect.as_ref(), &owner, cfg)
        };
        if let Err(e) = judge(res, &owner, &principal, need) {
            // The files of a model version the caller may read, in an experiment it may not.
            if let (Some(path), false) = (&plan.artifact_read, reference) {
                if shared_through_version(path, &principal, cfg, ctx)? {
                    continue;
                }
            }
            // The object the request acts on: in workspace mode MLflow sees it only through
            // the caller's pinned workspace, so forwarding cannot reach another tenant's.
            waive(e, !reference)?;
        }
    }
    // An upsert's existing object (a trace id given on start): a link MLflow would re-home,
    // so never waived.
    for res in &plan.absent_or_own {
        let owner = resolve_owner(res, cfg, ctx)?;
        if owner != Owner::Missing {
            judge(res, &owner, &principal, Level::Edit)?;
        }
    }
    for v in &plan.verify {
        verify(v, cfg, ctx)?;
    }
    Ok(Permit {
        plan,
        principal,
        would_deny,
    })
}

/// The level a registry request needs: `MANAGE` to set, move or delete a protected alias, or
/// to change a version that carries one; its action's level otherwise.
fn protected_level(action: Level, protect: Option<&Protect>, owner: &Owner, cfg: &Config) -> Level {
    let (Some(p), Owner::Tenant(o)) = (protect, owner) else {
        return action;
    };
    let guarded = match p {
        Protect::Alias(alias) => access::is_protected(alias, &cfg.protected_aliases),
        Protect::Version(v) => access::version_protected(v, &o.aliases, &cfg.protected_aliases),
    };
    if guarded {
        action.max(Level::Manage)
    } else {
        action
    }
}
