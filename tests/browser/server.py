"""A real Streamlit server and a headless Chromium for browser tests (shared by test files).

Usage in a test module:
    from tests.browser.server import streamlit_server, browser_page  # noqa: F401  (pytest fixtures)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs_dir: Path, port: int | None = None, timeout: float = 90.0):
    """Start `streamlit run app.py` on a free loopback port; return (process, url, log path)."""
    port = port or free_port()
    log = runs_dir / f"streamlit-{port}.log"
    env = dict(os.environ, SCORELAB_RUNS=str(runs_dir))
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc, url, log
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"streamlit did not become healthy within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_idle(page, timeout_ms: int = 90_000, settle_ms: int = 1000) -> None:
    """Wait until the app has been idle (no script running) for `settle_ms` in a row.

    A single check is not enough: between a widget change and the rerun it triggers (or between
    a page's own st.rerun and the next run) the app briefly reports `notRunning`.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    idle_since = None
    while time.monotonic() < deadline:
        if page.locator(IDLE).count():
            idle_since = idle_since or time.monotonic()
            if (time.monotonic() - idle_since) * 1000 >= settle_ms:
                return
        else:
            idle_since = None
        page.wait_for_timeout(100)
    raise TimeoutError(f"the app was still running after {timeout_ms / 1000:.0f} s")


def open_with_images(page, url: str) -> None:
    """Open a page that shows images (grids, reconstructions) and wait until it is idle and the
    first image is drawn."""
    page.goto(url)
    wait_idle(page, timeout_ms=120_000)
    page.wait_for_selector("[data-testid='stImage'] img", timeout=60_000)


def download(page, button, path: Path) -> bytes:
    """Click a download button and return the downloaded file's bytes (saved at `path`)."""
    with page.expect_download(timeout=30_000) as info:
        button.click()
    info.value.save_as(path)
    return path.read_bytes()


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory):
    """URL of a running Score Lab server (run folders in a temporary directory)."""
    runs = tmp_path_factory.mktemp("scorelab_runs")
    proc, url, _ = start_server(runs)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def chromium():
    """A headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
