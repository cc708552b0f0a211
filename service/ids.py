"""What a ComplyCube id may look like, and the one way an id goes into a URL path. Pure.

An id comes from an event (``payload.id``, signed but written by whoever holds the secret) or from
an answer of ComplyCube's API (a check id inside a session, a client id), and goes into a path of
a request made with the API key: ``GET /v1/workflowSessions/{id}``. Put there as it is,
``../clients/cl1`` would read a client, ``x?pageSize=1&clientId=zzz`` add a query, and a NUL
break the request. So an id is checked before any request, and quoted whatever it is.

ComplyCube's ids are 24 lowercase hex digits in every example of its API reference and in every
answer seen (``5eb2b61e02df0a0008f1cf2a``), but no page of ComplyCube's promises that shape. The
pattern here is strict and looser: 1-64 ASCII letters, digits, ``_`` or ``-``. No ``/``, ``.``,
``?``, ``%``, space or control character, so no id can leave its path segment, whatever quoting.
"""

from __future__ import annotations

import re
from typing import TypeGuard
from urllib.parse import quote

from service.errors import InvalidId

COMPLYCUBE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHAPE = "1-64 letters, digits, _ or -"


def is_complycube_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and COMPLYCUBE_ID.fullmatch(value) is not None


def path_segment(value: str, what: str) -> str:
    """``value`` as one segment of a URL path: checked (InvalidId), then quoted, ``/`` included."""
    if not is_complycube_id(value):
        raise InvalidId(what, SHAPE)
    return quote(value, safe="")
