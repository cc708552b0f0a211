"""The whole system under test, as real processes: the simulator (ComplyCube), the web process,
two workers, and the action target their rules send each decision to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from cubehook_dev.devredis import free_port
from tests.conftest import SECRET, SIM_API_KEY
from tests.e2e.conftest import cubehook_env
from tests.infra.load import TimedReceiver, subscribe
from tests.infra.processes import Proc, start

HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WORKERS = 2
# ComplyCube's retry schedule (60 s, 120 s, 480 s, ...) at 1/50: 1.2 s, 2.4 s, 9.6 s, 19 s, 38 s, ...
RETRY_SCALE = 0.02
STEP_SECONDS = 0.5  # between a played session's status changes

# cubehook's own schedules, production's compressed about tenfold like ComplyCube's retries, so a
# run fits in a minute or two; every other setting is production's default.
SCHEDULES = {
    "CUBEHOOK_JOB_RETRY_INTERVALS": "1,6,30,90,360",  # production: 10,60,300,900,3600
    "CUBEHOOK_ACTION_RETRY_INTERVALS": "1,3,12,60,180",  # production: 10,30,120,600,1800
    "CUBEHOOK_EVENT_DEFER_SECONDS": "2",  # production: 20
    "CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS": "10",  # production: 900 (the watchdog and the backfill)
}


@dataclass
class Stack:
    logs: Path
    redis_url: str
    redis: Callable[[], Redis]  # a client of the current Redis primary, for the checks
    database_url: str
    receiver: TimedReceiver
    procs: list[Proc] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    sim_url: str = ""
    web_url: str = ""
    metrics: dict[str, str] = field(default_factory=dict)  # source -> its /metrics URL
    settings: dict[str, str] = field(default_factory=dict)  # more CUBEHOOK_ settings for every process

    def start(self) -> None:
        sim_port, web_port, admin_port = free_port(), free_port(), free_port()
        self.sim_url, self.web_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{web_port}"
        hook = f"{self.web_url}/webhooks/complycube"
        simulate = ["simulate", "--port", str(sim_port), "--seed", "7", "--api-key", SIM_API_KEY,
                    "--step-seconds", str(STEP_SECONDS), "--retry-scale", str(RETRY_SCALE),
                    "--webhook-url", hook, "--webhook-secret", SECRET]  # fmt: skip
        self.procs.append(
            start("simulator", simulate, cubehook_env(), self.logs, f"{self.sim_url}/_sim/health")
        )
        # Two more subscriptions to the same endpoint: every event comes three times, each copy
        # signed with its own subscription's secret, each retried on its own.
        secrets = [SECRET, *subscribe(self.sim_url, hook, copies=2)]
        rules = self.logs / "rules.toml"
        rules.write_text(
            f'[action.hook]\ntype = "webhook"\nurl = "{self.receiver.url}/decisions"\nsecret_env = "HOOK_SECRET"\n'
            '[[rule]]\nname = "all"\nactions = ["hook"]\n'
        )
        self.env = cubehook_env(
            CUBEHOOK_REDIS_URL=self.redis_url, CUBEHOOK_DATABASE_URL=self.database_url,
            CUBEHOOK_WEBHOOK_SECRETS=",".join(secrets), CUBEHOOK_PORT=str(web_port),
            CUBEHOOK_ADMIN_PORT=str(admin_port), CUBEHOOK_COMPLYCUBE_BASE_URL=f"{self.sim_url}/v1",
            CUBEHOOK_COMPLYCUBE_API_KEY=SIM_API_KEY, CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0",
            CUBEHOOK_RULES_FILE=str(rules), HOOK_SECRET=HOOK_SECRET, CUBEHOOK_LOG_LEVEL="WARNING",
            **SCHEDULES, **self.settings,
        )  # fmt: skip
        self.procs.append(start("web", ["web"], self.env, self.logs, f"{self.web_url}/healthz"))
        self.metrics["web"] = f"http://127.0.0.1:{admin_port}/metrics"
        for n in range(1, WORKERS + 1):
            port = free_port()
            env = {**self.env, "CUBEHOOK_WORKER_METRICS_PORT": str(port)}
            url = f"http://127.0.0.1:{port}/metrics"
            self.procs.append(start(f"worker{n}", ["worker"], env, self.logs, url))
            self.metrics[f"worker{n}"] = url

    @property
    def cubehook(self) -> list[Proc]:
        """The processes of cubehook (the simulator is ComplyCube's stand-in)."""
        return [p for p in self.procs if p.name != "simulator"]

    def stop(self) -> None:
        # The web and the workers first: nothing new comes in, the jobs in hand end.
        for proc in reversed(self.procs):
            proc.stop()

    def tails(self) -> str:
        return "\n".join(
            f"--- {p.name} (exit status {p.process.poll()}), last lines of {p.stderr}:\n{p.tail()}"
            for p in self.procs
        )
