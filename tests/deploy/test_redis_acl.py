"""deploy/redis/users.acl in a real Redis with TLS on: the web process and a worker, each as its own
user over rediss://, take an event to its decision; and neither user can do what it has no need to
(administration, key scans, keys outside cubehook's and RQ's), nor anyone without a password."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import yaml
from redis import Redis
from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError, ResponseError

from cubehook_dev.devredis import free_port
from tests.conftest import SECRET, SIM_API_KEY, SimServer, event_body, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running
from workers.sessions import SessionStore

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
ACL = DEPLOY / "redis" / "users.acl"
COMPOSE = DEPLOY / "compose.yaml"
PASSWORDS = {"cubehook-web": "web-Pa55word", "cubehook-worker": "worker-Pa55word"}


@dataclass
class TlsRedis:
    port: int
    ca: Path

    def url(self, user: str, password: str | None = None) -> str:
        secret = PASSWORDS[user] if password is None else password
        return f"rediss://{user}:{secret}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}"

    def client(self, user: str) -> Redis:
        return Redis.from_url(self.url(user))


def make_certificates(where: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: no certificates for Redis's TLS")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=where, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=cubehook-test-ca")  # fmt: skip
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=localhost",
    )
    (where / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "redis.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "redis.pem", "-days", "1", "-extfile", "ext")  # fmt: skip


def by_python(tmp_path: Path) -> Path:
    """users.acl with the passwords' SHA-256 in place of the placeholders, as the docs say."""
    acl = ACL.read_text()
    for user, password in PASSWORDS.items():
        placeholder = "#" + user.removeprefix("cubehook-").upper() + "_PASSWORD_SHA256"
        assert placeholder in acl
        acl = acl.replace(placeholder, "#" + hashlib.sha256(password.encode()).hexdigest())
    (tmp_path / "users.acl").write_text(acl)
    return tmp_path / "users.acl"


def by_compose(tmp_path: Path) -> Path:
    """users.acl as deploy/compose.yaml's Redis renders it at start: its own shell command."""
    command = yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("$$", "$").replace("/etc/redis/users.acl.in", str(ACL))
    script = script.replace("/tmp/users.acl", str(tmp_path / "users.acl")).split(" && exec ")[0]
    env = {"PATH": os.environ["PATH"], "REDIS_WEB_PASSWORD": PASSWORDS["cubehook-web"],
           "REDIS_WORKER_PASSWORD": PASSWORDS["cubehook-worker"]}  # fmt: skip
    subprocess.run(["sh", "-c", script], env=env, check=True)
    return tmp_path / "users.acl"


@pytest.fixture(params=[by_python, by_compose], ids=["hashed", "compose"])
def tls_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TlsRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no system redis-server (with TLS) to run the ACL file in")
    make_certificates(tmp_path)
    request.param(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--tls-cert-file", "redis.pem", "--tls-key-file", "redis.key", "--tls-ca-cert-file", "ca.pem",
         "--tls-auth-clients", "no", "--aclfile", str(tmp_path / "users.acl"), "--dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    redis = TlsRedis(port, tmp_path / "ca.pem")
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.client("cubehook-worker").ping()
            break
        except ConnectionError:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "Redis with TLS did not start"
            time.sleep(0.1)
    yield redis
    server.terminate()
    server.wait(timeout=10)


def test_each_component_as_its_own_user_over_tls_takes_an_event_to_its_decision(
    tls_redis: TlsRedis, sim: SimServer, tmp_path: Path
) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    port = free_port()
    web_env = cubehook_env(CUBEHOOK_REDIS_URL=tls_redis.url("cubehook-web"), CUBEHOOK_WEBHOOK_SECRETS=SECRET,
                           CUBEHOOK_PORT=str(port))  # fmt: skip
    body = event_body(event_id="acl-1", event_type="workflow.session.completed", session_id=sid)
    with running([CUBEHOOK, "web"], web_env, f"http://127.0.0.1:{web_env['CUBEHOOK_ADMIN_PORT']}/readyz"):
        answer = httpx2.post(
            f"http://127.0.0.1:{port}/webhooks/complycube", content=body, headers=signature(body)
        )
        copy = httpx2.post(
            f"http://127.0.0.1:{port}/webhooks/complycube", content=body, headers=signature(body)
        )
        metrics = httpx2.get(f"http://127.0.0.1:{web_env['CUBEHOOK_ADMIN_PORT']}/metrics").text
    assert (answer.status_code, copy.json()["status"]) == (202, "duplicate")
    assert "cubehook_redis_up 1.0" in metrics  # the admin listener's reads, as the web user
    worker_env = cubehook_env(
        CUBEHOOK_REDIS_URL=tls_redis.url("cubehook-worker"), CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
        CUBEHOOK_COMPLYCUBE_BASE_URL=f"{sim.url}/v1", CUBEHOOK_COMPLYCUBE_API_KEY=SIM_API_KEY,
        CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0", CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0",
    )  # fmt: skip
    done = subprocess.run([CUBEHOOK, "worker", "--burst"], env=worker_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    [decision] = SessionStore(tls_redis.client("cubehook-worker"), 15).history(sid)
    assert decision.outcome == "rejected"
    status = subprocess.run([CUBEHOOK, "status"], env=worker_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr[-3000:]
    assert "queued:" in status.stdout


@pytest.mark.parametrize("user", ["cubehook-web", "cubehook-worker"])
def test_no_user_may_administer_scan_or_reach_other_keys(tls_redis: TlsRedis, user: str) -> None:
    redis = tls_redis.client(user)
    redis.set("cubehook:acl-probe", "1")  # its own keys: yes
    for command in (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("ACL", "LIST"),
                    ("SAVE",), ("CLIENT", "KILL", "TYPE", "normal"), ("SHUTDOWN",)):  # fmt: skip
        with pytest.raises(NoPermissionError):
            redis.execute_command(*command)  # type: ignore[no-untyped-call]
    with pytest.raises(NoPermissionError):
        redis.set("someone-elses:key", "1")
    with pytest.raises(NoPermissionError):
        redis.eval("return redis.call('SET', KEYS[1], '1')", 1, "someone-elses:key")  # not by a script either


def test_no_password_no_default_user_no_clear_text(tls_redis: TlsRedis) -> None:
    with pytest.raises((AuthenticationError, ResponseError)):
        Redis.from_url(f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={tls_redis.ca}").ping()
    with pytest.raises((AuthenticationError, ResponseError)):
        Redis.from_url(tls_redis.url("cubehook-web", "wrong")).ping()
    with pytest.raises(ConnectionError):  # the TLS port speaks nothing else
        Redis.from_url(f"redis://cubehook-web:{PASSWORDS['cubehook-web']}@127.0.0.1:{tls_redis.port}/0",
                       socket_timeout=2).ping()  # fmt: skip
