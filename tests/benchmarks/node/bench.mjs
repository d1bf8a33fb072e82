// @mastra/convex 1.5.x's own TypeScript client, timed for the benchmark suite (tests/benchmarks).
//
//   CONVEX_ADMIN_KEY=... node bench.mjs <deployment url> < jobs.json > results.json
//
// stdin is a JSON array of jobs; stdout is a JSON array with one result per job. A job names one
// client call, {"domain": "memory", "method": ..., "args": {...}}, {"cache": {...config},
// "method": ..., "args": [...]} or {"vector": {...config}, "method": ..., "args": {...}}, and how
// to run it ("run"):
//   "once":  one call; its result summarised, with the round trips it made and their documents
//            read and written, taken from each response's Convex-Mastra-Stats header;
//   "cpu":   `count` sequential calls; process CPU time per call (all of Node's work, the client's
//            HTTP stack included);
//   "load":  `concurrency` workers calling in a loop for `seconds`; every latency, and the event
//            loop's delay meanwhile (perf_hooks histogram, 1 ms resolution).
// "%n" in the args is replaced by a counter, unique per call, so saves insert new ids. JSON has no
// Date, so {"$date": iso} becomes a Date. A job that throws yields {"error": message}.
// Vector jobs may carry {"generate": {count, dim, seed}} in their args instead of "vectors"
// (the vectors are made here, not shipped through stdin), and "chunk": n to upsert n at a time.
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { ConvexServerCache, ConvexStore, ConvexVector } from "@mastra/convex";

const [url] = process.argv.slice(2);
const adminAuthToken = process.env.CONVEX_ADMIN_KEY;
if (!url || !adminAuthToken) {
  process.stderr.write("usage: CONVEX_ADMIN_KEY=... node bench.mjs <deployment url>\n");
  process.exit(2);
}

// Every request the client makes goes through fetch; while a "once" job runs, collect the
// deployment's per-call stats from the responses.
let sink = null;
const realFetch = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const response = await realFetch(...args);
  const stats = response.headers.get("convex-mastra-stats");
  const body = args[1]?.body;
  const bytesSent = typeof body === "string" ? Buffer.byteLength(body) : (body?.byteLength ?? 0);
  const bytesAnswered = Number(response.headers.get("content-length") ?? 0);
  if (sink && stats) sink.push({ ...JSON.parse(stats), bytesSent, bytesAnswered });
  return response;
};

// Deterministic vectors in [-1, 1) (mulberry32), so a job names them instead of carrying them.
function generated({ count, dim, seed }) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: count }, () => Array.from({ length: dim }, () => next() * 2 - 1));
}

async function vectorCall(vector, method, args) {
  if (args.generate) {
    const made = generated(args.generate);
    if (method === "query") args.queryVector = made[0];
    else args.vectors = made;
    if (method === "upsert") args.ids = made.map((_, i) => `ts-${i}`);
    delete args.generate;
  }
  if (method === "upsert" && args.chunk) {
    const { chunk, vectors, ids } = args;
    for (let i = 0; i < vectors.length; i += chunk) {
      await vector.upsert({
        indexName: args.indexName,
        vectors: vectors.slice(i, i + chunk),
        ids: ids.slice(i, i + chunk),
      });
    }
    return ids;
  }
  return vector[method](args);
}

const revive = (_key, value) =>
  value && typeof value === "object" && typeof value.$date === "string" && Object.keys(value).length === 1
    ? new Date(value.$date)
    : value;

const store = new ConvexStore({ id: "bench", deploymentUrl: url, adminAuthToken });
let counter = 0;

async function callerOf(job) {
  const text = JSON.stringify(job.args ?? null);
  const args = () => JSON.parse(text.replaceAll("%n", String(counter++)), revive);
  if (job.vector) {
    const vector = new ConvexVector({ id: "bench", deploymentUrl: url, adminAuthToken, ...job.vector });
    return () => vectorCall(vector, job.method, args());
  }
  if (job.cache) {
    const cache = new ConvexServerCache({ deploymentUrl: url, adminAuthToken, ...job.cache });
    return () => cache[job.method](...(args() ?? []));
  }
  const domain = await store.getStore(job.domain);
  return () => domain[job.method](args());
}

function summary(result) {
  if (Array.isArray(result)) return { ids: result.map((item) => item?.id ?? item).slice(0, 10) };
  const items = result?.messages ?? result?.threads;
  if (Array.isArray(items)) return { ids: items.map((item) => item.id), total: result.total };
  return result?.id ? { id: result.id } : null;
}

async function once(call) {
  sink = [];
  const started = performance.now();
  const result = await call();
  const ms = performance.now() - started;
  const calls = sink;
  sink = null;
  const sum = (field) => calls.reduce((total, c) => total + (c[field] ?? 0), 0);
  return {
    result: summary(result),
    ms,
    calls: calls.length,
    documentsRead: sum("documentsRead"),
    documentsWritten: sum("documentsWritten"),
    bytesSent: sum("bytesSent"),
    bytesAnswered: sum("bytesAnswered"),
  };
}

async function cpu(call, count) {
  for (let i = 0; i < Math.min(count, 20); i++) await call(); // warm up: JIT, connections
  const before = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < count; i++) await call();
  const used = process.cpuUsage(before);
  return { cpuUs: (used.user + used.system) / count, wallMs: (performance.now() - started) / count };
}

async function load(call, concurrency, seconds) {
  const workers = (body) => Promise.all(Array.from({ length: concurrency }, body));
  await workers(() => call()); // warm up: one call per worker opens its connection
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const latencies = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  delay.enable();
  await workers(async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      await call();
      latencies.push(performance.now() - t);
    }
  });
  const wall = (performance.now() - started) / 1000;
  delay.disable();
  return {
    latenciesMs: latencies,
    seconds: wall,
    lagMaxMs: delay.max / 1e6,
    lagP99Ms: delay.percentile(99) / 1e6,
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const results = [];
for (const job of JSON.parse(await readStdin())) {
  try {
    const call = await callerOf(job);
    if (job.run === "once") results.push(await once(call));
    else if (job.run === "cpu") results.push(await cpu(call, job.count));
    else if (job.run === "load") results.push(await load(call, job.concurrency, job.seconds));
    else throw new Error(`unknown run ${job.run}`);
  } catch (error) {
    results.push({ error: error instanceof Error ? error.message : String(error) });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
