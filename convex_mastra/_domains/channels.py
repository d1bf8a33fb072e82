"""``store.channels``: Mastra's channel installations and per-platform configs (@mastra/core's
``ChannelsStorage``) in @mastra/convex's ``mastra_channel_installations`` and
``mastra_channel_config`` rows (``data`` as JSON text, dates as ISO text)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from .._codec import decode_json, json_text, to_iso
from .._errors import ValidationError
from .._models import MastraModel, Timestamp, coerce, utc_now
from ._base import Domain, check_id

__all__ = ["ChannelConfig", "ChannelInstallation", "Channels"]

INSTALLATIONS = "mastra_channel_installations"
CONFIGS = "mastra_channel_config"
STATUS_ORDER = {"active": 0, "pending": 1, "error": 2}


class ChannelInstallation(MastraModel):
    """An agent installed on a platform (a Slack workspace, a Discord server...)."""

    id: str = Field(min_length=1)
    platform: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    status: Literal["pending", "active", "error"] = "pending"
    webhook_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    config_hash: str | None = None
    error: str | None = None
    created_at: Timestamp = Field(default_factory=utc_now)
    updated_at: Timestamp = Field(default_factory=utc_now)


class ChannelConfig(MastraModel):
    """A platform's configuration."""

    platform: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)
    updated_at: Timestamp = Field(default_factory=utc_now)


def installation_from_row(row: Mapping[str, Any]) -> ChannelInstallation:
    return ChannelInstallation.model_validate(
        {
            "id": row["id"],
            "platform": row["platform"],
            "agentId": row["agentId"],
            "status": row["status"],
            "webhookId": row.get("webhookId"),
            "data": decode_json(row.get("data")) or {},
            "configHash": row.get("configHash"),
            "error": row.get("error"),
            "createdAt": row["createdAt"],
            "updatedAt": row["updatedAt"],
        }
    )


def config_from_row(row: Mapping[str, Any]) -> ChannelConfig:
    return ChannelConfig.model_validate(
        {
            "platform": row["platform"],
            "data": decode_json(row.get("data")) or {},
            "updatedAt": row["updatedAt"],
        }
    )


def _newest_first(installation: ChannelInstallation) -> float:
    return -installation.updated_at.timestamp()


class Channels(Domain):
    """Channel installations (save, get, by agent, by webhook id, list, delete) and
    per-platform configs (save, get, delete)."""

    async def save_installation(
        self, installation: ChannelInstallation | Mapping[str, Any]
    ) -> ChannelInstallation:
        """Insert or replace the installation; a replaced one keeps its ``created_at``, and
        ``updated_at`` becomes now. A ``webhook_id`` another installation has is refused
        (ValidationError) before anything is written: inbound requests route by it."""
        model = coerce(ChannelInstallation, installation, "installation")
        check_id(model.id, "installation.id")
        if model.webhook_id is not None:
            check_id(model.webhook_id, "installation.webhook_id")
            owners = await self._dispatcher.call(
                "queryTable",
                INSTALLATIONS,
                filters=[{"field": "webhookId", "value": model.webhook_id}],
            )
            other = next((row["id"] for row in owners or () if row["id"] != model.id), None)
            if other is not None:
                raise ValidationError(
                    f"webhook id {model.webhook_id!r} belongs to installation {other!r}",
                    field="installation.webhook_id",
                )
        existing = await self._dispatcher.call("load", INSTALLATIONS, keys={"id": model.id})
        now = utc_now()
        created = existing["createdAt"] if existing else to_iso(model.created_at)
        record = {
            "id": model.id,
            "platform": model.platform,
            "agentId": model.agent_id,
            "status": model.status,
            "webhookId": model.webhook_id,
            "data": json_text(model.data, "installation.data"),
            "configHash": model.config_hash,
            "error": model.error,
            "createdAt": created,
            "updatedAt": to_iso(now),
        }
        await self._dispatcher.call("insert", INSTALLATIONS, record=record)
        return installation_from_row(record)

    async def get_installation(self, installation_id: str) -> ChannelInstallation | None:
        """The installation, or None."""
        check_id(installation_id, "installation_id")
        row = await self._dispatcher.call("load", INSTALLATIONS, keys={"id": installation_id})
        return installation_from_row(row) if row else None

    async def get_installation_by_agent(
        self, platform: str, agent_id: str
    ) -> ChannelInstallation | None:
        """The agent's installation on the platform: an active one before a pending one
        before one in error, then the most recently updated (as upstream)."""
        found = await self._query(
            [
                ("platform", check_id(platform, "platform")),
                ("agentId", check_id(agent_id, "agent_id")),
            ]
        )
        found.sort(key=lambda i: (STATUS_ORDER[i.status], _newest_first(i)))
        return found[0] if found else None

    async def get_installation_by_webhook_id(self, webhook_id: str) -> ChannelInstallation | None:
        """The installation inbound requests with this webhook id go to, or None."""
        found = await self._query([("webhookId", check_id(webhook_id, "webhook_id"))])
        found.sort(key=_newest_first)
        return found[0] if found else None

    async def list_installations(self, platform: str) -> builtins.list[ChannelInstallation]:
        """The platform's installations, newest first."""
        found = await self._query([("platform", check_id(platform, "platform"))])
        found.sort(key=lambda i: -i.created_at.timestamp())
        return found

    async def delete_installation(self, installation_id: str) -> None:
        """Delete the installation (a missing one is fine)."""
        check_id(installation_id, "installation_id")
        await self._dispatcher.call("deleteMany", INSTALLATIONS, ids=[installation_id])

    async def save_config(self, config: ChannelConfig | Mapping[str, Any]) -> ChannelConfig:
        """Insert or replace the platform's config."""
        model = coerce(ChannelConfig, config, "config")
        check_id(model.platform, "config.platform")
        record = {
            "id": model.platform,
            "platform": model.platform,
            "data": json_text(model.data, "config.data"),
            "updatedAt": to_iso(model.updated_at),
        }
        await self._dispatcher.call("insert", CONFIGS, record=record)
        return model

    async def get_config(self, platform: str) -> ChannelConfig | None:
        """The platform's config, or None."""
        check_id(platform, "platform")
        row = await self._dispatcher.call("load", CONFIGS, keys={"id": platform})
        return config_from_row(row) if row else None

    async def delete_config(self, platform: str) -> None:
        """Delete the platform's config (a missing one is fine)."""
        check_id(platform, "platform")
        await self._dispatcher.call("deleteMany", CONFIGS, ids=[platform])

    async def _query(
        self, filters: builtins.list[tuple[str, Any]]
    ) -> builtins.list[ChannelInstallation]:
        rows = await self._dispatcher.call(
            "queryTable",
            INSTALLATIONS,
            filters=[{"field": field, "value": value} for field, value in filters],
        )
        return [installation_from_row(row) for row in rows or ()]
