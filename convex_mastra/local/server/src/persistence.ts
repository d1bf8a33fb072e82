// Durable storage for the emulator: a snapshot plus a write-ahead log (WAL).
//
// data-dir/
//   LOCK                 pid of the server using the directory
//   snapshot.ndjson      header line, one line per document, footer line
//   wal-000001.log ...   WAL segments; one line per committed transaction:
//                        "<crc32 hex>\t<json>\n", json = {seq, ts, nextDocId,
//                        lastCreationTime, writes: [[id, doc | null], ...]}
//
// Every top-level commit is appended (in commit order) synchronously by the
// commit hook. `waitDurable` schedules one flush per event-loop turn, which
// writes all records appended so far (synchronously, so WAL order is commit
// order) and starts an fdatasync on the libuv pool unless one is in flight; the
// records written while it runs share the next one (group commit). The HTTP
// layer awaits durability before answering. A synchronous fdatasync per turn
// kept the event loop, and so the single-threaded engine, idle for the disk. Recovery loads
// the snapshot, replays WAL records with a higher seq, and drops a torn tail (a
// last record without newline or with a bad checksum). Compaction writes a new
// snapshot from an in-memory copy taken between two commits, renames it into
// place atomically and then deletes the WAL segments it covers.
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { open, rename, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate, setInterval } from "node:timers";
import { crc32 } from "node:zlib";
import { convexToJson, jsonToConvex, type JSONValue, type Value } from "convex/values";
import { tableNameFromId, type CommittedWrite, type Counters, type Doc, type EngineState } from "./internals.ts";

const SNAPSHOT = "snapshot.ndjson";
const SNAPSHOT_FORMAT = "convex-mastra-snapshot/1";
const SEGMENT_RE = /^wal-(\d{6,})\.log$/;

// File storage blobs are kept in memory only, so their metadata is not persisted either.
const isPersistedTable = (table: string) => table !== "_storage";

interface WalRecord {
  seq: number;
  ts: string;
  nextDocId: number;
  lastCreationTime: number;
  writes: [string, JSONValue | null][];
}

interface Pending {
  seq: number;
  line: Buffer;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function encodeLine(json: string): Buffer {
  const body = Buffer.from(json, "utf8");
  const crc = crc32(body).toString(16).padStart(8, "0");
  return Buffer.concat([Buffer.from(`${crc}\t`), body, Buffer.from("\n")]);
}

/** Parses one WAL line (without its newline); null if it is damaged. */
function decodeLine(line: Buffer): WalRecord | null {
  const tab = line.indexOf(0x09);
  if (tab !== 8) return null;
  const body = line.subarray(9);
  if (crc32(body).toString(16).padStart(8, "0") !== line.subarray(0, 8).toString("latin1")) return null;
  try {
    return JSON.parse(body.toString("utf8")) as WalRecord;
  } catch {
    return null;
  }
}

function segmentName(n: number): string {
  return `wal-${String(n).padStart(6, "0")}.log`;
}

/** Whether `pid` is alive and (where /proc tells) another instance of this server. */
function isServerProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    // A recycled pid after a reboot must not lock us out.
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").includes("main.ts");
  } catch {
    return true;
  }
}

function acquireLock(dir: string): string {
  const lock = join(dir, "LOCK");
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx" });
    return lock;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const owner = Number.parseInt(readFileSync(lock, "utf8"), 10);
  if (Number.isInteger(owner) && owner !== process.pid && isServerProcess(owner)) {
    throw new Error(`data directory ${dir} is in use by process ${owner}`);
  }
  // Left behind by a process that died (e.g. kill -9): take it over.
  writeFileSync(lock, String(process.pid));
  return lock;
}

export interface StoreOptions {
  /**
   * Start a compaction when the WAL since the last snapshot exceeds this many bytes, or the
   * last snapshot's size if that is larger: a compaction rewrites every document, so with a
   * threshold that grows with the snapshot it costs at most one byte written per byte logged,
   * where a fixed one would rewrite a 300 MB snapshot for every 64 MB of writes.
   */
  compactBytes: number;
  /** Called when the WAL cannot be written; the process must not go on acknowledging writes. */
  onFatal: (error: Error) => void;
}

