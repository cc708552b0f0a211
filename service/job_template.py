"""RQ's commands to queue an event's job, recorded once from RQ itself and replayed by one Lua script.

Building the job with RQ per request cost about 60 µs of the web process's CPU; this costs a few.
The template is recorded from RQ with stand-in values, its constant parts written into a Lua script
(after service.scripts.ACCEPT_HEAD, which claims the event's seen key first); per event only the
parts that vary are sent: the job id (in keys), the event's fields (in the description), the
serialised call (``data``, by RQ's serializer) and the timestamps. RQ compresses ``data`` with zlib
and reads it uncompressed as well (``Job.restore`` falls back to the raw bytes); deflating 160 bytes
cost 15-50 µs, so the template leaves it uncompressed.

When recorded, the template is checked against RQ's own commands for a probe event; when they
differ (an RQ upgrade), ``record`` gives None and service.queue queues every event with RQ's own
``Queue.enqueue_job`` instead, in a transaction guarded by the seen key.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Callable
from enum import Enum

from rq import Queue
from rq.job import Job
from rq.utils import utcformat

from service import scripts
from service.rq_jobs import EventRef, JobFunction, enqueue_commands, job_id_for

# A token of a recorded command: a constant, or (kind, text) to fill in per event, where kind is
# "time", "data" (the serialised call) or "text" (holding stand-ins for the job id and the fields).
Token = bytes | tuple[str, str | None]
MakeJob = Callable[[EventRef, str | None], Job]  # an event's job, with this id (None: its own)
_MOMENT = "\x00cubehook-template-moment\x00"
_TIMESTAMPS = ("created_at", "enqueued_at")


class JobTemplate:
    """The recorded commands, the Lua script that runs them, and the values each event fills in."""

    _STAND_INS = (
        "cubehook-template-job-id",
        *(f"\x00cubehook-template-{name}\x00" for name in EventRef.__slots__),
    )
    _STAND_IN = re.compile("|".join(re.escape(s) for s in _STAND_INS))

    def __init__(
        self,
        commands: list[list[Token]],
        dumps: Callable[[object], bytes],
        params: dict[str, bytes] | None = None,
    ) -> None:
        self.commands = commands
        self.dumps = dumps
        self.params = params or {}  # ("param", name) tokens: this queue's settings, sent per event
        self.variables = [token for command in commands for token in command if not isinstance(token, bytes)]
        argv = itertools.count(scripts.ACCEPT_FIXED_ARGS + 1)
        calls = [
            "redis.call("
            + ", ".join(_lua_string(t) if isinstance(t, bytes) else f"ARGV[{next(argv)}]" for t in command)
            + ")\n"
            for command in commands
        ]
        self.script = scripts.ACCEPT_HEAD + "".join(calls) + "return 1\n"

    @classmethod
    def record(cls, queue: Queue, make_job: MakeJob) -> JobTemplate | None:
        """The template, or None when it does not reproduce RQ's own commands."""
        job_id, *fields = cls._STAND_INS
        job = make_job(EventRef(*fields), job_id)
        commands: list[list[Token]] = []
        for command in rq_commands(queue, job, _MOMENT):
            tokens: list[Token] = []
            for token in command:
                if token == _MOMENT.encode():
                    tokens.append(("time", None))
                elif token == job.data:
                    tokens.append(("data", None))
                elif any(s.encode() in token for s in cls._STAND_INS):
                    tokens.append(("text", token.decode()))
                else:
                    tokens.append(token)
            commands.append(tokens)
        commands, params = _settings_as_params(commands, queue.key.encode())
        template = cls(commands, queue.serializer.dumps, params)
        # The check: one event queued through RQ and through the template, at the same moment.
        probe = EventRef("evt-template-check", "workflow.session.completed", "session", "s", "t")
        expected = make_job(probe, None)
        moment = utcformat(expected.created_at)
        by_template = template.expand(template.values(probe, job_id_for(probe.event_id), moment))
        return template if by_template == rq_commands(queue, expected, moment) else None

    def values(self, ref: EventRef, job_id: str, moment: str) -> list[bytes]:
        """The script's arguments after the fixed ones: the varying parts, in order."""
        fields = (ref.event_id, ref.event_type, ref.resource_type, ref.resource_id, ref.event_time)
        found = dict(zip(self._STAND_INS, (job_id, *fields), strict=True))
        call = (JobFunction.PROCESS_EVENT.value, None, (), dict(zip(EventRef.__slots__, fields, strict=True)))
        filled = {"time": moment.encode(), "data": self.dumps(call)}
        return [
            self.params[text]
            if kind == "param" and text is not None
            else filled[kind]
            if text is None
            # one pass, so that a value holding a stand-in's text is never replaced again
            else self._STAND_IN.sub(lambda match: found[match[0]], text).encode()
            for kind, text in self.variables
        ]

    def expand(self, values: list[bytes]) -> list[tuple[bytes, ...]]:
        """The commands the script runs with these values."""
        supply = iter(values)
        return [
            tuple(t if isinstance(t, bytes) else next(supply) for t in command) for command in self.commands
        ]


# The job's fields that come from the settings (CUBEHOOK_JOB_*, the dedup retention, the queue's
# name). Sent per event rather than written into the script, so that the script is the same for
# any settings: the workers, which load it (the web's Redis user may only run loaded scripts),
# make the same one from their own settings.
_SETTINGS_FIELDS = (b"retries_left", b"retry_intervals", b"origin", b"timeout", b"result_ttl", b"failure_ttl")


def _settings_as_params(
    commands: list[list[Token]], queue_key: bytes
) -> tuple[list[list[Token]], dict[str, bytes]]:
    """The recorded commands with the settings' values made ("param", name) tokens, and those values."""
    params: dict[str, bytes] = {}

    def param(name: str, value: bytes) -> Token:
        params[name] = value
        return ("param", name)

    out: list[list[Token]] = []
    for command in commands:
        tokens = [param("queue_key", t) if t == queue_key else t for t in command]
        if tokens[0] == b"HSET":
            for i in range(3, len(tokens), 2):
                field, value = tokens[i - 1], tokens[i]
                if isinstance(field, bytes) and field in _SETTINGS_FIELDS and isinstance(value, bytes):
                    tokens[i] = param(field.decode(), value)
        out.append(tokens)
    return out, params


def rq_commands(queue: Queue, job: Job, moment: str) -> list[tuple[bytes, ...]]:
    """The commands RQ sends to queue ``job``, as bytes, with the job's timestamps set to ``moment``
    and its serialised call left uncompressed: the form the template sends."""
    compressed = zlib.compress(job.data)
    return [
        tuple(
            moment.encode() if i > 0 and command[i - 1] in _TIMESTAMPS
            else job.data if token == compressed
            else encode(token)
            for i, token in enumerate(command)
        )
        for command in enqueue_commands(queue, job)
    ]  # fmt: skip


def encode(value: object) -> bytes:
    """A command's argument as redis-py sends it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


def _lua_string(data: bytes) -> str:
    """A Lua string literal for any bytes: printable ASCII as it is, every other byte as \\ddd."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in data) + '"'
