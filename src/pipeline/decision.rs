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
use super::ownership::{judge, resolve_owner, verify, Owner};
use crate::config::Config;
use crate::error::GatewayError;
use crate::forward::{client_request, ClientRequest};
use crate::identity::Principal;
use crate::policy::{self, Matched, Plan};
use crate::request::Incoming;

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
/// report mode: all but a waivable one, which the permit carries).
pub fn decide<H: Host>(
    inc: &Incoming,
    matched: &Matched,
    principal: Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<Permit, GatewayError> {
    let mut plan = policy::plan(inc, matched, &principal, cfg)?;
    let mut would_deny = plan.waived.take();
    for res in &plan.checks {
        let owner = resolve_owner(res, cfg, ctx)?;
        match judge(res, &owner, &principal) {
            Ok(()) => {}
            // The object the request acts on: in workspace mode MLflow sees it only through
            // the caller's pinned workspace, so forwarding cannot reach another tenant's.
            Err(e) if cfg.report_only && !plan.references.contains(res) => {
                would_deny.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    // An upsert's existing object (a trace id given on start): a link MLflow would re-home,
    // so never waived.
    for res in &plan.absent_or_own {
        let owner = resolve_owner(res, cfg, ctx)?;
        if owner != Owner::Missing {
            judge(res, &owner, &principal)?;
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
