"""deploy/nginx in a real nginx (Debian's package; .ci/run installs it when missing), in front of
cubehook's public listener as `cubehook web` configures it. cubehook.conf and upstream.conf are
used as shipped (the upstream's address aside); listen.conf, the site's TLS side, is replaced by a
plain listener on a free port. Skipped, visibly, where there is no nginx."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from redis import Redis
from rq import Queue

from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.settings import Settings
from service.web.app import create_apps
from service.web.serve import configs
from tests.conftest import ROOT, SECRET, event_body, received, serving_config, signature

SHIPPED = ROOT / "deploy" / "nginx"
CLOSED = (b"<closed>", b"<reset>")
pytestmark = pytest.mark.timeout(90)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        pytest.skip("nginx not installed: `apt-get install nginx` (.ci/run does it when it can)")
    return found


def site(directory: Path, nginx_port: int, upstream_port: int) -> Path:
    """The shipped files under ``directory`` with a main nginx.conf around them; its path."""
    (directory / "cubehook").mkdir()
    shutil.copy(SHIPPED / "cubehook.conf", directory / "cubehook.conf")
    upstream = (SHIPPED / "cubehook" / "upstream.conf").read_text()
    assert "server 127.0.0.1:8000;" in upstream
    upstream = upstream.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    (directory / "cubehook" / "upstream.conf").write_text(upstream)
    (directory / "cubehook" / "listen.conf").write_text(f"listen 127.0.0.1:{nginx_port};\n")
    temp = directory / "temp"
    temp.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers keep the test's user
    main = directory / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {directory}/access.log;\n"
        f"    client_body_temp_path {temp}/body;\n    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        "    include cubehook.conf;\n"
        "}\n"
    )
    return main


@pytest.fixture(scope="module")
def upstream(redis_server: EmbeddedRedis) -> Iterator[int]:
    """cubehook's public listener, as `cubehook web` configures it; its port."""
    port = free_port()
    settings = Settings(
        redis_url=redis_server.url,
        webhook_secrets=SECRET,
        port=port,
        admin_port=free_port(),
        log_format="json",
    )
    apps = create_apps(settings)
    public, admin = configs(settings, apps)
    with serving_config(public), serving_config(admin):
        yield port


@pytest.fixture(scope="module")
def proxy(upstream: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The shipped configuration in a running nginx in front of ``upstream``; nginx's port."""
    binary = nginx_binary()
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    main = site(directory, port, upstream)
    check = subprocess.run([binary, "-t", "-p", str(directory), "-e", "stderr", "-c", str(main)],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-e", "stderr", "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _accepts(port):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_shipped_listen_conf_is_valid_with_a_certificate(tmp_path: Path) -> None:
    """listen.conf as shipped (TLS on 443), its certificate paths pointed at a self-signed one."""
    binary = nginx_binary()
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: no certificate to check listen.conf with")
    main = site(tmp_path, free_port(), free_port())
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cubehook.example.com",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    listen = (SHIPPED / "cubehook" / "listen.conf").read_text()
    listen = listen.replace("/etc/ssl/certs/cubehook.example.com.pem", str(cert))
    listen = listen.replace("/etc/ssl/private/cubehook.example.com.key", str(key))
    (tmp_path / "cubehook" / "listen.conf").write_text(listen)
    check = subprocess.run([binary, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(main)],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stderr


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_valid_delivery_passes_to_cubehook(proxy: int, redis_url: str) -> None:
    body = event_body(event_id="through-nginx-1")
    response = httpx2.post(
        f"http://127.0.0.1:{proxy}/webhooks/complycube", content=body, headers=signature(body), timeout=10
    )
    assert response.status_code == 202, response.text
    assert response.json()["event_id"] == "through-nginx-1"
    redis = Redis.from_url(redis_url)
    assert Queue("cubehook", connection=redis).job_ids == ["evt-through-nginx-1"]
    redis.close()


def test_a_chunked_body_reaches_cubehook_unchanged(proxy: int, redis_url: str) -> None:
    """The signature is over the raw bytes: a body nginx re-frames must still verify."""
    body = event_body(event_id="through-nginx-2")
    chunks = iter([body[:100], body[100:]])
    response = httpx2.post(
        f"http://127.0.0.1:{proxy}/webhooks/complycube", content=chunks, headers=signature(body), timeout=10
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "path", ["/metrics", "/readyz", "/openapi.json", "/healthz", "/webhooks/complycube/x"]
)
def test_nothing_but_the_webhook_is_routed(proxy: int, path: str) -> None:
    response = httpx2.get(f"http://127.0.0.1:{proxy}{path}", timeout=10)
    assert response.status_code == 404
    assert response.headers["server"] == "nginx"  # answered by nginx, not by cubehook
    assert "cubehook" not in response.text


def test_only_post_reaches_the_webhook(proxy: int) -> None:
    response = httpx2.get(f"http://127.0.0.1:{proxy}/webhooks/complycube", timeout=10)
    assert response.status_code == 405
    assert response.headers["server"] == "nginx"


def test_an_oversized_header_is_refused(proxy: int) -> None:
    body = event_body(event_id="through-nginx-3")
    headers = {**signature(body), "X-Padding": "p" * 9000}  # one line over 8 KiB
    response = httpx2.post(f"http://127.0.0.1:{proxy}/webhooks/complycube", content=body, headers=headers)
    assert response.status_code in (400, 494)
    assert response.headers["server"] == "nginx"


def test_an_oversized_body_is_refused_by_nginx(proxy: int) -> None:
    body = b"{" + b" " * (64 * 1024) + b"}"
    response = httpx2.post(
        f"http://127.0.0.1:{proxy}/webhooks/complycube", content=body, headers=signature(body)
    )
    assert response.status_code == 413
    assert response.headers["server"] == "nginx"


def test_a_slow_client_is_cut_off(proxy: int) -> None:
    """A head sent a byte every half second never completes: nginx closes the connection (after
    client_header_timeout, 5 s) while the client is still sending."""
    with socket.create_connection(("127.0.0.1", proxy)) as sock:
        sock.sendall(b"POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        closed = False
        for _ in range(60):  # 30 s at most
            try:
                sock.sendall(b"s")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if received(sock, timeout=0.5, pause=0.5).endswith(CLOSED):
                closed = True
                break
        assert closed, "nginx kept a trickling head open for 30 s"


def test_a_stalled_body_never_reaches_cubehook(proxy: int, redis_url: str) -> None:
    body = event_body(event_id="through-nginx-4")
    head = (
        "POST /webhooks/complycube HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"ComplyCube-Signature: {signature(body)['ComplyCube-Signature']}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", proxy)) as sock:
        sock.sendall(head + body[:20])
        assert received(sock, timeout=30, pause=30).endswith(CLOSED)  # after client_body_timeout
    redis = Redis.from_url(redis_url)
    assert Queue("cubehook", connection=redis).job_ids == []
    redis.close()
