// Per-call statistics: a fixed-size ring buffer of the most recent calls.
import type { FunctionKind } from "./modules.ts";

export interface CallStats {
  documentsRead: number;
  documentsWritten: number;
  bytesRead: number;
  bytesWritten: number;
  engineMs: number;
}

export interface CallRecord extends CallStats {
  seq: number;
  path: string;
  kind: FunctionKind;
  ok: boolean;
  op?: string;
}

export class CallLog {
  private readonly ring: (CallRecord | undefined)[];
  /** Sequence number the next call gets; the first call is 1. */
  private next = 1;

  constructor(readonly capacity: number = 100_000) {
    this.ring = new Array<CallRecord | undefined>(capacity);
  }

  add(entry: Omit<CallRecord, "seq">): CallRecord {
    const record: CallRecord = { seq: this.next, ...entry };
    this.ring[this.next % this.capacity] = record;
    this.next += 1;
    return record;
  }

  /** Calls with seq >= since that are still in the buffer, oldest first. */
  since(since: number): { calls: CallRecord[]; nextSeq: number } {
    const first = Math.max(since, this.next - this.capacity, 1);
    const calls: CallRecord[] = [];
    for (let seq = first; seq < this.next; seq++) {
      const record = this.ring[seq % this.capacity];
      if (record !== undefined && record.seq === seq) calls.push(record);
    }
    return { calls, nextSeq: this.next };
  }
}
