/**
 * Convex table definitions for convex-mastra.
 *
 * Table names, fields, validators and index names match the tables that the
 * TypeScript package @mastra/convex (1.5.x) defines, so one deployment can be
 * shared by the Python SDK and the TypeScript package. Import `mastraTables`
 * into your own schema:
 *
 *   export default defineSchema({ ...mastraTables, ...yourTables });
 *
 * Additions that are ours (not in @mastra/convex). They only add an optional
 * field, indexes and one table, so documents written by either side stay valid:
 *   - mastra_threads.lastMessageAt (optional ISO string, maintained by the
 *     server functions: createdAt of the newest message in the thread).
 *   - mastra_messages.writeSeq and mastra_threads.messageSeq (optional
 *     numbers, maintained by the Writer): a message's place in its thread's
 *     write order, renewed when the message changes, and the thread's last one
 *     given. Live watchers follow a thread by index `by_thread_seq`.
 *   - mastra_workflow_snapshots.status (optional string, derived by the server
 *     functions from `snapshot.status` on every write), so runs can be listed
 *     by status without parsing snapshots.
 *   - indexes mastra_threads.by_resource_created / by_resource_updated /
 *     by_resource_last_message, mastra_messages.by_resource_created,
 *     mastra_workflow_snapshots.by_workflow_created / by_resource_created /
 *     by_status_created / by_workflow_status_created /
 *     by_resource_status_created / by_workflow_resource_created /
 *     by_workflow_resource_status_created / by_run_created,
 *     mastra_scorers.by_scorer_created / by_scorer_entity_created /
 *     by_run_created / by_entity_created / by_span_created: ordered, paginated
 *     listing per owner without scanning.
 *   - table mastra_counters: transactional row counts per table and group,
 *     so totals never need a full scan.
 *   - table mastra_ranks: counted B-tree nodes per thread and resource, so any
 *     page of a thread's messages or a resource's threads is found without
 *     reading the rows before it.
 */
import { defineTable } from "convex/server";
import { v } from "convex/values";

// A nullable column written as an explicit null by the TypeScript package.
const nullable = <T extends Parameters<typeof v.optional>[0]>(inner: T) =>
  v.optional(v.union(inner, v.null()));

export const mastraThreadsTable = defineTable({
  id: v.string(),
  resourceId: v.string(),
  title: v.string(),
  metadata: v.optional(v.any()),
  createdAt: v.string(),
  updatedAt: v.string(),
  lastMessageAt: v.optional(v.string()), // ours
  messageSeq: v.optional(v.number()), // ours
})
  .index("by_record_id", ["id"])
  .index("by_resource", ["resourceId"])
  .index("by_created", ["createdAt"])
  .index("by_updated", ["updatedAt"])
  .index("by_resource_created", ["resourceId", "createdAt"])
  .index("by_resource_updated", ["resourceId", "updatedAt"])
  .index("by_resource_last_message", ["resourceId", "lastMessageAt"])
  .index("by_last_message", ["lastMessageAt"]);

export const mastraMessagesTable = defineTable({
  id: v.string(),
  thread_id: v.string(),
  content: v.string(),
  role: v.string(),
  type: v.string(),
  createdAt: v.string(),
  resourceId: v.optional(v.string()),
  writeSeq: v.optional(v.number()), // ours
})
  .index("by_record_id", ["id"])
  .index("by_thread", ["thread_id"])
  .index("by_thread_seq", ["thread_id", "writeSeq"])
  .index("by_thread_created", ["thread_id", "createdAt"])
  .index("by_resource", ["resourceId"])
  .index("by_resource_created", ["resourceId", "createdAt"])
  .index("by_thread_resource_created", ["thread_id", "resourceId", "createdAt"]);

export const mastraResourcesTable = defineTable({
  id: v.string(),
  workingMemory: v.optional(v.string()),
  metadata: v.optional(v.any()),
  createdAt: v.string(),
  updatedAt: v.string(),
})
  .index("by_record_id", ["id"])
  .index("by_updated", ["updatedAt"]);

