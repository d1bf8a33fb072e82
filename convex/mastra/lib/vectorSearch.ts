// Exact vector search on the server: one page of an index scored per call, so
// a query sends back its best rows instead of every vector. The Python client
// merges the pages' results; its own scan (for the stock handler) scores the
// same way, loop for loop, and the filter language is the one it documents
// (docs/vectors.md): upstream's, with every operator applied.
import {
  type Doc,
  RequestError,
  READ_BUDGET,
  type Request,
  type Response,
  isPlainObject,
  ok,
  readInt,
} from "./common";

/** Results of one query: Convex's own vector search returns at most 256. */
export const MAX_TOP_K = 256;
/** Rows one call scores at most (fewer once READ_BUDGET bytes were read). */
export const MAX_SCAN_ROWS = 16_000;

type Predicate = (metadata: unknown) => boolean;
type Test = (metadata: Record<string, unknown>) => boolean;
type PageableQuery = {
  paginate(opts: {
    cursor: string | null;
    numItems: number;
    maximumBytesRead?: number;
  }): Promise<{ page: unknown[]; isDone: boolean; continueCursor: string }>;
};

const MISSING = Symbol("missing");
const COMPARE: Record<string, (a: number | string, b: number | string) => boolean> = {
  $gt: (a, b) => a > b,
  $gte: (a, b) => a >= b,
  $lt: (a, b) => a < b,
  $lte: (a, b) => a <= b,
};
const OPERATORS = new Set(["$eq", "$ne", "$in", "$nin", ...Object.keys(COMPARE)]);

const isNumber = (value: unknown): value is number => typeof value === "number";

/** JSON equality: numbers by value, lists and objects by content. */
function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((x, i) => same(x, b[i]))
    );
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => Object.prototype.hasOwnProperty.call(b, key) && same(a[key], b[key]))
    );
  }
  return a === b;
}

function field(metadata: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(metadata, key) ? metadata[key] : MISSING;
}

/** The predicate of `filter`, or null when it matches every row. */
export function compileFilter(raw: unknown): Predicate | null {
  if (raw === undefined || raw === null) return null;
  // JSON text: Convex refuses "$"-prefixed field names in arguments, so operators cannot
  // travel as an object.
  let filter: unknown = raw;
  if (typeof raw === "string") {
    try {
      filter = JSON.parse(raw);
    } catch {
      throw new RequestError(`vectorQuery: "filter" is not valid JSON text`);
    }
  }
  if (!isPlainObject(filter)) throw new RequestError(`vectorQuery: "filter" must be an object`);
  let conditions = filter;
  const keys = Object.keys(filter);
  if (keys.length === 1 && keys[0] === "metadata" && isPlainObject(filter.metadata)) {
    conditions = filter.metadata;
  }
  if (Object.keys(conditions).length === 0) return null;
  const test = compileConditions(conditions);
  return (metadata) => isPlainObject(metadata) && test(metadata);
}

function compileConditions(conditions: Record<string, unknown>): Test {
  const tests = Object.entries(conditions).map(([key, value]) => compileCondition(key, value));
  return (metadata) => tests.every((test) => test(metadata));
}

function compileCondition(key: string, value: unknown): Test {
  if (key === "$and" || key === "$or") {
    if (!Array.isArray(value) || !value.every(isPlainObject)) {
      throw new RequestError(`vectorQuery: "${key}" must be a list of filters`);
    }
    const parts = value.map((item) => compileConditions(item as Record<string, unknown>));
    return key === "$and"
      ? (metadata) => parts.every((part) => part(metadata))
      : (metadata) => parts.some((part) => part(metadata));
  }
  if (key.startsWith("$")) throw new RequestError(`vectorQuery: unknown operator "${key}"`);
  if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith("$"))) {
    const tests = Object.entries(value).map(([op, operand]) => compileOperator(key, op, operand));
    return (metadata) => tests.every((test) => test(metadata));
  }
  return (metadata) => same(field(metadata, key), value);
}

