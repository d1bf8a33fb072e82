// Writes Convex values as JSON text the way the Rust backend does
// (crates/value/src/export.rs):
// - "convex_encoded_json": int64 -> {"$integer": base64 LE}, bytes -> {"$bytes"},
//   -0/NaN/±Infinity -> {"$float": base64 LE};
// - "json" (clean): int64 -> decimal string, bytes -> base64 string,
//   NaN/±Infinity -> "NaN"/"Infinity"/"-Infinity";
// - "export_json": int64 -> bare decimal number, bytes/non-finite floats encoded.
// Floats are serialized like serde_json (integral values as `1.0`): the Python
// client rejects an integral JSON number as a Convex float. Object keys come out
// sorted, as from the backend's BTreeMap.
import type { Value } from "convex/values";

export type ValueFormat = "convex_encoded_json" | "json" | "export_json";

/** Format names the backend accepts (crates/value/src/export.rs), with legacy aliases. */
export function parseValueFormat(name: string): ValueFormat | null {
  switch (name) {
    case "convex_encoded_json":
    case "convex_json":
      return "convex_encoded_json";
    case "json":
    case "convex_clean_json":
      return "json";
    case "export_json":
      return "export_json";
    default:
      return null;
  }
}

function le64(write: (b: Buffer) => void): string {
  const b = Buffer.alloc(8);
  write(b);
  return b.toString("base64");
}

function float(n: number, format: ValueFormat): string {
  if (Number.isFinite(n) && !Object.is(n, -0)) {
    const text = String(n);
    return Number.isInteger(n) && !text.includes("e") ? `${text}.0` : text;
  }
  if (format === "json") {
    if (Object.is(n, -0)) return "-0.0";
    return Number.isNaN(n) ? '"NaN"' : n > 0 ? '"Infinity"' : '"-Infinity"';
  }
  if (format === "export_json" && Object.is(n, -0)) return "-0.0";
  return `{"$float":"${le64((b) => b.writeDoubleLE(n))}"}`;
}

export function writeValue(value: Value | undefined, format: ValueFormat): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      return float(value, format);
    case "bigint":
      if (format === "json") return `"${value}"`;
      if (format === "export_json") return value.toString();
      return `{"$integer":"${le64((b) => b.writeBigInt64LE(value))}"}`;
    default:
      break;
  }
  if (value instanceof ArrayBuffer) {
    const b64 = Buffer.from(value).toString("base64");
    return format === "json" ? `"${b64}"` : `{"$bytes":"${b64}"}`;
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => writeValue(v, format)).join(",")}]`;
  }
  const obj = value as Record<string, Value | undefined>;
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] !== undefined) parts.push(`${JSON.stringify(key)}:${writeValue(obj[key], format)}`);
  }
  return `{${parts.join(",")}}`;
}
