// A planted `mlflow-request-header-Authorization` cookie in a signed-in browser (issue 29, item
// 3). The MLflow UI copies every cookie named `mlflow-request-header-<Name>` into a request
// header of its API calls; a plain cookie (no `__Host-` prefix) can be set by a sibling host or
// any plain-http response. Headless Chromium (Debian's package) driven by playwright-core signs
// in at the real `oidc-provider` as alice, then the cookie is planted with another principal's
// bearer token, as such a response would leave it.
// Usage: node header_cookie_check.cjs <config.json>
//   config: {gw, idp, out, isolation: "workspace"|"tag", cookie, token,
//            a: {login, tenant, exp_name}, b: {tenant, exp_name}}
// Prints one JSON object with what each step showed (the test asserts on it); screenshots go
// to <out>.
const fs = require("fs");
const { WAIT, run, signIn: signInAt } = require("./browser.cjs");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { gw, idp, out } = cfg;
const workspaces = cfg.isolation === "workspace";
const at = (route, ws) => `${gw}/#${route}${workspaces ? `?workspace=${ws}` : ""}`;
const PLANTED = cfg.cookie;
const BEARER = `Bearer ${cfg.token}`;

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const signIn = (p, login) => signInAt(p, gw, idp, login);

const planted = async (context) => (await context.cookies(gw)).some((c) => c.name === PLANTED);

async function plant(context) {
  // URL-encoded as a server would write it; the UI decodes the value (decodeURIComponent).
  await context.addCookies([{
    name: PLANTED, value: encodeURIComponent(BEARER), domain: "127.0.0.1", path: "/",
    httpOnly: false, secure: false, sameSite: "Lax",
  }]);
}

// Polls (no fixed sleep) until the planted cookie is gone or the deadline passes.
async function cleared(context, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await planted(context))) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return !(await planted(context));
}

// Waits until the page shows alice's or team-b's experiment or a refusal (or the deadline),
// then says which experiments it shows.
async function listShows(p, refusalToo = false) {
  const names = `${escapeRe(cfg.a.exp_name)}|${escapeRe(cfg.b.exp_name)}`;
  const wanted = new RegExp(refusalToo ? `${names}|PERMISSION_DENIED|permission denied` : names, "i");
  await p.getByText(wanted).first().waitFor({ timeout: WAIT }).catch(() => {});
  const html = await p.content();
  return { own: html.includes(cfg.a.exp_name), other: html.includes(cfg.b.exp_name) };
}

const r = {};
run(r, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const p = await context.newPage();
  p.on("pageerror", () => {});
  // Every answer of the gateway after the cookie is planted: what the request carried and
  // what came back (status, Set-Cookie, request id for the audit line).
  const seen = [];
  const pending = [];
  let recording = false;
  p.on("response", (res) => {
    if (!recording || !res.url().startsWith(`${gw}/`)) return;
    const entry = { url: res.url(), status: res.status() };
    seen.push(entry);
    pending.push((async () => {
      try {
        const req = await res.request().allHeaders();
        const hdrs = await res.allHeaders();
        entry.bearer = req["authorization"] === BEARER;
        entry.cookie = (req["cookie"] || "").split(";").some((c) => c.trim().startsWith(`${PLANTED}=`));
        entry.set_cookie = hdrs["set-cookie"] || null;
        entry.request_id = hdrs["x-request-id"] || null;
        entry.body = res.status() >= 400 ? (await res.text()).slice(0, 400) : null;
      } catch (e) {
        entry.error = String(e);
      }
    })());
  });

  // ---- alice signs in and sees team-a's experiment only
  await p.goto(`${gw}/`);
  await p.waitForURL((u) => u.toString().startsWith(`${idp}/`), { timeout: WAIT });
  await signIn(p, cfg.a.login);
  await p.goto(at("/experiments", cfg.a.tenant));
  r.before = await listShows(p);
  await p.screenshot({ path: `${out}/header-cookie-before.png`, fullPage: true });

  // ---- the planted cookie: the next page load and the UI's calls carry it
  recording = true;
  await plant(context);
  r.planted = await planted(context);
  // (a reload: going to the same URL again would only be a same-document navigation)
  const nav = await p.reload();
  r.planted_nav_status = nav ? nav.status() : null;
  r.planted_list = await listShows(p, true);
  await p.screenshot({ path: `${out}/header-cookie-planted.png`, fullPage: true });
  r.cleared = await cleared(context, 15000);

  // ---- the browser has applied the gateway's deletion: alice's UI works again as alice
  await p.goto(at("/experiments", cfg.a.tenant));
  await p.reload();
  r.after_list = await listShows(p);
  await p.screenshot({ path: `${out}/header-cookie-after.png`, fullPage: true });
  r.after_userinfo = await p.evaluate(async () => {
    const res = await fetch("/oauth2/userinfo");
    return { status: res.status, body: await res.json().catch(() => null) };
  });

  // ---- /oauth2/userinfo with the cookie planted again, asked as the UI asks (the cookie's
  // value as the Authorization header) and as a plain fetch (the cookie only)
  await plant(context);
  r.planted_userinfo = await p.evaluate(async (bearer) => {
    const res = await fetch("/oauth2/userinfo", { headers: { Authorization: bearer } });
    return { status: res.status, body: await res.json().catch(() => null) };
  }, BEARER);
  r.cleared_by_userinfo = await cleared(context, 15000);
  await plant(context);
  r.planted_userinfo_plain = await p.evaluate(async () => {
    const res = await fetch("/oauth2/userinfo");
    return { status: res.status, body: await res.json().catch(() => null) };
  });
  recording = false;
  await Promise.all(pending);
  r.responses = seen;
  await context.close();
});
