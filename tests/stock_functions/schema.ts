// The schema a Mastra TypeScript app deploys with @mastra/convex 1.5.x (its tables, unchanged;
// schedules, observational memory, background tasks and channels included, as an app that
// uses them declares them).
import { defineSchema } from "convex/server";
import {
  mastraBackgroundTasksTable,
  mastraCacheListItemsTable,
  mastraChannelConfigTable,
  mastraChannelInstallationsTable,
  mastraCacheTable,
  mastraDocumentsTable,
  mastraMessagesTable,
  mastraObservationalMemoryTable,
  mastraResourcesTable,
  mastraScheduleTriggersTable,
  mastraSchedulesTable,
  mastraScoresTable,
  mastraThreadsTable,
  mastraVectorIndexesTable,
  mastraVectorsTable,
  mastraWorkflowSnapshotsTable,
} from "@mastra/convex/schema";

export default defineSchema({
  mastra_threads: mastraThreadsTable,
  mastra_messages: mastraMessagesTable,
  mastra_resources: mastraResourcesTable,
  mastra_workflow_snapshots: mastraWorkflowSnapshotsTable,
  mastra_scorers: mastraScoresTable,
  mastra_observational_memory: mastraObservationalMemoryTable,
  mastra_schedules: mastraSchedulesTable,
  mastra_schedule_triggers: mastraScheduleTriggersTable,
  mastra_background_tasks: mastraBackgroundTasksTable,
  mastra_channel_installations: mastraChannelInstallationsTable,
  mastra_channel_config: mastraChannelConfigTable,
  mastra_vector_indexes: mastraVectorIndexesTable,
  mastra_vectors: mastraVectorsTable,
  mastra_cache: mastraCacheTable,
  mastra_cache_list_items: mastraCacheListItemsTable,
  mastra_documents: mastraDocumentsTable,
});
