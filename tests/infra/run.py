"""One run: the load, one fault struck at a fixed time into it (never at a safe point), the wait
until everything is over (bounded), the checks and the measurements."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.checks import Seen, forgotten_events, lost_events, problems, read, settled
from tests.infra.load import Load
from tests.infra.metrics import Alert, Sampler
from tests.infra.stack import Stack

SESSIONS = 30  # clear, rejected, attention in turn
LOAD_SECONDS = 15.0  # the sessions start evenly over this
STRIKE_AT = 6.0  # seconds into the load
SETTLE_SECONDS = 60.0  # after the fault's end and the load's: the longest the run waits for the end
# Once settled, the run goes on this long before the checks: one maintenance run (a backfill) at
# least, so a decision doubled after the end (a late re-queue, a backfill after a loss) is seen too.
QUIET_SECONDS = 11.0
ALERT_GRACE = 3.0  # a gauge may lag the fault's end by this much (the workers' probes)


@dataclass(frozen=True)
class Fault:
    """``strike`` starts the fault; ``heal`` blocks while it lasts and returns once it is over."""

    name: str
    strike: Callable[[], None]
    heal: Callable[[], None]
    alerts: tuple[Alert, ...]
    redis_kept: bool = True  # whether Redis still holds what it held before the fault
    # Whether an event answered 202 may be forgotten by Redis (an empty restart; a failover without
    # WAIT): measured either way; a problem where it may not.
    may_forget: bool = False


def run_fault(stack: Stack, fault: Fault, report_dir: Path) -> None:
    """Run the load with ``fault``; print and save the measurements; fail with every problem seen."""
    sampler = Sampler(stack.metrics)
    load = Load(stack.sim_url, SESSIONS, LOAD_SECONDS)
    sampler.start()
    load.start()
    load.at(STRIKE_AT)
    struck = time.time()
    fault.strike()
    fault.heal()
    healed = time.time()
    load.join(timeout=LOAD_SECONDS + 30)
    deadline = time.monotonic() + SETTLE_SECONDS
    done_at = None
    while time.monotonic() < deadline:
        if settled(stack, load.expected, SESSIONS):
            done_at = time.time()
            time.sleep(QUIET_SECONDS)
            break
        time.sleep(0.5)
    sampler.stop()
    seen = read(stack, load.expected)
    found = [*load.errors, *problems(stack, load.expected, seen, fault.redis_kept)]
    forgotten = forgotten_events(seen)
    if forgotten and not fault.may_forget:
        found.append(f"{len(forgotten)} events answered 202 were never processed: {forgotten[:5]}")
    if done_at is None:
        found.append(
            f"not settled {SETTLE_SECONDS:g} s after the fault's end and the load's (see the lines below)"
        )
    for alert in fault.alerts:
        found += alert.problems(sampler, struck, healed + ALERT_GRACE)
    report = measure(fault, load, seen, struck, healed, done_at, stack)
    report["problems"] = found
    path = report_dir / f"infra-{fault.name}.json"
    path.write_text(json.dumps(report, indent=2))
    shown = {k: v for k, v in report.items() if k not in ("problems", "web_503s_by_second")}
    print(f"\n[{fault.name}] " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    print(f"[{fault.name}] report: {path}")
    assert not found, f"{fault.name}: {len(found)} problems:\n- " + "\n- ".join(found)


def measure(
    fault: Fault,
    load: Load,
    seen: Seen,
    struck: float,
    healed: float,
    done_at: float | None,
    stack: Stack,
) -> dict[str, Any]:
    outcomes = [d["outcome"] for d in seen.deliveries]
    times = stack.receiver.times
    refused = [d["at"] for d in seen.deliveries if d["outcome"].startswith("503")]
    return {
        "fault": fault.name,
        "fault_seconds": round(healed - struck, 1),
        "web_503s": len(refused),
        # From the first 503 to the last (ComplyCube's retries included), and the last one's
        # distance from the fault's end: how long the web process kept refusing.
        "web_503_span_s": round(max(refused) - min(refused), 1) if refused else None,
        "last_503_after_fault_s": round(max(refused) - healed, 1) if refused else None,
        # 503s by whole second since the strike: {"-1": n, "0": n, ...} (the JSON file only)
        "web_503s_by_second": dict(sorted(Counter(math.floor(at - struck) for at in refused).items())),
        "delivery_errors": sum(o.startswith("error") for o in outcomes),  # no answer at all
        "deliveries": len(outcomes),
        "events": len({d["eventId"] for d in seen.deliveries}),
        "events_lost": len(lost_events(seen.deliveries)),
        "events_forgotten": len(forgotten_events(seen)),  # answered 202, their job lost with Redis's data
        "sessions": len(load.expected),
        "sessions_decided": len(seen.decisions),
        "decisions": len(seen.decision_ids()),
        "action_requests": len(seen.webhook_ids),
        "action_deliveries": len(set(seen.webhook_ids)),
        "last_action_after_fault_s": round(max(times) - healed, 1) if times else None,
        "settled_after_fault_s": round(done_at - healed, 1) if done_at else None,
        "processes_exited": [p.name for p in stack.cubehook if not p.alive()],
    }
