"""Real-browser checks: streamlit run + headless Chromium (Debian's) via Playwright. The main paths (classify,
deploy, score; forecast, write it) are walked by four sessions at once in tests/reliability/test_concurrency.py."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright

from backend.deploy import deploy
from backend.warehouse.base import TableRef
from tests.conftest import make_workspace, train_and_wait

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def _chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing; .ci/run must install Debian's chromium package")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, db: Path, process: subprocess.Popen[bytes]) -> None:
        self.url, self.db, self.process = url, db, process

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path, tmp_path / "browser.duckdb")


def _serve(tmp_path: Path, db: Path, **extra_env: str) -> Iterator[Server]:
    port = _free_port()
    env = {**os.environ, "FLURRY_WAREHOUSE": f"duckdb:///{db}", "FLURRY_DATA_DIR": str(tmp_path), **extra_env}
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("streamlit did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        yield Server(url, db, process)
    finally:
        Server(url, db, process).stop()
        log.close()


def _pick(page: Page, label: str, option: str) -> None:
    """Open a select box and choose `option`. A rerun landing between the two clicks (the page still drawing
    what the last choice computed) closes the list, so the list is opened again, up to three times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


@contextlib.contextmanager
def screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    """Keep a picture of the page when a browser step fails (CI uploads test-artifacts/)."""
    try:
        yield
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        raise


def _launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=_chromium_or_skip(), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def _offline_snowflake_home(tmp_path: Path) -> Path:
    """A connections.toml naming a Snowflake account that cannot be reached (a closed local port)."""
    home = tmp_path / "snowflake-home"
    home.mkdir()
    (home / "connections.toml").write_text(
        '[offline]\naccount = "acme"\nuser = "ana"\npassword = "hunter2-in-a-file"\nhost = "127.0.0.1"\n'
        'port = 1\nprotocol = "http"\nlogin_timeout = 2\n', encoding="utf-8")
    (home / "connections.toml").chmod(0o600)
    return home


def _the_sidebar_moves_the_session_to_another_warehouse_and_back(browser: Browser, server: Server) -> None:
    """A Snowflake connection of connections.toml that cannot connect: a plain message, no password, and the
    sidebar still there to go back."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    with screenshot_on_failure(page, "browser-warehouse-picker.png"):
        page.goto(server.url)
        page.get_by_text("Pick the data to learn from").wait_for()
        _pick(page, "Warehouse", "Snowflake · offline")
        page.get_by_text("Could not connect to Snowflake with the connection 'offline'").wait_for()
        assert "hunter2" not in page.content()
        _pick(page, "Warehouse", f"DuckDB · {server.db.name}")
        page.get_by_text("Pick the data to learn from").wait_for()
        _pick(page, "Table", "penguins")
        page.get_by_text("344", exact=True).first.wait_for()  # the row count (the column table may show it too)
        # a shared link names its warehouse: a new visitor lands there (here: the offline one)
        fresh = browser.new_page()
        fresh.goto(f"{server.url}/dashboard?model=m0&warehouse=snowflake%3A%20offline")
        fresh.get_by_text("Could not connect to Snowflake with the connection 'offline'").wait_for()


def test_a_shared_dashboard_link_as_the_first_visit_then_the_warehouse_picker(tmp_path: Path) -> None:
    """The first request a fresh server sees is a shared link: it must open inside the app's shell. The same
    server (one start instead of two) then has its sidebar moved to an unreachable Snowflake and back."""
    from playwright.sync_api import sync_playwright

    _chromium_or_skip()
    db = tmp_path / "shared.duckdb"
    ws = make_workspace(db)
    progress = train_and_wait(ws, TableRef("demo", "penguins"), "species", budget=2)
    deploy(ws.warehouse, ws.registry, progress.model_id, "flurry_predict_species")
    ws.close()
    for server in _serve(tmp_path, db, SNOWFLAKE_HOME=str(_offline_snowflake_home(tmp_path))):
        with sync_playwright() as p:
            browser = _launch(p)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            with screenshot_on_failure(page, "browser-shared-link.png"):
                page.goto(f"{server.url}/dashboard?model={progress.model_id}")
                page.get_by_text("Model dashboard").wait_for()
                page.get_by_text(f"id {progress.model_id}").wait_for()
                assert page.get_by_role("link", name="1 · Data").is_visible()
                assert page.get_by_text("Page not found").count() == 0
            _the_sidebar_moves_the_session_to_another_warehouse_and_back(browser, server)
            browser.close()
    # the same warehouse shared read-only with analysts: dashboards, and no wizard page even by its address
    for server in _serve(tmp_path, db, FLURRY_VIEWER="1"):
        with sync_playwright() as p:
            browser = _launch(p)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            with screenshot_on_failure(page, "browser-viewer-mode.png"):
                page.goto(f"{server.url}/dashboard?model={progress.model_id}")
                page.get_by_text(f"id {progress.model_id}").wait_for()
                assert page.get_by_role("link", name="1 · Data").count() == 0
                for wizard in ("data", "deploy", "train"):
                    page.goto(f"{server.url}/{wizard}")
                    page.get_by_text("Model dashboard").or_(page.get_by_text("dashboards only")).first.wait_for()
                    assert page.get_by_role("button", name="Deploy as a SQL function").count() == 0
                    assert page.get_by_text("Pick the data to learn from").count() == 0
                    assert page.locator("input[type=file]").count() == 0
            browser.close()
