// Several tenants per person, read-only shares and DENY (issue 34) in the real MLflow UI through
// the gateway, in headless Chromium (Debian's package) driven by playwright-core. Every person
// signs in at the real `oidc-provider` (tests/idp/oidc_provider.mjs, its devInteractions
// pages); no identity header is injected.
// Usage: node grants_check.cjs <config.json>
//   config: {gw, idp, out, isolation: "workspace"|"tag",
//            carol: {login, exp_a, exp_b}            (a member of team-a and team-b)
//            bob: {login, shared_exp_id, shared_exp, shared_run_id, shared_run, private_exp_id, private_exp}
//            victor: {login, kept_exp, kept_run_id, denied_exp_id, denied_exp, denied_run_id, denied_run,
//                     query}                          (a team-a viewer; query: the UI's GetRun)}
// Prints one JSON object with what each step showed (the test asserts on it); screenshots go
// to <out>. In tag mode MLflow has no workspaces (no picker): only victor's part runs.
const fs = require("fs");
const { WAIT, run, newPage: freshPage, textAfter, signIn: signInAt } = require("./browser.cjs");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { gw, idp, out } = cfg;
const workspaces = cfg.isolation === "workspace";
// How the UI shows a refused request in its main area (the assistant panel beside it talks
// about "errors" on every page, so the main area alone is read).
const REFUSED = /status code 403|status code 404|Can't load|load error|not found|does not exist/i;
// A UI route, with the workspace query the UI itself adds in workspace mode.
const at = (route, ws) => `${gw}/#${route}${workspaces ? `?workspace=${ws}` : ""}`;

// A fresh page (browser.cjs) that also records the workspace header of every API call the UI
// makes, and its GraphQL calls.
async function newPage(browser) {
  const { context, p } = await freshPage(browser);
  const api = [];
  p.on("response", (res) => {
    const r = res.request();
    const u = r.url();
    if (u.startsWith(gw) && (u.includes("/ajax-api/") || u.includes("/graphql"))) {
      api.push({ method: r.method(), path: u.slice(gw.length).split("?")[0], status: res.status(),
                 workspace: r.headers()["x-mlflow-workspace"] || null });
    }
  });
  return { context, p, api };
}

// No credentials -> the IdP's login page -> signed in (any password), consented -> back at the
// gateway's UI.
async function signIn(p, login) {
  await p.goto(`${gw}/`);
  await signInAt(p, gw, idp, login);
}

// The workspace picker in the UI's sidebar: open it, choose `name`.
async function pick(p, name) {
  const picker = p.locator('[role="combobox"][aria-label^="Workspace"]');
  await picker.waitFor({ timeout: WAIT });
  // The picker opens on a click once the page has loaded its workspace list; a click while
  // the page is still loading can leave it closed: click until its options show.
  const first = p.locator('[role="option"]').first();
  for (let attempt = 0; attempt < 3; attempt++) {
    await picker.click();
    if (await first.waitFor({ timeout: 10000 }).then(() => true, () => false)) break;
  }
  const options = await p.locator('[role="option"]').allInnerTexts();
  const wanted = p.getByRole("option", { name, exact: true });
  try {
    await wanted.waitFor({ timeout: WAIT });
  } catch (e) {
    // What the picker offered instead, for the failure message.
    await p.screenshot({ path: `${process.env.PICK_SHOT_DIR || "/tmp"}/pick-${name}-failed.png`, fullPage: true });
    const listed = await fetchAsUi(p, "/ajax-api/3.0/mlflow/workspaces");
    throw new Error(`the workspace picker offers ${JSON.stringify(options)}, not ${name} (the workspace list answers ${JSON.stringify(listed)}): ${e.message}`);
  }
  await wanted.click();
  return options.map((o) => o.trim()).filter((o) => o);
}

// What the page's own script gets from the gateway, sent as the UI sends API calls (the
// workspace header from the picker's localStorage entry).
async function fetchAsUi(p, path, init) {
  return p.evaluate(async ({ path, init }) => {
    const ws = window.localStorage.getItem("mlflow.activeWorkspace");
    const headers = { ...(init.headers || {}), ...(ws ? { "X-MLFLOW-WORKSPACE": ws } : {}) };
    const res = await fetch(path, { ...init, headers });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, body };
  }, { path, init: init || {} });
}

const mainText = (p) => p.evaluate(() => (document.querySelector("main") || document.body).innerText);

// Whether the page's main area shows a refusal (waits for it).
async function refusalShown(p) {
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    if (REFUSED.test(await mainText(p))) return true;
    await p.waitForTimeout(500);
  }
  return false;
}

async function experimentsList(p, r, key, shown, hidden) {
  r[`${key}_shows`] = await textAfter(p, shown, WAIT);
  r[`${key}_hides`] = !(await p.content()).includes(hidden);
}