// `id` is "<workflow_name>-<run_id>" (set by the client); the natural key is
// (workflow_name, run_id).
export const mastraWorkflowSnapshotsTable = defineTable({
  id: v.optional(v.string()),
  workflow_name: v.string(),
  run_id: v.string(),
  resourceId: v.optional(v.string()),
  snapshot: v.any(),
  createdAt: v.string(),
  updatedAt: v.string(),
  status: v.optional(v.string()), // ours: snapshot.status, derived on write
})
  .index("by_record_id", ["id"])
  .index("by_workflow_run", ["workflow_name", "run_id"])
  .index("by_workflow", ["workflow_name"])
  .index("by_resource", ["resourceId"])
  .index("by_created", ["createdAt"])
  .index("by_workflow_created", ["workflow_name", "createdAt"])
  .index("by_resource_created", ["resourceId", "createdAt"])
  .index("by_status_created", ["status", "createdAt"])
  .index("by_workflow_status_created", ["workflow_name", "status", "createdAt"])
  .index("by_resource_status_created", ["resourceId", "status", "createdAt"])
  .index("by_workflow_resource_created", ["workflow_name", "resourceId", "createdAt"])
  .index("by_workflow_resource_status_created", [
    "workflow_name",
    "resourceId",
    "status",
    "createdAt",
  ])
  .index("by_run_created", ["run_id", "createdAt"]);

