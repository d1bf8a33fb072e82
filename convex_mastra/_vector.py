"""``ConvexVector``: Mastra's vector store on the deployment's storage handler."""

from __future__ import annotations

from ._dispatch import HandlerInfo
from ._domains.vectors import VectorIndexes
from ._lifecycle import DEFAULT_MAX_CONCURRENCY, Closable, open_storage
from ._transport import AsyncTransport, RetryPolicy

__all__ = ["ConvexVector"]


class ConvexVector(Closable, VectorIndexes):
    """Vector indexes with exact similarity search, on the tables of @mastra/convex's
    ``ConvexVector`` (``mastra_vector_indexes`` and ``mastra_vectors``), through the storage
    handler: ours or the stock one, read and written by either client.

    Configured, opened and closed as :class:`ConvexStore` is (``async with`` or ``await
    close()``; the same URL, credentials, timeouts, retries and transport arguments). The
    operations are MastraVector's in Python names: ``create_index``, ``list_indexes``,
    ``describe_index``, ``delete_index``, ``truncate_index``, ``upsert``, ``query``,
    ``update_vector``, ``delete_vector``, ``delete_vectors`` (see docs/vectors.md).
    """

    _close_hint = "vectors.close()"

    def __init__(
        self,
        deployment_url: str | None = None,
        admin_auth_token: str | None = None,
        *,
        id: str = "convex-vector",
        storage_function: str | None = None,
        request_timeout: float | None = 30.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        auth_token: str | None = None,
        allow_insecure_http: bool = False,
        retry: RetryPolicy | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        self.id = id
        self._transport, dispatcher = open_storage(
            "ConvexVector",
            transport,
            deployment_url=deployment_url,
            admin_auth_token=admin_auth_token,
            auth_token=auth_token,
            storage_function=storage_function,
            request_timeout=request_timeout,
            max_concurrency=max_concurrency,
            retry=retry,
            allow_insecure_http=allow_insecure_http,
            probe_table="mastra_vector_indexes",
        )
        VectorIndexes.__init__(self, dispatcher)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<ConvexVector id={self.id!r} url={self._transport.url!r} {state}>"

    @property
    def url(self) -> str:
        """The deployment URL."""
        return self._transport.url

    async def handler_info(self) -> HandlerInfo:
        """Which storage handler the deployment runs (ours or stock @mastra/convex)."""
        return await self._dispatcher.info()
