//! Rate limits per tenant and per subject, reads and writes apart (`rate_limit_*`), checked
//! after identity and route and before the body is read, so a flood costs no body reads and no
//! MLflow calls. The UI shell and capability probes (`Open` rows: static files, `version`,
//! `server-info`) are not counted: one page load fetches dozens of them. Fixed windows counted with the key-value store's atomic increment, so every
//! instance shares the count when the store is shared (Redis).
//!
//! Keys stay bounded: each holder and class has two slots (`window % 2`) that are reused, never
//! one key per window. A slot's epoch key says which window it counts; the first request of a
//! new window deletes the stale counter and moves the epoch on. Two instances crossing a window
//! boundary together may lose a few counts (the limit is approximate there, never exceeded by
//! more than the requests in flight). Counter keys are only ever written by `increment`.

use super::ctx::Ctx;
use super::host::Host;
use crate::config::{Config, Quota, RateLimits};
use crate::error::{GatewayError, Reason};
use crate::identity::Principal;
use crate::policy::table::Row;
use crate::vocab::rbac::Action;
use sha2::{Digest, Sha256};

/// One counter a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// What is limited, for the message: `tenant` or `subject`.
    pub holder: &'static str,
    pub key: String,
    pub epoch_key: String,
    pub limit: u64,
}

/// The counters a request by `principal` with `action` is charged to in window `window`
/// (only those with a limit).
pub fn counters(
    limits: &RateLimits,
    principal: &Principal,
    action: Action,
    window: u64,
) -> Vec<Counter> {
    let write = action != Action::Read;
    let class = if write { "w" } else { "r" };
    let of = |q: Quota| if write { q.writes } else { q.reads };
    let mut out = Vec::new();
    for (holder, limit) in [
        ("tenant", of(limits.tenant)),
        ("subject", of(limits.subject)),
    ] {
        if limit == 0 {
            continue;
        }
        // Subjects are per tenant: the same `sub` in two tenants is two holders. Hashed: ids
        // are up to 256 bytes, the SQLite store's keys at most 256.
        let mut id = Sha256::new();
        id.update(principal.tenant.as_bytes());
        if holder == "subject" {
            id.update([0u8]);
            id.update(principal.subject.as_bytes());
        }
        let digest = crate::identity::hex(&id.finalize()[..16]);
        let key = format!("rl:v1:{}:{digest}:{class}:{}", &holder[..1], window % 2);
        out.push(Counter {
            holder,
            epoch_key: format!("{key}:epoch"),
            key,
            limit,
        });
    }
    out
}

/// Charges the request to its counters; 429 with `Retry-After` when one is used up. A store
/// failure denies (503) or, with `rate_limit_store_failure=allow`, lets the request through
/// uncounted with a warning.
pub fn check<H: Host>(
    principal: &Principal,
    row: &Row,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    if !row.strategy.shape().rate_limited {
        return Ok(());
    }
    charge_request(principal, row.action, cfg, ctx)
}

/// Charges a request of `action` (a row's, or one of the gateway's own endpoints') to its
/// counters.
pub fn charge_request<H: Host>(
    principal: &Principal,
    action: Action,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let limits = &cfg.rate_limits;
    let now = ctx.now_s();
    let window = now / limits.window_seconds;
    for c in counters(limits, principal, action, window) {
        let count = match charge(&c, window, ctx) {
            Ok(n) => n,
            Err(e) if limits.fail_open && e.reason == Reason::KvUnavailable => {
                let detail = e.log_detail.unwrap_or_default();
                ctx.log(
                    "warn",
                    &format!("rate limit not counted (rate_limit_store_failure=allow): {detail}"),
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        if count > c.limit {
            let retry_after = (window + 1) * limits.window_seconds - now;
            let class = if action == Action::Read {
                "read"
            } else {
                "write"
            };
            return Err(GatewayError::rate_limited(retry_after,
                format!(
                    "the {holder}'s limit of {limit} {class} requests per {w} s is used up; retry after {retry_after} s",
                    holder = c.holder,
                    limit = c.limit,
                    w = limits.window_seconds,
                ),
            ));
        }
    }
    Ok(())
}

/// Moves the slot to `window` if it still counts an older one, then counts this request.
fn charge<H: Host>(c: &Counter, window: u64, ctx: &mut Ctx<H>) -> Result<u64, GatewayError> {
    let epoch = ctx
        .kv_get(&c.epoch_key)?
        .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok());
    if epoch != Some(window) {
        ctx.kv_delete(&c.key)?;
        ctx.kv_set(&c.epoch_key, window.to_string().as_bytes())?;
    }
    let n = ctx.kv_increment(&c.key, 1)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
