"""Webhook deliveries, as ComplyCube makes them.

Each event is POSTed, signed, to every enabled subscription that wants it. A delivery fails unless
the receiver answers 2xx within the timeout (15 s at ComplyCube). A failed delivery is re-sent up
to 10 times with growing delays; when all fail ComplyCube disables the webhook and sends nothing
more until it is re-enabled (https://docs.complycube.com/api-reference/other-resources/webhooks).
The first three delays
(60, 120, 480 s) are documented; the later ones are not, and are assumed to keep doubling.
``retry_scale`` shrinks the schedule for tests and demos.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass

import httpx2

from cubehook_dev.simulator.faults import FaultInjector
from cubehook_dev.simulator.world import Document, WebhookRecord, World
from service.signature import HEADER, sign

RETRY_DELAYS = (60, 120, 480, 960, 1920, 3840, 7680, 15360, 30720, 61440)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    event_id: str
    event_type: str
    resource_id: str  # the session or check the event is about
    webhook_id: str
    attempt: int  # 0 for the first try, 1..10 for the retries
    outcome: str  # the HTTP status, "error: ...", "skipped: disabled", "disabled", "duplicate"
    at: float

    @property
    def ok(self) -> bool:
        return self.outcome.isdigit() and 200 <= int(self.outcome) < 300


class Deliverer:
    def __init__(
        self,
        world: World,
        faults: FaultInjector,
        *,
        retry_scale: float = 1.0,
        timeout: float = 15.0,
        reorder_hold: float = 1.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.world = world
        self.faults = faults
        self.retry_scale = retry_scale
        self.reorder_hold = reorder_hold
        self.records: list[DeliveryRecord] = []
        self.published: list[str] = []  # event ids in the order ComplyCube produced them
        self._client = httpx2.AsyncClient(timeout=timeout, transport=transport)
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: list[Document] = []

    def publish(self, events: list[Document]) -> None:
        """Send ``events`` in the background. Call from the event loop."""
        for event in events:
            self.published.append(event["id"])
            if self.faults.reorder(event["id"]):
                self._held.append(event)  # overtaken by the next event, or sent after reorder_hold
                asyncio.get_running_loop().call_later(self.reorder_hold, self._flush_held)
                continue
            self._send_to_subscribers(event)
            self._flush_held()

    def _flush_held(self) -> None:
        held, self._held = self._held, []
        for event in held:
            self._send_to_subscribers(event)

    def _send_to_subscribers(self, event: Document) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        for hook in list(self.world.webhooks.values()):
            if hook.wants(event["type"]):
                self._spawn(self._deliver(hook, event, body))
            elif not hook.enabled:
                self._record(event, hook, 0, "skipped: disabled")

    def _spawn(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, hook: WebhookRecord, event: Document, body: bytes) -> None:
        for attempt in range(len(RETRY_DELAYS) + 1):
            if not hook.enabled:
                self._record(event, hook, attempt, "skipped: disabled")
                return
            if await self._attempt(hook, event, body, attempt):
                if attempt == 0 and self.faults.duplicate(event["id"]):
                    await self._attempt(hook, event, body, attempt, duplicate=True)
                return
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt] * self.retry_scale)
        hook.enabled = False
        self._record(event, hook, len(RETRY_DELAYS), "disabled")

    async def _attempt(
        self, hook: WebhookRecord, event: Document, body: bytes, attempt: int, duplicate: bool = False
    ) -> bool:
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(body, hook.secret.encode()),
            "User-Agent": "cubehook-complycube-simulator",
        }
        try:
            response = await self._client.post(hook.url, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            self._record(event, hook, attempt, f"error: {type(exc).__name__}")
            return False
        outcome = str(response.status_code)
        self._record(event, hook, attempt, f"{outcome} duplicate" if duplicate else outcome)
        return 200 <= response.status_code < 300

    def _record(self, event: Document, hook: WebhookRecord, attempt: int, outcome: str) -> None:
        self.records.append(
            DeliveryRecord(
                event["id"], event["type"], event["payload"]["id"], hook.id, attempt, outcome, time.time()
            )
        )

    async def idle(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is being delivered, held or retried; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._tasks or self._held:
            if time.monotonic() > deadline:
                return False
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.01)
        return True

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
