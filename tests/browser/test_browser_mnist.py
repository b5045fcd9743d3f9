"""Real browser: the MNIST page shows the shipped grid and its PNG download decodes; Sample runs a
background job that the page follows on its own (the fragment's poll, then one rerun) until the
grid and its slide-size download appear."""

import io

import pytest
from PIL import Image

from engine.store.registry import shipped
from tests.browser.server import download, open_with_images, wait_idle

pytestmark = pytest.mark.skipif(not shipped("ncsn_unet"),
                                reason="the shipped MNIST checkpoints are missing")


def test_download_grid_png_in_a_browser(streamlit_server, browser_page, tmp_path):
    page = browser_page
    open_with_images(page, f"{streamlit_server}/mnist")
    button = page.get_by_role("button", name="Download this example grid (PNG)")
    img = Image.open(io.BytesIO(download(page, button, tmp_path / "grid.png")))
    side = 3 * (8 * 30 + 2)            # 8 × 8 digits, each pixel a 3 × 3 block: ≥ 512 px for a slide
    assert img.format == "PNG" and img.size == (side, side)


def test_sample_runs_in_the_background_and_the_page_shows_the_result(streamlit_server, browser_page,
                                                                      tmp_path):
    page = browser_page
    open_with_images(page, f"{streamlit_server}/mnist?mnist_n=4&mnist_T=1&mnist_ode_steps=2&mnist_compare=0")
    page.get_by_role("button", name="Sample", exact=True).click()
    # No further input: the page polls the job and reruns once when it ends.
    button = page.get_by_role("button", name="Grid PNG")
    button.wait_for(timeout=180_000)
    wait_idle(page)
    assert page.get_by_text("score evaluations").count() >= 1
    img = Image.open(io.BytesIO(download(page, button, tmp_path / "ncsn_grid.png")))
    side = 9 * (2 * 30 + 2)            # 2 × 2 digits, each pixel a 9 × 9 block: ≥ 512 px
    assert img.format == "PNG" and img.size == (side, side)
