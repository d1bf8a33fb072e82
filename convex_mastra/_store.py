"""``ConvexStore``: the entry point users construct, await and close."""

from __future__ import annotations

from ._dispatch import HandlerInfo
from ._domains.background_tasks import BackgroundTasks
from ._domains.channels import Channels
from ._domains.documents import Documents
from ._domains.messages import Messages
from ._domains.observational import ObservationalMemory
from ._domains.resources import Resources
from ._domains.schedules import Schedules
from ._domains.scorers import Scorers
from ._domains.threads import Threads
from ._domains.workflows import Workflows
from ._errors import ConfigurationError
from ._handlers import HandlerChoice
from ._lifecycle import DEFAULT_MAX_CONCURRENCY, Closable, open_storage
from ._transport import AsyncTransport, RetryPolicy

__all__ = ["ConvexStore"]


class ConvexStore(Closable):
    """Mastra storage on a Convex deployment.

    Use ``async with ConvexStore(...) as store:`` or call ``await store.close()`` when done.
    ``deployment_url`` and ``admin_auth_token`` fall back to ``CONVEX_URL`` and
    ``CONVEX_ADMIN_KEY``. Instead of an admin key, ``auth_token`` (a user JWT) may be given for
    deployments that expose authenticated public entry points.

    ``storage_function`` defaults to the internal ``mastra/storage:handle`` with an admin key, and
    to the authenticated public entry point ``mastra/public:storage`` with ``auth_token``.

    ``request_timeout`` (seconds; ``None`` or 0 disables) bounds every call, retries included.
    ``max_concurrency`` bounds calls in flight from this store.

    ``transport`` replaces the ``HttpTransport`` the store would build from the connection
    arguments (which are then not passed): an in-process transport for tests of pure logic, or a
    wrapper that traces calls. The store owns it: closing the store closes it.
    """

    _close_hint = "store.close()"

    def __init__(
        self,
        deployment_url: str | None = None,
        admin_auth_token: str | None = None,
        *,
        id: str = "convex-storage",
        storage_function: str | None = None,
        request_timeout: float | None = 30.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        auth_token: str | None = None,
        allow_insecure_http: bool = False,
        retry: RetryPolicy | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        self.id = id
        self._transport, self._dispatcher = open_storage(
            "ConvexStore",
            transport,
            deployment_url=deployment_url,
            admin_auth_token=admin_auth_token,
            auth_token=auth_token,
            storage_function=storage_function,
            request_timeout=request_timeout,
            max_concurrency=max_concurrency,
            retry=retry,
            allow_insecure_http=allow_insecure_http,
            probe_table="mastra_threads",
        )
        self._handlers = HandlerChoice(self._dispatcher)
        handlers = self._handlers
        self.messages = Messages(self._dispatcher, handlers)
        """Messages of threads: save, list, get_many, update, delete, iter."""
        self.threads = Threads(self._dispatcher, handlers, self.messages)
        """Conversation threads: save, get, list, update, patch, update_metadata, move, delete,
        copy (clone)."""
        self.resources = Resources(self._dispatcher, handlers)
        """Working memory and metadata per resource: get, save, update."""
        self.workflows = Workflows(self._dispatcher, handlers)
        """Workflow runs: persist/load snapshots, list/get/delete runs, merge step results."""
        self.scorers = Scorers(self._dispatcher, handlers)
        """Evaluation scores: save, get, list by scorer, run, entity or span."""
        self.background_tasks = BackgroundTasks(self._dispatcher, handlers)
        """Mastra's background tool calls: create, get, update, claim, list, delete,
        delete_many, running_count."""
        self.channels = Channels(self._dispatcher, handlers)
        """Mastra's channel installations and per-platform configs."""
        self.observational_memory = ObservationalMemory(self._dispatcher, handlers)
        """Mastra's observational memory: generations per thread or resource, observations,
        reflections and their flags."""
        self.schedules = Schedules(self._dispatcher, handlers)
        """Mastra's schedules and their fires: create, get, list, due, update, claim_fire,
        delete, record_trigger, triggers, iter_triggers."""
        self.documents = Documents(self._dispatcher, handlers)
        """Records of untyped logical tables: insert, get, query, patch, delete, clear."""

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<ConvexStore id={self.id!r} url={self._transport.url!r} {state}>"

    @property
    def url(self) -> str:
        """The deployment URL."""
        return self._transport.url

    async def handler_info(self) -> HandlerInfo:
        """Which storage handler the deployment runs (ours or stock @mastra/convex)."""
        return await self._dispatcher.info()

    async def capabilities(self) -> frozenset[str]:
        """What the deployed handler can do, by name: ``last_message_at``,
        ``atomic_metadata_merge``, ``atomic_message_saves``, ``atomic_message_pop``,
        ``indexed_paging``, ``exact_totals``, ``counters`` (see docs/concepts.md). Upstream's
        handler has none."""
        return (await self._handlers.get()).capabilities

    async def rebuild_counters(self, *, force: bool = False) -> None:
        """Recount rows and rebuild rank trees, for exact totals and cheap pages, in batches.

        Needed once after rows were written without counting (by the stock @mastra/convex
        handler, or imported) and once after upgrading from a version without rank trees;
        until then totals fall back to counting scans and deep pages to skipping. Writes made
        while it runs are counted correctly. ``force`` recounts tables whose counters are
        already trusted (after writes made around the handler).
        """
        info = await self._dispatcher.info()
        if info.is_stock:
            raise ConfigurationError("the stock @mastra/convex handler keeps no counters")
        for table in info.counted:
            await self._dispatcher.drain(
                "rebuildCounters", table, batchSize=1000, force=force or None
            )
