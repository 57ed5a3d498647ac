"""A file a long-running loop touches while it turns, so a container health check can tell a
live relay or consumer from one that hangs (`HEARTBEAT_FILE`; unset means off)."""

from __future__ import annotations

import time
from pathlib import Path


class Heartbeat:
    def __init__(self, path: str | None, every: float = 1.0):
        self.path = Path(path) if path else None
        self.every = every
        self._last = 0.0

    def beat(self) -> None:
        if self.path is None or time.monotonic() - self._last < self.every:
            return
        self.path.touch()
        self._last = time.monotonic()
