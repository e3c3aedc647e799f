// Starts an LLM judge on traces from the real MLflow UI through the gateway, in headless Chromium
// (Debian's package) with playwright-core, as one team-a member whose identity and role are
// injected as headers (as a header-injecting SSO proxy would). The UI's own flow in MLflow 3.17.2:
// Traces tab, select the traces, "Actions", "Run judges" (labelled "Run scorers" in some
// builds), tick a registered judge, "Run judge"; the UI then sends
// `POST /ajax-api/3.0/mlflow/scorer/invoke`, polls `GET /ajax-api/3.0/jobs/<id>` and shows a
// banner: `Judge "<name>" completed successfully.` or `Judge "<name>" failed: <message>`.
// Usage: node judge_check.cjs <gateway-url> <experiment-id> <judge-name> <trace-marker> <role> <out-dir> [workspace|tag]
// <trace-marker>: a text every trace of the experiment shows in its input (the table is loaded).
// Prints one JSON object on its last line: what the page showed, every `scorer/invoke` request
// the UI sent with its answer, and the last status of every job the UI polled. Screenshots go to
// <out-dir>/judge-<role>-*.png.
const { run } = require("./browser.cjs");

const [url, expId, judge, marker, role, outDir, isolation] = process.argv.slice(2);
const workspaces = (isolation || "workspace") === "workspace";
const at = (route) => `${url}/#${route}${workspaces ? "?workspace=team-a" : ""}`;
const shot = (p, name) => p.screenshot({ path: `${outDir}/judge-${role}-${name}.png`, fullPage: true });

async function visible(locator, timeoutMs) {
  try {
    await locator.waitFor({ timeout: timeoutMs });
    return true;
  } catch (e) {
    return false;
  }
}

const result = { role, invokes: [], jobs: {} };
const pending = [];
run(result, async (browser) => {
  const context = await browser.newContext({
    extraHTTPHeaders: { "X-Tenant": "team-a", "X-Subject": `${role}-user`, "X-Roles": role },
    viewport: { width: 1600, height: 900 },
  });
  const p = await context.newPage();
  p.on("pageerror", () => {});
  p.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    if (path.endsWith("/mlflow/scorer/invoke")) {
      pending.push((async () => {
        let sent = {};
        try { sent = JSON.parse(r.request().postData() || "{}"); } catch (e) {}
        let body = {};
        try { body = await r.json(); } catch (e) {}
        result.invokes.push({
          method: r.request().method(),
          status: r.status(),
          request_id: r.headers()["x-request-id"] || body.request_id || null,
          experiment_id: sent.experiment_id,
          trace_ids: sent.trace_ids || [],
          scorer_name: (() => { try { return JSON.parse(sent.serialized_scorer).name; } catch (e) { return null; } })(),
          error_code: body.error_code || null,
          message: body.message || null,
          job_ids: (body.jobs || []).map((j) => j.job_id),
        });
      })());
    }
    const job = path.match(/\/ajax-api\/3\.0\/jobs\/([0-9a-f-]{36})$/);
    if (job && r.request().method() === "GET") {
      pending.push(r.json().then((b) => {
        result.jobs[job[1]] = { http_status: r.status(), status: b.status || null, job_name: b.job_name || null };
      }).catch(() => { result.jobs[job[1]] = { http_status: r.status(), status: null }; }));
    }
  });

  await p.goto(at(`/experiments/${expId}/traces`));
  result.traces_shown = await visible(p.getByText(marker).first(), 60000);
  // First-visit popovers and the assistant's side panel, when the UI shows them.
  const gotIt = p.getByRole("button", { name: "Got it" });
  if (await visible(gotIt, 3000)) await gotIt.click();
  const closeAssistant = p.locator('[data-component-id="mlflow.assistant.chat_panel.close"]');
  if (await visible(closeAssistant, 1000)) await closeAssistant.click();
  await shot(p, "traces");

  // Select every trace (the header checkbox), then Actions -> Run judges.
  await p.getByRole("checkbox").first().click();
  await p.getByRole("button", { name: /Actions/ }).click();
  const runJudges = p.getByRole("menuitem", { name: /^Run (judges|scorers)$/ });
  result.run_judges_offered = await visible(runJudges, 10000);
  await runJudges.click();
  const dialog = p.getByRole("dialog");
  result.dialog_title = await visible(dialog.getByText(/Run judge on/), 30000)
    ? (await dialog.getByText(/Run judge on/).first().innerText()) : null;
  // The registered judge's row: a checkbox row. Its label is a <label> whose click toggles the
  // inner checkbox too, so the row is clicked beside it.
  const row = dialog.locator('div[role="checkbox"]', { hasText: judge }).first();
  result.judge_listed = await visible(row, 30000);
  const box = await row.boundingBox();
  await row.click({ position: { x: box.width - 5, y: box.height / 2 } });
  result.judge_ticked = (await row.getAttribute("aria-checked")) === "true";
  await shot(p, "dialog");

  const answered = p.waitForResponse((r) => r.url().includes("/mlflow/scorer/invoke"), { timeout: 60000 });
  await dialog.getByRole("button", { name: /^Run judges?$/ }).click();
  await answered;
  // The UI's banner for this judge: running, then completed or failed (it goes away after ~10 s,
  // so it is waited for at once).
  const done = p.getByText(new RegExp(`Judge "${judge}" (completed successfully|failed)`)).first();
  if (await visible(done, 120000)) {
    result.banner = await done.innerText();
    await shot(p, "banner");
  } else {
    result.banner = null;
    await shot(p, "no-banner");
  }
  await Promise.all(pending);
  result.error_shown = /failed/.test(result.banner || "");
  await context.close();
});
