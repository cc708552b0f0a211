"""The console in a real browser: Debian's chromium, headless, driven by selenium through Debian's
chromedriver (nothing downloaded). Skipped, visibly, where they are not installed (.ci/run installs
them). A reviewer logs in, finds a rejected session in the queue, approves it with a note, and the
onboarding target (a real HTTP server) receives the decision, verified as a receiver would; an
operator replays a dead letter. A wrong password, a viewer deciding and a form without its CSRF
token are refused. The screenshots of docs/images are taken here: into a temporary folder, so that
a test run changes no tracked file, or into docs/images by `make screenshots`
(CUBEHOOK_SCREENSHOTS names the folder)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from cubehook_console.app import create_console_app
from cubehook_console.state import Console
from service.settings import Settings
from tests.conftest import ROOT, Receiver, SimServer, serving
from tests.console.conftest import HOOK_SECRET, PASSWORD, decided, with_rules
from tests.jobs.conftest import Pipeline

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = "CUBEHOOK_SCREENSHOTS"  # where `make screenshots` wants them: docs/images

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    return with_rules(worker_settings, receiver, tmp_path)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1000",
                     "--disable-gpu", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    # A click that submits a form returns before the next page is there: looking an element up
    # waits for it (up to this long), and each check below looks up one only the next page has.
    driver.implicitly_wait(15)
    yield driver
    driver.quit()


@pytest.fixture
def console_url(console: Console) -> Iterator[str]:
    with serving(create_console_app(console)) as port:
        yield f"http://127.0.0.1:{port}"


def log_in(driver: object, url: str, name: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "name").send_keys(name)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "password").send_keys(password)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "login").click()  # type: ignore[attr-defined]


def log_out(driver: object) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "form.who button").click()  # type: ignore[attr-defined]
    driver.find_element(By.ID, "login")  # type: ignore[attr-defined]  # the login page is there


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    named = os.environ.get(SCREENSHOTS)
    return ROOT / named if named else tmp_path


def screenshot(driver: object, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    driver.get_screenshot_as_file(str(target.with_suffix(".tmp.png")))  # type: ignore[attr-defined]
    shutil.move(target.with_suffix(".tmp.png"), target)


def test_review_approve_and_replay_in_a_real_browser(
    browser: object, console_url: str, pipeline: Pipeline, sim: SimServer, receiver: Receiver, shots: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    # Seed: decided sessions of every kind, the rejected one to approve, and a dead letter.
    for preset in ("clear", "attention", "disagree", "rejected"):
        decided(pipeline, sim, preset)
    rejected = decided(pipeline, sim, "rejected")
    receiver.status = 503  # the onboarding system is down: this one's decision is dead-lettered
    stranded = decided(pipeline, sim, "attention")
    receiver.status = 200
    [dead] = pipeline.queue.failed_job_registry.get_job_ids()
    received = len(receiver.requests)

    # A wrong password is refused.
    log_in(driver, console_url, "reviewer", "not the password")
    assert driver.find_element(By.ID, "error").text == "Wrong name or password."  # type: ignore[attr-defined]

    # A viewer may read the session, and is refused when trying to decide.
    log_in(driver, console_url, "viewer")
    driver.find_element(By.ID, "queue")  # type: ignore[attr-defined]  # logged in
    driver.get(f"{console_url}/sessions/{rejected}")  # type: ignore[attr-defined]
    assert "deciding takes a reviewer" in driver.find_element(By.ID, "cannot-decide").text  # type: ignore[attr-defined]
    token = driver.find_element(By.CSS_SELECTOR, "form.who input[name=csrf]").get_attribute("value")  # type: ignore[attr-defined]
    driver.execute_script(  # type: ignore[attr-defined]
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "for (const [k, v] of Object.entries(arguments[1])) { const i = document.createElement('input');"
        "i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); } document.body.appendChild(f); f.submit();",
        f"/sessions/{rejected}/decide",
        {"csrf": token, "outcome": "clear", "note": "a viewer trying", "key": "k" * 24, "over": "dec_x"},
    )
    assert driver.find_element(By.CSS_SELECTOR, "#refused h1").text == "Not allowed"  # type: ignore[attr-defined]
    assert "viewer is a viewer" in driver.find_element(By.ID, "message").text  # type: ignore[attr-defined]
    driver.get(f"{console_url}/queue")  # type: ignore[attr-defined]
    log_out(driver)

    # The reviewer finds the rejected session in the queue and opens it.
    log_in(driver, console_url, "reviewer")
    driver.find_element(By.ID, "queue")  # type: ignore[attr-defined]
    link = driver.find_element(By.LINK_TEXT, rejected)  # type: ignore[attr-defined]
    row = link.find_element(By.XPATH, "./ancestor::tr")
    assert "rejected" in row.text
    screenshot(driver, shots, "console-queue.png")
    link.click()
    assert driver.find_element(By.ID, "session-id").text == rejected  # type: ignore[attr-defined]

    # Without its CSRF token the form is refused, and nothing is decided.
    driver.execute_script("document.querySelector('#decide input[name=csrf]').remove()")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "note").send_keys("no token")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "approve").click()  # type: ignore[attr-defined]
    assert driver.find_element(By.CSS_SELECTOR, "#refused h1").text == "Form expired or forged"  # type: ignore[attr-defined]
    assert len(pipeline.decisions(rejected)) == 1

    # Approve with a note.
    driver.get(f"{console_url}/sessions/{rejected}")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "note").send_keys("Document re-checked by phone with the customer: genuine.")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "approve").click()  # type: ignore[attr-defined]
    assert "is recorded" in driver.find_element(By.ID, "decided").text  # type: ignore[attr-defined]
    assert "by reviewer" in driver.find_element(By.ID, "current").text  # type: ignore[attr-defined]

    # The workers run its actions: the onboarding target receives it, signed, with who decided.
    pipeline.work()
    driver.refresh()  # type: ignore[attr-defined]
    assert "sent" in driver.find_element(By.ID, "decisions").text  # type: ignore[attr-defined]
    screenshot(driver, shots, "console-session.png")
    arrived = [json.loads(Webhook(HOOK_SECRET).verify(body, headers) and body) for path, headers, body in
               receiver.requests[received:] if path == "/decisions"]  # fmt: skip
    [manual] = [d for d in arrived if d["session_id"] == rejected]
    assert (manual["outcome"], manual["decided_by"]) == ("clear", "reviewer")
    log_out(driver)

    # An operator replays the dead letter; the target, back up, receives the decision.
    log_in(driver, console_url, "operator")
    driver.find_element(By.ID, "queue")  # type: ignore[attr-defined]
    driver.get(f"{console_url}/operations")  # type: ignore[attr-defined]
    letters = driver.find_element(By.ID, "dead-letters")  # type: ignore[attr-defined]
    assert dead in letters.text
    letters.find_element(By.XPATH, f".//tr[td[text()='{dead}']]//button").click()
    assert dead in driver.find_element(By.ID, "done-replayed").text  # type: ignore[attr-defined]
    pipeline.work()
    replayed = [json.loads(body) for path, _, body in receiver.requests if path == "/decisions"]
    assert any(d["session_id"] == stranded for d in replayed)
    assert pipeline.queue.failed_job_registry.count == 0
    assert (shots / "console-queue.png").stat().st_size > 10_000
