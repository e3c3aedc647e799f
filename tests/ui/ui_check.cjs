// Drives the real MLflow UI through the gateway in headless Chromium (Debian's package) with
// playwright-core. Identity is injected as a header, as a header-injecting SSO proxy would.
// Usage: node ui_check.cjs <gateway-url> <experiment-id> <experiment-name> <run-id> <run-name> <out-dir> [workspace|tag]
// Prints one JSON object with what each page showed; screenshots go to <out-dir>.
// In workspace mode the UI opens on its workspace chooser (`/`), which must list only the
// tenant's own workspace; pages carry `?workspace=<name>` as the UI's own links do (team-b's
// visit to team-a's run names team-a's workspace: the gateway pins team-b's regardless).
const { run, textAfter } = require("./browser.cjs");

const [url, expId, expName, runId, runName, outDir, isolation] = process.argv.slice(2);
const workspaces = isolation === "workspace";
// A UI route, with the workspace query the UI itself adds in workspace mode.
const at = (route, ws) => `${url}/#${route}${workspaces ? `?workspace=${ws}` : ""}`;

async function page(browser, tenant) {
  const context = await browser.newContext({
    extraHTTPHeaders: { "X-Tenant": tenant, "X-Subject": `${tenant}-user` },
    viewport: { width: 1400, height: 900 },
  });
  const p = await context.newPage();
  p.on("pageerror", () => {});
  return { context, p };
}

const result = {};
run(result, async (browser) => {
  // team-a: experiment page lists its run; run page shows the run and its metric.
  let { context, p } = await page(browser, "team-a");
  if (workspaces) {
    // The landing page lists workspaces: team-a's only, and opens it on a click.
    await p.goto(`${url}/`);
    result.a_chooser_shows_own = await textAfter(p, "team-a", 60000);
    result.a_chooser_shows_other = (await p.innerText("body")).includes("team-b");
    await p.screenshot({ path: `${outDir}/team-a-workspaces.png`, fullPage: true });
    await p.getByText("team-a", { exact: true }).first().click();
    result.a_chooser_opens_workspace = await textAfter(p, expName, 60000);
  }
  await p.goto(at(`/experiments/${expId}/runs`, "team-a"));
  result.a_experiment_shows_run = await textAfter(p, runName, 60000);
  await p.screenshot({ path: `${outDir}/team-a-experiment.png`, fullPage: true });
  await p.goto(at(`/experiments/${expId}/runs/${runId}`, "team-a"));
  result.a_run_shows_name = await textAfter(p, runName, 60000);
  result.a_run_shows_metric = await textAfter(p, "loss", 30000);
  await p.screenshot({ path: `${outDir}/team-a-run.png`, fullPage: true });
  await context.close();

  // team-b: the experiment list does not show team-a's experiment; team-a's run URL errors.
  ({ context, p } = await page(browser, "team-b"));
  await p.goto(at("/experiments", "team-b"));
  await p.waitForLoadState("networkidle", { timeout: 60000 }).catch(() => {});
  await textAfter(p, "Experiments", 30000);
  result.b_list_rendered = await textAfter(p, "Experiments", 1000);
  result.b_list_shows_a = (await p.content()).includes(expName);
  await p.screenshot({ path: `${outDir}/team-b-experiments.png`, fullPage: true });
  await p.goto(at(`/experiments/${expId}/runs/${runId}`, "team-a"));
  await p.waitForLoadState("networkidle", { timeout: 60000 }).catch(() => {});
  await p.waitForTimeout(2000);
  const body = await p.content();
  result.b_run_shows_name = body.includes(runName);
  result.b_run_shows_error = /permission|denied|does not exist|not found|error/i.test(await p.innerText("body"));
  await p.screenshot({ path: `${outDir}/team-b-run.png`, fullPage: true });
  await context.close();
});