// Every column of @mastra/core's scorers schema; nullable columns are optional.
export const mastraScorersTable = defineTable({
  id: v.string(),
  scorerId: v.string(),
  traceId: v.optional(v.string()),
  spanId: v.optional(v.string()),
  runId: v.string(),
  scorer: v.any(),
  preprocessStepResult: v.optional(v.any()),
  extractStepResult: v.optional(v.any()),
  analyzeStepResult: v.optional(v.any()),
  score: v.number(),
  reason: v.optional(v.string()),
  metadata: v.optional(v.any()),
  preprocessPrompt: v.optional(v.string()),
  extractPrompt: v.optional(v.string()),
  generateScorePrompt: v.optional(v.string()),
  generateReasonPrompt: v.optional(v.string()),
  analyzePrompt: v.optional(v.string()),
  reasonPrompt: v.optional(v.string()),
  input: v.any(),
  output: v.any(),
  additionalContext: v.optional(v.any()),
  requestContext: v.optional(v.any()),
  entityType: v.optional(v.string()),
  entity: v.optional(v.any()),
  entityId: v.optional(v.string()),
  source: v.string(),
  resourceId: v.optional(v.string()),
  threadId: v.optional(v.string()),
  organizationId: v.optional(v.string()),
  projectId: v.optional(v.string()),
  batchId: v.optional(v.string()),
  datasetId: v.optional(v.string()),
  datasetItemId: v.optional(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
})
  .index("by_record_id", ["id"])
  .index("by_scorer", ["scorerId"])
  .index("by_entity", ["entityId", "entityType"])
  .index("by_run", ["runId"])
  .index("by_created", ["createdAt"])
  .index("by_scorer_created", ["scorerId", "createdAt"])
  .index("by_scorer_entity_created", ["scorerId", "entityId", "entityType", "createdAt"])
  .index("by_run_created", ["runId", "createdAt"])
  .index("by_entity_created", ["entityId", "entityType", "createdAt"])
  .index("by_span_created", ["traceId", "spanId", "createdAt"]);

// Scheduler state; times are epoch milliseconds, payloads are JSON text.
export const mastraSchedulesTable = defineTable({
  id: v.string(),
  target: v.string(),
  cron: v.string(),
  timezone: nullable(v.string()),
  status: v.string(),
  next_fire_at: v.number(),
  last_fire_at: nullable(v.number()),
  last_run_id: nullable(v.string()),
  created_at: v.number(),
  updated_at: v.number(),
  metadata: nullable(v.string()),
  owner_type: nullable(v.string()),
  owner_id: nullable(v.string()),
  workflow_id: nullable(v.string()),
})
  .index("by_record_id", ["id"])
  .index("by_status_next_fire_at", ["status", "next_fire_at"])
  .index("by_workflow_status", ["workflow_id", "status"])
  .index("by_workflow_id", ["workflow_id"])
  .index("by_owner", ["owner_type", "owner_id"])
  .index("by_owner_id", ["owner_id"])
  .index("by_created", ["created_at"]);

export const mastraScheduleTriggersTable = defineTable({
  id: v.string(),
  schedule_id: v.string(),
  run_id: nullable(v.string()),
  scheduled_fire_at: v.number(),
  actual_fire_at: v.number(),
  outcome: v.string(),
  error: nullable(v.string()),
  trigger_kind: v.string(),
  parent_trigger_id: nullable(v.string()),
  metadata: nullable(v.string()),
})
  .index("by_record_id", ["id"])
  .index("by_schedule_actual", ["schedule_id", "actual_fire_at"])
  .index("by_parent_trigger", ["parent_trigger_id"]);

export const mastraChannelInstallationsTable = defineTable({
  id: v.string(),
  platform: v.string(),
  agentId: v.string(),
  status: v.string(),
  webhookId: nullable(v.string()),
  data: v.string(),
  configHash: nullable(v.string()),
  error: nullable(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
})
  .index("by_record_id", ["id"])
  .index("by_webhook", ["webhookId"])
  .index("by_platform_agent", ["platform", "agentId"])
  .index("by_platform", ["platform"]);

// One row per platform; `id` mirrors `platform`.
export const mastraChannelConfigTable = defineTable({
  id: v.string(),
  platform: v.string(),
  data: v.string(),
  updatedAt: v.string(),
})
  .index("by_record_id", ["id"])
  .index("by_platform", ["platform"]);

export const mastraBackgroundTasksTable = defineTable({
  id: v.string(),
  tool_call_id: v.string(),
  tool_name: v.string(),
  agent_id: v.string(),
  run_id: v.string(),
  thread_id: v.union(v.string(), v.null()),
  resource_id: v.union(v.string(), v.null()),
  status: v.union(
    v.literal("pending"),
    v.literal("running"),
    v.literal("suspended"),
    v.literal("completed"),
    v.literal("failed"),
    v.literal("cancelled"),
    v.literal("timed_out"),
  ),
  args: v.string(),
  result: v.union(v.string(), v.null()),
  error: v.union(v.string(), v.null()),
  suspend_payload: v.union(v.string(), v.null()),
  retry_count: v.number(),
  max_retries: v.number(),
  timeout_ms: v.number(),
  createdAt: v.string(),
  startedAt: v.union(v.string(), v.null()),
  suspendedAt: v.union(v.string(), v.null()),
  completedAt: v.union(v.string(), v.null()),
})
  .index("by_record_id", ["id"])
  .index("by_status_created", ["status", "createdAt"])
  .index("by_agent_status", ["agent_id", "status"])
  .index("by_run", ["run_id"])
  .index("by_tool_call", ["tool_call_id"])
  .index("by_thread", ["thread_id"])
  .index("by_resource", ["resource_id"])
  .index("by_tool", ["tool_name"])
  .index("by_created", ["createdAt"]);

// Observational memory generations, keyed by lookupKey ("thread:<id>" or
// "resource:<id>"); the newest generation has the highest generationCount.
export const mastraObservationalMemoryTable = defineTable({
  id: v.string(),
  lookupKey: v.string(),
  scope: v.string(),
  resourceId: nullable(v.string()),
  threadId: nullable(v.string()),
  activeObservations: v.string(),
  activeObservationsPendingUpdate: nullable(v.string()),
  originType: v.string(),
  config: v.string(),
  generationCount: v.number(),
  lastObservedAt: nullable(v.string()),
  lastReflectionAt: nullable(v.string()),
  pendingMessageTokens: v.number(),
  totalTokensObserved: v.number(),
  observationTokenCount: v.number(),
  isObserving: v.boolean(),
  isReflecting: v.boolean(),
  observedMessageIds: nullable(v.array(v.string())),
  observedTimezone: nullable(v.string()),
  bufferedObservations: nullable(v.string()),
  bufferedObservationTokens: nullable(v.number()),
  bufferedMessageIds: nullable(v.array(v.string())),
  bufferedReflection: nullable(v.string()),
  bufferedReflectionTokens: nullable(v.number()),
  bufferedReflectionInputTokens: nullable(v.number()),
  reflectedObservationLineCount: nullable(v.number()),
  bufferedObservationChunks: nullable(v.string()),
  isBufferingObservation: v.boolean(),
  isBufferingReflection: v.boolean(),
  lastBufferedAtTokens: v.number(),
  lastBufferedAtTime: nullable(v.string()),
  metadata: nullable(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
})
  .index("by_record_id", ["id"])
  .index("by_lookup_key", ["lookupKey", "generationCount"]);

export const mastraVectorIndexesTable = defineTable({
  id: v.string(),
  indexName: v.string(),
  dimension: v.number(),
  metric: v.string(),
  createdAt: v.string(),
})
  .index("by_record_id", ["id"])
  .index("by_name", ["indexName"]);

// All vectors of all (non-native) indexes; `indexName` separates them.
export const mastraVectorsTable = defineTable({
  id: v.string(),
  indexName: v.string(),
  embedding: v.array(v.float64()),
  metadata: v.optional(v.any()),
})
  .index("by_index_id", ["indexName", "id"])
  .index("by_index", ["indexName"]);

// Cache entries: scalar values (JSON text), list headers (counter = length)
// and numeric counters. "deleted" marks a key whose list items are still
// being removed in batches.
export const mastraCacheTable = defineTable({
  key: v.string(),
  keyPrefix: v.string(),
  kind: v.union(v.literal("value"), v.literal("list"), v.literal("counter"), v.literal("deleted")),
  value: v.optional(v.string()),
  counter: v.optional(v.number()),
  expiresAt: v.union(v.number(), v.null()),
})
  .index("by_key", ["key"])
  .index("by_key_prefix", ["keyPrefix"]);

// One row per list element, so long lists never form one large document.
export const mastraCacheListItemsTable = defineTable({
  key: v.string(),
  keyPrefix: v.string(),
  index: v.number(),
  value: v.string(),
})
  .index("by_key_prefix", ["keyPrefix"])
  .index("by_key_index", ["key", "index"]);

// Records of logical tables that have no typed table of their own.
export const mastraDocumentsTable = defineTable({
  table: v.string(),
  primaryKey: v.string(),
  record: v.any(),
})
  .index("by_table", ["table"])
  .index("by_table_primary", ["table", "primaryKey"]);

// Ours: row counts kept in the same transaction as every write. `group` is
// "*" for the whole table, a JSON object of the grouped field values, or a
// "#..." bookkeeping row (counter state for the table).
export const mastraCountersTable = defineTable({
  table: v.string(),
  group: v.string(),
  count: v.number(),
}).index("by_group", ["table", "group"]);

// Ours: nodes of counted B-trees over sort values (lib/ranks.ts). A leaf holds
// sorted `keys`; an inner node holds `kids` with their value counts and largest
// value. One tree per ranked index group, named by `tree`.
const rankKey = v.union(v.string(), v.number(), v.null());
export const mastraRanksTable = defineTable({
  table: v.string(),
  tree: v.string(),
  root: v.boolean(),
  keys: v.optional(v.array(rankKey)),
  kids: v.optional(v.array(v.object({ id: v.id("mastra_ranks"), n: v.number(), max: rankKey }))),
}).index("by_tree", ["table", "tree", "root"]);

export const mastraTables = {
  mastra_threads: mastraThreadsTable,
  mastra_messages: mastraMessagesTable,
  mastra_resources: mastraResourcesTable,
  mastra_workflow_snapshots: mastraWorkflowSnapshotsTable,
  mastra_scorers: mastraScorersTable,
  mastra_schedules: mastraSchedulesTable,
  mastra_schedule_triggers: mastraScheduleTriggersTable,
  mastra_channel_installations: mastraChannelInstallationsTable,
  mastra_channel_config: mastraChannelConfigTable,
  mastra_background_tasks: mastraBackgroundTasksTable,
  mastra_observational_memory: mastraObservationalMemoryTable,
  mastra_vector_indexes: mastraVectorIndexesTable,
  mastra_vectors: mastraVectorsTable,
  mastra_cache: mastraCacheTable,
  mastra_cache_list_items: mastraCacheListItemsTable,
  mastra_documents: mastraDocumentsTable,
  mastra_counters: mastraCountersTable,
  mastra_ranks: mastraRanksTable,
};

export type MastraTableName = keyof typeof mastraTables;
