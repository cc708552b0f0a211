"""Which parts of a snapshot (ComplyCube's session and check JSON) are kept, and which are
personal data. Pure: JSON in, JSON out.

Allow-lists, not deny-lists: ComplyCube adds fields without notice, and fields with no
documented shape (``tasks``, ``policyAssurance``, a breakdown's ``extractedData``, a screening
match) may hold names, dates of birth, document numbers. So a leaf is kept only when its place
is known to be harmless (ids, statuses, outcomes, types, times) or, inside a check's breakdown,
when its value is an outcome word (what reconciliation reads: workers.judging.reconcile._findings), never
under ``extractedData``, where a client's name could be one ("attention" is ComplyCube's
sandbox surname for that outcome).

- ``minimal``: only what decisions use, the rest dropped (CUBEHOOK_SNAPSHOT_MODE=minimal);
- ``erased``: every other leaf replaced by a marker, the structure and the harmless fields kept
  (``cubehook audit erase``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.judging.reconcile import CHECK_OUTCOMES, PERSONAL_BREAKDOWN

ERASED = "[erased]"
Path = tuple[str, ...]

# What decisions use (workers.judging.reconcile): the minimal snapshot.
SESSION_USED = frozenset({"id", "clientId", "status", "outcome", "workflowTemplateId",
                          "createdAt", "updatedAt", "completedAt"})  # fmt: skip
RELATED_CHECK_USED = frozenset({"checkId", "type", "taskId"})  # allRelatedChecks' items
CHECK_USED = frozenset({"id", "clientId", "type", "status", "createdAt", "updatedAt"})
# Not used, but not about the person either: kept by an erasure.
SESSION_HARMLESS = SESSION_USED | {"workflowTemplateName", "workflowTemplateDescription",
                                   "workflowId", "workflowVersion", "workflowDescription",
                                   "lastCompletedTaskId"}  # fmt: skip
CHECK_HARMLESS = CHECK_USED | {"documentId", "addressId", "livePhotoId", "liveVideoId", "enableMonitoring"}
_GONE = object()


def _session_leaf(top: frozenset[str]) -> Callable[[Path, object], bool]:
    def keep(path: Path, _value: object) -> bool:
        if len(path) == 1:
            return path[0] in top
        return len(path) == 3 and path[0] == "allRelatedChecks" and path[2] in RELATED_CHECK_USED

    return keep


def _check_leaf(top: frozenset[str]) -> Callable[[Path, object], bool]:
    def keep(path: Path, value: object) -> bool:
        if len(path) == 1:
            return path[0] in top
        if path[:2] == ("result", "outcome") and len(path) == 2:
            return True
        return (
            path[:2] == ("result", "breakdown")
            and not PERSONAL_BREAKDOWN.intersection(path)
            and isinstance(value, str)
            and value in CHECK_OUTCOMES
        )

    return keep


def _walk(node: object, path: Path, keep: Callable[[Path, object], bool], drop: bool) -> object:
    """``node`` with each leaf ``keep`` refuses dropped (and containers left empty with them) or
    replaced by ERASED. List items share one path step, "*"."""
    if isinstance(node, dict):
        walked = {key: _walk(value, (*path, str(key)), keep, drop) for key, value in node.items()}
        kept = {key: value for key, value in walked.items() if value is not _GONE}
        return _GONE if drop and not kept and node else kept
    if isinstance(node, list):
        items = [item for item in (_walk(v, (*path, "*"), keep, drop) for v in node) if item is not _GONE]
        return _GONE if drop and not items and node else items
    if keep(path, node):
        return node
    if drop:
        return _GONE
    return None if node is None else ERASED  # nothing to erase in a null


def _apply(
    session: dict[str, Any], checks: dict[str, Any], drop: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    session_keep = _session_leaf(SESSION_USED if drop else SESSION_HARMLESS)
    check_keep = _check_leaf(CHECK_USED if drop else CHECK_HARMLESS)
    walked = _walk(session, (), session_keep, drop)
    new_session: dict[str, Any] = walked if isinstance(walked, dict) else {}
    new_checks: dict[str, Any] = {}
    for check_id, check in checks.items():
        # A check the API did not know is None: nothing in it.
        done = check if check is None else _walk(check, (), check_keep, drop)
        new_checks[check_id] = {} if done is _GONE else done
    return new_session, new_checks


def minimal(session: dict[str, Any], checks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A snapshot with only what decisions use: reconciling it gives the same decision."""
    return _apply(session, checks, drop=True)


def erased(session: dict[str, Any], checks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A snapshot with every leaf that could be about the person replaced by ERASED."""
    return _apply(session, checks, drop=False)
