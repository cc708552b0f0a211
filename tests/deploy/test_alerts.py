"""The alert rules and the dashboard against Prometheus's own tools (Debian's prometheus package's
promtool; .ci/run installs it when missing, the tests skip visibly without it): every alert fires
when it should and stays quiet when it should, and every dashboard expression parses and groups by
labels its metrics carry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis import Redis

from tests.deploy.exported import exported_labels

ROOT = Path(__file__).resolve().parent.parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "cubehook-dashboard.json"
# Labels Prometheus adds to every series it scrapes (the scrape job's, and the Kubernetes relabelling's).
TARGET_LABELS = {"job", "instance", "component"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed: `apt-get install prometheus` (.ci/run does it when it can)")
    return found


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_are_valid(promtool: str) -> None:
    checked = subprocess.run([promtool, "check", "rules", "alerts.yaml"], cwd=PROMETHEUS,
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_passes_its_unit_tests(promtool: str) -> None:
    tested = subprocess.run([promtool, "test", "rules", "alerts.test.yaml"], cwd=PROMETHEUS,
                            capture_output=True, text=True)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases = yaml.safe_load((PROMETHEUS / "alerts.test.yaml").read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown staying quiet"


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_every_dashboard_expression_parses(promtool: str, tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{n}", "expr": expr} for n, expr in enumerate(dashboard_expressions())
    ]}]}  # fmt: skip
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "dashboard.yaml")],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_dashboard_and_alert_expression_names_metrics_and_labels_that_exist(redis: Redis) -> None:
    """A panel grouping by a label its metric lacks draws one line for everything (``job`` was one:
    Prometheus keeps it for the scrape job, so cubehook's own ``job`` label arrived renamed)."""
    known = exported_labels(redis)
    clashing = {name: labels & TARGET_LABELS for name, labels in known.items() if labels & TARGET_LABELS}
    assert clashing == {}, "labels Prometheus would rename to exported_*"
    expressions = dashboard_expressions() + [rule["expr"] for rule in alerts()]
    for expr in expressions:
        names = set(re.findall(r"\b(cubehook_[a-z_]+)", expr))
        if not names:
            assert expr.startswith("up{"), expr  # the scrape's own health
            continue
        for name in names:
            assert name in known, f"{name} is not exported ({expr})"
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (part.strip() for part in group.split(",")):
                carried = set().union(*(known[name] for name in names)) | TARGET_LABELS
                assert label in carried, f"{expr}: no metric in it carries {label!r}"
        for name, matchers in re.findall(r"(cubehook_[a-z_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"([a-z_]+)\s*=~?", matchers):
                assert label in known[name] | TARGET_LABELS, f"{expr}: {name} has no label {label!r}"
