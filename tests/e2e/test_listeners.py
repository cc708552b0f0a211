"""`cubehook web` as a process: the webhook on the public listener, the probes, the metrics and the
API document on the admin listener only; one stops with the other."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cubehook_dev.devredis import free_port
from tests.conftest import SECRET, event_body, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running

pytestmark = pytest.mark.e2e


@pytest.fixture
def listeners(redis_url: str) -> Iterator[tuple[str, str]]:
    """A `cubehook web` process; the base URLs of its public and admin listeners."""
    public, admin = free_port(), free_port()
    env = cubehook_env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET)
    command = [CUBEHOOK, "web", "--port", str(public), "--admin-port", str(admin)]
    with running(command, env, f"http://127.0.0.1:{admin}/readyz"):
        yield f"http://127.0.0.1:{public}", f"http://127.0.0.1:{admin}"


def test_the_public_listener_serves_the_webhook_and_nothing_for_operators(
    listeners: tuple[str, str],
) -> None:
    public, _admin = listeners
    body = event_body(event_id="listeners-1")
    response = httpx2.post(f"{public}/webhooks/complycube", content=body, headers=signature(body), timeout=10)
    assert response.status_code == 202
    assert httpx2.get(f"{public}/healthz", timeout=5).status_code == 200
    for path in ("/metrics", "/readyz", "/openapi.json"):
        assert httpx2.get(f"{public}{path}", timeout=5).status_code == 404, path


def test_the_admin_listener_serves_probes_metrics_and_the_document_but_no_webhook(
    listeners: tuple[str, str],
) -> None:
    public, admin = listeners
    body = event_body(event_id="listeners-2")
    assert (
        httpx2.post(f"{public}/webhooks/complycube", content=body, headers=signature(body)).status_code == 202
    )
    assert httpx2.get(f"{admin}/healthz", timeout=5).status_code == 200
    assert httpx2.get(f"{admin}/readyz", timeout=5).json() == {"status": "ready"}
    assert httpx2.get(f"{admin}/openapi.json", timeout=5).json()["paths"].keys() == {
        "/webhooks/complycube", "/healthz",
    }  # fmt: skip
    scraped = httpx2.get(f"{admin}/metrics", timeout=5).text
    accepted = [
        s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == "cubehook_webhooks_total" and s.labels == {"status": "accepted", "code": "202"}
    ]
    assert accepted == [1.0]  # this process's own count, read on the other listener
    refused = httpx2.post(f"{admin}/webhooks/complycube", content=body, headers=signature(body), timeout=5)
    assert refused.status_code == 404


def _open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_closes_both_listeners(redis_url: str) -> None:
    public, admin = free_port(), free_port()
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET,
        CUBEHOOK_PORT=str(public), CUBEHOOK_ADMIN_PORT=str(admin),
    )  # fmt: skip
    with running([CUBEHOOK, "web"], env, f"http://127.0.0.1:{admin}/readyz") as web:
        assert _open(public)
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=20) == 0
    assert not _open(public)
    assert not _open(admin)


def test_an_admin_port_already_taken_stops_the_process(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = cubehook_env(
            CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET,
            CUBEHOOK_PORT=str(free_port()), CUBEHOOK_ADMIN_PORT=str(taken.getsockname()[1]),
        )  # fmt: skip
        result = subprocess.run([CUBEHOOK, "web"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0  # not a webhook served without its probes
    assert "is taken by another process" in result.stderr
    assert "CUBEHOOK_ADMIN_PORT" in result.stderr


def test_admin_port_zero_serves_the_public_listener_alone(redis_url: str) -> None:
    public = free_port()
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET,
        CUBEHOOK_PORT=str(public), CUBEHOOK_ADMIN_PORT="0",
    )  # fmt: skip
    with running([CUBEHOOK, "web"], env, f"http://127.0.0.1:{public}/healthz"):
        body = event_body(event_id="listeners-3")
        response = httpx2.post(
            f"http://127.0.0.1:{public}/webhooks/complycube", content=body, headers=signature(body)
        )
        assert response.status_code == 202