function compileOperator(key: string, op: string, operand: unknown): Test {
  if (!OPERATORS.has(op)) throw new RequestError(`vectorQuery: unknown operator "${op}"`);
  if (op === "$in" || op === "$nin") {
    if (!Array.isArray(operand)) throw new RequestError(`vectorQuery: "${op}" must be a list`);
    const member = (metadata: Record<string, unknown>) =>
      operand.some((option) => same(field(metadata, key), option));
    return op === "$in" ? member : (metadata) => !member(metadata);
  }
  if (op === "$eq") return (metadata) => same(field(metadata, key), operand);
  if (op === "$ne") return (metadata) => !same(field(metadata, key), operand);
  const compare = COMPARE[op];
  return (metadata) => {
    const value = field(metadata, key);
    if (isNumber(value) && isNumber(operand)) return compare(value, operand);
    if (typeof value === "string" && typeof operand === "string") return compare(value, operand);
    return false;
  };
}

/** Score of a stored vector against `query` (higher is closer); NaN when it has none. */
export function scorer(metric: string, query: number[]): (vector: number[]) => number {
  const n = query.length;
  if (metric === "dotproduct") {
    return (v) => {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += query[i] * v[i];
      return dot;
    };
  }
  if (metric === "euclidean") {
    return (v) => {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const d = query[i] - v[i];
        sum += d * d;
      }
      return 1 / (1 + Math.sqrt(sum));
    };
  }
  if (metric !== "cosine") throw new RequestError(`vectorQuery: unknown metric "${metric}"`);
  let magQ = 0;
  for (let i = 0; i < n; i++) magQ += query[i] * query[i];
  const queryNorm = Math.sqrt(magQ);
  return (v) => {
    let dot = 0;
    let mag = 0;
    for (let i = 0; i < n; i++) {
      dot += query[i] * v[i];
      mag += v[i] * v[i];
    }
    const norm = Math.sqrt(mag);
    return norm && queryNorm ? dot / (queryNorm * norm) : NaN;
  };
}

function readVector(req: Request): number[] {
  const vector = req.vector;
  if (!Array.isArray(vector) || vector.length < 2 || !vector.every(Number.isFinite)) {
    throw new RequestError(`vectorQuery: "vector" must be a list of finite numbers`);
  }
  return vector as number[];
}

function readCursor(req: Request): string | null {
  const cursor = req.cursor ?? null;
  if (cursor !== null && typeof cursor !== "string") {
    throw new RequestError(`${req.op}: "cursor" must be a string or null`);
  }
  return cursor;
}

/**
 * vectorQuery {vector, metric, topK, filter?, includeVector?, cursor?, numItems?}
 * -> {results: [{id, score, metadata?, vector?}], scanned} with hasMore and
 * continuationCursor: one page of the index (at most numItems rows and 8 MiB
 * read), the page's best topK matching rows by score, then id. Rows of another
 * length or without a score are left out.
 */
export async function vectorQuery(rows: PageableQuery, req: Request): Promise<Response> {
  const query = readVector(req);
  const metric = typeof req.metric === "string" ? req.metric : "cosine";
  const score = scorer(metric, query);
  const topK = readInt(req, "topK", 10, 1, MAX_TOP_K);
  const numItems = readInt(req, "numItems", MAX_SCAN_ROWS, 1, MAX_SCAN_ROWS);
  const match = compileFilter(req.filter);
  const includeVector = req.includeVector === true;
  const page = await rows.paginate({
    cursor: readCursor(req),
    numItems,
    maximumBytesRead: READ_BUDGET,
  });
  const found: { id: string; score: number; doc: Doc }[] = [];
  for (const doc of page.page as Doc[]) {
    const vector = doc.embedding;
    if (!Array.isArray(vector) || vector.length !== query.length) continue;
    if (match && !match(doc.metadata)) continue;
    const value = score(vector as number[]);
    if (Number.isFinite(value)) found.push({ id: String(doc.id), score: value, doc });
  }
  found.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const results = found.slice(0, topK).map(({ id, score: value, doc }) => ({
    id,
    score: value,
    ...(doc.metadata !== undefined ? { metadata: doc.metadata } : {}),
    ...(includeVector ? { vector: doc.embedding } : {}),
  }));
  return ok(
    { results, scanned: page.page.length },
    { hasMore: !page.isDone, continuationCursor: page.continueCursor },
  );
}

/** vectorCount {cursor?} -> the number of rows of one page (8 MiB read at most), hasMore. */
export async function vectorCount(rows: PageableQuery, req: Request): Promise<Response> {
  const page = await rows.paginate({
    cursor: readCursor(req),
    numItems: MAX_SCAN_ROWS,
    maximumBytesRead: READ_BUDGET,
  });
  return ok(page.page.length, { hasMore: !page.isDone, continuationCursor: page.continueCursor });
}
