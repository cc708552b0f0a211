"""Functions the ``python`` action's tests name in their rules files, as a deployment would name its
own: they record what they were called with, and fail on demand."""

from __future__ import annotations

from typing import Any

CALLS: list[dict[str, Any]] = []
FAILURES_LEFT = [0]  # how many calls fail before one succeeds
NOT_A_FUNCTION = 42


def sync_decision(document: dict[str, Any]) -> None:
    if FAILURES_LEFT[0] > 0:
        FAILURES_LEFT[0] -= 1
        raise ConnectionError("the internal service is down")
    CALLS.append(document)
