// Swagger UI as QA uses it, in a real browser (Debian's chromium via playwright-core):
// the page loads from the service's own vendored assets, "Authorize" takes an API key,
// "Try it out" on "list segments" answers 200 with a segment this script created, and a
// spreadsheet-style CSV and an Excel workbook uploaded through "Try it out" on the import
// are reported line by line.
//
// Env: SEGMENTS_URL (e.g. http://127.0.0.1:8080), SEGMENTS_API_KEY (a tenant's key),
// SCREENSHOT (optional: where to save a PNG of the executed request), CHROMIUM (optional,
// default /usr/bin/chromium). Exits 1 with the reason on the first failed step; requests
// that leave the service and script errors in the page are reported once the rest has run.

import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const base = required("SEGMENTS_URL").replace(/\/+$/, "");
const apiKey = required("SEGMENTS_API_KEY");
const screenshot = process.env.SCREENSHOT;

// The browser opens the service under a made-up host name that chromium resolves to the
// service's address. Swagger UI asks the online validator (validator.swagger.io) for a
// badge on every host but localhost and 127.0.0.1, so only under another name does the
// test see the requests a staging or production host would make.
const service = new URL(base);
const alias = "segments.test";
const pageBase = `${service.protocol}//${alias}${service.port ? `:${service.port}` : ""}`;
const origin = new URL(pageBase).origin;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`swagger-ui: set ${name}`);
    process.exit(2);
  }
  return value;
}

function step(message) {
  console.log(`  ${message}`);
}

function fail(message) {
  throw new Error(message);
}

