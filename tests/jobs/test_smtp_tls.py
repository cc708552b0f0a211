"""Mail goes over verified TLS, or not at all: real SMTP servers (aiosmtpd) with certificates made
for the test. A server whose certificate does not verify never sees the login nor the mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from service.errors import ActionRejected
from service.settings import Settings
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from tests.jobs.mailserver import LOGIN, PASSWORD, MailServer, mail_server
from tests.jobs.tls import Pki, make_pki
from workers.actions import notice, smtp
from workers.judging.action_config import EmailAction
from workers.judging.rules import Rules, parse_rules

ENV = {"SMTP_USER": LOGIN, "SMTP_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def mail_rules(port: int, tls: str, ca_file: Path | None = None) -> Rules:
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    return parse_rules(
        f"""
[action.mail]
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "{tls}"
{ca}username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
sender = "cubehook@example.com"
recipients = ["compliance@example.com"]

[watchdog]
actions = ["mail"]
""",
        ENV,
    )


def send(rules: Rules) -> str:
    config = rules.file.action["mail"]
    assert isinstance(config, EmailAction)
    return smtp.send(config, rules, smtp.compose(config, "ComplyCube session s1: REJECTED", "body"))


@pytest.fixture
def starttls_server(pki: Pki) -> Iterator[MailServer]:
    with mail_server(starttls=pki.server_context(pki.server)) as server:
        yield server


def test_starttls_with_the_relays_ca_trusted_logs_in_and_delivers(
    pki: Pki, starttls_server: MailServer
) -> None:
    detail = send(mail_rules(starttls_server.port, "starttls", pki.ca))
    assert detail == f"mailed 1 recipient(s) via 127.0.0.1:{starttls_server.port} (starttls)"
    assert starttls_server.auths == [("PLAIN", LOGIN.encode())]  # inside TLS, the right login
    [message] = starttls_server.inbox.messages
    assert message["Subject"] == "ComplyCube session s1: REJECTED"


@pytest.mark.parametrize(
    ("certificate", "trust_ca", "why"),
    [
        ("self_signed", False, "self-signed certificate"),  # the CN=attacker.invalid server
        ("server", False, "unable to get local issuer certificate"),  # a CA the system does not trust
        ("other_name", True, "IP address mismatch"),  # a trusted CA, but a certificate for another name
    ],
)
def test_a_certificate_that_does_not_verify_gets_no_login_and_no_mail(
    pki: Pki, certificate: str, trust_ca: bool, why: str
) -> None:
    presented: tuple[Path, Path] = getattr(pki, certificate)
    with mail_server(starttls=pki.server_context(presented)) as server:
        with pytest.raises(ActionRejected) as refused:
            send(mail_rules(server.port, "starttls", pki.ca if trust_ca else None))
        assert server.auths == []  # the credentials never left
        assert server.inbox.messages == []
    assert "certificate not trusted" in str(refused.value)
    assert why in str(refused.value)


def test_implicit_tls_on_its_own_port(pki: Pki) -> None:
    with mail_server(implicit=pki.server_context(pki.server)) as server:
        assert send(mail_rules(server.port, "implicit", pki.ca)).endswith("(implicit)")
        assert [login for _, login in server.auths] == [LOGIN.encode()]
        assert len(server.inbox.messages) == 1
    with mail_server(implicit=pki.server_context(pki.self_signed)) as rogue:
        with pytest.raises(ActionRejected, match="certificate not trusted"):
            send(mail_rules(rogue.port, "implicit"))
        assert rogue.auths == []


def test_a_server_without_starttls_gets_nothing_even_if_it_would_take_a_login_in_clear() -> None:
    with mail_server(auth_in_clear=True) as server:
        with pytest.raises(ActionRejected, match="does not offer STARTTLS: nothing was sent"):
            send(mail_rules(server.port, "starttls"))
        assert server.auths == []
        assert server.inbox.messages == []


def test_the_watchdogs_notice_goes_through_the_same_tls(pki: Pki) -> None:
    with httpx2.Client() as http, mail_server(starttls=pki.server_context(pki.self_signed)) as rogue:
        [result] = notice.notify(mail_rules(rogue.port, "starttls"), http, "cubehook: notice", "text")
        assert not result.accepted
        assert str(result).startswith("mail: failed (SMTP server 127.0.0.1:")
        assert "certificate not trusted" in str(result)
        assert rogue.auths == []
    with httpx2.Client() as http, mail_server(starttls=pki.server_context(pki.server)) as server:
        [result] = notice.notify(
            mail_rules(server.port, "starttls", pki.ca), http, "cubehook: notice", "text"
        )
        assert result.accepted
        assert str(result) == f"mail: mailed 1 recipient(s) via 127.0.0.1:{server.port} (starttls)"
        [message] = server.inbox.messages
        assert message["Subject"] == "cubehook: notice"
        assert str(message.get_payload()).strip() == "text"


@pytest.fixture
def rogue(pki: Pki) -> Iterator[MailServer]:
    with mail_server(starttls=pki.server_context(pki.self_signed)) as server:
        yield server


@pytest.fixture
def runtime_env() -> dict[str, str]:
    return ENV


@pytest.fixture
def worker_settings(worker_settings: Settings, tmp_path: Path, rogue: MailServer) -> Settings:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[action.mail]\ntype = "email"\nsmtp_host = "127.0.0.1"\nsmtp_port = {rogue.port}\n'
        'username_env = "SMTP_USER"\npassword_env = "SMTP_PASSWORD"\n'
        'sender = "cubehook@example.com"\nrecipients = ["compliance@example.com"]\n\n'
        '[[rule]]\nname = "attention by mail"\nwhen = { outcome = ["attention"] }\nactions = ["mail"]\n'
    )
    return worker_settings.model_copy(update={"rules_file": rules, "action_retry_intervals": (0, 0)})


def test_the_email_action_to_an_impostor_is_dead_lettered_at_once_and_sends_nothing(
    pipeline: Pipeline, sim: SimServer, rogue: MailServer
) -> None:
    sid = sim.create(preset="attention", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    [decision] = pipeline.decisions(sid)
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("dead", 1)  # a person must look: no retries
    assert "certificate not trusted (self-signed certificate)" in entry["last_error"]
    assert rogue.auths == []
    assert rogue.inbox.messages == []
