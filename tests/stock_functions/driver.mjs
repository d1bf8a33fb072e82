// Runs @mastra/convex 1.5.x's own TypeScript client against a deployment, for interop tests.
//
//   node driver.mjs <deployment url>   (admin key in env CONVEX_ADMIN_KEY)
//
// Reads one JSON array of calls on stdin: [{"domain": "memory", "method": "saveThread",
// "args": {...}}, ...] ("spread": true passes "args", an array, as positional arguments),
// {"cache": {...config}, "method": "get", "args": [...]} for ConvexServerCache, or
// {"vector": {...config}, "method": "query", "args": {...}} for ConvexVector. Runs them in
// order and prints a JSON array of results; a call that throws yields {"error": message}.
// JSON has no Date, so {"$date": iso} in args becomes a Date and a Date in results becomes
// {"$date": iso}.
import { ConvexServerCache, ConvexStore, ConvexVector } from "@mastra/convex";

const [url] = process.argv.slice(2);
const adminAuthToken = process.env.CONVEX_ADMIN_KEY;
if (!url || !adminAuthToken) {
  process.stderr.write("usage: CONVEX_ADMIN_KEY=... node driver.mjs <deployment url>\n");
  process.exit(2);
}

const revive = (_key, value) =>
  value && typeof value === "object" && typeof value.$date === "string" && Object.keys(value).length === 1
    ? new Date(value.$date)
    : value;

function toJson(value) {
  return JSON.stringify(value, function (key, item) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : item;
  });
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const calls = JSON.parse(await readStdin(), revive);
const store = new ConvexStore({ id: "interop", deploymentUrl: url, adminAuthToken });
const results = [];
for (const call of calls) {
  try {
    if (call.vector) {
      const vector = new ConvexVector({ id: "interop", deploymentUrl: url, adminAuthToken, ...call.vector });
      results.push({ result: (await vector[call.method](call.args)) ?? null });
    } else if (call.cache) {
      const cache = new ConvexServerCache({ deploymentUrl: url, adminAuthToken, ...call.cache });
      results.push({ result: (await cache[call.method](...(call.args ?? []))) ?? null });
    } else {
      const domain = await store.getStore(call.domain);
      // Most domain methods take one object; others (schedules) take positional arguments.
      const args = call.spread ? call.args : [call.args];
      results.push({ result: (await domain[call.method](...args)) ?? null });
    }
  } catch (error) {
    results.push({ error: error instanceof Error ? error.message : String(error) });
  }
}
process.stdout.write(toJson(results) + "\n");
