"""Answers read with a bound: no server, broken or hostile, makes a worker hold more than this
many bytes of one answer in memory (httpx reads a whole body, however long, unless streamed).

The bound applies to the decoded body (``iter_bytes``), so a compressed answer cannot inflate past
it either: a read stops at the first chunk over the bound, and the rest is never read.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2

KIB = 1024
MIB = 1024 * KIB
# ComplyCube's answers: a session or a check is a few KiB; a list page of up to 1,000 checks
# (pageSize's maximum) a few MiB. Well above both, well below what would hurt a worker.
COMPLYCUBE_ANSWER_MAX_BYTES = 16 * MIB
# An action's target (webhook, Slack) answers a status; its body is not used.
ACTION_ANSWER_MAX_BYTES = 64 * KIB


def read_at_most(response: httpx2.Response, limit: int) -> bytes | None:
    """The streamed ``response``'s body, or None when it is longer than ``limit`` bytes (read no
    further than the first chunk past it, or not at all when Content-Length says so)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def bounded_request(
    client: httpx2.Client,
    method: str,
    url: str,
    limit: int,
    too_large: Callable[[str, int], Exception],
    **kwargs: object,
) -> httpx2.Response:
    """``client.request(method, url, **kwargs)``, its body read up to ``limit`` bytes; beyond that,
    ``too_large(message, status)`` is raised. The answer comes back whole (``.json()``, headers)."""
    request = client.build_request(method, url, **kwargs)  # type: ignore[arg-type]
    response = client.send(request, stream=True)
    try:
        body = read_at_most(response, limit)
    finally:
        response.close()
    if body is None:
        raise too_large(f"{method} {url}: answer longer than {limit} bytes", response.status_code)
    # The body is decoded already: the headers must not make it be decoded (or measured) again.
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k not in ("content-encoding", "content-length")
    ]
    return httpx2.Response(response.status_code, headers=headers, content=body, request=request)
