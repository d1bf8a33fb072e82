/**
 * Authenticated public entry points: `mastra/public:storage`, `mastra/public:cache` and the
 * live queries `mastra/public:liveMessages`, `mastra/public:liveWorkflowRun` and
 * `mastra/public:liveCacheList`.
 *
 * For runtimes that must not hold the deployment's admin key. They take the
 * same requests as the internal handlers, but every call must carry a user
 * JWT that your deployment verifies (an auth provider in convex/auth.config.ts),
 * and the caller's identity must be on the allow-list in the deployment's
 * environment variable MASTRA_ALLOWED_IDENTITIES: a comma-separated list of
 * token identifiers (`issuer|subject`). A bare subject is not enough: with
 * several auth providers, another issuer could mint the same subject. When the variable is unset
 * or empty these functions refuse every call, so deploying them exposes
 * nothing until you opt in.
 *
 * Every allowed identity has full access to all Mastra data, as the admin key
 * does: use it for service identities, not for end users.
 */
import { mutationGeneric, queryGeneric } from "convex/server";
import { ConvexError } from "convex/values";
import { cacheArgs, handleCache } from "./cache";
import type { ReadCtx, Response } from "./lib/common";
import {
  cacheListArgs,
  cacheListItems,
  liveMessages as readLiveMessages,
  liveMessagesArgs,
  workflowRunArgs,
  workflowRunRow,
  type LiveCacheList,
  type LiveMessages,
} from "./live";
import { handleStorage, storageArgs } from "./storage";

declare const process: { env: Record<string, string | undefined> };

async function requireAllowedIdentity(ctx: ReadCtx): Promise<void> {
  const identity = await ctx.auth.getUserIdentity();
  if (identity === null) {
    throw new ConvexError({
      code: "UNAUTHENTICATED",
      message: "this function needs an authenticated identity (a user JWT)",
    });
  }
  const allowed = (process.env["MASTRA_ALLOWED_IDENTITIES"] ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (!allowed.includes(identity.tokenIdentifier)) {
    throw new ConvexError({
      code: "FORBIDDEN",
      message:
        "this identity is not in MASTRA_ALLOWED_IDENTITIES; add its token identifier " +
        "(issuer|subject) to that deployment environment variable",
    });
  }
}

export const storage = mutationGeneric({
  args: storageArgs,
  handler: async (ctx, args): Promise<Response> => {
    await requireAllowedIdentity(ctx);
    return handleStorage(ctx, args);
  },
});

export const cache = mutationGeneric({
  args: cacheArgs,
  handler: async (ctx, args): Promise<Response> => {
    await requireAllowedIdentity(ctx);
    return handleCache(ctx, args);
  },
});

/** `mastra/live:messages` for allow-listed identities (store.messages.watch with auth_token). */
export const liveMessages = queryGeneric({
  args: liveMessagesArgs,
  handler: async (ctx, args): Promise<LiveMessages> => {
    await requireAllowedIdentity(ctx);
    return readLiveMessages(ctx, args);
  },
});

/** `mastra/live:workflowRun` for allow-listed identities (store.workflows.watch with auth_token). */
export const liveWorkflowRun = queryGeneric({
  args: workflowRunArgs,
  handler: async (ctx, args): Promise<Record<string, unknown> | null> => {
    await requireAllowedIdentity(ctx);
    return workflowRunRow(ctx, args);
  },
});

/** `mastra/live:cacheList` for allow-listed identities. */
export const liveCacheList = queryGeneric({
  args: cacheListArgs,
  handler: async (ctx, args): Promise<LiveCacheList> => {
    await requireAllowedIdentity(ctx);
    return cacheListItems(ctx, args);
  },
});
