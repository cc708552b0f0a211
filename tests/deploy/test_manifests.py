"""deploy/: what can be checked here without a cluster or a Docker engine."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from typing import Any
from urllib.parse import urlsplit

import click
import kubernetes_validate
import pytest
import yaml

from cubehook_cli import AUDIENCES, main
from service.settings import Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def manifests(name: str = "cubehook.yaml") -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if doc]


@pytest.mark.parametrize(
    "doc",
    manifests() + manifests("ingress-nginx-controller.yaml") + manifests("prometheus-adapter.yaml"),
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_kubernetes_manifests_match_the_api_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_validator_does_catch_mistakes() -> None:
    broken = manifests()[3]
    assert broken["kind"] == "Deployment"
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_web_has_a_readiness_probe_and_workers_scale_on_queue_depth() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in manifests()}
    web = docs[("Deployment", "cubehook-web")]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    ports = {p["name"]: p["containerPort"] for p in web["ports"]}
    config = docs[("ConfigMap", "cubehook")]["data"]
    assert ports == {"http": 8000, "admin": int(config["CUBEHOOK_ADMIN_PORT"])}
    annotations = docs[("Deployment", "cubehook-web")]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == config["CUBEHOOK_ADMIN_PORT"]  # scraped on admin
    service = docs[("Service", "cubehook-web")]["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]  # the public port alone
    hpa = docs[("HorizontalPodAutoscaler", "cubehook-worker")]["spec"]
    assert hpa["metrics"][0]["external"]["metric"]["name"] == "cubehook_jobs"


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(compose["services"]) == {"web", "worker", "console", "redis", "postgres"}
    console = compose["services"]["console"]
    assert console["command"] == ["cubehook", "console"]
    assert console["environment"]["CUBEHOOK_CONSOLE_SECRET_KEY"].startswith("${CUBEHOOK_CONSOLE_SECRET_KEY:?")
    redis = compose["services"]["redis"]
    assert "redis-server /etc/redis/redis.conf" in redis["command"][2]
    assert "./redis/redis.conf:/etc/redis/redis.conf:ro" in redis["volumes"]
    conf = dict(
        line.split(None, 1) for line in (DEPLOY / "redis" / "redis.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )  # fmt: skip
    assert (conf["appendonly"], conf["appendfsync"], conf["maxmemory-policy"]) == (
        "yes",
        "everysec",
        "noeviction",
    )
    assert (conf["port"], conf["tls-port"]) == ("0", "6380")  # TLS only


def test_every_component_reaches_redis_over_tls_as_its_own_user() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    secrets = {d["metadata"]["name"]: d["stringData"] for d in manifests() if d["kind"] == "Secret"}
    for name in ("web", "worker"):
        for url in (
            services[name]["environment"]["CUBEHOOK_REDIS_URL"],
            secrets[f"cubehook-{name}"]["CUBEHOOK_REDIS_URL"],
        ):
            parts = urlsplit(re.sub(r"\$\{[^}]*\}", "password", url))  # compose's ${VAR:?message}
            assert parts.scheme == "rediss", url
            assert parts.username == f"cubehook-{name}", url
            assert "ssl_ca_certs=" in parts.query, url
    # The console reads and writes what the workers do: it is the worker user, over TLS too.
    console = urlsplit(
        re.sub(r"\$\{[^}]*\}", "password", services["console"]["environment"]["CUBEHOOK_REDIS_URL"])
    )
    assert (console.scheme, console.username) == ("rediss", "cubehook-worker")
    assert "CUBEHOOK_REDIS_URL" not in {d["metadata"]["name"]: d for d in manifests()}["cubehook"]["data"]
    deployments = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": name}} in container["envFrom"], name


def test_every_process_that_verifies_signatures_reads_the_webhook_secrets_from_one_place() -> None:
    """Each component's own Secret holding its own copy of the webhook secrets let a rotation reach
    the web pods and not the console, whose replays then checked the old secret alone."""
    holders = [d["metadata"]["name"] for d in manifests()
               if d["kind"] == "Secret" and "CUBEHOOK_WEBHOOK_SECRETS" in d["stringData"]]  # fmt: skip
    assert holders == ["cubehook-webhook-secrets"]
    shared = {"secretRef": {"name": "cubehook-webhook-secrets"}}
    deployments = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}
    readers = {name for name, deployment in deployments.items()
               if shared in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]}  # fmt: skip
    assert readers == {"cubehook-web", "cubehook-console"}  # the workers verify nothing
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    given = {name: services[name]["environment"]["CUBEHOOK_WEBHOOK_SECRETS"] for name in ("web", "console")}
    assert given["web"] == given["console"]


def test_network_policies_fence_every_pod_and_the_data_stores() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in manifests() if d["kind"] == "NetworkPolicy"}
    for component in ("web", "worker", "console"):
        spec = policies[f"cubehook-{component}"]
        assert spec["podSelector"]["matchLabels"] == {"app": "cubehook", "component": component}
        assert spec["policyTypes"] == ["Ingress", "Egress"]
    for store in ("redis-only-cubehook", "postgres-only-cubehook"):
        [rule] = policies[store]["ingress"]
        [peer] = rule["from"]
        assert peer["podSelector"]["matchLabels"]["app"] == "cubehook"
    web_out = {p["port"] for rule in policies["cubehook-web"]["egress"] for p in rule["ports"]}
    assert web_out == {53, 6380}  # the web never reaches PostgreSQL nor the internet
    [console_in] = policies["cubehook-console"]["ingress"]  # people, through the SSO proxy only
    assert console_in["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "sso"}}}
    ]


def test_compose_binds_loopback_and_takes_the_database_password_from_the_environment() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    services = yaml.safe_load(text)["services"]
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published
    required = "${POSTGRES_PASSWORD:?"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(required)
    for name in ("worker", "console"):
        env = services[name]["environment"]
        assert env["PGPASSWORD"].startswith(required)  # libpq's; the URL carries no password
        assert urlsplit(env["CUBEHOOK_DATABASE_URL"]).password is None
        assert env["CUBEHOOK_DECISION_KEYS"].startswith("${CUBEHOOK_DECISION_KEYS:?")
    for name in ("web", "worker", "console"):
        assert services[name]["read_only"] is True
        assert services[name]["cap_drop"] == ["ALL"]
    # The web holds what the intake needs: no database password, API key or decision key, any of
    # which would let its holder make a decision the workers act on.
    assert sorted(services["web"]["environment"]) == ["CUBEHOOK_REDIS_URL", "CUBEHOOK_WEBHOOK_SECRETS"]
    assert "cubehook:cubehook@" not in text


PROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def deployments() -> list[dict[str, Any]]:
    return [doc["spec"]["template"]["spec"] for doc in manifests() if doc["kind"] == "Deployment"]


@pytest.mark.parametrize("pod", deployments(), ids=lambda p: p["containers"][0]["name"])
def test_every_pod_and_container_is_locked_down(pod: dict[str, Any]) -> None:
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["image"] == f"cubehook:{PROJECT_VERSION}"
        assert {m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"} <= scratch
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_images_are_pinned_to_the_project_version() -> None:
    assert importlib.metadata.version("cubehook") == PROJECT_VERSION
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {compose["web"]["image"], compose["worker"]["image"]} == {f"cubehook:{PROJECT_VERSION}"}
    everywhere = (DEPLOY / "compose.yaml").read_text() + (DEPLOY / "kubernetes" / "cubehook.yaml").read_text()
    assert ":latest" not in everywhere


def test_image_and_procfile_run_real_commands() -> None:
    procfile = (ROOT / "Procfile").read_text().splitlines()
    processes = {line.split()[2] for line in procfile if line}
    assert processes == {"web", "worker", "console"} == set(AUDIENCES["serve"][1])  # the CLI's serve commands
    assert all(main.get_command(click.Context(main), name) for name in processes)
    assert 'CMD ["cubehook", "web"]' in (DEPLOY / "Dockerfile").read_text()


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def test_every_alert_links_to_a_runbook() -> None:
    """The alert's link (docs/operations.md#anchor) resolves to its runbook, which names the alert."""
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    runbooks = (ROOT / "docs" / "operations.md").read_text()
    for rule in (r for g in alerts["groups"] for r in g["rules"]):
        linked, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert linked == "docs/operations.md", rule["alert"]
        assert f'<a id="{anchor}"></a>**' in runbooks, rule["alert"]
        assert f"(`{rule['alert']}`)" in runbooks, rule["alert"]


