"""`cubehook quarantine list|show|replay` as real processes, on what a real `cubehook web` kept.
They need Redis and the webhook secrets only: no ComplyCube API key, no database."""

from __future__ import annotations

import hashlib
import subprocess

import httpx2
import pytest
from redis import Redis

from service.events import Flaw, Unreadable
from service.intake import run_with_intake
from service.rq_jobs import rq_queue
from service.settings import Settings
from service.signature import sign
from tests.conftest import OTHER_SECRET, SECRET, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env

pytestmark = pytest.mark.e2e

NOT_JSON = b'{"id": "e1", "type": "workflow.session.completed", "payload": {"entityName": "Jane Roe"'
NO_PAYLOAD_ID = b'{"id": "e2", "type": "workflow.session.completed"}'
# The event of issue 11 (no resourceType, no createdAt), as the release before quarantined it.
LEGACY = b'{"id": "evt-legacy-1", "type": "workflow.session.completed", "payload": {"id": "sess-9"}}'


def quarantine(redis_url: str, *args: str, secrets: str = SECRET) -> subprocess.CompletedProcess[bytes]:
    env = cubehook_env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=secrets)
    return subprocess.run([CUBEHOOK, "quarantine", *args], env=env, capture_output=True, timeout=60)


def kept_by_web(web: str, body: bytes) -> str:
    response = httpx2.post(f"{web}/webhooks/complycube", content=body, headers=signature(body), timeout=10)
    assert response.status_code == 202
    item_id: str = response.json()["quarantine_id"]
    return item_id


def test_list_show_replay(web: str, redis_url: str, redis: Redis) -> None:
    not_json, no_payload_id = kept_by_web(web, NOT_JSON), kept_by_web(web, NO_PAYLOAD_ID)
    legacy = run_with_intake(
        Settings(redis_url=redis_url, webhook_secrets=SECRET),
        lambda intake: intake.quarantine.keep(
            LEGACY,
            sign(LEGACY, SECRET.encode()),
            Unreadable(Flaw.MISSING_FIELDS, "resourceType: Field required"),
        ),
    ).id

    listed = quarantine(redis_url, "list")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.decode().splitlines()
    assert {row.split()[0] for row in rows} == {not_json, no_payload_id, legacy}
    assert any(f"{len(NOT_JSON)} bytes  not_json: " in row for row in rows)
    assert "Jane" not in listed.stdout.decode()

    shown = quarantine(redis_url, "show", not_json)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert f"sha256 {hashlib.sha256(NOT_JSON).hexdigest()}" in text
    assert "reason:      not_json: " in text
    assert "Jane" not in text
    assert sign(NOT_JSON, SECRET.encode()) not in text
    assert quarantine(redis_url, "show", not_json, "--raw").stdout == NOT_JSON  # byte for byte
    assert quarantine(redis_url, "show", "q-nope").returncode == 1

    one = quarantine(redis_url, "replay", no_payload_id)
    assert one.returncode == 1  # it stays
    assert f"{no_payload_id}  kept  missing_fields: payload.id" in one.stdout.decode()

    everything = quarantine(redis_url, "replay", "--all")
    assert everything.returncode == 1
    out = everything.stdout.decode()
    assert f"{legacy}  accepted" in out
    assert "1 of 3 item(s) replayed and out of the quarantine" in out
    assert rq_queue("cubehook", redis).job_ids == ["evt-evt-legacy-1"]
    remaining = quarantine(redis_url, "list").stdout.decode()
    assert {row.split()[0] for row in remaining.splitlines()} == {not_json, no_payload_id}

    rotated = quarantine(redis_url, "replay", not_json, secrets=OTHER_SECRET)
    assert rotated.returncode == 1
    assert f"{not_json}  kept  signature: signature mismatch" in rotated.stdout.decode()
    after = quarantine(redis_url, "show", not_json).stdout.decode()
    assert "reason:      not_json: " in after  # why it was kept, still: the replay's failure beside it
    assert "last replay: signature: signature mismatch" in after
    assert any(
        row.startswith(not_json) and "not_json: " in row and "(last replay: signature: " in row
        for row in quarantine(redis_url, "list").stdout.decode().splitlines()
    )

    assert quarantine(redis_url, "replay").returncode == 2  # an ID or --all


def test_an_empty_quarantine(redis_url: str) -> None:
    listed = quarantine(redis_url, "list")
    assert (listed.returncode, listed.stdout) == (0, b"the quarantine is empty\n")
    nothing = quarantine(redis_url, "replay", "--all")
    assert (nothing.returncode, nothing.stdout) == (0, b"0 of 0 item(s) replayed and out of the quarantine\n")


# A signed body that would drive a terminal: set its title, clear it, return the carriage (ESC
# sequences, BEL, CR), a C1 CSI, a right-to-left override, a byte that is not UTF-8.
HOSTILE = b'{"id": "e9", "payload": "\x1b]0;owned\x07\x1b[2J\rok\xc2\x9b\xe2\x80\xae\xff"}\n\t{}'
SHOWN = '{"id": "e9", "payload": "\\x1b]0;owned\\x07\\x1b[2J\\x0dok\\x9b\\u202e\\xff"}\n\t{}'


def on_a_terminal(redis_url: str, *args: str) -> tuple[int, bytes, bytes]:
    """`cubehook quarantine ARGS` with its stdout a terminal (a pseudo-terminal): status, what the
    terminal received (its CR LF read back as LF), stderr."""
    import os
    import pty

    env = cubehook_env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET)
    master, slave = pty.openpty()
    try:
        done = subprocess.run([CUBEHOOK, "quarantine", *args], env=env, stdin=subprocess.DEVNULL,
                              stdout=slave, stderr=subprocess.PIPE, timeout=60)  # fmt: skip
    finally:
        os.close(slave)
    received = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed, all was read
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    return done.returncode, received.replace(b"\r\n", b"\n"), done.stderr


def test_show_raw_escapes_control_characters_on_a_terminal_and_not_in_a_pipe(redis_url: str) -> None:
    kept = run_with_intake(
        Settings(redis_url=redis_url, webhook_secrets=SECRET),
        lambda intake: intake.quarantine.keep(
            HOSTILE, sign(HOSTILE, SECRET.encode()), Unreadable(Flaw.NOT_JSON, "body: Invalid JSON")
        ),
    ).id
    status, received, err = on_a_terminal(redis_url, "show", kept, "--raw")
    assert status == 0, err
    assert received == SHOWN.encode() + b"\n"
    assert b"\x1b" not in received
    assert err.decode() == "(7 character(s) shown escaped: redirect to a file for the exact bytes)\n"
    assert quarantine(redis_url, "show", kept, "--raw").stdout == HOSTILE  # a pipe: byte for byte
