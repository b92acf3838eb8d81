// A typed client for the Segments API, as a front-end developer would write one: the
// types come from openapi/openapi.json (`npm run generate`), the calls go through
// openapi-fetch, so a path, a parameter or a field the document does not have is a
// compile error, not a runtime surprise.
//
// Against a live service (SEGMENTS_URL, SEGMENTS_API_KEY of a tenant) it creates four
// contacts, a static WhatsApp segment with them as members, a second one sharing a member
// and a third to exclude, then a campaign, and checks the membership report, the audience
// summary, page and stream against what the contract (API.md) says they must be; then
// edits a segment with `If-Match` (and sees the 412 a stale version gets) and retries a
// create with an `Idempotency-Key`. Every run uses
// fresh names and phone numbers, so it can run again on the same tenant. Exits 1 on the
// first failed request and after all checks when any number differs.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`demo: set ${name}`);
    process.exit(2);
  }
  return value;
}

const baseUrl = requireEnv("SEGMENTS_URL").replace(/\/+$/, "");
const apiKey = requireEnv("SEGMENTS_API_KEY");

const api = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${apiKey}` },
});

// --- checks -------------------------------------------------------------------------

let passed = 0;
const failures: string[] = [];

function check<T>(what: string, actual: T, expected: T): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a === e) {
    passed += 1;
  } else {
    failures.push(`${what}: expected ${e}, got ${a}`);
    console.error(`  MISMATCH ${what}: expected ${e}, got ${a}`);
  }
}

/** What every openapi-fetch call resolves to: data on success, the problem otherwise. */
interface Answer<D> {
  data?: D;
  error?: unknown;
  response: Response;
}

/**
 * Awaits a call that must answer `status` with a body. Anything else ends the run: the
 * steps after it would only report the same failure again.
 */
async function expect<D>(what: string, status: number, call: Promise<Answer<D>>): Promise<D> {
  const { data, error, response } = await call;
  if (response.status !== status || data === undefined) {
    console.error(`demo: ${what}: expected ${status}, got ${response.status}`);
    console.error(JSON.stringify(error ?? data, null, 2));
    process.exit(1);
  }
  console.log(`  ${response.status} ${what}`);
  return data;
}

// --- the scenario --------------------------------------------------------------------

// Unique per run: segment names are unique per tenant, validated phones too.
const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
const mobile = (): string => `+39 333 ${String(Math.floor(Math.random() * 1e7)).padStart(7, "0")}`;

async function createContact(body: Schemas["CreateContact"]): Promise<Schemas["Contact"]> {
  return expect(`create contact ${body.name}`, 201, api.POST("/v1/contacts", { body }));
}

async function createSegment(name: string): Promise<Schemas["Segment"]> {
  return expect(
    `create segment ${name}`,
    201,
    api.POST("/v1/segments", { body: { name, channel: "whatsapp", kind: "static" } }),
  );
}

async function addMembers(segment: Schemas["Segment"], contactIds: number[]): Promise<Schemas["MembershipReport"]> {
  return expect(
    `add ${contactIds.length} ids to segment ${segment.id}`,
    200,
    api.POST("/v1/segments/{id}/members", {
      params: { path: { id: segment.id } },
      body: { contact_ids: contactIds },
    }),
  );
}

async function main(): Promise<void> {
  console.log(`demo: against ${baseUrl}, run ${run}`);

  // Four contacts, one per fate in the audience: reached, opted out, no phone (so no
  // WhatsApp address), and a member of the exclusion segment.
  const phoneA = mobile();
  const reached = await createContact({ name: `Giulia Rossi ${run}`, phone: phoneA, privacy_consent: true });
  const optedOut = await createContact({ name: `Marco Bianchi ${run}`, phone: mobile(), opted_out: true });
  const noPhone = await createContact({ name: `Anna Verdi ${run}`, email: `anna.${run}@example.com` });
  const excluded = await createContact({ name: `Luca Neri ${run}`, phone: mobile() });

  check("contact phone_valid", reached.phone_valid, true);
  check("contact phone_e164", reached.phone_e164, phoneA.replace(/ /g, ""));
  check("contact without phone: phone_valid", noPhone.phone_valid, false);

  const segment = await createSegment(`Milan candidates ${run}`);
  check("new static segment: kind", segment.kind, "static");
  check("new static segment: recipients", segment.recipients, 0);
  check("new static segment: filter_summary", segment.filter_summary, "No filters");

  // A repeated id counts once; an unknown id is rejected, not an error; the contact
  // without a phone joins a WhatsApp segment with the warning `no_validated_mobile`.
  const unknownId = Number.MAX_SAFE_INTEGER;
  const report = await addMembers(segment, [reached.id, optedOut.id, noPhone.id, excluded.id, reached.id, unknownId]);
  check("report.added", report.added, 4);
  check("report.already_members", report.already_members, 0);
  check("report.rejected", report.rejected.map((r) => [r.contact_id, r.code]), [[unknownId, "contact_not_found"]]);
  check("report.rejected_total", report.rejected_total, 1);
  check(
    "report.warnings",
    report.warnings.map((w) => [w.code, w.contact_ids, w.count]),
    [["no_validated_mobile", [noPhone.id], 1]],
  );
  check("report.recipients", report.recipients, 4);

  const again = await addMembers(segment, [reached.id]);
  check("second add: added", again.added, 0);
  check("second add: already_members", again.already_members, 1);
  check("second add: recipients", again.recipients, 4);

  // A second included segment that shares a member: the audience counts each contact
  // once, whatever the number of segments it is in.
  const shortlist = await createSegment(`Spring shortlist ${run}`);
  const shortlistReport = await addMembers(shortlist, [reached.id]);
  check("shortlist: added", shortlistReport.added, 1);

  const exclusion = await createSegment(`Already hired ${run}`);
  const exclusionReport = await addMembers(exclusion, [excluded.id]);
  check("exclusion segment: added", exclusionReport.added, 1);

  const campaign = await expect(
    "create campaign",
    201,
    api.POST("/v1/campaigns", {
      body: {
        name: `Spring hiring day ${run}`,
        channel: "whatsapp",
        segment_ids: [segment.id, shortlist.id],
        exclude_segment_ids: [exclusion.id],
      },
    }),
  );
  check("campaign.segment_ids", campaign.segment_ids, [segment.id, shortlist.id]);
  check("campaign.exclude_segment_ids", campaign.exclude_segment_ids, [exclusion.id]);

  // Each left-out contact counts once, under the first reason that applies:
  // exclusion, opted out, no consent, no address (API.md).
  const summary = await expect(
    "audience summary",
    200,
    api.GET("/v1/campaigns/{id}/audience/summary", { params: { path: { id: campaign.id } } }),
  );
  check("summary.total_unique", summary.total_unique, 4);
  check("summary.eligible", summary.eligible, 1);
  check("summary.excluded", summary.excluded, { by_exclusion: 1, opted_out: 1, no_consent: 0, no_address: 1 });
  const { by_exclusion, opted_out, no_consent, no_address } = summary.excluded;
  check(
    "eligible + excluded = total_unique",
    summary.eligible + by_exclusion + opted_out + no_consent + no_address,
    summary.total_unique,
  );

  const page = await expect(
    "audience page",
    200,
    api.GET("/v1/campaigns/{id}/audience", { params: { path: { id: campaign.id } } }),
  );
  check(
    "audience recipients",
    page.items.map((r) => [r.contact_id, r.address]),
    [[reached.id, reached.phone_e164]],
  );
  check("audience next_after", page.next_after ?? null, null);

  // The stream a sender consumes: one JSON object per line, the same recipients once.
  const stream = await expect(
    "audience stream (NDJSON)",
    200,
    api.GET("/v1/campaigns/{id}/audience.ndjson", { params: { path: { id: campaign.id } }, parseAs: "text" }),
  );
  const streamed = stream
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Schemas["AudienceRecipient"]);
  check(
    "audience stream recipients",
    streamed.map((r) => [r.contact_id, r.address]),
    [[reached.id, reached.phone_e164]],
  );

  // Editing with If-Match: read the segment's ETag, change it with that version; a second
  // editor still holding the first version is told (412) and changes nothing.
  const read = await api.GET("/v1/segments/{id}", { params: { path: { id: segment.id } } });
  const version = read.response.headers.get("etag") ?? "";
  check("GET segment carries an ETag", version.length > 2, true);
  const edited = await expect(
    "rename segment with If-Match",
    200,
    api.PATCH("/v1/segments/{id}", {
      params: { path: { id: segment.id }, header: { "If-Match": version } },
      body: { name: `Milan candidates (edited) ${run}` },
    }),
  );
  check("edited name", edited.name, `Milan candidates (edited) ${run}`);
  const stale = await api.PATCH("/v1/segments/{id}", {
    params: { path: { id: segment.id }, header: { "If-Match": version } },
    body: { name: `Overwritten ${run}` },
  });
  check("stale If-Match: status", stale.response.status, 412);
  check("stale If-Match: code", (stale.error as Schemas["Problem"] | undefined)?.code, "precondition_failed");

  // A create retried after a timeout, with the same Idempotency-Key: the first answer
  // again, marked replayed, and one segment, not two.
  const idempotencyKey = `create-shortlist-${run}`;
  const create = () =>
    api.POST("/v1/segments", {
      params: { header: { "Idempotency-Key": idempotencyKey } },
      body: { name: `Retried ${run}`, channel: "whatsapp" },
    });
  const first = await create();
  const retried = await create();
  check("retried create: statuses", [first.response.status, retried.response.status], [201, 201]);
  check("retried create: same segment", retried.data?.id, first.data?.id);
  check("retried create: replayed", retried.response.headers.get("idempotent-replayed"), "true");

  // Errors are typed too: the type checker refuses a channel the document does not
  // list, and the service answers the same with a 422 problem naming the field.
  const refused = await api.POST("/v1/segments", {
    // @ts-expect-error "fax" is not a Channel: this is the point of generated types.
    body: { name: `Fax ${run}`, channel: "fax" },
  });
  check("unknown channel: status", refused.response.status, 422);
  check("unknown channel: content type", refused.response.headers.get("content-type"), "application/problem+json");
  const problem = refused.error as Schemas["Problem"] | undefined;
  check("unknown channel: code", problem?.code, "validation_failed");
  check("unknown channel: field", problem?.errors?.map((e) => e.field), ["channel"]);

  if (failures.length > 0) {
    console.error(`demo: ${failures.length} of ${passed + failures.length} checks failed`);
    process.exit(1);
  }
  console.log(`demo: all ${passed} checks passed (segment ${segment.id}, campaign ${campaign.id})`);
}

main().catch((err: unknown) => {
  console.error("demo:", err);
  process.exit(1);
});