export interface Recovered {
  store: Store;
  /** Null for an empty data directory. */
  state: EngineState | null;
  replayedRecords: number;
}

export class Store {
  private pending: Pending[] = [];
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushScheduled = false;
  private durableSeq: number;
  /** Last record written to the segment (durable once a sync covering it completes). */
  private writtenSeq: number;
  /** The fdatasync in flight, if any. */
  private syncing: Promise<void> | null = null;
  /** A segment a compaction left while a sync of it was in flight: closed when it ends. */
  private retiredFd: number | null = null;
  private walBytes = 0;
  private snapshotBytes = 0;
  private compacting: Promise<void> | null = null;
  private failed: Error | null = null;
  private exportState: (() => EngineState) | null = null;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly dir: string,
    private readonly lockFile: string,
    private fd: number,
    private segment: number,
    private lastSeq: number,
    private readonly options: StoreOptions,
  ) {
    this.durableSeq = lastSeq;
    this.writtenSeq = lastSeq;
    // Writes nobody waits for (scheduled functions) still reach the disk promptly.
    this.timer = setInterval(() => this.scheduleFlush(), 50);
    this.timer.unref();
  }

  /** Locks the directory, recovers the state and opens a fresh WAL segment. */
  static async open(dir: string, options: StoreOptions): Promise<Recovered> {
    const lockFile = acquireLock(dir);
    rmSync(join(dir, `${SNAPSHOT}.tmp`), { force: true });

    const documents = new Map<string, Doc>();
    let counters: Counters | null = null;
    let lastCommitTs = 0n;
    let lastSeq = 0;
    let snapshotSeq = 0;

    let snapshotText: string | null = null;
    try {
      snapshotText = readFileSync(join(dir, SNAPSHOT), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    if (snapshotText !== null) {
      const lines = snapshotText.split("\n");
      const header = JSON.parse(lines[0]!) as {
        format: string;
        walSeq: number;
        nextDocId: number;
        lastCreationTime: number;
        lastCommitTs: string;
      };
      if (header.format !== SNAPSHOT_FORMAT) throw new Error(`unknown snapshot format in ${dir}`);
      const footer = JSON.parse(lines[lines.length - 2] ?? "{}") as { end?: boolean; count?: number };
      if (footer.end !== true || footer.count !== lines.length - 3) {
        throw new Error(`snapshot ${join(dir, SNAPSHOT)} is incomplete`);
      }
      for (const line of lines.slice(1, -2)) {
        const doc = jsonToConvex(JSON.parse(line) as JSONValue) as Doc;
        documents.set(doc["_id"] as string, doc);
      }
      snapshotSeq = lastSeq = header.walSeq;
      counters = { nextDocId: header.nextDocId, lastCreationTime: header.lastCreationTime };
      lastCommitTs = BigInt(header.lastCommitTs);
    }

    const segments = readdirSync(dir)
      .map((name) => SEGMENT_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let replayed = 0;
    let torn: { segment: number; offset: number } | null = null;
    for (const n of segments) {
      const path = join(dir, segmentName(n));
      const data = readFileSync(path);
      let offset = 0;
      while (offset < data.length) {
        const nl = data.indexOf(0x0a, offset);
        const record = nl === -1 ? null : decodeLine(data.subarray(offset, nl));
        if (record === null) {
          // Damaged or incomplete: acceptable only as the very end of the log.
          torn ??= { segment: n, offset };
          if (nl === -1) break;
          offset = nl + 1;
          continue;
        }
        if (torn !== null) {
          throw new Error(`WAL ${segmentName(torn.segment)} is damaged at offset ${torn.offset}, before its end`);
        }
        offset = nl + 1;
        if (record.seq <= snapshotSeq) continue;
        if (record.seq !== lastSeq + 1) {
          throw new Error(`WAL ${path}: expected record ${lastSeq + 1}, found ${record.seq}`);
        }
        for (const [id, json] of record.writes) {
          if (json === null) documents.delete(id);
          else documents.set(id, jsonToConvex(json) as Doc);
        }
        counters = { nextDocId: record.nextDocId, lastCreationTime: record.lastCreationTime };
        lastCommitTs = BigInt(record.ts);
        lastSeq = record.seq;
        replayed += 1;
      }
    }
    if (torn !== null) {
      // A torn tail was never acknowledged (the response waits for fdatasync): drop it.
      process.stderr.write(`convex-mastra: dropping torn WAL tail at ${segmentName(torn.segment)}:${torn.offset}\n`);
      await truncate(join(dir, segmentName(torn.segment)), torn.offset);
      for (const n of segments.filter((s) => s > torn!.segment)) rmSync(join(dir, segmentName(n)));
    }

    const segment = (segments[segments.length - 1] ?? 0) + 1;
    const fd = openSync(join(dir, segmentName(segment)), "a");
    fsyncDir(dir);
    const store = new Store(dir, lockFile, fd, segment, lastSeq, options);
    store.snapshotBytes = snapshotText?.length ?? 0;
    const state = counters === null ? null : { documents: [...documents.values()], ...counters, lastCommitTs };
    return { store, state, replayedRecords: replayed };
  }

  /** Enables compaction; `exportState` must return the committed state as of `lastSeq`. */
  setStateSource(exportState: () => EngineState): void {
    this.exportState = exportState;
  }

  /** Appends one committed transaction (synchronously, in commit order); returns its seq. */
  append(commitTs: bigint, writes: CommittedWrite[], counters: Counters): number {
    const persisted = writes.filter((w) => isPersistedTable(w.table));
    const record: WalRecord = {
      seq: this.lastSeq + 1,
      ts: commitTs.toString(),
      ...counters,
      writes: persisted.map((w) => [w.id, w.doc === null ? null : convexToJson(w.doc as Value)]),
    };
    this.lastSeq = record.seq;
    this.pending.push({ seq: record.seq, line: encodeLine(JSON.stringify(record)) });
    return record.seq;
  }

  /** Resolves once every record up to `seq` (default: all appended so far) is on disk. */
  waitDurable(seq: number = this.lastSeq): Promise<void> {
    if (this.failed !== null) return Promise.reject(this.failed);
    if (seq <= this.durableSeq) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    this.scheduleFlush();
    return promise;
  }

  /** One flush per event-loop turn: every commit made in this turn shares its fdatasync. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.failed !== null || this.pending.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Writes every pending record, then starts an fdatasync on the libuv pool unless one is in
   * flight (its completion starts the next): the event loop runs transactions while the disk
   * syncs, and every record written meanwhile shares the next sync. Records reach the file
   * in commit order, since only this method writes them, synchronously.
   */
  private flush(): void {
    if (this.failed !== null) return;
    try {
      this.writePending();
    } catch (e) {
      this.fail(e);
      return;
    }
    this.startSync();
  }

  private writePending(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const bytes = Buffer.concat(batch.map((p) => p.line));
    for (let offset = 0; offset < bytes.length;) offset += writeSync(this.fd, bytes, offset);
    this.writtenSeq = batch[batch.length - 1]!.seq;
    this.walBytes += bytes.length;
  }

  private startSync(): void {
    if (this.syncing !== null || this.failed !== null || this.writtenSeq <= this.durableSeq) return;
    const fd = this.fd;
    const target = this.writtenSeq;
    this.syncing = new Promise<void>((resolve) =>
      fdatasync(fd, (err) => {
        this.syncing = null;
        // A compaction moved to a new segment meanwhile: the old one closes once synced.
        if (this.retiredFd === fd) {
          this.retiredFd = null;
          closeSync(fd);
        }
        resolve();
        if (err !== null) {
          this.fail(err);
          return;
        }
        this.markDurable(target);
        this.startSync();
      }),
    );
  }

  /** Everything written so far is on disk when this returns (compaction and close). */
  private syncNow(): void {
    this.writePending();
    fdatasyncSync(this.fd);
    this.markDurable(this.writtenSeq);
  }

  private markDurable(seq: number): void {
    if (seq > this.durableSeq) this.durableSeq = seq;
    this.waiters = this.waiters.filter((w) => {
      if (w.seq > this.durableSeq) return true;
      w.resolve();
      return false;
    });
    if (this.walBytes > this.compactThreshold()) {
      // Not from here directly: compact() itself flushes.
      setImmediate(() => {
        if (this.walBytes > this.compactThreshold() && this.compacting === null) void this.compact();
      });
    }
  }

  private fail(e: unknown): void {
    this.failed = e instanceof Error ? e : new Error(String(e));
    for (const w of this.waiters) w.reject(this.failed);
    this.waiters = [];
    this.options.onFatal(this.failed);
  }

  private compactThreshold(): number {
    return Math.max(this.options.compactBytes, this.snapshotBytes);
  }

  /** Writes a snapshot of the current state and deletes the WAL segments it covers. */
  compact(): Promise<void> {
    if (this.compacting !== null) return this.compacting;
    const exportState = this.exportState;
    if (exportState === null || this.failed !== null) return Promise.resolve();
    // All synchronous, so no commit can come in between: the exported state is
    // exactly the state after record `snapshotSeq`, every record up to it goes to
    // the old segments, and every later one to the new segment.
    const state = exportState();
    const snapshotSeq = this.lastSeq;
    const covered = this.segment;
    try {
      this.syncNow();
      if (this.syncing !== null) this.retiredFd = this.fd;
      else closeSync(this.fd);
      this.segment += 1;
      this.fd = openSync(join(this.dir, segmentName(this.segment)), "a");
      fsyncDir(this.dir);
      this.walBytes = 0;
    } catch (e) {
      this.options.onFatal(e instanceof Error ? e : new Error(String(e)));
      return Promise.resolve();
    }
    this.compacting = (async () => {
      await this.writeSnapshot(state, snapshotSeq);
      for (const name of readdirSync(this.dir)) {
        const m = SEGMENT_RE.exec(name);
        if (m !== null && Number(m[1]) <= covered) await rm(join(this.dir, name), { force: true });
      }
    })()
      .catch((e: unknown) => {
        process.stderr.write(`convex-mastra: compaction failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      })
      .finally(() => {
        this.compacting = null;
      });
    return this.compacting;
  }

  private async writeSnapshot(state: EngineState, walSeq: number): Promise<void> {
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const fh = await open(tmp, "w");
    let count = 0;
    let bytes = 0;
    try {
      const header = {
        format: SNAPSHOT_FORMAT,
        walSeq,
        nextDocId: state.nextDocId,
        lastCreationTime: state.lastCreationTime,
        lastCommitTs: state.lastCommitTs.toString(),
      };
      let chunk = `${JSON.stringify(header)}\n`;
      for (const doc of state.documents) {
        if (!isPersistedTable(tableNameFromId(doc["_id"] as string))) continue;
        chunk += `${JSON.stringify(convexToJson(doc as Value))}\n`;
        count += 1;
        // Write in ~256 KiB pieces; each await lets requests run meanwhile (a piece is a few
        // ms of encoding, the longest a call waits behind a compaction).
        if (chunk.length > 1 << 18) {
          await fh.write(chunk);
          bytes += chunk.length;
          chunk = "";
        }
      }
      chunk += `${JSON.stringify({ end: true, count })}\n`;
      await fh.write(chunk);
      bytes += chunk.length;
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, SNAPSHOT));
    fsyncDir(this.dir);
    this.snapshotBytes = bytes;
  }

  /** Flushes everything, optionally compacts, and releases the directory. */
  async close(options: { compact: boolean }): Promise<void> {
    clearInterval(this.timer);
    if (this.failed === null) this.syncNow();
    if (options.compact) await this.compact();
    await this.compacting;
    await this.syncing;
    closeSync(this.fd);
    rmSync(this.lockFile, { force: true });
  }
}
