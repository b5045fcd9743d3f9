"""Real browser: the MNIST page shows the shipped grid and its PNG download decodes."""

import io

import pytest
from PIL import Image

from engine.store.registry import shipped
from tests.browser.server import wait_idle

pytestmark = pytest.mark.skipif(not shipped("ncsn_unet"),
                                reason="the shipped MNIST checkpoints are missing")


def test_download_grid_png_in_a_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{streamlit_server}/mnist")
    wait_idle(page, timeout_ms=120_000)
    page.wait_for_selector("[data-testid='stImage'] img", timeout=60_000)
    button = page.get_by_role("button", name="Download this example grid (PNG)")
    with page.expect_download(timeout=30_000) as info:
        button.click()
    path = tmp_path / "grid.png"
    info.value.save_as(path)
    img = Image.open(io.BytesIO(path.read_bytes()))
    assert img.format == "PNG" and img.size == (8 * 30 + 2, 8 * 30 + 2)
