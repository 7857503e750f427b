"""The typed envelope that travels between nodes: ``{type, data, timestamp}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_serializer


def utc_now() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every component's typed ``data`` model.

    Subclasses set ``event_type`` to the seed's type string (``daytona.sandbox``). Field names are
    the wire names (camelCase) so a dumped payload equals the seed's example byte for byte.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event_type: ClassVar[str]

    def failure_summary(self) -> str | None:
        """Why this payload is a failure, in a few words (``HTTP 502 from ...``, ``timed out after 30 s``).

        The engine quotes it when the payload is emitted on a failure channel that no edge handles;
        None says nothing more than the channel's name.
        """
        return None


class Event(BaseModel):
    """What a node emits and what ``$["node"]`` returns in an expression."""

    model_config = ConfigDict(extra="forbid")

    type: str
    data: dict[str, Any]
    timestamp: datetime

    @field_serializer("timestamp")
    def _iso_utc(self, value: datetime) -> str:
        text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return text

    @classmethod
    def of(cls, payload: Payload, timestamp: datetime | None = None) -> Event:
        return cls(
            type=payload.event_type,
            data=payload.model_dump(mode="json", by_alias=True, exclude_none=True),
            timestamp=timestamp or utc_now(),
        )
