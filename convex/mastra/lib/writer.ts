// The single write path for storage documents.
//
// Every insert, replace and delete goes through a Writer so that, in the same
// transaction:
//   - row counters (see counters.ts) follow inserts, deletes and group moves,
//   - rank trees (see ranks.ts) follow the same rows, by sort value,
//   - threads keep `lastMessageAt` = createdAt of their newest message, and
//     get any extra fields an op asked for (e.g. `updatedAt` on saveMessages),
//   - a message that is inserted or changed gets the next `writeSeq` of its
//     thread (the thread keeps the last one given as `messageSeq`). Giving it
//     reads the thread and its highest `writeSeq`, so under optimistic
//     concurrency two writers of one thread conflict and `writeSeq` order is
//     commit order: a watcher past `writeSeq` n misses nothing committed later.
// Counter, rank and thread updates are batched and written once, in `flush()`.
import type { Value } from "convex/values";
import { type Ctx, type Doc, type Fields } from "./common";
import {
  CounterState,
  applyDeltas,
  groupsOf,
  isCounted,
  readCounterStatus,
  writeCounterState,
} from "./counters";
import { RankForest, type RankKey, keyOf, rankedIndexesOf, treeOf } from "./ranks";
import { findById, MESSAGES, THREADS } from "./tables";

type CounterMode = {
  state: CounterState;
  scanPosition: number;
  /** State to persist at flush because it was derived, not read. */
  persist: boolean;
};

export class Writer {
  /** True once anything was written; later errors must abort the transaction. */
  wrote = false;
  private modes = new Map<string, CounterMode>();
  private deltas = new Map<string, Map<string, number>>();
  private threads = new Map<string, Fields>();
  /** table -> (tree, value) -> net change in how many rows have that value. */
  private ranks = new Map<string, Map<string, { tree: string; key: RankKey; delta: number }>>();
  /** thread id -> the `writeSeq` its next message write in this transaction gets. */
  private seqs = new Map<string, number>();

  constructor(readonly ctx: Ctx) {}

  async insert(table: string, sent: Fields): Promise<Doc> {
    const body = await this.sequenced(table, null, sent);
    const mode = await this.counterMode(table);
    this.wrote = true;
    const id = await this.ctx.db.insert(table, body);
    const doc = { ...body, _id: id, _creationTime: 0 } as Doc;
    // A new row is counted now only when counts are READY; during a rebuild
    // scan it lies after the scan position and is counted by the scan.
    if (mode?.state === CounterState.Ready) this.count(table, doc, +1);
    this.afterWrite(table, null, body);
    return doc;
  }

  /** Replace the body of `existing` (system fields are kept). */
  async replace(table: string, existing: Doc, sent: Fields): Promise<Doc> {
    const body = await this.sequenced(table, existing, sent);
    const mode = await this.counterMode(table);
    this.wrote = true;
    await this.ctx.db.replace(existing._id, body);
    if (this.counts(mode, existing)) {
      this.count(table, existing, -1);
      this.count(table, body, +1);
    }
    this.afterWrite(table, existing, body);
    return { ...body, _id: existing._id, _creationTime: existing._creationTime } as Doc;
  }

  async remove(table: string, existing: Doc): Promise<void> {
    const mode = await this.counterMode(table);
    this.wrote = true;
    await this.ctx.db.delete(existing._id);
    if (this.counts(mode, existing)) this.count(table, existing, -1);
    this.afterWrite(table, existing, null);
  }

  /** Recompute `lastMessageAt` of a thread at flush and set `extra` on it. */
  touchThread(threadId: string, extra: Fields = {}) {
    this.threads.set(threadId, { ...(this.threads.get(threadId) ?? {}), ...extra });
  }

  async flush(): Promise<void> {
    for (const [threadId, extra] of this.threads) await this.refreshThread(threadId, extra);
    this.threads.clear();
    for (const [table, mode] of this.modes) {
      if (mode.persist) await writeCounterState(this.ctx, table, mode.state);
      mode.persist = false;
    }
    for (const [table, deltas] of this.deltas) await applyDeltas(this.ctx, table, deltas);
    this.deltas.clear();
    for (const [table, changes] of this.ranks) await this.applyRanks(table, [...changes.values()]);
    this.ranks.clear();
  }

  // ---- internals ----

  /** `body` with the write-order fields set by the server (a value a client sent is dropped). */
  private async sequenced(table: string, existing: Doc | null, body: Fields): Promise<Fields> {
    if (table === THREADS) {
      // A client's replace of the thread must not reset its counter.
      const { messageSeq: _sent, ...rest } = body;
      return existing?.messageSeq === undefined ? rest : { ...rest, messageSeq: existing.messageSeq };
    }
    if (table !== MESSAGES) return body;
    const { writeSeq: _sent, ...rest } = body;
    if (typeof rest.thread_id !== "string") return rest;
    if (existing !== null && sameBody(existing, rest)) {
      // Saved again unchanged: nothing for a watcher to see again.
      return existing.writeSeq === undefined ? rest : { ...rest, writeSeq: existing.writeSeq };
    }
    return { ...rest, writeSeq: await this.nextWriteSeq(rest.thread_id) };
  }

