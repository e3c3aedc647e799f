// What the browser checks in this folder share: headless Chromium (Debian's package, or
// $CHROMIUM) driven by playwright-core, waiting for a text without failing the check, and
// signing in at the real `oidc-provider` (tests/idp/oidc_provider.mjs, its devInteractions
// login and consent pages). Each check keeps what is its own (how it opens pages, what it
// records) in its file.
const { chromium } = require("playwright-core");

// How long a step may take before the check records it as not shown.
const WAIT = 60000;

// Runs a check: launches the browser, runs `steps(browser)` (which fills `result`), closes the
// browser whatever happened, then prints `result` as one JSON line for the Python test; an
// error is printed to stderr with exit status 1.
function run(result, steps) {
  (async () => {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      await steps(browser);
    } finally {
      await browser.close();
    }
    console.log(JSON.stringify(result));
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

// A fresh browser context (no cookies) and its page, with every top-level navigation request
// (each redirect hop included) recorded in order.
async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const p = await context.newPage();
  p.on("pageerror", () => {});
  const navigations = [];
  p.on("request", (r) => {
    if (r.isNavigationRequest() && r.frame() === p.mainFrame()) navigations.push(r.url());
  });
  return { context, p, navigations };
}

// Whether `text` shows on the page within `timeoutMs` (false rather than an exception: the
// checks report what each page showed and the Python test asserts).
async function textAfter(p, text, timeoutMs) {
  try {
    await p.getByText(text, { exact: false }).first().waitFor({ timeout: timeoutMs });
    return true;
  } catch (e) {
    return false;
  }
}

// On the way to (or at) the IdP's login page: sign in as `login` (devInteractions takes any
// password), consent, and wait until the browser is back at the gateway `gw`, past its
// `/oauth2/` callback.
async function signIn(p, gw, idp, login) {
  await p.waitForURL((u) => u.toString().startsWith(`${idp}/`), { timeout: WAIT });
  await p.waitForSelector('input[name="login"]', { timeout: WAIT });
  await p.fill('input[name="login"]', login);
  await p.fill('input[name="password"]', "any password");
  await Promise.all([p.waitForNavigation({ timeout: WAIT }), p.click('button[type="submit"]')]);
  if (p.url().startsWith(`${idp}/`)) {
    await p.click('button[type="submit"]'); // the consent page ("Continue")
  }
  await p.waitForURL((u) => u.toString().startsWith(`${gw}/`) && !u.toString().includes("/oauth2/"), { timeout: WAIT });
}

module.exports = { WAIT, run, newPage, textAfter, signIn };
