"""Browser tier: the dashboard driven by Playwright in Debian's chromium, against the embedded stack.

Playwright's own browser downloads are not used (nothing outside the package registries can be
fetched): the tests drive /usr/bin/chromium, and install Debian's `chromium` package when it is
missing and the tests run as root (CI does). Screenshots land in test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.local_stack import running_local_fasthook
from tests.support.receiver import Receiver

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 900}


def _ensure_chromium() -> str:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} is missing and the tests are not root: install it with `sudo apt-get install chromium`"
        )
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"{CHROMIUM} is missing and apt-get is not available to install Debian's chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
        if result.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed, so the browser tests cannot run:\n{result.stderr[-2000:]}")
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make setup` (it is pinned in requirements-dev.txt)")
    executable = _ensure_chromium()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    with sync_playwright() as playwright:
        # Root (CI) cannot use chromium's sandbox; the pages loaded are our own.
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Stack:
    url: str
    token: str
    http: requests.Session

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.http.request(
            method, f"{self.url}/v1{path}", json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        return response.status_code, (response.json() if response.content else None)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.api(method, path, body)
        assert status < 300, (status, payload)
        return payload

    def send(self, source_id: str, body: bytes = b'{"hello":"world"}') -> str:
        response = self.http.post(
            f"{self.url}/e/{source_id}",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": "Bearer provider-secret"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["request_id"])

    def route(self, receiver: Receiver) -> dict[str, Any]:
        name = uuid.uuid4().hex[:8]
        return self.ok(
            "POST",
            "/connections",
            {
                "name": f"c-{name}",
                "source": {"name": f"s-{name}"},
                "destination": {"name": f"d-{name}", "config": {"url": receiver.url("/hooks")}},
            },
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_local_fasthook() as (url, token, http):
        yield Stack(url, token, http)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@dataclass
class Browser:
    """One test's page plus what the browser said: console errors and uncaught exceptions."""

    page: Any
    name: str
    console_errors: list[str] = field(default_factory=list)
    shots: int = 0

    def shot(self, label: str) -> Path:
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture()
def browser(chromium: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Browser]:
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-")
    seen = Browser(page, name)
    page.on("console", lambda message: seen.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.console_errors.append(f"uncaught: {error}"))
    try:
        yield seen
    finally:
        try:
            seen.shot("end")
        finally:
            context.close()
