"""uvicorn's httptools protocol with the two limits uvicorn (0.54) lacks: a request head (request
line and headers) bounded in size and in time.

uvicorn buffers a head of any size with httptools (its ``h11_max_incomplete_event_size`` is h11's
alone) and times nothing out until the head is complete: its keep-alive timer runs only between
requests, and the endpoint's body timeout starts once the app has the request. One connection
sending a 150 MiB header took the web process from 59 to 360 MB; 1,100 connections holding
half-sent headers stayed open for good, and valid deliveries got empty replies meanwhile.

Here a head over ``max_head_bytes`` gets 431 and one not complete ``head_timeout`` seconds after
its first byte (or after the connection opened) gets 408, and the connection is closed; a
connection that sent nothing is closed without an answer. Deadlines are checked by one sweep per
server a few times per timeout, not by a timer per request: arming and cancelling a timer cost
3.4 us a request, noting a deadline costs next to nothing, and a cut-off may come up to a sweep
interval late.

A head's size is measured twice, for the two ways it can grow: the bytes read while it is not yet
complete (what httptools holds in memory; a flood is cut after one read past the bound), and the
head as parsed (the URL, each header's name and value and their separators), which also covers the
head that arrives, or ends, in the read that completes it. A refused head reaches no app.
"""

from __future__ import annotations

import asyncio
import http
import weakref
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.log import get_logger
from service.metrics import HTTP_REFUSED

log = get_logger("cubehook.http")

_IDLE, _HEAD, _BODY, _REFUSED = 0, 1, 2, 3  # between requests, reading a head, past it, refused
_HEADER_SEPARATORS = len(b": \r\n")
_sweeping: weakref.WeakSet[ServerState] = weakref.WeakSet()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Use ``with_limits(...)``: uvicorn builds protocols with its own arguments only."""

    max_head_bytes: ClassVar[int] = 16 * 1024
    head_timeout: ClassVar[float] = 5.0

    @classmethod
    def with_limits(cls, max_head_bytes: int, head_timeout: float) -> type[LimitedHttpToolsProtocol]:
        limits = {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout}
        return type(cls.__name__, (cls,), limits)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._phase = _IDLE
        self._head_bytes = 0  # bytes read while the head was incomplete
        self._head_parsed = 0  # the head's bytes as parsed so far
        self._completed = 0  # requests received in full on this connection
        self._head_deadline: float | None = None  # loop time by which the head must be complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.server_state not in _sweeping:
            _sweeping.add(self.server_state)
            _Sweep(self.server_state, self.loop, max(0.05, min(1.0, self.head_timeout / 4))).schedule()
        self._set_deadline()  # a connection that never sends a byte is a head that never completes

    def data_received(self, data: bytes) -> None:
        completed = self._completed
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._phase == _HEAD:
            # Counted after parsing, so that a body arriving with its head is not counted as head.
            # (A chunk ending one request and starting the next counts whole: at most one read.)
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._too_large()
        elif self._phase == _IDLE and self._completed == completed and self._head_deadline is None:
            self._set_deadline()  # bytes between requests (line breaks) with no request begun

    # httptools goes on parsing the rest of a read after a refusal: what follows reaches no app.
    def on_message_begin(self) -> None:
        if self._phase == _REFUSED:
            return
        super().on_message_begin()
        self._phase = _HEAD
        self._head_bytes = 0
        self._head_parsed = 0
        if self._head_deadline is None:  # else the deadline runs from the connection's start
            self._set_deadline()

    def on_url(self, url: bytes) -> None:
        if self._parsed(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._parsed(len(name) + len(value) + _HEADER_SEPARATORS):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._phase == _REFUSED:
            return
        self._phase = _BODY
        self._head_deadline = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._phase != _REFUSED:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._phase == _REFUSED:
            return
        super().on_message_complete()
        self._phase = _IDLE
        self._completed += 1

    def _parsed(self, size: int) -> bool:
        """Count ``size`` bytes of the head as parsed; False once the head is refused."""
        if self._phase == _REFUSED:
            return False
        self._head_parsed += size
        if self._head_parsed > self.max_head_bytes:
            self._too_large()
            return False
        return True

    def _too_large(self) -> None:
        self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "head_too_large")
        self._phase = _REFUSED

    def _set_deadline(self) -> None:
        self._head_deadline = self.loop.time() + self.head_timeout

    def overdue(self, now: float) -> None:
        """Called by the sweep: refuse the connection if its head is overdue."""
        if self._head_deadline is None or now < self._head_deadline or self.transport.is_closing():
            return
        self._head_deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # an answer is on its way; uvicorn's keep-alive timer takes over after it
        if self._phase == _HEAD:
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT, "head_timeout")
        elif self._phase == _IDLE:
            self._refuse(None, "idle_timeout")

    def _refuse(self, status: http.HTTPStatus | None, reason: str) -> None:
        HTTP_REFUSED.labels(reason=reason).inc()
        peer = self.client[0] if self.client else None
        log.warning("http.refused", reason=reason, status=status and int(status), peer=peer)
        if status is not None:
            text = status.phrase.encode()
            self.transport.write(
                b"".join((
                    STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\nconnection: close\r\n\r\n" % len(text), text,
                ))
            )  # fmt: skip
        self.transport.close()
        self._head_deadline = None


class _Sweep:
    """Every ``interval`` seconds, while the loop runs, the server's connections whose head is
    overdue are refused."""

    def __init__(self, server_state: ServerState, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.server_state = weakref.ref(server_state)
        self.loop = loop
        self.interval = interval

    def schedule(self) -> None:
        self.loop.call_later(self.interval, self.run)

    def run(self) -> None:
        state = self.server_state()
        if state is None:
            return
        now = self.loop.time()
        try:
            for connection in list(state.connections):
                if isinstance(connection, LimitedHttpToolsProtocol):
                    connection.overdue(now)
        finally:
            self.schedule()  # whatever one connection did, the others keep their deadlines
