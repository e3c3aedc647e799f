// The quick start's browser story beyond signin_check.cjs, in headless Chromium (Debian's
// package) driven by playwright-core, against scripts/up.sh's gateway and local IdP:
//   1. a deep link into the UI as the MLflow client prints it (`/#/experiments/<id>/runs/<id>`,
//      no workspace) opened without a session: the IdP's login page, then back at that run;
//   2. the admin of both teams: the UI's workspace chooser lists both teams.
// Usage: node deeplink_check.cjs <config.json>
//   config: {gw, idp, out, link, run_name, login, admin: {login, tenants: [..]}}
// Prints one JSON object with what each step showed (the test asserts on it); screenshots go
// to <out>.
const fs = require("fs");
const { WAIT, run, newPage, textAfter, signIn: signInAt } = require("./browser.cjs");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { gw, idp, out } = cfg;

const signIn = (p, login) => signInAt(p, gw, idp, login);

const r = {};
run(r, async (browser) => {
  // ---- 1. the deep link
  let { context, p, navigations } = await newPage(browser);
  await p.goto(cfg.link);
  await signIn(p, cfg.login);
  r.deep_navigations = [...navigations];
  r.deep_run_shown = await textAfter(p, cfg.run_name, WAIT);
  r.deep_back_at = p.url();
  await p.screenshot({ path: `${out}/quickstart-deep-link.png`, fullPage: true });
  await context.close();

  // ---- 2. the admin of both teams
  ({ context, p, navigations } = await newPage(browser));
  await p.goto(`${gw}/`);
  await signIn(p, cfg.admin.login);
  r.admin_back_at = p.url();
  r.admin_chooser_shows = {};
  for (const t of cfg.admin.tenants) r.admin_chooser_shows[t] = await textAfter(p, t, WAIT);
  r.admin_userinfo = await p.evaluate(async () => {
    const res = await fetch("/oauth2/userinfo");
    return { status: res.status, body: await res.json().catch(() => null) };
  });
  await p.screenshot({ path: `${out}/quickstart-admin-home.png`, fullPage: true });
  await context.close();
});