const r = {};
run(r, async (browser) => {
  if (workspaces) {
    // ---- carol, a member of team-a and team-b: the landing page lists both; the picker
    // switches between them, and each list shows that tenant's experiments only.
    const { context, p, api } = await newPage(browser);
    await signIn(p, cfg.carol.login);
    r.carol_home_lists_a = await textAfter(p, "team-a", WAIT);
    r.carol_home_lists_b = await textAfter(p, "team-b", 5000);
    await p.screenshot({ path: `${out}/grants-carol-home.png`, fullPage: true });
    await p.getByText("team-a", { exact: true }).first().click();
    await p.goto(at("/experiments", "team-a"));
    await experimentsList(p, r, "carol_in_a", cfg.carol.exp_a, cfg.carol.exp_b);
    await p.screenshot({ path: `${out}/grants-carol-team-a.png`, fullPage: true });
    r.carol_picker_options = await pick(p, "team-b");
    await p.waitForURL((u) => u.toString().includes("workspace=team-b"), { timeout: WAIT }).catch(() => {});
    await experimentsList(p, r, "carol_in_b", cfg.carol.exp_b, cfg.carol.exp_a);
    r.carol_active_workspace = await p.evaluate(() => window.localStorage.getItem("mlflow.activeWorkspace"));
    r.carol_userinfo_b = await fetchAsUi(p, "/oauth2/userinfo");
    await p.screenshot({ path: `${out}/grants-carol-team-b.png`, fullPage: true });
    // ... and back.
    await pick(p, "team-a");
    await p.waitForURL((u) => u.toString().includes("workspace=team-a"), { timeout: WAIT }).catch(() => {});
    await experimentsList(p, r, "carol_back_in_a", cfg.carol.exp_a, cfg.carol.exp_b);
    r.carol_search_workspaces = [...new Set(api.filter((a) => a.path.endsWith("/experiments/search")).map((a) => a.workspace))];
    await context.close();

    // ---- bob (team-b) visits team-a, where one experiment is shared with him.
    const b = await newPage(browser);
    await signIn(b.p, cfg.bob.login);
    r.bob_home_lists_b = await textAfter(b.p, "team-b", WAIT);
    r.bob_lands_in = new URL(b.p.url().replace("/#/", "/")).searchParams.get("workspace") ||
      (await b.p.evaluate(() => window.localStorage.getItem("mlflow.activeWorkspace")));
    await b.p.screenshot({ path: `${out}/grants-bob-home.png`, fullPage: true });
    await b.p.getByText("team-b", { exact: true }).first().click();
    await b.p.goto(at("/experiments", "team-b"));
    await b.p.waitForLoadState("load");
    r.bob_picker_options = await pick(b.p, "team-a");
    await b.p.waitForURL((u) => u.toString().includes("workspace=team-a"), { timeout: WAIT }).catch(() => {});
    await experimentsList(b.p, r, "bob_in_a", cfg.bob.shared_exp, cfg.bob.private_exp);
    await b.p.screenshot({ path: `${out}/grants-bob-visits-team-a.png`, fullPage: true });
    await b.p.goto(at(`/experiments/${cfg.bob.shared_exp_id}/runs/${cfg.bob.shared_run_id}`, "team-a"));
    r.bob_shared_run_shows_name = await textAfter(b.p, cfg.bob.shared_run, WAIT);
    await b.p.screenshot({ path: `${out}/grants-bob-shared-run.png`, fullPage: true });
    await b.p.goto(at(`/experiments/${cfg.bob.private_exp_id}`, "team-a"));
    r.bob_private_shows_error = await refusalShown(b.p);
    r.bob_private_error_text = (await mainText(b.p)).slice(0, 300);
    r.bob_private_shows_name = (await b.p.content()).includes(cfg.bob.private_exp);
    await b.p.screenshot({ path: `${out}/grants-bob-private.png`, fullPage: true });
    r.bob_userinfo_a = await fetchAsUi(b.p, "/oauth2/userinfo");
    await b.context.close();
  }

  // ---- victor, a team-a viewer with a DENY on one experiment: not in the list, its run
  // page shows an error, and the UI's GraphQL run query is refused.
  const v = await newPage(browser);
  await signIn(v.p, cfg.victor.login);
  if (workspaces) {
    await v.p.getByText("team-a", { exact: true }).first().waitFor({ timeout: WAIT });
    await v.p.getByText("team-a", { exact: true }).first().click();
  }
  await v.p.goto(at("/experiments", "team-a"));
  await experimentsList(v.p, r, "victor_list", cfg.victor.kept_exp, cfg.victor.denied_exp);
  await v.p.screenshot({ path: `${out}/grants-victor-experiments.png`, fullPage: true });
  v.api.length = 0;
  await v.p.goto(at(`/experiments/${cfg.victor.denied_exp_id}/runs/${cfg.victor.denied_run_id}`, "team-a"));
  r.victor_denied_run_shows_error = await refusalShown(v.p);
  r.victor_denied_run_error_text = (await mainText(v.p)).slice(0, 300);
  r.victor_denied_run_shows_name = (await v.p.content()).includes(cfg.victor.denied_run);
  // The run page asks GraphQL (GetRun) for the run: each answer refused.
  r.victor_denied_run_graphql = v.api.filter((a) => a.path === "/graphql").map((a) => a.status);
  await v.p.screenshot({ path: `${out}/grants-victor-denied-run.png`, fullPage: true });
  v.api.length = 0;
  await v.p.goto(at(`/experiments/${cfg.victor.kept_exp_id}/runs/${cfg.victor.kept_run_id}`, "team-a"));
  r.victor_kept_run_shows_name = await textAfter(v.p, cfg.victor.kept_run, WAIT);
  r.victor_kept_run_graphql = v.api.filter((a) => a.path === "/graphql").map((a) => a.status);
  const gql = (runId) => fetchAsUi(v.p, "/graphql", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ operationName: "GetRun", query: cfg.victor.query, variables: { data: { runId } } }),
  });
  r.victor_graphql_denied = await gql(cfg.victor.denied_run_id);
  r.victor_graphql_kept = await gql(cfg.victor.kept_run_id);
  await v.context.close();
});
