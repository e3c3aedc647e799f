//! The decision: a permit to forward, granted only when the plan for the request holds (RBAC,
//! strict parsing, the row's strategy) and every resource it names is the caller's. `Permit`
//! has no public constructor, and forwarding takes one: "forward without a decision" cannot be
//! written.

use super::ctx::Ctx;
use super::host::Host;
use super::ownership::{judge, resolve_owner, verify, Owner};
use crate::config::Config;
use crate::error::GatewayError;
use crate::identity::Principal;
use crate::policy::{self, Matched, Plan};
use crate::request::Incoming;

/// A positive decision for one request: the checked plan and who it was checked for.
pub struct Permit {
    plan: Plan,
    principal: Principal,
}

impl Permit {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Plans the request and makes every check the plan names; a permit only if all pass.
pub fn decide<H: Host>(
    inc: &Incoming,
    matched: &Matched,
    principal: Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Permit, GatewayError> {
    let plan = policy::plan(inc, matched, &principal, cfg)?;
    for res in &plan.checks {
        let owner = resolve_owner(res, cfg, ctx)?;
        judge(res, &owner, &principal)?;
    }
    for res in &plan.absent_or_own {
        let owner = resolve_owner(res, cfg, ctx)?;
        if owner != Owner::Missing {
            judge(res, &owner, &principal)?;
        }
    }
    for v in &plan.verify {
        verify(v, cfg, ctx)?;
    }
    Ok(Permit { plan, principal })
}
