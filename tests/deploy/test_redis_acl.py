"""deploy/redis/users.acl in a real Redis with TLS on: the web process and a worker, each as its own
user over rediss://, take an event to its decision; and neither user can do what it has no need to
(administration, key scans, keys outside cubehook's and RQ's), nor anyone without a password."""

from __future__ import annotations

import hashlib
import json
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
from service.queue import EventQueue
from service.rq_jobs import EventRef, JobFunction, rq_queue
from service.settings import Settings
from tests.conftest import SEAL, SECRET, SIM_API_KEY, Receiver, SimServer, event_body, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running
from workers.dispatch import action_job_id
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
    [decision] = SessionStore(tls_redis.client("cubehook-worker"), 15, seal=SEAL).history(sid)
    assert decision.outcome == "rejected"
    status = subprocess.run([CUBEHOOK, "status"], env=worker_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr[-3000:]
    assert "queued:" in status.stdout


@pytest.mark.parametrize("user", ["cubehook-web", "cubehook-worker"])
def test_no_user_may_administer_scan_or_reach_other_keys(tls_redis: TlsRedis, user: str) -> None:
    redis = tls_redis.client(user)
    redis.set("cubehook:seen:acl-probe", "1")  # its own keys: yes
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


# What only the workers and the console write: decisions, the session's lock and fence, the checks'
# index, the leases, the fleet's keys, the console's logins.
WORKERS_KEYS = ("cubehook:session:5f1e5d4c3b2a19080706f5e4:history", "cubehook:session:5f1e5d4c3b2a19080706f5e4:state",
                "cubehook:check:5f1e5d4c3b2a19080706f5e4", "cubehook:job:alive:evt-1", "cubehook:epoch",
                "cubehook:console:session:abc", "cubehook:workers:alive", "cubehook:ratelimit:complycube")  # fmt: skip


def test_the_web_user_writes_only_the_intakes_keys(tls_redis: TlsRedis) -> None:
    web = tls_redis.client("cubehook-web")
    for key in WORKERS_KEYS:
        with pytest.raises(NoPermissionError):
            web.rpush(key, '{"outcome": "clear"}')
        with pytest.raises(NoPermissionError):
            web.hset(key, "decision", '{"outcome": "clear"}')
        with pytest.raises(NoPermissionError):
            web.delete(key)
        with pytest.raises(NoPermissionError):  # nor through a script
            web.eval("return redis.call('SET', KEYS[1], '1')", 1, key)
    with pytest.raises(NoPermissionError):  # the dead-letter queue is read, never written
        web.zadd("rq:failed:cubehook", {"evt-x": 1})
    web.zcard("rq:failed:cubehook")


def test_a_forged_decision_through_the_web_user_reaches_no_target(
    tls_redis: TlsRedis, sim: SimServer, receiver: Receiver, tmp_path: Path
) -> None:
    """The attack, as the web's user: a `clear` over a session decided `rejected`. Writing the
    decision is refused by Redis; the action job the user may still queue (the intake queues jobs)
    names a decision no worker made, so the worker sends nothing, dead-letters it and says so; a job
    naming the real decision with an action the rules do not plan for it is refused too."""
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[action.onboarding]\ntype = "webhook"\nurl = "{receiver.url}/decisions"\nsecret_env = "HOOK_SECRET"\n'
        f'[action.welcome]\ntype = "webhook"\nurl = "{receiver.url}/welcome"\nsecret_env = "HOOK_SECRET"\n'
        '[[rule]]\nname = "rejected"\nwhen = { outcome = ["rejected"] }\nactions = ["onboarding"]\n'
        '[[rule]]\nname = "clear"\nwhen = { outcome = ["clear"] }\nactions = ["welcome"]\n'
    )
    worker_env = cubehook_env(
        CUBEHOOK_REDIS_URL=tls_redis.url("cubehook-worker"), CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
        CUBEHOOK_COMPLYCUBE_BASE_URL=f"{sim.url}/v1", CUBEHOOK_COMPLYCUBE_API_KEY=SIM_API_KEY,
        CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0", CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0",
        CUBEHOOK_RULES_FILE=str(rules), HOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        CUBEHOOK_ACTION_RETRY_INTERVALS="",
    )  # fmt: skip
    web = tls_redis.client("cubehook-web")
    EventQueue(web, Settings(webhook_secrets=SECRET)).submit(
        EventRef(
            "evt-forge-1", "workflowSession.completed", "workflowSession", sid, "2025-01-13T11:39:30.500Z"
        )
    )
    first = subprocess.run([CUBEHOOK, "worker", "--burst"], env=worker_env, capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr.decode()[-3000:]
    [real] = SessionStore(tls_redis.client("cubehook-worker"), 15, seal=SEAL).history(sid)
    assert real.outcome == "rejected"
    assert [path for path, _, _ in receiver.requests] == ["/decisions"]
    forged = {
        **real.to_dict(),
        "decision_id": "dec_forged",
        "outcome": "clear",
        "kind": "manual",
        "decided_by": "ops",
    }
    with pytest.raises(NoPermissionError):
        web.rpush(f"cubehook:session:{sid}:history", json.dumps(forged))
    queue = rq_queue("cubehook", web)
    for decision_id, action in (("dec_forged", "welcome"), (real.decision_id, "welcome")):
        kwargs = {"decision_id": decision_id, "session_id": sid, "action": action}
        queue.enqueue(JobFunction.RUN_ACTION, kwargs=kwargs, job_id=action_job_id(decision_id, action))
    second = subprocess.run([CUBEHOOK, "worker", "--burst"], env=worker_env, capture_output=True, timeout=120)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    assert [path for path, _, _ in receiver.requests] == ["/decisions"]  # nothing more sent
    lines = [json.loads(line) for line in second.stderr.decode().splitlines() if line.startswith("{")]
    [refusal] = [line for line in lines if line.get("event") == "decision.refused"]
    assert (refusal["reason"], refusal["decision_id"], refusal["level"]) == ("unknown", "dec_forged", "error")
    failed = set(rq_queue("cubehook", tls_redis.client("cubehook-worker")).failed_job_registry.get_job_ids())
    assert failed == {action_job_id("dec_forged", "welcome"), action_job_id(real.decision_id, "welcome")}
    unplanned = rq_queue("cubehook", tls_redis.client("cubehook-worker")).fetch_job(
        action_job_id(real.decision_id, "welcome")
    )
    assert unplanned is not None
    assert "does not plan action 'welcome'" in (unplanned.latest_result().exc_string or "")  # type: ignore[union-attr]
