"""What the SDK tests share besides fixtures: the served API's coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daytona import DaytonaConfig


@dataclass(frozen=True)
class Served:
    """A running ``daytonaflow serve``: where to reach it, and its state directory."""

    api_url: str
    api_key: str
    state_dir: Path

    def config(self) -> DaytonaConfig:
        return DaytonaConfig(api_key=self.api_key, api_url=self.api_url)