def nginx_directives(name: str = "cubehook.conf") -> dict[str, list[str]]:
    """The directives of a deploy/nginx file, by name: their arguments, as written."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "nginx" / name).read_text().splitlines():
        match = re.match(r"\s*([a-z_]+)\s+([^;{#]*);", line)
        if match:
            found.setdefault(match[1], []).append(match[2].strip())
    return found


def test_the_ingress_routes_the_webhook_alone_to_the_public_port() -> None:
    ingress = {d["kind"]: d for d in manifests()}["Ingress"]["spec"]
    paths = [p for rule in ingress["rules"] for p in rule["http"]["paths"]]
    assert paths == [
        {
            "path": "/webhooks/complycube",
            "pathType": "Exact",
            "backend": {"service": {"name": "cubehook-web", "port": {"name": "http"}}},
        }
    ]


def test_nginx_and_the_ingress_agree_with_each_other_and_with_the_app() -> None:
    """The same limits wherever the webhook is exposed, and cubehook's own body limit and
    keep-alive consistent with them: none can drift alone."""
    nginx = nginx_directives()
    annotations = {
        key.removeprefix("nginx.ingress.kubernetes.io/"): value
        for key, value in {d["kind"]: d for d in manifests()}["Ingress"]["metadata"]["annotations"].items()
    }
    controller = manifests("ingress-nginx-controller.yaml")[0]["data"]
    defaults = Settings()

    def kib(value: str) -> int:
        assert value.endswith("k")
        return int(value[:-1]) * 1024

    assert (
        kib(nginx["client_max_body_size"][0])
        == kib(annotations["proxy-body-size"])
        == defaults.max_body_bytes
    )
    assert nginx["client_body_buffer_size"][0] == annotations["client-body-buffer-size"] == "64k"
    assert nginx["proxy_request_buffering"] == [annotations["proxy-request-buffering"]] == ["on"]
    assert nginx["limit_conn"] == [f"cubehook_conn {annotations['limit-connections']}"]
    rate = int(annotations["limit-rps"])
    assert f"rate={rate}r/s" in nginx["limit_req_zone"][0]
    assert nginx["limit_req"] == [
        f"zone=cubehook_req burst={rate * int(annotations['limit-burst-multiplier'])} nodelay"
    ]
    for directive in ("proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        assert nginx[directive] == [f"{annotations[directive.replace('_', '-')]}s"]
    assert nginx["proxy_next_upstream"] == [annotations["proxy-next-upstream"]] == ["off"]
    assert nginx["client_header_buffer_size"] == [controller["client-header-buffer-size"]]
    assert nginx["large_client_header_buffers"] == [controller["large-client-header-buffers"]]
    for directive in ("client_header_timeout", "client_body_timeout"):
        assert nginx[directive] == [f"{controller[directive.replace('_', '-')]}s"]
    assert controller["limit-req-status-code"] == controller["limit-conn-status-code"] == "429"
    assert nginx["limit_req_status"] == nginx["limit_conn_status"] == ["429"]
    # The proxies let an idle connection to cubehook go before cubehook closes it.
    upstream_idle = int(nginx_directives("cubehook/upstream.conf")["keepalive_timeout"][0].removesuffix("s"))
    assert (
        upstream_idle == int(controller["upstream-keepalive-timeout"]) < defaults.keep_alive_timeout_seconds
    )


def test_prometheus_scrapes_the_admin_port_never_the_public_one() -> None:
    jobs = yaml.safe_load((DEPLOY / "prometheus" / "scrape.yaml").read_text())["scrape_configs"]
    static = [t for job in jobs for c in job.get("static_configs", []) for t in c["targets"]]
    defaults = Settings()
    assert static == [f"127.0.0.1:{defaults.admin_port}"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["web"]
    assert f"127.0.0.1:{defaults.admin_port}:{defaults.admin_port}" in compose["ports"]


def test_the_autoscalers_queue_depth_is_not_counted_once_per_web_replica() -> None:
    [adapter] = manifests("prometheus-adapter.yaml")
    [rule] = yaml.safe_load(adapter["data"]["config.yaml"])["externalRules"]
    assert rule["name"]["as"] == "cubehook_jobs"
    assert rule["metricsQuery"].startswith("max by (state) (")
    hpa = {d["kind"]: d for d in manifests()}["HorizontalPodAutoscaler"]["spec"]
    assert hpa["metrics"][0]["external"]["metric"]["name"] == rule["name"]["as"]
