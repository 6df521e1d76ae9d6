// Drives Phoenix's TypeScript client (@arizeai/phoenix-client, pinned in package.json) for the
// ashgate tests: `node run.mjs '<plan JSON>'` with PHOENIX_HOST and PHOENIX_API_KEY set.
// The plan is a list of {name, call, args}; one JSON object of results is printed, each
// {"ok": value} or {"error": message}, so the Rust test can check every answer.
import { createClient } from "@arizeai/phoenix-client";
import { getSpans } from "@arizeai/phoenix-client/spans";
import { getTraces } from "@arizeai/phoenix-client/traces";

const client = createClient();

async function allPages(fetchPage) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 100; page++) {
    const { items: got, next } = await fetchPage(cursor);
    items.push(...got);
    if (!next || got.length === 0) break;
    cursor = next;
  }
  return items;
}

const calls = {
  version: async () => client.getServerVersion(),
  getSpans: async (args) =>
    (
      await allPages(async (cursor) => {
        const page = await getSpans({ client, ...args, cursor });
        return { items: page.spans, next: page.nextCursor };
      })
    ).map((s) => ({ name: s.name, span_id: s.context.span_id, parent_id: s.parent_id, span_kind: s.span_kind, status_code: s.status_code })),
  getTraces: async (args) =>
    (
      await allPages(async (cursor) => {
        const page = await getTraces({ client, ...args, cursor });
        return { items: page.traces, next: page.nextCursor };
      })
    ).map((t) => ({ trace_id: t.trace_id, spans: (t.spans ?? []).map((s) => s.name) })),
  GET: async ({ path, params }) => {
    const { data, error, response } = await client.GET(path, { params });
    if (error !== undefined) return { status: response.status, error };
    return { status: response.status, data };
  },
};

const plan = JSON.parse(process.argv[2] ?? "[]");
const results = {};
for (const { name, call, args } of plan) {
  try {
    results[name] = { ok: await calls[call](args ?? {}) };
  } catch (error) {
    results[name] = { error: String(error?.message ?? JSON.stringify(error)) };
  }
}
console.log(JSON.stringify(results));
