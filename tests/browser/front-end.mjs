// A front-end on another origin, as a team building screens on the API would write one:
// a page served by a small static server (this script's, on PAGE_PORT) calls the service
// with fetch from headless Chromium. It lists segments, builds a filter from
// `filter-fields` and previews it, edits a segment with `If-Match` (and sees the 412 a
// stale version gets), and retries a create with an `Idempotency-Key`. Every call is a
// real cross-origin request: the browser sends the CORS preflights and enforces the
// answers, so a header the service does not expose reads as null here.
//
// Env: SEGMENTS_URL (the service, started with SEGMENTS_CORS_ORIGINS naming the page's
// origin), SEGMENTS_API_KEY (a tenant's key), PAGE_PORT (the page's port), CHROMIUM
// (optional, default /usr/bin/chromium). Exits 1 naming the first step that failed.

import { createServer } from "node:http";
import { chromium } from "playwright-core";

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`front-end: set ${name}`);
    process.exit(2);
  }
  return value;
}

const api = required("SEGMENTS_URL").replace(/\/+$/, "");
const apiKey = required("SEGMENTS_API_KEY");
const port = Number(required("PAGE_PORT"));
const pageOrigin = `http://127.0.0.1:${port}`;
if (new URL(api).origin === pageOrigin) {
  console.error("front-end: the page must be on another origin than the service");
  process.exit(2);
}

// The page: its script runs the scenario and leaves what it saw in `window.results`.
const page = `<!doctype html>
<meta charset="utf-8">
<title>Segments front-end check</title>
<script type="module">
const api = ${JSON.stringify(api)};
const auth = { Authorization: "Bearer ${apiKey}" };
const json = { ...auth, "Content-Type": "application/json" };
const results = {};
try {
  const run = Date.now().toString(36);
  // A list screen.
  const listed = await fetch(api + "/v1/segments?per_page=10", { headers: auth });
  results.list = listed.status;
  results.rateLimitVisible = listed.headers.get("ratelimit-remaining") !== null;
  results.requestIdVisible = listed.headers.get("x-request-id") !== null;

  // "Save" clicked twice after a timeout: one segment, the first answer again.
  const create = () => fetch(api + "/v1/segments", {
    method: "POST",
    headers: { ...json, "Idempotency-Key": "front-end-" + run },
    body: JSON.stringify({ name: "Front-end " + run, channel: "whatsapp" }),
  });
  const first = await create();
  const again = await create();
  const created = await first.json();
  results.create = [first.status, again.status];
  results.sameSegment = (await again.json()).id === created.id;
  results.replayed = again.headers.get("idempotent-replayed");

  // An edit screen: read, change with the version read; someone else's stale save fails.
  const read = await fetch(api + "/v1/segments/" + created.id, { headers: auth });
  const version = read.headers.get("etag");
  results.etagVisible = version !== null;
  const edit = (name, tag) => fetch(api + "/v1/segments/" + created.id, {
    method: "PATCH",
    headers: { ...json, "If-Match": tag },
    body: JSON.stringify({ name }),
  });
  const mine = await edit("Front-end " + run + " (edited)", version);
  const theirs = await edit("Front-end " + run + " (overwritten)", version);
  results.edits = [mine.status, theirs.status];
  results.staleCode = (await theirs.json()).code;
  results.nameNow = (await (await fetch(api + "/v1/segments/" + created.id, { headers: auth })).json()).name;

  // A filter editor: menus from filter-fields, a condition built from them, previewed.
  const described = await (await fetch(api + "/v1/segments/filter-fields", { headers: auth })).json();
  const name = described.fields.find((f) => f.field === "name");
  const operator = name.operators.find((o) => o.value === "none");
  const preview = await fetch(api + "/v1/segments/preview", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ channel: "whatsapp", filter: { field: name.field, op: operator.op } }),
  });
  results.preview = preview.status;
  results.previewSummary = (await preview.json()).filter_summary;
} catch (error) {
  results.error = String(error);
}
window.results = results;
</script>`;

const server = createServer((request, response) => {
  response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  response.end(page);
});
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
let status = 0;
try {
  const tab = await browser.newPage();
  const errors = [];
  tab.on("pageerror", (error) => errors.push(String(error)));
  // Chromium logs every 4xx as a console error; the 412 is the point of one step.
  tab.on("console", (message) => {
    if (message.type() === "error" && !message.text().includes("412 (Precondition Failed)")) {
      errors.push(message.text());
    }
  });
  await tab.goto(`${pageOrigin}/`);
  await tab.waitForFunction(() => window.results !== undefined, null, { timeout: 20000 });
  const seen = await tab.evaluate(() => window.results);
  console.log(`  page on ${pageOrigin} calling ${api}: ${JSON.stringify(seen)}`);
  const expected = {
    list: 200,
    rateLimitVisible: true,
    requestIdVisible: true,
    create: [201, 201],
    sameSegment: true,
    replayed: "true",
    etagVisible: true,
    edits: [200, 412],
    staleCode: "precondition_failed",
    preview: 200,
  };
  for (const [key, value] of Object.entries(expected)) {
    if (JSON.stringify(seen[key]) !== JSON.stringify(value)) {
      throw new Error(`${key}: expected ${JSON.stringify(value)}, saw ${JSON.stringify(seen[key])}`);
    }
  }
  if (!String(seen.nameNow).endsWith("(edited)")) throw new Error(`the stale edit overwrote: ${seen.nameNow}`);
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("front-end: listed, created once on retry, edited with If-Match (a stale edit got 412), previewed a filter built from filter-fields, across origins");
} catch (error) {
  console.error(`front-end: ${error instanceof Error ? error.message : error}`);
  status = 1;
} finally {
  await browser.close();
  server.close();
}
process.exit(status);
