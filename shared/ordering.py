"""Which of two states of one aggregate a replica keeps: the one rule for every versioned event.

A producer numbers every change of an aggregate (`version` in the event's data: a license, a
customer, a person's memberships' `access_version`, ...); a consumer keeps the state with the
highest number it has seen, whatever the order the events arrive in and whatever their
`occurred_at` says. Wall clocks do not order changes: two replicas of a producer on two
machines disagree about the time, and two changes within one clock tick carry the same one.

Events from before their producer announced a version (old ones still in a queue) carry none:
between two such states, the one that happened later wins (`occurred_at`); a held state with a
version beats an event without one (it was made after the producer began numbering).
"""

from __future__ import annotations

from datetime import datetime

from shared.db import as_utc


def supersedes(version: int | None, occurred_at: datetime, held_version: int | None, held_at: datetime) -> bool:
    """Whether an event's state (`version`, None or 0 when it has none; `occurred_at`) replaces
    the state a replica holds (`held_version`, 0 when none was ever seen; `held_at`)."""
    version, held_version = version or 0, held_version or 0
    if version or held_version:
        return version > held_version
    return as_utc(occurred_at) > as_utc(held_at)
