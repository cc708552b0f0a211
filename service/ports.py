"""A port a process is to listen on, checked before anything starts: one line naming the setting
to change when it is taken, the same for every listener (the web's public and admin ones, the
console, a worker's metrics), instead of a server that starts half-way and logs its failure to
bind in a format of its own (uvicorn's exit 3, prometheus_client's OSError)."""

from __future__ import annotations

import errno
import socket

from service.errors import ConfigError


def ensure_free(host: str, port: int, setting: str) -> None:
    """Raise ConfigError, naming the setting to change, when ``host:port`` cannot be listened on
    (another process holds it, most likely)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(taken(host, port, setting, exc)) from None


def taken(host: str, port: int, setting: str, exc: OSError) -> str:
    """The one line for a port that could not be bound."""
    in_use = exc.errno == errno.EADDRINUSE
    why = "is taken by another process" if in_use else f"cannot be used ({exc.strerror})"
    return f"port {port} on {host} {why}: stop what holds it, or set {setting} to a free port"
