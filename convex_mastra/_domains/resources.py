"""``store.resources``: working memory and metadata kept per resource across its threads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._codec import check_document_size, decode_json, json_arg, to_iso
from .._errors import ValidationError
from .._models import Resource, coerce
from ._base import Domain, check_id, no_extras, strip_system

__all__ = ["Resources"]

TABLE = "mastra_resources"


def resource_from_row(row: Mapping[str, Any]) -> Resource:
    """A stored resource row as a Resource."""
    fields = strip_system(row)
    metadata = decode_json(fields.pop("metadata", None))
    return Resource.model_validate(
        {**fields, "metadata": metadata if isinstance(metadata, dict) else None}
    )


def resource_record(model: Resource) -> dict[str, Any]:
    """A Resource as the stored record @mastra/convex writes; checks fields and size first."""
    no_extras(model, "resource")
    record = model.to_mastra()
    record["metadata"] = json_arg(model.metadata or {}, "resource.metadata")
    record["createdAt"] = to_iso(model.created_at)
    record["updatedAt"] = to_iso(model.updated_at)
    # The handler checks the size too, but a record far over it could not even be sent.
    check_document_size(model.id, record)
    return record


class Resources(Domain):
    """Resources: get, save and update."""

    async def get(self, resource_id: str) -> Resource | None:
        """The resource, or None."""
        check_id(resource_id, "resource_id")
        row = await self._dispatcher.call("load", TABLE, keys={"id": resource_id})
        return resource_from_row(row) if row else None

    async def save(self, resource: Resource | Mapping[str, Any]) -> Resource:
        """Insert or replace the resource with this id."""
        model = coerce(Resource, resource, "resource")
        check_id(model.id, "resource.id")  # reads refuse blank ids: it could never be read
        if model.metadata is None:
            model = model.model_copy(update={"metadata": {}})  # stored as {}, as upstream does
        await self._dispatcher.call("insert", TABLE, record=resource_record(model))
        return model

    async def update(
        self,
        resource_id: str,
        *,
        working_memory: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Resource:
        """Set working memory and/or merge ``metadata`` key by key; creates a missing resource.

        The merge happens inside one mutation, so concurrent updates keep each other's keys.
        """
        check_id(resource_id, "resource_id")
        if working_memory is not None and not isinstance(working_memory, str):
            raise ValidationError("working_memory must be a string", field="working_memory")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValidationError("metadata must be a dict", field="metadata")
        update = json_arg(dict(metadata), "metadata") if metadata is not None else None
        # What is sent alone may be too large already (the merge can only add to it).
        check_document_size(resource_id, {"workingMemory": working_memory, "metadata": update})
        handler = await self._handler()
        return resource_from_row(
            await handler.update_resource(resource_id, working_memory, metadata, update)
        )