  private async nextWriteSeq(threadId: string): Promise<number> {
    let next = this.seqs.get(threadId);
    if (next === undefined) {
      // The thread's counter survives deleting its newest message; the highest row covers a
      // thread that has no row (or predates the counter).
      const thread = await findById(this.ctx, THREADS, threadId);
      const highest = (await this.ctx.db
        .query(MESSAGES)
        .withIndex("by_thread_seq", (q) => q.eq("thread_id", threadId))
        .order("desc")
        .first()) as Doc | null;
      next = Math.max(seqOf(thread?.messageSeq), seqOf(highest?.writeSeq)) + 1;
    }
    this.seqs.set(threadId, next + 1);
    this.touchThread(threadId, { messageSeq: next });
    return next;
  }

  private async counterMode(table: string): Promise<CounterMode | null> {
    if (!isCounted(table)) return null;
    let mode = this.modes.get(table);
    if (!mode) {
      // Read before this transaction's first write to the table, so a
      // derived state reflects the rows that existed before it.
      const status = await readCounterStatus(this.ctx, table);
      mode = { state: status.state, scanPosition: status.scanPosition, persist: !status.stored };
      this.modes.set(table, mode);
    }
    return mode;
  }

  private counts(mode: CounterMode | null, existing: Doc): boolean {
    if (!mode) return false;
    if (mode.state === CounterState.Ready) return true;
    return mode.state === CounterState.Scanning && existing._creationTime <= mode.scanPosition;
  }

  private count(table: string, doc: Record<string, unknown>, delta: number) {
    let deltas = this.deltas.get(table);
    if (!deltas) this.deltas.set(table, (deltas = new Map()));
    for (const group of groupsOf(table, doc)) deltas.set(group, (deltas.get(group) ?? 0) + delta);
    this.rank(table, doc, delta);
  }

  private rank(table: string, doc: Record<string, unknown>, delta: number) {
    for (const spec of rankedIndexesOf(table)) {
      const tree = treeOf(spec, doc);
      if (tree === null) continue;
      const key = keyOf(spec, doc);
      let changes = this.ranks.get(table);
      if (!changes) this.ranks.set(table, (changes = new Map()));
      const id = `${tree}\u0000${JSON.stringify(key)}`;
      const change = changes.get(id) ?? { tree, key, delta: 0 };
      change.delta += delta;
      changes.set(id, change);
    }
  }

  /** Removals first: one the tree cannot make proves it wrong, and the table goes STALE. */
  private async applyRanks(
    table: string,
    changes: { tree: string; key: RankKey; delta: number }[],
  ): Promise<void> {
    const forest = new RankForest(this.ctx, table);
    for (const { tree, key, delta } of changes) {
      for (let i = 0; i < -delta; i++) {
        if (!(await forest.remove(tree, key))) {
          await writeCounterState(this.ctx, table, CounterState.Stale);
          return;
        }
      }
    }
    for (const { tree, key, delta } of changes) {
      for (let i = 0; i < delta; i++) await forest.add(tree, key);
    }
    await forest.flush();
  }

  private afterWrite(table: string, before: Fields | null, after: Fields | null) {
    if (table === MESSAGES) {
      for (const doc of [before, after]) {
        if (doc && typeof doc.thread_id === "string") this.touchThread(doc.thread_id);
      }
    } else if (table === THREADS && after && typeof after.id === "string") {
      // lastMessageAt is derived: never trust a value sent with the thread.
      this.touchThread(after.id);
    }
  }

  private async refreshThread(threadId: string, extra: Fields) {
    const { ctx } = this;
    const thread = (await ctx.db
      .query(THREADS)
      .withIndex("by_record_id", (q) => q.eq("id", threadId))
      .first()) as Doc | null;
    if (!thread) return;
    const newest = (await ctx.db
      .query(MESSAGES)
      .withIndex("by_thread_created", (q) => q.eq("thread_id", threadId))
      .order("desc")
      .first()) as Doc | null;
    const patch: Record<string, Value | undefined> = {};
    const lastMessageAt = newest ? (newest.createdAt as string) : undefined;
    if (thread.lastMessageAt !== lastMessageAt) patch.lastMessageAt = lastMessageAt;
    for (const [key, value] of Object.entries(extra)) {
      if (thread[key] !== value) patch[key] = value;
    }
    if (Object.keys(patch).length > 0) {
      const mode = await this.counterMode(THREADS);
      this.wrote = true;
      await ctx.db.patch(thread._id, patch);
      if (this.counts(mode, thread)) {
        // updatedAt is a sort value of a rank tree; counts do not change.
        this.rank(THREADS, thread, -1);
        this.rank(THREADS, { ...thread, ...patch }, +1);
      }
    }
  }
}

/**
 * `body` as the Writer will store it, for checking its size: a message also holds its
 * `writeSeq`, a thread its `lastMessageAt` and `messageSeq` (each the same size whatever its
 * value). A record that fits only without them is refused with TOO_LARGE before anything is
 * written, not by Convex at the insert, or, for a thread, at the first message saved to it.
 */
export function sizedAsStored(table: string, body: Fields): Fields {
  if (table === THREADS) return { ...body, lastMessageAt: "2000-01-01T00:00:00.000Z", messageSeq: 0 };
  return table === MESSAGES && typeof body.thread_id === "string" ? { ...body, writeSeq: 0 } : body;
}

const seqOf = (value: unknown): number => (typeof value === "number" ? value : 0);

/** Whether a stored message holds `body` already (message fields are strings). */
function sameBody(existing: Doc, body: Fields): boolean {
  const keys = new Set([...Object.keys(body), ...Object.keys(existing)]);
  for (const key of keys) {
    if (key === "_id" || key === "_creationTime" || key === "writeSeq") continue;
    if (existing[key] !== body[key]) return false;
  }
  return true;
}