// A segment to find in the list. The name is unique per run so the assertion cannot be
// satisfied by an earlier run's data.
const segmentName = `Swagger UI check ${Date.now().toString(36)}`;
const created = await fetch(`${base}/v1/segments`, {
  method: "POST",
  headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
  body: JSON.stringify({ name: segmentName, channel: "whatsapp" }),
});
if (created.status !== 201) {
  console.error(`swagger-ui: creating the segment answered ${created.status}: ${await created.text()}`);
  process.exit(1);
}
const segment = await created.json();
step(`created segment ${segment.id} "${segmentName}" with fetch`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--host-resolver-rules=MAP ${alias} ${service.hostname}`,
  ],
});

let status = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });

  // Every request the page makes is recorded; one that leaves the service is refused
  // and fails the test: Swagger UI must work offline, from the vendored bundle.
  const external = [];
  const loaded = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("data:") || url.startsWith("blob:") || new URL(url).origin === origin) {
      return route.continue();
    }
    external.push(url);
    return route.abort("blockedbyclient");
  });
  page.on("response", (response) => loaded.push([response.status(), response.url()]));
  const consoleErrors = [];
  page.on("pageerror", (error) => consoleErrors.push(String(error)));

  await page.goto(`${pageBase}/swagger-ui/`, { waitUntil: "networkidle" });
  await page.locator(".swagger-ui .info .title").filter({ hasText: "Segments" }).waitFor({ timeout: 15000 });
  step("page loaded, title shows the document's \"Segments\"");

  const bundle = loaded.find(([, url]) => url.startsWith(`${pageBase}/swagger-ui/`) && url.endsWith("swagger-ui-bundle.js"));
  if (!bundle || bundle[0] !== 200) fail(`swagger-ui-bundle.js not served by the service: ${JSON.stringify(loaded)}`);
  const failed = loaded.filter(([code]) => code >= 400);
  if (failed.length > 0) fail(`assets failed to load: ${JSON.stringify(failed)}`);
  if (!loaded.some(([code, url]) => code === 200 && url === `${pageBase}/api-docs/openapi.json`)) {
    fail("the OpenAPI document was not loaded from /api-docs/openapi.json");
  }
  // Reported at the end, so that one run also shows whether the rest works.
  if (external.length === 0) step(`${loaded.length} requests, all to ${origin} (the service), none failed`);

  // Authorize: the dialog lists both bearer schemes; the key goes into api_key's.
  await page.locator(".auth-wrapper .btn.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.waitFor();
  const scheme = dialog.locator(".auth-container").filter({ has: page.locator("h4", { hasText: "api_key" }) });
  await scheme.locator("input").fill(apiKey);
  await scheme.locator("button.authorize").click();
  // Once authorized the scheme offers "Logout" instead of the input.
  await scheme.locator("button", { hasText: "Logout" }).waitFor();
  // Each scheme's form has its own "Close"; any of them closes the dialog.
  await scheme.locator("button.btn-done").click();
  await dialog.waitFor({ state: "detached" });
  step("authorized with the API key (bearer scheme api_key)");

  // "list segments": GET /v1/segments, under the "segments" tag.
  const operation = page.locator("#operations-segments-list_segments");
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator("button.execute").click();
  const liveStatus = operation.locator(".live-responses-table .response .response-col_status").first();
  await liveStatus.waitFor({ timeout: 15000 });
  const shownStatus = (await liveStatus.innerText()).trim();
  const body = await operation.locator(".live-responses-table .response .response-col_description pre").first().innerText();
  const curl = await operation.locator(".curl-command").innerText().catch(() => "");
  step(`executed GET /v1/segments: Swagger UI shows ${shownStatus}`);

  if (shownStatus !== "200") fail(`expected 200, Swagger UI shows ${shownStatus}:\n${body}`);
  if (!curl.includes(`Authorization: Bearer ${apiKey}`)) fail(`the request did not carry the key:\n${curl}`);
  let listed;
  try {
    listed = JSON.parse(body);
  } catch {
    fail(`the response body is not JSON:\n${body}`);
  }
  const found = listed.items?.find((item) => item.id === segment.id);
  if (!found || found.name !== segmentName) fail(`segment ${segment.id} not in the response:\n${body}`);
  step(`the response lists segment ${segment.id} "${found.name}" (total ${listed.total})`);


  if (screenshot) {
    // The picture is for people (docs/swagger-ui.png): the whole operation, from its
    // summary to the live response, with the key in the curl line shortened, as a key
    // does not belong in a committed image even when its database is long gone.
    await page.evaluate((key) => {
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.nodeValue.includes(key)) node.nodeValue = node.nodeValue.replaceAll(key, `${key.slice(0, 6)}…`);
      }
    }, apiKey);
    const top = await operation.boundingBox();
    const live = await operation.locator(".live-responses-table").boundingBox();
    if (!top || !live) fail("the operation is not on screen for the screenshot");
    // Bounding boxes are relative to the viewport, a full-page clip to the page.
    const scrollY = await page.evaluate(() => window.scrollY);
    const clip = { x: top.x, y: top.y + scrollY, width: top.width, height: live.y + live.height - top.y };
    await page.screenshot({ path: screenshot, fullPage: true, clip });
    step(`screenshot: ${screenshot}`);
  }
  // "import a CSV": the spreadsheet a user would make (BOM, semicolons, CRLF, a bad row,
  // one number twice in two spellings), uploaded as the form's `file` field.
  const importOperation = page.locator("#operations-segments-import_segment_csv");
  await importOperation.locator(".opblock-summary").first().click();
  await importOperation.locator("button.try-out__btn").click();
  await importOperation.locator('tr[data-param-name="id"] input').fill(String(segment.id));
  const spreadsheet = "\uFEFFPhone;Full Name;Email\r\n333 123 4567;Giulia Rossi;giulia@example.com\r\n" +
    "+39 333 1234567;Giulia again;\r\nnot a phone;Broken;\r\n+44 7400 123456;Oliver Smith;\r\n";
  await importOperation.locator('input[type="file"]').setInputFiles({
    name: "people.csv",
    mimeType: "text/csv",
    buffer: Buffer.from(spreadsheet, "utf8"),
  });
  await importOperation.locator("button.execute").click();
  const importStatus = importOperation.locator(".live-responses-table .response .response-col_status").first();
  await importStatus.waitFor({ timeout: 15000 });
  const importShown = (await importStatus.innerText()).trim();
  const reportText = await importOperation.locator(".live-responses-table .response .response-col_description pre").first().innerText();
  if (importShown !== "200") fail(`the import answered ${importShown}:\n${reportText}`);
  const report = JSON.parse(reportText);
  const buckets = report.added + report.already_members + report.rejected + report.duplicates_in_file + report.invalid_rows;
  if (report.rows !== 4 || report.added !== 2 || report.duplicates_in_file !== 1 || report.invalid_rows !== 1 || buckets !== report.rows) {
    fail(`unexpected import report:\n${reportText}`);
  }
  if (report.errors[0]?.line !== 4 || report.errors[0]?.code !== "invalid_phone") fail(`the bad row is not line 4:\n${reportText}`);
  step(`uploaded a CSV through "Try it out": ${report.rows} rows = ${report.added} added + ${report.duplicates_in_file} duplicate + ${report.invalid_rows} invalid (line ${report.errors[0].line})`);

  // The same operation with an Excel workbook (tests/fixtures/contacts.xlsx, built and
  // kept current by tests/api/import_files.rs): Giulia is a member already, Marco is new,
  // the third row has no phone.
  const workbook = await readFile(new URL("../fixtures/contacts.xlsx", import.meta.url));
  await importOperation.locator('input[type="file"]').setInputFiles({
    name: "contatti.xlsx",
    mimeType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    buffer: workbook,
  });
  await importOperation.locator("button.execute").click();
  await page.waitForFunction(
    (selector) => document.querySelector(selector)?.innerText.includes('"xlsx"'),
    "#operations-segments-import_segment_csv .live-responses-table .response .response-col_description pre",
    { timeout: 15000 },
  ).catch(() => {});
  const xlsxShown = (await importStatus.innerText()).trim();
  const xlsxText = await importOperation.locator(".live-responses-table .response .response-col_description pre").first().innerText();
  if (xlsxShown !== "200") fail(`the workbook import answered ${xlsxShown}:\n${xlsxText}`);
  const xlsxReport = JSON.parse(xlsxText);
  if (xlsxReport.format !== "xlsx" || xlsxReport.rows !== 3 || xlsxReport.added !== 1 ||
      xlsxReport.already_members !== 1 || xlsxReport.invalid_rows !== 1 || xlsxReport.errors[0]?.code !== "missing_phone") {
    fail(`unexpected workbook report:\n${xlsxText}`);
  }
  step(`uploaded an .xlsx through "Try it out": ${xlsxReport.rows} rows = ${xlsxReport.added} added + ${xlsxReport.already_members} already a member + ${xlsxReport.invalid_rows} invalid`);

  if (external.length > 0) fail(`requests outside the service (refused): ${external.join(", ")}`);
  if (consoleErrors.length > 0) fail(`page errors: ${consoleErrors.join("; ")}`);
  console.log("swagger-ui: page loaded offline, Authorize worked, list segments answered 200 with the new segment, a CSV and an .xlsx upload were reported");
} catch (error) {
  console.error(`swagger-ui: ${error instanceof Error ? error.message : error}`);
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
