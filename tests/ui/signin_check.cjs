// Browser sign-in (OIDC authorization code + PKCE) through the gateway in headless Chromium
// (Debian's package) driven by playwright-core, against the real `oidc-provider` test IdP
// (tests/idp/oidc_provider.mjs, its own devInteractions login, consent and logout pages). No
// identity header is injected: the browser has nothing but what the sign-in gives it.
// Usage: node signin_check.cjs <config.json>
//   config: {gw, idp, out, isolation: "workspace"|"tag",
//            a: {login, tenant, exp_id, exp_name, run_id, run_name},
//            b: {login, tenant, exp_name}}
// Prints one JSON object with what each step showed (the test asserts on it); screenshots go
// to <out>.
const fs = require("fs");
const { WAIT, run, newPage, textAfter, signIn: signInAt } = require("./browser.cjs");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { gw, idp, out } = cfg;
const workspaces = cfg.isolation === "workspace";
// A UI route, with the workspace query the UI itself adds in workspace mode.
const at = (route, ws) => `${gw}/#${route}${workspaces ? `?workspace=${ws}` : ""}`;
const SESSION = "__Host-mlflow-session";
const ERROR_TEXT = /permission|denied|does not exist|not found|error/i;

const atIdpLogin = async (p) => p.url().startsWith(`${idp}/`) && (await p.locator('input[name="login"]').count()) > 0;

const signIn = (p, login) => signInAt(p, gw, idp, login);

async function gatewayCookies(context) {
  return (await context.cookies(gw)).map((c) => ({
    name: c.name, value: c.value, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite, path: c.path,
  }));
}

// The landing page: in workspace mode the person's own workspace (the gateway sends a person
// of one tenant there after sign-in: the UI's `workspace` route parameter), then its experiment
// list; in tag mode the experiment list.
async function home(p, r, prefix, own, other, ownExp, otherExp) {
  if (workspaces) {
    r[`${prefix}_landed_in_workspace`] = new URL(p.url()).hash.includes(`workspace=${own}`);
    r[`${prefix}_home_shows_own`] = await textAfter(p, own, WAIT);
    r[`${prefix}_home_shows_other`] = (await p.innerText("body")).includes(other);
    await p.screenshot({ path: `${out}/signin-${prefix}-home.png`, fullPage: true });
    await p.goto(at("/experiments", own));
  }
  // The list has loaded once the own experiment shows (the UI keeps polling, so waiting for
  // network idle would only burn the timeout).
  r[`${prefix}_list_shows_own_experiment`] = await textAfter(p, ownExp, WAIT);
  r[`${prefix}_list_shows_other_experiment`] = (await p.content()).includes(otherExp);
  await p.screenshot({ path: `${out}/signin-${prefix}-experiments.png`, fullPage: true });
}

const r = {};
run(r, async (browser) => {
  // ---- team-a: no credentials -> the IdP's login page -> signed in -> the real MLflow UI
  let { context, p, navigations } = await newPage(browser);
  await p.goto(`${gw}/`);
  await p.waitForURL((u) => u.toString().startsWith(`${idp}/`), { timeout: WAIT }).catch(() => {});
  await p.waitForLoadState("load");
  r.a_first_navigations = [...navigations];
  r.a_landed_at_idp_login = await atIdpLogin(p);
  await p.screenshot({ path: `${out}/signin-a-idp-login.png`, fullPage: true });
  await signIn(p, cfg.a.login);
  r.a_back_at = p.url();
  r.a_signin_navigations = [...navigations];
  await home(p, r, "a", cfg.a.tenant, cfg.b.tenant, cfg.a.exp_name, cfg.b.exp_name);
  await p.goto(at(`/experiments/${cfg.a.exp_id}/runs`, cfg.a.tenant));
  r.a_experiment_shows_run = await textAfter(p, cfg.a.run_name, WAIT);
  await p.goto(at(`/experiments/${cfg.a.exp_id}/runs/${cfg.a.run_id}`, cfg.a.tenant));
  r.a_run_shows_name = await textAfter(p, cfg.a.run_name, WAIT);
  r.a_run_shows_metric = await textAfter(p, "loss", 30000);
  await p.screenshot({ path: `${out}/signin-a-run.png`, fullPage: true });
  // What the page's own script can see and do with the session.
  r.a_document_cookie = await p.evaluate(() => document.cookie);
  r.a_userinfo = await p.evaluate(async () => {
    const res = await fetch("/oauth2/userinfo");
    return { status: res.status, body: await res.json().catch(() => null) };
  });
  r.a_same_origin_post = await p.evaluate(async () => {
    const res = await fetch("/ajax-api/2.0/mlflow/experiments/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ max_results: 100 }),
    });
    return { status: res.status, body: await res.text() };
  });
  r.a_cookies = await gatewayCookies(context);
  // ---- sign out: the gateway clears its cookie and sends the browser to the IdP's logout
  // confirmation; confirmed, the IdP returns to the gateway, which (no session) sends the
  // browser to sign in again: the IdP's login page, as the IdP session has ended too.
  const before = r.a_cookies.find((c) => c.name === SESSION);
  r.a_session_cookie_before_signout = before ? before.value : null;
  r.a_signout_at = Date.now() / 1000;
  navigations.length = 0;
  await p.goto(`${gw}/oauth2/sign_out`);
  r.a_signout_confirm_shown = p.url().startsWith(`${idp}/`) && (await textAfter(p, "Yes, sign me out", WAIT));
  r.a_cookies_at_confirm = await gatewayCookies(context);
  await p.screenshot({ path: `${out}/signin-a-signout-confirm.png`, fullPage: true });
  await Promise.all([p.waitForNavigation({ timeout: WAIT }), p.getByText("Yes, sign me out").click()]);
  await p.waitForURL((u) => u.toString().startsWith(`${idp}/interaction/`), { timeout: WAIT }).catch(() => {});
  await p.waitForLoadState("load");
  r.a_signout_navigations = [...navigations];
  r.a_after_signout_at_idp_login = await atIdpLogin(p);
  r.a_cookies_after_signout = await gatewayCookies(context);
  await p.screenshot({ path: `${out}/signin-a-after-signout.png`, fullPage: true });
  await context.close();

  // ---- team-b: its own sign-in, its own data only
  ({ context, p, navigations } = await newPage(browser));
  await p.goto(`${gw}/`);
  await p.waitForURL((u) => u.toString().startsWith(`${idp}/`), { timeout: WAIT }).catch(() => {});
  await p.waitForLoadState("load");
  r.b_landed_at_idp_login = await atIdpLogin(p);
  await signIn(p, cfg.b.login);
  await home(p, r, "b", cfg.b.tenant, cfg.a.tenant, cfg.b.exp_name, cfg.a.exp_name);
  r.b_userinfo = await p.evaluate(async () => {
    const res = await fetch("/oauth2/userinfo");
    return { status: res.status, body: await res.json().catch(() => null) };
  });
  await p.goto(at(`/experiments/${cfg.a.exp_id}/runs/${cfg.a.run_id}`, cfg.a.tenant));
  await p.getByText(ERROR_TEXT).first().waitFor({ timeout: WAIT }).catch(() => {});
  await p.waitForTimeout(2000);
  r.b_run_of_a_shows_name = (await p.content()).includes(cfg.a.run_name);
  r.b_run_of_a_shows_error = ERROR_TEXT.test(await p.innerText("body"));
  await p.screenshot({ path: `${out}/signin-b-run-of-a.png`, fullPage: true });
  r.b_cookies = await gatewayCookies(context);
  await context.close();
});
