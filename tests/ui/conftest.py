"""Browser fixtures: Debian's Chromium through Playwright, and the real ``daytonaflow ui`` process.

Browser tests skip, with the reason, where Chromium or Playwright is missing; with
``DAYTONAFLOW_REQUIRE_BROWSER=1`` (CI sets it) they fail instead, as sandbox tests do with
``DAYTONAFLOW_REQUIRE_SANDBOXES=1``. Playwright's own browser download is never used: it cannot
work here, so Chromium is launched by path (``DAYTONAFLOW_CHROMIUM``, else ``chromium`` on PATH).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ui_support import UiServer, running_ui_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

REQUIRE_ENV = "DAYTONAFLOW_REQUIRE_BROWSER"
CHROMIUM_ENV = "DAYTONAFLOW_CHROMIUM"
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
#: Generous per action: the tests share 2 cores with other suites.
ACTION_TIMEOUT_MS = 30_000

Shot = Callable[["Page", str], Path]


@functools.cache
def _chromium() -> tuple[str | None, str | None]:
    """(path, None) when the browser tests can run, else (None, why not)."""
    if importlib.util.find_spec("playwright") is None:
        return None, "Playwright for Python is not installed (pip install '.[test]')"
    configured = os.environ.get(CHROMIUM_ENV)
    path = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None or not os.access(path, os.X_OK):
        where = f"{CHROMIUM_ENV}={configured}" if configured else "chromium on PATH"
        return None, f"no Chromium ({where}); install Debian's: apt-get install chromium"
    return path, None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path, reason = _chromium()
    if path is not None:
        return path
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(
            f"browser tests are required here ({REQUIRE_ENV}=1) but cannot run: {reason}", pytrace=False
        )
    pytest.skip(f"browser tests cannot run: {reason}")


# Per module, not per session: Playwright's sync API keeps an event loop set on the main thread
# while it is open, and every later test calling asyncio.run() in-process would fail on it.
@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    # Chromium's own sandbox refuses to start as root (CI runs as root); the pages are ours.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    # Containers often have a tiny /dev/shm; Chromium then crashes tabs under load.
    args += ["--disable-dev-shm-usage", "--disable-gpu"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def ui_canvases() -> Sequence[Path]:
    """The CANVAS arguments of ``daytonaflow ui``; a test parametrizes this name to pass some."""
    return ()


@pytest.fixture
def ui_server(tmp_path: Path, ui_canvases: Sequence[Path]) -> Iterator[UiServer]:
    with running_ui_server(tmp_path / "ui", ui_canvases) as server:
        yield server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Kept on the item so the page fixture can screenshot a failed test's last state.
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    directory = tmp_path / "artifacts"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture
def shot(artifacts: Path) -> Shot:
    """``shot(page, name)`` saves a PNG of the page as ``<tmp_path>/artifacts/<name>.png``."""

    def _shot(page: Page, name: str) -> Path:
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return _shot


@pytest.fixture
def page(browser: Browser, ui_server: UiServer, request: pytest.FixtureRequest, shot: Shot) -> Iterator[Page]:
    """A fresh browser context on the token URL (which sets the cookie and redirects to the app).

    Uncaught errors in the page fail the test: they are frontend bugs even where the assertions
    happened to pass."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    opened = context.new_page()
    page_errors: list[str] = []
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        opened.goto(ui_server.url)
        yield opened
        failed = getattr(request.node, "_report_call", None)
        if failed is not None and failed.failed:
            shot(opened, "failure")
    finally:
        context.close()
    if page_errors:
        pytest.fail("uncaught errors in the page:\n" + "\n".join(page_errors), pytrace=False)
